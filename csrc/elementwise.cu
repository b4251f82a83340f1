// Elementwise kernels: activations forward/backward, dropout with a
// counter-based RNG and per-channel sums (bias gradients); the optimizer
// updates are in optimizers.cu. Flat float32 arrays, grid-stride loops with 64-bit
// indices. Every result element is written by exactly one thread (no atomics),
// so results are deterministic.
#include "common.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

// 256 threads: full occupancy on every SM generation for these
// register-light kernels; grid-stride loops cover any size.
constexpr int kThreads = 256;

template <int KIND>
__device__ __forceinline__ float activate(float x, float param) {
  if (KIND == kRelu) return x <= 0.0f ? 0.0f : x;  // NaN propagates, as numpy.maximum
  if (KIND == kLeakyRelu) return x > 0.0f ? x : x * param;
  if (KIND == kElu) return x > 0.0f ? x : param * expm1f(x);
  if (KIND == kSigmoid) {
    // Stable in both tails: exp of a non-positive number only.
    const float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
  return tanhf(x);
}

// `xy` is the forward input for relu/leaky/elu, the forward output for sigmoid/tanh.
template <int KIND>
__device__ __forceinline__ float activate_grad(float dy, float xy, float param) {
  if (KIND == kRelu) return dy * (xy > 0.0f ? 1.0f : 0.0f);  // dy * mask, as the reference
  if (KIND == kLeakyRelu) return xy > 0.0f ? dy : dy * param;
  if (KIND == kElu) return xy > 0.0f ? dy : dy * (param * expf(xy));
  if (KIND == kSigmoid) return dy * xy * (1.0f - xy);
  return dy * (1.0f - xy * xy);
}

template <int KIND>
__global__ void activation_forward_kernel(float *__restrict__ y, const float *__restrict__ x, long long n,
                                          float param) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = activate<KIND>(x[i], param);
}

template <int KIND>
__global__ void activation_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                           const float *__restrict__ xy, long long n, float param) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    dx[i] = activate_grad<KIND>(dy[i], xy[i], param);
}

// The counter-based RNG of the backends contract: uniform(seed, i) in [0, 1),
// identical to the NumPy reference bit for bit.
__device__ __forceinline__ std::uint32_t lowbias32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}

__device__ __forceinline__ float counter_uniform(std::uint32_t seed, long long i) {
  const std::uint32_t h = lowbias32(static_cast<std::uint32_t>(i) + seed * 0x9E3779B9u);
  return static_cast<float>(h >> 8) * (1.0f / 16777216.0f);  // exact: 24-bit integer times 2^-24
}

__global__ void dropout_kernel(float *__restrict__ y, const float *__restrict__ x, long long n, float rate,
                               float scale, std::uint32_t seed) {
  // x * 0 (not a literal 0) for dropped elements, as the reference: -0, NaN and inf propagate alike.
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = x[i] * (counter_uniform(seed, i) >= rate ? scale : 0.0f);
}

// One block per channel: a fixed-order strided sum over (n, hw) then a tree reduction.
__global__ void channel_sum_kernel(float *__restrict__ out, const float *__restrict__ x, int N, int C, long long HW) {
  __shared__ float scratch[32];
  const int c = blockIdx.x;
  const long long count = (long long)N * HW;
  float acc = 0.0f;
  for (long long j = threadIdx.x; j < count; j += blockDim.x) {
    const long long n = j / HW, hw = j - n * HW;
    acc += x[(n * C + c) * HW + hw];
  }
  acc = block_reduce_sum(acc, scratch);
  if (threadIdx.x == 0) out[c] = acc;
}

// HW == 1 (a (N, C) matrix, e.g. the dense bias gradient): one thread per
// column walks the rows, so a warp reads consecutive columns (coalesced).
__global__ void column_sum_kernel(float *__restrict__ out, const float *__restrict__ x, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int n = 0; n < N; ++n) acc += x[(long long)n * C + c];
  out[c] = acc;
}

