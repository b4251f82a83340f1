// Batch normalisation (PyTorch semantics), x viewed as (N, C, HW) float32
// (HW = 1 for (N, C) input). Channel c's M = N*HW values sit in N runs of HW.
//
// Training forward, two launches over x plus one tiny one:
//   1. statistics: grid (C, splits); each block runs Welford over its slice of
//      one channel (per thread, then a fixed-order tree merge), writing
//      (count, mean, M2) partials;
//   2. finalize: one thread per channel merges its partials in split order
//      (Chan et al.), writes mean and inv_std = 1/sqrt(var + eps) and updates
//      the running statistics (unbiased variance);
//   3. normalize: y = (x - mean) * inv_std * gamma + beta in one pass
//      (inference uses the same pass with the running statistics).
// x_hat = (x - mean) * inv_std is never stored: the backward recomputes it
// from x (which the caller keeps anyway) and the per-channel mean and inv_std,
// so the forward writes y alone.
// Backward, two passes over (dy, x): per-channel partial sums of dy and
// dy * x_hat (finalized in fixed order into dbeta, dgamma), then dx.
// No atomics anywhere: results are deterministic.
#include <algorithm>

#include "common.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

// 256 threads per statistics block; a slice of at least 4096 values per block
// keeps the merge overhead small, and about 1024 blocks fill any current GPU.
constexpr int kStatThreads = 256;
constexpr long long kMinValuesPerBlock = 4096;
constexpr long long kTargetBlocks = 1024;
constexpr int kMaxSplits = 256;
constexpr int kThreads = 256;

int stat_splits(int N, int C, int HW) {
  const long long M = 1LL * N * HW;
  long long splits = std::min(CEIL_DIV(M, kMinValuesPerBlock), CEIL_DIV(kTargetBlocks, (long long)C));
  return (int)std::max(1LL, std::min(splits, (long long)kMaxSplits));
}

struct Welford {
  float n, mean, m2;
};

__device__ __forceinline__ Welford welford_merge(Welford a, Welford b) {
  if (b.n == 0.0f) return a;
  if (a.n == 0.0f) return b;
  const float n = a.n + b.n, delta = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
}

// Slice [j0, j1) of channel c's values, j = n * HW + hw.
__device__ __forceinline__ void channel_slice(int N, int HW, int splits, int split, int *j0, int *j1) {
  const int M = N * HW, per = CEIL_DIV(M, splits);
  *j0 = min(M, split * per);
  *j1 = min(M, *j0 + per);
}

// partial: [3][C][splits] = count, mean, M2.
__global__ void __launch_bounds__(kStatThreads) batch_norm_stats_kernel(float *__restrict__ partial,
                                                                        const float *__restrict__ x, int N, int C,
                                                                        int HW, FastDiv hw_div) {
  __shared__ float s_n[kStatThreads], s_mean[kStatThreads], s_m2[kStatThreads];
  const int c = blockIdx.x, split = blockIdx.y, splits = gridDim.y, tid = threadIdx.x;
  int j0, j1;
  channel_slice(N, HW, splits, split, &j0, &j1);
  Welford w{0.0f, 0.0f, 0.0f};
  for (int j = j0 + tid; j < j1; j += kStatThreads) {
    const int n = hw_div.div(j), hw = j - n * HW;
    const float v = x[(n * C + c) * HW + hw];
    w.n += 1.0f;
    const float d = v - w.mean;
    w.mean += d / w.n;
    w.m2 += d * (v - w.mean);
  }
  s_n[tid] = w.n;
  s_mean[tid] = w.mean;
  s_m2[tid] = w.m2;
  __syncthreads();
  for (int stride = kStatThreads / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
      const Welford m = welford_merge({s_n[tid], s_mean[tid], s_m2[tid]},
                                      {s_n[tid + stride], s_mean[tid + stride], s_m2[tid + stride]});
      s_n[tid] = m.n;
      s_mean[tid] = m.mean;
      s_m2[tid] = m.m2;
    }
    __syncthreads();
  }
  if (tid == 0) {
    const long long at = (long long)c * splits + split, plane = (long long)C * splits;
    partial[at] = s_n[0];
    partial[plane + at] = s_mean[0];
    partial[2 * plane + at] = s_m2[0];
  }
}

