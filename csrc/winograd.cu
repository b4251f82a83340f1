// Winograd F(2x2, 3x3) convolution (Lavin & Gray, 2015) for 3x3 filters with
// stride 1, no dilation and one group: each 2x2 output tile is
//   Y = A^T [ (G g G^T) (.) (B^T d B) ] A          ((.) elementwise, d the 4x4 input patch)
// so the 36 multiply-adds per tile and channel pair of a direct convolution
// become 16, done as 16 GEMMs on our SGEMM, one per position xi of the 4x4
// transformed tile:
//   1. filters:  U[xi][k][c] = (G g[k][c] G^T)[xi]            (16 x K x C, once per call)
//   2. input:    V[xi][c][t] = (B^T d[c][t] B)[xi]            (16 x C x T; t = (image, tile row, tile col))
//   3. GEMMs:    M[xi] = U[xi] (K x C) * V[xi] (C x T)
//   4. output:   y tile = A^T M[.][k][t] A + bias[k], clipped at the output's edge.
// Tiles past the input's edge read zeros, as padding does. Steps 2-4 run for
// `chunk` images at a time so the transformed tiles fit the caller's workspace.
// The data gradient of such a convolution is a convolution of the same kind
// (conv_flip.cuh), so it runs through the same steps with flipped filters.
// Float32 throughout; the transforms add rounding of a few ulps, well inside
// the 1e-4 tolerance our conv tests use. No atomics: deterministic.
#include <algorithm>

#include "common.cuh"
#include "conv_flip.cuh"
#include "gemm.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

constexpr int kThreads = 256;

struct Tiling {
  int tiles_h, tiles_w;
  long long per_image() const { return 1LL * tiles_h * tiles_w; }
};

Tiling tiling(const Conv2dShape &s) { return {CEIL_DIV(s.P, 2), CEIL_DIV(s.Q, 2)}; }

// U[xi][k][c] = G g G^T, G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]].
__global__ void winograd_filter_transform_kernel(float *__restrict__ U, const float *__restrict__ w, int K, int C) {
  const int total = K * C;
  for (int kc = blockIdx.x * blockDim.x + threadIdx.x; kc < total; kc += gridDim.x * blockDim.x) {
    const float *g = w + 9LL * kc;
    float gg[4][3];  // G g
    for (int j = 0; j < 3; ++j) {
      gg[0][j] = g[j];
      gg[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
      gg[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
      gg[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; ++i) {  // (G g) G^T
      const float u[4] = {gg[i][0], 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]), 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]),
                          gg[i][2]};
      for (int j = 0; j < 4; ++j) U[(long long)(i * 4 + j) * total + kc] = u[j];
    }
  }
}

// Tile t of the chunk -> image, tile row, tile col.
struct TileDivs {
  FastDiv tiles_w, tiles_h;
};

// V[xi][c][t] = B^T d B, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]];
// threads run along t, so the stores are coalesced.
__global__ void winograd_input_transform_kernel(float *__restrict__ V, const float *__restrict__ x, Conv2dShape s,
                                                int T, TileDivs d) {
  const int total = s.C * T;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const int c = idx / T, t = idx - c * T;
    const int rest = d.tiles_w.div(t), tw = t - rest * (int)d.tiles_w.d;
    const int n = d.tiles_h.div(rest), th = rest - n * (int)d.tiles_h.d;
    const int h0 = 2 * th - s.pad_top, w0 = 2 * tw - s.pad_left;
    const float *plane = x + ((long long)n * s.C + c) * s.H * s.W;
    float in[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        const int h = h0 + i, w = w0 + j;
        in[i][j] = (h >= 0 && h < s.H && w >= 0 && w < s.W) ? plane[h * s.W + w] : 0.0f;
      }
    float bd[4][4];  // B^T d
    for (int j = 0; j < 4; ++j) {
      bd[0][j] = in[0][j] - in[2][j];
      bd[1][j] = in[1][j] + in[2][j];
      bd[2][j] = in[2][j] - in[1][j];
      bd[3][j] = in[1][j] - in[3][j];
    }
    for (int i = 0; i < 4; ++i) {  // (B^T d) B
      const float v[4] = {bd[i][0] - bd[i][2], bd[i][1] + bd[i][2], bd[i][2] - bd[i][1], bd[i][1] - bd[i][3]};
      for (int j = 0; j < 4; ++j) V[(long long)(i * 4 + j) * total + idx] = v[j];
    }
  }
}

