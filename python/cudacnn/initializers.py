"""Weight initialisers, Keras names and formulas, for PyTorch weight layouts.

Kernels are laid out (out, in, *receptive) -- Conv2D (filters, C/groups, kh, kw),
Dense (units, in) -- so fan_in = in * receptive and fan_out = out * receptive,
the same numbers Keras computes from its own layout. Values are drawn on the
CPU from ``cudacnn.random`` so a seed gives identical weights on every backend.
"""
from __future__ import annotations

import re

import numpy as np

from . import random as _random

# Keras truncates normals at two standard deviations; this rescales the std so
# the truncated distribution has the intended variance.
_TRUNCATED_STD_CORRECTION = 0.87962566103423978


def compute_fans(shape) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _truncated_normal(shape, std):
    # Drawn in float32 directly: large layers (VGG's 100M weights) initialise in seconds, not tens.
    gen = _random.generator()
    out = gen.standard_normal(shape, dtype=np.float32)
    outside = np.abs(out) > 2.0
    while outside.any():
        out[outside] = gen.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(out) > 2.0
    out *= np.float32(std)
    return out


def _uniform(shape, limit):
    out = _random.generator().random(shape, dtype=np.float32)
    out *= np.float32(2 * limit)
    out -= np.float32(limit)
    return out


def zeros(shape):
    return np.zeros(shape, np.float32)


def ones(shape):
    return np.ones(shape, np.float32)


def glorot_uniform(shape):
    fan_in, fan_out = compute_fans(shape)
    return _uniform(shape, np.sqrt(6.0 / (fan_in + fan_out)))


def glorot_normal(shape):
    fan_in, fan_out = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)) / _TRUNCATED_STD_CORRECTION)


def he_uniform(shape):
    fan_in, _ = compute_fans(shape)
    return _uniform(shape, np.sqrt(6.0 / fan_in))


def he_normal(shape):
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in) / _TRUNCATED_STD_CORRECTION)


def lecun_uniform(shape):
    fan_in, _ = compute_fans(shape)
    return _uniform(shape, np.sqrt(3.0 / fan_in))


def lecun_normal(shape):
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(1.0 / fan_in) / _TRUNCATED_STD_CORRECTION)


def random_normal(shape, stddev=0.05):
    return _random.generator().standard_normal(shape, dtype=np.float32) * np.float32(stddev)


def random_uniform(shape, limit=0.05):
    return _uniform(shape, limit)


_BY_NAME = {f.__name__: f for f in (zeros, ones, glorot_uniform, glorot_normal, he_uniform,
                                     he_normal, lecun_uniform, lecun_normal, random_normal,
                                     random_uniform)}
_BY_NAME["lecun"] = lecun_normal


def get(identifier):
    """An initialiser by Keras name, as a function ("he_normal") or class ("HeNormal") spells it,
    or a callable ``f(shape) -> ndarray``, returned as is."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        key = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", identifier).lower()  # HeNormal -> he_normal
        if key in _BY_NAME:
            return _BY_NAME[key]
    raise ValueError(f"unknown initializer {identifier!r}; choose one of {sorted(_BY_NAME)}")


def initialize(identifier, shape, dtype="float32", what="the weight") -> np.ndarray:
    """``shape`` values from ``identifier``; ``what`` names the weight in the error for a
    callable returning another shape (it would fail far from here, or build a wrong layer)."""
    shape = tuple(shape)
    value = get(identifier)(shape)
    if np.shape(value) != shape:
        raise ValueError(f"{what}: initializer {getattr(identifier, '__qualname__', identifier)!r} returned "
                         f"shape {np.shape(value)}, but the weight needs shape {shape}")
    return np.ascontiguousarray(value, dtype=dtype)  # no copy when already float32
