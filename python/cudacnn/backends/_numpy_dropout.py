"""Inverted dropout with a counter-based RNG, so every backend draws the same mask.

keep element i (flat, C order) iff uniform(seed, i) >= rate, where
uniform(seed, i) = (lowbias32(uint32(i) + uint32(seed) * 0x9E3779B9) >> 8) * 2**-24
is computed in float32 and compared with float32(rate); kept elements are
multiplied by scale = dtype(1 / (1 - rate)) (1/(1-rate) rounded once from double).
"""
from __future__ import annotations

from ..backend import get_array_module

_GOLDEN = 0x9E3779B9


def _lowbias32(h, xp):
    """Chris Wellons' lowbias32 integer hash, in place on a uint32 array."""
    h ^= h >> xp.uint32(16)
    h *= xp.uint32(0x7FEB352D)
    h ^= h >> xp.uint32(15)
    h *= xp.uint32(0x846CA68B)
    h ^= h >> xp.uint32(16)
    return h


def uniform(seed, size, xp):
    """float32 uniforms in [0, 1) for counters 0..size-1 (24 random bits each)."""
    h = xp.arange(size, dtype=xp.uint32)
    h += xp.uint32((seed * _GOLDEN) & 0xFFFFFFFF)
    h = _lowbias32(h, xp)
    return (h >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0 ** -24)


def _masked_scale(a, rate, seed):
    xp = get_array_module(a)
    keep = uniform(seed, a.size, xp) >= xp.float32(rate)
    scale = a.dtype.type(1.0 / (1.0 - rate))
    return a * (keep.reshape(a.shape) * scale)


def dropout(x, rate, seed):
    return _masked_scale(x, rate, seed)


def dropout_backward(dy, rate, seed):
    return _masked_scale(dy, rate, seed)
