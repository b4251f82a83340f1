"""Max, average and global-average pooling (xp-generic), one pass per kernel offset."""
from __future__ import annotations

from ..backend import get_array_module
from ._numpy_window import crop, offset_view, out_size, pad

_UNIT = (1, 1)


def _plane_index(offset_r, offset_s, stride, padding, out_hw, width, xp):
    """(OH, OW) int32: flat h*W + w, in the unpadded plane, of offset (r, s) at each output."""
    OH, OW = out_hw
    rows = xp.arange(OH, dtype=xp.int32) * stride[0] + (offset_r - padding[0])
    cols = xp.arange(OW, dtype=xp.int32) * stride[1] + (offset_s - padding[2])
    return rows[:, None] * width + cols[None, :]


def max_pool2d(x, kernel, stride, padding):
    """(y, indices); PyTorch semantics: the first maximum wins, padding is never chosen.

    A window holding NaN gives y = NaN; its index is then some element of the window.
    """
    xp = get_array_module(x)
    H, W = x.shape[2:]
    R, S = kernel
    out_hw = out_size((H, W), kernel, stride, padding)
    x_pad = pad(x, padding, value=-xp.inf)
    y = offset_view(x_pad, 0, 0, stride, _UNIT, out_hw).copy()
    # Which offset won, as a small int (R*S passes of compare / max / where).
    offset_type = xp.int8 if R * S <= 127 else xp.int32
    won = xp.zeros(y.shape, dtype=offset_type)
    for rs in range(1, R * S):
        v = offset_view(x_pad, rs // S, rs % S, stride, _UNIT, out_hw)
        won = xp.where(v > y, offset_type(rs), won)
        xp.maximum(y, v, out=y)
    return y, _won_to_plane_index(won, H, W, kernel, stride, padding, out_hw, xp)


def _won_to_plane_index(won, H, W, kernel, stride, padding, out_hw, xp):
    """int32 flat h*W + w of each window's winning offset.

    Positions are clamped into the input: only an all -inf window can pick a
    pad, and clamping then lands on its first real element, as in PyTorch.
    """
    S = kernel[1]
    rows = xp.arange(out_hw[0], dtype=xp.int32)[:, None] * stride[0] - padding[0]
    cols = xp.arange(out_hw[1], dtype=xp.int32)[None, :] * stride[1] - padding[2]
    won_r = (won // S).astype(xp.int32)
    won_s = (won % S).astype(xp.int32)
    if not any(padding):
        return (rows * W + cols) + (won_r * W + won_s)
    return xp.clip(rows + won_r, 0, H - 1) * W + xp.clip(cols + won_s, 0, W - 1)


def max_pool2d_backward(dy, x, indices, kernel, stride, padding):
    """Route each dy to its argmax; overlapping windows accumulate (one pass per offset)."""
    xp = get_array_module(x)
    H, W = x.shape[2:]
    if indices is None:
        _, indices = max_pool2d(x, kernel, stride, padding)
    out_hw = dy.shape[2:]
    pt, pb, pl, pr = padding
    dx_pad = xp.zeros(x.shape[:2] + (H + pt + pb, W + pl + pr), dtype=x.dtype)
    routed = xp.empty_like(dy)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            chosen = indices == _plane_index(r, s, stride, padding, out_hw, W, xp)
            xp.multiply(dy, chosen, out=routed)
            view = offset_view(dx_pad, r, s, stride, _UNIT, out_hw)
            view += routed
    return crop(dx_pad, padding, (H, W))


def _divisor(x_shape, kernel, stride, padding, count_include_pad, out_hw, dtype, xp):
    """Per-output window size: R*S, or the count of unpadded elements, shape (OH, OW)."""
    if count_include_pad:
        return xp.asarray(kernel[0] * kernel[1], dtype=dtype)
    ones = pad(xp.ones(tuple(x_shape[2:]), dtype=dtype), padding)
    count = xp.zeros(out_hw, dtype=dtype)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            count += offset_view(ones, r, s, stride, _UNIT, out_hw)
    return count


def avg_pool2d(x, kernel, stride, padding, count_include_pad):
    xp = get_array_module(x)
    out_hw = out_size(x.shape[2:], kernel, stride, padding)
    x_pad = pad(x, padding)
    y = xp.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            y += offset_view(x_pad, r, s, stride, _UNIT, out_hw)
    y /= _divisor(x.shape, kernel, stride, padding, count_include_pad, out_hw, x.dtype, xp)
    return y


def avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad):
    xp = get_array_module(dy)
    H, W = x_shape[2:]
    out_hw = dy.shape[2:]
    pt, pb, pl, pr = padding
    share = dy / _divisor(x_shape, kernel, stride, padding, count_include_pad, out_hw, dy.dtype, xp)
    dx_pad = xp.zeros(tuple(x_shape[:2]) + (H + pt + pb, W + pl + pr), dtype=dy.dtype)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            view = offset_view(dx_pad, r, s, stride, _UNIT, out_hw)
            view += share
    return crop(dx_pad, padding, (H, W))


def global_avg_pool2d(x):
    return x.mean(axis=(2, 3))


def global_avg_pool2d_backward(dy, x_shape):
    xp = get_array_module(dy)
    H, W = x_shape[2:]
    dx = xp.empty(tuple(x_shape), dtype=dy.dtype)
    dx[...] = (dy / (H * W))[:, :, None, None]
    return dx
