"""Conv2D, Conv1D (channels first; kernels (filters, C/groups, *k) as in PyTorch) and ZeroPadding2D."""
from __future__ import annotations

import math
import numbers

from .. import initializers
from .. import backend, ops
from ..ops import _validate as check
from .activations import ActivationFn
from .base import Layer, check_channels_first
from .core import _init_name


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def normalize_tuple(value, n, what):
    """An int or n ints (Python or NumPy), each positive, as a tuple of n Python ints."""
    values = (value,) * n if _is_int(value) else value
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if values is None or len(values) != n or not all(_is_int(v) and v > 0 for v in values):
        raise ValueError(f"{what} must be a positive int or a tuple of {n} positive ints, got {value!r}")
    return tuple(int(v) for v in values)


def normalize_padding(padding, n):
    """'valid', 'same' (Keras), or symmetric zero padding as in PyTorch: an int or n ints >= 0."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
        return padding.lower()
    if _is_int(padding) and padding >= 0:
        return int(padding)
    if isinstance(padding, (tuple, list)) and len(padding) == n and all(_is_int(p) and p >= 0 for p in padding):
        return tuple(int(p) for p in padding)
    raise ValueError(f"padding must be 'valid', 'same', a non-negative int or {n} of them (one per spatial axis, "
                     f"applied on both sides), got {padding!r}")


def conv_output_length(length, kernel, stride, padding, dilation=1, axis=0):
    """Output size along one axis, Keras 'valid'/'same' or explicit symmetric padding."""
    effective = dilation * (kernel - 1) + 1
    if padding == "same":
        return math.ceil(length / stride)
    if padding == "valid":
        pad = 0
    else:
        pad = 2 * (padding if isinstance(padding, int) else padding[axis])
    out = (length + pad - effective) // stride + 1
    if out <= 0:
        raise ValueError(f"input length {length} is too small for kernel {kernel} "
                         f"(dilation {dilation}, stride {stride}, padding {padding!r})")
    return out


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.set_regularizers(kernel=kernel_regularizer, bias=bias_regularizer)
        filters = check.integer(self.name, "filters", filters, minimum=1)
        if not _is_int(groups) or groups <= 0 or filters % groups:
            raise ValueError(f"groups must be a positive int dividing filters={filters}, got {groups!r}")
        n = self.rank
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, n, "kernel_size")
        self.strides = normalize_tuple(strides, n, "strides")
        self.padding = normalize_padding(padding, n)
        self.dilation_rate = normalize_tuple(dilation_rate, n, "dilation_rate")
        self.groups = groups
        self.activation = ActivationFn(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        for initializer in (kernel_initializer, bias_initializer):
            initializers.get(initializer)  # an unknown name fails here, not at build

    def build(self, input_shape):
        if len(input_shape) != self.rank + 1:
            hint = (f"; for one channel give {(1, *input_shape)}" if len(input_shape) == self.rank else "")
            raise ValueError(f"{self.name}: {type(self).__name__} expects per-sample inputs of rank "
                             f"{self.rank + 1} (channels first), got shape {tuple(input_shape)}{hint}")
        channels = input_shape[0]
        if channels % self.groups:
            raise ValueError(f"{self.name}: input channels {channels} not divisible by groups={self.groups}")
        self.add_weight("kernel", (self.filters, channels // self.groups, *self.kernel_size),
                        self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        if self.built and input_shape[0] != self.params["kernel"].shape[1] * self.groups:
            raise ValueError(f"{self.name}: built for {self.params['kernel'].shape[1] * self.groups} input "
                             f"channels, got per-sample shape {tuple(input_shape)}")
        spatial = [conv_output_length(input_shape[1 + i], self.kernel_size[i], self.strides[i],
                                      self.padding, self.dilation_rate[i], i)
                   for i in range(self.rank)]
        return (self.filters, *spatial)

    def _args(self):
        stride, dilation = self.strides, self.dilation_rate
        if self.rank == 1:
            stride, dilation = stride[0], dilation[0]
        return dict(stride=stride, padding=self.padding, dilation=dilation, groups=self.groups)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding if not isinstance(self.padding, tuple) else list(self.padding),
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": _init_name(self.kernel_initializer),
                "bias_initializer": _init_name(self.bias_initializer)}


class Conv2D(_Conv):
    rank = 2

    def forward(self, x, training=False):
        self._x = x
        if self.activation.fusable:  # one pass fewer: the conv's epilogue applies it
            return self.activation.fused(ops.conv2d(x, self.params["kernel"], self.params.get("bias"),
                                                    activation=self.activation.name, **self._args()))
        z = ops.conv2d(x, self.params["kernel"], self.params.get("bias"), **self._args())
        return self.activation.forward(z, self._emit_logits)

    def backward(self, dy):
        dz = self.activation.backward(dy)
        dx, dw, db = ops.conv2d_backward(dz, self._x, self.params["kernel"], **self._args(),
                                           need_dx=self._need_dx)
        self.grads = {"kernel": dw}
        if self.use_bias:
            self.grads["bias"] = db
        return dx


class Conv1D(_Conv):
    rank = 1

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        # Keras' (steps, channels), e.g. (100, 3), would read as 100 channels of length 3.
        check_channels_first(self._declared_input_shape, self.data_format, "input_shape", signals=True)

    def forward(self, x, training=False):
        self._x = x
        if self.activation.fusable:
            return self.activation.fused(ops.conv1d(x, self.params["kernel"], self.params.get("bias"),
                                                    activation=self.activation.name, **self._args()))
        z = ops.conv1d(x, self.params["kernel"], self.params.get("bias"), **self._args())
        return self.activation.forward(z, self._emit_logits)

    def backward(self, dy):
        dz = self.activation.backward(dy)
        dx, dw, db = ops.conv1d_backward(dz, self._x, self.params["kernel"], **self._args(),
                                           need_dx=self._need_dx)
        self.grads = {"kernel": dw}
        if self.use_bias:
            self.grads["bias"] = db
        return dx


class ZeroPadding2D(Layer):
    """Zeros around each map, as Keras: ``padding`` an int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), **kwargs):
        super().__init__(**kwargs)
        if _is_int(padding):
            padding = (padding, padding)
        try:
            pairs = [(p, p) if _is_int(p) else tuple(p) for p in padding]
        except TypeError:
            pairs = []
        if len(pairs) != 2 or not all(len(p) == 2 and all(_is_int(v) and v >= 0 for v in p) for p in pairs):
            raise ValueError(f"ZeroPadding2D padding must be an int, (rows, cols) or ((top, bottom), (left, right)) "
                             f"of ints >= 0, got {padding!r}")
        self.padding = tuple(tuple(int(v) for v in p) for p in pairs)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects per-sample inputs (C, H, W), got {tuple(input_shape)}")
        (top, bottom), (left, right) = self.padding
        return (input_shape[0], input_shape[1] + top + bottom, input_shape[2] + left + right)

    def forward(self, x, training=False):
        xp = backend.get_array_module(x)
        return xp.pad(x, ((0, 0), (0, 0), *self.padding))

    def backward(self, dy):
        (top, bottom), (left, right) = self.padding
        return dy[:, :, top:dy.shape[2] - bottom, left:dy.shape[3] - right]

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding]}
