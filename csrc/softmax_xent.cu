// Softmax (last axis) and fused softmax-cross-entropy, float32, rows of K.
//
// One warp per row; lanes stride along the row so reads are coalesced (as
// float4 when the rows are 16-byte aligned), and warp reductions use a fixed
// shuffle tree. The cross-entropy forward reads the logits once: each lane
// keeps an online (running max m, sum of exp(x - m)) pair, the lanes' pairs
// are merged, and the row's loss needs only x[label]. It writes no
// probabilities: the backward recomputes them from the logits and the two
// per-row statistics, so a training step moves N*K floats fewer twice over.
//   log_softmax(z)_k = (z_k - row_max) - log_sum,  log_sum = log sum_j exp(z_j - row_max)
//   loss_row = -sum_k t_k * log_softmax(z)_k      (t: one-hot of the label, or a probability row)
//   dlogits  = (softmax(z) * sum_k t_k - t) / N   (= (p - onehot) / N for labels)
// The loss is the mean of the per-row losses, summed in row order by a single
// block (deterministic).
#include <cfloat>
#include <initializer_list>

#include "common.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = kThreads / 32;  // one warp per row

__device__ __forceinline__ float row_max(const float *__restrict__ x, int K, int lane) {
  float m = -INFINITY;
  for (int k = lane; k < K; k += 32) m = fmaxf(m, x[k]);
  return warp_reduce_max(m);
}

__device__ __forceinline__ float row_sum_exp(const float *__restrict__ x, int K, int lane, float m) {
  float s = 0.0f;
  for (int k = lane; k < K; k += 32) s += expf(x[k] - m);
  return warp_reduce_sum(s);
}

// Calls visit(k, x[k]) for this lane's elements of a row: k = lane, lane + 32, ...
// or, with VEC4 (K % 4 == 0, row 16-byte aligned), float4 number lane, lane + 32, ...
template <bool VEC4, typename Visit>
__device__ __forceinline__ void for_lane_elements(const float *__restrict__ x, int K, int lane, Visit visit) {
  if (VEC4) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    for (int k4 = lane; k4 < K / 4; k4 += 32) {
      const float4 v = x4[k4];
      visit(4 * k4, v.x); visit(4 * k4 + 1, v.y); visit(4 * k4 + 2, v.z); visit(4 * k4 + 3, v.w);
    }
  } else {
    for (int k = lane; k < K; k += 32) visit(k, x[k]);
  }
}

// Running log-sum-exp: s = sum exp(v - m) over the values seen, m their max.
// m starts at -FLT_MAX rather than -inf so that -inf logits add exp(-inf) = 0
// instead of exp(-inf - -inf) = NaN.
struct OnlineLse {
  float m = -FLT_MAX, s = 0.0f;
  __device__ __forceinline__ void add(float v) {
    if (v > m) {
      s = fmaf(s, expf(m - v), 1.0f);
      m = v;
    } else {
      s += expf(v - m);
    }
  }
  __device__ __forceinline__ void merge_warp() {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      const float m_other = __shfl_xor_sync(0xffffffffu, m, offset);
      const float s_other = __shfl_xor_sync(0xffffffffu, s, offset);
      const float m_new = fmaxf(m, m_other);
      s = s * expf(m - m_new) + s_other * expf(m_other - m_new);
      m = m_new;
    }
  }
};

// Per row: row_max, log_sum and the row's loss. INDEX: labels are int64 class
// indices; else targets are (N, K) probability rows.
template <bool INDEX, bool VEC4>
__global__ void softmax_xent_forward_kernel(float *__restrict__ row_max_out, float *__restrict__ log_sum_out,
                                            float *__restrict__ row_loss, const float *__restrict__ logits,
                                            const long long *__restrict__ labels,
                                            const float *__restrict__ targets, int N, int K) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warps leave together
  const float *x = logits + (long long)row * K;
  OnlineLse lse;
  for_lane_elements<VEC4>(x, K, lane, [&](int, float v) { lse.add(v); });
  lse.merge_warp();
  const float m = lse.m, log_sum = logf(lse.s);
  float loss;
  if (INDEX) {
    const long long label = labels[row];
    // Out-of-range labels are refused in Python; never read outside the row.
    loss = (label >= 0 && label < K) ? -((x[label] - m) - log_sum) : NAN;
  } else {
    // A second pass (from cache): sum t * (x - m) - log_sum * sum t would cancel badly.
    const float *t = targets + (long long)row * K;
    float dot = 0.0f;
    for_lane_elements<VEC4>(x, K, lane, [&](int k, float v) { dot = fmaf(t[k], (v - m) - log_sum, dot); });
    loss = -warp_reduce_sum(dot);
  }
  if (lane == 0) {
    row_max_out[row] = m;
    log_sum_out[row] = log_sum;
    row_loss[row] = loss;
  }
}

