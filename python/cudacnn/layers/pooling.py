"""MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D (channels first)."""
from __future__ import annotations

from .. import ops
from .base import Layer
from .conv import conv_output_length, normalize_padding, normalize_tuple


class _Pooling2D(Layer):
    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding, 2)  # "valid", "same", or symmetric ints as in PyTorch
        if not isinstance(self.padding, str):
            pads = (self.padding,) * 2 if isinstance(self.padding, int) else self.padding
            if any(p > k // 2 for p, k in zip(pads, self.pool_size)):  # no window may be all padding
                raise ValueError(f"pooling padding {padding!r} must be at most half the pool size "
                                 f"{self.pool_size}")

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects per-sample inputs (C, H, W), got {tuple(input_shape)}")
        c, h, w = input_shape
        return (c, conv_output_length(h, self.pool_size[0], self.strides[0], self.padding, axis=0),
                conv_output_length(w, self.pool_size[1], self.strides[1], self.padding, axis=1))

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides),
                "padding": list(self.padding) if isinstance(self.padding, tuple) else self.padding}


class MaxPooling2D(_Pooling2D):
    def forward(self, x, training=False):
        self._x = x
        y, self._indices = ops.max_pool2d(x, self.pool_size, self.strides, self.padding,
                                          return_indices=True)
        return y

    def backward(self, dy):
        return ops.max_pool2d_backward(dy, self._x, self.pool_size, self.strides, self.padding,
                                       indices=self._indices, indices_checked=True)


class AveragePooling2D(_Pooling2D):
    """Keras semantics: padded border windows ('same', or an integer padding) average only real
    pixels (PyTorch's AvgPool2d counts its zero padding by default)."""

    def forward(self, x, training=False):
        self._x = x
        return ops.avg_pool2d(x, self.pool_size, self.strides, self.padding, count_include_pad=False)

    def backward(self, dy):
        return ops.avg_pool2d_backward(dy, self._x, self.pool_size, self.strides, self.padding,
                                       count_include_pad=False)


class _GlobalPooling2D(Layer):
    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: expects per-sample inputs (C, H, W), got {tuple(input_shape)}")
        return (input_shape[0],)


class GlobalAveragePooling2D(_GlobalPooling2D):
    def forward(self, x, training=False):
        self._x = x
        return ops.global_avg_pool2d(x)

    def backward(self, dy):
        return ops.global_avg_pool2d_backward(dy, self._x)


class GlobalMaxPooling2D(_GlobalPooling2D):
    """(N, C, H, W) -> (N, C): each map's maximum; the gradient goes to its first maximum."""

    def forward(self, x, training=False):
        self._x, window = x, tuple(x.shape[2:])  # one window over the whole map: max pooling's kernels
        y, self._indices = ops.max_pool2d(x, window, window, 0, return_indices=True)
        return y.reshape(x.shape[:2])

    def backward(self, dy):
        window = tuple(self._x.shape[2:])
        return ops.max_pool2d_backward(dy.reshape(*dy.shape, 1, 1), self._x, window, window, 0,
                                       indices=self._indices, indices_checked=True)
