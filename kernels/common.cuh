// Shared definitions of the decode kernels.
//
// Every function marked HD compiles both as CUDA device code (NVRTC / nvcc) and as plain C++
// (g++), so the exact arithmetic of the kernels is also tested on machines without a GPU
// (kernels/host_harness.cpp, tests/kernels/test_host.py) against the NumPy decode in
// decode/, which is the ground truth. Float rules that keep the results bit-exact:
//   - compile without FMA contraction (NVRTC --fmad=false, g++ -ffp-contract=off): NumPy rounds
//     every multiply and add on its own;
//   - float32 where NumPy computes in float32, double where it computes in float64;
//   - rint() (round half to even) wherever NumPy calls np.round.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define HD __host__ __device__
#if defined(__CUDACC_RTC__)  // NVRTC has no math.h: its constants, from the bit patterns
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)
#endif
#else
#define HD
#include <math.h>
#include <stdint.h>
#endif

#ifndef HHR_MAX_N
#define HHR_MAX_N 32  // largest assignment matrix side: max(candidates, people) <= top-k <= 32
#endif
#ifndef HHR_MAX_T
#define HHR_MAX_T 2  // tag channels: 2 with the flip test, 1 without
#endif

namespace hhr {

struct DecodeParams {
  int num_joints;       // J
  int k;                // top-k per joint (official 30), <= HHR_MAX_N
  int tag_dim;          // T
  int height, width;    // heatmap size, pixels
  int max_people;       // people considered as columns of the matching (official 30)
  double detection_threshold;  // candidate when double(value) > this
  double tag_threshold;        // match kept when double distance < this
  int use_detection_val;       // cost = rint(dist) * 100 - value (else dist)
  int ignore_too_much;
  int nms_padding;             // window radius (official 2: a 5 x 5 window)
  int max_out_people;          // capacity of the output people buffer (J * k always suffices)
};

// Error flags written by the kernels (the host falls back to the NumPy decode and says why).
enum Status : int {
  kOk = 0,
  kTooManyPeaks = 1,      // more NMS peaks above threshold than the candidate buffer holds
  kTooManyPeople = 2,     // output buffer smaller than the people found
  kUnsolvable = 4,        // Munkres step 6 could not change the matrix (the package raises)
};

HD inline float window_max(const float* map, int H, int W, int y, int x, int pad) {
  float m = -INFINITY;
  for (int yy = y - pad; yy <= y + pad; ++yy) {
    if (yy < 0 || yy >= H) continue;
    for (int xx = x - pad; xx <= x + pad; ++xx) {
      if (xx < 0 || xx >= W) continue;
      float v = map[yy * W + xx];
      m = v > m ? v : m;
    }
  }
  return m;
}

// Official NMS value at one pixel: det * (maxpool(det) == det) (decode/nms.py).
HD inline float nms_value(const float* map, int H, int W, int y, int x, int pad) {
  float h = map[y * W + x];
  return h * (window_max(map, H, W, y, x, pad) == h ? 1.0f : 0.0f);
}

// True when candidate (va, ia) comes before (vb, ib) in top-k order: value descending, then flat
// index ascending (decode/topk.py).
HD inline bool topk_before(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

// np.mean of n float32 values laid out contiguously (a (n, 1) stack along axis 0, or a row):
// NumPy's pairwise summation (8 partial sums from n >= 8), then one float32 division. Checked
// against np.mean on 20,000 random stacks (n = 1..18): identical bits.
HD inline float mean_pairwise(const float* a, int n, int stride) {
  float res;
  if (n < 8) {
    res = 0.0f;
    for (int i = 0; i < n; ++i) res = res + a[i * stride];
  } else {
    float r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j * stride];
    int i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] = r[j] + a[(i + j) * stride];
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res = res + a[i * stride];
  }
  return res / (float)n;
}

// np.mean of one column of an (n, T >= 2) float32 stack along axis 0: NumPy adds row by row.
HD inline float mean_rowwise(const float* a, int n, int stride) {
  float s = a[0];
  for (int i = 1; i < n; ++i) s = s + a[i * stride];
  return s / (float)n;
}

// Mean tag of an (n, T) float32 stack (row stride T) into out[T], as np.mean(stack, axis=0).
HD inline void mean_tags(const float* stack, int n, int T, float* out) {
  for (int c = 0; c < T; ++c)
    out[c] = T == 1 ? mean_pairwise(stack + c, n, T) : mean_rowwise(stack + c, n, T);
}

// Official quarter-pixel offset along x (dx) and y (dy) at integer pixel (x, y) of map j.
HD inline void quarter_offsets(const float* map, int H, int W, int x, int y, double* dx, double* dy) {
  float right = map[y * W + (x + 1 < W ? x + 1 : W - 1)];
  float left = map[y * W + (x - 1 > 0 ? x - 1 : 0)];
  float down = map[(y + 1 < H ? y + 1 : H - 1) * W + x];
  float up = map[(y - 1 > 0 ? y - 1 : 0) * W + x];
  *dx = right > left ? 0.25 : -0.25;
  *dy = down > up ? 0.25 : -0.25;
}

}  // namespace hhr
