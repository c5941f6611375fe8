// The kernels' arithmetic compiled as plain C++ (g++ -ffp-contract=off), so machines without a GPU
// test it against the NumPy decode and OpenCV (tests/kernels/test_host.py). The serial loops here
// do what the GPU kernels in decode.cu / preprocess.cu do in parallel, with the same HD functions.
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "group.cuh"
#include "munkres.cuh"
#include "refine.cuh"
#include "resize.cuh"
#include "warp.cuh"

using namespace hhr;

// One image. heatmaps (J, H, W), tags (J, H, W, T); out_people (P, J, 3 + T) with P = J * k;
// out_scores (P). flags: bit 0 adjust, bit 1 refine. Returns the number of people, or -status.
extern "C" int hhr_decode_host(const float* heatmaps, const float* tags, int J, int H, int W, int T, int k,
                               int max_people, double det_thr, double tag_thr, int use_val, int ignore_too_much,
                               int nms_padding, const int* joint_order, int flags, float* out_people,
                               float* out_scores) {
  DecodeParams p = {J, k, T, H, W, max_people, det_thr, tag_thr, use_val, ignore_too_much, nms_padding, J * k};
  const size_t plane = (size_t)H * W;
  int* cand_xy = (int*)calloc((size_t)J * k * 2, sizeof(int));
  float* cand_val = (float*)calloc((size_t)J * k, sizeof(float));
  float* cand_tag = (float*)calloc((size_t)J * k * T, sizeof(float));
  int* cand_count = (int*)calloc(J, sizeof(int));
  float* peak_val = (float*)malloc(plane * sizeof(float));
  int* peak_idx = (int*)malloc(plane * sizeof(int));
  for (int j = 0; j < J; ++j) {  // hhr_nms_topk, serially
    const float* map = heatmaps + j * plane;
    int total = 0;
    for (int i = 0; i < (int)plane; ++i) {
      float v = nms_value(map, H, W, i / W, i % W, nms_padding);
      if ((double)v > det_thr) { peak_val[total] = v; peak_idx[total] = i; ++total; }
    }
    int kk = total < k ? total : k;
    for (int r = 0; r < kk; ++r) {
      int bs = -1;
      for (int s = 0; s < total; ++s)
        if (peak_idx[s] >= 0 && (bs < 0 || topk_before(peak_val[s], peak_idx[s], peak_val[bs], peak_idx[bs]))) bs = s;
      int i = peak_idx[bs];
      cand_xy[(j * k + r) * 2] = i % W;
      cand_xy[(j * k + r) * 2 + 1] = i / W;
      cand_val[j * k + r] = peak_val[bs];
      for (int c = 0; c < T; ++c) cand_tag[(j * k + r) * T + c] = tags[(j * plane + i) * T + c];
      peak_idx[bs] = -1;
    }
    cand_count[j] = kk;
  }
  GroupWork* work = (GroupWork*)calloc(1, sizeof(GroupWork));
  const int P = J * k;
  float* keys = (float*)calloc(P, sizeof(float));
  float* tag_list = (float*)calloc((size_t)P * (J + 1) * T, sizeof(float));
  int* tag_count = (int*)calloc(P, sizeof(int));
  PeopleBuffers b = {out_people, keys, tag_list, tag_count};
  int status = 0;
  int count = group_image(p, cand_xy, cand_val, cand_tag, cand_count, joint_order, b, *work, &status);
  for (int q = 0; q < count; ++q) {
    if (flags & 1) adjust_person(p, out_people, q, heatmaps);
    out_scores[q] = person_score(p, out_people, q);
  }
  if (flags & 2) {
    float centre[HHR_MAX_T], stack[32 * HHR_MAX_T];
    for (int q = 0; q < count; ++q) {
      bool has_tag = refine_person_tag(p, out_people, q, tags, stack, centre);
      unsigned char missing[32];
      for (int j = 0; j < J; ++j) missing[j] = out_people[(q * J + j) * (3 + T) + 2] == 0.0f;
      for (int j = 0; j < J; ++j) {
        if (!missing[j]) continue;
        float best = 0.0f;
        int best_i = -1;
        if (has_tag) refine_search(p, heatmaps, tags, j, centre, 0, (int)plane, 1, &best, &best_i);
        refine_fill(p, out_people, q, j, has_tag ? best_i : 0, heatmaps);
      }
    }
  }
  free(cand_xy); free(cand_val); free(cand_tag); free(cand_count); free(peak_val); free(peak_idx);
  free(work); free(keys); free(tag_list); free(tag_count);
  return status ? -status : count;
}

// cv2.warpAffine(src, forward, (w, h), INTER_LINEAR, BORDER_CONSTANT 0) of a (src_h, src_w, 3)
// uint8 image into dst (h, w, 3).
extern "C" void hhr_warp_host(const unsigned char* src, int src_h, int src_w, const double* forward,
                              unsigned char* dst, int h, int w) {
  Affine f;
  memcpy(f.m, forward, sizeof(f.m));
  Affine inv = invert_affine(f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) warp_pixel_bgr(src, src_h, src_w, src_w * 3, inv, x, y, dst + ((size_t)y * w + x) * 3);
}

// hhr_warp_normalize (preprocess.cu) serially: dst (3, h, w) float32 from a (src_h, src_w, 3) uint8
// image, the forward image -> input matrix, lut (256, 3) float32 and plane_channel[3].
extern "C" void hhr_warp_normalize_host(const unsigned char* src, int src_h, int src_w, const double* forward,
                                        const float* lut, const int* plane_channel, float* dst, int h, int w) {
  Affine f;
  memcpy(f.m, forward, sizeof(f.m));
  Affine inv = invert_affine(f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float v[3];
      warp_normalize_pixel(src, src_h, src_w, src_w * 3, inv, lut, plane_channel, x, y, v);
      for (int c = 0; c < 3; ++c) dst[((size_t)c * h + y) * w + x] = v[c];
    }
}

// hhr_resize_bilinear (resize.cu) serially: src (C, h, w, inner) -> dst (C, H, W, inner).
extern "C" void hhr_resize_host(const float* src, int C, int h, int w, int inner, float* dst, int H, int W,
                                const int* ix0, const int* ix1, const float* wx0, const float* wx1,
                                const int* iy0, const int* iy1, const float* wy0, const float* wy1) {
  const ResizeTaps taps = {ix0, ix1, wx0, wx1, iy0, iy1, wy0, wy1};
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        for (int t = 0; t < inner; ++t)
          dst[(((size_t)c * H + y) * W + x) * inner + t] =
              resize_value(src + (size_t)c * h * w * inner, w, inner, taps, y, x, t);
}

// hhr::invert_affine of a forward (2, 3) matrix into inverse[6] (the GPU wrapper computes it in Python).
extern "C" void hhr_invert_affine_host(const double* forward, double* inverse) {
  Affine f;
  memcpy(f.m, forward, sizeof(f.m));
  Affine inv = invert_affine(f);
  memcpy(inverse, inv.m, sizeof(inv.m));
}

// Layout checks for the Python side (kernels/decode_gpu.py mirrors these structs).
extern "C" int hhr_sizeof_group_work() { return (int)sizeof(GroupWork); }
extern "C" int hhr_sizeof_decode_params() { return (int)sizeof(DecodeParams); }
