// Max and average pooling (NCHW float32), forward and backward, and global
// average pooling.
//
// Forward: one thread per output element scans its kh x kw window; padding
// counts as -inf for max (never chosen) and as 0 for average. Max records the
// flat index h*W + w of the maximum inside the input plane, as int32 (first
// maximum wins in row-major order; NaN propagates). Backward is a gather: one
// thread per input element visits the output windows that contain it (max:
// adds dy where the recorded index is this element), so there are no atomics
// and results are deterministic.
// Windows that tile the input exactly (2x2 stride 2 on even sizes) take a
// backward with one thread per window instead. The common 2x2 stride-2 case on
// rows of a multiple of 4 floats goes further: one thread per pair of adjacent
// outputs, moving input rows as float4 and outputs as float2 (a quarter of the
// memory instructions). Global average pooling: one warp per (n, c) plane.
#include "common.cuh"
#include "launchers.h"

namespace cudacnn {

void Pool2dShape::validate() const {
  const std::string dims = "pool2d (N=" + std::to_string(N) + ", C=" + std::to_string(C) + ", H=" +
                           std::to_string(H) + ", W=" + std::to_string(W) + ", kernel=" + std::to_string(kernel_h) +
                           "x" + std::to_string(kernel_w) + ")";
  require(N > 0 && C > 0 && H > 0 && W > 0, dims + ": every size must be positive");
  require(kernel_h > 0 && kernel_w > 0 && stride_h > 0 && stride_w > 0, dims + ": kernel and stride must be positive");
  require(pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0, dims + ": padding must be >= 0");
  // Every window then overlaps the input, so max pooling always has a real element.
  require(pad_top < kernel_h && pad_bottom < kernel_h && pad_left < kernel_w && pad_right < kernel_w,
          dims + ": padding must be smaller than the kernel");
  require(H + pad_top + pad_bottom >= kernel_h && W + pad_left + pad_right >= kernel_w,
          dims + ": the kernel is larger than the padded input");
  const long long expect_p = (H + pad_top + pad_bottom - kernel_h) / stride_h + 1;
  const long long expect_q = (W + pad_left + pad_right - kernel_w) / stride_w + 1;
  require(P == expect_p && Q == expect_q, dims + ": output size (" + std::to_string(P) + ", " + std::to_string(Q) +
                                              ") does not match the geometry, expected (" +
                                              std::to_string(expect_p) + ", " + std::to_string(expect_q) + ")");
  require_fits_int32(1LL * N * C * H * W, "pool2d input");
}

namespace {

constexpr int kThreads = 256;

// Divisors of the pooling index arithmetic, built once on the host.
struct PoolDivs {
  FastDiv Q, P, W, HW, stride_h, stride_w;
  explicit PoolDivs(const Pool2dShape &s)
      : Q(s.Q), P(s.P), W(s.W), HW(1LL * s.H * s.W), stride_h(s.stride_h), stride_w(s.stride_w) {}
};

// Output index -> (plane, p, q).
__device__ __forceinline__ void output_position(int idx, const PoolDivs &d, int *plane, int *p, int *q) {
  const int t = d.Q.div(idx);
  *q = idx - t * (int)d.Q.d;
  *plane = d.P.div(t);
  *p = t - *plane * (int)d.P.d;
}

// As the reference: a larger value or a NaN replaces the current choice (so the
// first maximum in row-major order wins and NaN propagates).
__device__ __forceinline__ void max_update(float v, int i, float *best, int *best_index) {
  if (v > *best || v != v) {
    *best = v;
    *best_index = i;
  }
}

__global__ void max_pool2d_forward_kernel(float *__restrict__ y, int *__restrict__ indices,
                                          const float *__restrict__ x, Pool2dShape s, PoolDivs d) {
  const int total = s.N * s.C * s.P * s.Q;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int plane, p, q;
    output_position(idx, d, &plane, &p, &q);
    const float *xp = x + (long long)plane * s.H * s.W;
    const int h0 = p * s.stride_h - s.pad_top, w0 = q * s.stride_w - s.pad_left;
    // Start at the window's first real element, so an all -inf window still
    // reports an index inside the input.
    float best = -INFINITY;
    int best_index = max(h0, 0) * s.W + max(w0, 0);
    for (int r = max(0, -h0); r < s.kernel_h && h0 + r < s.H; ++r) {
      for (int c = max(0, -w0); c < s.kernel_w && w0 + c < s.W; ++c) {
        const int i = (h0 + r) * s.W + w0 + c;
        max_update(xp[i], i, &best, &best_index);
      }
    }
    y[idx] = best;
    indices[idx] = best_index;
  }
}

// Range of outputs along one axis whose window [o*stride - pad, ... + kernel) contains i.
__device__ __forceinline__ void windows_containing(int i, int pad, int kernel, const FastDiv &stride, int outputs,
                                                   int *first, int *last) {
  const int lo = i + pad - kernel + 1;  // o*stride >= lo
  *first = lo <= 0 ? 0 : stride.div(lo + (int)stride.d - 1);
  *last = min(outputs - 1, stride.div(i + pad));
}

// Input index -> (plane, ih, iw, hw).
__device__ __forceinline__ void input_position(int idx, const PoolDivs &d, int *plane, int *ih, int *iw, int *hw) {
  *plane = d.HW.div(idx);
  *hw = idx - *plane * (int)d.HW.d;
  *ih = d.W.div(*hw);
  *iw = *hw - *ih * (int)d.W.d;
}


// Windows that tile the input exactly (stride == kernel, no padding, H = P*kh,
// W = Q*kw): each input element is in one window, so one thread per output
// writes its whole window (the common 2x2/2 case; no search over windows).
bool windows_tile_input(const Pool2dShape &s) {
  return s.stride_h == s.kernel_h && s.stride_w == s.kernel_w && s.pad_top == 0 && s.pad_bottom == 0 &&
         s.pad_left == 0 && s.pad_right == 0 && s.H == s.P * s.kernel_h && s.W == s.Q * s.kernel_w;
}

__global__ void max_pool2d_backward_tiled_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                                 const int *__restrict__ indices, Pool2dShape s, PoolDivs d) {
  const int total = s.N * s.C * s.P * s.Q;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int plane, p, q;
    output_position(idx, d, &plane, &p, &q);
    const int chosen = indices[idx];
    const float g = dy[idx];
    float *dxp = dx + (long long)plane * s.H * s.W;
    for (int r = 0; r < s.kernel_h; ++r) {
      const int row = (p * s.kernel_h + r) * s.W + q * s.kernel_w;
      for (int c = 0; c < s.kernel_w; ++c) dxp[row + c] = (row + c == chosen) ? 0.0f + g : 0.0f;
    }
  }
}

