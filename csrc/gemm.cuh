// Our tiled SGEMM, shared by the convolution (im2col_gemm.cu, winograd.cu) and
// linear layers (linear.cu). Device code and launch helpers live here, in an
// unnamed namespace, so each kernel file instantiates what it uses.
//
// SGEMM: C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C (+ bias), row-major.
// A block computes a BM x BN tile of C, marching over K in slices of BK = 8:
// each slice of op(A) and op(B) is staged in shared memory (k-major, double
// buffered so one __syncthreads per slice suffices; the next slice is fetched
// into registers while the current one is multiplied), and every thread owns a
// TM x TN sub-tile of accumulators in registers (register blocking), read from
// shared memory as float4. Loads and stores are bounds-checked, so any M, N, K.
// The grid's z dimension runs independent problems ("batch" b times "group" g),
// each at its own element offsets; a K-split layout lets the reduction index
// run across images (used for the weight gradient).
// Every output goes through epilogue(): + bias, beta * C, then ReLU if asked.
#pragma once
#include <algorithm>

#include "common.cuh"
#include "launchers.h"

namespace cudacnn {

// C[b] = A[b] (M x K) * B[b] (K x N), row-major, for b < problems; problem b's
// operands start b * {a,b,c}_stride elements in. Each problem must have fewer
// than 2^31 elements per operand.
void sgemm_strided_batched(float *C, const float *A, const float *B, int M, int N, int K, int problems,
                           long long a_stride, long long b_stride, long long c_stride, cudaStream_t stream);

#ifdef __CUDACC__
namespace {


struct GemmArgs {
  int M, N, K;                // K: reduction length of each z-problem
  long long k_total;          // > 0: problem b covers reduction range [b*K, min((b+1)*K, k_total))
  const float *A, *B;
  float *C;
  long long lda, ldb, ldc;
  int z_inner;                // z = b * z_inner + g
  long long a_b, a_g, b_b, b_g, c_b, c_g;  // element offsets per b and per g
  int ksplit;                 // K-split layout: k -> (k / ksplit) * k*_stride + k % ksplit
  long long ka_stride, kb_stride;
  float alpha, beta;
  const float *bias;          // bias_mode 1: + bias[g*bias_g + m]; 2: + bias[n]
  int bias_mode;
  bool relu;                  // epilogue ReLU, after bias and beta
  long long bias_g;
  // IMPLICIT_B: B is the column matrix of one image's input x (the group's Cg
  // channels), gathered on the fly: B[(c*R + r)*S + s][p*Q + q] =
  // x[c, p*sh - pt + r*dh, q*sw - pl + s*dw], 0 in the padding.
  // With the K-split layout (weight gradient) B^T is gathered the same way,
  // column k being output position k % PQ of image k / PQ (at k / PQ * kb_stride).
  Conv2dShape conv;
  FastDiv rs_div, s_div, q_div, pq_div;
};

// IMPLICIT_B: x_image[c, ih_base + r*dh, iw_base + s*dw] for column-matrix row
// crs = (c*R + r)*S + s, 0 in the padding.
__device__ __forceinline__ float implicit_column_value(const GemmArgs &args, const float *x_image, int crs,
                                                      int ih_base, int iw_base) {
  const Conv2dShape &cv = args.conv;
  const int c = args.rs_div.div(crs), rs = crs - c * (int)args.rs_div.d;
  const int r = args.s_div.div(rs), s = rs - r * cv.S;
  const int ih = ih_base + r * cv.dil_h, iw = iw_base + s * cv.dil_w;
  return (ih >= 0 && ih < cv.H && iw >= 0 && iw < cv.W) ? x_image[(c * cv.H + ih) * cv.W + iw] : 0.0f;
}

// Slice depth 8: one slice of a 128-wide tile is 4 KB per operand; 8 keeps the
// double-buffered shared memory at 17 KB so several blocks fit per SM.
constexpr int kBK = 8;

template <int BM, int BN, int TM, int TN, bool TRANS_A, bool TRANS_B, bool KSPLIT, bool IMPLICIT_B = false>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 2) sgemm_kernel(GemmArgs args) {
  constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
  constexpr int LOADS_A = BM * kBK / THREADS, LOADS_B = BN * kBK / THREADS;
  static_assert(BM * kBK % THREADS == 0 && BN * kBK % THREADS == 0, "tile loads must divide evenly");
  static_assert(THREADS % BM == 0 && THREADS % BN == 0 && THREADS % kBK == 0, "load mapping");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "sub-tiles are read as float4");
  static_assert(!KSPLIT || (!TRANS_A && TRANS_B), "the K-split layout is only used for A * B^T");
  static_assert(!IMPLICIT_B || TRANS_B == KSPLIT, "implicit im2col: plain B, or B^T split by image");
  // +4 floats per row: conflict-free transposing stores, rows stay 16-byte aligned.
  __shared__ __align__(16) float As[2][kBK][BM + 4];
  __shared__ __align__(16) float Bs[2][kBK][BN + 4];

