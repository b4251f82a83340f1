// Optimizer updates, in place, Keras semantics with decoupled weight decay
// (p *= 1 - lr * weight_decay first): SGD with momentum/Nesterov, RMSprop, Adam.
//
// Multi-tensor: one launch updates up to kMaxTensors tensors (a model's whole
// weight list in one or a few launches instead of one per weight). Their
// pointers and sizes travel by value in the kernel arguments (as PyTorch's
// multi_tensor_apply does; ~1 KB, under the 4 KB parameter limit). Tensor t owns
// blocks [first_block[t], first_block[t + 1]), each block one kChunk-long slice
// of it. Every element is written by exactly one thread: deterministic.
#include <cmath>

#include "common.cuh"
#include "launchers.h"

namespace cudacnn {
namespace {

constexpr int kThreads = 256;
constexpr int kChunk = kThreads * 4;  // elements per block
constexpr int kMaxTensors = 24;

struct TensorBatch {
  float *p[kMaxTensors];
  const float *g[kMaxTensors];
  float *s1[kMaxTensors];  // velocity / mean_square / m (null: SGD without momentum)
  float *s2[kMaxTensors];  // v (Adam only)
  long long n[kMaxTensors];
  int first_block[kMaxTensors + 1];
  int count;
};

// Constants formed in double and rounded once to float, as the NumPy reference does.
struct Hyper {
  float lr;           // Adam: the bias-corrected lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  float a, one_minus_a;  // momentum | rho | beta1
  float b, one_minus_b;  // beta2
  float eps;
  float decay_factor;  // 1 - lr * weight_decay (exactly 1 without decay)
  bool nesterov;
};

// The step size and decoupled decay that every optimizer has.
Hyper base_hyper(double lr, double weight_decay) {
  Hyper h{};
  h.lr = (float)lr;
  h.decay_factor = (float)(1.0 - lr * weight_decay);
  return h;
}

enum class Opt { kSgd, kRmsprop, kAdam };

template <Opt KIND>
__device__ __forceinline__ void update_element(long long i, float *p, const float *g, float *s1, float *s2,
                                               const Hyper &h) {
  const float grad = g[i];
  float w = p[i] * h.decay_factor;
  if (KIND == Opt::kSgd) {
    const float step = h.lr * grad;
    if (s1 != nullptr) {
      const float v = h.a * s1[i] - step;
      s1[i] = v;
      w += h.nesterov ? h.a * v - step : v;
    } else {
      w -= step;
    }
  } else if (KIND == Opt::kRmsprop) {
    const float ms = h.a * s1[i] + h.one_minus_a * (grad * grad);
    s1[i] = ms;
    w -= h.lr * grad / sqrtf(ms + h.eps);  // Keras: eps inside the root
  } else {
    const float mi = h.a * s1[i] + h.one_minus_a * grad;
    const float vi = h.b * s2[i] + h.one_minus_b * (grad * grad);
    s1[i] = mi;
    s2[i] = vi;
    w -= h.lr * mi / (sqrtf(vi) + h.eps);
  }
  p[i] = w;
}

template <Opt KIND>
__global__ void __launch_bounds__(kThreads) multi_tensor_update_kernel(TensorBatch t, Hyper h) {
  // Find this block's tensor with constant indices only: a dynamic index into the
  // argument arrays could make every thread copy them to local memory.
  float *p = t.p[0], *s1 = t.s1[0], *s2 = t.s2[0];
  const float *g = t.g[0];
  long long n = t.n[0];
  int first = 0;
  const int block = blockIdx.x;
#pragma unroll
  for (int j = 1; j < kMaxTensors; ++j) {
    if (j < t.count && block >= t.first_block[j]) {
      p = t.p[j];
      g = t.g[j];
      s1 = t.s1[j];
      s2 = t.s2[j];
      n = t.n[j];
      first = t.first_block[j];
    }
  }
  const long long begin = 1LL * (block - first) * kChunk;
  const long long end = begin + kChunk < n ? begin + kChunk : n;
  for (long long i = begin + threadIdx.x; i < end; i += kThreads) update_element<KIND>(i, p, g, s1, s2, h);
}

// Checks every tensor, then launches kMaxTensors at a time. `what_s1`/`what_s2`
// name the state arrays in errors (nullptr: that state is not used).
template <Opt KIND>
void launch_updates(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &s1,
                    const std::vector<ptr_t> &s2, const std::vector<long long> &n, const char *what_s1,
                    const char *what_s2, const Hyper &h, const char *kernel_name, ptr_t stream) {
  const size_t count = p.size();
  require(count > 0, std::string(kernel_name) + ": no tensors to update");
  require(g.size() == count && n.size() == count && (what_s1 == nullptr || s1.size() == count) &&
              (what_s2 == nullptr || s2.size() == count),
          std::string(kernel_name) + ": the parameter, gradient, state and size lists differ in length");
  for (size_t i = 0; i < count; ++i) {
    require_ptr(p[i], "param");
    require_ptr(g[i], "grad");
    if (what_s1 != nullptr) require_ptr(s1[i], what_s1);
    if (what_s2 != nullptr) require_ptr(s2[i], what_s2);
    require_positive(n[i], "element count");
    require_fits_int32(n[i], "parameter");
  }
  for (size_t start = 0; start < count; start += kMaxTensors) {
    TensorBatch t{};
    t.count = (int)std::min<size_t>(kMaxTensors, count - start);
    long long blocks = 0;
    for (int j = 0; j < t.count; ++j) {
      const size_t i = start + j;
      t.p[j] = as_ptr<float>(p[i]);
      t.g[j] = as_ptr<const float>(g[i]);
      t.s1[j] = what_s1 != nullptr ? as_ptr<float>(s1[i]) : nullptr;
      t.s2[j] = what_s2 != nullptr ? as_ptr<float>(s2[i]) : nullptr;
      t.n[j] = n[i];
      t.first_block[j] = (int)blocks;
      blocks += CEIL_DIV(n[i], (long long)kChunk);  // at most 24 * 2^21: fits an int
    }
    t.first_block[t.count] = (int)blocks;
    multi_tensor_update_kernel<KIND><<<(unsigned)blocks, kThreads, 0, as_stream(stream)>>>(t, h);
    CUDA_CHECK_LAUNCH(kernel_name);
  }
}

}  // namespace

void sgd_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &velocity,
                const std::vector<long long> &n, double lr, double momentum, bool nesterov, double weight_decay,
                ptr_t stream) {
  Hyper h = base_hyper(lr, weight_decay);
  h.a = (float)momentum;
  h.nesterov = nesterov;
  launch_updates<Opt::kSgd>(p, g, velocity, {}, n, momentum == 0.0 ? nullptr : "velocity", nullptr, h,
                            "multi_tensor_update_kernel<sgd>", stream);
}

