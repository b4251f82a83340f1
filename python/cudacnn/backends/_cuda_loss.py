"""Softmax and fused softmax-cross-entropy on our kernels (csrc/softmax_xent.cu).

The cache has the reference's keys (logits, row_max, log_sum, labels), so a
cache from either GPU backend feeds the other's backward.
"""
from __future__ import annotations

import cupy as cp

from . import _cuda_common as common


def softmax_cross_entropy(logits, labels):
    index_labels = labels.ndim == 1
    reason = common.unsupported(logits) or (None if index_labels else common.unsupported(labels))
    if reason:
        return common.fallback("softmax_cross_entropy", reason).softmax_cross_entropy(logits, labels)
    C = common.ext()
    logits = common.f32(logits)
    N, K = logits.shape
    loss, row_max, log_sum, row_loss = common.empty(()), common.empty((N,)), common.empty((N,)), common.empty((N,))
    if index_labels:
        labels = _int64(labels)
        forward = C.softmax_xent_forward_index
    else:
        labels = common.f32(labels)
        forward = C.softmax_xent_forward_prob
    forward(common.ptr(loss), common.ptr(row_max), common.ptr(log_sum), common.ptr(row_loss), common.ptr(logits),
            common.ptr(labels), N, K, common.stream())
    return loss, {"logits": logits, "row_max": row_max, "log_sum": log_sum, "labels": labels}


def softmax_cross_entropy_backward(cache):
    logits, row_max, log_sum, labels = cache["logits"], cache["row_max"], cache["log_sum"], cache["labels"]
    index_labels = labels.ndim == 1
    reason = common.unsupported(logits, row_max, log_sum) or (None if index_labels else common.unsupported(labels))
    if reason:
        return common.fallback("softmax_cross_entropy_backward", reason).softmax_cross_entropy_backward(cache)
    C = common.ext()
    logits, row_max, log_sum = common.f32(logits), common.f32(row_max), common.f32(log_sum)
    N, K = logits.shape
    dlogits = common.empty((N, K))
    if index_labels:
        labels, backward = _int64(labels), C.softmax_xent_backward_index
    else:
        labels, backward = common.f32(labels), C.softmax_xent_backward_prob
    backward(common.ptr(dlogits), common.ptr(logits), common.ptr(row_max), common.ptr(log_sum), common.ptr(labels),
             N, K, common.stream())
    return dlogits


def _int64(labels):
    """The kernels read int64 class indices: no copy for the usual int64 labels (ops checked the range)."""
    return cp.ascontiguousarray(labels, dtype=cp.int64)


def softmax(x):
    reason = common.unsupported(x)
    if reason:
        return common.fallback("softmax", reason).softmax(x)
    x = common.f32(x)
    K = x.shape[-1]
    y = common.empty(x.shape)
    common.ext().softmax_forward(common.ptr(y), common.ptr(x), x.size // K, K, common.stream())
    return y


def softmax_backward(dy, y):
    reason = common.unsupported(dy, y)
    if reason:
        return common.fallback("softmax_backward", reason).softmax_backward(dy, y)
    dy, y = common.f32(dy), common.f32(y)
    K = y.shape[-1]
    dx = common.empty(y.shape)
    common.ext().softmax_backward(common.ptr(dx), common.ptr(dy), common.ptr(y), y.size // K, K, common.stream())
    return dx
