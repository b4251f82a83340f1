"""linear (y = x @ w.T + b) on our SGEMM, split-K where the output is small (csrc/linear.cu); x may be (..., in)."""
from __future__ import annotations

from . import _cuda_common as common


def linear(x, w, b, activation=None):
    reason = common.unsupported(x, w, b)
    if reason:
        return common.fallback("linear", reason).linear(x, w, b, activation)
    x, w, b = common.f32(x), common.f32(w), common.f32(b)
    out_features, in_features = w.shape
    batch = x.size // in_features
    if batch * out_features > common.MAX_ELEMENTS:
        return common.fallback("linear", "an output beyond 2**31-1 elements").linear(x, w, b, activation)
    C = common.ext()
    y = common.empty(x.shape[:-1] + (out_features,))
    ws, size = _workspace(C, batch, in_features, out_features)
    C.linear_forward(common.ptr(y), common.ptr(x), common.ptr(w), common.ptr(b), activation == "relu",
                     common.ptr(ws), size, batch, in_features, out_features, common.stream())
    return y


def linear_backward(dy, x, w, need_dx=True):
    reason = common.unsupported(dy, x, w)
    if reason:
        return common.fallback("linear_backward", reason).linear_backward(dy, x, w, need_dx=need_dx)
    C = common.ext()
    dy, x, w = common.f32(dy), common.f32(x), common.f32(w)
    out_features, in_features = w.shape
    batch = x.size // in_features
    dx = common.empty(x.shape) if need_dx else None
    dw, db = common.empty(w.shape), common.empty((out_features,))
    ws, size = _workspace(C, batch, in_features, out_features)
    C.linear_backward(common.ptr(dx), common.ptr(dw), common.ptr(dy), common.ptr(x), common.ptr(w), common.ptr(ws),
                      size, batch, in_features, out_features, common.stream())
    C.channel_sum(common.ptr(db), common.ptr(dy), batch, out_features, 1, common.stream())
    return dx, dw, db


def _workspace(C, batch, in_features, out_features):
    """(array or None, floats): the split-K partial sums the kernels ask for (none for most shapes)."""
    size = C.linear_workspace(batch, in_features, out_features)
    return (common.empty((size,)) if size else None), size
