// The decode on the GPU: fused NMS + threshold + top-k + tag gather, grouping (+ adjust, scores),
// refine. Mirrors decode/ (the NumPy decode is the ground truth: tests/kernels/).
//
// Launch (N images, J joints, P = params.max_out_people, see kernels/decode_gpu.py):
//   hhr_nms_topk  grid (J, N), block 256         -> candidates per joint
//   hhr_group     grid N, block 32               -> people (adjusted), scores, count
//   hhr_refine    grid (P, N), block 256         -> missing joints filled
// Compile without FMA contraction (--fmad=false): see common.cuh.
#include "common.cuh"
#include "group.cuh"
#include "munkres.cuh"
#include "refine.cuh"

#ifndef HHR_PEAK_CAPACITY
#define HHR_PEAK_CAPACITY 2048  // NMS peaks above threshold per joint map kept for the top-k
#endif

using namespace hhr;

// heatmaps (N, J, H, W) float32; tags (N, J, H, W, T) float32.
// Out: cand_xy (N, J, k, 2) int, cand_val (N, J, k), cand_tag (N, J, k, T), cand_count (N, J):
// the peaks with double(value) > threshold, best first (value descending, then flat index), at
// most k. status (N): kTooManyPeaks when a map has more peaks than HHR_PEAK_CAPACITY.
extern "C" __global__ void hhr_nms_topk(const float* __restrict__ heatmaps, const float* __restrict__ tags,
                                        DecodeParams p, int* cand_xy, float* cand_val, float* cand_tag,
                                        int* cand_count, int* status) {
  __shared__ float peak_val[HHR_PEAK_CAPACITY];
  __shared__ int peak_idx[HHR_PEAK_CAPACITY];
  __shared__ int num_peaks;
  __shared__ float red_val[256];
  __shared__ int red_idx[256];
  __shared__ int red_slot[256];
  const int j = blockIdx.x, n = blockIdx.y, J = p.num_joints, H = p.height, W = p.width, T = p.tag_dim;
  const size_t plane = (size_t)H * W;
  const float* map = heatmaps + ((size_t)n * J + j) * plane;
  if (threadIdx.x == 0) num_peaks = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < H * W; i += blockDim.x) {
    const float v = nms_value(map, H, W, i / W, i % W, p.nms_padding);
    if ((double)v > p.detection_threshold) {
      const int slot = atomicAdd(&num_peaks, 1);
      if (slot < HHR_PEAK_CAPACITY) { peak_val[slot] = v; peak_idx[slot] = i; }
    }
  }
  __syncthreads();
  const int total = num_peaks;
  if (total > HHR_PEAK_CAPACITY) {
    if (threadIdx.x == 0) { atomicOr(status + n, kTooManyPeaks); cand_count[n * J + j] = 0; }
    return;
  }
  const int k = total < p.k ? total : p.k;
  // k rounds of a block-wide selection of the best remaining peak (k <= 32: cheap).
  for (int r = 0; r < k; ++r) {
    float bv = 0.0f; int bi = -1, bs = -1;
    for (int s = threadIdx.x; s < total; s += blockDim.x) {
      if (peak_idx[s] < 0) continue;  // taken in an earlier round
      if (bi < 0 || topk_before(peak_val[s], peak_idx[s], bv, bi)) { bv = peak_val[s]; bi = peak_idx[s]; bs = s; }
    }
    red_val[threadIdx.x] = bv; red_idx[threadIdx.x] = bi; red_slot[threadIdx.x] = bs;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const int o = threadIdx.x + half;
        if (red_idx[o] >= 0 && (red_idx[threadIdx.x] < 0 ||
            topk_before(red_val[o], red_idx[o], red_val[threadIdx.x], red_idx[threadIdx.x]))) {
          red_val[threadIdx.x] = red_val[o]; red_idx[threadIdx.x] = red_idx[o]; red_slot[threadIdx.x] = red_slot[o];
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const int i = red_idx[0];
      const size_t c = ((size_t)n * J + j) * p.k + r;
      cand_xy[c * 2] = i % W;
      cand_xy[c * 2 + 1] = i / W;
      cand_val[c] = red_val[0];
      const float* t = tags + (((size_t)n * J + j) * plane + i) * T;  // tag gather
      for (int ch = 0; ch < T; ++ch) cand_tag[c * T + ch] = t[ch];
      peak_idx[red_slot[0]] = -1;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) cand_count[n * J + j] = k;
}

