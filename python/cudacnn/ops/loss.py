"""Softmax cross-entropy on logits, fused and numerically stable (log-sum-exp).

loss = mean over the batch of -sum_k p[n, k] * log_softmax(logits)[n, k], with
p the one-hot of int labels (N,) or given probability rows (N, K).
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def softmax_cross_entropy(logits, labels, labels_checked=False):
    """(loss, cache): loss is a 0-d array of the logits' dtype; the cache feeds the backward.

    The cache is a dict {"logits", "row_max", "log_sum", "labels"} on every backend:
    softmax(logits) = exp((logits - row_max) - log_sum), row by row.
    Class indices are checked to lie in [0, K), which costs a device-to-host copy
    (the host then waits for the device). ``labels_checked=True`` skips that check
    for labels the caller has already checked (``fit`` checks a whole data set
    once); a label outside [0, K) then makes the loss NaN, on every backend.
    """
    op = "softmax_cross_entropy"
    xp = v.arrays(op, logits=logits, labels=labels)
    v.float_dtype(op, logits=logits)
    v.ndim(op, "logits", logits, 2, "(N, K)")
    N, K = logits.shape
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{op}: 1-D labels must be integer class indices, got dtype "
                            f"{labels.dtype.name}")
        if labels.shape[0] != N:
            raise ValueError(f"{op}: labels has shape {tuple(labels.shape)} but logits "
                             f"{tuple(logits.shape)} needs ({N},)")
        if not v.flag(op, "labels_checked", labels_checked):
            check_label_range(op, labels, K, f"for logits {tuple(logits.shape)}")
    elif labels.ndim == 2:
        v.float_dtype(op, logits=logits, labels=labels)
        v.same_shape(op, "labels", labels, "logits", logits)
    else:
        raise ValueError(f"{op}: labels must be (N,) class indices or (N, K) probability "
                         f"rows, got shape {tuple(labels.shape)}")
    logits, labels = xp.ascontiguousarray(logits), xp.ascontiguousarray(labels)
    return _backend.backend_for(logits, labels).softmax_cross_entropy(logits, labels)


def check_label_range(op, labels, classes, context=""):
    """ValueError naming a label outside [0, classes); one device-to-host copy."""
    xp = _backend.get_array_module(labels)
    low, high = xp.stack((labels.min(), labels.max())).tolist()
    if low < 0 or high >= classes:
        bad = low if low < 0 else high
        raise ValueError(f"{op}: label {bad} is outside [0, {classes})" + (f" {context}" if context else ""))


def softmax_cross_entropy_backward(cache):
    """dlogits = (softmax(logits) - p) / N (for rows p that sum to 1)."""
    op = "softmax_cross_entropy_backward"
    if not isinstance(cache, dict) or not {"logits", "row_max", "log_sum", "labels"} <= cache.keys():
        raise TypeError(f"{op}: cache must be the dict returned by softmax_cross_entropy, got "
                        f"{type(cache).__name__}")
    return _backend.backend_for(cache["logits"]).softmax_cross_entropy_backward(cache)