__global__ void batch_norm_finalize_kernel(float *__restrict__ mean, float *__restrict__ inv_std,
                                           float *__restrict__ running_mean, float *__restrict__ running_var,
                                           const float *__restrict__ partial, int C, int splits, float momentum,
                                           float one_minus_momentum, float unbiased_momentum, float eps) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const long long plane = (long long)C * splits;
  Welford w{0.0f, 0.0f, 0.0f};
  for (int sp = 0; sp < splits; ++sp) {
    const long long at = (long long)c * splits + sp;
    w = welford_merge(w, {partial[at], partial[plane + at], partial[2 * plane + at]});
  }
  const float var = w.m2 / w.n;  // biased: the normalisation uses it
  mean[c] = w.mean;
  inv_std[c] = 1.0f / sqrtf(var + eps);
  // unbiased_momentum = momentum * M / (M - 1), formed in double on the host.
  running_mean[c] = running_mean[c] * one_minus_momentum + momentum * w.mean;
  running_var[c] = running_var[c] * one_minus_momentum + unbiased_momentum * var;
}

// Elementwise passes. Planes (one (n, c)) of at least kPlaneMin values: one
// block per segment of a plane, so the channel's constants are read once per
// block, no per-element division, float4 accesses when aligned. Smaller planes
// (e.g. (N, C) input): a flat loop that finds the channel with a FastDiv.
constexpr int kPlaneMin = 256;
constexpr int kSegment = kThreads * 8;  // values per block in the plane kernels

struct Affine {  // y = x_hat * g + b with x_hat = (x - m) * s
  float m, s, g, b;
};

__device__ __forceinline__ float normalize(float v, const Affine &a) { return (v - a.m) * a.s * a.g + a.b; }

__global__ void batch_norm_normalize_plane_kernel(float *__restrict__ y, const float *__restrict__ x, const float *__restrict__ mean,
                                                  const float *__restrict__ inv_std, const float *__restrict__ gamma,
                                                  const float *__restrict__ beta, int C, int HW, int segments,
                                                  bool vectorized) {
  const int plane = blockIdx.x / segments, seg = blockIdx.x - plane * segments, c = plane % C;
  const Affine a{mean[c], inv_std[c], gamma[c], beta[c]};
  const long long base = (long long)plane * HW;
  const int begin = seg * kSegment, end = min(HW, begin + kSegment);
  if (vectorized) {  // HW % 4 == 0 and 16-byte aligned pointers
    const float4 *x4 = reinterpret_cast<const float4 *>(x + base);
    float4 *y4 = reinterpret_cast<float4 *>(y + base);
    for (int i = begin / 4 + threadIdx.x; i < end / 4; i += blockDim.x) {
      const float4 v = x4[i];
      y4[i] = make_float4(normalize(v.x, a), normalize(v.y, a), normalize(v.z, a), normalize(v.w, a));
    }
  } else {
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) y[base + i] = normalize(x[base + i], a);
  }
}

__global__ void batch_norm_normalize_flat_kernel(float *__restrict__ y, const float *__restrict__ x, const float *__restrict__ mean,
                                                 const float *__restrict__ inv_std, const float *__restrict__ gamma,
                                                 const float *__restrict__ beta, int total, FastDiv hw_div,
                                                 FastDiv c_div) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int c = c_div.mod(hw_div.div(i));
    y[i] = normalize(x[i], Affine{mean[c], inv_std[c], gamma[c], beta[c]});
  }
}