// One block per image; thread 0 groups (serial by design, see group.cuh), then the block adjusts
// and scores the people in parallel.
// work (N) GroupWork; people (N, P, J, 3 + T); keys (N, P); tag_list (N, P, J + 1, T);
// tag_count (N, P); out: num_people (N), scores (N, P), status (N).
extern "C" __global__ void hhr_group(const float* __restrict__ heatmaps, const int* cand_xy,
                                     const float* cand_val, const float* cand_tag, const int* cand_count,
                                     const int* joint_order, DecodeParams p, GroupWork* work, float* people,
                                     float* keys, float* tag_list, int* tag_count, int* num_people,
                                     float* scores, int* status) {
  const int n = blockIdx.x, J = p.num_joints, K = p.k, T = p.tag_dim, P = p.max_out_people;
  const size_t plane = (size_t)p.height * p.width;
  float* my_people = people + (size_t)n * P * J * (3 + T);
  __shared__ int count;
  if (threadIdx.x == 0) {
    PeopleBuffers b{my_people, keys + (size_t)n * P, tag_list + (size_t)n * P * (J + 1) * T,
                    tag_count + (size_t)n * P};
    int st = 0;
    count = group_image(p, cand_xy + (size_t)n * J * K * 2, cand_val + (size_t)n * J * K,
                        cand_tag + (size_t)n * J * K * T, cand_count + n * J, joint_order, b, work[n], &st);
    num_people[n] = count;
    if (st) atomicOr(status + n, st);
  }
  __syncthreads();
  for (int q = threadIdx.x; q < count; q += blockDim.x) {
    adjust_person(p, my_people, q, heatmaps + (size_t)n * J * plane);
    scores[(size_t)n * P + q] = person_score(p, my_people, q);
  }
}

// One block per (person slot, image): fills the person's joints of value 0 (refine).
extern "C" __global__ void hhr_refine(const float* __restrict__ heatmaps, const float* __restrict__ tags,
                                      DecodeParams p, float* people, const int* num_people) {
  const int q = blockIdx.x, n = blockIdx.y, J = p.num_joints, T = p.tag_dim, P = p.max_out_people;
  if (q >= num_people[n]) return;
  const size_t plane = (size_t)p.height * p.width;
  const float* hm = heatmaps + (size_t)n * J * plane;
  const float* tg = tags + (size_t)n * J * plane * T;
  float* my_people = people + (size_t)n * P * J * (3 + T);
  __shared__ float centre[HHR_MAX_T];
  __shared__ float stack[32 * HHR_MAX_T];
  __shared__ int has_tag;
  __shared__ unsigned char missing[32];
  __shared__ float red_val[256];
  __shared__ int red_idx[256];
  if (threadIdx.x == 0) {
    has_tag = refine_person_tag(p, my_people, q, tg, stack, centre);
    for (int j = 0; j < J; ++j) missing[j] = my_people[(q * J + j) * (3 + T) + 2] == 0.0f;
  }
  __syncthreads();
  for (int j = 0; j < J; ++j) {
    if (!missing[j]) continue;  // block-uniform
    if (!has_tag) {  // official argmax over all-NaN scores: pixel 0
      if (threadIdx.x == 0) refine_fill(p, my_people, q, j, 0, hm);
      continue;
    }
    float best = 0.0f; int best_i = -1;
    refine_search(p, hm, tg, j, centre, threadIdx.x, (int)plane, blockDim.x, &best, &best_i);
    red_val[threadIdx.x] = best; red_idx[threadIdx.x] = best_i;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if (threadIdx.x < half) {
        const int o = threadIdx.x + half;
        if (red_idx[o] >= 0 && argmax_better(red_val[o], red_idx[o], red_val[threadIdx.x], red_idx[threadIdx.x])) {
          red_val[threadIdx.x] = red_val[o]; red_idx[threadIdx.x] = red_idx[o];
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) refine_fill(p, my_people, q, j, red_idx[0], hm);
    __syncthreads();
  }
}
