"""Optimizer steps, in place, Keras semantics (formulas in cudacnn.ops.optim; xp-generic).

Each function updates a list of tensors (one entry per weight), one after another.
"""
from __future__ import annotations

import math

from ..backend import get_array_module


def _decay(p, lr, weight_decay):
    if weight_decay:
        p *= 1 - lr * weight_decay


def sgd_update(params, grads, velocities, lr, momentum, nesterov, weight_decay):
    for p, g, velocity in zip(params, grads, velocities):
        _decay(p, lr, weight_decay)
        if not momentum:
            p -= lr * g
            continue
        velocity *= momentum
        velocity -= lr * g
        if nesterov:
            p += momentum * velocity - lr * g
        else:
            p += velocity


def rmsprop_update(params, grads, mean_squares, lr, rho, eps, weight_decay):
    for p, g, mean_square in zip(params, grads, mean_squares):
        xp = get_array_module(p)
        _decay(p, lr, weight_decay)
        mean_square *= rho
        mean_square += (1 - rho) * (g * g)
        p -= lr * g / xp.sqrt(mean_square + eps)


def adam_update(params, grads, ms, vs, lr, beta1, beta2, eps, weight_decay, step):
    lr_t = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    for p, g, m, v in zip(params, grads, ms, vs):
        xp = get_array_module(p)
        _decay(p, lr, weight_decay)
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        denom = xp.sqrt(v)
        denom += eps
        p -= lr_t * m / denom
