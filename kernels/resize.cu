// Bilinear resize with PyTorch's coordinates (align_corners=False), for the aggregation steps the
// engine does not do (stride-2 maps -> input size; multi-scale). Mirrors runtime/aggregate.py's
// numpy path: the taps (indices, float32 weights) come from the host (aggregate._linear_taps), and
// the sums are nested as there: width first, w0 * a + w1 * b, each product and sum rounded.
//
// src (C, h, w, inner) float32 -> dst (C, H, W, inner); inner = 1 for heatmaps, T for tags.
// Launch: grid (ceil(W / 16), ceil(H / 16), C), block (16, 16).
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
  const float* plane = src + (size_t)c * h * w * inner;
  for (int t = 0; t < inner; ++t) {
    const float a0 = plane[((size_t)iy0[y] * w + ix0[x]) * inner + t];
    const float a1 = plane[((size_t)iy0[y] * w + ix1[x]) * inner + t];
    const float b0 = plane[((size_t)iy1[y] * w + ix0[x]) * inner + t];
    const float b1 = plane[((size_t)iy1[y] * w + ix1[x]) * inner + t];
    const float top = __fadd_rn(__fmul_rn(a0, wx0[x]), __fmul_rn(a1, wx1[x]));
    const float bottom = __fadd_rn(__fmul_rn(b0, wx0[x]), __fmul_rn(b1, wx1[x]));
    dst[(((size_t)c * H + y) * W + x) * inner + t] = __fadd_rn(__fmul_rn(top, wy0[y]), __fmul_rn(bottom, wy1[y]));
  }
}
