// The decode on the CPU, with loops made for a CPU: the fast path of the runtime where a C++
// compiler exists (kernels/cpu.py builds and loads it; the NumPy decode in decode/ stays the
// reference and the fallback). Same arithmetic as the GPU kernels: the grouping, Munkres, mean
// tags, top-k order, argmax order and scores are the kernels' HD functions (common.cuh,
// group.cuh, munkres.cuh); only the loops around them are the CPU's own:
//
//   1. per (image, joint), one streaming pass over the network's maps: bilinear projection of the
//      heatmap to the output size (rows as the resize kernel computes them), separable window
//      maximum for the NMS over a ring of rows, a one-pass top-k of the peaks above threshold, and
//      per 8 x 8 block the heatmap maximum and an enclosure of the tags (refine's search bounds).
//      Nothing of output size is stored: a value needed later (tags of candidates, adjust's
//      neighbours, refine's pixels) is recomputed by the same expression, which gives the same bits.
//   2. per image, the grouping, adjust and scores (serial, as on the GPU: group.cuh).
//   3. per (image, joint), refine of every person lacking that joint: the joint's candidates'
//      scores, a bound per block, then the pixels of the blocks that can still hold the maximum,
//      highest bound first.
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
#include <time.h>
#include <thread>
#include <vector>

#include "common.cuh"
#include "group.cuh"
#include "munkres.cuh"
#include "refine.cuh"

using namespace hhr;

