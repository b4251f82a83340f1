"""cudacnn.ops: the op contract, the same on every backend.

Layout and dtypes
    NCHW (conv1d: NCL). float32 everywhere; the numpy backend also takes
    float64 (for gradient checks). All array arguments of one call must be
    numpy arrays (CPU, ``numpy`` backend) or all cupy arrays (GPU, ``cuda``
    or ``cupy`` backend); the backend is picked from them
    (``cudacnn.backend.backend_for``).

Validation
    Each op checks its arguments once, before any backend runs: wrong ndim,
    channel/groups mismatch, non-positive stride or dilation, negative
    padding, a (dilated) kernel larger than the padded input (output size
    below 1), pooling padding over half the kernel, dtype or device mismatch
    between arguments, empty arrays. It raises ValueError (bad shapes or
    values) or TypeError (bad types, dtypes, devices) whose message starts
    with the op name and quotes the offending shapes or values, identically
    on every backend.

Convolution (cross-correlation, PyTorch weight layout)
    conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto", activation=None) -> y
        x (N, C, H, W), w (K, C/groups, R, S), b (K,) or None -> y (N, K, OH, OW).
        stride, dilation: int or (h, w). padding: int, (ph, pw), "valid" or
        "same" (Keras/TF: OH = ceil(H / stride); an odd total pad puts the
        extra row/column at the bottom/right). algo picks a GPU kernel
        ("auto" | "direct" | "im2col" | "winograd"); all give the same result, and the
        numpy/cupy reference ignores it. activation="relu" returns relu(y), fused
        into the kernels' epilogue (conv1d and linear take it too).
    conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, algo="auto",
                    need_dx=True) -> (dx, dw, db)     dx is None when need_dx=False
    conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None) -> y
        x (N, C, L), w (K, C/groups, S)
    conv1d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need_dx=True) -> (dx, dw, db)

Pooling (kernel_size, stride: int or (h, w); stride None = kernel_size;
padding int, (ph, pw), "valid" or "same", each pad at most half the kernel)
    max_pool2d(x, kernel_size, stride=None, padding=0, return_indices=False) -> y | (y, indices)
        indices: int32, flat h*W + w of each maximum inside its input plane
        (PyTorch semantics: the first maximum of a window wins and padding is
        never chosen; a window holding NaN gives NaN).
    max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, indices=None, indices_checked=False) -> dx
    avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True) -> y
    avg_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, count_include_pad=True) -> dx
    global_avg_pool2d(x) -> y (N, C);  global_avg_pool2d_backward(dy, x) -> dx

Normalisation (PyTorch semantics; Keras momentum m is momentum = 1 - m here)
    batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5)
        -> (y, cache). x (N, C) or (N, C, H, W). Training normalises with the
        biased batch variance and updates running_* in place:
        new = (1 - momentum) * old + momentum * batch (unbiased variance).
    batch_norm_backward(dy, cache) -> (dx, dgamma, dbeta)

Loss
    softmax_cross_entropy(logits, labels, labels_checked=False) -> (loss, cache)
        logits (N, K); labels int (N,) class indices or float (N, K)
        probability/one-hot rows. loss: 0-d array (logits' dtype), mean over
        the batch, log-sum-exp stable.
    softmax_cross_entropy_backward(cache) -> dlogits

Dense and activations
    linear(x, w, b=None, activation=None) -> y     x (..., in), w (out, in), b (out,)
    linear_backward(dy, x, w, need_dx=True) -> (dx, dw, db)
    relu(x), leaky_relu(x, negative_slope=0.01), elu(x, alpha=1.0), sigmoid(x),
    tanh(x), softmax(x) (last axis)
    relu_backward(dy, x), leaky_relu_backward(dy, x, negative_slope=0.01),
    elu_backward(dy, x, alpha=1.0), sigmoid_backward(dy, y), tanh_backward(dy, y),
    softmax_backward(dy, y)                (y: the forward output)
    dropout(x, rate, training, seed) -> y;  dropout_backward(dy, rate, training, seed) -> dx
        counter-based RNG: the mask depends only on (seed, element index), so
        every backend draws the same one; 0 <= rate < 1.

Optimizer steps (in place on p and its state; formulas in cudacnn.ops.optim). p, g and the
state may each be a list, one entry per weight: one call (on cuda, one launch per 24 weights)
updates a whole model.
    sgd_update(p, g, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0)
    rmsprop_update(p, g, mean_square, lr, rho=0.9, eps=1e-7, weight_decay=0.0)
    adam_update(p, g, m, v, lr, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.0, step=1)
"""
from ..backends import BACKEND_FUNCTIONS
from .activation import (elu, elu_backward, leaky_relu, leaky_relu_backward, relu, relu_backward,
                         sigmoid, sigmoid_backward, softmax, softmax_backward, tanh, tanh_backward)
from .conv import conv1d, conv1d_backward, conv2d, conv2d_backward
from .dropout import dropout, dropout_backward
from .linear import linear, linear_backward
from .loss import softmax_cross_entropy, softmax_cross_entropy_backward
from .norm import batch_norm, batch_norm_backward
from .optim import adam_update, rmsprop_update, sgd_update
from .pool import (avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward,
                   max_pool2d, max_pool2d_backward)

__all__ = ["conv1d", "conv1d_backward", *BACKEND_FUNCTIONS]  # conv1d runs as conv2d with H = 1
