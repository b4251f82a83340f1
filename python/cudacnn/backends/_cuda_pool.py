"""Max, average and global-average pooling on our kernels (csrc/pooling.cu)."""
from __future__ import annotations

import cupy as cp

from . import _cuda_common as common


def _shape(x_shape, kernel, stride, padding):
    N, C, H, W = x_shape
    pt, pb, pl, pr = padding
    P = (H + pt + pb - kernel[0]) // stride[0] + 1
    Q = (W + pl + pr - kernel[1]) // stride[1] + 1
    shape = common.ext().Pool2dShape(N=N, C=C, H=H, W=W, kernel_h=kernel[0], kernel_w=kernel[1],
                                     stride_h=stride[0], stride_w=stride[1], pad_top=pt, pad_bottom=pb,
                                     pad_left=pl, pad_right=pr, P=P, Q=Q)
    return shape, (N, C, P, Q)


def max_pool2d(x, kernel, stride, padding):
    reason = common.unsupported(x)
    if reason:
        return common.fallback("max_pool2d", reason).max_pool2d(x, kernel, stride, padding)
    x = common.f32(x)
    shape, y_shape = _shape(x.shape, kernel, stride, padding)
    y = common.empty(y_shape)
    indices = common.empty(y_shape, cp.int32)
    common.ext().max_pool2d_forward(common.ptr(y), common.ptr(indices), common.ptr(x), shape, common.stream())
    return y, indices


def max_pool2d_backward(dy, x, indices, kernel, stride, padding):
    reason = common.unsupported(dy, x)
    if reason:
        return common.fallback("max_pool2d_backward", reason).max_pool2d_backward(
            dy, x, indices, kernel, stride, padding)
    dy = common.f32(dy)
    if indices is None:
        _, indices = max_pool2d(x, kernel, stride, padding)
    indices = cp.ascontiguousarray(indices, dtype=cp.int32)
    shape, _ = _shape(x.shape, kernel, stride, padding)
    dx = common.empty(x.shape)
    common.ext().max_pool2d_backward(common.ptr(dx), common.ptr(dy), common.ptr(indices), shape, common.stream())
    return dx


def avg_pool2d(x, kernel, stride, padding, count_include_pad):
    reason = common.unsupported(x)
    if reason:
        return common.fallback("avg_pool2d", reason).avg_pool2d(x, kernel, stride, padding, count_include_pad)
    x = common.f32(x)
    shape, y_shape = _shape(x.shape, kernel, stride, padding)
    y = common.empty(y_shape)
    common.ext().avg_pool2d_forward(common.ptr(y), common.ptr(x), shape, bool(count_include_pad), common.stream())
    return y


def avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad):
    reason = common.unsupported(dy)
    if reason:
        return common.fallback("avg_pool2d_backward", reason).avg_pool2d_backward(
            dy, x_shape, kernel, stride, padding, count_include_pad)
    dy = common.f32(dy)
    shape, _ = _shape(tuple(x_shape), kernel, stride, padding)
    dx = common.empty(tuple(x_shape))
    common.ext().avg_pool2d_backward(common.ptr(dx), common.ptr(dy), shape, bool(count_include_pad),
                                     common.stream())
    return dx


def global_avg_pool2d(x):
    reason = common.unsupported(x)
    if reason:
        return common.fallback("global_avg_pool2d", reason).global_avg_pool2d(x)
    x = common.f32(x)
    N, C, H, W = x.shape
    y = common.empty((N, C))
    common.ext().global_avg_pool2d_forward(common.ptr(y), common.ptr(x), N, C, H * W, common.stream())
    return y


def global_avg_pool2d_backward(dy, x_shape):
    reason = common.unsupported(dy)
    if reason:
        return common.fallback("global_avg_pool2d_backward", reason).global_avg_pool2d_backward(dy, x_shape)
    dy = common.f32(dy)
    N, C, H, W = x_shape
    dx = common.empty(tuple(x_shape))
    common.ext().global_avg_pool2d_backward(common.ptr(dx), common.ptr(dy), N, C, H * W, common.stream())
    return dx
