"""Backends: ``numpy`` (reference), ``cupy`` (the same reference on CuPy), ``cuda`` (our kernels).

Every backend module ``_<name>.py`` exposes the same functions. ``cudacnn.ops``
validates and normalises arguments once, then calls them, so a backend may
assume valid input:

* ``stride``, ``dilation``, ``kernel``: ``(h, w)`` int pairs;
  ``padding``: ``(top, bottom, left, right)`` ints (VALID/SAME already resolved);
  ``groups``: int; ``algo``: "direct" | "im2col" | "winograd" | "auto" (ignored where meaningless).
* Arrays are C-contiguous float32 (float64 allowed on numpy), NCHW.

Functions (outputs are new arrays unless "in place" is said):

  conv2d(x, w, b, stride, padding, dilation, groups, algo, activation=None) -> y
      activation None or "relu": relu(y), fused into the kernels' epilogue
  conv2d_backward(dy, x, w, stride, padding, dilation, groups, algo, need_dx=True) -> (dx|None, dw, db)
  max_pool2d(x, kernel, stride, padding) -> (y, indices)
      indices: int32, flat h*W+w of the max inside each input plane
      (padding counts as -inf, never chosen)
  max_pool2d_backward(dy, x, indices, kernel, stride, padding) -> dx   (indices may be None)
  avg_pool2d(x, kernel, stride, padding, count_include_pad) -> y
  avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad) -> dx
  global_avg_pool2d(x) -> y (N, C);   global_avg_pool2d_backward(dy, x_shape) -> dx
  batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps) -> (y, cache)
      x is (N, C) or (N, C, H, W); training updates running_* in place
  batch_norm_backward(dy, cache) -> (dx, dgamma, dbeta)
  softmax_cross_entropy(logits, labels) -> (loss 0-d array, cache)
      labels: int (N,) class indices, or float (N, K) probability rows
  softmax_cross_entropy_backward(cache) -> dlogits
  linear(x, w, b, activation=None) -> y (activation as conv2d's)
  linear_backward(dy, x, w, need_dx=True) -> (dx|None, dw, db)
  relu(x), relu_backward(dy, x); leaky_relu(x, negative_slope), leaky_relu_backward(dy, x, negative_slope)
  elu(x, alpha), elu_backward(dy, x, alpha); sigmoid(x), sigmoid_backward(dy, y)
  tanh(x), tanh_backward(dy, y); softmax(x), softmax_backward(dy, y)   (softmax over the last axis)
  dropout(x, rate, seed) -> y;  dropout_backward(dy, rate, seed) -> dx
      keep element i iff uniform(seed, i) >= rate, scale kept by 1/(1-rate), where
      uniform(seed, i) = (lowbias32(uint32(i) + uint32(seed) * 0x9E3779B9) >> 8) * 2**-24
      and lowbias32(h): h ^= h>>16; h *= 0x7feb352d; h ^= h>>15; h *= 0x846ca68b; h ^= h>>16
      (all uint32 arithmetic): a counter-based RNG, identical on every backend.
  sgd_update(ps, gs, velocities, lr, momentum, nesterov, weight_decay)      in place
  rmsprop_update(ps, gs, mean_squares, lr, rho, eps, weight_decay)          in place
  adam_update(ps, gs, ms, vs, lr, beta1, beta2, eps, weight_decay, step)   in place
      (lists with one entry per tensor, all on one device in one dtype, so a
       backend may update a model's weights in one launch; velocities entries
       may be None when momentum == 0. Keras semantics, weight decay decoupled:
       p -= lr*wd*p before the step; see cudacnn.ops.optim for the formulas)
"""

# The functions every backend module defines (the contract above, by name).
BACKEND_FUNCTIONS = (
    "conv2d", "conv2d_backward",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool2d", "global_avg_pool2d_backward",
    "batch_norm", "batch_norm_backward",
    "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "linear", "linear_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "elu", "elu_backward",
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "softmax", "softmax_backward",
    "dropout", "dropout_backward",
    "sgd_update", "rmsprop_update", "adam_update",
)
