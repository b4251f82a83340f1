"""Activation functions by Keras name, and the activation layers.

``Activation`` keeps what its backward needs: ReLU-like functions keep their
output (its sign equals the input's), sigmoid/tanh/softmax keep the output, ELU
keeps the input. When the training loop fuses softmax with cross-entropy it sets
``layer._emit_logits``; a softmax (or a sigmoid fused with binary cross-entropy)
then passes its input through unchanged.
"""
from __future__ import annotations

from .. import backend, ops
from ..ops import _validate as check
from .base import Layer

ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softmax")
# activation="leaky_relu" slopes by 0.2, as keras.activations.leaky_relu does
# (the LeakyReLU layer's own default is 0.3, also as in Keras).
LEAKY_RELU_SLOPE = 0.2


def check_activation(name):
    if name is None:
        return None
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS} or None")
    name = name.lower()
    return None if name == "linear" else name


class ActivationFn:
    """One activation with its saved tensor, usable inside any layer."""

    def __init__(self, name, negative_slope=LEAKY_RELU_SLOPE, alpha=1.0):
        self.name = check_activation(name)
        self.negative_slope = negative_slope
        self.alpha = alpha
        self._saved = None

    @property
    def fusable(self):
        """True when conv2d/linear can apply this activation in their own epilogue (ops' activation=)."""
        return self.name == "relu"

    def fused(self, y):
        """The layer's op already applied this activation: keep its output for the backward."""
        self._saved = y  # relu's backward needs y > 0, which is z > 0
        return y

    def forward(self, z, emit_logits=False):
        name = self.name
        if name is None or (emit_logits and name in ("softmax", "sigmoid")):
            self._saved = None
            return z
        if name == "relu":
            y = ops.relu(z)
        elif name == "leaky_relu":
            y = ops.leaky_relu(z, self.negative_slope)
        elif name == "elu":
            y = ops.elu(z, self.alpha)
            self._saved = z
            return y
        elif name == "sigmoid":
            y = ops.sigmoid(z)
        elif name == "tanh":
            y = ops.tanh(z)
        else:
            y = _over_channels(ops.softmax, z)
        self._saved = y
        return y

    def backward(self, dy):
        name, saved = self.name, self._saved
        if saved is None:  # linear, or a softmax fused into the loss
            return dy
        if name == "relu":
            return ops.relu_backward(dy, saved)
        if name == "leaky_relu":
            return ops.leaky_relu_backward(dy, saved, self.negative_slope)
        if name == "elu":
            return ops.elu_backward(dy, saved, self.alpha)
        if name == "sigmoid":
            return ops.sigmoid_backward(dy, saved)
        if name == "tanh":
            return ops.tanh_backward(dy, saved)
        return _over_channels(ops.softmax_backward, dy, saved)


def _over_channels(op, *arrays):
    """A last-axis op applied along axis 1, the channels of (N, C, ...) maps: softmax on a conv's
    output is per position over its channels, as Keras' softmax over its (last) channel axis."""
    if arrays[0].ndim == 2:
        return op(*arrays)
    xp = backend.get_array_module(*arrays)
    channels = arrays[0].shape[1]
    moved = [xp.ascontiguousarray(xp.moveaxis(a, 1, -1)) for a in arrays]
    out = op(*(m.reshape(-1, channels) for m in moved)).reshape(moved[0].shape)
    return xp.ascontiguousarray(xp.moveaxis(out, -1, 1))


class Activation(Layer):
    """``Activation("relu")`` etc.; softmax is over the channels: the K of (N, K), the C of (N, C, ...)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = check_activation(activation) or "linear"
        self._fn = self._make_fn()

    def _make_fn(self):
        return ActivationFn(self.activation)

    def forward(self, x, training=False):
        return self._fn.forward(x, self._emit_logits)

    def backward(self, dy):
        return self._fn.backward(dy)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Activation):
    def __init__(self, **kwargs):
        super().__init__("relu", **kwargs)

    def get_config(self):
        return Layer.get_config(self)


class LeakyReLU(Activation):
    """Keras default slope 0.3 (``alpha`` or ``negative_slope``), which must be >= 0 as in Keras:
    the backward tells negative inputs by their outputs' sign."""

    def __init__(self, alpha=None, negative_slope=None, **kwargs):
        slope = negative_slope if negative_slope is not None else alpha
        self.negative_slope = 0.3 if slope is None else check.real("LeakyReLU", "negative_slope", slope, 0.0)
        super().__init__("leaky_relu", **kwargs)

    def _make_fn(self):
        return ActivationFn("leaky_relu", negative_slope=self.negative_slope)

    def get_config(self):
        return {**Layer.get_config(self), "negative_slope": self.negative_slope}


class ELU(Activation):
    def __init__(self, alpha=1.0, **kwargs):
        self.alpha = check.real("ELU", "alpha", alpha)
        super().__init__("elu", **kwargs)

    def _make_fn(self):
        return ActivationFn("elu", alpha=self.alpha)

    def get_config(self):
        return {**Layer.get_config(self), "alpha": self.alpha}


class Softmax(Activation):
    def __init__(self, **kwargs):
        super().__init__("softmax", **kwargs)

    def get_config(self):
        return Layer.get_config(self)
