// The decode on the CPU, with loops made for a CPU: the fast path of the runtime where a C++
// compiler exists (kernels/cpu.py builds and loads it; the NumPy decode in decode/ stays the
// reference and the fallback). Same arithmetic as the GPU kernels: the grouping, Munkres, mean
// tags, top-k order, argmax order and scores are the kernels' HD functions (common.cuh,
// group.cuh, munkres.cuh); only the loops around them are the CPU's own:
//
//   1. per (image, joint), one streaming pass over the network's maps: bilinear projection to the
//      output size (rows as the resize kernel computes them), separable window maximum for the NMS
//      over a ring of rows, a one-pass top-k of the peaks above threshold, and per 16 x 16 block
//      the heatmap maximum and the tag range (refine's search bounds). Nothing of output size is
//      stored: a value needed later (tags of candidates, adjust's neighbours, refine's pixels) is
//      recomputed by the same expression, which gives the same bits.
//   2. per image, the grouping, adjust and scores (serial, as on the GPU: group.cuh).
//   3. per (image, joint), refine of every person lacking that joint: a bound per block, then the
//      pixels of the blocks that can still hold the maximum.
// Threads across images and joints in steps 1 and 3, across images in step 2.
//
// Build: g++ -O3 -ffp-contract=off (no FMA contraction, see common.cuh), -std=c++17, -pthread.
// Vectorised float operations round each lane as the scalar operation does, so SIMD width does
// not change a bit.
#define HHR_MAX_N 64  // max_people / top-k up to 64 (the GPU build keeps 32: shared memory)
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common.cuh"
#include "group.cuh"
#include "munkres.cuh"
#include "refine.cuh"

using namespace hhr;