namespace {

#ifdef HHR_COUNT
long g_scanned = 0, g_searches = 0, g_ord = 0;
#endif
#ifndef HHR_CPU_BLOCK
#define HHR_CPU_BLOCK 8
#endif
constexpr int kBlock = HHR_CPU_BLOCK;
constexpr int kSuper = 4;  // blocks per side of refine's super-blocks       // side of refine's search blocks, output pixels
constexpr int kNonFinite = 8;    // status: NaN / inf in the projected maps (the caller decodes in NumPy)
constexpr int kMaxJ = 64;        // joints per image this build handles

// One axis of the projection: output index o reads input i0[o], i1[o] with weights w0[o], w1[o]
// (decode/aggregate._linear_taps); i0 == nullptr: the axis keeps its size (no resize, as NumPy).
struct Axis {
  const int* i0;
  const int* i1;
  const float* w0;
  const float* w1;
  // Exact 2x upsampling (the projection of stride-2 maps at scale 1), when out = 2 * in and the
  // taps of 0 < o < out - 1 are (o - 1) / 2 and the next: the weights of odd / even outputs
  // de-interleaved (up_odd0[m] = w0[2m + 1], ...), so the row loop vectorises without gathers.
  bool up2 = false;
  std::vector<float> up_odd0, up_odd1, up_even0, up_even1;
};

// Sets up2 for an axis of `in` -> `out` values.
void detect_up2(Axis& a, int in, int out) {
  a.up2 = false;
  if (!a.i0 || out != 2 * in || in < 2) return;
  for (int o = 1; o < out - 1; ++o)
    if (a.i0[o] != (o - 1) / 2 || a.i1[o] != a.i0[o] + 1) return;
  const int n = in - 1;  // odd outputs 1, 3, .., out - 3 and even outputs 2, 4, .., out - 2
  a.up_odd0.resize(n); a.up_odd1.resize(n); a.up_even0.resize(n); a.up_even1.resize(n);
  for (int m = 0; m < n; ++m) {
    a.up_odd0[m] = a.w0[2 * m + 1]; a.up_odd1[m] = a.w1[2 * m + 1];
    a.up_even0[m] = a.w0[2 * m + 2]; a.up_even1[m] = a.w1[2 * m + 2];
  }
  a.up2 = true;
}

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
  if (ax.up2 && (inner == 1 || inner == 2)) {
    // Output 0 and W - 1 by their taps, the rest from input pairs (m, m + 1): outputs 2m + 1, 2m + 2.
    const int n = W / 2 - 1;
    const float *a0 = ax.up_odd0.data(), *a1 = ax.up_odd1.data(), *b0 = ax.up_even0.data(), *b1 = ax.up_even1.data();
    if (inner == 1) {
      for (int m = 0; m < n; ++m) {
        const float u = r[m], v = r[m + 1];
        out[2 * m + 1] = u * a0[m] + v * a1[m];
        out[2 * m + 2] = u * b0[m] + v * b1[m];
      }
    } else {
      for (int m = 0; m < n; ++m) {
        const float u0 = r[2 * m], u1 = r[2 * m + 1], v0 = r[2 * m + 2], v1 = r[2 * m + 3];
        out[4 * m + 2] = u0 * a0[m] + v0 * a1[m];
        out[4 * m + 3] = u1 * a0[m] + v1 * a1[m];
        out[4 * m + 4] = u0 * b0[m] + v0 * b1[m];
        out[4 * m + 5] = u1 * b0[m] + v1 * b1[m];
      }
    }
    for (int x = 0; x < W; x += W - 1)
      for (int t = 0; t < inner; ++t)
        out[x * inner + t] = r[ax.i0[x] * inner + t] * ax.w0[x] + r[ax.i1[x] * inner + t] * ax.w1[x];
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
  float* buf[2];
  int id[2] = {-1, -1};
  int next = 0;
  void init(float* a, float* b) {
    buf[0] = a;
    buf[1] = b;
    id[0] = id[1] = -1;
    next = 0;
  }
  const float* get(const Plane& s, const Axis& ax, int row, int W, int keep) {
    for (int k = 0; k < 2; ++k)
      if (id[k] == row) return buf[k];
    int slot = id[next] == keep ? 1 - next : next;
    resize_row(s, ax, row, W, buf[slot]);
    id[slot] = row;
    next = 1 - slot;
    return buf[slot];
  }
};

// Scratch buffers carved from one allocation, each start shifted by a different multiple of
// 64 bytes: buffers a multiple of 4 KiB apart make loads wait on unrelated stores (4K aliasing),
// which cost a third of the streaming pass before.
struct Arena {
  std::vector<float> mem;
  size_t used = 0;
  int count = 0;
  void reset(size_t total) {
    if (mem.size() < total) mem.assign(total, 0.0f);
    used = 0;
    count = 0;
  }
  float* take(size_t n) {
    float* p = mem.data() + used;
    used += (n + 15) / 16 * 16 + 16 * (1 + count++ % 7);
    return p;
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
  std::vector<float> sbmax, stlo, sthi;  // the same per super-block: (nsb), (T, nsb)
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
  // Input columns [bcol0, bcol1] the projection of block column bx reads; rows likewise.
  std::vector<int> bcol0, bcol1, brow0, brow1;
  int hsb, wsb;  // super-blocks of kSuper x kSuper blocks
  int nb() const { return hb * wb; }
  int nsb() const { return hsb * wsb; }
};

// Input index range [lo, hi] that outputs [o0, o1) of an axis read.
inline void input_range(const Axis& a, int o0, int o1, int* lo, int* hi) {
  *lo = a.i0 ? a.i0[o0] : o0;
  *hi = a.i0 ? a.i1[o1 - 1] : o1 - 1;  // taps are non-decreasing
}

// Thread scratch of the streaming pass.
struct Scratch {
  RowCache heat_cache, tag_cache;
  Arena arena;
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

// Maximum of v[0..n) (n >= 1), in 16 lanes so that it vectorises (max is exact in any order).
inline float max_reduce(const float* v, int n) {
  float lane[16];
  const int m = n < 16 ? n : 16;
  for (int l = 0; l < 16; ++l) lane[l] = v[l < m ? l : 0];
  int i = 16;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) lane[l] = fmax2(lane[l], v[i + l]);
  float r = lane[0];
  for (int l = 1; l < 16; ++l) r = fmax2(r, lane[l]);
  for (; i < n; ++i) r = fmax2(r, v[i]);
  return r;
}

// NaN or inf anywhere in v[0..n) (an integer reduction: vectorises without reassociating floats).
inline int any_nonfinite(const float* v, int n) {
  int bad = 0;
  for (int i = 0; i < n; ++i) bad |= !((v[i] - v[i]) == 0.0f);
  return bad;
}

// An upper bound of every projected value computed from inputs s_i <= m: a projected value is
// sum_i a_i s_i (1 + d_i) with a_i >= 0, sum_i a_i = (wx0 + wx1)(wy0 + wy1) within 2^-22 of 1
// (w0 = fl(1 - lambda), w1 = lambda) and |d_i| <= 4 * 2^-24 (each term passes two products and two
// sums, each rounding multiplies it by 1 + e). Terms with s_i < 0 only lower the sum, so it is
// <= m (1 + 2^-21) when m >= 0 and <= m (1 - 2^-21) when m < 0: m + 2^-18 |m| encloses both, and
// 1e-30 the absolute error of subnormal products. lower_of: the same for inputs >= m.
inline float upper_of(float m) { return m + fabsf(m) * 0x1p-18f + 1e-30f; }
inline float lower_of(float m) { return m - fabsf(m) * 0x1p-18f - 1e-30f; }

// Step 1 for one (image, joint): heat (h, w), tags (h, w, T) of that joint.
//   a. one pass over the input maps: finiteness (|v| <= 1e38, so that the projection cannot
//      overflow either) and each input row's heatmap maximum;
//   b. refine's tag bounds: per output block, the tag range of the input pixels its projection
//      reads, widened by lower_of / upper_of so that it encloses every projected tag of the block
//      (the projected tags themselves are never computed here);
//   c. the projected heatmap rows: exact block maxima (refine's bounds), and the NMS and top-k,
//      which skip the rows that cannot hold a value above the threshold (their input rows'
//      maximum says so): such a row cannot be a peak, nor change the window maximum at a peak
//      (every value of it is below the peak's), so it counts as -inf in the window.
void stream_joint(const Geometry& g, const DecodeParams& p, float thr_f, const float* heat,
                  const float* tags, JointResult& r, Scratch& s) {
  const int H = g.H, W = g.W, T = g.T, pad = p.nms_padding, R = 2 * pad + 1, nb = g.nb(), wb = g.wb;
  const int h = g.h, w = g.w;
  const Plane hp = {heat, h, w, 1};
  const size_t Wp = (size_t)(W + 15) / 16 * 16 + 16;  // ring row stride (not a multiple of 4 KiB)
  s.arena.reset(2 * Wp * R + 6 * (size_t)W + (size_t)w * 2 * T + h + 4096);
  float* ring = s.arena.take(Wp * R);
  float* ring_max = s.arena.take(Wp * R);
  float* cm = s.arena.take(W);
  float* nv = s.arena.take(W);
  float* row_max = s.arena.take(h);
  float* hacc = s.arena.take((size_t)W);
  float* blk_lo = s.arena.take((size_t)w * T);
  float* blk_hi = s.arena.take((size_t)w * T);
  {
    float* h0 = s.arena.take(W);
    float* h1 = s.arena.take(W);
    s.heat_cache.init(h0, h1);
  }
  int bad = 0;
  // a. input rows: finiteness and row maxima.
  for (int y = 0; y < h; ++y) {
    const float* hr = heat + (size_t)y * w;
    const float* tr = tags + (size_t)y * w * T;
    for (int x = 0; x < w; ++x) bad |= !(fabsf(hr[x]) <= 1e38f);
    for (int i = 0; i < w * T; ++i) bad |= !(fabsf(tr[i]) <= 1e38f);
    row_max[y] = max_reduce(hr, w);
  }
  r.nonfinite = bad;
  r.count = 0;
  if (bad) return;
  // b. block bounds: per block row, elementwise over its input rows, then per block column over its
  // input columns.
  r.bmax.resize(nb);
  r.tlo.resize((size_t)T * nb);
  r.thi.resize((size_t)T * nb);
  float* clo = blk_lo;  // (w * T) column tag minima / maxima of the block row's input rows
  float* chi = blk_hi;
  for (int by = 0; by < g.hb; ++by) {
    const int y0 = g.brow0[by], y1 = g.brow1[by];
    memcpy(clo, tags + (size_t)y0 * w * T, sizeof(float) * w * T);
    memcpy(chi, tags + (size_t)y0 * w * T, sizeof(float) * w * T);
    for (int y = y0 + 1; y <= y1; ++y) {
      const float* tr = tags + (size_t)y * w * T;
      for (int i = 0; i < w * T; ++i) clo[i] = fmin2(clo[i], tr[i]);
      for (int i = 0; i < w * T; ++i) chi[i] = fmax2(chi[i], tr[i]);
    }
    for (int bx = 0; bx < wb; ++bx) {
      const int c0 = g.bcol0[bx], c1 = g.bcol1[bx], b = by * wb + bx;
      for (int t = 0; t < T; ++t) {
        float lo = clo[c0 * T + t], hi = chi[c0 * T + t];
        for (int x = c0 + 1; x <= c1; ++x) {
          lo = fmin2(lo, clo[x * T + t]);
          hi = fmax2(hi, chi[x * T + t]);
        }
        r.tlo[(size_t)t * nb + b] = lower_of(lo);
        r.thi[(size_t)t * nb + b] = upper_of(hi);
      }
    }
  }
  // c. NMS and top-k. live[y % R]: the ring slot holds row y (else the row is all "-inf").
  unsigned char live[64];
  const int k = p.k;
  // With a negative threshold a suppressed pixel (value 0) is a candidate: no row may be skipped.
  const bool can_skip = thr_f >= 0.0f;
  for (int y = 0; y < H + pad; ++y) {
    if (y < H) {
      const float m = g.ay.i0 ? fmax2(row_max[g.ay.i0[y]], row_max[g.ay.i1[y]]) : row_max[y];
      live[y % R] = !can_skip || upper_of(m) > thr_f;
      // Every row is projected for the exact block maxima of refine's bounds (cheaper than
      // computing them block by block when a search needs them); the NMS needs only live rows.
      float* row = ring + (y % R) * Wp;
      project_row(hp, g.ax, g.ay, y, W, s.heat_cache, row);
      if (live[y % R]) row_window_max(row, W, pad, ring_max + (y % R) * Wp);
      if (y % kBlock == 0) {
        memcpy(hacc, row, sizeof(float) * W);
      } else {
        for (int x = 0; x < W; ++x) hacc[x] = fmax2(hacc[x], row[x]);
      }
      if (y % kBlock == kBlock - 1 || y == H - 1) {
        const int by = y / kBlock;
        for (int bx = 0; bx < wb; ++bx) {
          const int x0 = bx * kBlock, x1 = std::min(x0 + kBlock, W);
          float bm = hacc[x0];
          for (int x = x0 + 1; x < x1; ++x) bm = fmax2(bm, hacc[x]);
          r.bmax[by * wb + bx] = bm;
        }
      }
    }
    const int yc = y - pad;  // the row whose window is complete
    if (yc < 0 || !live[yc % R]) continue;
    const int y0 = yc - pad < 0 ? 0 : yc - pad, y1 = yc + pad >= H ? H - 1 : yc + pad;
    memcpy(cm, ring_max + (yc % R) * Wp, sizeof(float) * W);
    for (int yy = y0; yy <= y1; ++yy) {
      if (yy == yc || !live[yy % R]) continue;
      const float* o = ring_max + (yy % R) * Wp;
      for (int x = 0; x < W; ++x) cm[x] = fmax2(o[x], cm[x]);
    }
    const float* hrow = ring + (yc % R) * Wp;
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
  // d. super-block bounds from the block bounds.
  const int nsb = g.nsb();
  r.sbmax.assign(nsb, -INFINITY);
  r.stlo.assign((size_t)T * nsb, INFINITY);
  r.sthi.assign((size_t)T * nsb, -INFINITY);
  for (int by = 0; by < g.hb; ++by)
    for (int bx = 0; bx < wb; ++bx) {
      const int b = by * wb + bx, sb = (by / kSuper) * g.wsb + bx / kSuper;
      r.sbmax[sb] = fmax2(r.sbmax[sb], r.bmax[b]);
      for (int t = 0; t < T; ++t) {
        r.stlo[(size_t)t * nsb + sb] = fmin2(r.stlo[(size_t)t * nsb + sb], r.tlo[(size_t)t * nb + b]);
        r.sthi[(size_t)t * nsb + sb] = fmax2(r.sthi[(size_t)t * nsb + sb], r.thi[(size_t)t * nb + b]);
      }
    }
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

// Projected values of output rows [y0, y1) x columns [x0, x1) into out ((y1 - y0, x1 - x0, inner)),
// by row_value and the vertical blend of project_row: the same bits. rows: scratch.
void project_block(const Plane& s, const Axis& ax, const Axis& ay, int y0, int y1, int x0, int x1,
                   std::vector<float>& rows, float* out) {
  const int inner = s.inner, n = (x1 - x0) * inner;
  auto hrow = [&](int row, float* dst) {  // row_value over x0..x1, its branches hoisted
    const float* r = s.base + (size_t)row * s.w * inner;
    if (!ax.i0) {
      memcpy(dst, r + (size_t)x0 * inner, sizeof(float) * n);
      return;
    }
    const int *i0 = ax.i0, *i1 = ax.i1;
    const float *w0 = ax.w0, *w1 = ax.w1;
    if (inner == 1) {
      for (int x = x0; x < x1; ++x) dst[x - x0] = r[i0[x]] * w0[x] + r[i1[x]] * w1[x];
    } else if (inner == 2) {
      for (int x = x0; x < x1; ++x) {
        const float* a = r + 2 * i0[x];
        const float* b = r + 2 * i1[x];
        dst[2 * (x - x0)] = a[0] * w0[x] + b[0] * w1[x];
        dst[2 * (x - x0) + 1] = a[1] * w0[x] + b[1] * w1[x];
      }
    } else {
      for (int x = x0; x < x1; ++x)
        for (int t = 0; t < inner; ++t) dst[(x - x0) * inner + t] = row_value(s, ax, row, x, t);
    }
  };
  if (!ay.i0) {
    for (int y = y0; y < y1; ++y) hrow(y, out + (size_t)(y - y0) * n);
    return;
  }
  const int r0 = ay.i0[y0], r1 = ay.i1[y1 - 1];  // taps are non-decreasing: rows r0..r1
  rows.resize((size_t)(r1 - r0 + 1) * n);
  for (int r = r0; r <= r1; ++r) hrow(r, &rows[(size_t)(r - r0) * n]);
  for (int y = y0; y < y1; ++y) {
    const float* top = &rows[(size_t)(ay.i0[y] - r0) * n];
    const float* bottom = &rows[(size_t)(ay.i1[y] - r0) * n];
    const float a = ay.w0[y], b = ay.w1[y];
    float* o = out + (size_t)(y - y0) * n;
    for (int i = 0; i < n; ++i) o[i] = top[i] * a + bottom[i] * b;
  }
}

struct BlockScratch {
  std::vector<float> rows, bound;
  std::vector<int> order;
  float heat[kBlock * kBlock], tag[kBlock * kBlock * HHR_MAX_T], score[kBlock * kBlock];
};

// The best pixel of block b for centre c, merged into (best, best_i) by argmax_better. Scores are
// refine_score's expression; with finite maps and centre none is NaN, so the block's winner is the
// first maximum in row-major order, which is flat index order.
inline void scan_block(const Plane& hp, const Plane& tp, const Geometry& g, int b, const float* c,
                       BlockScratch& s, float* best, int* best_i) {
  const int by = b / g.wb, bx = b % g.wb, T = g.T;
  const int y0 = by * kBlock, y1 = std::min(y0 + kBlock, g.H);
  const int x0 = bx * kBlock, x1 = std::min(x0 + kBlock, g.W), bw = x1 - x0, n = (y1 - y0) * bw;
  project_block(hp, g.ax, g.ay, y0, y1, x0, x1, s.rows, s.heat);
  project_block(tp, g.ax, g.ay, y0, y1, x0, x1, s.rows, s.tag);
  if (T == 2) {
    const float c0 = c[0], c1 = c[1];
    for (int i = 0; i < n; ++i) {
      const float d0 = s.tag[2 * i] - c0, d1 = s.tag[2 * i + 1] - c1;
      float sq = d0 * d0;
      sq = sq + d1 * d1;
      s.score[i] = s.heat[i] - rintf(sqrtf(sq));
    }
  } else {
    for (int i = 0; i < n; ++i) {
      float d = s.tag[i * T] - c[0];
      float sq = d * d;
      for (int t = 1; t < T; ++t) {
        d = s.tag[i * T + t] - c[t];
        sq = sq + d * d;
      }
      s.score[i] = s.heat[i] - rintf(sqrtf(sq));
    }
  }
  float m = s.score[0];
  for (int i = 1; i < n; ++i) m = fmax2(m, s.score[i]);
  int first = 0;
  while (s.score[first] != m) ++first;
  const int i = (y0 + first / bw) * g.W + x0 + first % bw;
  if (argmax_better(m, i, *best, *best_i)) { *best = m; *best_i = i; }
}

// Bounds of n blocks (or super-blocks): out[b] = mx[b] - rint(sqrt(sum_t gap_t^2)), see below.
// lo0 / hi0: (T, n) tag enclosures.
void block_bounds(const float* mx, const float* lo0, const float* hi0, int n, int T, const float* c,
                  float* out) {
  for (int b = 0; b < n; ++b) {
    float gp = std::max(std::max(lo0[b] - c[0], c[0] - hi0[b]), 0.0f);
    out[b] = gp * gp;
  }
  for (int t = 1; t < T; ++t) {
    const float* lo = lo0 + (size_t)t * n;
    const float* hi = hi0 + (size_t)t * n;
    for (int b = 0; b < n; ++b) {
      float gp = std::max(std::max(lo[b] - c[t], c[t] - hi[b]), 0.0f);
      out[b] = out[b] + gp * gp;
    }
  }
  for (int b = 0; b < n; ++b) out[b] = mx[b] - rintf(sqrtf(out[b]));
}

// The same bound for the one block b of a JointResult.
inline float one_bound(const JointResult& r, int nb, int b, int T, const float* c) {
  float gp = std::max(std::max(r.tlo[b] - c[0], c[0] - r.thi[b]), 0.0f);
  float sq = gp * gp;
  for (int t = 1; t < T; ++t) {
    gp = std::max(std::max(r.tlo[(size_t)t * nb + b] - c[t], c[t] - r.thi[(size_t)t * nb + b]), 0.0f);
    sq = sq + gp * gp;
  }
  return r.bmax[b] - rintf(sqrtf(sq));
}

// Refine's argmax for one (joint, finite centre), equal to the full-map np.argmax of
// heatmap - rint(|tag - centre|) (finite maps). Block bound: bmax - rint(sqrt(sum gap^2)) with
// bmax the block's heatmap maximum, [lo_t, hi_t] an enclosure of its tags and
// gap_t = max(lo_t - c_t, c_t - hi_t, 0), in float32 by the same operations as the score: IEEE
// rounding is monotone, so |fl(tag - c)| >= gap, the squares, their sum, sqrt and rint keep that
// order, and the bound is >= every score of the block, exactly (no slack). A super-block (4 x 4
// blocks, the maximum of their maxima, the union of their enclosures) bounds its blocks the same
// way. Blocks whose bound is below a score already reached cannot hold the maximum nor a tie.
// cand_heat (count), cand_tag (count, T): the projected values at the joint's candidates.
int refine_argmax(const Plane& hp, const Plane& tp, const Geometry& g, const JointResult& r,
                  const float* cand_heat, const float* cand_tag, const float* c, BlockScratch& bs) {
  const int nb = g.nb(), nsb = g.nsb(), T = g.T;
  bs.bound.resize((size_t)nb + nsb);
  float* bd = bs.bound.data();  // bounds of the blocks looked at
  float* sbd = bd + nb;         // bounds of the super-blocks
  block_bounds(r.sbmax.data(), r.stlo.data(), r.sthi.data(), nsb, T, c, sbd);
  float best = 0.0f;
  int best_i = -1;
  // The joint's NMS candidates are pixels too, and often the winner: their exact scores start the
  // search high, so fewer blocks pass the bound.
  for (int q = 0; q < r.count; ++q) {
    const int i = r.idx[q];
    float diff = cand_tag[q * T] - c[0];
    float sq = diff * diff;
    for (int t = 1; t < T; ++t) {
      diff = cand_tag[q * T + t] - c[t];
      sq = sq + diff * diff;
    }
    const float sc = cand_heat[q] - rintf(sqrtf(sq));
    if (argmax_better(sc, i, best, best_i)) { best = sc; best_i = i; }
  }
  // Then the block of highest bound in the super-block of highest bound.
  const float top_super = max_reduce(sbd, nsb);
  int ts = 0;
  while (ts < nsb - 1 && sbd[ts] != top_super) ++ts;
  int top = -1;
  {
    const int sy = ts / g.wsb, sx = ts % g.wsb;
    for (int by = sy * kSuper; by < std::min((sy + 1) * kSuper, g.hb); ++by)
      for (int bx = sx * kSuper; bx < std::min((sx + 1) * kSuper, g.wb); ++bx) {
        const int b = by * g.wb + bx;
        bd[b] = one_bound(r, nb, b, T, c);
        if (top < 0 || bd[b] > bd[top]) top = b;
      }
  }
  scan_block(hp, tp, g, top, c, bs, &best, &best_i);
  // The other blocks that may still win (of the super-blocks that may), highest bound first: once
  // a bound is below the best score reached, so are all after it.
  bs.order.clear();
  for (int sb = 0; sb < nsb; ++sb) {
    if (sbd[sb] < best) continue;
    const int sy = sb / g.wsb, sx = sb % g.wsb;
    for (int by = sy * kSuper; by < std::min((sy + 1) * kSuper, g.hb); ++by)
      for (int bx = sx * kSuper; bx < std::min((sx + 1) * kSuper, g.wb); ++bx) {
        const int b = by * g.wb + bx;
        if (b == top) continue;
        bd[b] = one_bound(r, nb, b, T, c);
        if (!(bd[b] < best)) bs.order.push_back(b);
      }
  }
#ifdef HHR_COUNT
  g_ord += (long)bs.order.size();
#endif
  // A heap, not a sort: the search usually ends after a few blocks of many.
  auto lower = [bd](int a, int b) { return bd[a] < bd[b]; };
  std::make_heap(bs.order.begin(), bs.order.end(), lower);
  int scanned = 1;
  for (auto end = bs.order.end(); end != bs.order.begin(); --end) {
    std::pop_heap(bs.order.begin(), end, lower);
    const int b = *(end - 1);
    if (bd[b] < best) break;
    scan_block(hp, tp, g, b, c, bs, &best, &best_i);
    ++scanned;
  }
#ifdef HHR_COUNT
  g_scanned += scanned; g_searches += 1;
#else
  (void)scanned;
#endif
  return best_i;
}

// Step 3 for one (image, joint): every person lacking joint j (value exactly 0).
// centres (count, T), has (count): finite mean tag (refine_people's `finite`).
void refine_joint(const Geometry& g, const JointResult& r, const float* heat_j, const float* tags_j,
                  int j, const float* centres, const unsigned char* has, const unsigned char* missing,
                  ImageOut& o, BlockScratch& bound) {
  const int J = g.J, T = g.T, R = 3 + T, W = g.W;
  const Plane hp = {heat_j, g.h, g.w, 1}, tp = {tags_j, g.h, g.w, T};
  // The candidates' projected values, shared by every person's search of this joint.
  float cand_heat[HHR_MAX_N], cand_tag[HHR_MAX_N * HHR_MAX_T];
  for (int c = 0; c < r.count; ++c) {
    const int y = r.idx[c] / W, x = r.idx[c] % W;
    cand_heat[c] = sample(hp, g.ax, g.ay, y, x, 0);
    for (int t = 0; t < T; ++t) cand_tag[c * T + t] = sample(tp, g.ax, g.ay, y, x, t);
  }
  for (int q = 0; q < o.count; ++q) {
    if (!missing[q * J + j]) continue;
    // Official argmax over all-NaN scores (a person without a finite tag): pixel 0.
    const int i = has[q] ? refine_argmax(hp, tp, g, r, cand_heat, cand_tag, centres + q * T, bound) : 0;
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

// CPU seconds of the calling thread (stage times: with one thread, the stages' own CPU time even on
// a loaded machine).
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
// flags: bit 0 adjust, bit 1 refine. threads: 0 = all hardware threads. stage_s: null, or 3
// doubles that get the calling thread's CPU seconds in steps 1 (projection, NMS, top-k), 2 (grouping,
// adjust, scores) and 3 (refine): the stages' CPU time when threads is 1.
#ifdef HHR_COUNT
extern "C" long hhr_count(int which) { return which == 1 ? g_searches : which == 2 ? g_ord : g_scanned; }
#endif
extern "C" int hhr_cpu_decode(const float* heatmaps, const float* tags, int N, int J, int h, int w, int T,
                              int H, int W, const int* ix0, const int* ix1, const float* wx0,
                              const float* wx1, const int* iy0, const int* iy1, const float* wy0,
                              const float* wy1, int k, int max_people, double det_thr, double tag_thr,
                              int use_val, int ignore_too_much, int nms_padding, const int* joint_order,
                              int flags, int threads, float* out_people, float* out_scores, int* out_count,
                              int* out_status, double* stage_s) {
  const double t0 = thread_seconds();
  if (J > kMaxJ || T > HHR_MAX_T || T < 1 || k > HHR_MAX_N || max_people > HHR_MAX_N || k < 1 ||
      2 * nms_padding + 1 > 64)
    return -1;
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  DecodeParams p = {J, k, T, H, W, max_people, det_thr, tag_thr, use_val, ignore_too_much, nms_padding, J * k};
  Geometry g;
  g.J = J; g.T = T; g.h = h; g.w = w; g.H = H; g.W = W;
  g.hb = (H + kBlock - 1) / kBlock;
  g.wb = (W + kBlock - 1) / kBlock;
  g.hsb = (g.hb + kSuper - 1) / kSuper;
  g.wsb = (g.wb + kSuper - 1) / kSuper;
  g.ax.i0 = ix0; g.ax.i1 = ix1; g.ax.w0 = wx0; g.ax.w1 = wx1;
  g.ay.i0 = iy0; g.ay.i1 = iy1; g.ay.w0 = wy0; g.ay.w1 = wy1;
  detect_up2(g.ax, w, W);
  g.bcol0.resize(g.wb); g.bcol1.resize(g.wb); g.brow0.resize(g.hb); g.brow1.resize(g.hb);
  for (int b = 0; b < g.wb; ++b) input_range(g.ax, b * kBlock, std::min((b + 1) * kBlock, W), &g.bcol0[b], &g.bcol1[b]);
  for (int b = 0; b < g.hb; ++b) input_range(g.ay, b * kBlock, std::min((b + 1) * kBlock, H), &g.brow0[b], &g.brow1[b]);
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
  const double t1 = thread_seconds();
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
  const double t2 = thread_seconds();
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
    std::vector<BlockScratch> bounds(threads);
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
  if (stage_s) {
    stage_s[0] = t1 - t0;
    stage_s[1] = t2 - t1;
    stage_s[2] = thread_seconds() - t2;
  }
  return 0;
}
