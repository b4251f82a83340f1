// CPU emulation of the part of the CUDA runtime that cudacnn's kernels use, so
// the kernels can be run and tested on a machine without a GPU (see run_tests.sh).
//
// Blocks run one after another. The threads of a block are ucontext fibers run
// round-robin; a fiber switches only at __syncthreads and at warp shuffles, and
// a barrier opens when every live thread of the block (or warp) has reached it.
// "Device" memory is host memory. Dynamic shared memory starts as NaN, so a read
// of shared memory no thread has written yet (a missing barrier) shows up.
// Not emulated: concurrency between blocks, memory models, timing.
#pragma once
#include <math.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <tuple>
#include <vector>

#define __CUDACC__ 1
#define CUDART_VERSION 13000
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static  // blocks run one at a time, so one copy serves every block
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)

using std::max;
using std::min;

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
struct alignas(8) float2 {
  float x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
struct alignas(8) int2 {
  int x, y;
};
inline int2 make_int2(int x, int y) { return {x, y}; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }

typedef void *cudaStream_t;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidConfiguration = 9 };
inline const char *cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : "invalid configuration argument";
}
inline cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}

namespace cudaemu {

enum Wait { kRunnable, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Fiber {
  ucontext_t context;
  Wait wait = kRunnable;
  unsigned tid = 0;
};

struct Block {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  std::vector<float> shared;             // dynamic shared memory
  std::vector<uint64_t> exchange;        // shuffles: [warp][2 buffers][32 lanes]
  std::vector<unsigned> shuffles_done;   // per thread; picks the buffer
  const std::function<void()> *body = nullptr;
  Fiber *current = nullptr;
};

inline Block *&block() {
  static Block *b = nullptr;
  return b;
}
inline dim3 &thread_idx() { static dim3 d; return d; }
inline dim3 &block_idx() { static dim3 d; return d; }
inline dim3 &block_dim() { static dim3 d; return d; }
inline dim3 &grid_dim() { static dim3 d; return d; }
inline cudaError_t &last_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
inline float *dynamic_shared() { return block()->shared.data(); }

inline void enter(const Fiber &f) {
  const dim3 &bd = block_dim();
  thread_idx() = dim3(f.tid % bd.x, (f.tid / bd.x) % bd.y, f.tid / (bd.x * bd.y));
}

inline void wait_at(Wait barrier) {
  Block *b = block();
  Fiber *f = b->current;
  f->wait = barrier;
  swapcontext(&f->context, &b->scheduler);
  enter(*f);
}

inline void syncthreads() { wait_at(kAtBlockBarrier); }

// Two buffers per warp: a fast lane writing shuffle i+1 never clobbers what a
// slow lane still has to read from shuffle i (it cannot get to i+2 before the
// slow lane reaches i+1).
template <typename T>
T shfl_xor(T v, int lane_mask) {
  static_assert(sizeof(T) <= 8, "shuffles of at most 8 bytes");
  Block *b = block();
  const unsigned tid = b->current->tid, warp = tid / 32, lane = tid % 32;
  uint64_t *buffer = &b->exchange[(warp * 2 + b->shuffles_done[tid]++ % 2) * 32];
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  buffer[lane] = bits;
  wait_at(kAtWarpBarrier);
  T out;
  std::memcpy(&out, &buffer[lane ^ lane_mask], sizeof(T));
  return out;
}

inline void fiber_main() {
  Block *b = block();
  (*b->body)();
  b->current->wait = kDone;
  swapcontext(&b->current->context, &b->scheduler);
}

// Opens the barriers every live participant has reached; false when none could open.
inline bool open_barriers(Block &b) {
  unsigned live = 0, at_block = 0;
  for (auto &f : b.fibers) {
    live += f.wait != kDone;
    at_block += f.wait == kAtBlockBarrier;
  }
  if (live > 0 && at_block == live) {
    for (auto &f : b.fibers) f.wait = kRunnable;
    return true;
  }
  bool opened = false;
  const unsigned threads = b.fibers.size();
  for (unsigned w0 = 0; w0 < threads; w0 += 32) {
    const unsigned w1 = std::min(threads, w0 + 32);
    unsigned warp_live = 0, at_warp = 0;
    for (unsigned t = w0; t < w1; ++t) {
      warp_live += b.fibers[t].wait != kDone;
      at_warp += b.fibers[t].wait == kAtWarpBarrier;
    }
    if (warp_live > 0 && at_warp == warp_live) {
      for (unsigned t = w0; t < w1; ++t) b.fibers[t].wait = kRunnable;
      opened = true;
    }
  }
  return opened;
}

inline void run_block(const std::function<void()> &body, unsigned threads, size_t shared_bytes) {
  constexpr size_t kStackBytes = 64 * 1024;  // kernels keep little on the stack
  static std::vector<std::vector<char>> stacks;
  while (stacks.size() < threads) stacks.emplace_back(kStackBytes);
  Block b;
  b.fibers.resize(threads);
  b.shared.assign(shared_bytes / sizeof(float) + 4, NAN);
  b.exchange.assign((threads / 32 + 1) * 64, 0);
  b.shuffles_done.assign(threads, 0);
  b.body = &body;
  block() = &b;
  for (unsigned t = 0; t < threads; ++t) {
    Fiber &f = b.fibers[t];
    f.tid = t;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stacks[t].data();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_main, 0);
  }
  for (;;) {
    bool any_live = false;
    for (auto &f : b.fibers) {
      if (f.wait != kRunnable) continue;
      b.current = &f;
      enter(f);
      swapcontext(&b.scheduler, &f.context);
    }
    for (auto &f : b.fibers) any_live |= f.wait != kDone;
    if (!any_live) break;
    if (!open_barriers(b)) {
      std::fprintf(stderr, "cudaemu: threads of block (%u, %u, %u) wait at different barriers forever\n",
                   block_idx().x, block_idx().y, block_idx().z);
      std::abort();
    }
  }
  block() = nullptr;
}

template <typename... Params>
struct Launch {
  void (*kernel)(Params...);
  dim3 grid, threads;
  size_t shared_bytes;

