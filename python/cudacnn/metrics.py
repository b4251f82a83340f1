"""Accuracy metrics. Each returns the number of correct predictions as a device scalar
(summed over the epoch without syncing) and the number of predictions counted.
User metrics follow Keras: ``fn(y_true, y_pred)``, averaged over the samples."""
from __future__ import annotations

from .backend import get_array_module
from .losses import class_indices, same_shape, same_size


# The categorical accuracies compare the channel argmax (axis 1) per sample, or per position of
# (N, C, ...) maps, counting every position, as Keras does over its channel axis.
def sparse_categorical_accuracy(y_pred, y_true, logits=False):
    predicted = y_pred.argmax(axis=1)
    labels = get_array_module(y_pred).asarray(y_true).reshape(predicted.shape)
    return (predicted == labels).sum(), predicted.size


def categorical_accuracy(y_pred, y_true, logits=False):
    predicted = y_pred.argmax(axis=1)
    return (predicted == get_array_module(y_pred).asarray(y_true).argmax(axis=1)).sum(), predicted.size


def binary_accuracy(y_pred, y_true, logits=False):
    xp = get_array_module(y_pred)
    threshold = 0.0 if logits else 0.5
    y = xp.asarray(y_true).reshape(y_pred.shape)
    return ((y_pred > threshold) == (y > 0.5)).sum(), y_pred.size


_BY_NAME = {f.__name__: f for f in (sparse_categorical_accuracy, categorical_accuracy, binary_accuracy)}
TARGET_RULES = {sparse_categorical_accuracy: class_indices, categorical_accuracy: same_shape,
                binary_accuracy: same_size}  # see losses; user metrics bring none


def _mean_of(fn, loss):
    """A user metric ``fn(y_true, y_pred)`` in Keras' convention: it sees the model's outputs
    (probabilities, also when the loss absorbs the output activation) and returns per-sample
    values or their batch mean; the logs report the mean of all values returned, as Keras' Mean
    metric does (per-sample values weigh by samples, batch means by batches)."""
    from . import ops

    def metric(y_pred, y_true, logits=False):
        if logits:
            y_pred = ops.softmax(y_pred) if loss.fused_activation == "softmax" else ops.sigmoid(y_pred)
        xp = get_array_module(y_pred)
        values = xp.asarray(fn(y_true, y_pred), dtype=xp.float32)
        if values.size == 0:
            raise ValueError(f"metric {getattr(fn, '__name__', fn)!r} returned no values")
        return values.sum(), values.size  # Keras' Mean: a returned batch mean counts once

    return metric


def resolve(name, loss, output_channels=None):
    """(display name, function) for a metric. "accuracy"/"acc" keep the spelling given (logs
    "acc", "val_acc") and pick their kind as Keras does: binary for one output channel (or
    binary cross-entropy), sparse for sparse cross-entropy, else categorical."""
    if callable(name) and not isinstance(name, str):
        if name in _BY_NAME.values():  # ours, given as a function: already in the internal form
            return name.__name__, name
        return getattr(name, "__name__", "metric"), _mean_of(name, loss)
    key = str(name).lower()
    if key in ("accuracy", "acc"):
        if output_channels == 1 or loss.name == "binary_crossentropy":
            return key, binary_accuracy
        if loss.name == "sparse_categorical_crossentropy":
            return key, sparse_categorical_accuracy
        return key, categorical_accuracy
    if key in _BY_NAME:
        return key, _BY_NAME[key]
    raise ValueError(f"unknown metric {name!r}; choose 'accuracy' or one of {sorted(_BY_NAME)}")
