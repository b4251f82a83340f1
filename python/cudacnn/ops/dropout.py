"""Inverted dropout with a counter-based RNG: the mask depends only on (seed, element index).

Element i (flat, C order) is kept iff uniform(seed, i) >= rate and kept
elements are scaled by 1 / (1 - rate), where
uniform(seed, i) = (lowbias32(uint32(i) + uint32(seed) * 0x9E3779B9) >> 8) * 2**-24
(see cudacnn.backends): every backend draws the same mask, bit for bit, and
the backward needs no stored mask, only the same seed. seed is taken mod 2**32.
training=False or rate=0 returns the input unchanged.
"""
from __future__ import annotations

from .. import backend as _backend
from . import _validate as v


def _args(op, a, name, rate, training, seed):
    v.arrays(op, **{name: a})
    v.float_dtype(op, **{name: a})
    rate = v.real(op, "rate", rate, 0.0, 1.0, high_open=True)
    training = v.flag(op, "training", training)
    if not v.is_int(seed):
        raise TypeError(f"{op}: seed must be an int, got {seed!r}")
    return rate, training, int(seed) & 0xFFFFFFFF


def dropout(x, rate, training, seed):
    """y = x * mask / (1 - rate) in training, else x."""
    rate, training, seed = _args("dropout", x, "x", rate, training, seed)
    if not training or rate == 0.0:
        return x
    return _backend.backend_for(x).dropout(_backend.get_array_module(x).ascontiguousarray(x),
                                           rate, seed)


def dropout_backward(dy, rate, training, seed):
    """dx = dy * mask / (1 - rate) with the forward's mask (same seed and shape)."""
    rate, training, seed = _args("dropout_backward", dy, "dy", rate, training, seed)
    if not training or rate == 0.0:
        return dy
    return _backend.backend_for(dy).dropout_backward(
        _backend.get_array_module(dy).ascontiguousarray(dy), rate, seed)
