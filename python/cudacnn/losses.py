"""Losses with their gradients, Keras names and semantics (mean over the batch).

Cross-entropies accept ``from_logits``. When the model ends in the matching
activation (softmax for the categorical losses, sigmoid for binary) the training
loop hands the loss the pre-activation logits instead (``logits=True``), so the
categorical losses run the fused ``ops.softmax_cross_entropy``; on plain
probabilities they clip as Keras does.
"""
from __future__ import annotations

import math

from .backend import get_array_module
from . import ops
from .ops.loss import check_label_range

EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities


# Rules on per-sample target shapes against per-sample output shapes (losses and metrics):
# None when they pair, else what is wrong. Checked before a training step, not inside one.
def same_shape(target, output):
    return None if target == output else f"targets of per-sample shape {target} must match the outputs {output}"


def same_size(target, output):
    t, o = math.prod(target), math.prod(output)
    return None if t == o else f"targets of {t} values per sample cannot pair with {o} outputs"


def class_indices(target, output):
    """One index per sample for (N, K) outputs; one per position for (N, C, ...) maps."""
    positions = tuple(output[1:])
    if target in (positions, (1, *positions)) or (not positions and target == (1,)):
        return None
    expected = "(N,) or (N, 1)" if not positions else f"(N, {', '.join(map(str, positions))})"
    return f"targets must be class indices of shape {expected}, got per-sample shape {target}"


def channel_rows(a):
    """(N, C, ...) maps as (N * positions, C) rows, channels last: the categorical losses and
    accuracies work per position over the channels, as Keras' over its (last) channel axis."""
    xp = get_array_module(a)
    return xp.ascontiguousarray(xp.moveaxis(a, 1, -1)).reshape(-1, a.shape[1])


def _from_channel_rows(rows, shape):
    xp = get_array_module(rows)
    return xp.ascontiguousarray(xp.moveaxis(rows.reshape(shape[0], *shape[2:], shape[1]), -1, 1))


def _batch(y_pred):
    return y_pred.shape[0]


