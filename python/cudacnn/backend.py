"""Backend discovery and selection.

One array type per place: ``numpy.ndarray`` on the CPU, ``cupy.ndarray`` on the
GPU. Each op call picks its backend from the arrays it is given:

* numpy arrays -> ``numpy`` (the readable, xp-generic reference);
* cupy arrays  -> ``cuda`` (our kernels in ``cudacnn._C``) when the extension
  was built and a device is present, else ``cupy`` (the reference on CuPy).

``set_backend(name)`` or the environment variable ``CUDACNN_BACKEND`` force one
backend: "cuda" or "cupy" for every call on GPU arrays (host arrays always run
on numpy), "numpy" to refuse GPU arrays; ``set_backend(None)`` returns to the
automatic choice.
"""
from __future__ import annotations

import importlib
import os
from functools import lru_cache

import numpy as np

BACKEND_NAMES = ("numpy", "cupy", "cuda")

_forced: str | None = None


@lru_cache(maxsize=None)
def _cupy():
    """The cupy module, or None when it cannot be imported."""
    try:
        import cupy  # noqa: F401
    except Exception:  # ImportError, or a CUDA library missing underneath
        return None
    return cupy


@lru_cache(maxsize=None)
def _extension():
    """The compiled ``cudacnn._C`` module, or None."""
    try:
        return importlib.import_module("cudacnn._C")
    except ImportError:
        return None


@lru_cache(maxsize=None)
def gpu_count() -> int:
    cp = _cupy()
    if cp is None:
        return 0
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def availability() -> dict[str, str | None]:
    """Map each backend name to None if usable, else the reason it is not."""
    cp = _cupy()
    gpu_reason = None
    if cp is None:
        gpu_reason = "cupy is not installed (pip install 'cudacnn[cuda]')"
    elif gpu_count() == 0:
        gpu_reason = "no CUDA device is visible"
    cuda_reason = gpu_reason
    if _extension() is None:
        cuda_reason = "the CUDA extension cudacnn._C was not built (no nvcc at install time?)"
    return {"numpy": None, "cupy": gpu_reason, "cuda": cuda_reason}


def available_backends() -> list[str]:
    return [name for name, reason in availability().items() if reason is None]


def set_backend(name: str | None) -> None:
    """Force one backend for every op (None: choose from the arrays)."""
    global _forced
    if name is not None:
        _check_usable(name)
    _forced = name


def forced_backend() -> str | None:
    return _forced or os.environ.get("CUDACNN_BACKEND") or None


def _check_usable(name: str) -> None:
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKEND_NAMES}")
    reason = availability()[name]
    if reason is not None:
        raise RuntimeError(f"backend {name!r} is not available: {reason}")


def is_gpu_array(a) -> bool:
    cp = _cupy()
    return cp is not None and isinstance(a, cp.ndarray)


def get_array_module(*arrays):
    """numpy or cupy, by the arrays given (numpy when none is a cupy array)."""
    for a in arrays:
        if is_gpu_array(a):
            return _cupy()
    return np


def backend_name_for(*arrays) -> str:
    """The backend that serves a call on these arrays."""
    on_gpu = any(is_gpu_array(a) for a in arrays if a is not None)
    forced = forced_backend()
    if not on_gpu:
        # Host arrays have one backend; a forced GPU backend governs GPU arrays only.
        return "numpy"
    if forced is not None:
        _check_usable(forced)
        if forced == "numpy":
            raise TypeError("backend 'numpy' was forced but the arrays are cupy (GPU) arrays; "
                            "move them with cupy.asnumpy() or model.to('cpu')")
        return forced
    return "cuda" if availability()["cuda"] is None else "cupy"


@lru_cache(maxsize=None)
def load_backend(name: str):
    """The backend module by name (``cudacnn.backends._<name>``)."""
    return importlib.import_module(f"cudacnn.backends._{name}")


def backend_for(*arrays):
    return load_backend(backend_name_for(*arrays))


def info() -> str:
    """Human-readable report of what is usable and why not."""
    lines = [f"cudacnn backends (forced: {forced_backend() or 'no, chosen per call from the arrays'}):"]
    for name, reason in availability().items():
        lines.append(f"  {name:6s} {'available' if reason is None else 'unavailable: ' + reason}")
    ext = _extension()
    if ext is not None:
        lines.append(f"  _C: built against CUDA runtime {ext.cuda_runtime_version}, "
                     f"{ext.device_count()} device(s) visible")
    cp = _cupy()
    if cp is not None and gpu_count():
        props = cp.cuda.runtime.getDeviceProperties(0)
        lines.append(f"  GPU 0: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}")
    return "\n".join(lines)