// 2x2 stride-2 windows tiling rows of a multiple of 4 floats: output pairs (q, q+1),
// q even, read two float4 input rows that start 16-byte aligned (given aligned bases).
bool pairs_vectorizable(const Pool2dShape &s) {
  return windows_tile_input(s) && s.kernel_h == 2 && s.kernel_w == 2 && s.W % 4 == 0;
}

long long pair_count(const Pool2dShape &s) { return 1LL * s.N * s.C * s.P * (s.Q / 2); }

// Output pair k is outputs 2k and 2k+1 (same row, as Q is even): its plane, p, q
// and the plane offset i0 of its top-left input element.
__device__ __forceinline__ int pair_position(int pair, const PoolDivs &d, const Pool2dShape &s, int *plane, int *i0) {
  int p, q;
  output_position(2 * pair, d, plane, &p, &q);
  *i0 = 2 * p * s.W + 2 * q;
  return 2 * pair;
}

template <bool MAX>
__global__ void pool2x2_forward_pairs_kernel(float *__restrict__ y, int *__restrict__ indices,
                                             const float *__restrict__ x, Pool2dShape s, PoolDivs d) {
  const int pairs = s.N * s.C * s.P * (s.Q / 2);
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < pairs; k += gridDim.x * blockDim.x) {
    int plane, i0;
    const int idx = pair_position(k, d, s, &plane, &i0);
    const float *xp = x + (long long)plane * s.H * s.W;
    const float4 top = *reinterpret_cast<const float4 *>(xp + i0);
    const float4 bottom = *reinterpret_cast<const float4 *>(xp + i0 + s.W);
    if (MAX) {  // the same visiting order as max_pool2d_forward_kernel
      float best0 = -INFINITY, best1 = -INFINITY;
      int at0 = i0, at1 = i0 + 2;
      max_update(top.x, i0, &best0, &at0);
      max_update(top.y, i0 + 1, &best0, &at0);
      max_update(bottom.x, i0 + s.W, &best0, &at0);
      max_update(bottom.y, i0 + s.W + 1, &best0, &at0);
      max_update(top.z, i0 + 2, &best1, &at1);
      max_update(top.w, i0 + 3, &best1, &at1);
      max_update(bottom.z, i0 + s.W + 2, &best1, &at1);
      max_update(bottom.w, i0 + s.W + 3, &best1, &at1);
      *reinterpret_cast<float2 *>(y + idx) = make_float2(best0, best1);
      *reinterpret_cast<int2 *>(indices + idx) = make_int2(at0, at1);
    } else {  // summed in avg_pool2d_forward_kernel's order; no padding, so the divisor is 4
      const float sum0 = 0.0f + top.x + top.y + bottom.x + bottom.y;
      const float sum1 = 0.0f + top.z + top.w + bottom.z + bottom.w;
      *reinterpret_cast<float2 *>(y + idx) = make_float2(sum0 / 4.0f, sum1 / 4.0f);
    }
  }
}

