// Batch normalisation (PyTorch semantics), x viewed as (N, C, HW) float32
// (HW = 1 for (N, C) input). Channel c's M = N*HW values sit in N runs of HW.
//
// The training forward and the backward need a per-channel reduction over
// their input before they can write anything, so done as two launches they
// read it from DRAM twice. Here each is one launch of a pipeline that reads it
// from DRAM once:
//   * channel c's M values are cut into slices of kItemValues; each slice is a
//     reduce item (its partial sums) and an apply item (its y or dx);
//   * each block takes the next ticket from a counter in global memory; the
//     tickets run: the first `lag` reduce items, then reduce and apply items in
//     turn, then the last apply items. An apply item re-reads its slice about
//     `lag` reduce items after the reduction read it, while it is still in L2
//     (the caller sizes the lag to a fraction of the L2; lag = all items gives
//     the plain two-pass order);
//   * the block that finishes a channel's last reduce item merges the
//     channel's partials in split order and raises the channel's ready flag;
//     apply items wait for their channel's flag. No float atomics, so the
//     results are deterministic.
//   An item waits only on items with smaller tickets, and only running blocks
//   hold tickets, so the unfinished item with the smallest ticket never waits:
//   no deadlock, whatever the occupancy or the order blocks start in.
// Forward reduce: per slice (count, mean, M2) from sums of x - K and (x - K)^2,
//   K the channel's first value (a shift that keeps the sums well conditioned);
//   slices merge by Chan et al.'s formula into mean and inv_std =
//   1/sqrt(var + eps) (biased var), and the running statistics are updated
//   (unbiased var). Apply: y = (x - mean) * inv_std * gamma + beta.
//   x_hat is never stored: the backward recomputes it from x, mean and
//   inv_std, so the forward writes y alone.
// Backward reduce: dbeta = sum dy, dgamma = sum dy * x_hat. Apply: dx.
// Inference forward: one elementwise pass with the running statistics.
#include <algorithm>
#include <atomic>
#include <climits>

#include "common.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

constexpr int kThreads = 256;
constexpr int kItemValues = 4096;  // a channel's values per item: 16 per thread
// Resident blocks per SM the pipeline kernels are compiled for (register cap):
// more blocks hide the per-item ticket, barrier and flag latencies.
constexpr int kMinBlocks = 4;

// ---------------------------------------------------------------------------
// The pipeline: tickets, items, partials and ready flags.
// ---------------------------------------------------------------------------
struct Pipeline {
  int C, HW, M, splits;  // M = N * HW values per channel, in `splits` items
  long long items, lag;  // reduce items (as many apply items); the apply stream's lag
  FastDiv hw_div;
  float *partial;        // [fields][C][splits]
  unsigned *counters;    // [0] next ticket; [1 + c] reduce items of c done; [1 + C + c] c ready
};

struct Item {
  int c, split, j0, j1;  // channel c's values j0 <= j < j1, j = n * HW + hw
  bool apply;
};

__device__ __forceinline__ Item take_item(const Pipeline &p) {
  __shared__ unsigned s_ticket;
  if (threadIdx.x == 0) s_ticket = atomicAdd(&p.counters[0], 1u);
  __syncthreads();
  const long long t = s_ticket, S = p.items, D = p.lag;
  long long index;
  bool apply;
  if (t < D) {
    index = t, apply = false;
  } else if (t < D + 2 * (S - D)) {
    const long long u = t - D;
    apply = u & 1;
    index = apply ? u / 2 : D + u / 2;
  } else {
    index = t - S, apply = true;
  }
  Item it;
  it.c = (int)(index / p.splits);
  it.split = (int)(index - (long long)it.c * p.splits);
  it.j0 = it.split * kItemValues;
  it.j1 = min(p.M, it.j0 + kItemValues);
  it.apply = apply;
  return it;
}

__device__ __forceinline__ long long partial_at(const Pipeline &p, int field, int c, int split) {
  return ((long long)field * p.C + c) * p.splits + split;
}

// Called by every thread after thread 0 wrote the item's partial: true in the
// block that completed channel c's reduction.
__device__ __forceinline__ bool arrive(const Pipeline &p, int c) {
  __shared__ bool s_last;
  if (threadIdx.x == 0) {
    __threadfence();  // the partial is visible before the count that announces it
    s_last = atomicAdd(&p.counters[1 + c], 1u) == (unsigned)p.splits - 1;
    if (s_last) __threadfence();
  }
  __syncthreads();
  return s_last;
}

