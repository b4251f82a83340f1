"""Fully connected layer: y = x @ w.T + b, w shaped (out, in) as in PyTorch.

x may have any leading axes (..., in); the product runs over the last one.
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def _check(op, x, w, b):
    v.arrays(op, x=x, w=w, b=b)
    v.float_dtype(op, x=x, w=w, b=b)
    v.ndim(op, "w", w, 2, "(out, in)")
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be at least 2-D (N, in), got shape {tuple(x.shape)}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"{op}: x has {x.shape[-1]} features (shape {tuple(x.shape)}) but "
                         f"weight {tuple(w.shape)} expects {w.shape[1]}")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"{op}: bias has shape {tuple(b.shape)} but weight {tuple(w.shape)} "
                         f"needs ({w.shape[0]},)")


def _contiguous(*arrays):
    xp = _backend.get_array_module(*arrays)
    return [None if a is None else xp.ascontiguousarray(a) for a in arrays]


def linear(x, w, b=None, activation=None):
    """y (..., out); activation="relu" returns relu(y), applied in the GEMM's epilogue."""
    _check("linear", x, w, b)
    activation = v.fused_activation("linear", activation)
    x, w, b = _contiguous(x, w, b)
    return _backend.backend_for(x, w, b).linear(x, w, b, activation)


def linear_backward(dy, x, w, need_dx=True):
    """(dx, dw, db); need_dx=False returns dx as None."""
    op = "linear_backward"
    _check(op, x, w, None)
    v.arrays(op, dy=dy, x=x)
    v.float_dtype(op, dy=dy, x=x)
    expected = tuple(x.shape[:-1]) + (w.shape[0],)
    if tuple(dy.shape) != expected:
        raise ValueError(f"{op}: dy has shape {tuple(dy.shape)} but x {tuple(x.shape)} and "
                         f"weight {tuple(w.shape)} give output shape {expected}")
    dy, x, w = _contiguous(dy, x, w)
    return _backend.backend_for(dy, x, w).linear_backward(dy, x, w, need_dx=bool(need_dx))
