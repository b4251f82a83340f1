// CPU emulation of the part of the CUDA runtime that cudacnn's kernels use, so
// the kernels can be run and tested on a machine without a GPU (see run_tests.sh).
//
// Blocks run one after another. The threads of a block are ucontext fibers; a
// fiber switches only at __syncthreads and at warp shuffles, and a barrier opens
// when every live thread of the block (or warp) has reached it.
// A GPU runs warps in any order and lets one warp run ahead of another up to the
// next __syncthreads, so a race (one thread reads what another writes, with no
// barrier between) gives the right answer under some orders only. To expose it,
// the runnable thread of highest priority always runs next: one warp goes as far
// as it can before the next starts. Priorities are drawn again each time a block
// barrier opens. CUDAEMU_ORDER picks them: shuffle (default; warps and lanes in
// a random order, reproducible from a fixed seed), forward or reverse.
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
#include <queue>
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

enum class Order { kShuffle, kForward, kReverse };

inline Order order_from_env() {
  const char *name = std::getenv("CUDAEMU_ORDER");
  if (name == nullptr || std::strcmp(name, "shuffle") == 0) return Order::kShuffle;
  if (std::strcmp(name, "forward") == 0) return Order::kForward;
  if (std::strcmp(name, "reverse") == 0) return Order::kReverse;
  std::fprintf(stderr, "cudaemu: CUDAEMU_ORDER=%s is not shuffle, forward or reverse\n", name);
  std::abort();
}

inline uint64_t next_random() {  // xorshift64, fixed seed: runs are reproducible
  static uint64_t state = 0x9E3779B97F4A7C15ull;
  state ^= state << 13, state ^= state >> 7, state ^= state << 17;
  return state;
}

inline void shuffle(std::vector<unsigned> &v) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next_random() % i]);
}

// rank[t]: thread t's priority until the next block barrier (lower runs first).
// Warp-major, so a warp runs ahead of the others as a GPU may let it.
inline void draw_ranks(std::vector<unsigned> &rank) {
  static const Order order = order_from_env();
  const unsigned threads = rank.size(), warps = (threads + 31) / 32;
  std::vector<unsigned> warp_rank(warps), lane_rank(32);
  for (unsigned i = 0; i < warps; ++i) warp_rank[i] = order == Order::kReverse ? warps - 1 - i : i;
  for (unsigned i = 0; i < 32; ++i) lane_rank[i] = order == Order::kReverse ? 31 - i : i;
  if (order == Order::kShuffle) shuffle(warp_rank), shuffle(lane_rank);
  for (unsigned t = 0; t < threads; ++t) rank[t] = warp_rank[t / 32] * 32 + lane_rank[t % 32];
}

class Scheduler {
 public:
  explicit Scheduler(Block &b) : b_(b), rank_(b.fibers.size()) { open_block_barrier(); }

  // The next thread to run, or nullptr when none can run (all done, or deadlock).
  Fiber *next() {
    if (runnable_.empty() && !open_block_barrier()) return nullptr;
    const unsigned t = runnable_.top().second;
    runnable_.pop();
    return &b_.fibers[t];
  }

  // After fiber t switched out: its warp's barrier may now be complete.
  void switched(unsigned t) {
    if (b_.fibers[t].wait == kAtBlockBarrier) return;
    const unsigned w0 = t / 32 * 32, w1 = std::min<unsigned>(b_.fibers.size(), w0 + 32);
    unsigned live = 0, waiting = 0;
    for (unsigned u = w0; u < w1; ++u) {
      live += b_.fibers[u].wait != kDone;
      waiting += b_.fibers[u].wait == kAtWarpBarrier;
    }
    if (live == 0 || waiting != live) return;
    for (unsigned u = w0; u < w1; ++u)
      if (b_.fibers[u].wait == kAtWarpBarrier) make_runnable(u);
  }

  bool all_done() const {
    for (auto &f : b_.fibers)
      if (f.wait != kDone) return false;
    return true;
  }

 private:
  // Opens the block barrier (or starts the block) when every live thread waits there.
  bool open_block_barrier() {
    bool any = false;
    for (auto &f : b_.fibers) {
      if (f.wait != kDone && f.wait != kAtBlockBarrier && f.wait != kRunnable) return false;
      any |= f.wait != kDone;
    }
    if (!any) return false;
    draw_ranks(rank_);
    for (unsigned t = 0; t < b_.fibers.size(); ++t)
      if (b_.fibers[t].wait != kDone) make_runnable(t);
    return true;
  }

  void make_runnable(unsigned t) {
    b_.fibers[t].wait = kRunnable;
    runnable_.push({rank_[t], t});
  }

  Block &b_;
  std::vector<unsigned> rank_;
  std::priority_queue<std::pair<unsigned, unsigned>, std::vector<std::pair<unsigned, unsigned>>,
                      std::greater<>>
      runnable_;
};

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
  Scheduler scheduler(b);
  while (Fiber *f = scheduler.next()) {
    b.current = f;
    enter(*f);
    swapcontext(&b.scheduler, &f->context);
    scheduler.switched(f->tid);
  }
  if (!scheduler.all_done()) {
    std::fprintf(stderr, "cudaemu: threads of block (%u, %u, %u) wait at different barriers forever\n",
                 block_idx().x, block_idx().y, block_idx().z);
    std::abort();
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

// Atomics, fences and cache hints: one block runs at a time, on one host
// thread, so plain accesses are atomic and every write is visible at once.
inline unsigned atomicAdd(unsigned *a, unsigned v) {
  const unsigned old = *a;
  *a = old + v;
  return old;
}
inline unsigned atomicExch(unsigned *a, unsigned v) {
  const unsigned old = *a;
  *a = v;
  return old;
}
inline void __threadfence() {}
template <typename T>
T __ldcg(const T *p) { return *p; }
template <typename T>
T __ldcs(const T *p) { return *p; }
template <typename T>
void __stcs(T *p, T v) { *p = v; }
// Blocks run one after another in launch order, so a spin-wait that is not
// satisfied at once waits on a later block: on a GPU that is a possible deadlock.
inline void __nanosleep(unsigned) {
  std::fprintf(stderr, "cudaemu: block (%u, %u, %u) waits on a block that has not run yet\n",
               ::cudaemu::block_idx().x, ::cudaemu::block_idx().y, ::cudaemu::block_idx().z);
  std::abort();
}
// One block runs at a time.
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
inline cudaError_t cudaGetDevice(int *device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr, int) {
  *value = 1;
  return cudaSuccess;
}
template <typename Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, Kernel, int, size_t) {
  *blocks = 1;
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t = nullptr) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
