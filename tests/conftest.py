"""Shared fixtures: the GPU marker skips with the reason a GPU backend is unusable."""
import importlib.util
import os

import numpy as np
import pytest

from cudacnn import backend

# The oracles of the test extras (".[test]"; scipy comes with scikit-learn). Test files skip
# without them, so CI (CUDACNN_REQUIRE_TEST_EXTRAS=1, set by .ci/run) fails instead of
# passing with whole files skipped.
TEST_EXTRAS = ("torch", "onnx", "onnxruntime", "sklearn", "scipy", "safetensors", "pybind11")


def pytest_configure(config):
    if os.environ.get("CUDACNN_REQUIRE_TEST_EXTRAS") == "1":
        missing = [name for name in TEST_EXTRAS if importlib.util.find_spec(name) is None]
        if missing:
            raise pytest.UsageError(f"test extras missing: {missing}; install them with pip install '.[test]'")


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
