"""Shared fixtures: the GPU marker skips with the reason a GPU backend is unusable."""
import numpy as np
import pytest

from cudacnn import backend


def _gpu_skip_reason(name="cupy"):
    return backend.availability()[name]


def pytest_collection_modifyitems(config, items):
    reason = _gpu_skip_reason("cupy")
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"GPU test skipped: {reason}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def cp():
    """The cupy module (GPU tests only)."""
    reason = _gpu_skip_reason("cupy")
    if reason is not None:
        pytest.skip(f"GPU test skipped: {reason}")
    import cupy

    return cupy


@pytest.fixture
def cuda_backend():
    """Skip unless our kernels (cudacnn._C) and a device are usable."""
    reason = _gpu_skip_reason("cuda")
    if reason is not None:
        pytest.skip(f"cuda backend test skipped: {reason}")
    return backend.load_backend("cuda")