template <bool MAX>
__global__ void pool2x2_backward_pairs_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                              const int *__restrict__ indices, Pool2dShape s, PoolDivs d) {
  const int pairs = s.N * s.C * s.P * (s.Q / 2);
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < pairs; k += gridDim.x * blockDim.x) {
    int plane, i0;
    const int idx = pair_position(k, d, s, &plane, &i0);
    const float2 g = *reinterpret_cast<const float2 *>(dy + idx);
    float4 top, bottom;
    if (MAX) {  // dy goes to the recorded element of each window, 0 elsewhere
      const int2 at = *reinterpret_cast<const int2 *>(indices + idx);
      auto pick = [](int chosen, int i, float gv) { return chosen == i ? 0.0f + gv : 0.0f; };
      top = make_float4(pick(at.x, i0, g.x), pick(at.x, i0 + 1, g.x), pick(at.y, i0 + 2, g.y),
                        pick(at.y, i0 + 3, g.y));
      bottom = make_float4(pick(at.x, i0 + s.W, g.x), pick(at.x, i0 + s.W + 1, g.x), pick(at.y, i0 + s.W + 2, g.y),
                           pick(at.y, i0 + s.W + 3, g.y));
    } else {
      const float g0 = 0.0f + g.x / 4.0f, g1 = 0.0f + g.y / 4.0f;
      top = bottom = make_float4(g0, g0, g1, g1);
    }
    float *dxp = dx + (long long)plane * s.H * s.W;
    *reinterpret_cast<float4 *>(dxp + i0) = top;
    *reinterpret_cast<float4 *>(dxp + i0 + s.W) = bottom;
  }
}

__device__ __forceinline__ float avg_divisor(const Pool2dShape &s, int p, int q, bool count_include_pad) {
  if (count_include_pad) return (float)(s.kernel_h * s.kernel_w);
  const int h0 = p * s.stride_h - s.pad_top, w0 = q * s.stride_w - s.pad_left;
  const int rows = min(h0 + s.kernel_h, s.H) - max(h0, 0);
  const int cols = min(w0 + s.kernel_w, s.W) - max(w0, 0);
  return (float)(rows * cols);
}

// The general backward, a gather: one thread per input element sums what the
// output windows containing it send back (max: dy where the window's recorded
// index is this element; average: dy over the window's divisor).
template <bool MAX>
__global__ void pool2d_backward_gather_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                              const int *__restrict__ indices, Pool2dShape s, PoolDivs d,
                                              bool count_include_pad) {
  const int total = s.N * s.C * s.H * s.W;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int plane, ih, iw, hw;
    input_position(idx, d, &plane, &ih, &iw, &hw);
    int p0, p1, q0, q1;
    windows_containing(ih, s.pad_top, s.kernel_h, d.stride_h, s.P, &p0, &p1);
    windows_containing(iw, s.pad_left, s.kernel_w, d.stride_w, s.Q, &q0, &q1);
    const long long base = (long long)plane * s.P * s.Q;
    float acc = 0.0f;
    for (int p = p0; p <= p1; ++p)
      for (int q = q0; q <= q1; ++q) {
        const long long o = base + p * s.Q + q;
        if (MAX) {
          if (indices[o] == hw) acc += dy[o];
        } else {
          acc += dy[o] / avg_divisor(s, p, q, count_include_pad);
        }
      }
    dx[idx] = acc;
  }
}