namespace {

constexpr int kBlock = 16;       // side of refine's search blocks, output pixels
constexpr int kNonFinite = 8;    // status: NaN / inf in the projected maps (the caller decodes in NumPy)
constexpr int kMaxJ = 64;        // joints per image this build handles

// One axis of the projection: output index o reads input i0[o], i1[o] with weights w0[o], w1[o]
// (decode/aggregate._linear_taps); i0 == nullptr: the axis keeps its size (no resize, as NumPy).
struct Axis {
  const int* i0;
  const int* i1;
  const float* w0;
  const float* w1;
};

// One joint's map: (h, w, inner) float32, inner = 1 for heatmaps and T for channels-last tags.
struct Plane {
  const float* base;
  int h, w, inner;
};

// Input row `row` resized along x, value at output column x, channel t: top of resize_value.
inline float row_value(const Plane& s, const Axis& ax, int row, int x, int t) {
  const float* r = s.base + (size_t)row * s.w * s.inner;
  if (!ax.i0) return r[x * s.inner + t];
  return r[ax.i0[x] * s.inner + t] * ax.w0[x] + r[ax.i1[x] * s.inner + t] * ax.w1[x];
}

// Projected value at output (y, x, t): resize.cuh's resize_value (width first, then height, every
// product and sum rounded on its own), or the input value on an axis that is not resized.
inline float sample(const Plane& s, const Axis& ax, const Axis& ay, int y, int x, int t) {
  if (!ay.i0) return row_value(s, ax, y, x, t);
  return row_value(s, ax, ay.i0[y], x, t) * ay.w0[y] + row_value(s, ax, ay.i1[y], x, t) * ay.w1[y];
}

// All W * inner values of input row `row` resized along x (the streaming form of row_value).
void resize_row(const Plane& s, const Axis& ax, int row, int W, float* out) {
  const float* r = s.base + (size_t)row * s.w * s.inner;
  const int inner = s.inner;
  if (!ax.i0) {
    memcpy(out, r, sizeof(float) * W * inner);
    return;
  }
  if (inner == 1) {
    for (int x = 0; x < W; ++x) out[x] = r[ax.i0[x]] * ax.w0[x] + r[ax.i1[x]] * ax.w1[x];
    return;
  }
  for (int x = 0; x < W; ++x)
    for (int t = 0; t < inner; ++t)
      out[x * inner + t] = r[ax.i0[x] * inner + t] * ax.w0[x] + r[ax.i1[x] * inner + t] * ax.w1[x];
}

// Rows of the input resized along x, cached by input row (two slots: the rows the projection of
// consecutive output rows reads are non-decreasing, and one output row reads two input rows).
struct RowCache {
  std::vector<float> buf[2];
  int id[2] = {-1, -1};
  int next = 0;
  void init(size_t n) {
    for (auto& b : buf) b.resize(n);
    id[0] = id[1] = -1;
    next = 0;
  }
  const float* get(const Plane& s, const Axis& ax, int row, int W, int keep) {
    for (int k = 0; k < 2; ++k)
      if (id[k] == row) return buf[k].data();
    int slot = id[next] == keep ? 1 - next : next;
    resize_row(s, ax, row, W, buf[slot].data());
    id[slot] = row;
    next = 1 - slot;
    return buf[slot].data();
  }
};

// Output row y of the projection into out (W * inner values).
void project_row(const Plane& s, const Axis& ax, const Axis& ay, int y, int W, RowCache& cache,
                 float* out) {
  const int n = W * s.inner;
  if (!ay.i0) {
    if (!ax.i0) {
      memcpy(out, s.base + (size_t)y * n, sizeof(float) * n);
      return;
    }
    resize_row(s, ax, y, W, out);
    return;
  }
  const float* top = cache.get(s, ax, ay.i0[y], W, ay.i1[y]);
  const float* bottom = cache.get(s, ax, ay.i1[y], W, ay.i0[y]);
  const float a = ay.w0[y], b = ay.w1[y];
  for (int i = 0; i < n; ++i) out[i] = top[i] * a + bottom[i] * b;
}

// Everything the streaming pass keeps of one (image, joint).
struct JointResult {
  int count;                   // candidates (value above threshold), <= k
  float val[HHR_MAX_N];        // best first: value descending, then flat index ascending
  int idx[HHR_MAX_N];          // flat index y * W + x
  std::vector<float> bmax;     // (nb) heatmap maximum per block
  std::vector<float> tlo, thi; // (T, nb) tag range per block and channel
  int nonfinite;
};

// Official top-k order among the peaks, one pass: pixels arrive in flat index order, so a new
// peak goes after every kept peak of the same value (topk_before).
inline void topk_push(JointResult& r, int k, float v, int i) {
  if (r.count == k && !(v > r.val[k - 1])) return;
  int pos = r.count < k ? r.count : k - 1;
  while (pos > 0 && topk_before(v, i, r.val[pos - 1], r.idx[pos - 1])) {
    r.val[pos] = r.val[pos - 1];
    r.idx[pos] = r.idx[pos - 1];
    --pos;
  }
  r.val[pos] = v;
  r.idx[pos] = i;
  if (r.count < k) ++r.count;
}

struct Geometry {
  int J, T, h, w, H, W, hb, wb;
  Axis ax, ay;
  int nb() const { return hb * wb; }
};

// Thread scratch of the streaming pass.
struct Scratch {
  RowCache heat_cache, tag_cache;
  std::vector<float> ring, ring_max, col_max, tag_row, nms_row, hacc, tlo_acc, thi_acc;
};

inline float fmax2(float a, float b) { return a > b ? a : b; }
inline float fmin2(float a, float b) { return a < b ? a : b; }

// Horizontal window maximum of one row, -inf outside the map (decode/nms.window_max).
void row_window_max(const float* row, int W, int pad, float* out) {
  memcpy(out, row, sizeof(float) * W);
  for (int d = 1; d <= pad && d < W; ++d) {
    for (int x = d; x < W; ++x) out[x] = fmax2(out[x], row[x - d]);
    for (int x = 0; x < W - d; ++x) out[x] = fmax2(out[x], row[x + d]);
  }
}

// NaN or inf anywhere in v[0..n) (an integer reduction: vectorises without reassociating floats).
inline int any_nonfinite(const float* v, int n) {
  int bad = 0;
  for (int i = 0; i < n; ++i) bad |= !((v[i] - v[i]) == 0.0f);
  return bad;
}

// Step 1 for one (image, joint): heat (h, w), tags (h, w, T) of that joint.
void stream_joint(const Geometry& g, const DecodeParams& p, float thr_f, const float* heat,
                  const float* tags, JointResult& r, Scratch& s) {
  const int H = g.H, W = g.W, T = g.T, pad = p.nms_padding, R = 2 * pad + 1, nb = g.nb(), WT = W * T;
  const Plane hp = {heat, g.h, g.w, 1}, tp = {tags, g.h, g.w, T};
  s.heat_cache.init(W);
  s.tag_cache.init((size_t)WT);
  s.ring.resize((size_t)R * W);
  s.ring_max.resize((size_t)R * W);
  s.col_max.resize(W);
  s.tag_row.resize((size_t)WT);
  s.nms_row.resize(W);
  s.hacc.resize(W);
  s.tlo_acc.resize(WT);
  s.thi_acc.resize(WT);
  r.count = 0;
  r.bmax.assign(nb, -INFINITY);
  r.tlo.assign((size_t)T * nb, INFINITY);
  r.thi.assign((size_t)T * nb, -INFINITY);
  int bad = 0;
  const int k = p.k;
  float* hacc = s.hacc.data();
  float* tlo = s.tlo_acc.data();
  float* thi = s.thi_acc.data();
  for (int y = 0; y < H + pad; ++y) {
    if (y < H) {
      float* row = &s.ring[(size_t)(y % R) * W];
      project_row(hp, g.ax, g.ay, y, W, s.heat_cache, row);
      row_window_max(row, W, pad, &s.ring_max[(size_t)(y % R) * W]);
      project_row(tp, g.ax, g.ay, y, W, s.tag_cache, s.tag_row.data());
      const float* tr = s.tag_row.data();
      bad |= any_nonfinite(row, W) | any_nonfinite(tr, WT);
      // Block maxima and tag ranges (refine's bounds): elementwise over the block's rows, reduced
      // per block at its last row.
      if (y % kBlock == 0) {
        memcpy(hacc, row, sizeof(float) * W);
        memcpy(tlo, tr, sizeof(float) * WT);
        memcpy(thi, tr, sizeof(float) * WT);
      } else {
        for (int x = 0; x < W; ++x) hacc[x] = fmax2(hacc[x], row[x]);
        for (int i = 0; i < WT; ++i) tlo[i] = fmin2(tlo[i], tr[i]);
        for (int i = 0; i < WT; ++i) thi[i] = fmax2(thi[i], tr[i]);
      }
      if (y % kBlock == kBlock - 1 || y == H - 1) {
        const int by = y / kBlock;
        for (int bx = 0; bx < g.wb; ++bx) {
          const int x0 = bx * kBlock, x1 = std::min(x0 + kBlock, W), b = by * g.wb + bx;
          float m = hacc[x0];
          for (int x = x0 + 1; x < x1; ++x) m = fmax2(m, hacc[x]);
          r.bmax[b] = m;
          for (int c = 0; c < T; ++c) {
            float lo = tlo[x0 * T + c], hi = thi[x0 * T + c];
            for (int x = x0 + 1; x < x1; ++x) {
              lo = fmin2(lo, tlo[x * T + c]);
              hi = fmax2(hi, thi[x * T + c]);
            }
            r.tlo[(size_t)c * nb + b] = lo;
            r.thi[(size_t)c * nb + b] = hi;
          }
        }
      }
    }
    const int yc = y - pad;  // the row whose window is complete
    if (yc < 0) continue;
    const int y0 = yc - pad < 0 ? 0 : yc - pad, y1 = yc + pad >= H ? H - 1 : yc + pad;
    float* cm = s.col_max.data();
    memcpy(cm, &s.ring_max[(size_t)(y0 % R) * W], sizeof(float) * W);
    for (int yy = y0 + 1; yy <= y1; ++yy) {
      const float* o = &s.ring_max[(size_t)(yy % R) * W];
      for (int x = 0; x < W; ++x) cm[x] = fmax2(o[x], cm[x]);
    }
    const float* hrow = &s.ring[(size_t)(yc % R) * W];
    float* nv = s.nms_row.data();
    // Official NMS value det * (maxpool(det) == det), then the strict float64 threshold, written
    // as v > thr_f (thr_f: the largest float32 <= the threshold).
    int any = 0;
    for (int x = 0; x < W; ++x) {
      const float hv = hrow[x];
      nv[x] = hv * (cm[x] == hv ? 1.0f : 0.0f);
      any |= nv[x] > thr_f;
    }
    if (!any) continue;
    for (int x = 0; x < W; ++x)
      if (nv[x] > thr_f) topk_push(r, k, nv[x], yc * W + x);
  }
  r.nonfinite = bad;
}

// Per-image scratch and outputs of steps 2-3.
struct ImageOut {
  float* people;  // (P, J, 3 + T)
  float* scores;  // (P)
  int count;
  int status;
};

inline void quarter_offsets_at(const Plane& hp, const Geometry& g, int x, int y, double* dx, double* dy) {
  const int H = g.H, W = g.W;
  const float right = sample(hp, g.ax, g.ay, y, x + 1 < W ? x + 1 : W - 1, 0);
  const float left = sample(hp, g.ax, g.ay, y, x - 1 > 0 ? x - 1 : 0, 0);
  const float down = sample(hp, g.ax, g.ay, y + 1 < H ? y + 1 : H - 1, x, 0);
  const float up = sample(hp, g.ax, g.ay, y - 1 > 0 ? y - 1 : 0, x, 0);
  *dx = right > left ? 0.25 : -0.25;
  *dy = down > up ? 0.25 : -0.25;
}

// Step 2 for one image: candidates -> people (group_image), adjust, scores.
void group_one(const Geometry& g, const DecodeParams& p, const JointResult* jr, const float* heat,
               const float* tags, const int* joint_order, int adjust, ImageOut& o) {
  const int J = g.J, K = p.k, T = g.T, P = p.max_out_people, W = g.W;
  std::vector<int> cand_xy((size_t)J * K * 2, 0);
  std::vector<float> cand_val((size_t)J * K, 0.0f), cand_tag((size_t)J * K * T, 0.0f);
  std::vector<int> cand_count(J);
  const size_t src_plane = (size_t)g.h * g.w;
  for (int j = 0; j < J; ++j) {
    const JointResult& r = jr[j];
    const Plane tp = {tags + src_plane * T * j, g.h, g.w, T};
    cand_count[j] = r.count;
    for (int c = 0; c < r.count; ++c) {
      const int i = r.idx[c], x = i % W, y = i / W;
      cand_xy[(j * K + c) * 2] = x;
      cand_xy[(j * K + c) * 2 + 1] = y;
      cand_val[j * K + c] = r.val[c];
      for (int t = 0; t < T; ++t) cand_tag[(j * K + c) * T + t] = sample(tp, g.ax, g.ay, y, x, t);
    }
  }
  std::vector<float> keys(P), tag_list((size_t)P * (J + 1) * T);
  std::vector<int> tag_count(P);
  GroupWork* work = (GroupWork*)calloc(1, sizeof(GroupWork));
  PeopleBuffers b = {o.people, keys.data(), tag_list.data(), tag_count.data()};
  int status = 0;
  const int count = group_image(p, cand_xy.data(), cand_val.data(), cand_tag.data(), cand_count.data(),
                                joint_order, b, *work, &status);
  free(work);
  const int R = 3 + T;
  for (int q = 0; q < count; ++q) {
    if (adjust) {  // adjust_person, with the neighbours recomputed from the maps
      for (int j = 0; j < J; ++j) {
        float* jt = o.people + (q * J + j) * R;
        if (!(jt[2] > 0.0f)) continue;
        const int x = (int)jt[0], y = (int)jt[1];
        const Plane hp = {heat + src_plane * j, g.h, g.w, 1};
        double dx, dy;
        quarter_offsets_at(hp, g, x, y, &dx, &dy);
        jt[0] = (float)((double)x + 0.5 + dx);
        jt[1] = (float)((double)y + 0.5 + dy);
      }
    }
    o.scores[q] = person_score(p, o.people, q);
  }
  o.count = count;
  o.status |= status;
}

// Refine score of output pixel (y, x) of one joint: refine_score's expression.
inline float score_at(const Plane& hp, const Plane& tp, const Geometry& g, int y, int x, const float* c) {
  const float hv = sample(hp, g.ax, g.ay, y, x, 0);
  float diff = sample(tp, g.ax, g.ay, y, x, 0) - c[0];
  float sq = diff * diff;
  for (int t = 1; t < g.T; ++t) {
    diff = sample(tp, g.ax, g.ay, y, x, t) - c[t];
    sq = sq + diff * diff;
  }
  return hv - rintf(sqrtf(sq));
}

// The best pixel of block b for centre c: argmax_better over its pixels in flat order.
inline void scan_block(const Plane& hp, const Plane& tp, const Geometry& g, int b, const float* c,
                       float* best, int* best_i) {
  const int by = b / g.wb, bx = b % g.wb;
  const int y0 = by * kBlock, y1 = std::min(y0 + kBlock, g.H);
  const int x0 = bx * kBlock, x1 = std::min(x0 + kBlock, g.W);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const float s = score_at(hp, tp, g, y, x, c);
      const int i = y * g.W + x;
      if (argmax_better(s, i, *best, *best_i)) { *best = s; *best_i = i; }
    }
}

