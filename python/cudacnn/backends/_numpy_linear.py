"""Fully connected layer: y = x @ w.T + b, with w shaped (out, in) as in PyTorch (xp-generic)."""
from __future__ import annotations

from ._numpy_activation import apply_fused_activation


def linear(x, w, b, activation=None):
    y = x @ w.T
    if b is not None:
        y += b
    return apply_fused_activation(y, activation)


def linear_backward(dy, x, w, need_dx=True):
    # Fold leading axes so any (..., in) input becomes one matrix product.
    dy2 = dy.reshape(-1, dy.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    dw = dy2.T @ x2
    db = dy2.sum(axis=0)
    dx = (dy @ w) if need_dx else None
    return dx, dw, db