__global__ void avg_pool2d_forward_kernel(float *__restrict__ y, const float *__restrict__ x, Pool2dShape s,
                                          PoolDivs d, bool count_include_pad) {
  const int total = s.N * s.C * s.P * s.Q;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int plane, p, q;
    output_position(idx, d, &plane, &p, &q);
    const float *xp = x + (long long)plane * s.H * s.W;
    const int h0 = p * s.stride_h - s.pad_top, w0 = q * s.stride_w - s.pad_left;
    float acc = 0.0f;
    for (int r = max(0, -h0); r < s.kernel_h && h0 + r < s.H; ++r)
      for (int c = max(0, -w0); c < s.kernel_w && w0 + c < s.W; ++c) acc += xp[(h0 + r) * s.W + w0 + c];
    y[idx] = acc / avg_divisor(s, p, q, count_include_pad);
  }
}


// Tiling windows have no padding, so the divisor is kh*kw either way.
__global__ void avg_pool2d_backward_tiled_kernel(float *__restrict__ dx, const float *__restrict__ dy,
                                                 Pool2dShape s, PoolDivs d) {
  const int total = s.N * s.C * s.P * s.Q;
  const float divisor = (float)(s.kernel_h * s.kernel_w);
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    int plane, p, q;
    output_position(idx, d, &plane, &p, &q);
    const float g = 0.0f + dy[idx] / divisor;
    float *dxp = dx + (long long)plane * s.H * s.W;
    for (int r = 0; r < s.kernel_h; ++r) {
      const int row = (p * s.kernel_h + r) * s.W + q * s.kernel_w;
      for (int c = 0; c < s.kernel_w; ++c) dxp[row + c] = g;
    }
  }
}

// One warp per (n, c) plane: coalesced reads along the plane, a fixed shuffle tree.
constexpr int kWarpsPerBlock = kThreads / 32;

__global__ void global_avg_pool2d_forward_kernel(float *__restrict__ y, const float *__restrict__ x, int planes,
                                                 int HW) {
  const int plane = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (plane >= planes) return;  // whole warps leave together: the shuffles stay full-warp
  const float *xp = x + (long long)plane * HW;
  float acc = 0.0f;
  for (int i = lane; i < HW; i += 32) acc += xp[i];
  acc = warp_reduce_sum(acc);
  if (lane == 0) y[plane] = acc / (float)HW;
}

__global__ void global_avg_pool2d_backward_kernel(float *__restrict__ dx, const float *__restrict__ dy, int total,
                                                  FastDiv HW) {
  const float scale = 1.0f / (float)HW.d;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
    dx[i] = dy[HW.div(i)] * scale;
}

long long output_count(const Pool2dShape &s) { return 1LL * s.N * s.C * s.P * s.Q; }
long long input_count(const Pool2dShape &s) { return 1LL * s.N * s.C * s.H * s.W; }

void check_global(int N, int C, int HW) {
  require_positive(N, "N");
  require_positive(C, "C");
  require_positive(HW, "H*W");
  require_fits_int32(1LL * N * C * HW, "global_avg_pool2d input");
}

}  // namespace

// The pair kernels also need float4-aligned input rows and float2-aligned outputs.
static bool use_pairs(const Pool2dShape &s, ptr_t rows16, ptr_t outputs8, ptr_t indices8) {
  return pairs_vectorizable(s) && rows16 % 16 == 0 && outputs8 % 8 == 0 && indices8 % 8 == 0;
}

void max_pool2d_forward(ptr_t y, ptr_t indices, ptr_t x, const Pool2dShape &s, ptr_t stream) {
  s.validate();
  require_ptr(y, "y");
  require_ptr(indices, "indices");
  require_ptr(x, "x");
  if (use_pairs(s, x, y, indices)) {
    pool2x2_forward_pairs_kernel<true><<<elementwise_blocks(pair_count(s), kThreads), kThreads, 0,
                                         as_stream(stream)>>>(as_ptr<float>(y), as_ptr<int>(indices),
                                                              as_ptr<const float>(x), s, PoolDivs(s));
    CUDA_CHECK_LAUNCH("pool2x2_forward_pairs_kernel<max>");
    return;
  }
  max_pool2d_forward_kernel<<<elementwise_blocks(output_count(s), kThreads), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(y), as_ptr<int>(indices), as_ptr<const float>(x), s, PoolDivs(s));
  CUDA_CHECK_LAUNCH("max_pool2d_forward_kernel");
}

