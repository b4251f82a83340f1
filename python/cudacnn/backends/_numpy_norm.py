"""Batch normalisation, PyTorch semantics (xp-generic).

Training normalises with the biased batch variance and moves the running
statistics toward the batch ones (running variance uses the unbiased
estimate); inference normalises with the running statistics.
"""
from __future__ import annotations

from ..backend import get_array_module


def _axes_and_shape(x):
    """Reduction axes and the broadcast shape of a per-channel vector."""
    if x.ndim == 2:
        return (0,), (1, x.shape[1])
    return (0, 2, 3), (1, x.shape[1], 1, 1)


def _unbiased(count):
    """Bessel's factor for the running variance; a single value has variance 0 either way."""
    return count / (count - 1) if count > 1 else 1.0


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    xp = get_array_module(x)
    axes, vec = _axes_and_shape(x)
    if training:
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        centered = x - mean.reshape(vec)
        var = (centered * centered).mean(axis=axes)
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * _unbiased(count)) * var
    else:
        mean = running_mean.copy()  # the backward must see these statistics, whatever happens to the layer's
        centered = x - mean.reshape(vec)
        var = running_var
    inv_std = 1 / xp.sqrt(var + eps)
    y = centered * inv_std.reshape(vec) * gamma.reshape(vec) + beta.reshape(vec)
    cache = {"x": x, "mean": mean, "inv_std": inv_std, "gamma": gamma, "training": bool(training)}
    return y, cache


def batch_norm_backward(dy, cache):
    inv_std, gamma = cache["inv_std"], cache["gamma"]
    axes, vec = _axes_and_shape(dy)
    x_hat = (cache["x"] - cache["mean"].reshape(vec)) * inv_std.reshape(vec)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    scale = (gamma * inv_std).reshape(vec)
    if not cache["training"]:
        return dy * scale, dgamma, dbeta
    # The batch mean and variance depend on x too: project out their directions.
    count = dy.size // dy.shape[1]
    dx = dy - (dbeta / count).reshape(vec) - x_hat * (dgamma / count).reshape(vec)
    dx *= scale
    return dx, dgamma, dbeta
