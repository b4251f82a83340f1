// im2col / col2im and convolution through our SGEMM (gemm.cuh).
//
// Convolution (per chunk of images): col[b] = im2col(x[n]) is (C*R*S) x (P*Q),
// rows (c, r, s), columns (p, q); group g owns rows g*Cg*R*S ... Then
//   forward         y[n, g]  = W[g] (Kg x CgRS) * col[b, g]                 (+ bias)
//   backward data   col[b,g] = W[g]^T * dy[n, g];  dx = col2im(col)  (a gather: no atomics)
//   backward weight dW[g]    = sum_n dy[n, g] (Kg x PQ) * col[b, g]^T
// The forward never stores col: the GEMM's loads of B gather it from x on the
// fly ("implicit im2col"), which saves writing and re-reading R*S copies of x.
// For stride 1 the data gradient is such a forward too (of dy, with the filters
// flipped and transposed); other strides use the column matrix and col2im. The
// weight gradient gathers B^T from x the same way.
// The weight-gradient reduction over images is split across blocks into
// partial sums that a second kernel adds in a fixed order (deterministic).
// 1x1 convolutions with stride 1 and no padding use x itself as the column matrix.
#include <algorithm>

#include "common.cuh"
#include "conv_flip.cuh"
#include "gemm.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

constexpr int kThreads = 256;

// Divisors of col2im's index arithmetic, built once on the host.
struct Col2imDivs {
  FastDiv W, H, C, stride_h, stride_w;
  explicit Col2imDivs(const Conv2dShape &s) : W(s.W), H(s.H), C(s.C), stride_h(s.stride_h), stride_w(s.stride_w) {}
};

// col[b][(c*R + r)*S + s][p*Q + q] stands for x[n0 + b, c, p*sh - pt + r*dh, q*sw - pl + s*dw];
// dx[n0 + b, c, ih, iw] = the sum of the col entries that stand for it.
__global__ void col2im_kernel(float *__restrict__ dx, const float *__restrict__ col, Conv2dShape s, Col2imDivs d,
                              int n0, int images) {
  const int PQ = s.P * s.Q;
  const int total = images * s.C * s.H * s.W;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int t = d.W.div(idx);
    const int iw = idx - t * s.W;
    const int t2 = d.H.div(t), ih = t - t2 * s.H;
    const int b = d.C.div(t2), c = t2 - b * s.C;
    float acc = 0.0f;
    for_each_output_reading(ih, iw, s, d.stride_h, d.stride_w, [&](int r, int sx, int p, int q) {
      acc += col[(((long long)b * s.C + c) * s.R + r) * s.S * PQ + (long long)sx * PQ + p * s.Q + q];
    });
    dx[(long long)n0 * s.C * s.H * s.W + idx] = acc;
  }
}

// The GEMM's B operand is gathered from x on the fly (IMPLICIT_B): the geometry
// and the divisors of its index arithmetic.
void gather_columns_from(GemmArgs *g, const Conv2dShape &s) {
  g->conv = s;
  g->rs_div = FastDiv(1LL * s.R * s.S);
  g->s_div = FastDiv(s.S);
  g->q_div = FastDiv(s.Q);
  g->pq_div = FastDiv(1LL * s.P * s.Q);
}

bool is_pointwise(const Conv2dShape &s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_bottom == 0 &&
         s.pad_left == 0 && s.pad_right == 0;
}

long long col_floats(const Conv2dShape &s, int chunk) {
  return is_pointwise(s) ? 0 : 1LL * chunk * s.C * s.R * s.S * s.P * s.Q;
}

// Weight gradient: the chunk's images are split into `splits` groups of
// `per_split` images; each group's GEMM reduces over per_split*P*Q terms into
// its own partial sum. Enough splits to fill the GPU, not so many that each
// reduction gets short.
constexpr long long kWeightTargetBlocks = 256;
constexpr long long kWeightMinTerms = 1024;

// Upper bound on the splits for `images` images (non-decreasing in `images`,
// so the workspace sized for a full chunk also fits a ragged last chunk).
int max_weight_splits(const Conv2dShape &s, int images) {
  const int Kg = s.K / s.groups, CgRS = (s.C / s.groups) * s.R * s.S;
  const long long tiles = 1LL * CEIL_DIV(Kg, 64) * CEIL_DIV(CgRS, 64) * s.groups;
  long long n = std::min<long long>(images, CEIL_DIV(kWeightTargetBlocks, tiles));
  n = std::min(n, std::max(1LL, 1LL * images * s.P * s.Q / kWeightMinTerms));
  return (int)std::max(1LL, std::min(n, 65535LL / s.groups));
}