void max_pool2d_backward(ptr_t dx, ptr_t dy, ptr_t indices, const Pool2dShape &s, ptr_t stream) {
  s.validate();
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(indices, "indices");
  if (use_pairs(s, dx, dy, indices)) {
    pool2x2_backward_pairs_kernel<true><<<elementwise_blocks(pair_count(s), kThreads), kThreads, 0,
                                          as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy),
                                                               as_ptr<const int>(indices), s, PoolDivs(s));
    CUDA_CHECK_LAUNCH("pool2x2_backward_pairs_kernel<max>");
  } else if (windows_tile_input(s)) {
    max_pool2d_backward_tiled_kernel<<<elementwise_blocks(output_count(s), kThreads), kThreads, 0,
                                       as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy),
                                                            as_ptr<const int>(indices), s, PoolDivs(s));
    CUDA_CHECK_LAUNCH("max_pool2d_backward_tiled_kernel");
  } else {
    pool2d_backward_gather_kernel<true><<<elementwise_blocks(input_count(s), kThreads), kThreads, 0,
                                          as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy),
                                                               as_ptr<const int>(indices), s, PoolDivs(s), false);
    CUDA_CHECK_LAUNCH("pool2d_backward_gather_kernel<max>");
  }
}

void avg_pool2d_forward(ptr_t y, ptr_t x, const Pool2dShape &s, bool count_include_pad, ptr_t stream) {
  s.validate();
  require_ptr(y, "y");
  require_ptr(x, "x");
  if (use_pairs(s, x, y, y)) {  // no padding: count_include_pad changes nothing
    pool2x2_forward_pairs_kernel<false><<<elementwise_blocks(pair_count(s), kThreads), kThreads, 0,
                                          as_stream(stream)>>>(as_ptr<float>(y), nullptr, as_ptr<const float>(x), s,
                                                               PoolDivs(s));
    CUDA_CHECK_LAUNCH("pool2x2_forward_pairs_kernel<avg>");
    return;
  }
  avg_pool2d_forward_kernel<<<elementwise_blocks(output_count(s), kThreads), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(y), as_ptr<const float>(x), s, PoolDivs(s), count_include_pad);
  CUDA_CHECK_LAUNCH("avg_pool2d_forward_kernel");
}

void avg_pool2d_backward(ptr_t dx, ptr_t dy, const Pool2dShape &s, bool count_include_pad, ptr_t stream) {
  s.validate();
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  if (use_pairs(s, dx, dy, dy)) {
    pool2x2_backward_pairs_kernel<false><<<elementwise_blocks(pair_count(s), kThreads), kThreads, 0,
                                           as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy), nullptr,
                                                                s, PoolDivs(s));
    CUDA_CHECK_LAUNCH("pool2x2_backward_pairs_kernel<avg>");
  } else if (windows_tile_input(s)) {
    avg_pool2d_backward_tiled_kernel<<<elementwise_blocks(output_count(s), kThreads), kThreads, 0,
                                       as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy), s,
                                                            PoolDivs(s));
    CUDA_CHECK_LAUNCH("avg_pool2d_backward_tiled_kernel");
  } else {
    pool2d_backward_gather_kernel<false><<<elementwise_blocks(input_count(s), kThreads), kThreads, 0,
                                           as_stream(stream)>>>(as_ptr<float>(dx), as_ptr<const float>(dy), nullptr,
                                                                s, PoolDivs(s), count_include_pad);
    CUDA_CHECK_LAUNCH("pool2d_backward_gather_kernel<avg>");
  }
}

void global_avg_pool2d_forward(ptr_t y, ptr_t x, int N, int C, int HW, ptr_t stream) {
  check_global(N, C, HW);
  require_ptr(y, "y");
  require_ptr(x, "x");
  const int planes = N * C;
  global_avg_pool2d_forward_kernel<<<CEIL_DIV(planes, kWarpsPerBlock), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(y), as_ptr<const float>(x), planes, HW);
  CUDA_CHECK_LAUNCH("global_avg_pool2d_forward_kernel");
}

void global_avg_pool2d_backward(ptr_t dx, ptr_t dy, int N, int C, int HW, ptr_t stream) {
  check_global(N, C, HW);
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  const int total = N * C * HW;
  global_avg_pool2d_backward_kernel<<<elementwise_blocks(total, kThreads), kThreads, 0, as_stream(stream)>>>(
      as_ptr<float>(dx), as_ptr<const float>(dy), total, FastDiv(HW));
  CUDA_CHECK_LAUNCH("global_avg_pool2d_backward_kernel");
}

}  // namespace cudacnn
