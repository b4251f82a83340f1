// Direct 2-D convolution, NCHW float32, any stride / padding / dilation / groups.
//
//   y[n, k, p, q] = b[k] + sum_{c in group(k), r, s} x[n, c, p*sh - pt + r*dh, q*sw - pl + s*dw] * w[k, c, r, s]
//
// Forward: a block computes a TP x TQ tile of output positions for TK output
// channels of one image. Per stage it copies CH input channels of the input
// patch the tile needs (zero where the window hangs over the padding) and the
// matching filter slices into shared memory; each thread then accumulates its
// output position for the TK channels in registers.
// Backward data: for stride 1 the forward kernel run on dy with flipped,
// transposed filters (conv_flip.cuh); otherwise a gather (one thread per dx
// element walks the (k, r, s) that touch it), so no atomics. Backward weight:
// one block per (k, c) filter plane (and per split of the n*p*q reduction);
// splits are summed in a fixed order by a second kernel, so results are
// deterministic.
#include <algorithm>

#include "common.cuh"
#include "conv_flip.cuh"
#include "launchers.h"

namespace cudacnn {

void Conv2dShape::validate() const {
  const std::string dims = "conv2d (N=" + std::to_string(N) + ", C=" + std::to_string(C) + ", H=" +
                           std::to_string(H) + ", W=" + std::to_string(W) + ", K=" + std::to_string(K) +
                           ", R=" + std::to_string(R) + ", S=" + std::to_string(S) + ")";
  require(N > 0 && C > 0 && H > 0 && W > 0 && K > 0 && R > 0 && S > 0, dims + ": every size must be positive");
  require(stride_h > 0 && stride_w > 0, dims + ": strides must be positive");
  require(dil_h > 0 && dil_w > 0, dims + ": dilations must be positive");
  require(pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0, dims + ": padding must be >= 0");
  require(groups > 0 && C % groups == 0 && K % groups == 0,
          dims + ": groups=" + std::to_string(groups) + " must divide C and K");
  const long long span_h = 1LL * dil_h * (R - 1) + 1, span_w = 1LL * dil_w * (S - 1) + 1;
  require(H + pad_top + pad_bottom >= span_h && W + pad_left + pad_right >= span_w,
          dims + ": the (dilated) filter is larger than the padded input");
  const long long expect_p = (H + pad_top + pad_bottom - span_h) / stride_h + 1;
  const long long expect_q = (W + pad_left + pad_right - span_w) / stride_w + 1;
  require(P == expect_p && Q == expect_q, dims + ": output size (" + std::to_string(P) + ", " + std::to_string(Q) +
                                              ") does not match the geometry, expected (" +
                                              std::to_string(expect_p) + ", " + std::to_string(expect_q) + ")");
  require_fits_int32(x_size(), "conv2d input");
  require_fits_int32(y_size(), "conv2d output");
  require_fits_int32(w_size(), "conv2d weight");
}

namespace {

// ---- forward ------------------------------------------------------------------

// Shared-memory budget of the forward kernel: the default 48 KB a block gets
// without opting in, so it runs on every architecture we build for.
constexpr int kForwardSmemBytes = 48 * 1024;
// Input channels staged per pass: more channels per stage means fewer
// __syncthreads, bounded by the shared-memory budget.
constexpr int kForwardMaxChannelsPerStage = 8;

struct ForwardTiling {
  int TP, TQ;   // output tile (threads: TQ x TP)
  int TK;       // output channels per thread
  int IH, IW;   // input patch of the tile
  int CH;       // input channels per stage (0: does not fit)
  size_t smem_bytes;
};

int pow2_at_least(int v) {
  int p = 1;
  while (p < v) p <<= 1;
  return p;
}

ForwardTiling forward_tiling(const Conv2dShape &s) {
  ForwardTiling t{};
  // Wide rows keep global loads and stores coalesced; 1-D convolutions (P == 1)
  // put all 256 threads along the row.
  t.TQ = std::min(pow2_at_least(s.Q), s.P == 1 ? 256 : 32);
  t.TP = std::min(pow2_at_least(s.P), 256 / t.TQ);
  const int Kg = s.K / s.groups;
  t.TK = Kg >= 16 ? 16 : Kg >= 8 ? 8 : Kg >= 4 ? 4 : 1;
  t.IH = (t.TP - 1) * s.stride_h + (s.R - 1) * s.dil_h + 1;
  t.IW = (t.TQ - 1) * s.stride_w + (s.S - 1) * s.dil_w + 1;
  const long long per_channel = 1LL * t.IH * t.IW + 1LL * s.R * s.S * t.TK;
  t.CH = std::min(s.C / s.groups, kForwardMaxChannelsPerStage);
  while (t.CH > 0 && per_channel * t.CH * (long long)sizeof(float) > kForwardSmemBytes) t.CH /= 2;
  t.smem_bytes = t.CH * per_channel * sizeof(float);
  return t;
}

template <int TK>
__global__ void conv2d_direct_forward_kernel(float *__restrict__ y, const float *__restrict__ x,
                                             const float *__restrict__ w, const float *__restrict__ bias,
                                             bool relu, Conv2dShape s, int tiles_q, int tiles_per_image,
                                             int k_chunks, int CH, int IH, int IW) {
  extern __shared__ float4 smem4[];  // float4: the filter slices at the base are 16-byte aligned
  float *smem = reinterpret_cast<float *>(smem4);
  const int TQ = blockDim.x, TP = blockDim.y;
  const int tid = threadIdx.y * TQ + threadIdx.x, nthreads = TQ * TP;
  const int RS = s.R * s.S, patch_size = IH * IW;
  float *wts = smem;                       // [CH][R*S][TK]
  float *patch = smem + CH * RS * TK;      // [CH][IH][IW]

  const int n = blockIdx.x / tiles_per_image;
  const int tile = blockIdx.x - n * tiles_per_image;
  const int p0 = (tile / tiles_q) * TP, q0 = (tile % tiles_q) * TQ;
  const int Kg = s.K / s.groups, Cg = s.C / s.groups;
  const int g = blockIdx.y / k_chunks;
  const int k0 = g * Kg + (blockIdx.y - g * k_chunks) * TK;
  const int k_end = (g + 1) * Kg;
  const int ih0 = p0 * s.stride_h - s.pad_top, iw0 = q0 * s.stride_w - s.pad_left;
  const int p = p0 + threadIdx.y, q = q0 + threadIdx.x;
  const bool active = p < s.P && q < s.Q;
  const float *x_group = x + ((long long)n * s.C + g * Cg) * s.H * s.W;

  float acc[TK];
#pragma unroll
  for (int k = 0; k < TK; ++k) acc[k] = 0.0f;

  for (int c0 = 0; c0 < Cg; c0 += CH) {
    const int channels = min(CH, Cg - c0);
    __syncthreads();  // every thread is done reading the previous stage
    for (int i = tid; i < channels * patch_size; i += nthreads) {
      const int ch = i / patch_size, rem = i - ch * patch_size;
      const int ih = ih0 + rem / IW, iw = iw0 + rem % IW;
      float v = 0.0f;
      if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) v = x_group[((c0 + ch) * s.H + ih) * s.W + iw];
      patch[i] = v;
    }
    for (int i = tid; i < channels * RS * TK; i += nthreads) {
      const int ch = i / (RS * TK), rem = i - ch * RS * TK;
      const int rs = rem / TK, k = rem - rs * TK;
      wts[i] = (k0 + k < k_end) ? w[((k0 + k) * Cg + c0 + ch) * RS + rs] : 0.0f;
    }
    __syncthreads();
    if (active) {
      for (int ch = 0; ch < channels; ++ch) {
        const float *prow = patch + ch * patch_size + threadIdx.y * s.stride_h * IW + threadIdx.x * s.stride_w;
        const float *wch = wts + ch * RS * TK;
        for (int r = 0; r < s.R; ++r) {
          for (int sx = 0; sx < s.S; ++sx) {
            const float v = prow[r * s.dil_h * IW + sx * s.dil_w];
            const float *wk = wch + (r * s.S + sx) * TK;
            if (TK % 4 == 0) {  // one broadcast float4 read per 4 channels
#pragma unroll
              for (int k = 0; k < TK; k += 4) {
                const float4 w4 = *reinterpret_cast<const float4 *>(wk + k);
                acc[k] = fmaf(v, w4.x, acc[k]);
                acc[k + 1] = fmaf(v, w4.y, acc[k + 1]);
                acc[k + 2] = fmaf(v, w4.z, acc[k + 2]);
                acc[k + 3] = fmaf(v, w4.w, acc[k + 3]);
              }
            } else {
#pragma unroll
              for (int k = 0; k < TK; ++k) acc[k] = fmaf(v, wk[k], acc[k]);
            }
          }
        }
      }
    }
  }
  if (active) {
#pragma unroll
    for (int k = 0; k < TK; ++k) {
      if (k0 + k < k_end) {
        const float b = bias != nullptr ? bias[k0 + k] : 0.0f;
        y[(((long long)n * s.K + k0 + k) * s.P + p) * s.Q + q] = epilogue(acc[k] + b, relu);
      }
    }
  }
}

// ---- backward data -------------------------------------------------------------

// Divisors of the backward index arithmetic, built once on the host.
struct BackwardDivs {
  FastDiv W, H, C, P, Q, stride_h, stride_w;
  explicit BackwardDivs(const Conv2dShape &s)
      : W(s.W), H(s.H), C(s.C), P(s.P), Q(s.Q), stride_h(s.stride_h), stride_w(s.stride_w) {}
};

__global__ void conv2d_direct_backward_data_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                                   const float *__restrict__ w, Conv2dShape s, BackwardDivs d) {
  const int total = s.N * s.C * s.H * s.W;
  const int Kg = s.K / s.groups, Cg = s.C / s.groups;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const int t = d.W.div(idx), iw = idx - t * s.W;
    const int t2 = d.H.div(t), ih = t - t2 * s.H;
    const int n = d.C.div(t2), c = t2 - n * s.C;
    const int g = c / Cg, cg = c - g * Cg;
    float acc = 0.0f;
    for_each_output_reading(ih, iw, s, d.stride_h, d.stride_w, [&](int r, int sx, int p, int q) {
      for (int k = g * Kg; k < (g + 1) * Kg; ++k)
        acc = fmaf(dy[((n * s.K + k) * s.P + p) * s.Q + q], w[((k * Cg + cg) * s.R + r) * s.S + sx], acc);
    });
    dx[idx] = acc;
  }
}

