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
    """(y, indices); PyTorch semantics: first maximum wins, NaN propagates, padding never chosen."""
    xp = get_array_module(x)
    H, W = x.shape[2:]
    out_hw = out_size((H, W), kernel, stride, padding)
    x_pad = pad(x, padding, value=-xp.inf)
    y = xp.full(x.shape[:2] + out_hw, -xp.inf, dtype=x.dtype)
    # Start at each window's first real (unpadded) element, as PyTorch does,
    # so a window of -inf still reports an index inside the input.
    first_r = xp.maximum(xp.arange(out_hw[0]) * stride[0] - padding[0], 0)
    first_s = xp.maximum(xp.arange(out_hw[1]) * stride[1] - padding[2], 0)
    first = (first_r[:, None] * W + first_s[None, :]).astype(xp.int32)
    indices = xp.broadcast_to(first, y.shape).copy()
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            v = offset_view(x_pad, r, s, stride, _UNIT, out_hw)
            better = (v > y) | xp.isnan(v)
            xp.copyto(y, v, where=better)
            xp.copyto(indices, _plane_index(r, s, stride, padding, out_hw, W, xp), where=better)
    return y, indices


def max_pool2d_backward(dy, x, indices, kernel, stride, padding):
    """Route each dy to its argmax; overlapping windows accumulate (one pass per offset)."""
    xp = get_array_module(x)
    H, W = x.shape[2:]
    if indices is None:
        _, indices = max_pool2d(x, kernel, stride, padding)
    out_hw = dy.shape[2:]
    pt, pb, pl, pr = padding
    dx_pad = xp.zeros(x.shape[:2] + (H + pt + pb, W + pl + pr), dtype=x.dtype)
    zero = xp.zeros((), dtype=dy.dtype)
    for r in range(kernel[0]):
        for s in range(kernel[1]):
            chosen = indices == _plane_index(r, s, stride, padding, out_hw, W, xp)
            view = offset_view(dx_pad, r, s, stride, _UNIT, out_hw)
            view += xp.where(chosen, dy, zero)
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