void weight_splits(const Conv2dShape &s, int images, int *splits, int *per_split) {
  *per_split = CEIL_DIV(images, max_weight_splits(s, images));
  *splits = CEIL_DIV(images, *per_split);  // <= max_weight_splits(s, images)
}

// y = conv(x, w) + bias (then ReLU if asked) for a validated shape: one GEMM per
// (image, group), B gathered from x on the fly (or x itself for pointwise convolutions).
void forward_gemm(float *y, const float *x, const float *w, const float *bias, bool relu, const Conv2dShape &s,
                  cudaStream_t st) {
  const bool pointwise = is_pointwise(s);
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, PQ = s.P * s.Q;
  const long long CgRS = 1LL * Cg * s.R * s.S, CHW = 1LL * s.C * s.H * s.W;
  // Nothing is stored per image, so each launch takes as many images as the grid allows.
  const int images_per_launch = std::min(s.N, 65535 / s.groups);
  for (int n0 = 0; n0 < s.N; n0 += images_per_launch) {
    const int images = std::min(images_per_launch, s.N - n0);
    GemmArgs g{};
    g.M = Kg; g.N = PQ; g.K = (int)CgRS;
    g.A = w; g.lda = CgRS; g.a_b = 0; g.a_g = Kg * CgRS;
    // B: x of image n0 + b, group g. Pointwise: x is the column matrix itself (ldb = PQ = H*W).
    g.B = x + n0 * CHW; g.ldb = PQ; g.b_b = CHW; g.b_g = 1LL * Cg * s.H * s.W;
    g.C = y + (long long)n0 * s.K * PQ; g.ldc = PQ; g.c_b = 1LL * s.K * PQ; g.c_g = 1LL * Kg * PQ;
    g.z_inner = s.groups; g.ksplit = 1;
    g.alpha = 1.0f; g.beta = 0.0f;
    g.bias = bias;
    g.bias_mode = bias != nullptr ? 1 : 0;
    g.bias_g = Kg;
    g.relu = relu;
    if (pointwise) {
      launch_gemm<false, false, false>(g, images * s.groups, st);
    } else {
      gather_columns_from(&g, s);
      launch_gemm<false, false, false, true>(g, images * s.groups, st);
    }
  }
}

// Stride-1 data gradients run as forwards (conv_flip.cuh); pointwise ones are
// a plain GEMM into dx already.
bool backward_data_as_forward(const Conv2dShape &s) { return !is_pointwise(s) && data_gradient_is_a_forward(s); }

void check_im2col_args(const Conv2dShape &s, ptr_t workspace, long long workspace_size, int chunk, ConvPass pass) {
  const long long need = conv2d_im2col_workspace(s, chunk, pass);  // validates the shape, chunk and pass
  if (pass == ConvPass::kBackwardData && !backward_data_as_forward(s))
    require_fits_int32(col_floats(s, chunk), "conv2d im2col column matrix");
  require(1LL * chunk * s.groups <= 65535, "conv2d im2col: chunk * groups must be <= 65535");
  if (need > 0) {
    require_ptr(workspace, "workspace");
    require(workspace_size >= need, "conv2d im2col: workspace of " + std::to_string(workspace_size) +
                                        " floats is smaller than the " + std::to_string(need) + " needed");
  }
}

}  // namespace

long long conv2d_im2col_workspace(const Conv2dShape &s, int chunk, ConvPass pass) {
  s.validate();
  require(chunk >= 1 && chunk <= s.N, "conv2d im2col: chunk must be in [1, N], got " + std::to_string(chunk));
  switch (pass) {
    case ConvPass::kForward: return 0;  // implicit im2col: nothing stored
    case ConvPass::kBackwardData: return backward_data_as_forward(s) ? s.w_size() : col_floats(s, chunk);
    case ConvPass::kBackwardWeight: return 1LL * max_weight_splits(s, s.N) * s.w_size();  // partial sums only
  }
  throw std::invalid_argument("conv2d im2col: unknown pass " + std::to_string(static_cast<int>(pass)));
}

void conv2d_im2col_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace,
                           long long workspace_size, int chunk, const Conv2dShape &s, ptr_t stream) {
  check_im2col_args(s, workspace, workspace_size, chunk, ConvPass::kForward);
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_ptr(w, "w");
  forward_gemm(as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(w),
               bias != 0 ? as_ptr<const float>(bias) : nullptr, relu, s, as_stream(stream));
}

