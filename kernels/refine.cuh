// Tag-guided refine of missing joints (official HeatmapParser.refine), mirroring
// decode/refine.py and tag_search.py: for a person's joint with value exactly 0, the pixel
// maximising heatmap - rint(|tag - person tag|) (float32, ties: lowest y * W + x) gives value v;
// when v > 0 the joint becomes (x + 0.5 + dx, y + 0.5 + dy, v).
#pragma once
#include "common.cuh"

namespace hhr {

// Person tag as refine computes it: np.mean over the joints with value > 0 (joint order) of the tag
// map read at (int(y), int(x)). Writes out[T]; returns false (NaN tag) when the person has none.
// tags (J, H, W, T) float32. stack: scratch of (J, T) floats.
HD inline bool refine_person_tag(const DecodeParams& p, const float* people, int person,
                                 const float* tags, float* stack, float* out) {
  const int J = p.num_joints, T = p.tag_dim, R = 3 + T, H = p.height, W = p.width;
  int n = 0;
  for (int j = 0; j < J; ++j) {
    const float* jt = people + (person * J + j) * R;
    if (!(jt[2] > 0.0f)) continue;
    const int x = (int)jt[0], y = (int)jt[1];
    for (int c = 0; c < T; ++c) stack[n * T + c] = tags[(((size_t)j * H + y) * W + x) * T + c];
    ++n;
  }
  if (n == 0) {
    for (int c = 0; c < T; ++c) out[c] = NAN;
    return false;
  }
  mean_tags(stack, n, T, out);
  return true;
}

// Refine score of pixel i of joint j (float32, as tag_scores).
HD inline float refine_score(const DecodeParams& p, const float* heatmaps, const float* tags, int j,
                             int i, const float* centre) {
  const int T = p.tag_dim;
  const size_t plane = (size_t)p.height * p.width;
  const float* t = tags + ((size_t)j * plane + i) * T;
  float diff = t[0] - centre[0];
  float sq = diff * diff;
  for (int c = 1; c < T; ++c) {
    diff = t[c] - centre[c];
    sq = sq + diff * diff;
  }
  return heatmaps[j * plane + i] - rintf(sqrtf(sq));
}

// np.argmax order: a NaN beats everything (first NaN wins), else larger value, ties lower index.
HD inline bool argmax_better(float s, int i, float best, int best_i) {
  if (best_i < 0) return true;
  const bool sn = s != s, bn = best != best;
  if (bn) return sn && i < best_i;
  if (sn) return true;
  return s > best || (s == best && i < best_i);
}

// Best pixel over [begin, end) (a thread's share on the GPU, the whole map on the host).
HD inline void refine_search(const DecodeParams& p, const float* heatmaps, const float* tags, int j,
                             const float* centre, int begin, int end, int step, float* best,
                             int* best_i) {
  for (int i = begin; i < end; i += step) {
    float s = refine_score(p, heatmaps, tags, j, i, centre);
    if (argmax_better(s, i, *best, *best_i)) { *best = s; *best_i = i; }
  }
}

// Fill joint j of `person` from the winning pixel (index i; 0 for a person without a tag).
HD inline void refine_fill(const DecodeParams& p, float* people, int person, int j, int i,
                           const float* heatmaps) {
  const int J = p.num_joints, R = 3 + p.tag_dim, H = p.height, W = p.width;
  const int y = i / W, x = i % W;
  const float* map = heatmaps + (size_t)j * H * W;
  const float v = map[i];
  if (!(v > 0.0f)) return;
  double dx, dy;
  quarter_offsets(map, H, W, x, y, &dx, &dy);
  float* jt = people + (person * J + j) * R;
  jt[0] = (float)((double)x + 0.5 + dx);
  jt[1] = (float)((double)y + 0.5 + dy);
  jt[2] = v;
}

}  // namespace hhr
