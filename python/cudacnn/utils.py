"""Keras' small data utilities: one-hot labels for categorical cross-entropy."""
from __future__ import annotations

import numpy as np


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows for integer class labels, as ``keras.utils.to_categorical``: labels of
    shape (N,) (or (N, 1)) give (N, num_classes); ``num_classes`` defaults to max(y) + 1."""
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("to_categorical takes integer class labels, got non-integer values")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical takes labels >= 0, got {labels.min()}")
    largest = int(labels.max()) if labels.size else -1
    if num_classes is None:
        num_classes = largest + 1
    num_classes = int(num_classes)
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if largest >= num_classes:
        raise ValueError(f"label {largest} is outside [0, {num_classes}) for num_classes={num_classes}")
    out = np.zeros((*labels.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, labels[..., None].astype(np.int64), 1, axis=-1)
    return out