// ---- backward weight --------------------------------------------------------------

// 128 threads per (k, c) plane: enough to hide latency, and small enough that
// the per-thread partial sums of kWeightRsChunk taps fit shared memory (16 KB).
constexpr int kWeightThreads = 128;
constexpr int kWeightRsChunk = 32;
// Aim for this many blocks in the split reduction: a few waves on a large GPU.
constexpr long long kWeightTargetBlocks = 1024;
// ... but keep at least this many (n, p, q) terms per block.
constexpr long long kWeightMinTermsPerBlock = 2048;

int weight_splits(const Conv2dShape &s) {
  const long long terms = 1LL * s.N * s.P * s.Q;
  const long long planes = 1LL * s.K * (s.C / s.groups);
  long long splits = std::min(CEIL_DIV(terms, kWeightMinTermsPerBlock), CEIL_DIV(kWeightTargetBlocks, planes));
  return (int)std::max(1LL, std::min(splits, 65535LL));
}

// partial[split][k][c][r][s]: the sum over this split's (n, p, q) range.
__global__ void conv2d_direct_backward_weight_kernel(float *__restrict__ partial, const float *__restrict__ dy,
                                                     const float *__restrict__ x, Conv2dShape s, BackwardDivs d) {
  extern __shared__ float thread_acc[];  // [kWeightRsChunk][blockDim.x], each thread owns a column
  __shared__ float scratch[32];
  const int Kg = s.K / s.groups, Cg = s.C / s.groups, RS = s.R * s.S;
  const int plane = blockIdx.x, k = plane / Cg, cg = plane - k * Cg;
  const int c = (k / Kg) * Cg + cg;
  const int terms = s.N * s.P * s.Q;
  const int per_split = CEIL_DIV(terms, (int)gridDim.y);
  const int j_begin = blockIdx.y * per_split, j_end = min(terms, j_begin + per_split);
  const int tid = threadIdx.x;
  float *out = partial + (long long)blockIdx.y * s.K * Cg * RS + (long long)plane * RS;

  for (int rs0 = 0; rs0 < RS; rs0 += kWeightRsChunk) {
    const int taps = min(kWeightRsChunk, RS - rs0);
    for (int i = 0; i < taps; ++i) thread_acc[i * blockDim.x + tid] = 0.0f;
    for (int j = j_begin + tid; j < j_end; j += blockDim.x) {
      const int t = d.Q.div(j), q = j - t * s.Q;
      const int n = d.P.div(t), p = t - n * s.P;
      const float d = dy[((n * s.K + k) * s.P + p) * s.Q + q];
      const float *x_plane = x + (n * s.C + c) * s.H * s.W;
      for (int i = 0; i < taps; ++i) {
        const int rs = rs0 + i, r = rs / s.S, sx = rs - r * s.S;
        const int ih = p * s.stride_h - s.pad_top + r * s.dil_h;
        const int iw = q * s.stride_w - s.pad_left + sx * s.dil_w;
        if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
          thread_acc[i * blockDim.x + tid] = fmaf(d, x_plane[ih * s.W + iw], thread_acc[i * blockDim.x + tid]);
      }
    }
    for (int i = 0; i < taps; ++i) {
      const float v = block_reduce_sum(thread_acc[i * blockDim.x + tid], scratch);
      if (tid == 0) out[rs0 + i] = v;
    }
  }
}

