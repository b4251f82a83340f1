"""Softmax and fused softmax-cross-entropy on our kernels (csrc/softmax_xent.cu).

The cache has the reference's keys (probs, labels); class-index labels also
keep an int32 copy for the kernels.
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
    loss, probs, row_loss = common.empty(()), common.empty((N, K)), common.empty((N,))
    cache = {"probs": probs, "labels": labels}
    if index_labels:
        # ops checked the range, so the int32 conversion is exact.
        labels32 = cp.ascontiguousarray(labels, dtype=cp.int32)
        cache["labels_int32"] = labels32
        C.softmax_xent_forward_index(common.ptr(loss), common.ptr(probs), common.ptr(row_loss), common.ptr(logits),
                                     common.ptr(labels32), N, K, common.stream())
    else:
        targets = common.f32(labels)
        cache["labels"] = targets
        C.softmax_xent_forward_prob(common.ptr(loss), common.ptr(probs), common.ptr(row_loss), common.ptr(logits),
                                    common.ptr(targets), N, K, common.stream())
    return loss, cache


def softmax_cross_entropy_backward(cache):
    probs, labels = cache["probs"], cache["labels"]
    index_labels = labels.ndim == 1
    reason = common.unsupported(probs) or (None if index_labels else common.unsupported(labels))
    if reason:
        return common.fallback("softmax_cross_entropy_backward", reason).softmax_cross_entropy_backward(cache)
    C = common.ext()
    probs = common.f32(probs)
    N, K = probs.shape
    dlogits = common.empty((N, K))
    if index_labels:
        labels32 = cache.get("labels_int32")
        if labels32 is None:  # a cache from the cupy backend
            labels32 = cp.ascontiguousarray(labels, dtype=cp.int32)
        C.softmax_xent_backward_index(common.ptr(dlogits), common.ptr(probs), common.ptr(labels32), N, K,
                                      common.stream())
    else:
        targets = common.f32(labels)
        C.softmax_xent_backward_prob(common.ptr(dlogits), common.ptr(probs), common.ptr(targets), N, K,
                                     common.stream())
    return dlogits


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
