// Pre-processing from a uint8 BGR frame in one pass: affine warp (bilinear, constant border 0),
// ImageNet normalisation through the runtime's lookup table, HWC -> CHW, BGR -> RGB planes.
// Mirrors runtime/preprocess.resize_align + normalize, i.e. cv2.warpAffine(INTER_LINEAR) on uint8
// with OpenCV's fixed-point arithmetic (coordinates in 1/32 pixel, 15-bit weights), then the
// float32 table lookup: hhr::warp_normalize_pixel (warp.cuh), which the host harness checks.
//
// Launch: grid (ceil(w / 16), ceil(h / 16)), block (16, 16).
#include "warp.cuh"

// src (src_h, src_w, 3) uint8 with row pitch src_pitch bytes; minv: the inverse 2x3 matrix (output
// pixel -> source pixel, as cv2 inverts it: hhr::invert_affine); lut (256, 3) float32: normalised
// value of level v in input channel k; plane_channel[c]: input channel feeding output plane c
// (2, 1, 0 for BGR input); dst (3, h, w) float32 (one image of the network's NCHW input).
extern "C" __global__ void hhr_warp_normalize(const unsigned char* __restrict__ src, int src_h, int src_w,
                                              int src_pitch, hhr::Affine minv, const float* __restrict__ lut,
                                              int3 plane_channel, float* dst, int h, int w) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x >= w || y >= h) return;
  const int order[3] = {plane_channel.x, plane_channel.y, plane_channel.z};
  float v[3];
  hhr::warp_normalize_pixel(src, src_h, src_w, src_pitch, minv, lut, order, x, y, v);
  for (int c = 0; c < 3; ++c) dst[((size_t)c * h + y) * w + x] = v[c];
}
