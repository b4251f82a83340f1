"""BatchNormalization over the channel axis (axis 1) of (N, C), (N, C, L) or (N, C, H, W) inputs."""
from __future__ import annotations

from .. import ops
from ..ops import _validate as check
from .base import Layer


class BatchNormalization(Layer):
    """Keras arguments: ``momentum`` is the moving-average decay (running = m*running + (1-m)*batch).

    A frozen layer (``trainable = False``) always runs in inference mode, as in Keras 2.1+.
    """

    def __init__(self, axis=1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        if axis not in (1, -3):
            raise ValueError(f"BatchNormalization supports only the channel axis 1 (channels first), got {axis!r}")
        self.momentum = check.real(self.name, "momentum", momentum, 0.0, 1.0, high_open=True)
        self.epsilon = check.real(self.name, "epsilon", epsilon, 0.0, low_open=True)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        if len(input_shape) not in (1, 2, 3):
            raise ValueError(f"{self.name}: expects (C,), (C, L) or (C, H, W) per-sample inputs, "
                             f"got {tuple(input_shape)}")
        channels = (input_shape[0],)
        # gamma/beta always exist for the ops call; without scale/center they stay fixed at 1/0.
        self.add_weight("gamma", channels, "ones", trainable=self.scale)
        self.add_weight("beta", channels, "zeros", trainable=self.center)
        self.add_weight("moving_mean", channels, "zeros", trainable=False)
        self.add_weight("moving_variance", channels, "ones", trainable=False)

    def _gamma_beta(self):
        gamma = self.params["gamma"] if self.scale else self.state["gamma"]
        beta = self.params["beta"] if self.center else self.state["beta"]
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
