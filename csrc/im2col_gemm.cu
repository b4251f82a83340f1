// im2col / col2im and our tiled SGEMM; convolution through them, and `linear`.
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
//
// Linear layers whose output is a handful of tiles (e.g. 57600 -> 32 at batch
// 64: one 64x64 tile, one block) split the reduction instead ("split-K"):
// problem b of the grid's z dimension multiplies the b-th range of in_features
// into its own partial output, and add_partials_kernel adds the partials in
// split order plus the bias (deterministic).
#include <algorithm>

#include "common.cuh"
#include "conv_flip.cuh"
#include "gemm.cuh"
#include "launchers.h"

namespace cudacnn {
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
        float v = 0.0f;
        if (k_ok && n < N) {
          const int c = args.rs_div.div(n), rs = n - c * (int)args.rs_div.d;
          const int r = args.s_div.div(rs), sx = rs - r * cv.S;
          const int ih = h_base + r * cv.dil_h, iw = w_base + sx * cv.dil_w;
          if (ih >= 0 && ih < cv.H && iw >= 0 && iw < cv.W) v = x_image[(c * cv.H + ih) * cv.W + iw];
        }
        rb[i] = v;
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
      const Conv2dShape &cv = args.conv;
      const bool n_ok = n0 + b_n < N;
#pragma unroll
      for (int i = 0; i < LOADS_B; ++i) {
        const int k = k0 + b_k + i * B_STEP;
        float v = 0.0f;
        if (n_ok && k < K) {
          const int c = args.rs_div.div(k), rs = k - c * (int)args.rs_div.d;
          const int r = args.s_div.div(rs), sx = rs - r * cv.S;
          const int ih = ih0 + r * cv.dil_h, iw = iw0 + sx * cv.dil_w;
          if (ih >= 0 && ih < cv.H && iw >= 0 && iw < cv.W) v = B[(c * cv.H + ih) * cv.W + iw];
        }
        rb[i] = v;
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

Tile pick_tile(int M, int N, long long problems) {
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

GemmArgs plain_gemm(float *C, const float *A, const float *B, int M, int N, int K, bool ta, bool tb) {
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

void launch_gemm_any(const GemmArgs &args, bool ta, bool tb, cudaStream_t st) {
  if (!ta && !tb) launch_gemm<false, false, false>(args, 1, st);
  else if (!ta && tb) launch_gemm<false, true, false>(args, 1, st);
  else if (ta && !tb) launch_gemm<true, false, false>(args, 1, st);
  else launch_gemm<true, true, false>(args, 1, st);
}

// ---- im2col / col2im ------------------------------------------------------------

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
  const int count = g.M * g.N;
  add_partials_kernel<<<elementwise_blocks(count, kThreads), kThreads, 0, st>>>(out, partials, count, splits, bias,
                                                                                g.N, relu);
  CUDA_CHECK_LAUNCH("add_partials_kernel");
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
      g.conv = s;
      g.rs_div = FastDiv(1LL * s.R * s.S);
      g.s_div = FastDiv(s.S);
      g.q_div = FastDiv(s.Q);
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
    g.conv = s;
    g.rs_div = FastDiv(1LL * s.R * s.S);
    g.s_div = FastDiv(s.S);
    g.q_div = FastDiv(s.Q);
    g.pq_div = FastDiv(PQ);
    launch_gemm<false, true, true, true>(g, splits * s.groups, st);
  }
  add_partials_kernel<<<elementwise_blocks(count, kThreads), kThreads, 0, st>>>(as_ptr<float>(dw), partials, count,
                                                                                splits, nullptr, 1, false);
  CUDA_CHECK_LAUNCH("add_partials_kernel");
}

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