// partial: [2][C][splits] = sum dy, sum dy * x_hat, x_hat = (x - mean) * inv_std.
__global__ void __launch_bounds__(kStatThreads) batch_norm_backward_reduce_kernel(
    float *__restrict__ partial, const float *__restrict__ dy, const float *__restrict__ x,
    const float *__restrict__ mean, const float *__restrict__ inv_std, int N, int C, int HW, FastDiv hw_div) {
  __shared__ float scratch[32];
  const int c = blockIdx.x, split = blockIdx.y, splits = gridDim.y;
  int j0, j1;
  channel_slice(N, HW, splits, split, &j0, &j1);
  const float m = mean[c], s = inv_std[c];
  float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
  for (int j = j0 + threadIdx.x; j < j1; j += kStatThreads) {
    const int n = hw_div.div(j), hw = j - n * HW;
    const int i = (n * C + c) * HW + hw;
    const float d = dy[i];
    sum_dy += d;
    sum_dy_xhat = fmaf(d, (x[i] - m) * s, sum_dy_xhat);
  }
  sum_dy = block_reduce_sum(sum_dy, scratch);
  sum_dy_xhat = block_reduce_sum(sum_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    const long long at = (long long)c * splits + split;
    partial[at] = sum_dy;
    partial[(long long)C * splits + at] = sum_dy_xhat;
  }
}

__global__ void batch_norm_backward_finalize_kernel(float *__restrict__ dgamma, float *__restrict__ dbeta,
                                                    const float *__restrict__ partial, int C, int splits) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
  for (int sp = 0; sp < splits; ++sp) {
    sum_dy += partial[(long long)c * splits + sp];
    sum_dy_xhat += partial[(long long)C * splits + (long long)c * splits + sp];
  }
  dbeta[c] = sum_dy;
  dgamma[c] = sum_dy_xhat;
}

// dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat) in training, scale * dy in inference,
// scale = gamma * inv_std, x_hat = (x - mean) * inv_std.
struct DxCoeffs {
  float scale, mean_dy, mean_dy_xhat, mean, inv_std;
  bool training;
};

__device__ __forceinline__ DxCoeffs dx_coeffs(int c, const float *mean, const float *inv_std, const float *gamma,
                                              const float *dgamma, const float *dbeta, bool training,
                                              float inv_count) {
  return {gamma[c] * inv_std[c], training ? dbeta[c] * inv_count : 0.0f, training ? dgamma[c] * inv_count : 0.0f,
          mean[c], inv_std[c], training};
}

__device__ __forceinline__ float dx_value(float dy, float x, const DxCoeffs &k) {
  if (!k.training) return dy * k.scale;
  const float xh = (x - k.mean) * k.inv_std;
  return (dy - k.mean_dy - xh * k.mean_dy_xhat) * k.scale;
}

__global__ void batch_norm_backward_dx_plane_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                                    const float *__restrict__ x, const float *__restrict__ mean,
                                                    const float *__restrict__ inv_std,
                                                    const float *__restrict__ gamma, const float *__restrict__ dgamma,
                                                    const float *__restrict__ dbeta, int C, int HW, int segments,
                                                    bool vectorized, bool training, float inv_count) {
  const int plane = blockIdx.x / segments, seg = blockIdx.x - plane * segments;
  const DxCoeffs k = dx_coeffs(plane % C, mean, inv_std, gamma, dgamma, dbeta, training, inv_count);
  const long long base = (long long)plane * HW;
  const int begin = seg * kSegment, end = min(HW, begin + kSegment);
  if (vectorized) {
    const float4 *d4 = reinterpret_cast<const float4 *>(dy + base);
    const float4 *h4 = reinterpret_cast<const float4 *>(x + base);
    float4 *o4 = reinterpret_cast<float4 *>(dx + base);
    for (int i = begin / 4 + threadIdx.x; i < end / 4; i += blockDim.x) {
      const float4 d = d4[i], h = h4[i];
      o4[i] = make_float4(dx_value(d.x, h.x, k), dx_value(d.y, h.y, k), dx_value(d.z, h.z, k),
                          dx_value(d.w, h.w, k));
    }
  } else {
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) dx[base + i] = dx_value(dy[base + i], x[base + i], k);
  }
}

