"""Softmax + cross-entropy fused, mean over the batch (xp-generic, log-sum-exp stable)."""
from __future__ import annotations

from ..backend import get_array_module


def softmax_cross_entropy(logits, labels):
    """labels: int (N,) class indices or float (N, K) probability rows."""
    xp = get_array_module(logits)
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    if labels.ndim == 1:
        picked = log_probs[xp.arange(N), labels]
        loss = -picked.sum() / N
    else:
        loss = -(labels * log_probs).sum() / N
    cache = {"probs": xp.exp(log_probs), "labels": labels}
    return xp.asarray(loss, dtype=logits.dtype), cache


def softmax_cross_entropy_backward(cache):
    xp = get_array_module(cache["probs"])
    probs, labels = cache["probs"], cache["labels"]
    N = probs.shape[0]
    if labels.ndim == 1:
        dlogits = probs.copy()
        dlogits[xp.arange(N), labels] -= 1
    else:
        # d/dz of -sum_k p_k log softmax(z)_k; rows of p need not sum to 1.
        dlogits = probs * labels.sum(axis=1, keepdims=True) - labels
    dlogits /= N
    return dlogits
