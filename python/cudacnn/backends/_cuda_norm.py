"""Batch normalisation on our kernels (csrc/batchnorm.cu).

The cache has the reference's keys (x, mean, inv_std, gamma, training), so a
cache from either GPU backend feeds the other's backward.
"""
from __future__ import annotations

import cupy as cp

from . import _cuda_common as common


def _dims(x):
    N, C = x.shape[:2]
    return N, C, (x.size // (N * C))


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    reason = common.unsupported(x, gamma, beta, running_mean, running_var)
    if reason is None and not (running_mean.flags.c_contiguous and running_var.flags.c_contiguous):
        reason = "non-contiguous running statistics"
    if reason:
        return common.fallback("batch_norm", reason).batch_norm(
            x, gamma, beta, running_mean, running_var, training, momentum, eps)
    C_ = common.ext()
    x, gamma, beta = common.f32(x), common.f32(gamma), common.f32(beta)
    N, C, HW = _dims(x)
    if training:
        mean, inv_std = common.empty((C,)), common.empty((C,))
        size = C_.batch_norm_workspace(N, C, HW)
        ws = common.empty((size,))
        C_.batch_norm_statistics(common.ptr(mean), common.ptr(inv_std), common.ptr(running_mean),
                                 common.ptr(running_var), common.ptr(x), common.ptr(ws), size, N, C, HW,
                                 float(momentum), float(eps), common.stream())
    else:
        mean = running_mean.copy()  # the backward must see these statistics, whatever happens to the layer's
        inv_std = 1 / cp.sqrt(running_var + cp.float32(eps))  # C values: a CuPy elementwise op is enough
    y = common.empty(x.shape)
    C_.batch_norm_normalize(common.ptr(y), common.ptr(x), common.ptr(mean), common.ptr(inv_std), common.ptr(gamma),
                            common.ptr(beta), N, C, HW, common.stream())
    cache = {"x": x, "mean": mean, "inv_std": inv_std, "gamma": gamma, "training": bool(training)}
    return y, cache


def batch_norm_backward(dy, cache):
    x, mean, inv_std, gamma = cache["x"], cache["mean"], cache["inv_std"], cache["gamma"]
    reason = common.unsupported(dy, x, mean, inv_std, gamma)
    if reason:
        return common.fallback("batch_norm_backward", reason).batch_norm_backward(dy, cache)
    C_ = common.ext()
    dy, x, mean, inv_std, gamma = (common.f32(a) for a in (dy, x, mean, inv_std, gamma))
    N, C, HW = _dims(dy)
    dx, dgamma, dbeta = common.empty(dy.shape), common.empty((C,)), common.empty((C,))
    size = C_.batch_norm_workspace(N, C, HW)
    ws = common.empty((size,))
    C_.batch_norm_backward(common.ptr(dx), common.ptr(dgamma), common.ptr(dbeta), common.ptr(dy), common.ptr(x),
                           common.ptr(mean), common.ptr(inv_std), common.ptr(gamma), common.ptr(ws), size, N, C, HW,
                           bool(cache["training"]), common.stream())
    return dx, dgamma, dbeta