__global__ void batch_norm_backward_dx_flat_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                                   const float *__restrict__ x, const float *__restrict__ mean,
                                                   const float *__restrict__ inv_std,
                                                   const float *__restrict__ gamma, const float *__restrict__ dgamma,
                                                   const float *__restrict__ dbeta, int total, FastDiv hw_div,
                                                   FastDiv c_div, bool training, float inv_count) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const DxCoeffs k =
        dx_coeffs(c_div.mod(hw_div.div(i)), mean, inv_std, gamma, dgamma, dbeta, training, inv_count);
    dx[i] = dx_value(dy[i], x[i], k);
  }
}

void check_sizes(int N, int C, int HW) {
  require_positive(N, "N");
  require_positive(C, "C");
  require_positive(HW, "H*W");
  require_fits_int32(1LL * N * C * HW, "batch_norm input");
}

void check_workspace(ptr_t workspace, long long workspace_size, int N, int C, int HW) {
  const long long need = batch_norm_workspace(N, C, HW);
  require_ptr(workspace, "workspace");
  require(workspace_size >= need, "batch_norm: workspace of " + std::to_string(workspace_size) +
                                      " floats is smaller than the " + std::to_string(need) + " needed");
}

}  // namespace

long long batch_norm_workspace(int N, int C, int HW) {
  check_sizes(N, C, HW);
  return 3LL * C * stat_splits(N, C, HW);
}

void batch_norm_statistics(ptr_t mean, ptr_t inv_std, ptr_t running_mean, ptr_t running_var, ptr_t x,
                           ptr_t workspace, long long workspace_size, int N, int C, int HW, float momentum,
                           float eps, ptr_t stream) {
  check_sizes(N, C, HW);
  require(1LL * N * HW >= 2, "batch_norm: training needs more than 1 value per channel");
  require_ptr(mean, "mean");
  require_ptr(inv_std, "inv_std");
  require_ptr(running_mean, "running_mean");
  require_ptr(running_var, "running_var");
  require_ptr(x, "x");
  check_workspace(workspace, workspace_size, N, C, HW);
  cudaStream_t st = as_stream(stream);
  const int splits = stat_splits(N, C, HW);
  float *partial = as_ptr<float>(workspace);
  batch_norm_stats_kernel<<<dim3(C, splits), kStatThreads, 0, st>>>(partial, as_ptr<const float>(x), N, C, HW,
                                                                     FastDiv(HW));
  CUDA_CHECK_LAUNCH("batch_norm_stats_kernel");
  const double count = 1.0 * N * HW;
  batch_norm_finalize_kernel<<<CEIL_DIV(C, kThreads), kThreads, 0, st>>>(
      as_ptr<float>(mean), as_ptr<float>(inv_std), as_ptr<float>(running_mean), as_ptr<float>(running_var), partial,
      C, splits, momentum, (float)(1.0 - (double)momentum), (float)((double)momentum * count / (count - 1.0)), eps);
  CUDA_CHECK_LAUNCH("batch_norm_finalize_kernel");
}