class Loss:
    name = "loss"
    fused_activation = None  # the output activation this loss can absorb
    target_rule = staticmethod(same_size)

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def value_and_grad(self, y_pred, y_true, logits=False, targets_checked=False):
        """(0-d loss array, d loss / d y_pred), staying on y_pred's device.

        ``targets_checked``: ``check_targets`` has passed on a data set these targets
        come from, so checks that would wait for the device are skipped.
        """
        raise NotImplementedError

    def value(self, y_pred, y_true, logits=False, targets_checked=False):
        return self.value_and_grad(y_pred, y_true, logits, targets_checked)[0]

    def check_targets(self, y_true, classes) -> bool:
        """Check a whole data set's targets for predictions of ``classes`` columns, once.

        Raises ValueError as a batch of them would; returns whether batches may then skip
        their own checks (``targets_checked=True``). Losses with no such checks: False.
        """
        return False

    def __call__(self, y_true, y_pred):
        return self.value(y_pred, y_true)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """Targets are one-hot (or probability) rows (N, K)."""

    name = "categorical_crossentropy"
    fused_activation = "softmax"
    target_rule = staticmethod(same_shape)

    def _targets(self, y_true, y_pred, targets_checked=False):
        xp = get_array_module(y_pred)
        y = xp.asarray(y_true, dtype=y_pred.dtype)
        if y.shape != y_pred.shape:
            raise ValueError(f"{self.name}: targets of shape {tuple(y.shape)} do not match predictions "
                             f"{tuple(y_pred.shape)} (use sparse_categorical_crossentropy for class indices)")
        return y

    def value_and_grad(self, y_pred, y_true, logits=False, targets_checked=False):
        if y_pred.ndim > 2:  # feature maps: the mean over every position's loss
            loss, grad = self.value_and_grad(channel_rows(y_pred), self._target_rows(y_true, y_pred), logits,
                                             targets_checked)
            return loss, _from_channel_rows(grad, y_pred.shape)
        targets = self._targets(y_true, y_pred, targets_checked)
        if logits or self.from_logits:
            loss, cache = ops.softmax_cross_entropy(y_pred, targets, labels_checked=targets_checked)
            return loss, ops.softmax_cross_entropy_backward(cache)
        return self._on_probabilities(y_pred, targets, targets_checked)

    def _target_rows(self, y_true, y_pred):
        y = get_array_module(y_pred).asarray(y_true)
        return channel_rows(y) if y.ndim == y_pred.ndim else y  # else _targets names the mismatch

    def _on_probabilities(self, y_pred, onehot, targets_checked=False):
        """As Keras: rows scaled to sum to 1 (q = y / s), clipped to [eps, 1 - eps], then
        -sum(t * log q); the gradient flows back through the clip and the scaling."""
        xp = get_array_module(y_pred)
        n = _batch(y_pred)
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        p = xp.clip(q, EPSILON, 1.0 - EPSILON)
        loss = -(onehot * xp.log(p)).sum() / n
        inside = (q > EPSILON) & (q < 1.0 - EPSILON)
        g = xp.where(inside, -onehot / p, 0.0) / n  # d loss / d q
        grad = (g - (g * q).sum(axis=-1, keepdims=True)) / s
        return loss, grad.astype(y_pred.dtype)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Targets are class indices (N,) or (N, 1)."""

    target_rule = staticmethod(class_indices)

    name = "sparse_categorical_crossentropy"

    def _target_rows(self, y_true, y_pred):
        return get_array_module(y_pred).asarray(y_true).reshape(-1)  # one index per position

    def _targets(self, y_true, y_pred, targets_checked=False):
        y = get_array_module(y_pred).asarray(y_true).reshape(-1)
        if y.shape[0] != y_pred.shape[0]:
            raise ValueError(f"{self.name}: {y.shape[0]} labels for {y_pred.shape[0]} predictions")
        return self._class_indices(y, check_integral=not targets_checked)

    def _class_indices(self, y, check_integral=True):
        """Integer labels as they are; integral floats (checked: a device-to-host copy) as int64."""
        if y.dtype.kind in "iu":
            return y
        xp = get_array_module(y)
        if y.dtype.kind != "f":
            raise ValueError(f"{self.name}: labels must be integer class indices, got dtype {y.dtype}")
        if check_integral:
            # inf, NaN and values past int32 would turn into arbitrary integers in the cast.
            bad = ~xp.isfinite(y) | (y != xp.floor(y)) | (xp.abs(y) >= 2**31)
            if bool(bad.any()):
                value = float(y[int(xp.argmax(bad))])
                raise ValueError(f"{self.name}: labels must be integer class indices, got {value!r} "
                                 f"(dtype {y.dtype})")
        return y.astype(xp.int64)

    def check_targets(self, y_true, classes) -> bool:
        labels = self._class_indices(get_array_module(y_true).asarray(y_true).reshape(-1))
        check_label_range(self.name, labels, classes, f"for a model of {classes} outputs")
        return True

    def _on_probabilities(self, y_pred, labels, targets_checked=False):
        xp = get_array_module(y_pred)
        n, classes = y_pred.shape
        if not targets_checked:
            check_label_range(self.name, labels, classes)
        onehot = xp.zeros_like(y_pred)
        onehot[xp.arange(n), labels] = 1
        return super()._on_probabilities(y_pred, onehot)


class BinaryCrossentropy(Loss):
    """Element-wise binary cross-entropy, averaged (targets in [0, 1], same shape as outputs)."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def value_and_grad(self, y_pred, y_true, logits=False, targets_checked=False):
        xp = get_array_module(y_pred)
        y = xp.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        size = y_pred.size
        if logits or self.from_logits:
            z = y_pred
            loss = (xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))).sum() / size
            return loss, (ops.sigmoid(z) - y) / size
        p = xp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        loss = -(y * xp.log(p) + (1 - y) * xp.log(1 - p)).sum() / size
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)
        grad = xp.where(inside, (p - y) / (p * (1 - p)), 0.0).astype(y_pred.dtype) / size
        return loss, grad


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def value_and_grad(self, y_pred, y_true, logits=False, targets_checked=False):
        xp = get_array_module(y_pred)
        y = xp.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        diff = y_pred - y
        return (diff * diff).sum() / diff.size, diff * (2.0 / diff.size)


class Hinge(Loss):
    """Keras' hinge: mean(max(1 - y * y_pred, 0)) for targets -1/1; targets that are all 0/1
    count as -1/1, as Keras converts them (decided on the device: no wait for it)."""

    name = "hinge"
    power = 1

    def value_and_grad(self, y_pred, y_true, logits=False, targets_checked=False):
        xp = get_array_module(y_pred)
        y = xp.asarray(y_true, dtype=y_pred.dtype).reshape(y_pred.shape)
        binary = ((y == 0) | (y == 1)).all()
        y = xp.where(binary, 2 * y - 1, y)
        margin = xp.maximum(1 - y * y_pred, 0)
        if self.power == 1:
            return margin.sum() / margin.size, xp.where(margin > 0, -y, 0).astype(y_pred.dtype) / margin.size
        return (margin * margin).sum() / margin.size, (-2 * y * margin).astype(y_pred.dtype) / margin.size


class SquaredHinge(Hinge):
    """Keras' squared_hinge: mean(max(1 - y * y_pred, 0) ** 2)."""

    name = "squared_hinge"
    power = 2


_BY_NAME = {
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown loss {identifier!r}; choose one of {sorted(_BY_NAME)} or a Loss instance")
