"""Softmax + cross-entropy fused, mean over the batch (xp-generic, log-sum-exp stable).

The cache keeps the logits and two numbers per row (row_max and log_sum =
log sum exp(logits - row_max)) rather than the probabilities: the backward
recomputes softmax(logits) = exp((logits - row_max) - log_sum), so the forward
writes nothing logits-sized (what our GPU kernels exploit).
"""
from __future__ import annotations

from ..backend import get_array_module


def _in_range(labels, classes):
    return (labels >= 0) & (labels < classes)


def _clamped(labels, logits):
    """Labels usable as indices: out-of-range ones point at class 0 (their result is masked)."""
    return get_array_module(labels).clip(labels, 0, logits.shape[1] - 1)


def softmax_cross_entropy(logits, labels):
    """labels: int (N,) class indices or float (N, K) probability rows."""
    xp = get_array_module(logits)
    N = logits.shape[0]
    row_max = logits.max(axis=1)
    shifted = logits - row_max[:, None]
    log_sum = xp.log(xp.exp(shifted).sum(axis=1))
    if labels.ndim == 1:
        # A label outside [0, K) (possible only with labels_checked=True) gives NaN, as the kernels do.
        picked = xp.where(_in_range(labels, logits.shape[1]), shifted[xp.arange(N), _clamped(labels, logits)], xp.nan)
        loss = -(picked - log_sum).sum() / N
    else:
        loss = -(labels * (shifted - log_sum[:, None])).sum() / N
    cache = {"logits": logits, "row_max": row_max, "log_sum": log_sum, "labels": labels}
    return xp.asarray(loss, dtype=logits.dtype), cache


def softmax_cross_entropy_backward(cache):
    logits, labels = cache["logits"], cache["labels"]
    xp = get_array_module(logits)
    N = logits.shape[0]
    probs = xp.exp((logits - cache["row_max"][:, None]) - cache["log_sum"][:, None])
    if labels.ndim == 1:
        dlogits = probs
        dlogits[xp.arange(N), _clamped(labels, logits)] -= _in_range(labels, logits.shape[1])
    else:
        # d/dz of -sum_k p_k log softmax(z)_k; rows of p need not sum to 1.
        dlogits = probs * labels.sum(axis=1, keepdims=True) - labels
    dlogits /= N
    return dlogits