// Thread 0, after writing the channel's results.
__device__ __forceinline__ void raise_ready(const Pipeline &p, int c) {
  __threadfence();
  atomicExch(&p.counters[1 + p.C + c], 1u);
}

__device__ __forceinline__ void wait_ready(const Pipeline &p, int c) {
  if (threadIdx.x == 0) {
    const volatile unsigned *flag = &p.counters[1 + p.C + c];
    while (*flag == 0) __nanosleep(64);
    __threadfence();
  }
  __syncthreads();
}

// Tensor index of channel c's value j.
__device__ __forceinline__ int element(const Pipeline &p, int c, int j) {
  const int n = p.hw_div.div(j);
  return (n * p.C + c) * p.HW + (j - n * p.HW);
}

// W consecutive values of one plane: W = 4 (HW % 4 == 0, 16-byte aligned
// tensors: float4 accesses) or 1. An item is kChunks<W> packs per thread; pack
// k of a thread starts at value j0 + W * (threadIdx.x + k * kThreads).
template <int W>
struct Pack {
  float v[W];
};
template <int W>
constexpr int kChunks = kItemValues / (W * kThreads);

__device__ __forceinline__ int pack_start(const Item &it, int W, int k) {
  return it.j0 + W * ((int)threadIdx.x + k * kThreads);
}

// First read: cached, so the apply item finds it in L2.
template <int W>
__device__ __forceinline__ Pack<W> load(const float *__restrict__ a, int i) {
  Pack<W> r;
  if constexpr (W == 4) {
    const float4 q = *reinterpret_cast<const float4 *>(a + i);
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else {
    r.v[0] = a[i];
  }
  return r;
}

// Second and last read, and the outputs: evict-first, so they do not push
// slices still waiting for their apply item out of L2.
template <int W>
__device__ __forceinline__ Pack<W> load_last_use(const float *a, int i) {
  Pack<W> r;
  if constexpr (W == 4) {
    const float4 q = __ldcs(reinterpret_cast<const float4 *>(a + i));
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else {
    r.v[0] = __ldcs(a + i);
  }
  return r;
}

template <int W>
__device__ __forceinline__ void store_streaming(float *a, int i, const Pack<W> &r) {
  if constexpr (W == 4) {
    __stcs(reinterpret_cast<float4 *>(a + i), make_float4(r.v[0], r.v[1], r.v[2], r.v[3]));
  } else {
    __stcs(a + i, r.v[0]);
  }
}

// ---------------------------------------------------------------------------
// Training forward.
// ---------------------------------------------------------------------------
struct Welford {
  float n, mean, m2;
};

__device__ __forceinline__ Welford welford_merge(Welford a, Welford b) {
  if (b.n == 0.0f) return a;
  if (a.n == 0.0f) return b;
  const float n = a.n + b.n, delta = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
}

// Fixed-order tree over the block: the result is valid in thread 0.
__device__ __forceinline__ Welford block_merge(Welford w) {
  __shared__ float s_n[kThreads], s_mean[kThreads], s_m2[kThreads];
  const int tid = threadIdx.x;
  s_n[tid] = w.n, s_mean[tid] = w.mean, s_m2[tid] = w.m2;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
      w = welford_merge(w, {s_n[tid + stride], s_mean[tid + stride], s_m2[tid + stride]});
      s_n[tid] = w.n, s_mean[tid] = w.mean, s_m2[tid] = w.m2;
    }
    __syncthreads();
  }
  return w;
}

struct ForwardArgs {
  float *y, *mean, *inv_std, *running_mean, *running_var;
  const float *x, *gamma, *beta;
  float momentum, one_minus_momentum, unbiased_momentum, eps;
};

template <int W>
__device__ __forceinline__ void reduce(const Pipeline &p, const Item &it, const ForwardArgs &a) {
  __shared__ float scratch[32];
  const float shift = a.x[element(p, it.c, 0)];
  float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    const int j = pack_start(it, W, k);
    if (j < it.j1) {
      const Pack<W> v = load<W>(a.x, element(p, it.c, j));
#pragma unroll
      for (int l = 0; l < W; ++l) {
        const float d = v.v[l] - shift;
        s1 += d;
        s2 = fmaf(d, d, s2);
      }
    }
  }
  s1 = block_reduce_sum(s1, scratch);
  s2 = block_reduce_sum(s2, scratch);
  if (threadIdx.x == 0) {
    const float n = (float)(it.j1 - it.j0);
    p.partial[partial_at(p, 0, it.c, it.split)] = n;
    p.partial[partial_at(p, 1, it.c, it.split)] = shift + s1 / n;
    p.partial[partial_at(p, 2, it.c, it.split)] = fmaxf(0.0f, s2 - s1 * s1 / n);
  }
}