  const int zb = blockIdx.z / args.z_inner, zg = blockIdx.z - zb * args.z_inner;
  const float *__restrict__ A = args.A + zb * args.a_b + zg * args.a_g;
  const float *__restrict__ B = args.B + zb * args.b_b + zg * args.b_g;
  float *__restrict__ C = args.C + zb * args.c_b + zg * args.c_g;
  const int M = args.M, N = args.N;
  const int K = args.k_total > 0 ? (int)min((long long)args.K, args.k_total - (long long)zb * args.K) : args.K;
  // Offsets inside one problem's operands fit 32 bits (every tensor is < 2^31 elements).
  const int lda = (int)args.lda, ldb = (int)args.ldb;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  // Thread (tx, ty) owns columns tx*4.. and rows ty*4.. of each 4x4 group of its
  // sub-tile. A warp covers 8 tx by 4 ty, so each of its float4 reads of a
  // slice touches 8 (B) or 4 (A) distinct vectors: one shared-memory wavefront.
  constexpr int WX = 8, WY = 4;
  static_assert(TX % WX == 0 && TY % WY == 0 && THREADS % 32 == 0, "warp layout");
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int tx = (warp % (TX / WX)) * WX + lane % WX;
  const int ty = (warp / (TX / WX)) * WY + lane / WX;

  // Column k of a K-split operand lives at (k / ksplit) * k_stride + k % ksplit.
  auto k_offset = [&](int k, long long k_stride) -> int {
    return KSPLIT ? (int)((long long)(k / args.ksplit) * k_stride + (k % args.ksplit)) : k;
  };

  // Which elements of a slice this thread moves: along each operand's
  // contiguous direction consecutive threads take consecutive addresses
  // (coalesced), and load i is `i * STEP` further along the other direction.
  //   A:  !TRANS_A: row a_m + i*A_STEP, k a_k      TRANS_A: row a_m, k a_k + i*A_STEP
  //   B:  !TRANS_B: col b_n, k b_k + i*B_STEP      TRANS_B: col b_n + i*B_STEP, k b_k
  const int a_m = TRANS_A ? tid % BM : tid / kBK, a_k = TRANS_A ? tid / BM : tid % kBK;
  constexpr int A_STEP = TRANS_A ? THREADS / BM : THREADS / kBK;
  const int b_n = TRANS_B ? tid / kBK : tid % BN, b_k = TRANS_B ? tid % kBK : tid / BN;
  constexpr int B_STEP = TRANS_B ? THREADS / kBK : THREADS / BN;

  // IMPLICIT_B: this thread's B column is output position (p, q), fixed for the whole block.
  int ih0 = 0, iw0 = 0;
  if (IMPLICIT_B && !TRANS_B) {
    const int p = args.q_div.div(n0 + b_n), q = n0 + b_n - p * args.conv.Q;
    ih0 = p * args.conv.stride_h - args.conv.pad_top;
    iw0 = q * args.conv.stride_w - args.conv.pad_left;
  }

