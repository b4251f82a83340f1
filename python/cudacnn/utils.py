"""Keras' small data utilities: one-hot labels for categorical cross-entropy."""
from __future__ import annotations

import numpy as np

from .ops import _validate as check


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows for integer class labels, as ``keras.utils.to_categorical``: labels of
    shape (N,) (or (N, 1)) give (N, num_classes); ``num_classes`` defaults to max(y) + 1."""
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"to_categorical takes integer class labels, got dtype {labels.dtype}")
    if labels.dtype.kind == "f":
        if labels.size and not (np.all(np.isfinite(labels)) and np.all(labels == np.floor(labels))):
            raise ValueError("to_categorical takes integer class labels, got non-integer values")
        if labels.size and labels.max() >= 2**62:
            raise ValueError(f"to_categorical: label {labels.max():g} is too large for a class index")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical takes labels >= 0, got {labels.min()}")
    largest = int(labels.max()) if labels.size else -1
    num_classes = largest + 1 if num_classes is None else check.integer("to_categorical", "num_classes",
                                                                          num_classes, minimum=1)
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if largest >= num_classes:
        raise ValueError(f"label {largest} is outside [0, {num_classes}) for num_classes={num_classes}")
    out = np.zeros((*labels.shape, num_classes), dtype=dtype)
    np.put_along_axis(out, labels[..., None].astype(np.int64), 1, axis=-1)
    return out