// Refine's argmax for one (joint, finite centre), equal to the full-map np.argmax of
// heatmap - rint(|tag - centre|) (finite maps). Block bound: bmax - rint(sqrt(sum gap^2)) with
// gap_t = max(lo_t - c_t, c_t - hi_t, 0), in float32 by the same operations as the score: IEEE
// rounding is monotone, so |fl(tag - c)| >= gap, the squares, their sum, sqrt and rint keep that
// order, and the bound is >= every score of the block, exactly (no slack). Blocks whose bound is
// below a score already reached cannot hold the maximum nor a tie with it.
int refine_argmax(const Plane& hp, const Plane& tp, const Geometry& g, const JointResult& r,
                  const float* c, std::vector<float>& bound) {
  const int nb = g.nb(), T = g.T;
  bound.resize(nb);
  float* bd = bound.data();
  const float* lo0 = r.tlo.data();
  const float* hi0 = r.thi.data();
  for (int b = 0; b < nb; ++b) {
    float gp = std::max(std::max(lo0[b] - c[0], c[0] - hi0[b]), 0.0f);
    bd[b] = gp * gp;
  }
  for (int t = 1; t < T; ++t) {
    const float* lo = lo0 + (size_t)t * nb;
    const float* hi = hi0 + (size_t)t * nb;
    for (int b = 0; b < nb; ++b) {
      float gp = std::max(std::max(lo[b] - c[t], c[t] - hi[b]), 0.0f);
      bd[b] = bd[b] + gp * gp;
    }
  }
  int top = 0;
  for (int b = 0; b < nb; ++b) {
    bd[b] = r.bmax[b] - rintf(sqrtf(bd[b]));
    if (bd[b] > bd[top]) top = b;
  }
  float best = 0.0f;
  int best_i = -1;
  scan_block(hp, tp, g, top, c, &best, &best_i);
  for (int b = 0; b < nb; ++b)
    if (b != top && !(bd[b] < best)) scan_block(hp, tp, g, b, c, &best, &best_i);
  return best_i;
}

