"""Batch normalisation on our kernels (csrc/batchnorm.cu).

The cache has the reference's keys (x, mean, inv_std, gamma, training), so a
cache from either GPU backend feeds the other's backward.
"""
from __future__ import annotations

import cupy as cp

from . import _cuda_common as common

# Bytes of input by which the training passes' second read trails the
# reduction, so that it finds its slice in L2 (csrc/batchnorm.cu); None: a
# quarter of the L2 (the outputs and the slices read meanwhile need the rest).
# 0 reads the input from DRAM twice. Tests and benchmarks set it.
LAG_BYTES = None


def _lag_bytes() -> int:
    return common.l2_bytes() // 4 if LAG_BYTES is None else LAG_BYTES


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
    y = common.empty(x.shape)
    if training:
        mean, inv_std = common.empty((C,)), common.empty((C,))
        size = C_.batch_norm_workspace(N, C, HW)
        ws = common.empty((size,))
        C_.batch_norm_forward_train(common.ptr(y), common.ptr(mean), common.ptr(inv_std), common.ptr(running_mean),
                                    common.ptr(running_var), common.ptr(x), common.ptr(gamma), common.ptr(beta),
                                    common.ptr(ws), size, N, C, HW, float(momentum), float(eps), _lag_bytes(),
                                    common.stream())
    else:
        mean = running_mean.copy()  # the backward must see these statistics, whatever happens to the layer's
        inv_std = 1 / cp.sqrt(running_var + cp.float32(eps))  # C values: a CuPy elementwise op is enough
        C_.batch_norm_normalize(common.ptr(y), common.ptr(x), common.ptr(mean), common.ptr(inv_std),
                                common.ptr(gamma), common.ptr(beta), N, C, HW, common.stream())
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
                           bool(cache["training"]), _lag_bytes(), common.stream())
    return dx, dgamma, dbeta
