"""Dense, Reshape, Flatten, Dropout."""
from __future__ import annotations

import math

from .. import initializers
from .. import ops
from ..ops import _validate as check
from .. import random as _random
from .activations import ActivationFn
from .base import Layer, check_channels_first


class Dense(Layer):
    """Fully connected: kernel (units, in) as in PyTorch, y = act(x @ kernel.T + bias)."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.set_regularizers(kernel=kernel_regularizer, bias=bias_regularizer)
        self.units = check.integer(self.name, "Dense units", units, minimum=1)
        self.activation = ActivationFn(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        for initializer in (kernel_initializer, bias_initializer):
            initializers.get(initializer)  # an unknown name fails here, not at build

    def build(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"{self.name}: Dense expects flat inputs (N, features), got per-sample "
                             f"shape {tuple(input_shape)}; add Flatten() before it")
        self.add_weight("kernel", (self.units, input_shape[0]), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        if self.built and tuple(input_shape) != (self.params["kernel"].shape[1],):
            raise ValueError(f"{self.name}: built for {self.params['kernel'].shape[1]} input features, "
                             f"got per-sample shape {tuple(input_shape)}")
        return (self.units,)

    def forward(self, x, training=False):
        self._x = x
        if self.activation.fusable:  # one pass fewer: the GEMM's epilogue applies it
            return self.activation.fused(ops.linear(x, self.params["kernel"], self.params.get("bias"),
                                                    activation=self.activation.name))
        z = ops.linear(x, self.params["kernel"], self.params.get("bias"))
        return self.activation.forward(z, self._emit_logits)

    def backward(self, dy):
        dz = self.activation.backward(dy)
        dx, dw, db = ops.linear_backward(dz, self._x, self.params["kernel"], need_dx=self._need_dx)
        self.grads = {"kernel": dw}
        if self.use_bias:
            self.grads["bias"] = db
        return dx

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias, "kernel_initializer": _init_name(self.kernel_initializer),
                "bias_initializer": _init_name(self.bias_initializer)}


def _init_name(init):
    if isinstance(init, str):
        return init
    raise TypeError(f"only initializers given by name can be saved in a config, got {init!r}")


class Reshape(Layer):
    """(N, ...) -> (N, *target_shape); one entry may be -1, inferred as in Keras."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else (target_shape,)
        if not all(check.is_int(d) and (d > 0 or d == -1) for d in target) or target.count(-1) > 1:
            raise ValueError(f"Reshape target_shape must be positive ints with at most one -1, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)
        if -1 not in self.target_shape:  # Keras' Reshape((28, 28, 1)) before a Conv2D is channels-last
            check_channels_first(self.target_shape, self.data_format, "target_shape", data=False)

    def compute_output_shape(self, input_shape):
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        if (size % known if -1 in self.target_shape else size != known):
            raise ValueError(f"{self.name}: cannot reshape per-sample {tuple(input_shape)} ({size} values) "
                             f"to {self.target_shape}")
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def forward(self, x, training=False):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], *self.compute_output_shape(x.shape[1:]))

    def backward(self, dy):
        return dy.reshape(self._in_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), keeping the NCHW order."""

    def compute_output_shape(self, input_shape):
        size = 1
        for d in input_shape:
            size *= d
        return (size,)

    def forward(self, x, training=False):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._in_shape)


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs while training, scaling the rest by 1/(1-rate).

    The mask comes from a counter-based RNG: each training forward draws one uint32
    seed from ``cudacnn.random`` and backward regenerates the same mask from it.
    """

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = check.real(self.name, "Dropout rate", rate, 0.0, 1.0, high_open=True)

    def forward(self, x, training=False):
        self._active = bool(training) and self.rate > 0.0
        if not self._active:
            return x
        self._seed = _random.next_seed()
        return ops.dropout(x, self.rate, True, self._seed)

    def backward(self, dy):
        if not self._active:
            return dy
        return ops.dropout_backward(dy, self.rate, True, self._seed)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
