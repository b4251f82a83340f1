"""BatchNormalization over the channel axis (axis 1) of (N, C), (N, C, L) or (N, C, H, W) inputs."""
from __future__ import annotations

from .. import backend, ops
from ..ops import _validate as check
from .base import Layer


class BatchNormalization(Layer):
    """Keras arguments: ``momentum`` is the moving-average decay (running = m*running + (1-m)*batch).

    A frozen layer (``trainable = False``) always runs in inference mode, as in Keras 2.1+.
    """

    def __init__(self, axis=1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if not check.is_int(axis):  # 1.0 or True would pass the test below
            raise TypeError(f"{self.name}: BatchNormalization axis must be an int, got {axis!r}")
        if axis not in (1, -3):
            raise ValueError(f"BatchNormalization supports only the channel axis 1 (channels first), got {axis!r}")
        self._axis = int(axis)
        self.momentum = check.real(self.name, "momentum", momentum, 0.0, 1.0, high_open=True)
        self.epsilon = check.real(self.name, "epsilon", epsilon, 0.0, low_open=True)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        if len(input_shape) not in (1, 2, 3):
            raise ValueError(f"{self.name}: expects (C,), (C, L) or (C, H, W) per-sample inputs, "
                             f"got {tuple(input_shape)}")
        if self._axis == -3 and len(input_shape) != 3:  # -3 is the channel axis of (N, C, H, W) only
            raise ValueError(f"{self.name}: axis -3 is not the channel axis of inputs of shape "
                             f"{(None, *input_shape)}; use axis=1")
        channels = (input_shape[0],)
        # As Keras: no gamma without scale, no beta without center (weights, files, summary agree).
        if self.scale:
            self.add_weight("gamma", channels, "ones")
        if self.center:
            self.add_weight("beta", channels, "zeros")
        self.add_weight("moving_mean", channels, "zeros", trainable=False)
        self.add_weight("moving_variance", channels, "ones", trainable=False)

    def omitted_weights(self) -> dict:
        """``{name: value}`` of the affine weights this layer does without (gamma acts as 1 without
        scale, beta as 0 without center): files from before they were omitted, or from torch, hold them."""
        return {**({} if self.scale else {"gamma": 1.0}), **({} if self.center else {"beta": 0.0})}

    def _gamma_beta(self):
        # An absent gamma acts as 1, an absent beta as 0 (like the moving statistics in device and dtype).
        xp = backend.get_array_module(self.state["moving_mean"])
        gamma = self.params["gamma"] if self.scale else xp.ones_like(self.state["moving_mean"])
        beta = self.params["beta"] if self.center else xp.zeros_like(self.state["moving_mean"])
        return gamma, beta

    def forward(self, x, training=False):
        gamma, beta = self._gamma_beta()
        self._sequence = x.ndim == 3  # (N, C, L) from Conv1D: normalised as (N, C, L, 1)
        y, self._cache = ops.batch_norm(x[..., None] if self._sequence else x, gamma, beta,
                                        self.state["moving_mean"], self.state["moving_variance"],
                                        bool(training) and self.trainable,
                                        momentum=1.0 - self.momentum, eps=self.epsilon)
        return y[..., 0] if self._sequence else y

    def backward(self, dy):
        dx, dgamma, dbeta = ops.batch_norm_backward(dy[..., None] if self._sequence else dy, self._cache)
        if self._sequence:
            dx = dx[..., 0]
        self.grads = {}
        if self.scale:
            self.grads["gamma"] = dgamma
        if self.center:
            self.grads["beta"] = dbeta
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": 1, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}
