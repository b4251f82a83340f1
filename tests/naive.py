"""Naive loop references for the ops tests, written straight from the definitions.

Everything here is float64 and deliberately slow: plain Python loops over
every index, no im2col, no vectorised tricks, so it shares no code or idea
with the backends it checks. Padding is (top, bottom, left, right).
"""
import math

import numpy as np


def _out(size, pad_a, pad_b, kernel, stride, dilation=1):
    return (size + pad_a + pad_b - (kernel - 1) * dilation - 1) // stride + 1


def same_pads(size, kernel, stride, dilation=1):
    """(before, after) for TensorFlow's 'same' on one axis, from its documented rule:
    out = ceil(size / stride); the total pad lets the last (dilated) window end on the padded
    input; the smaller half goes before, an odd extra after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pads(padding, spatial, kernel, stride, dilation):
    """(top, bottom, left, right) for padding given as an int, (ph, pw), "valid" or "same"."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return (*same_pads(spatial[0], kernel[0], stride[0], dilation[0]),
                *same_pads(spatial[1], kernel[1], stride[1], dilation[1]))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph, pw, pw)


def conv2d(x, w, b, stride, pads, dilation, groups):
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    OH, OW = _out(H, pt, pb, R, sh, dh), _out(W, pl, pr, S, sw, dw)
    Kg = K // groups
    y = np.zeros((N, K, OH, OW))
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for i in range(OH):
                for j in range(OW):
                    total = 0.0 if b is None else b[k]
                    for c in range(Cg):
                        for r in range(R):
                            for s in range(S):
                                h = i * sh + r * dh - pt
                                v = j * sw + s * dw - pl
                                if 0 <= h < H and 0 <= v < W:
                                    total += x[n, g * Cg + c, h, v] * w[k, c, r, s]
                    y[n, k, i, j] = total
    return y


def _windows(H, W, kernel, stride, pads):
    """Yield (i, j, [(h, w) real positions in row-major window order])."""
    (R, S), (sh, sw), (pt, pb, pl, pr) = kernel, stride, pads
    for i in range(_out(H, pt, pb, R, sh)):
        for j in range(_out(W, pl, pr, S, sw)):
            cells = [(i * sh + r - pt, j * sw + s - pl) for r in range(R) for s in range(S)]
            yield i, j, [(h, v) for h, v in cells if 0 <= h < H and 0 <= v < W]


def _pool_shape(x, kernel, stride, pads):
    H, W = x.shape[2:]
    return (_out(H, pads[0], pads[1], kernel[0], stride[0]),
            _out(W, pads[2], pads[3], kernel[1], stride[1]))


def max_pool2d(x, kernel, stride, pads):
    """(y, indices) with the first maximum of each window (PyTorch's choice)."""
    N, C, H, W = x.shape
    y = np.zeros((N, C) + _pool_shape(x, kernel, stride, pads))
    idx = np.zeros(y.shape, dtype=np.int32)
    for n in range(N):
        for c in range(C):
            for i, j, cells in _windows(H, W, kernel, stride, pads):
                best = max(cells, key=lambda hv: x[n, c, hv[0], hv[1]])  # max() keeps the first
                y[n, c, i, j] = x[n, c, best[0], best[1]]
                idx[n, c, i, j] = best[0] * W + best[1]
    return y, idx


def avg_pool2d(x, kernel, stride, pads, count_include_pad):
    N, C, H, W = x.shape
    y = np.zeros((N, C) + _pool_shape(x, kernel, stride, pads))
    for n in range(N):
        for c in range(C):
            for i, j, cells in _windows(H, W, kernel, stride, pads):
                divisor = kernel[0] * kernel[1] if count_include_pad else len(cells)
                y[n, c, i, j] = sum(x[n, c, h, v] for h, v in cells) / divisor
    return y


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """(y, new_running_mean, new_running_var), one channel at a time."""
    C = x.shape[1]
    y = np.zeros_like(x)
    new_mean, new_var = running_mean.copy(), running_var.copy()
    for c in range(C):
        values = [float(v) for v in np.moveaxis(x, 1, 0)[c].ravel()]
        m = len(values)
        if training:
            mean = sum(values) / m
            var = sum((v - mean) ** 2 for v in values) / m
            new_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            new_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        else:
            mean, var = running_mean[c], running_var[c]
        plane = np.moveaxis(y, 1, 0)
        plane[c] = gamma[c] * (np.moveaxis(x, 1, 0)[c] - mean) / math.sqrt(var + eps) + beta[c]
    return y, new_mean, new_var


def softmax_cross_entropy(logits, labels):
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        row = [float(v) for v in logits[n]]
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        if labels.ndim == 1:
            total += log_z - row[int(labels[n])]
        else:
            total += sum(-labels[n, k] * (row[k] - log_z) for k in range(K))
    return total / N


def linear(x, w, b):
    N, out = x.shape[0], w.shape[0]
    y = np.zeros((N, out))
    for n in range(N):
        for o in range(out):
            y[n, o] = sum(x[n, i] * w[o, i] for i in range(w.shape[1])) + (0.0 if b is None else b[o])
    return y


ACTIVATIONS = {
    "relu": lambda v: max(v, 0.0),
    "leaky_relu": lambda v: v if v > 0 else 0.01 * v,
    "elu": lambda v: v if v > 0 else math.exp(v) - 1.0,
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "tanh": math.tanh,
}


def activation(name, x):
    return np.vectorize(ACTIVATIONS[name], otypes=[np.float64])(x)


def softmax(x):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        row = [math.exp(v) for v in x[idx]]
        out[idx] = [v / sum(row) for v in row]
    return out


def dropout_keep(seed, count, rate):
    """The counter-RNG keep mask, element by element with Python ints mod 2**32."""
    mask32 = 0xFFFFFFFF
    keep = np.zeros(count, dtype=bool)
    for i in range(count):
        h = (i + seed * 0x9E3779B9) & mask32
        h ^= h >> 16
        h = (h * 0x7FEB352D) & mask32
        h ^= h >> 15
        h = (h * 0x846CA68B) & mask32
        h ^= h >> 16
        keep[i] = (h >> 8) * 2.0 ** -24 >= np.float32(rate)
    return keep


def numerical_grad(loss, array, eps=1e-6):
    """Central finite differences of the scalar loss() with respect to each element of array."""
    assert array.flags.c_contiguous, "numerical_grad nudges array through a flat view: pass a contiguous array"
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        gflat[i] = _central_difference(loss, flat, i, eps)
    return grad


def _central_difference(loss, flat, i, eps):
    """(loss(x + eps e_i) - loss(x - eps e_i)) / (2 eps), nudging flat[i] in place and restoring it."""
    old = flat[i]
    flat[i] = old + eps
    up = loss()
    flat[i] = old - eps
    down = loss()
    flat[i] = old
    return (up - down) / (2 * eps)


def assert_sampled_gradients(objective, targets, rng, entries, atol, rtol=1e-5, eps=1e-6):
    """Check analytic gradients against central differences of objective() at a few sampled
    elements of each (name, array, grad) target; returns how many elements were checked."""
    checked = 0
    for name, array, grad in targets:
        flat, gflat = array.reshape(-1), grad.reshape(-1)
        for i in rng.choice(flat.size, size=min(entries, flat.size), replace=False):
            numeric = _central_difference(objective, flat, i, eps)
            assert abs(numeric - gflat[i]) <= atol + rtol * abs(numeric), (name, i, numeric, gflat[i])
            checked += 1
    return checked