  template <typename... Args>
  void operator()(Args &&...args) const {
    const unsigned per_block = threads.x * threads.y * threads.z;
    // The limits a real launch checks (48 KB: the default dynamic shared memory).
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || per_block == 0 ||
        per_block > 1024 || shared_bytes > 48 * 1024) {
      last_error() = cudaErrorInvalidConfiguration;
      return;
    }
    const std::tuple<Params...> params(std::forward<Args>(args)...);
    const std::function<void()> body = [&] { std::apply(kernel, params); };
    grid_dim() = grid;
    block_dim() = threads;
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          block_idx() = dim3(x, y, z);
          run_block(body, per_block, shared_bytes);
        }
  }
};

// kernel<<<grid, threads, shared_bytes, stream>>>(args) is rewritten to
// cudaemu::launch(kernel, grid, threads, shared_bytes, stream)(args).
template <typename... Params>
Launch<Params...> launch(void (*kernel)(Params...), dim3 grid, dim3 threads, size_t shared_bytes = 0,
                         cudaStream_t = nullptr) {
  return Launch<Params...>{kernel, grid, threads, shared_bytes};
}

}  // namespace cudaemu

#define threadIdx (::cudaemu::thread_idx())
#define blockIdx (::cudaemu::block_idx())
#define blockDim (::cudaemu::block_dim())
#define gridDim (::cudaemu::grid_dim())
#define __syncthreads() ::cudaemu::syncthreads()
#define __shfl_xor_sync(mask, v, lane_mask) ::cudaemu::shfl_xor((v), (lane_mask))

inline cudaError_t cudaGetLastError() {
  const cudaError_t e = ::cudaemu::last_error();
  ::cudaemu::last_error() = cudaSuccess;
  return e;
}
