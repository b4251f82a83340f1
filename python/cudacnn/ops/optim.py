"""Optimizer steps, in place on the parameter and its state arrays, Keras semantics.

Weight decay is decoupled (AdamW-style), applied before the step:
    p -= lr * weight_decay * p
SGD (velocity may be None when momentum == 0):
    momentum == 0:  p -= lr * g
    otherwise:      v = momentum * v - lr * g
                    p += v                            (nesterov: p += momentum * v - lr * g)
RMSprop:
    s = rho * s + (1 - rho) * g**2
    p -= lr * g / sqrt(s + eps)                       (eps inside the root, as Keras/TensorFlow;
                                                       PyTorch adds it outside)
Adam (step t counts from 1):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    p -= lr_t * m / (sqrt(v) + eps)
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as check


def _check(op, p, g, **state):
    check.arrays(op, p=p, g=g, **state)
    check.float_dtype(op, p=p, g=g, **state)
    check.same_shape(op, "g", g, "p", p)
    check.contiguous(op, "p", p)
    for name, a in state.items():
        if a is not None:
            check.same_shape(op, name, a, "p", p)
            check.contiguous(op, name, a)
    return _backend.get_array_module(g).ascontiguousarray(g)


def _hyper(op, lr, weight_decay):
    return (check.real(op, "lr", lr, 0.0),
            check.real(op, "weight_decay", weight_decay, 0.0))


def sgd_update(p, g, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    op = "sgd_update"
    g = _check(op, p, g, velocity=velocity)
    lr, weight_decay = _hyper(op, lr, weight_decay)
    momentum = check.real(op, "momentum", momentum, 0.0, 1.0)
    nesterov = check.flag(op, "nesterov", nesterov)
    if momentum and velocity is None:
        raise ValueError(f"{op}: momentum={momentum} needs a velocity array, got None")
    _backend.backend_for(p, g, velocity).sgd_update(p, g, velocity, lr, momentum, nesterov,
                                                    weight_decay)


def rmsprop_update(p, g, mean_square, lr, rho=0.9, eps=1e-7, weight_decay=0.0):
    op = "rmsprop_update"
    if mean_square is None:
        raise TypeError(f"{op}: mean_square must be an array, got None")
    g = _check(op, p, g, mean_square=mean_square)
    lr, weight_decay = _hyper(op, lr, weight_decay)
    rho = check.real(op, "rho", rho, 0.0, 1.0)
    eps = check.real(op, "eps", eps, 0.0)
    _backend.backend_for(p, g, mean_square).rmsprop_update(p, g, mean_square, lr, rho, eps,
                                                           weight_decay)


def adam_update(p, g, m, v, lr, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.0, step=1):
    op = "adam_update"
    if m is None or v is None:
        raise TypeError(f"{op}: m and v must be arrays, got {type(m).__name__} and "
                        f"{type(v).__name__}")
    g = _check(op, p, g, m=m, v=v)
    lr, weight_decay = _hyper(op, lr, weight_decay)
    beta1 = check.real(op, "beta1", beta1, 0.0, 1.0, high_open=True)
    beta2 = check.real(op, "beta2", beta2, 0.0, 1.0, high_open=True)
    eps = check.real(op, "eps", eps, 0.0)
    step = check.integer(op, "step", step, minimum=1)
    _backend.backend_for(p, g, m, v).adam_update(p, g, m, v, lr, beta1, beta2, eps,
                                                 weight_decay, step)
