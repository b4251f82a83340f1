// `linear` (y = x w^T + b) and the raw `sgemm` binding, on our SGEMM (gemm.cuh).
//
// Linear layers whose output is a handful of tiles (e.g. 57600 -> 32 at batch
// 64: one 64x64 tile, one block) split the reduction instead ("split-K"):
// problem b of the grid's z dimension multiplies the b-th range of in_features
// into its own partial output, and add_partials_kernel adds the partials in
// split order plus the bias (deterministic). The data gradient does the same.
#include <algorithm>

#include "common.cuh"
#include "gemm.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

// Split-K: enough splits of the reduction that the output's 64x64 tiles times
// the splits fill the GPU, each split at least kMinSplitK long.
constexpr long long kSplitTargetBlocks = 256;
constexpr int kMinSplitK = 256;

int gemm_k_splits(int M, int N, int K) {
  const long long tiles = 1LL * CEIL_DIV(M, 64) * CEIL_DIV(N, 64);
  const long long splits = std::min<long long>(CEIL_DIV(kSplitTargetBlocks, tiles), K / kMinSplitK);
  return (int)std::max(1LL, std::min(splits, 65535LL));
}

// Partial-sum floats a split-K GEMM of this shape needs (0: it runs unsplit).
long long split_k_floats(int M, int N, int K) {
  const int splits = gemm_k_splits(M, N, K);
  return splits > 1 ? 1LL * splits * M * N : 0;
}

// C = A * op(B) + column bias for a plain GemmArgs (A not transposed, C contiguous):
// one GEMM when the output tiles fill the GPU, else split-K through `partials`.
template <bool TB>
void gemm_maybe_split_k(GemmArgs g, float *partials, cudaStream_t st) {
  const int splits_wanted = gemm_k_splits(g.M, g.N, g.K);
  if (splits_wanted == 1) {
    launch_gemm<false, TB, false>(g, 1, st);
    return;
  }
  const int per = CEIL_DIV(g.K, splits_wanted), splits = CEIL_DIV(g.K, per);  // no empty split
  float *out = g.C;
  const float *bias = g.bias_mode == 2 ? g.bias : nullptr;
  const bool relu = g.relu;
  g.k_total = g.K;
  g.K = per;
  g.a_b = per;                                  // A (M x K, row-major): next columns
  g.b_b = TB ? per : 1LL * per * g.ldb;         // op(B) = B^T (N x K) or B (K x N): next k
  g.C = partials;
  g.c_b = 1LL * g.M * g.N;
  g.bias = nullptr;
  g.bias_mode = 0;
  g.relu = false;  // applied once the partials are summed
  launch_gemm<false, TB, false>(g, splits, st);
  add_partials(out, partials, g.M * g.N, splits, bias, g.N, relu, st);
}

}  // namespace

void sgemm_strided_batched(float *C, const float *A, const float *B, int M, int N, int K, int problems,
                           long long a_stride, long long b_stride, long long c_stride, cudaStream_t stream) {
  GemmArgs g = plain_gemm(C, A, B, M, N, K, false, false);
  g.a_b = a_stride;
  g.b_b = b_stride;
  g.c_b = c_stride;
  launch_gemm<false, false, false>(g, problems, stream);
}

void sgemm(ptr_t c, ptr_t a, ptr_t b, int M, int N, int K, bool trans_a, bool trans_b, float alpha, float beta,
           ptr_t stream) {
  require_positive(M, "M");
  require_positive(N, "N");
  require_positive(K, "K");
  require_ptr(c, "C");
  require_ptr(a, "A");
  require_ptr(b, "B");
  require_fits_int32(1LL * M * K, "A");
  require_fits_int32(1LL * K * N, "B");
  require_fits_int32(1LL * M * N, "C");
  GemmArgs g = plain_gemm(as_ptr<float>(c), as_ptr<const float>(a), as_ptr<const float>(b), M, N, K, trans_a, trans_b);
  g.alpha = alpha;
  g.beta = beta;
  launch_gemm_any(g, trans_a, trans_b, as_stream(stream));
}

// Workspace floats: the larger of the forward's and the data gradient's split-K partials.
long long linear_workspace(int batch, int in_features, int out_features) {
  require_positive(batch, "batch");
  require_positive(in_features, "in_features");
  require_positive(out_features, "out_features");
  return std::max(split_k_floats(batch, out_features, in_features), split_k_floats(batch, in_features, out_features));
}

static void check_linear(int batch, int in_features, int out_features, ptr_t workspace, long long workspace_size) {
  require_fits_int32(1LL * batch * in_features, "linear input");
  require_fits_int32(1LL * out_features * in_features, "linear weight");
  require_fits_int32(1LL * batch * out_features, "linear output");
  const long long needed = linear_workspace(batch, in_features, out_features);
  require(workspace_size >= needed, "linear: workspace of " + std::to_string(workspace_size) +
                                        " floats is smaller than the " + std::to_string(needed) + " needed");
  if (needed > 0) require_ptr(workspace, "workspace");
}

void linear_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace, long long workspace_size,
                    int batch, int in_features, int out_features, ptr_t stream) {
  check_linear(batch, in_features, out_features, workspace, workspace_size);
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_ptr(w, "w");
  // y = x (batch x in) * w^T (in x out)
  GemmArgs g = plain_gemm(as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(w), batch, out_features,
                          in_features, false, true);
  g.bias = bias != 0 ? as_ptr<const float>(bias) : nullptr;
  g.bias_mode = bias != 0 ? 2 : 0;
  g.relu = relu;
  gemm_maybe_split_k<true>(g, as_ptr<float>(workspace), as_stream(stream));
}

void linear_backward(ptr_t dx, ptr_t dw, ptr_t dy, ptr_t x, ptr_t w, ptr_t workspace, long long workspace_size,
                     int batch, int in_features, int out_features, ptr_t stream) {
  check_linear(batch, in_features, out_features, workspace, workspace_size);
  require_ptr(dw, "dw");
  require_ptr(dy, "dy");
  require_ptr(x, "x");
  if (dx != 0) require_ptr(w, "w");
  cudaStream_t st = as_stream(stream);
  if (dx != 0) {  // dx (batch x in) = dy (batch x out) * w (out x in)
    gemm_maybe_split_k<false>(plain_gemm(as_ptr<float>(dx), as_ptr<const float>(dy), as_ptr<const float>(w), batch,
                                         in_features, out_features, false, false),
                              as_ptr<float>(workspace), st);
  }
  // dw (out x in) = dy^T (out x batch) * x (batch x in)
  launch_gemm<true, false, false>(plain_gemm(as_ptr<float>(dw), as_ptr<const float>(dy), as_ptr<const float>(x),
                                             out_features, in_features, batch, true, false),
                                  1, st);
}

}  // namespace cudacnn
