"""Max, average and global-average pooling (xp-generic), one pass per kernel offset."""
from __future__ import annotations

from ..backend import get_array_module
from ._numpy_window import crop, offset_view, out_size, pad

_UNIT = (1, 1)


def _window_origin(stride, padding, out_hw, width, xp):
    """(OH, OW) int32: flat h*W + w of each window's offset (0, 0), pads counted (may be outside)."""
    rows = xp.arange(out_hw[0], dtype=xp.int32) * stride[0] - padding[0]
    cols = xp.arange(out_hw[1], dtype=xp.int32) * stride[1] - padding[2]
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
    # won = the offset r*S + s holding the running maximum. Offsets come in
    # increasing order, so "take this one if strictly greater" is a max().
    offset_type = xp.int8 if R * S <= 127 else xp.int32
    won = xp.zeros(y.shape, dtype=offset_type)
    greater = xp.empty(y.shape, dtype=bool)
    for rs in range(1, R * S):
        v = offset_view(x_pad, rs // S, rs % S, stride, _UNIT, out_hw)
        xp.greater(v, y, out=greater)
        xp.maximum(won, greater * offset_type(rs), out=won)
        xp.maximum(y, v, out=y)
    return y, _won_to_plane_index(won, (H, W), kernel, stride, padding, out_hw, xp)


def _won_to_plane_index(won, spatial, kernel, stride, padding, out_hw, xp):
    """int32 flat h*W + w of each window's winning offset.

    Positions are clamped into the input: only an all -inf window can pick a
    pad, and clamping then lands on its first real element, as in PyTorch.
    """
    (H, W), (R, S) = spatial, kernel
    if not any(padding):
        offsets = xp.asarray([r * W + s for r in range(R) for s in range(S)], dtype=xp.int32)
        indices = xp.take(offsets, won)
        indices += _window_origin(stride, padding, out_hw, W, xp)
        return indices
    won_r = xp.take(xp.asarray([r for r in range(R) for _ in range(S)], dtype=xp.int32), won)
    won_s = xp.take(xp.asarray([s for _ in range(R) for s in range(S)], dtype=xp.int32), won)
    rows = xp.arange(out_hw[0], dtype=xp.int32)[:, None] * stride[0] - padding[0]
    cols = xp.arange(out_hw[1], dtype=xp.int32)[None, :] * stride[1] - padding[2]
    return xp.clip(rows + won_r, 0, H - 1) * W + xp.clip(cols + won_s, 0, W - 1)


def max_pool2d_backward(dy, x, indices, kernel, stride, padding):
    """Route each dy to its argmax; overlapping windows accumulate (one pass per offset).

    An index matches offset (r, s) of its window when it equals origin + r*W + s.
    Where a padded offset aliases a real position of the next row, the stray
    share lands in the padding and is cropped away.
    """
    xp = get_array_module(x)
    H, W = x.shape[2:]
    if indices is None:
        _, indices = max_pool2d(x, kernel, stride, padding)
    out_hw = dy.shape[2:]
    pt, pb, pl, pr = padding
    local = indices - _window_origin(stride, padding, out_hw, W, xp)
    dx_pad = xp.zeros(x.shape[:2] + (H + pt + pb, W + pl + pr), dtype=x.dtype)
    chosen = xp.empty(dy.shape, dtype=bool)
    # Disjoint windows write each input element at most once: no accumulation needed.
    disjoint = stride[0] >= kernel[0] and stride[1] >= kernel[1]
    routed = None if disjoint else xp.empty_like(dy)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            xp.equal(local, r * W + s, out=chosen)
            view = offset_view(dx_pad, r, s, stride, _UNIT, out_hw)
            if disjoint:
                xp.multiply(dy, chosen, out=view)
            else:
                xp.multiply(dy, chosen, out=routed)
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
