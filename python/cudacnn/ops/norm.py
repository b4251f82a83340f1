"""Batch normalisation with PyTorch semantics, x (N, C) or (N, C, H, W).

Training: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean
and biased batch variance per channel; running_mean/running_var (C,) are
updated in place, new = (1 - momentum) * old + momentum * batch, using the
unbiased batch variance (the batch variance itself, 0, when a channel has a single
value: Keras trains on a last batch of one sample, PyTorch refuses it). Inference
normalises with the running statistics.
(Keras' BatchNormalization(momentum=m) corresponds to momentum = 1 - m here.)
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """(y, cache); the cache feeds batch_norm_backward.

    The cache is a dict {"x", "mean", "inv_std", "gamma", "training"} on every
    backend (x_hat = (x - mean) * inv_std is recomputed by the backward), so a
    cache from one backend feeds another's backward.
    """
    op = "batch_norm"
    v.arrays(op, x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    v.float_dtype(op, x=x, gamma=gamma, beta=beta, running_mean=running_mean,
                  running_var=running_var)
    v.ndim(op, "x", x, (2, 4), "(N, C) or (N, C, H, W)")
    training = v.flag(op, "training", training)
    momentum = v.real(op, "momentum", momentum, 0.0, 1.0)
    eps = v.real(op, "eps", eps, 0.0, low_open=True)
    C = x.shape[1]
    for name, a in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if tuple(a.shape) != (C,):
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)} but x {tuple(x.shape)} "
                             f"has {C} channels, so it must be ({C},)")
    v.contiguous(op, "running_mean", running_mean)
    v.contiguous(op, "running_var", running_var)
    xp = _backend.get_array_module(x)
    x, gamma, beta = (xp.ascontiguousarray(a) for a in (x, gamma, beta))
    return _backend.backend_for(x).batch_norm(x, gamma, beta, running_mean, running_var,
                                              training, momentum, eps)


def batch_norm_backward(dy, cache):
    """(dx, dgamma, dbeta) given dy and the cache from batch_norm."""
    op = "batch_norm_backward"
    if not isinstance(cache, dict) or not {"x", "mean", "inv_std", "gamma", "training"} <= cache.keys():
        raise TypeError(f"{op}: cache must be the dict returned by batch_norm, got "
                        f"{type(cache).__name__}")
    x = cache["x"]
    v.arrays(op, dy=dy, x=x)
    v.float_dtype(op, dy=dy, x=x)
    v.same_shape(op, "dy", dy, "the forward input", x)
    dy = _backend.get_array_module(dy).ascontiguousarray(dy)
    return _backend.backend_for(dy).batch_norm_backward(dy, cache)
