"""2-D and 1-D convolution (cross-correlation, as in PyTorch and Keras), NCHW.

conv1d runs as conv2d on (N, C, 1, L) views, so backends implement conv2d only.
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def _conv2d_args(op, x, w, b, stride, padding, dilation, groups, algo):
    """Validate everything; return the normalised (stride, pads, dilation, groups, out_hw)."""
    v.arrays(op, x=x, w=w, b=b)
    v.float_dtype(op, x=x, w=w, b=b)
    v.ndim(op, "x", x, 4, "(N, C, H, W)")
    v.ndim(op, "w", w, 4, "(K, C/groups, R, S)")
    return _conv2d_geometry(op, tuple(x.shape), tuple(w.shape), None if b is None else tuple(b.shape),
                            stride, padding, dilation, groups, algo)


@v.memoized
def _conv2d_geometry(op, x_shape, w_shape, b_shape, stride, padding, dilation, groups, algo):
    """The shape and hyper-parameter half of _conv2d_args (x and w are 4-D)."""
    groups = v.integer(op, "groups", groups, minimum=1)
    stride = v.pair(op, "stride", stride, minimum=1)
    dilation = v.pair(op, "dilation", dilation, minimum=1)
    if algo not in v.CONV_ALGOS:
        raise ValueError(f"{op}: algo must be one of {v.CONV_ALGOS}, got {algo!r}")
    _check_channels(op, x_shape, w_shape, b_shape, groups)
    H, W = x_shape[2:]
    R, S = w_shape[2:]
    pads = v.padding(op, padding, (H, W), (R, S), stride, dilation)
    out_hw = v.window_output(op, (H, W), (R, S), stride, pads, dilation)
    return stride, pads, dilation, groups, out_hw


def _check_channels(op, x_shape, w_shape, b_shape, groups):
    """Channels, groups and bias agree (shapes quoted as the caller gave them, 1-D or 2-D)."""
    C, K, Cg = x_shape[1], w_shape[0], w_shape[1]
    if C % groups or K % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({C}) "
                         f"and the filters ({K}) of weight {tuple(w_shape)}")
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels but weight {tuple(w_shape)} with "
                         f"groups={groups} expects {Cg * groups}")
    if b_shape is not None and tuple(b_shape) != (K,):
        raise ValueError(f"{op}: bias has shape {tuple(b_shape)} but weight {tuple(w_shape)} "
                         f"needs ({K},)")


def _contiguous(*arrays):
    xp = _backend.get_array_module(*arrays)
    return [None if a is None else xp.ascontiguousarray(a) for a in arrays]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, algo="auto", activation=None):
    """y (N, K, OH, OW) = cross-correlation of x (N, C, H, W) with w (K, C/groups, R, S), plus b (K,).

    padding: int, (ph, pw), "valid" or "same" (Keras/TF: OH = ceil(H/stride),
    an odd total pad puts the extra row/column at the bottom/right).
    algo ("auto" | "direct" | "im2col" | "winograd") picks a GPU kernel; results agree.
    activation="relu" returns relu(y), applied in the kernels' epilogue (one pass fewer).
    """
    return _conv2d("conv2d", x, w, b, stride, padding, dilation, groups, algo, activation)


def _conv2d(op, x, w, b, stride, padding, dilation, groups, algo, activation=None):
    stride, pads, dilation, groups, _ = _conv2d_args(op, x, w, b, stride, padding,
                                                     dilation, groups, algo)
    activation = v.fused_activation(op, activation)
    x, w, b = _contiguous(x, w, b)
    return _backend.backend_for(x, w, b).conv2d(x, w, b, stride, pads, dilation, groups, algo, activation)


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, algo="auto",
                    need_dx=True):
    """(dx, dw, db) for y = conv2d(x, w, b, ...) given dy = dL/dy.

    need_dx=False skips dx (returned as None), e.g. for a network's first layer.
    """
    return _conv2d_backward("conv2d_backward", dy, x, w, stride, padding, dilation, groups,
                            algo, need_dx)


def _conv2d_backward(op, dy, x, w, stride, padding, dilation, groups, algo, need_dx):
    v.arrays(op, dy=dy, x=x, w=w)
    v.float_dtype(op, dy=dy, x=x, w=w)
    stride, pads, dilation, groups, out_hw = _conv2d_args(op, x, w, None, stride, padding,
                                                          dilation, groups, algo)
    expected = (x.shape[0], w.shape[0]) + out_hw
    if tuple(dy.shape) != expected:
        raise ValueError(f"{op}: dy has shape {tuple(dy.shape)} but the forward output of "
                         f"x {tuple(x.shape)} and w {tuple(w.shape)} has shape {expected}")
    dy, x, w = _contiguous(dy, x, w)
    return _backend.backend_for(dy, x, w).conv2d_backward(
        dy, x, w, stride, pads, dilation, groups, algo, need_dx=bool(need_dx))


def _conv1d_as_2d(op, x, w, b, stride, padding, dilation, groups):
    """Shapes and hyper-parameters of the equivalent conv2d on (N, C, 1, L)."""
    v.arrays(op, x=x, w=w, b=b)
    v.ndim(op, "x", x, 3, "(N, C, L)")
    v.ndim(op, "w", w, 3, "(K, C/groups, S)")
    _check_channels(op, x.shape, w.shape, None if b is None else b.shape,
                    v.integer(op, "groups", groups, minimum=1))
    (stride,) = v.pair(op, "stride", stride, minimum=1, size=1)
    (dilation,) = v.pair(op, "dilation", dilation, minimum=1, size=1)
    if not isinstance(padding, str):
        (padding,) = v.pair(op, "padding", padding, minimum=0, size=1)
        padding = (0, padding)
    return x[:, :, None, :], w[:, :, None, :], (1, stride), padding, (1, dilation)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """y (N, K, OL) for x (N, C, L), w (K, C/groups, S); padding int, "valid" or "same".

    activation="relu" returns relu(y), as conv2d does."""
    x4, w4, stride, padding, dilation = _conv1d_as_2d("conv1d", x, w, b, stride, padding,
                                                      dilation, groups)
    return _conv2d("conv1d", x4, w4, b, stride, padding, dilation, groups, "auto", activation)[:, :, 0, :]


def conv1d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need_dx=True):
    """(dx, dw, db) for y = conv1d(x, w, b, ...)."""
    op = "conv1d_backward"
    x4, w4, stride, padding, dilation = _conv1d_as_2d(op, x, w, None, stride, padding,
                                                      dilation, groups)
    v.arrays(op, dy=dy)
    v.ndim(op, "dy", dy, 3, "(N, K, OL)")
    dx, dw, db = _conv2d_backward(op, dy[:, :, None, :], x4, w4, stride, padding, dilation,
                                  groups, "auto", need_dx)
    return (None if dx is None else dx[:, :, 0, :]), dw[:, :, 0, :], db