// loss = sum(row_loss) / N, one block, fixed order.
constexpr int kMeanThreads = 1024;
__global__ void __launch_bounds__(kMeanThreads) mean_kernel(float *__restrict__ out, const float *__restrict__ v,
                                                            int n) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (int i = threadIdx.x; i < n; i += kMeanThreads) acc += v[i];
  acc = block_reduce_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc / (float)n;
}

// dlogits = (exp((x - row_max) - log_sum) * sum t - t) / N, written as float4 with VEC4.
template <bool INDEX, bool VEC4>
__global__ void softmax_xent_backward_kernel(float *__restrict__ dlogits, const float *__restrict__ logits,
                                             const float *__restrict__ row_max, const float *__restrict__ log_sum,
                                             const long long *__restrict__ labels,
                                             const float *__restrict__ targets, int N, int K) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float *x = logits + (long long)row * K;
  float *d = dlogits + (long long)row * K;
  const float m = row_max[row], ls = log_sum[row], inv_n = 1.0f / (float)N;
  const float *t = INDEX ? nullptr : targets + (long long)row * K;
  float t_sum = 1.0f;
  long long label = -1;
  if (INDEX) {
    label = labels[row];
  } else {
    float total = 0.0f;
    for_lane_elements<VEC4>(t, K, lane, [&](int, float v) { total += v; });
    t_sum = warp_reduce_sum(total);
  }
  auto grad = [&](int k, float v) {
    const float target = INDEX ? (k == label ? 1.0f : 0.0f) : t[k];
    return (expf((v - m) - ls) * t_sum - target) * inv_n;
  };
  if (VEC4) {
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    float4 *d4 = reinterpret_cast<float4 *>(d);
    for (int k4 = lane; k4 < K / 4; k4 += 32) {
      const float4 v = x4[k4];
      const int k = 4 * k4;
      d4[k4] = make_float4(grad(k, v.x), grad(k + 1, v.y), grad(k + 2, v.z), grad(k + 3, v.w));
    }
  } else {
    for (int k = lane; k < K; k += 32) d[k] = grad(k, x[k]);
  }
}

__global__ void softmax_forward_kernel(float *__restrict__ y, const float *__restrict__ x, long long rows, int K) {
  const long long row = blockIdx.x * (long long)kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float *xr = x + row * K;
  const float m = row_max(xr, K, lane);
  const float s = row_sum_exp(xr, K, lane, m);
  float *yr = y + row * K;
  for (int k = lane; k < K; k += 32) yr[k] = expf(xr[k] - m) / s;
}

// dx = y * (dy - sum_k dy_k * y_k)
__global__ void softmax_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                        const float *__restrict__ y, long long rows, int K) {
  const long long row = blockIdx.x * (long long)kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float *dyr = dy + row * K, *yr = y + row * K;
  float dot = 0.0f;
  for (int k = lane; k < K; k += 32) dot = fmaf(dyr[k], yr[k], dot);
  dot = warp_reduce_sum(dot);
  float *dxr = dx + row * K;
  for (int k = lane; k < K; k += 32) dxr[k] = yr[k] * (dyr[k] - dot);
}

void check_rows(long long rows, int K) {
  require_positive(rows, "rows (N)");
  require_positive(K, "K (classes)");
  require_fits_int32(rows * K, "logits");
}

unsigned row_blocks(long long rows) { return (unsigned)CEIL_DIV(rows, (long long)kRowsPerBlock); }

}  // namespace

// float4 rows: K a multiple of 4 and every (N, K) operand 16-byte aligned.
bool rows_vectorizable(int K, std::initializer_list<ptr_t> row_arrays) {
  return K % 4 == 0 && all_aligned16(row_arrays);
}

