// The data gradient of a stride-1 convolution is itself a stride-1 convolution:
// of dy with the filters flipped in space and transposed per group (shape
// (C, K/groups, R, S)), padded by dil*(R-1) - pad on each side. Both the direct
// and the im2col paths use this to run their data gradient as a forward.
// For other strides both gather: for_each_output_reading visits the output
// positions whose windows read a given input element.
#pragma once
#include "common.cuh"
#include "launchers.h"

namespace cudacnn {

// True when the rewrite applies: unit strides and no side padded beyond the filter span.
inline bool data_gradient_is_a_forward(const Conv2dShape &s) {
  const int span_h = s.dil_h * (s.R - 1), span_w = s.dil_w * (s.S - 1);
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_top <= span_h && s.pad_bottom <= span_h &&
         s.pad_left <= span_w && s.pad_right <= span_w;
}

// The forward geometry that computes dx (N, C, H, W) from dy (N, K, P, Q).
inline Conv2dShape data_gradient_shape(const Conv2dShape &s) {
  Conv2dShape t = s;
  t.C = s.K; t.H = s.P; t.W = s.Q;
  t.K = s.C; t.P = s.H; t.Q = s.W;
  t.pad_top = s.dil_h * (s.R - 1) - s.pad_top;
  t.pad_bottom = s.dil_h * (s.R - 1) - s.pad_bottom;
  t.pad_left = s.dil_w * (s.S - 1) - s.pad_left;
  t.pad_right = s.dil_w * (s.S - 1) - s.pad_right;
  return t;
}

// wt[g*Cg + c][k][R-1-r][S-1-s] = w[g*Kg + k][c][r][s]   (internal linkage: one copy per kernel file)
static __global__ void flip_transpose_filters_kernel(float *__restrict__ wt, const float *__restrict__ w,
                                                     Conv2dShape s) {
  const int Kg = s.K / s.groups, Cg = s.C / s.groups;
  const int total = s.K * Cg * s.R * s.S;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const int sx = idx % s.S;
    int t = idx / s.S;
    const int r = t % s.R;
    t /= s.R;
    const int c = t % Cg, k = t / Cg;
    const int g = k / Kg, kl = k - g * Kg;
    wt[(((g * Cg + c) * Kg + kl) * s.R + (s.R - 1 - r)) * s.S + (s.S - 1 - sx)] = w[idx];
  }
}

#ifdef __CUDACC__
// visit(r, s, p, q) for each filter tap (r, s) and output position (p, q) with
// p * stride_h - pad_top + r * dil_h == ih and likewise for the columns.
template <typename Visit>
__device__ __forceinline__ void for_each_output_reading(int ih, int iw, const Conv2dShape &s,
                                                        const FastDiv &stride_h, const FastDiv &stride_w,
                                                        Visit visit) {
  for (int r = 0; r < s.R; ++r) {
    const int hp = ih + s.pad_top - r * s.dil_h;  // = p * stride_h when output row p reads this input row
    if (hp < 0) continue;
    const int p = stride_h.div(hp);
    if (p * s.stride_h != hp || p >= s.P) continue;
    for (int sx = 0; sx < s.S; ++sx) {
      const int wq = iw + s.pad_left - sx * s.dil_w;
      if (wq < 0) continue;
      const int q = stride_w.div(wq);
      if (q * s.stride_w != wq || q >= s.Q) continue;
      visit(r, sx, p, q);
    }
  }
}
#endif

inline void flip_transpose_filters(float *wt, const float *w, const Conv2dShape &s, cudaStream_t st) {
  constexpr int threads = 256;
  flip_transpose_filters_kernel<<<elementwise_blocks(s.w_size(), threads), threads, 0, st>>>(wt, w, s);
  CUDA_CHECK_LAUNCH("flip_transpose_filters_kernel");
}

}  // namespace cudacnn