// dw[i] = sum over splits of partial[split][i], in split order.
__global__ void sum_splits_kernel(float *__restrict__ dw, const float *__restrict__ partial, int count, int splits) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int sp = 0; sp < splits; ++sp) acc += partial[(long long)sp * count + i];
    dw[i] = acc;
  }
}

}  // namespace

bool conv2d_direct_supported(const Conv2dShape &s) {
  s.validate();
  return forward_tiling(s).CH > 0;
}

namespace {

// y = conv(x, w) + bias (then ReLU if asked) for a validated shape the shared-memory tiles fit.
void direct_forward(float *y, const float *x, const float *w, const float *bias, bool relu, const Conv2dShape &s,
                    cudaStream_t st) {
  const ForwardTiling t = forward_tiling(s);
  const int tiles_q = CEIL_DIV(s.Q, t.TQ), tiles_p = CEIL_DIV(s.P, t.TP);
  const int k_chunks = CEIL_DIV(s.K / s.groups, t.TK);
  const dim3 grid((unsigned)(1LL * s.N * tiles_p * tiles_q), k_chunks * s.groups), block(t.TQ, t.TP);
#define CUDACNN_LAUNCH_FWD(TKV)                                                                               \
  conv2d_direct_forward_kernel<TKV><<<grid, block, t.smem_bytes, st>>>(y, x, w, bias, relu, s, tiles_q,      \
                                                                       tiles_p * tiles_q, k_chunks, t.CH, t.IH, \
                                                                       t.IW)
  switch (t.TK) {
    case 16: CUDACNN_LAUNCH_FWD(16); break;
    case 8: CUDACNN_LAUNCH_FWD(8); break;
    case 4: CUDACNN_LAUNCH_FWD(4); break;
    default: CUDACNN_LAUNCH_FWD(1); break;
  }
#undef CUDACNN_LAUNCH_FWD
  CUDA_CHECK_LAUNCH("conv2d_direct_forward_kernel");
}

// Refuses, before any launch, a geometry the forward tiles cannot hold.
void check_direct_forward(const Conv2dShape &s) {
  const ForwardTiling t = forward_tiling(s);
  require(t.CH > 0, "conv2d direct: the filter/stride is too large for the shared-memory tile; use algo='im2col'");
  const long long blocks_x = 1LL * s.N * CEIL_DIV(s.P, t.TP) * CEIL_DIV(s.Q, t.TQ);
  require(blocks_x <= 2147483647LL && 1LL * CEIL_DIV(s.K / s.groups, t.TK) * s.groups <= 65535,
          "conv2d direct: grid too large");
}

// The data gradient runs as a direct forward (conv_flip.cuh) when it can.
bool direct_data_gradient_is_a_forward(const Conv2dShape &s) {
  return data_gradient_is_a_forward(s) && forward_tiling(data_gradient_shape(s)).CH > 0;
}

}  // namespace

