"""Argument checks and normalisation shared by every op.

Each op validates once, here, before any backend runs, so every backend
raises the same exception with the same message. Messages start with the op
name and quote the offending shapes or values.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import backend as _backend

CONV_ALGOS = ("auto", "direct", "im2col", "winograd")


# Types whose equal values mean the same argument: 1 == 1.0 == True, but only 1 is
# a valid stride, so a cache keyed on equality must see only these.
_PLAIN_TYPES = frozenset((int, str, type(None)))


def _plain(value) -> bool:
    """An int, str or None, or a flat tuple of them (shapes, strides, padding pairs)."""
    kind = type(value)
    return kind in _PLAIN_TYPES or (kind is tuple and _PLAIN_TYPES.issuperset(map(type, value)))


def memoized(check):
    """``check`` (a pure function of shapes and hyper-parameters) with a cache of its results.

    A training step makes the same calls with the same geometry every batch; the
    cache answers a repeat in well under a microsecond instead of re-validating.
    Only plain arguments (see ``_plain``) are cached, others (lists, numpy ints)
    are checked on every call, and a call that raises is never cached, so bad
    arguments raise every time.
    """
    cached = functools.lru_cache(maxsize=4096)(check)

    @functools.wraps(check)
    def call(*args):
        return cached(*args) if all(map(_plain, args)) else check(*args)

    return call


def _kind(on_gpu: bool) -> str:
    return "cupy (GPU)" if on_gpu else "numpy (CPU)"


def arrays(op: str, **named):
    """Check that every non-None argument is an array on one device; return their module.

    All arrays must be numpy arrays or all cupy arrays (a TypeError names the
    first one that differs), and none may be empty.
    """
    first_name = first = first_on_gpu = None
    for name, a in named.items():
        if a is None:
            continue
        on_gpu = _backend.is_gpu_array(a)
        if not (on_gpu or isinstance(a, np.ndarray)):
            raise TypeError(f"{op}: {name} must be a numpy or cupy array, got {type(a).__name__}")
        if a.size == 0:
            raise ValueError(f"{op}: {name} is empty, shape {tuple(a.shape)}")
        if first_name is None:
            first_name, first, first_on_gpu = name, a, on_gpu
        elif on_gpu != first_on_gpu:
            raise TypeError(f"{op}: {name} is a {_kind(on_gpu)} array but {first_name} is a "
                            f"{_kind(first_on_gpu)} array; put every argument on the same device")
    return _backend.get_array_module(first)


# dtype objects, not names: dtype.name is computed in Python on every access.
_GPU_FLOATS = (np.dtype(np.float32),)
_CPU_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype(op: str, **named):
    """All named arrays share one float dtype: float32, or float64 on numpy only."""
    first_name = first = None
    for name, a in named.items():
        if a is None:
            continue
        if first is None:
            first_name, first = name, a
            on_gpu = _backend.is_gpu_array(a)
            allowed = _GPU_FLOATS if on_gpu else _CPU_FLOATS
            if a.dtype not in allowed:
                raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected "
                                + " or ".join(d.name for d in allowed) + f" for {_kind(on_gpu)} arrays")
        elif a.dtype != first.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype.name} but {first_name} has "
                            f"{first.dtype.name}; all arrays must share one dtype")
    return first.dtype


def ndim(op: str, name: str, a, allowed, layout: str) -> None:
    allowed = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    if a.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{op}: {name} must be {want} {layout}, got shape {tuple(a.shape)}")


def same_shape(op: str, name: str, a, ref_name: str, ref) -> None:
    if tuple(a.shape) != tuple(ref.shape):
        raise ValueError(f"{op}: {name} has shape {tuple(a.shape)} but {ref_name} has "
                         f"shape {tuple(ref.shape)}; they must match")


def contiguous(op: str, name: str, a) -> None:
    """Arrays updated in place must be C-contiguous (the GPU kernels write them flat)."""
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {name} (shape {tuple(a.shape)}) is updated in place and "
                         f"must be C-contiguous")


# Concrete types first: ABC checks (numbers.Integral) cost microseconds per argument.
_INT_TYPES = (int, np.integer)
_REAL_TYPES = (int, float, np.integer, np.floating)


def is_int(v) -> bool:
    return isinstance(v, _INT_TYPES) and not isinstance(v, (bool, np.bool_))


def is_real(v) -> bool:
    return isinstance(v, _REAL_TYPES) and not isinstance(v, (bool, np.bool_))


def integer(op: str, name: str, value, minimum: int) -> int:
    if not is_int(value):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value}")
    return int(value)


def real(op: str, name: str, value, low=None, high=None, *, low_open=False, high_open=False) -> float:
    """A finite real number inside [low, high] (an end excluded when *_open)."""
    if (not isinstance(value, _REAL_TYPES) or isinstance(value, (bool, np.bool_))
            or not math.isfinite(value)):
        raise TypeError(f"{op}: {name} must be a finite real number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        raise ValueError(f"{op}: {name} must be in {lo or '(-inf, '}{hi or 'inf)'}, got {value}")
    return value


def pair(op: str, name: str, value, minimum: int, size: int = 2) -> tuple:
    """An int or a tuple of `size` ints, each >= minimum, as a tuple."""
    items = (value,) * size if is_int(value) else value
    if not isinstance(items, (tuple, list)) or len(items) != size or not all(is_int(v) for v in items):
        form = "an int" + (f" or a tuple of {size} ints" if size > 1 else " or a 1-tuple")
        raise TypeError(f"{op}: {name} must be {form}, got {value!r}")
    items = tuple(int(v) for v in items)
    if any(v < minimum for v in items):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {name} must be {kind}, got {value!r}")
    return items


def _same_pads(size: int, kernel: int, stride: int) -> tuple:
    """Keras/TF 'same': out = ceil(size/stride); any odd extra pad goes after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def padding(op: str, value, spatial, kernel, stride, dilation=(1, 1)) -> tuple:
    """Normalise padding to (top, bottom, left, right).

    ``value``: int, (ph, pw), "valid" or "same"; ``kernel`` is the undilated
    kernel, ``spatial`` the input (H, W).
    """
    if isinstance(value, str):
        mode = value.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
            top, bottom = _same_pads(spatial[0], eff[0], stride[0])
            left, right = _same_pads(spatial[1], eff[1], stride[1])
            return (top, bottom, left, right)
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {value!r}")
    ph, pw = pair(op, "padding", value, minimum=0)
    return (ph, ph, pw, pw)


