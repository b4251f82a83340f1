"""Optimizer steps, in place on the parameters and their state arrays, Keras semantics.

Each op takes one array or a list of them (a model's weights: one launch on the cuda
backend instead of one per weight), with g and the state arrays matching.

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


def _tensors(op, p, g, **state):
    """(params, grads, {state name: list}): one entry per tensor, each checked.

    p is one array or a list of them; g and every state then match it (a state may
    be None for every tensor). All tensors share one device and one dtype, so a
    backend can update them together. Gradients come back C-contiguous.
    """
    is_list = isinstance(p, (list, tuple))
    if is_list:
        count = len(p)
        if count == 0:
            raise ValueError(f"{op}: p is an empty list; there is nothing to update")
        for name, value in {"g": g, **state}.items():
            if value is not None and (not isinstance(value, (list, tuple)) or len(value) != count):
                got = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__
                raise TypeError(f"{op}: p is a list of {count} arrays, so {name} must be a list of "
                                f"{count} too, got {got}")
        if g is None:
            raise TypeError(f"{op}: g must be a list of {count} arrays, got None")
        params, grads = list(p), list(g)
        states = {k: list(v) if v is not None else [None] * count for k, v in state.items()}
    else:
        params, grads = [p], [g]
        states = {k: [v] for k, v in state.items()}
    for i, (pi, gi) in enumerate(zip(params, grads)):
        at = f"[{i}]" if is_list else ""  # names in messages: p[3] in a list, p alone
        named = {f"p{at}": pi, f"g{at}": gi, **{f"{k}{at}": v[i] for k, v in states.items()}}
        if i:
            named["p[0]"] = params[0]  # one device and one dtype across the list
        check.arrays(op, **named)
        check.float_dtype(op, **named)
        check.same_shape(op, f"g{at}", gi, f"p{at}", pi)
        check.contiguous(op, f"p{at}", pi)
        for name, values in states.items():
            if values[i] is not None:
                check.same_shape(op, f"{name}{at}", values[i], f"p{at}", pi)
                check.contiguous(op, f"{name}{at}", values[i])
        grads[i] = _backend.get_array_module(gi).ascontiguousarray(gi)
    return params, grads, states


def _hyper(op, lr, weight_decay):
    return (check.real(op, "lr", lr, 0.0),
            check.real(op, "weight_decay", weight_decay, 0.0))


def sgd_update(p, g, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    op = "sgd_update"
    params, grads, states = _tensors(op, p, g, velocity=velocity)
    lr, weight_decay = _hyper(op, lr, weight_decay)
    momentum = check.real(op, "momentum", momentum, 0.0, 1.0)
    nesterov = check.flag(op, "nesterov", nesterov)
    if momentum and any(v is None for v in states["velocity"]):
        raise ValueError(f"{op}: momentum={momentum} needs a velocity array, got None")
    _backend.backend_for(params[0]).sgd_update(params, grads, states["velocity"], lr, momentum, nesterov,
                                               weight_decay)


def rmsprop_update(p, g, mean_square, lr, rho=0.9, eps=1e-7, weight_decay=0.0):
    op = "rmsprop_update"
    params, grads, states = _tensors(op, p, g, mean_square=mean_square)
    if any(s is None for s in states["mean_square"]):
        raise TypeError(f"{op}: mean_square must be an array, got None")
    lr, weight_decay = _hyper(op, lr, weight_decay)
    rho = check.real(op, "rho", rho, 0.0, 1.0)
    eps = check.real(op, "eps", eps, 0.0, low_open=True)  # 0 would give 0/0 on a zero gradient
    _backend.backend_for(params[0]).rmsprop_update(params, grads, states["mean_square"], lr, rho, eps,
                                                   weight_decay)


def adam_update(p, g, m, v, lr, beta1=0.9, beta2=0.999, eps=1e-7, weight_decay=0.0, step=1):
    op = "adam_update"
    params, grads, states = _tensors(op, p, g, m=m, v=v)
    if any(a is None for a in states["m"] + states["v"]):
        raise TypeError(f"{op}: m and v must be arrays, got {type(m).__name__} and "
                        f"{type(v).__name__}")
    lr, weight_decay = _hyper(op, lr, weight_decay)
    beta1 = check.real(op, "beta1", beta1, 0.0, 1.0, high_open=True)
    beta2 = check.real(op, "beta2", beta2, 0.0, 1.0, high_open=True)
    eps = check.real(op, "eps", eps, 0.0, low_open=True)  # 0 would give 0/0 on a zero gradient
    step = check.integer(op, "step", step, minimum=1)
    _backend.backend_for(params[0]).adam_update(params, grads, states["m"], states["v"], lr, beta1, beta2,
                                                eps, weight_decay, step)
