// Shared helpers for every kernel family: error checking that turns CUDA
// failures into C++ exceptions (pybind11 turns those into Python errors),
// ceil-div, and warp/block reductions.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cudacnn {

struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void cuda_check(cudaError_t err, const char *what, const char *file, int line) {
  if (err != cudaSuccess) {
    throw CudaError(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                    "): " + cudaGetErrorString(err));
  }
}

// Host-side argument check: raised before any launch, becomes a Python ValueError.
inline void require(bool ok, const std::string &msg) {
  if (!ok) throw std::invalid_argument(msg);
}

}  // namespace cudacnn

#define CUDA_CHECK(call) ::cudacnn::cuda_check((call), #call, __FILE__, __LINE__)
// After every launch: names the kernel in the error.
#define CUDA_CHECK_LAUNCH(kernel_name) ::cudacnn::cuda_check(cudaGetLastError(), kernel_name, __FILE__, __LINE__)
#define CEIL_DIV(a, b) (((a) + (b)-1) / (b))

template <typename T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_reduce_max(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