__device__ __forceinline__ void finalize(const Pipeline &p, int c, const ForwardArgs &a) {
  Welford w{0.0f, 0.0f, 0.0f};
  for (int sp = threadIdx.x; sp < p.splits; sp += kThreads)
    w = welford_merge(w, {__ldcg(&p.partial[partial_at(p, 0, c, sp)]), __ldcg(&p.partial[partial_at(p, 1, c, sp)]),
                          __ldcg(&p.partial[partial_at(p, 2, c, sp)])});
  w = block_merge(w);
  if (threadIdx.x == 0) {
    const float var = w.m2 / w.n;  // biased: the normalisation uses it
    a.mean[c] = w.mean;
    a.inv_std[c] = 1.0f / sqrtf(var + a.eps);
    a.running_mean[c] = a.running_mean[c] * a.one_minus_momentum + a.momentum * w.mean;
    a.running_var[c] = a.running_var[c] * a.one_minus_momentum + a.unbiased_momentum * var;
    raise_ready(p, c);
  }
}

struct Affine {  // y = x_hat * g + b with x_hat = (x - m) * s
  float m, s, g, b;
};

__device__ __forceinline__ float normalize(float v, const Affine &a) { return (v - a.m) * a.s * a.g + a.b; }

template <int W>
__device__ __forceinline__ void apply(const Pipeline &p, const Item &it, const ForwardArgs &a) {
  wait_ready(p, it.c);
  const Affine f{__ldcg(&a.mean[it.c]), __ldcg(&a.inv_std[it.c]), a.gamma[it.c], a.beta[it.c]};
  int at[kChunks<W>];
  Pack<W> v[kChunks<W>];
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    const int j = pack_start(it, W, k);
    at[k] = j < it.j1 ? element(p, it.c, j) : -1;
    if (at[k] >= 0) v[k] = load_last_use<W>(a.x, at[k]);
  }
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    if (at[k] >= 0) {
#pragma unroll
      for (int l = 0; l < W; ++l) v[k].v[l] = normalize(v[k].v[l], f);
      store_streaming<W>(a.y, at[k], v[k]);
    }
  }
}

// ---------------------------------------------------------------------------
// Backward.
// dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat) in training, scale * dy
// with inference statistics; scale = gamma * inv_std, x_hat = (x - mean) * inv_std.
// ---------------------------------------------------------------------------
struct BackwardArgs {
  float *dx, *dgamma, *dbeta;
  const float *dy, *x, *mean, *inv_std, *gamma;
  float inv_count;
  bool training;
};

template <int W>
__device__ __forceinline__ void reduce(const Pipeline &p, const Item &it, const BackwardArgs &a) {
  __shared__ float scratch[32];
  const float m = a.mean[it.c], s = a.inv_std[it.c];
  float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    const int j = pack_start(it, W, k);
    if (j < it.j1) {
      const int i = element(p, it.c, j);
      const Pack<W> d = load<W>(a.dy, i), x = load<W>(a.x, i);
#pragma unroll
      for (int l = 0; l < W; ++l) {
        sum_dy += d.v[l];
        sum_dy_xhat = fmaf(d.v[l], (x.v[l] - m) * s, sum_dy_xhat);
      }
    }
  }
  sum_dy = block_reduce_sum(sum_dy, scratch);
  sum_dy_xhat = block_reduce_sum(sum_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    p.partial[partial_at(p, 0, it.c, it.split)] = sum_dy;
    p.partial[partial_at(p, 1, it.c, it.split)] = sum_dy_xhat;
  }
}

__device__ __forceinline__ void finalize(const Pipeline &p, int c, const BackwardArgs &a) {
  __shared__ float scratch[32];
  float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
  for (int sp = threadIdx.x; sp < p.splits; sp += kThreads) {
    sum_dy += __ldcg(&p.partial[partial_at(p, 0, c, sp)]);
    sum_dy_xhat += __ldcg(&p.partial[partial_at(p, 1, c, sp)]);
  }
  sum_dy = block_reduce_sum(sum_dy, scratch);
  sum_dy_xhat = block_reduce_sum(sum_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    a.dbeta[c] = sum_dy;
    a.dgamma[c] = sum_dy_xhat;
    raise_ready(p, c);
  }
}

