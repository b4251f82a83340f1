"""One seeded source of randomness for initialisers, shuffling, dropout and augmentation.

``set_seed(n)`` resets it, so two CPU runs started after the same ``set_seed``
are bitwise identical. Random numbers are always drawn on the CPU (a NumPy
``Generator``) and moved to the GPU when needed, so a seed gives the same
initial weights on every backend.
"""
from __future__ import annotations

import random as _py_random

import numpy as np

_generator = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Seed cudacnn's generator (and Python's and NumPy's global ones, as Keras does)."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    _py_random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def generator() -> np.random.Generator:
    """The generator every random draw in cudacnn comes from."""
    return _generator


def next_seed() -> int:
    """A fresh uint32 seed (for counter-based RNGs such as dropout's)."""
    return int(_generator.integers(0, 2**32, dtype=np.uint64))
