// Grouping by tag (official match_by_tag), quarter-pixel adjust and person scores, for one image.
// Mirrors decode/group.py, adjust.py and parse.person_scores. Serial (one thread per
// image): the work is a few hundred candidates and at most J small assignments; what must be exact
// is the order of every decision, which a serial loop keeps trivially.
#pragma once
#include "common.cuh"
#include "munkres.cuh"

namespace hhr {

// Scratch of one image's grouping; lives in global memory (too large for shared memory).
struct GroupWork {
  MunkresWork munkres;
  double cost[HHR_MAX_N * HHR_MAX_N];
  double dist[HHR_MAX_N * HHR_MAX_N];
  int assign[HHR_MAX_N];
  float mean[HHR_MAX_N * HHR_MAX_T];
};

// Per-image buffers the grouping fills (capacity P = params.max_out_people):
//   people (P, J, 3 + T) float32 [x, y, value, tags], keys (P) float32 first tag of the creator,
//   tag_list (P, J + 1, T) float32, tag_count (P) int.
struct PeopleBuffers {
  float* people;
  float* keys;
  float* tag_list;
  int* tag_count;
};

HD inline void start_person(const DecodeParams& p, PeopleBuffers& b, int* count, int joint,
                            const float* row, const float* tag, int* status) {
  const int J = p.num_joints, T = p.tag_dim, R = 3 + T;
  float key = tag[0];
  int person = -1;
  for (int q = 0; q < *count; ++q)
    if (b.keys[q] == key) { person = q; break; }  // 0.0 == -0.0; NaN never equal: own key
  if (person < 0) {
    if (*count >= p.max_out_people) { *status |= kTooManyPeople; return; }
    person = (*count)++;
    b.keys[person] = key;
    for (int i = 0; i < J * R; ++i) b.people[person * J * R + i] = 0.0f;
  }
  for (int i = 0; i < R; ++i) b.people[(person * J + joint) * R + i] = row[i];
  for (int c = 0; c < T; ++c) b.tag_list[person * (J + 1) * T + c] = tag[c];
  b.tag_count[person] = 1;
}

HD inline void extend_person(const DecodeParams& p, PeopleBuffers& b, int person, int joint,
                             const float* row, const float* tag) {
  const int J = p.num_joints, T = p.tag_dim, R = 3 + T;
  for (int i = 0; i < R; ++i) b.people[(person * J + joint) * R + i] = row[i];
  int n = b.tag_count[person]++;
  for (int c = 0; c < T; ++c) b.tag_list[(person * (J + 1) + n) * T + c] = tag[c];
}

// match_by_tag for one image.
//   cand_xy (J, k, 2) int [x, y], cand_val (J, k) float32, cand_tag (J, k, T) float32: top-k
//   candidates in top-k order; cand_count (J): how many lead the list with double(value) > threshold
//   (the fused NMS/top-k kernel writes only those); joint_order (J).
// Returns the number of people; *status gets the flags of anything that went wrong.
HD inline int group_image(const DecodeParams& p, const int* cand_xy, const float* cand_val,
                          const float* cand_tag, const int* cand_count, const int* joint_order,
                          PeopleBuffers& b, GroupWork& w, int* status) {
  const int J = p.num_joints, K = p.k, T = p.tag_dim;
  int count = 0;
  float row[3 + HHR_MAX_T];
  for (int step = 0; step < J; ++step) {
    const int j = joint_order[step];
    const int A = cand_count[j];
    if (A == 0) continue;
    if (step == 0 || count == 0) {
      for (int r = 0; r < A; ++r) {
        const int* xy = cand_xy + (j * K + r) * 2;
        row[0] = (float)xy[0]; row[1] = (float)xy[1]; row[2] = cand_val[j * K + r];
        for (int c = 0; c < T; ++c) row[3 + c] = cand_tag[(j * K + r) * T + c];
        start_person(p, b, &count, j, row, cand_tag + (j * K + r) * T, status);
      }
      continue;
    }
    const int g = count < p.max_people ? count : p.max_people;
    if (p.ignore_too_much && g == p.max_people) continue;
    for (int q = 0; q < g; ++q)
      mean_tags(b.tag_list + q * (J + 1) * T, b.tag_count[q], T, w.mean + q * T);
    const int cols = A > g ? A : g;
    for (int r = 0; r < A; ++r) {
      const float* t = cand_tag + (j * K + r) * T;
      for (int q = 0; q < cols; ++q) {
        if (q >= g) { w.cost[r * cols + q] = 1e10; continue; }
        double sq = 0.0;
        for (int c = 0; c < T; ++c) {
          double d = (double)t[c] - (double)w.mean[q * T + c];
          sq = c == 0 ? d * d : sq + d * d;
        }
        double dist = sqrt(sq);
        w.dist[r * cols + q] = dist;
        w.cost[r * cols + q] = p.use_detection_val ? rint(dist) * 100.0 - (double)cand_val[j * K + r] : dist;
      }
    }
    *status |= classic_munkres(w.cost, A, cols, w.assign, w.munkres);
    for (int r = 0; r < A; ++r) {
      const int* xy = cand_xy + (j * K + r) * 2;
      const float* t = cand_tag + (j * K + r) * T;
      row[0] = (float)xy[0]; row[1] = (float)xy[1]; row[2] = cand_val[j * K + r];
      for (int c = 0; c < T; ++c) row[3 + c] = t[c];
      const int q = w.assign[r];
      if (q >= 0 && q < g && w.dist[r * cols + q] < p.tag_threshold)
        extend_person(p, b, q, j, row, t);
      else
        start_person(p, b, &count, j, row, t, status);
    }
  }
  return count;
}

// Official adjust on person `person`: joints with value > 0 move to int + 0.5 +- 0.25.
// heatmaps (J, H, W) float32 before NMS.
HD inline void adjust_person(const DecodeParams& p, float* people, int person, const float* heatmaps) {
  const int J = p.num_joints, R = 3 + p.tag_dim, H = p.height, W = p.width;
  for (int j = 0; j < J; ++j) {
    float* jt = people + (person * J + j) * R;
    if (!(jt[2] > 0.0f)) continue;
    const int x = (int)jt[0], y = (int)jt[1];
    double dx, dy;
    quarter_offsets(heatmaps + (size_t)j * H * W, H, W, x, y, &dx, &dy);
    jt[0] = (float)((double)x + 0.5 + dx);
    jt[1] = (float)((double)y + 0.5 + dy);
  }
}

// Official score: mean of the value column over all J joints (np.mean of a contiguous row).
HD inline float person_score(const DecodeParams& p, const float* people, int person) {
  const int J = p.num_joints, R = 3 + p.tag_dim;
  return mean_pairwise(people + person * J * R + 2, J, R);
}

}  // namespace hhr