template <int W>
__device__ __forceinline__ void apply(const Pipeline &p, const Item &it, const BackwardArgs &a) {
  wait_ready(p, it.c);
  const int c = it.c;
  const float m = a.mean[c], s = a.inv_std[c], scale = a.gamma[c] * s;
  const float mean_dy = a.training ? __ldcg(&a.dbeta[c]) * a.inv_count : 0.0f;
  const float mean_dy_xhat = a.training ? __ldcg(&a.dgamma[c]) * a.inv_count : 0.0f;
  int at[kChunks<W>];
  Pack<W> d[kChunks<W>], x[kChunks<W>];
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    const int j = pack_start(it, W, k);
    at[k] = j < it.j1 ? element(p, c, j) : -1;
    if (at[k] >= 0) {
      d[k] = load_last_use<W>(a.dy, at[k]);
      x[k] = load_last_use<W>(a.x, at[k]);
    }
  }
#pragma unroll
  for (int k = 0; k < kChunks<W>; ++k) {
    if (at[k] >= 0) {
#pragma unroll
      for (int l = 0; l < W; ++l) {
        const float g = d[k].v[l];
        d[k].v[l] = a.training ? (g - mean_dy - (x[k].v[l] - m) * s * mean_dy_xhat) * scale : g * scale;
      }
      store_streaming<W>(a.dx, at[k], d[k]);
    }
  }
}

// One launch of either pass: Args is ForwardArgs or BackwardArgs.
template <int W, typename Args>
__global__ void __launch_bounds__(kThreads, kMinBlocks) batch_norm_pipeline_kernel(Pipeline p, Args a) {
  const Item it = take_item(p);
  if (it.apply) {
    apply<W>(p, it, a);
  } else {
    reduce<W>(p, it, a);
    if (arrive(p, it.c)) finalize(p, it.c, a);
  }
}

// ---------------------------------------------------------------------------
// Inference forward. Planes (one (n, c)) of at least kPlaneMin values: one
// block per segment of a plane, so the channel's constants are read once per
// block, no per-element division, float4 accesses when aligned. Smaller planes
// (e.g. (N, C) input): a flat loop that finds the channel with a FastDiv.
// ---------------------------------------------------------------------------
constexpr int kPlaneMin = 256;
constexpr int kSegment = kThreads * 8;  // values per block in the plane kernel

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

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------
constexpr int kPartialFields = 3;  // the forward's (count, mean, M2); the backward uses 2

int splits_of(int N, int HW) { return (int)CEIL_DIV(1LL * N * HW, (long long)kItemValues); }

void check_sizes(int N, int C, int HW) {
  require_positive(N, "N");
  require_positive(C, "C");
  require_positive(HW, "H*W");
  require_fits_int32(1LL * N * C * HW, "batch_norm input");
  require(2LL * C * splits_of(N, HW) <= INT_MAX,
          "batch_norm: " + std::to_string(C) + " channels are more than one launch can hold");
}

void check_workspace(ptr_t workspace, long long workspace_size, int N, int C, int HW) {
  const long long need = batch_norm_workspace(N, C, HW);
  require_ptr(workspace, "workspace");
  require(workspace_size >= need, "batch_norm: workspace of " + std::to_string(workspace_size) +
                                      " floats is smaller than the " + std::to_string(need) + " needed");
}

// tensors_read: inputs a reduce item reads (and its apply item reads again).
Pipeline make_pipeline(ptr_t workspace, int N, int C, int HW, long long lag_bytes, int tensors_read) {
  Pipeline p;
  p.C = C, p.HW = HW, p.M = N * HW, p.splits = splits_of(N, HW);
  p.items = (long long)C * p.splits;
  const long long item_bytes = 4LL * std::min(p.M, kItemValues) * tensors_read;
  p.lag = lag_bytes > 0 ? lag_bytes / item_bytes : p.items;  // launch_pipeline bounds it
  p.hw_div = FastDiv(HW);
  p.partial = as_ptr<float>(workspace);
  p.counters = reinterpret_cast<unsigned *>(p.partial + kPartialFields * p.items);
  return p;
}