void rmsprop_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &mean_square,
                    const std::vector<long long> &n, double lr, double rho, double eps, double weight_decay,
                    ptr_t stream) {
  Hyper h = base_hyper(lr, weight_decay);
  h.a = (float)rho;
  h.one_minus_a = (float)(1.0 - rho);
  h.eps = (float)eps;
  launch_updates<Opt::kRmsprop>(p, g, mean_square, {}, n, "mean_square", nullptr, h,
                                "multi_tensor_update_kernel<rmsprop>", stream);
}

void adam_update(const std::vector<ptr_t> &p, const std::vector<ptr_t> &g, const std::vector<ptr_t> &m,
                 const std::vector<ptr_t> &v, const std::vector<long long> &n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, long long step, ptr_t stream) {
  require(step >= 1, "adam step must be >= 1, got " + std::to_string(step));
  Hyper h = base_hyper(lr, weight_decay);
  h.lr = (float)(lr * std::sqrt(1.0 - std::pow(beta2, (double)step)) / (1.0 - std::pow(beta1, (double)step)));
  h.a = (float)beta1;
  h.one_minus_a = (float)(1.0 - beta1);
  h.b = (float)beta2;
  h.one_minus_b = (float)(1.0 - beta2);
  h.eps = (float)eps;
  launch_updates<Opt::kAdam>(p, g, m, v, n, "m", "v", h, "multi_tensor_update_kernel<adam>", stream);
}

}  // namespace cudacnn