// Step 3 for one (image, joint): every person lacking joint j (value exactly 0).
// centres (count, T), has (count): finite mean tag (refine_people's `finite`).
void refine_joint(const Geometry& g, const JointResult& r, const float* heat_j, const float* tags_j,
                  int j, const float* centres, const unsigned char* has, const unsigned char* missing,
                  ImageOut& o, std::vector<float>& bound) {
  const int J = g.J, T = g.T, R = 3 + T, W = g.W;
  const Plane hp = {heat_j, g.h, g.w, 1}, tp = {tags_j, g.h, g.w, T};
  for (int q = 0; q < o.count; ++q) {
    if (!missing[q * J + j]) continue;
    // Official argmax over all-NaN scores (a person without a finite tag): pixel 0.
    const int i = has[q] ? refine_argmax(hp, tp, g, r, centres + q * T, bound) : 0;
    const int y = i / W, x = i % W;
    const float v = sample(hp, g.ax, g.ay, y, x, 0);
    if (!(v > 0.0f)) continue;
    double dx, dy;
    quarter_offsets_at(hp, g, x, y, &dx, &dy);
    float* jt = o.people + (q * J + j) * R;
    jt[0] = (float)((double)x + 0.5 + dx);
    jt[1] = (float)((double)y + 0.5 + dy);
    jt[2] = v;
  }
}