// Blocks of the pipeline kernel the current device holds at once, asked of
// the runtime once per device (every layer calls this twice per step).
template <int W, typename Args>
long long resident_blocks() {
  constexpr int kMaxDevices = 64;
  static std::atomic<long long> known[kMaxDevices];  // 0: not asked yet
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  if (device < kMaxDevices && known[device] > 0) return known[device];
  int sms = 0, per_sm = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, batch_norm_pipeline_kernel<W, Args>, kThreads, 0));
  const long long blocks = 1LL * sms * per_sm;
  if (device < kMaxDevices) known[device] = blocks;
  return blocks;
}

template <int W, typename Args>
void launch_pipeline(Pipeline p, const Args &a, cudaStream_t st) {
  const auto kernel = batch_norm_pipeline_kernel<W, Args>;
  // With lag >= splits, every reduce item of an apply item's channel holds a
  // smaller ticket, which is what rules out a deadlock. While reduce and apply
  // items alternate, an apply item trails the last reduce item of its channel
  // by at least 2 * (lag - splits) + 3 tickets (lag - splits + 2 for channels
  // reduced in the first lag tickets). The running blocks hold a window of
  // about resident_blocks consecutive tickets; a longer trail lets the
  // reduction finish before the apply item starts, so blocks seldom spin.
  p.lag = std::min(p.items, std::max(p.lag, p.splits + resident_blocks<W, Args>() / 2));
  CUDA_CHECK(cudaMemsetAsync(p.counters, 0, (1 + 2LL * p.C) * sizeof(unsigned), st));
  kernel<<<(unsigned)(2 * p.items), kThreads, 0, st>>>(p, a);  // one item per block
  CUDA_CHECK_LAUNCH("batch_norm_pipeline_kernel");
}

// vectorized: HW % 4 == 0 and every tensor of the pass 16-byte aligned.
template <typename Args>
void run_pipeline(const Pipeline &p, const Args &a, bool vectorized, cudaStream_t st) {
  if (vectorized) {
    launch_pipeline<4>(p, a, st);
  } else {
    launch_pipeline<1>(p, a, st);
  }
}

}  // namespace

long long batch_norm_workspace(int N, int C, int HW) {
  check_sizes(N, C, HW);
  return kPartialFields * (long long)C * splits_of(N, HW) + 1 + 2LL * C;
}

void batch_norm_forward_train(ptr_t y, ptr_t mean, ptr_t inv_std, ptr_t running_mean, ptr_t running_var, ptr_t x,
                              ptr_t gamma, ptr_t beta, ptr_t workspace, long long workspace_size, int N, int C,
                              int HW, float momentum, float eps, long long lag_bytes, ptr_t stream) {
  check_sizes(N, C, HW);
  require_ptr(y, "y");
  require_ptr(mean, "mean");
  require_ptr(inv_std, "inv_std");
  require_ptr(running_mean, "running_mean");
  require_ptr(running_var, "running_var");
  require_ptr(x, "x");
  require_ptr(gamma, "gamma");
  require_ptr(beta, "beta");
  check_workspace(workspace, workspace_size, N, C, HW);
  cudaStream_t st = as_stream(stream);
  const Pipeline p = make_pipeline(workspace, N, C, HW, lag_bytes, 1);
  const double count = 1.0 * N * HW;
  const double unbiased = count > 1.0 ? count / (count - 1.0) : 1.0;  // one value: variance 0 either way
  const ForwardArgs a{as_ptr<float>(y), as_ptr<float>(mean), as_ptr<float>(inv_std), as_ptr<float>(running_mean),
                      as_ptr<float>(running_var), as_ptr<const float>(x), as_ptr<const float>(gamma),
                      as_ptr<const float>(beta), momentum, (float)(1.0 - (double)momentum),
                      (float)((double)momentum * unbiased), eps};
  run_pipeline(p, a, HW % 4 == 0 && all_aligned16({y, x}), st);
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
                         long long lag_bytes, ptr_t stream) {
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
  const Pipeline p = make_pipeline(workspace, N, C, HW, lag_bytes, 2);
  const BackwardArgs a{as_ptr<float>(dx), as_ptr<float>(dgamma), as_ptr<float>(dbeta), as_ptr<const float>(dy),
                       as_ptr<const float>(x), as_ptr<const float>(mean), as_ptr<const float>(inv_std),
                       as_ptr<const float>(gamma), (float)(1.0 / (1.0 * N * HW)), training};
  run_pipeline(p, a, HW % 4 == 0 && all_aligned16({dx, dy, x}), st);
}

}  // namespace cudacnn
