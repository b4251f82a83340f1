"""Plumbing shared by the ``cuda`` backend modules: the extension, the current
stream, output allocation, and the visible fallback to the ``cupy`` backend.

Every output and workspace is allocated here with CuPy (so memory comes from
CuPy's pool and a training step can be captured in a CUDA graph), and every
kernel is launched on CuPy's current stream.
"""
from __future__ import annotations

import functools
import logging

import cupy as cp

from .. import backend as _backend

log = logging.getLogger("cudacnn.cuda")

# Largest tensor our kernels index (32-bit element offsets); bigger ones go to cupy.
MAX_ELEMENTS = 2**31 - 1


def ext():
    """The compiled ``cudacnn._C`` module."""
    module = _backend._extension()
    if module is None:  # backend selection never picks "cuda" then; a direct import gets this
        raise RuntimeError("the cuda backend needs the compiled extension cudacnn._C")
    return module


def stream() -> int:
    """cudaStream_t of CuPy's current stream, as an integer."""
    return cp.cuda.get_current_stream().ptr


@functools.lru_cache(maxsize=None)
def _l2_bytes(device: int) -> int:
    return int(cp.cuda.runtime.getDeviceProperties(device)["l2CacheSize"])


def l2_bytes() -> int:
    """L2 cache size of the current device, in bytes."""
    return _l2_bytes(cp.cuda.runtime.getDevice())


def empty(shape, dtype=cp.float32):
    """Uninitialised device array for a kernel to fill (tests poison it with NaN)."""
    return cp.empty(shape, dtype=dtype)


def ptr(a) -> int:
    """Device pointer of an array, 0 for None."""
    return 0 if a is None else a.data.ptr


def f32(a):
    """C-contiguous float32 view or copy (None stays None)."""
    return None if a is None else cp.ascontiguousarray(a, dtype=cp.float32)


def unsupported(*arrays) -> str | None:
    """Why our kernels cannot take these arrays (None when they can)."""
    for a in arrays:
        if a is None:
            continue
        if a.dtype != cp.float32:
            return f"dtype {a.dtype.name} (kernels are float32)"
        if a.size > MAX_ELEMENTS:
            return f"an array of {a.size} elements (kernels index at most 2**31-1)"
    return None


def fallback(op: str, reason: str):
    """The cupy backend, after saying why at debug level (never silent)."""
    log.debug("cuda backend: %s runs on the cupy backend: %s", op, reason)
    return _backend.load_backend("cupy")