  float ra[LOADS_A], rb[LOADS_B];
  auto load_slice = [&](int k0) {
    if (!TRANS_A) {
      const int k = k0 + a_k;
      const bool k_ok = k < K;
      const int koff = k_ok ? k_offset(k, args.ka_stride) : 0;
#pragma unroll
      for (int i = 0; i < LOADS_A; ++i) {
        const int m = m0 + a_m + i * A_STEP;
        ra[i] = (k_ok && m < M) ? A[m * lda + koff] : 0.0f;
      }
    } else {
      const int m = m0 + a_m;
#pragma unroll
      for (int i = 0; i < LOADS_A; ++i) {
        const int k = k0 + a_k + i * A_STEP;
        ra[i] = (m < M && k < K) ? A[k * lda + m] : 0.0f;
      }
    }
    if (TRANS_B && IMPLICIT_B) {
      const Conv2dShape &cv = args.conv;
      const int k = k0 + b_k;
      const bool k_ok = k < K;
      int image = 0, h_base = 0, w_base = 0;  // this slice's column: (image, p, q)
      if (k_ok) {
        image = args.pq_div.div(k);
        const int pq = k - image * (int)args.pq_div.d;
        const int p = args.q_div.div(pq), q = pq - p * cv.Q;
        h_base = p * cv.stride_h - cv.pad_top;
        w_base = q * cv.stride_w - cv.pad_left;
      }
      const float *x_image = B + (long long)image * args.kb_stride;
#pragma unroll
      for (int i = 0; i < LOADS_B; ++i) {
        const int n = n0 + b_n + i * B_STEP;
        rb[i] = (k_ok && n < N) ? implicit_column_value(args, x_image, n, h_base, w_base) : 0.0f;
      }
    } else if (TRANS_B) {
      const int k = k0 + b_k;
      const bool k_ok = k < K;
      const int koff = k_ok ? k_offset(k, args.kb_stride) : 0;
#pragma unroll
      for (int i = 0; i < LOADS_B; ++i) {
        const int n = n0 + b_n + i * B_STEP;
        rb[i] = (k_ok && n < N) ? B[n * ldb + koff] : 0.0f;
      }
    } else if (IMPLICIT_B) {
      const bool n_ok = n0 + b_n < N;
#pragma unroll
      for (int i = 0; i < LOADS_B; ++i) {
        const int k = k0 + b_k + i * B_STEP;
        rb[i] = (n_ok && k < K) ? implicit_column_value(args, B, k, ih0, iw0) : 0.0f;
      }
    } else {
      const int n = n0 + b_n;
#pragma unroll
      for (int i = 0; i < LOADS_B; ++i) {
        const int k = k0 + b_k + i * B_STEP;
        rb[i] = (n < N && k < K) ? B[k * ldb + n] : 0.0f;
      }
    }
  };
  auto store_slice = [&](int buf) {
#pragma unroll
    for (int i = 0; i < LOADS_A; ++i) {
      if (TRANS_A) As[buf][a_k + i * A_STEP][a_m] = ra[i];
      else As[buf][a_k][a_m + i * A_STEP] = ra[i];
    }
#pragma unroll
    for (int i = 0; i < LOADS_B; ++i) {
      if (TRANS_B) Bs[buf][b_k][b_n + i * B_STEP] = rb[i];
      else Bs[buf][b_k + i * B_STEP][b_n] = rb[i];
    }
  };

  float acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

  const int slices = CEIL_DIV(K, kBK);
  if (slices > 0) {
    load_slice(0);
    store_slice(0);
    __syncthreads();
  }
  for (int t = 0; t < slices; ++t) {
    const int buf = t & 1;
    if (t + 1 < slices) load_slice((t + 1) * kBK);  // in flight during the multiply
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4 *>(&As[buf][kk][g * TY * 4 + ty * 4]);
        a[g * 4 + 0] = v.x; a[g * 4 + 1] = v.y; a[g * 4 + 2] = v.z; a[g * 4 + 3] = v.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4 *>(&Bs[buf][kk][g * TX * 4 + tx * 4]);
        b[g * 4 + 0] = v.x; b[g * 4 + 1] = v.y; b[g * 4 + 2] = v.z; b[g * 4 + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    // The other buffer was last read in iteration t-1, which ended with a barrier.
    if (t + 1 < slices) store_slice(buf ^ 1);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + (i / 4) * TY * 4 + ty * 4 + (i % 4);
    if (m >= M) continue;
    const float row_bias = args.bias_mode == 1 ? args.bias[zg * args.bias_g + m] : 0.0f;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + (j / 4) * TX * 4 + tx * 4 + (j % 4);
      if (n >= N) continue;
      float v = args.alpha * acc[i][j] + row_bias;
      if (args.bias_mode == 2) v += args.bias[n];
      float *out = C + m * args.ldc + n;
      if (args.beta != 0.0f) v = fmaf(args.beta, *out, v);  // never read C when beta == 0 (may be garbage)
      *out = epilogue(v, args.relu);
    }
  }
}

// Three tile shapes: 128x128 (8x8 per thread) for large problems; 64x128 (4x8)
// when M is small but N is long (e.g. 64 filters over many output positions);
// 64x64 (4x4) when a larger tile would leave most of itself, or most SMs, idle.
enum class Tile { k128x128, k64x128, k64x64 };

