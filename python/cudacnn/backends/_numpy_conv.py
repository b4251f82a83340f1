"""Convolution by im2col + one matrix multiply per group (xp-generic).

Forward: the padded input is unfolded into columns
``cols[c, r, s, n, i, j] = x_pad[n, c, i*sh + r*dh, j*sw + s*dw]`` (one
strided copy per kernel offset), so that a single large GEMM per group,
``w[g] (Kg, Cg*R*S) @ cols[g] (Cg*R*S, n*OH*OW)``, covers many images at once
(BLAS is efficient on one big product, not on N small ones). Backward reuses
the same columns: ``dw = dy @ cols^T`` and ``dcols = w^T @ dy``, folded back
into the input (col2im: one strided accumulate per kernel offset).
The batch is processed in chunks so the columns stay under COLUMNS_BUDGET bytes.
"""
from __future__ import annotations

from ..backend import get_array_module
from ._numpy_activation import apply_fused_activation
from ._numpy_window import offset_view, out_size, pad

COLUMNS_BUDGET = 256 * 2**20


def _batch_chunks(x, kernel, out_hw):
    """Slices of the batch whose im2col columns fit in COLUMNS_BUDGET (at least one image each)."""
    N, C = x.shape[:2]
    per_image = C * kernel[0] * kernel[1] * out_hw[0] * out_hw[1] * x.itemsize
    step = max(1, min(N, COLUMNS_BUDGET // per_image))
    return [slice(start, min(start + step, N)) for start in range(0, N, step)]


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


def conv2d(x, w, b, stride, padding, dilation, groups, algo="auto", activation=None):
    xp = get_array_module(x)
    N = x.shape[0]
    K, Cg, R, S = w.shape
    out_hw = tuple(out_size(x.shape[2:], (R, S), stride, padding, dilation))
    w_mat = w.reshape(groups, K // groups, Cg * R * S)
    y = xp.empty((N, K) + out_hw, dtype=x.dtype)
    for chunk in _batch_chunks(x, (R, S), out_hw):
        cols = _columns(x[chunk], (R, S), stride, padding, dilation, groups, out_hw)
        y_t = xp.matmul(w_mat, cols)  # (G, Kg, n*OH*OW): channel-major
        y_t = y_t.reshape((K, -1) + out_hw).transpose(1, 0, 2, 3)
        if b is None:
            y[chunk] = y_t
        else:
            xp.add(y_t, b.reshape(1, K, 1, 1), out=y[chunk])
    return apply_fused_activation(y, activation)


def conv2d_backward(dy, x, w, stride, padding, dilation, groups, algo="auto", need_dx=True):
    xp = get_array_module(x)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    out_hw = tuple(dy.shape[2:])
    w_mat = w.reshape(groups, K // groups, Cg * R * S)
    db = dy.sum(axis=(0, 2, 3))
    dw = xp.zeros((groups, K // groups, Cg * R * S), dtype=x.dtype)
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    for chunk in _batch_chunks(x, (R, S), out_hw):
        dy_t = xp.ascontiguousarray(dy[chunk].transpose(1, 0, 2, 3)).reshape(groups, K // groups, -1)
        cols = _columns(x[chunk], (R, S), stride, padding, dilation, groups, out_hw)
        # dw^T = cols @ dy^T: the long N*OH*OW axis is the inner one either way, but
        # this order gives BLAS more output rows to split between threads.
        dw += xp.matmul(cols, dy_t.swapaxes(-1, -2)).swapaxes(-1, -2)
        if need_dx:
            del cols
            dx[chunk] = _fold(xp.matmul(w_mat.swapaxes(-1, -2), dy_t), x[chunk].shape, (R, S),
                              stride, padding, dilation, out_hw)
    return dx, dw.reshape(w.shape), db


def _fold(dcols, x_shape, kernel, stride, padding, dilation, out_hw):
    """col2im: sum the columns (G, Cg*R*S, n*OH*OW) back into an (n, C, H, W) gradient."""
    xp = get_array_module(dcols)
    n, C, H, W = x_shape
    R, S = kernel
    pt, pb, pl, pr = padding
    dcols = dcols.reshape((C, R, S, n) + out_hw)
    # Accumulate channel-major, like the columns, and transpose once at the end.
    dx_pad = xp.zeros((C, n, H + pt + pb, W + pl + pr), dtype=dcols.dtype)
    for r in range(R):
        for s in range(S):
            view = offset_view(dx_pad, r, s, stride, dilation, out_hw)
            view += dcols[:, r, s]
    return dx_pad[:, :, pt:pt + H, pl:pl + W].transpose(1, 0, 2, 3)