// Person tags as refine_people computes them (decode/refine.person_tags): np.mean over the joints
// with value > 0 of the tags at (int(y), int(x)); has[q] = all finite.
void person_centres(const Geometry& g, const float* tags, const ImageOut& o, float* centres,
                    unsigned char* has) {
  const int J = g.J, T = g.T, R = 3 + T;
  const size_t src_plane = (size_t)g.h * g.w * T;
  float stack[kMaxJ * HHR_MAX_T];
  for (int q = 0; q < o.count; ++q) {
    int n = 0;
    for (int j = 0; j < J; ++j) {
      const float* jt = o.people + (q * J + j) * R;
      if (!(jt[2] > 0.0f)) continue;
      const Plane tp = {tags + src_plane * j, g.h, g.w, T};
      const int x = (int)jt[0], y = (int)jt[1];
      for (int t = 0; t < T; ++t) stack[n * T + t] = sample(tp, g.ax, g.ay, y, x, t);
      ++n;
    }
    has[q] = n > 0;
    if (n == 0) continue;
    mean_tags(stack, n, T, centres + q * T);
    for (int t = 0; t < T; ++t) has[q] &= isfinite(centres[q * T + t]) ? 1 : 0;
  }
}

template <class F>
void parallel_for(int n, int threads, F&& fn) {
  if (threads <= 1 || n <= 1) {
    for (int i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  const int m = std::min(threads, n);
  std::atomic<int> next(0);
  std::vector<std::thread> pool;
  pool.reserve(m - 1);
  auto work = [&](int tid) {
    for (int i; (i = next.fetch_add(1)) < n;) fn(i, tid);
  };
  for (int t = 1; t < m; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
}

}  // namespace

// N images. heatmaps (N, J, h, w), tags (N, J, h, w, T) float32: the maps before projection;
// (H, W) the decode size; x taps (ix0, ix1, wx0, wx1, W entries each) and y taps (H entries)
// project them, or null pointers for an axis that keeps its size (then h == H / w == W).
// out_people (N, P, J, 3 + T) with P = J * k, out_scores (N, P), out_count (N), out_status (N):
// a nonzero status means the image must be decoded by the NumPy decoder (non-finite maps,
// unsolvable matching); its outputs are then meaningless.
// flags: bit 0 adjust, bit 1 refine. threads: 0 = all hardware threads.
extern "C" int hhr_cpu_decode(const float* heatmaps, const float* tags, int N, int J, int h, int w, int T,
                              int H, int W, const int* ix0, const int* ix1, const float* wx0,
                              const float* wx1, const int* iy0, const int* iy1, const float* wy0,
                              const float* wy1, int k, int max_people, double det_thr, double tag_thr,
                              int use_val, int ignore_too_much, int nms_padding, const int* joint_order,
                              int flags, int threads, float* out_people, float* out_scores, int* out_count,
                              int* out_status) {
  if (J > kMaxJ || T > HHR_MAX_T || T < 1 || k > HHR_MAX_N || max_people > HHR_MAX_N || k < 1) return -1;
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  DecodeParams p = {J, k, T, H, W, max_people, det_thr, tag_thr, use_val, ignore_too_much, nms_padding, J * k};
  Geometry g;
  g.J = J; g.T = T; g.h = h; g.w = w; g.H = H; g.W = W;
  g.hb = (H + kBlock - 1) / kBlock;
  g.wb = (W + kBlock - 1) / kBlock;
  g.ax = {ix0, ix1, wx0, wx1};
  g.ay = {iy0, iy1, wy0, wy1};
  float thr_f = (float)det_thr;
  if ((double)thr_f > det_thr) thr_f = nextafterf(thr_f, -INFINITY);
  const size_t plane = (size_t)h * w, P = (size_t)J * k, R = 3 + T;
  std::vector<JointResult> jr((size_t)N * J);
  std::vector<Scratch> scratch(threads);
  parallel_for(N * J, threads, [&](int t, int tid) {
    const int n = t / J, j = t % J;
    stream_joint(g, p, thr_f, heatmaps + ((size_t)n * J + j) * plane, tags + ((size_t)n * J + j) * plane * T,
                 jr[t], scratch[tid]);
  });
  std::vector<ImageOut> out(N);
  for (int n = 0; n < N; ++n) {
    out[n] = {out_people + (size_t)n * P * J * R, out_scores + (size_t)n * P, 0, 0};
    for (int j = 0; j < J; ++j) out[n].status |= jr[(size_t)n * J + j].nonfinite ? kNonFinite : 0;
  }
  parallel_for(N, threads, [&](int n, int) {
    if (out[n].status) return;
    group_one(g, p, &jr[(size_t)n * J], heatmaps + (size_t)n * J * plane, tags + (size_t)n * J * plane * T,
              joint_order, flags & 1, out[n]);
  });
  if (flags & 2) {
    std::vector<float> centres((size_t)N * P * T);
    std::vector<unsigned char> has((size_t)N * P), missing((size_t)N * P * J);
    for (int n = 0; n < N; ++n) {
      if (out[n].status) continue;
      person_centres(g, tags + (size_t)n * J * plane * T, out[n], &centres[(size_t)n * P * T], &has[(size_t)n * P]);
      for (int q = 0; q < out[n].count; ++q)
        for (int j = 0; j < J; ++j)
          missing[((size_t)n * P + q) * J + j] = out[n].people[((size_t)q * J + j) * R + 2] == 0.0f;
    }
    std::vector<std::vector<float>> bounds(threads);
    parallel_for(N * J, threads, [&](int t, int tid) {
      const int n = t / J, j = t % J;
      if (out[n].status) return;
      refine_joint(g, jr[t], heatmaps + ((size_t)n * J + j) * plane, tags + ((size_t)n * J + j) * plane * T, j,
                   &centres[(size_t)n * P * T], &has[(size_t)n * P], &missing[(size_t)n * P * J], out[n],
                   bounds[tid]);
    });
  }
  for (int n = 0; n < N; ++n) {
    out_count[n] = out[n].count;
    out_status[n] = out[n].status;
  }
  return 0;
}
