"""Elementwise activations and their backwards (xp-generic). Softmax is over the last axis."""
from __future__ import annotations

from ..backend import get_array_module


def relu(x):
    xp = get_array_module(x)
    return xp.maximum(x, 0)


def apply_fused_activation(y, activation):
    """conv2d's and linear's activation= argument, on their fresh output in place: relu(y) as above."""
    if activation == "relu":
        get_array_module(y).maximum(y, 0, out=y)
    return y


def relu_backward(dy, x):
    return dy * (x > 0)


def leaky_relu(x, negative_slope):
    xp = get_array_module(x)
    return xp.where(x > 0, x, x * negative_slope)


def leaky_relu_backward(dy, x, negative_slope):
    xp = get_array_module(x)
    return xp.where(x > 0, dy, dy * negative_slope)


def elu(x, alpha):
    xp = get_array_module(x)
    # expm1 of min(x, 0): the unused branch never overflows.
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0)))


def elu_backward(dy, x, alpha):
    xp = get_array_module(x)
    return xp.where(x > 0, dy, dy * (alpha * xp.exp(xp.minimum(x, 0))))


def sigmoid(x):
    xp = get_array_module(x)
    # exp(-|x|) never overflows; pick the algebraically equal form per sign.
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh(x):
    xp = get_array_module(x)
    return xp.tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)


def softmax(x):
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_backward(dy, y):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
