// Host launchers of every kernel family, as bound by bindings.cpp.
// Convention: outputs first, then inputs, then sizes and scalars, then the stream.
// Pointers and streams are integers (cupy device pointers / cudaStream_t).
// Every launcher validates its sizes and pointers and throws std::invalid_argument
// (Python ValueError) before touching the device.
#pragma once
#include <cstdint>
#include <vector>

namespace cudacnn {

using ptr_t = std::uintptr_t;

// ---- conv geometry shared by direct and im2col convolution -----------------
struct Conv2dShape {
  int N, C, H, W;          // input
  int K, R, S;             // filters: (K, C/groups, R, S)
  int P, Q;                // output spatial size
  int stride_h, stride_w;
  int pad_top, pad_bottom, pad_left, pad_right;
  int dil_h, dil_w;
  int groups;
  void validate() const;   // throws std::invalid_argument naming the fault
  long long x_size() const { return 1LL * N * C * H * W; }
  long long y_size() const { return 1LL * N * K * P * Q; }
  long long w_size() const { return 1LL * K * (C / groups) * R * S; }
};

// ---- conv2d.cu: direct convolution -----------------------------------------
// Every forward adds the bias and, with relu = true, applies ReLU in its epilogue (ops' activation="relu").
void conv2d_direct_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, const Conv2dShape &s, ptr_t stream);
// Floats of workspace (flipped filters) the data gradient needs: stride-1 ones run as a forward.
long long conv2d_direct_backward_data_workspace(const Conv2dShape &s);
void conv2d_direct_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size,
                                 const Conv2dShape &s, ptr_t stream);
// The direct forward stages input and filter tiles in shared memory; very large
// filters or strides do not fit, and then the im2col path must be used.
bool conv2d_direct_supported(const Conv2dShape &s);
// Floats of workspace for the split reduction of the weight gradient.
long long conv2d_direct_backward_weight_workspace(const Conv2dShape &s);
void conv2d_direct_backward_weight(ptr_t dw, ptr_t dy, ptr_t x, ptr_t workspace, long long workspace_size,
                                   const Conv2dShape &s, ptr_t stream);

// ---- im2col_gemm.cu: im2col/col2im + our SGEMM (gemm.cuh) -----------------
// im2col + SGEMM. The forward and the weight gradient gather their column
// matrices on the fly, as does the data gradient of stride-1 convolutions (a
// forward with flipped filters); only the data gradient of strided ones stores
// column matrices, for `chunk` images at a time. The caller allocates the
// workspace this reports (floats): column matrices, flipped filters or the
// weight gradient's partial sums, by pass.
enum class ConvPass : int { kForward = 0, kBackwardData = 1, kBackwardWeight = 2 };
long long conv2d_im2col_workspace(const Conv2dShape &s, int chunk, ConvPass pass);
void conv2d_im2col_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace,
                           long long workspace_size, int chunk, const Conv2dShape &s, ptr_t stream);
void conv2d_im2col_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size, int chunk,
                                 const Conv2dShape &s, ptr_t stream);
void conv2d_im2col_backward_weight(ptr_t dw, ptr_t dy, ptr_t x, ptr_t workspace, long long workspace_size,
                                   int chunk, const Conv2dShape &s, ptr_t stream);

// ---- winograd.cu: Winograd F(2x2, 3x3) -------------------------------------
// 3x3 filters, stride 1, dilation 1, groups 1; the data gradient also needs
// padding <= 2 per side. The caller allocates the workspace this reports
// (floats): transformed filters and, for `chunk` images, transformed tiles.
bool conv2d_winograd_supported(const Conv2dShape &s, ConvPass pass);
long long conv2d_winograd_workspace(const Conv2dShape &s, int chunk, ConvPass pass);
void conv2d_winograd_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace,
                             long long workspace_size, int chunk, const Conv2dShape &s, ptr_t stream);
void conv2d_winograd_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size, int chunk,
                                   const Conv2dShape &s, ptr_t stream);

// ---- linear.cu: linear layers and the raw SGEMM ----------------------------
// C (M, N) = alpha * op(A) * op(B) + beta * C, row-major, op = transpose when trans_*.
void sgemm(ptr_t c, ptr_t a, ptr_t b, int M, int N, int K, bool trans_a, bool trans_b, float alpha, float beta,
           ptr_t stream);
// Floats of workspace (split-K partial sums) linear_forward and linear_backward need; often 0.
long long linear_workspace(int batch, int in_features, int out_features);
// y (batch, out) = x (batch, in) * w(out, in)^T + bias, then ReLU if relu
void linear_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace, long long workspace_size,
                    int batch, int in_features, int out_features, ptr_t stream);
// dx = dy * w (optional: dx may be 0), dw = dy^T * x
void linear_backward(ptr_t dx, ptr_t dw, ptr_t dy, ptr_t x, ptr_t w, ptr_t workspace, long long workspace_size,
                     int batch, int in_features, int out_features, ptr_t stream);