void conv2d_im2col_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size, int chunk,
                                 const Conv2dShape &s, ptr_t stream) {
  check_im2col_args(s, workspace, workspace_size, chunk, ConvPass::kBackwardData);
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(w, "w");
  cudaStream_t st = as_stream(stream);
  if (backward_data_as_forward(s)) {
    const Conv2dShape t = data_gradient_shape(s);
    t.validate();
    float *wt = as_ptr<float>(workspace);
    flip_transpose_filters(wt, as_ptr<const float>(w), s, st);
    forward_gemm(as_ptr<float>(dx), as_ptr<const float>(dy), wt, nullptr, false, t, st);
    return;
  }
  const bool pointwise = is_pointwise(s);
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, PQ = s.P * s.Q;
  const long long CRS = 1LL * s.C * s.R * s.S, CgRS = 1LL * Cg * s.R * s.S;
  for (int n0 = 0; n0 < s.N; n0 += chunk) {
    const int images = std::min(chunk, s.N - n0);
    // Pointwise: the column matrix is dx itself.
    float *col = pointwise ? as_ptr<float>(dx) + (long long)n0 * s.C * s.H * s.W : as_ptr<float>(workspace);
    GemmArgs g{};
    g.M = (int)CgRS; g.N = PQ; g.K = Kg;
    g.A = as_ptr<const float>(w); g.lda = CgRS; g.a_b = 0; g.a_g = Kg * CgRS;
    g.B = as_ptr<const float>(dy) + (long long)n0 * s.K * PQ; g.ldb = PQ; g.b_b = 1LL * s.K * PQ; g.b_g = 1LL * Kg * PQ;
    g.C = col; g.ldc = PQ; g.c_b = CRS * PQ; g.c_g = CgRS * PQ;
    g.z_inner = s.groups; g.ksplit = 1;
    g.alpha = 1.0f; g.beta = 0.0f;
    launch_gemm<true, false, false>(g, images * s.groups, st);
    if (!pointwise) {
      const long long count = 1LL * images * s.C * s.H * s.W;
      col2im_kernel<<<elementwise_blocks(count, kThreads), kThreads, 0, st>>>(as_ptr<float>(dx), col, s,
                                                                             Col2imDivs(s), n0, images);
      CUDA_CHECK_LAUNCH("col2im_kernel");
    }
  }
}

void conv2d_im2col_backward_weight(ptr_t dw, ptr_t dy, ptr_t x, ptr_t workspace, long long workspace_size,
                                   int chunk, const Conv2dShape &s, ptr_t stream) {
  check_im2col_args(s, workspace, workspace_size, chunk, ConvPass::kBackwardWeight);
  require_ptr(dw, "dw");
  require_ptr(dy, "dy");
  require_ptr(x, "x");
  cudaStream_t st = as_stream(stream);
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, PQ = s.P * s.Q;
  const long long CgRS = 1LL * Cg * s.R * s.S, CHW = 1LL * s.C * s.H * s.W;
  float *partials = as_ptr<float>(workspace);
  const int count = (int)s.w_size();
  // The whole batch at once (no column matrix is stored), its images split
  // across blocks into partial sums.
  int splits, per_split;
  weight_splits(s, s.N, &splits, &per_split);
  GemmArgs g{};
  g.M = Kg; g.N = (int)CgRS;
  g.K = per_split * PQ; g.k_total = 1LL * s.N * PQ;
  // A = dy viewed as Kg x (N*PQ): column k lives in image k / PQ.
  g.A = as_ptr<const float>(dy); g.lda = PQ;
  g.a_b = 1LL * per_split * s.K * PQ; g.a_g = 1LL * Kg * PQ; g.ka_stride = 1LL * s.K * PQ;
  // B^T = the column matrix, CgRS x (N*PQ) with the same split of its columns,
  // gathered from x (pointwise: x's channel rows are the column matrix).
  g.B = as_ptr<const float>(x); g.ldb = PQ; g.b_b = per_split * CHW; g.b_g = 1LL * Cg * s.H * s.W; g.kb_stride = CHW;
  g.ksplit = PQ;
  g.C = partials; g.ldc = CgRS; g.c_b = count; g.c_g = Kg * CgRS;
  g.z_inner = s.groups;
  g.alpha = 1.0f; g.beta = 0.0f;
  if (is_pointwise(s)) {
    launch_gemm<false, true, true>(g, splits * s.groups, st);
  } else {
    gather_columns_from(&g, s);
    launch_gemm<false, true, true, true>(g, splits * s.groups, st);
  }
  add_partials(as_ptr<float>(dw), partials, count, splits, nullptr, 1, false, st);
}

}  // namespace cudacnn
