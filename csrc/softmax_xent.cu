// Softmax (last axis) and fused softmax-cross-entropy, float32, rows of K.
//
// One warp per row: a max pass, a sum-of-exponentials pass (log-sum-exp), then
// the outputs; lanes stride along the row so reads are coalesced, and the warp
// reductions use a fixed shuffle tree. The loss is the mean of the per-row
// losses, summed in row order by a single block (deterministic).
//   loss_row = -sum_k t_k * log_softmax(z)_k      (t: one-hot of the label, or a probability row)
//   dlogits  = (softmax(z) * sum_k t_k - t) / N   (= (p - onehot) / N for labels)
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

// INDEX: labels are int32 class indices; else targets are (N, K) rows.
template <bool INDEX>
__global__ void softmax_xent_forward_kernel(float *__restrict__ probs, float *__restrict__ row_loss,
                                            const float *__restrict__ logits, const int *__restrict__ labels,
                                            const float *__restrict__ targets, int N, int K) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;  // whole warps leave together
  const float *x = logits + (long long)row * K;
  const float m = row_max(x, K, lane);
  const float log_norm = logf(row_sum_exp(x, K, lane, m));
  float *p = probs + (long long)row * K;
  for (int k = lane; k < K; k += 32) p[k] = expf(x[k] - m - log_norm);
  float loss;
  if (INDEX) {
    const int label = labels[row];
    // Out-of-range labels are refused in Python; never read outside the row.
    loss = (label >= 0 && label < K) ? -(x[label] - m - log_norm) : NAN;
  } else {
    const float *t = targets + (long long)row * K;
    float dot = 0.0f;
    for (int k = lane; k < K; k += 32) dot = fmaf(t[k], x[k] - m - log_norm, dot);
    loss = -warp_reduce_sum(dot);
  }
  if (lane == 0) row_loss[row] = loss;
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

template <bool INDEX>
__global__ void softmax_xent_backward_kernel(float *__restrict__ dlogits, const float *__restrict__ probs,
                                             const int *__restrict__ labels, const float *__restrict__ targets,
                                             int N, int K) {
  const int row = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const float *p = probs + (long long)row * K;
  float *d = dlogits + (long long)row * K;
  const float n = (float)N;
  if (INDEX) {
    const int label = labels[row];
    for (int k = lane; k < K; k += 32) d[k] = (p[k] - (k == label ? 1.0f : 0.0f)) / n;
  } else {
    const float *t = targets + (long long)row * K;
    float total = 0.0f;
    for (int k = lane; k < K; k += 32) total += t[k];
    total = warp_reduce_sum(total);
    for (int k = lane; k < K; k += 32) d[k] = (p[k] * total - t[k]) / n;
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

// The index and probability-row variants differ only in which label pointer the kernel reads.
template <bool kIndexLabels>
static void launch_forward(ptr_t loss, ptr_t probs, ptr_t row_loss, ptr_t logits, ptr_t labels, int N, int K,
                           ptr_t stream) {
  const char *label_name = kIndexLabels ? "labels" : "targets";
  check_rows(N, K);
  require_ptr(loss, "loss");
  require_ptr(probs, "probs");
  require_ptr(row_loss, "row_loss");
  require_ptr(logits, "logits");
  require_ptr(labels, label_name);
  cudaStream_t st = as_stream(stream);
  softmax_xent_forward_kernel<kIndexLabels><<<row_blocks(N), kThreads, 0, st>>>(
      as_ptr<float>(probs), as_ptr<float>(row_loss), as_ptr<const float>(logits),
      kIndexLabels ? as_ptr<const int>(labels) : nullptr, kIndexLabels ? nullptr : as_ptr<const float>(labels), N, K);
  CUDA_CHECK_LAUNCH(kIndexLabels ? "softmax_xent_forward_kernel<index>" : "softmax_xent_forward_kernel<prob>");
  mean_kernel<<<1, kMeanThreads, 0, st>>>(as_ptr<float>(loss), as_ptr<const float>(row_loss), N);
  CUDA_CHECK_LAUNCH("mean_kernel");
}

template <bool kIndexLabels>
static void launch_backward(ptr_t dlogits, ptr_t probs, ptr_t labels, int N, int K, ptr_t stream) {
  check_rows(N, K);
  require_ptr(dlogits, "dlogits");
  require_ptr(probs, "probs");
  require_ptr(labels, kIndexLabels ? "labels" : "targets");
  softmax_xent_backward_kernel<kIndexLabels><<<row_blocks(N), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(dlogits), as_ptr<const float>(probs), kIndexLabels ? as_ptr<const int>(labels) : nullptr,
      kIndexLabels ? nullptr : as_ptr<const float>(labels), N, K);
  CUDA_CHECK_LAUNCH(kIndexLabels ? "softmax_xent_backward_kernel<index>" : "softmax_xent_backward_kernel<prob>");
}

void softmax_xent_forward_index(ptr_t loss, ptr_t probs, ptr_t row_loss, ptr_t logits, ptr_t labels, int N, int K,
                                ptr_t stream) {
  launch_forward<true>(loss, probs, row_loss, logits, labels, N, K, stream);
}

void softmax_xent_forward_prob(ptr_t loss, ptr_t probs, ptr_t row_loss, ptr_t logits, ptr_t targets, int N, int K,
                               ptr_t stream) {
  launch_forward<false>(loss, probs, row_loss, logits, targets, N, K, stream);
}

void softmax_xent_backward_index(ptr_t dlogits, ptr_t probs, ptr_t labels, int N, int K, ptr_t stream) {
  launch_backward<true>(dlogits, probs, labels, N, K, stream);
}

void softmax_xent_backward_prob(ptr_t dlogits, ptr_t probs, ptr_t targets, int N, int K, ptr_t stream) {
  launch_backward<false>(dlogits, probs, targets, N, K, stream);
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