void require_count(long long n) {
  require_positive(n, "element count");
}

}  // namespace

void channel_sum(ptr_t out, ptr_t x, int N, int C, long long HW, ptr_t stream) {
  require_ptr(out, "out");
  require_ptr(x, "x");
  require_positive(N, "N");
  require_positive(C, "C");
  require_positive(HW, "HW");
  if (HW == 1) {
    column_sum_kernel<<<CEIL_DIV(C, kThreads), kThreads, 0, as_stream(stream)>>>(as_ptr<float>(out),
                                                                                   as_ptr<const float>(x), N, C);
    CUDA_CHECK_LAUNCH("column_sum_kernel");
  } else {
    channel_sum_kernel<<<C, kThreads, 0, as_stream(stream)>>>(as_ptr<float>(out), as_ptr<const float>(x), N, C, HW);
    CUDA_CHECK_LAUNCH("channel_sum_kernel");
  }
}

void activation_forward(ptr_t y, ptr_t x, long long n, int kind, float param, ptr_t stream) {
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_count(n);
  const unsigned blocks = elementwise_blocks(n, kThreads);
  cudaStream_t st = as_stream(stream);
  float *yp = as_ptr<float>(y);
  const float *xp = as_ptr<const float>(x);
  switch (kind) {
    case kRelu: activation_forward_kernel<kRelu><<<blocks, kThreads, 0, st>>>(yp, xp, n, param); break;
    case kLeakyRelu: activation_forward_kernel<kLeakyRelu><<<blocks, kThreads, 0, st>>>(yp, xp, n, param); break;
    case kElu: activation_forward_kernel<kElu><<<blocks, kThreads, 0, st>>>(yp, xp, n, param); break;
    case kSigmoid: activation_forward_kernel<kSigmoid><<<blocks, kThreads, 0, st>>>(yp, xp, n, param); break;
    case kTanh: activation_forward_kernel<kTanh><<<blocks, kThreads, 0, st>>>(yp, xp, n, param); break;
    default: throw std::invalid_argument("unknown activation kind " + std::to_string(kind));
  }
  CUDA_CHECK_LAUNCH("activation_forward_kernel");
}

void activation_backward(ptr_t dx, ptr_t dy, ptr_t xy, long long n, int kind, float param, ptr_t stream) {
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(xy, "x_or_y");
  require_count(n);
  const unsigned blocks = elementwise_blocks(n, kThreads);
  cudaStream_t st = as_stream(stream);
  float *o = as_ptr<float>(dx);
  const float *d = as_ptr<const float>(dy), *a = as_ptr<const float>(xy);
  switch (kind) {
    case kRelu: activation_backward_kernel<kRelu><<<blocks, kThreads, 0, st>>>(o, d, a, n, param); break;
    case kLeakyRelu: activation_backward_kernel<kLeakyRelu><<<blocks, kThreads, 0, st>>>(o, d, a, n, param); break;
    case kElu: activation_backward_kernel<kElu><<<blocks, kThreads, 0, st>>>(o, d, a, n, param); break;
    case kSigmoid: activation_backward_kernel<kSigmoid><<<blocks, kThreads, 0, st>>>(o, d, a, n, param); break;
    case kTanh: activation_backward_kernel<kTanh><<<blocks, kThreads, 0, st>>>(o, d, a, n, param); break;
    default: throw std::invalid_argument("unknown activation kind " + std::to_string(kind));
  }
  CUDA_CHECK_LAUNCH("activation_backward_kernel");
}

void dropout_apply(ptr_t y, ptr_t x, long long n, double rate, std::uint32_t seed, ptr_t stream) {
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_count(n);
  require(rate >= 0.0 && rate < 1.0, "dropout rate must be in [0, 1), got " + std::to_string(rate));
  dropout_kernel<<<elementwise_blocks(n, kThreads), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(y), as_ptr<const float>(x), n, (float)rate, (float)(1.0 / (1.0 - rate)), seed);
  CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace cudacnn
