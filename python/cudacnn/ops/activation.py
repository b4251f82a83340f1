"""Elementwise activations and their backwards (any shape; softmax over the last axis).

Backwards take the forward input x (relu, leaky_relu, elu) or the forward
output y (sigmoid, tanh, softmax), whichever makes the derivative cheap.
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def _one(op, x):
    v.arrays(op, x=x)
    v.float_dtype(op, x=x)
    return _backend.backend_for(x)


def _pair(op, dy, a, a_name):
    v.arrays(op, dy=dy, **{a_name: a})
    v.float_dtype(op, dy=dy, **{a_name: a})
    v.same_shape(op, "dy", dy, a_name, a)
    return _backend.backend_for(dy, a)


def relu(x):
    """max(x, 0)."""
    return _one("relu", x).relu(x)


def relu_backward(dy, x):
    return _pair("relu_backward", dy, x, "x").relu_backward(dy, x)


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else negative_slope * x."""
    slope = v.real("leaky_relu", "negative_slope", negative_slope)
    return _one("leaky_relu", x).leaky_relu(x, slope)


def leaky_relu_backward(dy, x, negative_slope=0.01):
    slope = v.real("leaky_relu_backward", "negative_slope", negative_slope)
    return _pair("leaky_relu_backward", dy, x, "x").leaky_relu_backward(dy, x, slope)


def elu(x, alpha=1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    alpha = v.real("elu", "alpha", alpha)
    return _one("elu", x).elu(x, alpha)


def elu_backward(dy, x, alpha=1.0):
    alpha = v.real("elu_backward", "alpha", alpha)
    return _pair("elu_backward", dy, x, "x").elu_backward(dy, x, alpha)


def sigmoid(x):
    """1 / (1 + exp(-x)), overflow-free."""
    return _one("sigmoid", x).sigmoid(x)


def sigmoid_backward(dy, y):
    """dy * y * (1 - y), y the forward output."""
    return _pair("sigmoid_backward", dy, y, "y").sigmoid_backward(dy, y)


def tanh(x):
    return _one("tanh", x).tanh(x)


def tanh_backward(dy, y):
    """dy * (1 - y^2), y the forward output."""
    return _pair("tanh_backward", dy, y, "y").tanh_backward(dy, y)


def softmax(x):
    """exp(x) / sum(exp(x)) over the last axis, max-shifted for stability."""
    return _one("softmax", x).softmax(x)


def softmax_backward(dy, y):
    """y * (dy - sum(dy * y)) over the last axis, y the forward output."""
    return _pair("softmax_backward", dy, y, "y").softmax_backward(dy, y)