// y tile = A^T m A (+ bias, then ReLU if asked), A^T = [[1,1,1,0],[0,1,-1,-1]]; M is 16 x K x T.
__global__ void winograd_output_transform_kernel(float *__restrict__ y, const float *__restrict__ M,
                                                 const float *__restrict__ bias, bool relu, Conv2dShape s, int T,
                                                 TileDivs d) {
  const int total = s.K * T;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
    const int k = idx / T, t = idx - k * T;
    const int rest = d.tiles_w.div(t), tw = t - rest * (int)d.tiles_w.d;
    const int n = d.tiles_h.div(rest), th = rest - n * (int)d.tiles_h.d;
    float m[4][4];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) m[i][j] = M[(long long)(i * 4 + j) * total + idx];
    float am[2][4];  // A^T m
    for (int j = 0; j < 4; ++j) {
      am[0][j] = m[0][j] + m[1][j] + m[2][j];
      am[1][j] = m[1][j] - m[2][j] - m[3][j];
    }
    const float b = bias != nullptr ? bias[k] : 0.0f;
    float *out = y + ((long long)n * s.K + k) * s.P * s.Q;
    for (int i = 0; i < 2; ++i) {
      const int p = 2 * th + i;
      if (p >= s.P) break;
      const float row[2] = {am[i][0] + am[i][1] + am[i][2], am[i][1] - am[i][2] - am[i][3]};
      for (int j = 0; j < 2; ++j) {
        const int q = 2 * tw + j;
        if (q < s.Q) out[p * s.Q + q] = epilogue(row[j] + b, relu);
      }
    }
  }
}

bool winograd_geometry(const Conv2dShape &s) {
  return s.R == 3 && s.S == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1 &&
         s.groups == 1;
}

// Floats: U, then per chunk V and M.
long long forward_floats(const Conv2dShape &s, int chunk) {
  const long long T = chunk * tiling(s).per_image();
  return 16LL * s.K * s.C + 16LL * s.C * T + 16LL * s.K * T;
}

void check_args(const Conv2dShape &s, int chunk, ptr_t workspace, long long workspace_size, long long needed) {
  s.validate();
  require(winograd_geometry(s), "conv2d winograd: needs 3x3 filters, stride 1, dilation 1 and groups 1");
  require(chunk >= 1 && chunk <= s.N, "conv2d winograd: chunk must be in [1, N=" + std::to_string(s.N) + "], got " +
                                          std::to_string(chunk));
  require(16LL * std::max(s.C, s.K) * chunk * tiling(s).per_image() <= kMaxElements,
          "conv2d winograd: the chunk's transformed tiles exceed 2^31-1 floats; use a smaller chunk");
  require_ptr(workspace, "workspace");
  require(workspace_size >= needed, "conv2d winograd: workspace of " + std::to_string(workspace_size) +
                                        " floats is smaller than the " + std::to_string(needed) + " needed");
}

