"""Shared pieces of the ``cuda`` backend tests (tests/test_cuda_*.py).

* ``on_cuda``: forces the ``cuda`` backend (our kernels), poisons every
  allocation the backend makes with NaN (int arrays with -777) so an element a
  kernel forgets to write shows up, and fails the test if any call fell back to
  the ``cupy`` backend (the fallback logs a debug line on ``cudacnn.cuda``).
* ``assert_close``: compares with the float64 NumPy reference; the tolerance
  is relative to the largest reference magnitude (float32 accumulation error
  grows with the sum, not with each element).
"""
import logging

import numpy as np
import pytest

from cudacnn import backend

FALLBACK_MARK = "runs on the cupy backend"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _nan_empty(cp):
    real_empty = cp.empty

    def empty(shape, dtype=cp.float32):
        a = real_empty(shape, dtype=dtype)
        a.fill(np.nan if np.dtype(dtype).kind == "f" else -777)
        return a

    return empty


@pytest.fixture
def cuda_log():
    """Debug records of the ``cudacnn.cuda`` logger during the test."""
    logger = logging.getLogger("cudacnn.cuda")
    handler, old_level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.messages
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def on_cuda(cp, cuda_backend, monkeypatch, cuda_log):
    """cupy, with our kernels forced, outputs NaN-poisoned and fallbacks forbidden."""
    from cudacnn.backends import _cuda_common

    monkeypatch.delenv("CUDACNN_CONV_ALGO", raising=False)
    monkeypatch.setattr(_cuda_common, "empty", _nan_empty(cp))
    backend.set_backend("cuda")
    yield cp
    backend.set_backend(None)
    fallbacks = [m for m in cuda_log if FALLBACK_MARK in m]
    assert not fallbacks, f"calls fell back to the cupy backend: {fallbacks}"


def assert_close(got, expected, tol, what="", scale=None):
    """max |got - expected| <= tol * max |expected| (and NaN-free), elementwise report on failure.

    `scale` replaces max |expected| for results that are zero in exact
    arithmetic (e.g. the gradient of a bias followed by batch norm), whose
    float32 value is rounding noise on the scale of its neighbours.
    """
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != reference {expected.shape}"
    assert not np.isnan(got).any(), f"{what}: NaN in the result (an element left unwritten?)"
    if scale is None:
        scale = float(np.abs(expected).max())
    scale = max(scale, 1e-30)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * scale, err_msg=what)


def to_gpu(cp, *arrays, dtype=np.float32):
    return [None if a is None else cp.asarray(np.asarray(a, dtype=dtype)) for a in arrays]


def to_cpu(cp, *arrays):
    return [None if a is None else cp.asnumpy(a) for a in arrays]