// Enough tiles for a few waves over the SMs of a large GPU.
constexpr long long kMinTiles = 64;

inline Tile pick_tile(int M, int N, long long problems) {
  const long long tiles_128 = 1LL * CEIL_DIV(M, 128) * CEIL_DIV(N, 128) * problems;
  if (M >= 96 && N >= 96 && tiles_128 >= kMinTiles) return Tile::k128x128;
  const long long tiles_64x128 = 1LL * CEIL_DIV(M, 64) * CEIL_DIV(N, 128) * problems;
  if (N >= 96 && tiles_64x128 >= kMinTiles) return Tile::k64x128;
  return Tile::k64x64;
}

template <int BM, int BN, int TM, int TN, bool TA, bool TB, bool KSPLIT, bool IMPLICIT_B>
void launch_tile(const GemmArgs &args, int problems, cudaStream_t stream, const char *name) {
  const dim3 grid(CEIL_DIV(args.N, BN), CEIL_DIV(args.M, BM), problems);
  require(grid.y <= 65535, "sgemm: M too large");
  sgemm_kernel<BM, BN, TM, TN, TA, TB, KSPLIT, IMPLICIT_B><<<grid, (BM / TM) * (BN / TN), 0, stream>>>(args);
  CUDA_CHECK_LAUNCH(name);
}

template <bool TA, bool TB, bool KSPLIT, bool IMPLICIT_B = false>
void launch_gemm(const GemmArgs &args, int problems, cudaStream_t stream) {
  require(problems >= 1 && problems <= 65535, "sgemm: batch of problems out of range");
  switch (pick_tile(args.M, args.N, problems)) {
    case Tile::k128x128:
      launch_tile<128, 128, 8, 8, TA, TB, KSPLIT, IMPLICIT_B>(args, problems, stream, "sgemm_kernel<128x128>");
      break;
    case Tile::k64x128:
      launch_tile<64, 128, 4, 8, TA, TB, KSPLIT, IMPLICIT_B>(args, problems, stream, "sgemm_kernel<64x128>");
      break;
    case Tile::k64x64:
      launch_tile<64, 64, 4, 4, TA, TB, KSPLIT, IMPLICIT_B>(args, problems, stream, "sgemm_kernel<64x64>");
      break;
  }
}

inline GemmArgs plain_gemm(float *C, const float *A, const float *B, int M, int N, int K, bool ta, bool tb) {
  GemmArgs g{};
  g.M = M; g.N = N; g.K = K;
  g.A = A; g.B = B; g.C = C;
  g.lda = ta ? M : K;
  g.ldb = tb ? K : N;
  g.ldc = N;
  g.z_inner = 1;
  g.ksplit = 1;
  g.alpha = 1.0f;
  return g;
}

inline void launch_gemm_any(const GemmArgs &args, bool ta, bool tb, cudaStream_t st) {
  if (!ta && !tb) launch_gemm<false, false, false>(args, 1, st);
  else if (!ta && tb) launch_gemm<false, true, false>(args, 1, st);
  else if (ta && !tb) launch_gemm<true, false, false>(args, 1, st);
  else launch_gemm<true, true, false>(args, 1, st);
}

constexpr int kPartialThreads = 256;

// out[i] = sum_{sp < splits} partial[sp * count + i], in split order (+ col_bias[i % cols] when
// given, then ReLU if asked).
__global__ void add_partials_kernel(float *__restrict__ out, const float *__restrict__ partial, int count,
                                    int splits, const float *__restrict__ col_bias, int cols, bool relu) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
    float acc = 0.0f;
    for (int sp = 0; sp < splits; ++sp) acc += partial[(long long)sp * count + i];
    out[i] = epilogue(col_bias != nullptr ? acc + col_bias[i % cols] : acc, relu);
  }
}

// Launches add_partials_kernel for `count` outputs (see above).
inline void add_partials(float *out, const float *partial, int count, int splits, const float *col_bias, int cols,
                         bool relu, cudaStream_t st) {
  add_partials_kernel<<<elementwise_blocks(count, kPartialThreads), kPartialThreads, 0, st>>>(
      out, partial, count, splits, col_bias, cols, relu);
  CUDA_CHECK_LAUNCH("add_partials_kernel");
}

}  // namespace
#endif  // __CUDACC__

}  // namespace cudacnn