// ---- elementwise.cu ---------------------------------------------------------
// out[c] = sum over n and hw of x[n, c, hw]  (bias gradients; deterministic)
void channel_sum(ptr_t out, ptr_t x, int N, int C, long long HW, ptr_t stream);
enum Activation : int { kRelu = 0, kLeakyRelu = 1, kElu = 2, kSigmoid = 3, kTanh = 4 };
void activation_forward(ptr_t y, ptr_t x, long long n, int kind, float param, ptr_t stream);
// relu/leaky/elu take the forward input in `xy`, sigmoid/tanh the forward output.
void activation_backward(ptr_t dx, ptr_t dy, ptr_t xy, long long n, int kind, float param, ptr_t stream);
// keep i iff uniform(seed, i) >= rate; kept elements times float(1 / (1 - rate)) (rounded from double).
void dropout_apply(ptr_t y, ptr_t x, long long n, double rate, std::uint32_t seed, ptr_t stream);
// ---- optimizers.cu: in-place updates of whole weight lists ------------------
// Tensor i has n[i] elements at p[i] (gradient g[i], state in the other lists).
// Hyper-parameters arrive in double; constants such as 1 - rho are formed in
// double and rounded once to float, as the NumPy reference does.
void sgd_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &velocity,
                const std::vector<long long> &n, double lr, double momentum, bool nesterov, double weight_decay,
                ptr_t stream);
void rmsprop_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &mean_square,
                    const std::vector<long long> &n, double lr, double rho, double eps, double weight_decay,
                    ptr_t stream);
void adam_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &m,
                 const std::vector<ptr_t> &v, const std::vector<long long> &n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, long long step, ptr_t stream);

// ---- pooling.cu -------------------------------------------------------------
struct Pool2dShape {
  int N, C, H, W;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_top, pad_bottom, pad_left, pad_right;
  int P, Q;
  void validate() const;
};
void max_pool2d_forward(ptr_t y, ptr_t indices, ptr_t x, const Pool2dShape &s, ptr_t stream);
void max_pool2d_backward(ptr_t dx, ptr_t dy, ptr_t indices, const Pool2dShape &s, ptr_t stream);
void avg_pool2d_forward(ptr_t y, ptr_t x, const Pool2dShape &s, bool count_include_pad, ptr_t stream);
void avg_pool2d_backward(ptr_t dx, ptr_t dy, const Pool2dShape &s, bool count_include_pad, ptr_t stream);
void global_avg_pool2d_forward(ptr_t y, ptr_t x, int N, int C, int HW, ptr_t stream);
void global_avg_pool2d_backward(ptr_t dx, ptr_t dy, int N, int C, int HW, ptr_t stream);

// ---- batchnorm.cu (x viewed as (N, C, HW); HW = 1 for (N, C) input) --------
// Floats of workspace for the per-channel partial sums and the pipeline's counters.
long long batch_norm_workspace(int N, int C, int HW);
// Training forward in one launch: mean and inv_std = 1/sqrt(var + eps) per channel
// (biased variance), running stats updated in place (unbiased variance), PyTorch
// semantics, and y = (x - mean) * inv_std * gamma + beta. lag_bytes: how far
// (in bytes of input) the normalisation trails the statistics, so it re-reads x
// from L2; 0: after all of them (x read from DRAM twice).
void batch_norm_forward_train(ptr_t y, ptr_t mean, ptr_t inv_std, ptr_t running_mean, ptr_t running_var, ptr_t x,
                              ptr_t gamma, ptr_t beta, ptr_t workspace, long long workspace_size, int N, int C,
                              int HW, float momentum, float eps, long long lag_bytes, ptr_t stream);
// Inference forward: y = (x - mean) * inv_std * gamma + beta with given statistics.
void batch_norm_normalize(ptr_t y, ptr_t x, ptr_t mean, ptr_t inv_std, ptr_t gamma, ptr_t beta, int N, int C,
                          int HW, ptr_t stream);
// With x_hat = (x - mean) * inv_std recomputed from the forward's x and statistics:
// dbeta = sum dy, dgamma = sum dy * x_hat; dx = gamma * inv_std * dy (inference statistics) or,
// in training, gamma * inv_std * (dy - dbeta / M - x_hat * dgamma / M), M = N * HW.
// One launch; lag_bytes as in batch_norm_forward_train (dy and x both count).
void batch_norm_backward(ptr_t dx, ptr_t dgamma, ptr_t dbeta, ptr_t dy, ptr_t x, ptr_t mean, ptr_t inv_std,
                         ptr_t gamma, ptr_t workspace, long long workspace_size, int N, int C, int HW, bool training,
                         long long lag_bytes, ptr_t stream);

// ---- softmax_xent.cu --------------------------------------------------------
// loss scalar (mean over rows); per row: row_max, log_sum (log sum exp(logits - row_max)),
// row_loss. labels: int64 (N,) class indices, or float (N, K) probability rows.
void softmax_xent_forward_index(ptr_t loss, ptr_t row_max, ptr_t log_sum, ptr_t row_loss, ptr_t logits, ptr_t labels,
                                int N, int K, ptr_t stream);
void softmax_xent_forward_prob(ptr_t loss, ptr_t row_max, ptr_t log_sum, ptr_t row_loss, ptr_t logits,
                               ptr_t targets, int N, int K, ptr_t stream);
// dlogits from the logits and the forward's row statistics.
void softmax_xent_backward_index(ptr_t dlogits, ptr_t logits, ptr_t row_max, ptr_t log_sum, ptr_t labels, int N,
                                 int K, ptr_t stream);
void softmax_xent_backward_prob(ptr_t dlogits, ptr_t logits, ptr_t row_max, ptr_t log_sum, ptr_t targets, int N,
                                int K, ptr_t stream);
void softmax_forward(ptr_t y, ptr_t x, long long rows, int K, ptr_t stream);
void softmax_backward(ptr_t dx, ptr_t dy, ptr_t y, long long rows, int K, ptr_t stream);

}  // namespace cudacnn
