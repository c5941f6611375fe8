// Bilinear resize with PyTorch's coordinates (align_corners=False), one output value.
// Mirrors decode/aggregate.py resize_bilinear(backend="numpy"): taps (indices, float32 weights)
// from aggregate._linear_taps, width first (w0 * a + w1 * b per row), then height, every product
// and sum rounded to float32 on its own (compile without FMA contraction: --fmad=false, g++
// -ffp-contract=off). HD: the host harness checks it bit for bit against the NumPy path.
#pragma once
#include "common.cuh"

namespace hhr {

// Taps of a separable bilinear resize: output column x reads input columns ix0[x], ix1[x] with
// weights wx0[x], wx1[x]; rows likewise.
struct ResizeTaps {
  const int* ix0;
  const int* ix1;
  const float* wx0;
  const float* wx1;
  const int* iy0;
  const int* iy1;
  const float* wy0;
  const float* wy1;
};

// Value (y, x, channel t) of one resized plane. plane: (h, w, inner) float32 (inner = 1 for
// heatmaps, T for channels-last tags).
HD inline float resize_value(const float* plane, int w, int inner, const ResizeTaps& tp, int y, int x, int t) {
  const float a0 = plane[((size_t)tp.iy0[y] * w + tp.ix0[x]) * inner + t];
  const float a1 = plane[((size_t)tp.iy0[y] * w + tp.ix1[x]) * inner + t];
  const float b0 = plane[((size_t)tp.iy1[y] * w + tp.ix0[x]) * inner + t];
  const float b1 = plane[((size_t)tp.iy1[y] * w + tp.ix1[x]) * inner + t];
  const float top = a0 * tp.wx0[x] + a1 * tp.wx1[x];
  const float bottom = b0 * tp.wx0[x] + b1 * tp.wx1[x];
  return top * tp.wy0[y] + bottom * tp.wy1[y];
}

}  // namespace hhr