def window_output(op: str, spatial, kernel, stride, pads, dilation=(1, 1)) -> tuple:
    """Output (OH, OW) of a sliding window; ValueError when the window does not fit."""
    H, W = spatial
    eff = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    padded = (H + pads[0] + pads[1], W + pads[2] + pads[3])
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, eff, stride))
    if eff[0] > padded[0] or eff[1] > padded[1]:
        dilated = f" (kernel {tuple(kernel)}, dilation {tuple(dilation)})" if tuple(dilation) != (1, 1) else ""
        raise ValueError(
            f"{op}: kernel {eff[0]}x{eff[1]}{dilated} is larger than the padded input "
            f"{padded[0]}x{padded[1]} (input {H}x{W}, padding {tuple(pads)}), "
            f"so the output would be {out[0]}x{out[1]} (below 1)")
    return out


def pool_padding(op: str, pads, kernel) -> None:
    """Pooling pads may be at most half the kernel (so no window is all padding)."""
    halves = (kernel[0] // 2, kernel[0] // 2, kernel[1] // 2, kernel[1] // 2)
    if any(p > h for p, h in zip(pads, halves)):
        raise ValueError(f"{op}: padding {tuple(pads)} (top, bottom, left, right) must be at most "
                         f"half the kernel {tuple(kernel)}, i.e. at most ({kernel[0] // 2}, {kernel[1] // 2})")


# What a conv2d/linear may apply in its own epilogue (the kernels fuse it).
FUSED_ACTIVATIONS = (None, "relu")


def fused_activation(op: str, value):
    if value not in FUSED_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be None or 'relu' (the activation the kernels fuse), "
                         f"got {value!r}")
    return value


def flag(op: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {value!r}")
    return bool(value)