// The index and probability-row variants differ only in which label pointer the kernel reads.
template <bool kIndexLabels>
static void launch_forward(ptr_t loss, ptr_t row_max, ptr_t log_sum, ptr_t row_loss, ptr_t logits, ptr_t labels,
                           int N, int K, ptr_t stream) {
  check_rows(N, K);
  require_ptr(loss, "loss");
  require_ptr(row_max, "row_max");
  require_ptr(log_sum, "log_sum");
  require_ptr(row_loss, "row_loss");
  require_ptr(logits, "logits");
  require_ptr(labels, kIndexLabels ? "labels" : "targets");
  cudaStream_t st = as_stream(stream);
  const long long *index = kIndexLabels ? as_ptr<const long long>(labels) : nullptr;
  const float *targets = kIndexLabels ? nullptr : as_ptr<const float>(labels);
  const bool vec4 = rows_vectorizable(K, kIndexLabels ? std::initializer_list<ptr_t>{logits}
                                                       : std::initializer_list<ptr_t>{logits, labels});
  auto kernel = vec4 ? softmax_xent_forward_kernel<kIndexLabels, true> : softmax_xent_forward_kernel<kIndexLabels, false>;
  kernel<<<row_blocks(N), kThreads, 0, st>>>(as_ptr<float>(row_max), as_ptr<float>(log_sum),
                                             as_ptr<float>(row_loss), as_ptr<const float>(logits), index, targets,
                                             N, K);
  CUDA_CHECK_LAUNCH(kIndexLabels ? "softmax_xent_forward_kernel<index>" : "softmax_xent_forward_kernel<prob>");
  mean_kernel<<<1, kMeanThreads, 0, st>>>(as_ptr<float>(loss), as_ptr<const float>(row_loss), N);
  CUDA_CHECK_LAUNCH("mean_kernel");
}

template <bool kIndexLabels>
static void launch_backward(ptr_t dlogits, ptr_t logits, ptr_t row_max, ptr_t log_sum, ptr_t labels, int N, int K,
                            ptr_t stream) {
  check_rows(N, K);
  require_ptr(dlogits, "dlogits");
  require_ptr(logits, "logits");
  require_ptr(row_max, "row_max");
  require_ptr(log_sum, "log_sum");
  require_ptr(labels, kIndexLabels ? "labels" : "targets");
  const long long *index = kIndexLabels ? as_ptr<const long long>(labels) : nullptr;
  const float *targets = kIndexLabels ? nullptr : as_ptr<const float>(labels);
  const bool vec4 = rows_vectorizable(K, kIndexLabels ? std::initializer_list<ptr_t>{dlogits, logits}
                                                       : std::initializer_list<ptr_t>{dlogits, logits, labels});
  auto kernel =
      vec4 ? softmax_xent_backward_kernel<kIndexLabels, true> : softmax_xent_backward_kernel<kIndexLabels, false>;
  kernel<<<row_blocks(N), kThreads, 0, as_stream(stream)>>>(as_ptr<float>(dlogits), as_ptr<const float>(logits),
                                                            as_ptr<const float>(row_max),
                                                            as_ptr<const float>(log_sum), index, targets, N, K);
  CUDA_CHECK_LAUNCH(kIndexLabels ? "softmax_xent_backward_kernel<index>" : "softmax_xent_backward_kernel<prob>");
}

void softmax_xent_forward_index(ptr_t loss, ptr_t row_max, ptr_t log_sum, ptr_t row_loss, ptr_t logits, ptr_t labels,
                                int N, int K, ptr_t stream) {
  launch_forward<true>(loss, row_max, log_sum, row_loss, logits, labels, N, K, stream);
}

void softmax_xent_forward_prob(ptr_t loss, ptr_t row_max, ptr_t log_sum, ptr_t row_loss, ptr_t logits,
                               ptr_t targets, int N, int K, ptr_t stream) {
  launch_forward<false>(loss, row_max, log_sum, row_loss, logits, targets, N, K, stream);
}

void softmax_xent_backward_index(ptr_t dlogits, ptr_t logits, ptr_t row_max, ptr_t log_sum, ptr_t labels, int N,
                                 int K, ptr_t stream) {
  launch_backward<true>(dlogits, logits, row_max, log_sum, labels, N, K, stream);
}

void softmax_xent_backward_prob(ptr_t dlogits, ptr_t logits, ptr_t row_max, ptr_t log_sum, ptr_t targets, int N,
                                int K, ptr_t stream) {
  launch_backward<false>(dlogits, logits, row_max, log_sum, targets, N, K, stream);
}

void softmax_forward(ptr_t y, ptr_t x, long long rows, int K, ptr_t stream) {
  check_rows(rows, K);
  require_ptr(y, "y");
  require_ptr(x, "x");
  softmax_forward_kernel<<<row_blocks(rows), kThreads, 0, as_stream(stream)>>>(as_ptr<float>(y),
                                                                               as_ptr<const float>(x), rows, K);
  CUDA_CHECK_LAUNCH("softmax_forward_kernel");
}

void softmax_backward(ptr_t dx, ptr_t dy, ptr_t y, long long rows, int K, ptr_t stream) {
  check_rows(rows, K);
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(y, "y");
  softmax_backward_kernel<<<row_blocks(rows), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(dx), as_ptr<const float>(dy), as_ptr<const float>(y), rows, K);
  CUDA_CHECK_LAUNCH("softmax_backward_kernel");
}

}  // namespace cudacnn
