// OpenCV's warpAffine (INTER_LINEAR, BORDER_CONSTANT 0) on uint8, in its fixed-point form:
// positions rounded to 1/32 pixel (AB_BITS 10 -> INTER_BITS 5), bilinear weights in 1/32768
// (INTER_REMAP_COEF_BITS 15), round to nearest. HD: the host harness checks it against cv2.
#pragma once
#include "common.cuh"

namespace hhr {

struct Affine {
  double m[6];  // [a b c; d e f]: (x, y) -> (a x + b y + c, d x + e y + f)
};

// cv2's inversion of the forward matrix it is given (imgwarp.cpp, without WARP_INVERSE_MAP).
HD inline Affine invert_affine(const Affine& f) {
  const double* M = f.m;
  double D = M[0] * M[4] - M[1] * M[3];
  D = D != 0.0 ? 1.0 / D : 0.0;
  const double A11 = M[4] * D, A22 = M[0] * D, A12 = -M[1] * D, A21 = -M[3] * D;
  const double b1 = -A11 * M[2] - A12 * M[5];
  const double b2 = -A21 * M[2] - A22 * M[5];
  Affine r = {{A11, A12, b1, A21, A22, b2}};
  return r;
}

HD inline int round_to_int(double v) { return (int)rint(v); }  // cvRound: half to even

HD inline void warp_pixel_bgr(const unsigned char* src, int src_h, int src_w, int src_pitch, const Affine& minv,
                              int x, int y, unsigned char out[3]) {
  const int AB_BITS = 10, AB_SCALE = 1 << AB_BITS, INTER_BITS = 5, INTER_TAB = 1 << INTER_BITS;
  const int round_delta = AB_SCALE / INTER_TAB / 2;
  const double* M = minv.m;
  const int adelta = round_to_int(M[0] * x * AB_SCALE), bdelta = round_to_int(M[3] * x * AB_SCALE);
  const int X0 = round_to_int((M[1] * y + M[2]) * AB_SCALE) + round_delta;
  const int Y0 = round_to_int((M[4] * y + M[5]) * AB_SCALE) + round_delta;
  const int X = (X0 + adelta) >> (AB_BITS - INTER_BITS), Y = (Y0 + bdelta) >> (AB_BITS - INTER_BITS);
  const int sx = X >> INTER_BITS, sy = Y >> INTER_BITS;
  const int fx = X & (INTER_TAB - 1), fy = Y & (INTER_TAB - 1);
  // (1 - a)(1 - b) * 32768 with a = fx / 32, b = fy / 32: exact integers.
  const int w00 = (INTER_TAB - fx) * (INTER_TAB - fy) * 32, w01 = fx * (INTER_TAB - fy) * 32;
  const int w10 = (INTER_TAB - fx) * fy * 32, w11 = fx * fy * 32;
  for (int c = 0; c < 3; ++c) {
    int v[4];
    for (int t = 0; t < 4; ++t) {
      const int xx = sx + (t & 1), yy = sy + (t >> 1);
      v[t] = (xx >= 0 && yy >= 0 && xx < src_w && yy < src_h) ? src[(size_t)yy * src_pitch + xx * 3 + c] : 0;
    }
    int s = (v[0] * w00 + v[1] * w01 + v[2] * w10 + v[3] * w11 + (1 << 14)) >> 15;
    out[c] = (unsigned char)(s < 0 ? 0 : s > 255 ? 255 : s);
  }
}

// One output pixel of the fused pre-processing: warp (above), then ImageNet normalisation through
// the runtime's float32 table and the BGR -> RGB plane order (runtime/preprocess.normalize):
// out[c] = lut[px[k] * 3 + k] with k = plane_channel[c]. lut (256, 3) float32: normalised value of
// level v in input channel k (preprocess._normalize_lut). src (src_h, src_w, 3) uint8, row pitch in
// bytes; minv: the inverse matrix (invert_affine of the forward image -> input matrix).
HD inline void warp_normalize_pixel(const unsigned char* src, int src_h, int src_w, int src_pitch,
                                    const Affine& minv, const float* lut, const int plane_channel[3],
                                    int x, int y, float out[3]) {
  unsigned char px[3];
  warp_pixel_bgr(src, src_h, src_w, src_pitch, minv, x, y, px);
  for (int c = 0; c < 3; ++c) {
    const int k = plane_channel[c];
    out[c] = lut[px[k] * 3 + k];
  }
}

}  // namespace hhr
