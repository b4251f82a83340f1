// Shared helpers for every kernel family: error checking that turns CUDA
// failures into C++ exceptions (pybind11 turns those into Python errors),
// ceil-div, and warp/block reductions.
#pragma once
#include <cuda_runtime.h>
#include <cmath>
#include <cstdint>
#include <initializer_list>
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

// ---------------------------------------------------------------------------
// Host-side helpers shared by every launcher.
// ---------------------------------------------------------------------------
namespace cudacnn {

// Pointers and streams cross the Python boundary as integers (cupy's
// `arr.data.ptr` and `cupy.cuda.get_current_stream().ptr`).
template <typename T>
inline T *as_ptr(std::uintptr_t p) { return reinterpret_cast<T *>(p); }
inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// float4 paths need every pointer they touch on a 16-byte boundary.
inline bool all_aligned16(std::initializer_list<std::uintptr_t> ptrs) {
  for (std::uintptr_t p : ptrs)
    if (p % 16 != 0) return false;
  return true;
}

inline void require_ptr(std::uintptr_t p, const char *name) {
  require(p != 0, std::string(name) + " is a null device pointer");
}
inline void require_positive(long long v, const char *name) {
  require(v > 0, std::string(name) + " must be positive, got " + std::to_string(v));
}
// Kernels index single tensors with 32-bit ints (faster address arithmetic);
// larger tensors are refused before launch rather than silently wrapped.
constexpr long long kMaxElements = (1LL << 31) - 1;
inline void require_fits_int32(long long count, const char *name) {
  require(count <= kMaxElements, std::string(name) + " has " + std::to_string(count) +
                                     " elements; cudacnn kernels support at most 2^31-1 per tensor");
}

// Grid size for grid-stride elementwise loops: enough blocks to fill any GPU,
// never more than needed.
inline unsigned elementwise_blocks(long long n, int threads) {
  long long blocks = (n + threads - 1) / threads;
  const long long cap = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

// Division by a run-time constant d >= 1, for 0 <= n < 2^31, as a multiply-high
// and a shift (Granlund & Montgomery; the form PyTorch's IntDivider uses):
// index arithmetic in memory-bound kernels would otherwise be dominated by
// integer division. Built on the host, passed to kernels by value.
struct FastDiv {
  unsigned d = 1, magic = 1, shift = 0;
  FastDiv() = default;
  explicit FastDiv(long long divisor) : d(static_cast<unsigned>(divisor)) {
    require(divisor >= 1 && divisor < (1LL << 31), "FastDiv: divisor out of range");
    shift = 0;
    while ((1ULL << shift) < d) ++shift;
    magic = static_cast<unsigned>(((1ULL << 32) * ((1ULL << shift) - d)) / d + 1);
  }
#ifdef __CUDACC__
  __device__ __forceinline__ int div(int n) const {
    return static_cast<int>((__umulhi(static_cast<unsigned>(n), magic) + static_cast<unsigned>(n)) >> shift);
  }
  __device__ __forceinline__ int mod(int n) const { return n - div(n) * static_cast<int>(d); }
#endif
};

}  // namespace cudacnn

// Device helpers (only for nvcc; bindings.cpp is host C++ that includes this header).
#ifdef __CUDACC__
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

// The activation a forward kernel may apply in its epilogue (ops' activation="relu"):
// v <= 0 -> 0, else v, so NaN propagates as numpy.maximum(v, 0) does.
__device__ __forceinline__ float epilogue(float v, bool relu) { return relu && v <= 0.0f ? 0.0f : v; }

// Deterministic block-wide sum: fixed shuffle/shared-memory tree, so the same
// inputs always give the same bits. All threads of the block must call it;
// the result is valid in every thread. `scratch` holds at least 32 floats.
__device__ __forceinline__ float block_reduce_sum(float v, float *scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = warp_reduce_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = (lane < warps) ? scratch[lane] : 0.0f;
  v = warp_reduce_sum(v);
  return v;
}

#endif  // __CUDACC__
