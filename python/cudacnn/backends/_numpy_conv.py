"""Convolution by im2col + matrix multiply (xp-generic).

Forward: the padded input is unfolded into columns
``cols[n, c, r, s, i, j] = x_pad[n, c, i*sh + r*dh, j*sw + s*dw]`` (one
strided copy per kernel offset), then one batched matmul per call computes
``y[n, g] = w[g] (Kg, Cg*R*S) @ cols[n, g] (Cg*R*S, OH*OW)``, which lands
directly in NCHW order. Backward reuses the same columns: ``dw`` is
``dy @ cols^T`` summed over the batch, ``dx`` is ``w^T @ dy`` folded back
(col2im: one strided accumulate per kernel offset).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._numpy_window import crop, offset_view, out_size, pad


def _is_pointwise(w, stride, padding, dilation):
    return w.shape[2:] == (1, 1) and stride == (1, 1) and not any(padding)


def _columns(x, w, stride, padding, dilation, groups, out_hw):
    """cols (N, groups, Cg*R*S, OH*OW) for x (N, C, H, W)."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    _, Cg, R, S = w.shape
    if _is_pointwise(w, stride, padding, dilation):
        return x.reshape(N, groups, Cg, -1)
    x_pad = pad(x, padding)
    cols = xp.empty((N, C, R, S) + tuple(out_hw), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, :, r, s] = offset_view(x_pad, r, s, stride, dilation, out_hw)
    return cols.reshape(N, groups, Cg * R * S, -1)


def conv2d(x, w, b, stride, padding, dilation, groups, algo="auto"):
    xp = get_array_module(x)
    N = x.shape[0]
    K, Cg, R, S = w.shape
    out_hw = out_size(x.shape[2:], (R, S), stride, padding, dilation)
    cols = _columns(x, w, stride, padding, dilation, groups, out_hw)
    w_mat = w.reshape(groups, K // groups, Cg * R * S)
    y = xp.matmul(w_mat, cols).reshape((N, K) + tuple(out_hw))
    if b is not None:
        y += b.reshape(1, K, 1, 1)
    return y


def conv2d_backward(dy, x, w, stride, padding, dilation, groups, algo="auto", need_dx=True):
    xp = get_array_module(x)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    out_hw = dy.shape[2:]
    dy_mat = dy.reshape(N, groups, K // groups, -1)
    db = dy.sum(axis=(0, 2, 3))

    cols = _columns(x, w, stride, padding, dilation, groups, out_hw)
    dw = xp.matmul(dy_mat, cols.swapaxes(-1, -2)).sum(axis=0).reshape(w.shape)
    if not need_dx:
        return None, dw, db

    w_mat = w.reshape(groups, K // groups, Cg * R * S)
    dcols = xp.matmul(w_mat.swapaxes(-1, -2), dy_mat)  # (N, G, Cg*R*S, OH*OW)
    if _is_pointwise(w, stride, padding, dilation):
        return dcols.reshape(x.shape), dw, db
    dcols = dcols.reshape((N, C, R, S) + tuple(out_hw))
    pt, pb, pl, pr = padding
    dx_pad = xp.zeros((N, C, H + pt + pb, W + pl + pr), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            offset_view(dx_pad, r, s, stride, dilation, out_hw)[...] += dcols[:, :, r, s]
    return crop(dx_pad, padding, (H, W)), dw, db
