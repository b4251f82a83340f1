// The data gradient of a stride-1 convolution is itself a stride-1 convolution:
// of dy with the filters flipped in space and transposed per group (shape
// (C, K/groups, R, S)), padded by dil*(R-1) - pad on each side. Both the direct
// and the im2col paths use this to run their data gradient as a forward.
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

inline void flip_transpose_filters(float *wt, const float *w, const Conv2dShape &s, cudaStream_t st) {
  constexpr int threads = 256;
  flip_transpose_filters_kernel<<<elementwise_blocks(s.w_size(), threads), threads, 0, st>>>(wt, w, s);
  CUDA_CHECK_LAUNCH("flip_transpose_filters_kernel");
}

}  // namespace cudacnn