void conv2d_direct_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, const Conv2dShape &s, ptr_t stream) {
  s.validate();
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_ptr(w, "w");
  check_direct_forward(s);
  direct_forward(as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(w),
                 bias != 0 ? as_ptr<const float>(bias) : nullptr, relu, s, as_stream(stream));
}

long long conv2d_direct_backward_data_workspace(const Conv2dShape &s) {
  s.validate();
  return direct_data_gradient_is_a_forward(s) ? s.w_size() : 0;  // the flipped filters
}

void conv2d_direct_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size,
                                 const Conv2dShape &s, ptr_t stream) {
  s.validate();
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(w, "w");
  cudaStream_t st = as_stream(stream);
  if (direct_data_gradient_is_a_forward(s)) {
    require_ptr(workspace, "workspace");
    require(workspace_size >= s.w_size(), "conv2d direct backward data: workspace of " +
                                              std::to_string(workspace_size) + " floats is smaller than the " +
                                              std::to_string(s.w_size()) + " needed");
    const Conv2dShape t = data_gradient_shape(s);
    t.validate();
    check_direct_forward(t);
    float *wt = as_ptr<float>(workspace);
    flip_transpose_filters(wt, as_ptr<const float>(w), s, st);
    direct_forward(as_ptr<float>(dx), as_ptr<const float>(dy), wt, nullptr, false, t, st);
    return;
  }
  constexpr int threads = 256;
  conv2d_direct_backward_data_kernel<<<elementwise_blocks(s.x_size(), threads), threads, 0, st>>>(
      as_ptr<float>(dx), as_ptr<const float>(dy), as_ptr<const float>(w), s, BackwardDivs(s));
  CUDA_CHECK_LAUNCH("conv2d_direct_backward_data_kernel");
}

