// Bilinear resize with PyTorch's coordinates (align_corners=False), for the aggregation steps the
// engine does not do (stride-2 maps -> input size; multi-scale). Mirrors decode/aggregate.py
// resize_bilinear(backend="numpy"); the arithmetic is hhr::resize_value (resize.cuh), the taps
// (indices int32, weights float32) come from the host (aggregate._linear_taps).
//
// src (C, h, w, inner) float32 -> dst (C, H, W, inner) float32; inner = 1 for heatmaps (C = N * J
// planes), T for channels-last tags. Units: pixels of the respective grids.
// Launch: grid (ceil(W / 16), ceil(H / 16), C), block (16, 16). Compile with --fmad=false.
#include "resize.cuh"

extern "C" __global__ void hhr_resize_bilinear(const float* __restrict__ src, int h, int w, int inner,
                                               float* dst, int H, int W, const int* __restrict__ ix0,
                                               const int* __restrict__ ix1, const float* __restrict__ wx0,
                                               const float* __restrict__ wx1, const int* __restrict__ iy0,
                                               const int* __restrict__ iy1, const float* __restrict__ wy0,
                                               const float* __restrict__ wy1) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int c = blockIdx.z;
  if (x >= W || y >= H) return;
  const hhr::ResizeTaps taps = {ix0, ix1, wx0, wx1, iy0, iy1, wy0, wy1};
  const float* plane = src + (size_t)c * h * w * inner;
  for (int t = 0; t < inner; ++t)
    dst[(((size_t)c * H + y) * W + x) * inner + t] = hhr::resize_value(plane, w, inner, taps, y, x, t);
}