// The forward for a validated geometry; w is (K, C, 3, 3).
void winograd_forward(float *y, const float *x, const float *w, const float *bias, bool relu, float *workspace,
                      int chunk, const Conv2dShape &s, cudaStream_t st) {
  const Tiling tl = tiling(s);
  const TileDivs divs{FastDiv(tl.tiles_w), FastDiv(tl.tiles_h)};
  float *U = workspace;
  winograd_filter_transform_kernel<<<elementwise_blocks(1LL * s.K * s.C, kThreads), kThreads, 0, st>>>(U, w, s.K,
                                                                                                       s.C);
  CUDA_CHECK_LAUNCH("winograd_filter_transform_kernel");
  float *V = U + 16LL * s.K * s.C;
  for (int n0 = 0; n0 < s.N; n0 += chunk) {
    Conv2dShape part = s;
    part.N = std::min(chunk, s.N - n0);
    const int T = (int)(part.N * tl.per_image());
    float *M = V + 16LL * s.C * T;
    winograd_input_transform_kernel<<<elementwise_blocks(1LL * s.C * T, kThreads), kThreads, 0, st>>>(
        V, x + (long long)n0 * s.C * s.H * s.W, part, T, divs);
    CUDA_CHECK_LAUNCH("winograd_input_transform_kernel");
    sgemm_strided_batched(M, U, V, s.K, T, s.C, 16, 1LL * s.K * s.C, 1LL * s.C * T, 1LL * s.K * T, st);
    winograd_output_transform_kernel<<<elementwise_blocks(1LL * s.K * T, kThreads), kThreads, 0, st>>>(
        y + (long long)n0 * s.K * s.P * s.Q, M, bias, relu, part, T, divs);
    CUDA_CHECK_LAUNCH("winograd_output_transform_kernel");
  }
}

}  // namespace

bool conv2d_winograd_supported(const Conv2dShape &s, ConvPass pass) {
  if (!winograd_geometry(s)) return false;
  if (pass == ConvPass::kForward) return true;
  return pass == ConvPass::kBackwardData && data_gradient_is_a_forward(s);
}

long long conv2d_winograd_workspace(const Conv2dShape &s, int chunk, ConvPass pass) {
  s.validate();
  require(conv2d_winograd_supported(s, pass), "conv2d winograd: this geometry and pass are not supported");
  require(chunk >= 1 && chunk <= s.N, "conv2d winograd: chunk must be in [1, N=" + std::to_string(s.N) + "], got " +
                                          std::to_string(chunk));
  if (pass == ConvPass::kForward) return forward_floats(s, chunk);
  return s.w_size() + forward_floats(data_gradient_shape(s), chunk);  // flipped filters first
}

void conv2d_winograd_forward(ptr_t y, ptr_t x, ptr_t w, ptr_t bias, bool relu, ptr_t workspace,
                             long long workspace_size, int chunk, const Conv2dShape &s, ptr_t stream) {
  check_args(s, chunk, workspace, workspace_size, forward_floats(s, chunk));
  require_ptr(y, "y");
  require_ptr(x, "x");
  require_ptr(w, "w");
  winograd_forward(as_ptr<float>(y), as_ptr<const float>(x), as_ptr<const float>(w),
                   bias != 0 ? as_ptr<const float>(bias) : nullptr, relu, as_ptr<float>(workspace), chunk, s,
                   as_stream(stream));
}

void conv2d_winograd_backward_data(ptr_t dx, ptr_t dy, ptr_t w, ptr_t workspace, long long workspace_size, int chunk,
                                   const Conv2dShape &s, ptr_t stream) {
  require(conv2d_winograd_supported(s, ConvPass::kBackwardData),
          "conv2d winograd: the data gradient needs stride 1 and padding at most 2 on each side");
  const Conv2dShape t = data_gradient_shape(s);
  check_args(t, chunk, workspace, workspace_size, s.w_size() + forward_floats(t, chunk));
  require_ptr(dx, "dx");
  require_ptr(dy, "dy");
  require_ptr(w, "w");
  cudaStream_t st = as_stream(stream);
  float *flipped = as_ptr<float>(workspace);
  flip_transpose_filters(flipped, as_ptr<const float>(w), s, st);
  winograd_forward(as_ptr<float>(dx), as_ptr<const float>(dy), flipped, nullptr, false, flipped + s.w_size(), chunk,
                   t, st);
}

}  // namespace cudacnn