long long conv2d_direct_backward_weight_workspace(const Conv2dShape &s) {
  s.validate();
  const int splits = weight_splits(s);
  return splits > 1 ? splits * s.w_size() : 0;
}

void conv2d_direct_backward_weight(ptr_t dw, ptr_t dy, ptr_t x, ptr_t workspace, long long workspace_size,
                                   const Conv2dShape &s, ptr_t stream) {
  s.validate();
  require_ptr(dw, "dw");
  require_ptr(dy, "dy");
  require_ptr(x, "x");
  const int splits = weight_splits(s);
  const long long need = splits > 1 ? splits * s.w_size() : 0;
  if (need > 0) {
    require_ptr(workspace, "workspace");
    require(workspace_size >= need, "conv2d direct backward weight: workspace of " + std::to_string(workspace_size) +
                                        " floats is smaller than the " + std::to_string(need) + " needed");
  }
  cudaStream_t st = as_stream(stream);
  float *partial = splits > 1 ? as_ptr<float>(workspace) : as_ptr<float>(dw);
  const dim3 grid(s.K * (s.C / s.groups), splits);
  const size_t smem = kWeightRsChunk * kWeightThreads * sizeof(float);
  conv2d_direct_backward_weight_kernel<<<grid, kWeightThreads, smem, st>>>(
      partial, as_ptr<const float>(dy), as_ptr<const float>(x), s, BackwardDivs(s));
  CUDA_CHECK_LAUNCH("conv2d_direct_backward_weight_kernel");
  if (splits > 1) {
    const int count = (int)s.w_size();
    sum_splits_kernel<<<elementwise_blocks(count, 256), 256, 0, st>>>(as_ptr<float>(dw), partial, count, splits);
    CUDA_CHECK_LAUNCH("sum_splits_kernel");
  }
}

}  // namespace cudacnn
