// Our SGEMM (im2col_gemm.cu) as other kernel files call it.
#pragma once
#include "common.cuh"

namespace cudacnn {

// C[b] = A[b] (M x K) * B[b] (K x N), row-major, for b < problems; problem b's
// operands start b * {a,b,c}_stride elements in. Each problem must have fewer
// than 2^31 elements per operand.
void sgemm_strided_batched(float *C, const float *A, const float *B, int M, int N, int K, int problems,
                           long long a_stride, long long b_stride, long long c_stride, cudaStream_t stream);

}  // namespace cudacnn