void batch_norm_normalize(ptr_t y, ptr_t x, ptr_t mean, ptr_t inv_std, ptr_t gamma, ptr_t beta, int N, int C,
                          int HW, ptr_t stream) {
  check_sizes(N, C, HW);
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_ptr(mean, "mean");
  require_ptr(inv_std, "inv_std");
  require_ptr(gamma, "gamma");
  require_ptr(beta, "beta");
  cudaStream_t st = as_stream(stream);
  const int total = N * C * HW;
  if (HW >= kPlaneMin) {
    const int segments = CEIL_DIV(HW, kSegment);
    const bool vectorized = HW % 4 == 0 && all_aligned16({y, x});
    batch_norm_normalize_plane_kernel<<<N * C * segments, kThreads, 0, st>>>(
        as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(mean),
        as_ptr<const float>(inv_std), as_ptr<const float>(gamma), as_ptr<const float>(beta), C, HW, segments,
        vectorized);
    CUDA_CHECK_LAUNCH("batch_norm_normalize_plane_kernel");
  } else {
    batch_norm_normalize_flat_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, st>>>(
        as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(mean),
        as_ptr<const float>(inv_std), as_ptr<const float>(gamma), as_ptr<const float>(beta), total, FastDiv(HW),
        FastDiv(C));
    CUDA_CHECK_LAUNCH("batch_norm_normalize_flat_kernel");
  }
}

void batch_norm_backward(ptr_t dx, ptr_t dgamma, ptr_t dbeta, ptr_t dy, ptr_t x, ptr_t mean, ptr_t inv_std,
                         ptr_t gamma, ptr_t workspace, long long workspace_size, int N, int C, int HW, bool training,
                         ptr_t stream) {
  check_sizes(N, C, HW);
  require_ptr(dx, "dx");
  require_ptr(dgamma, "dgamma");
  require_ptr(dbeta, "dbeta");
  require_ptr(dy, "dy");
  require_ptr(x, "x");
  require_ptr(mean, "mean");
  require_ptr(inv_std, "inv_std");
  require_ptr(gamma, "gamma");
  check_workspace(workspace, workspace_size, N, C, HW);
  cudaStream_t st = as_stream(stream);
  const int splits = stat_splits(N, C, HW);
  float *partial = as_ptr<float>(workspace);
  batch_norm_backward_reduce_kernel<<<dim3(C, splits), kStatThreads, 0, st>>>(
      partial, as_ptr<const float>(dy), as_ptr<const float>(x), as_ptr<const float>(mean),
      as_ptr<const float>(inv_std), N, C, HW, FastDiv(HW));
  CUDA_CHECK_LAUNCH("batch_norm_backward_reduce_kernel");
  batch_norm_backward_finalize_kernel<<<CEIL_DIV(C, kThreads), kThreads, 0, st>>>(
      as_ptr<float>(dgamma), as_ptr<float>(dbeta), partial, C, splits);
  CUDA_CHECK_LAUNCH("batch_norm_backward_finalize_kernel");
  const int total = N * C * HW;
  const float inv_count = (float)(1.0 / (1.0 * N * HW));
  if (HW >= kPlaneMin) {
    const int segments = CEIL_DIV(HW, kSegment);
    const bool vectorized = HW % 4 == 0 && all_aligned16({dx, dy, x});
    batch_norm_backward_dx_plane_kernel<<<N * C * segments, kThreads, 0, st>>>(
        as_ptr<float>(dx), as_ptr<const float>(dy), as_ptr<const float>(x), as_ptr<const float>(mean),
        as_ptr<const float>(inv_std),
        as_ptr<const float>(gamma), as_ptr<const float>(dgamma), as_ptr<const float>(dbeta), C, HW, segments,
        vectorized, training, inv_count);
    CUDA_CHECK_LAUNCH("batch_norm_backward_dx_plane_kernel");
  } else {
    batch_norm_backward_dx_flat_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, st>>>(
        as_ptr<float>(dx), as_ptr<const float>(dy), as_ptr<const float>(x), as_ptr<const float>(mean),
        as_ptr<const float>(inv_std),
        as_ptr<const float>(gamma), as_ptr<const float>(dgamma), as_ptr<const float>(dbeta), total, FastDiv(HW),
        FastDiv(C), training, inv_count);
    CUDA_CHECK_LAUNCH("batch_norm_backward_dx_flat_kernel");
  }
}

}  // namespace cudacnn
