"""Convolution by im2col + one matrix multiply per group (xp-generic).

Forward: the padded input is unfolded into columns
``cols[c, r, s, n, i, j] = x_pad[n, c, i*sh + r*dh, j*sw + s*dw]`` (one
strided copy per kernel offset), so that a single large GEMM per group,
``w[g] (Kg, Cg*R*S) @ cols[g] (Cg*R*S, N*OH*OW)``, covers the whole batch
(BLAS is efficient on one big product, not on N small ones). Backward reuses
the same columns: ``dw = dy @ cols^T`` and ``dcols = w^T @ dy``, folded back
into the input (col2im: one strided accumulate per kernel offset).
"""
from __future__ import annotations

from ..backend import get_array_module
from ._numpy_window import offset_view, out_size, pad


def _columns(x, kernel, stride, padding, dilation, groups, out_hw):
    """cols (groups, Cg*R*S, N*OH*OW) for x (N, C, H, W)."""
    xp = get_array_module(x)
    N, C = x.shape[:2]
    R, S = kernel
    x_pad = pad(x, padding)
    cols = xp.empty((C, R, S, N) + tuple(out_hw), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            cols[:, r, s] = offset_view(x_pad, r, s, stride, dilation, out_hw).transpose(1, 0, 2, 3)
    return cols.reshape(groups, (C // groups) * R * S, -1)


def conv2d(x, w, b, stride, padding, dilation, groups, algo="auto"):
    xp = get_array_module(x)
    N = x.shape[0]
    K, Cg, R, S = w.shape
    out_hw = out_size(x.shape[2:], (R, S), stride, padding, dilation)
    cols = _columns(x, (R, S), stride, padding, dilation, groups, out_hw)
    y_t = xp.matmul(w.reshape(groups, K // groups, Cg * R * S), cols)  # (G, Kg, N*OH*OW)
    y_t = y_t.reshape((K, N) + tuple(out_hw)).transpose(1, 0, 2, 3)
    y = xp.empty((N, K) + tuple(out_hw), dtype=x.dtype)
    if b is None:
        y[...] = y_t
    else:
        xp.add(y_t, b.reshape(1, K, 1, 1), out=y)
    return y


def conv2d_backward(dy, x, w, stride, padding, dilation, groups, algo="auto", need_dx=True):
    xp = get_array_module(x)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    out_hw = dy.shape[2:]
    db = dy.sum(axis=(0, 2, 3))
    dy_t = xp.ascontiguousarray(dy.transpose(1, 0, 2, 3)).reshape(groups, K // groups, -1)

    cols = _columns(x, (R, S), stride, padding, dilation, groups, out_hw)
    dw = xp.matmul(dy_t, cols.swapaxes(-1, -2)).reshape(w.shape)
    if not need_dx:
        return None, dw, db
    del cols

    w_mat = w.reshape(groups, K // groups, Cg * R * S)
    dcols = xp.matmul(w_mat.swapaxes(-1, -2), dy_t).reshape((C, R, S, N) + tuple(out_hw))
    pt, pb, pl, pr = padding
    # Accumulate channel-major, matching dcols, then transpose once to NCHW.
    dx_pad = xp.zeros((C, N, H + pt + pb, W + pl + pr), dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            view = offset_view(dx_pad, r, s, stride, dilation, out_hw)
            view += dcols[:, r, s]
    dx = dx_pad[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(dx), dw, db
