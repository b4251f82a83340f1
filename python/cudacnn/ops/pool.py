"""Max, average and global-average pooling over NCHW inputs.

kernel_size/stride: int or (h, w); stride None means stride = kernel_size.
padding: int, (ph, pw), "valid" or "same" (Keras/TF: OH = ceil(H/stride));
each pad may be at most half the kernel, so no window is all padding.
"""
from __future__ import annotations

import numpy as np

from .. import backend as _backend
from . import _validate as v


def _pool_args(op, x, kernel_size, stride, padding):
    """Validate; return (kernel, stride, pads, out_hw)."""
    v.arrays(op, x=x)
    v.float_dtype(op, x=x)
    v.ndim(op, "x", x, 4, "(N, C, H, W)")
    return _pool_geometry(op, tuple(x.shape[2:]), kernel_size, stride, padding)


@v.memoized
def _pool_geometry(op, spatial, kernel_size, stride, padding):
    """The hyper-parameter half of _pool_args, for input planes of size ``spatial``."""
    kernel = v.pair(op, "kernel_size", kernel_size, minimum=1)
    stride = kernel if stride is None else v.pair(op, "stride", stride, minimum=1)
    pads = v.padding(op, padding, spatial, kernel, stride)
    v.pool_padding(op, pads, kernel)
    out_hw = v.window_output(op, spatial, kernel, stride, pads)
    return kernel, stride, pads, out_hw


def _check_dy(op, dy, x, out_hw):
    v.arrays(op, dy=dy, x=x)
    v.float_dtype(op, dy=dy, x=x)
    expected = tuple(x.shape[:2]) + tuple(out_hw)
    if tuple(dy.shape) != expected:
        raise ValueError(f"{op}: dy has shape {tuple(dy.shape)} but pooling x {tuple(x.shape)} "
                         f"gives output shape {expected}")


def _contiguous(a):
    return _backend.get_array_module(a).ascontiguousarray(a)


def max_pool2d(x, kernel_size, stride=None, padding=0, return_indices=False):
    """y (N, C, OH, OW): the maximum of each window (padding never wins).

    With return_indices=True returns (y, indices): int32 flat positions
    h*W + w of each maximum inside its input plane, as in PyTorch.
    """
    kernel, stride, pads, _ = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    x = _contiguous(x)
    y, indices = _backend.backend_for(x).max_pool2d(x, kernel, stride, pads)
    return (y, indices) if return_indices else y


def _check_indices_in_windows(op, indices, x_shape, kernel, stride, pads):
    """Each index names a position of the input plane inside its own window (not its padding)."""
    xp = _backend.get_array_module(indices)
    H, W = x_shape[2:]
    P, Q = indices.shape[2:]
    top = xp.arange(P, dtype=xp.int64)[:, None] * stride[0] - pads[0]
    left = xp.arange(Q, dtype=xp.int64)[None, :] * stride[1] - pads[2]
    at = indices.astype(xp.int64)
    row, col = at // W, at % W
    inside = ((at >= 0) & (at < H * W) & (row >= top) & (row < top + kernel[0])
              & (col >= left) & (col < left + kernel[1]))
    if bool(inside.all()):
        return
    first = np.unravel_index(int(xp.argmin(inside.ravel().astype(xp.int8))), inside.shape)
    n, c, p, q = (int(i) for i in first)
    r0, c0 = p * stride[0] - pads[0], q * stride[1] - pads[2]
    raise ValueError(f"{op}: indices[{n}, {c}, {p}, {q}] = {int(indices[n, c, p, q])} is not a position in its "
                     f"window: rows {max(r0, 0)}..{min(r0 + kernel[0], H) - 1}, columns "
                     f"{max(c0, 0)}..{min(c0 + kernel[1], W) - 1} of the {H}x{W} input planes (positions h*W + w, "
                     f"as max_pool2d(..., return_indices=True) gives them)")


def max_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, indices=None, indices_checked=False):
    """dx: each dy routed to its window's maximum (from `indices` when given, else recomputed).

    Given indices are checked to lie in their windows, which costs a device-to-host
    copy on a GPU (the host then waits for the device). ``indices_checked=True``
    skips that for indices the caller knows are max_pool2d's own (layers pass
    them so); an index outside its window then routes its gradient nowhere.
    """
    op = "max_pool2d_backward"
    kernel, stride, pads, out_hw = _pool_args(op, x, kernel_size, stride, padding)
    _check_dy(op, dy, x, out_hw)
    if indices is not None:
        v.arrays(op, dy=dy, indices=indices)
        if indices.dtype.name != "int32" or tuple(indices.shape) != tuple(dy.shape):
            raise TypeError(f"{op}: indices must be int32 of shape {tuple(dy.shape)}, got "
                            f"{indices.dtype.name} {tuple(indices.shape)}")
        if not v.flag(op, "indices_checked", indices_checked):
            _check_indices_in_windows(op, indices, x.shape, kernel, stride, pads)
        indices = _contiguous(indices)
    dy, x = _contiguous(dy), _contiguous(x)
    return _backend.backend_for(dy, x).max_pool2d_backward(dy, x, indices, kernel, stride, pads)


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """y (N, C, OH, OW): each window's mean; count_include_pad=False divides by real elements only."""
    op = "avg_pool2d"
    kernel, stride, pads, _ = _pool_args(op, x, kernel_size, stride, padding)
    include = v.flag(op, "count_include_pad", count_include_pad)
    x = _contiguous(x)
    return _backend.backend_for(x).avg_pool2d(x, kernel, stride, pads, include)


def avg_pool2d_backward(dy, x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """dx: each dy spread evenly over its window (with the forward's divisor)."""
    op = "avg_pool2d_backward"
    kernel, stride, pads, out_hw = _pool_args(op, x, kernel_size, stride, padding)
    include = v.flag(op, "count_include_pad", count_include_pad)
    _check_dy(op, dy, x, out_hw)
    dy = _contiguous(dy)
    return _backend.backend_for(dy).avg_pool2d_backward(dy, tuple(x.shape), kernel, stride, pads,
                                                        include)


def global_avg_pool2d(x):
    """y (N, C): the mean of each (H, W) plane."""
    op = "global_avg_pool2d"
    v.arrays(op, x=x)
    v.float_dtype(op, x=x)
    v.ndim(op, "x", x, 4, "(N, C, H, W)")
    x = _contiguous(x)
    return _backend.backend_for(x).global_avg_pool2d(x)


def global_avg_pool2d_backward(dy, x):
    """dx (N, C, H, W): dy[n, c] / (H*W) everywhere in plane (n, c)."""
    op = "global_avg_pool2d_backward"
    v.arrays(op, dy=dy, x=x)
    v.float_dtype(op, dy=dy, x=x)
    v.ndim(op, "x", x, 4, "(N, C, H, W)")
    if tuple(dy.shape) != tuple(x.shape[:2]):
        raise ValueError(f"{op}: dy has shape {tuple(dy.shape)} but x {tuple(x.shape)} "
                         f"needs {tuple(x.shape[:2])}")
    dy = _contiguous(dy)
    return _backend.backend_for(dy).global_avg_pool2d_backward(dy, tuple(x.shape))
