"""Backend discovery and selection (cudacnn.backend), and the backends' shared function list."""
import importlib

import numpy as np
import pytest

from cudacnn import backend, ops
from cudacnn.backends import BACKEND_FUNCTIONS


class FakeGpuArray:
    """Stands in for a cupy array: selection only asks whether an array lives on the GPU."""


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend cupy arrays exist; the test sets which GPU backends are available."""
    monkeypatch.setattr(backend, "is_gpu_array", lambda a: isinstance(a, FakeGpuArray))
    monkeypatch.delenv("CUDACNN_BACKEND", raising=False)
    state = {"numpy": None, "cupy": None, "cuda": None}
    monkeypatch.setattr(backend, "availability", lambda: dict(state))
    yield state
    backend.set_backend(None)


@pytest.fixture(autouse=True)
def automatic_choice(monkeypatch):
    monkeypatch.delenv("CUDACNN_BACKEND", raising=False)
    backend.set_backend(None)
    yield
    backend.set_backend(None)


def test_host_arrays_run_on_numpy():
    x = np.zeros(3, np.float32)
    assert backend.backend_name_for(x, None) == "numpy"
    assert backend.backend_for(x).__name__ == "cudacnn.backends._numpy"


def test_gpu_arrays_prefer_our_kernels_then_cupy(fake_gpu):
    g = FakeGpuArray()
    assert backend.backend_name_for(np.zeros(1), g) == "cuda"
    fake_gpu["cuda"] = "the CUDA extension cudacnn._C was not built"
    assert backend.backend_name_for(g) == "cupy"


def test_forced_backend_governs_gpu_arrays_only(fake_gpu):
    backend.set_backend("cupy")
    assert backend.backend_name_for(FakeGpuArray()) == "cupy"
    assert backend.backend_name_for(np.zeros(1)) == "numpy"
    backend.set_backend("numpy")
    with pytest.raises(TypeError, match="'numpy' was forced but the arrays are cupy"):
        backend.backend_name_for(FakeGpuArray())


def test_environment_variable_forces_a_backend(fake_gpu, monkeypatch):
    monkeypatch.setenv("CUDACNN_BACKEND", "cupy")
    assert backend.forced_backend() == "cupy"
    assert backend.backend_name_for(FakeGpuArray()) == "cupy"
    monkeypatch.setenv("CUDACNN_BACKEND", "tpu")
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        backend.backend_name_for(FakeGpuArray())


def test_unknown_or_unusable_backends_are_refused_with_the_reason(fake_gpu):
    with pytest.raises(ValueError, match="unknown backend 'opencl'"):
        backend.set_backend("opencl")
    fake_gpu["cuda"] = "no CUDA device is visible"
    with pytest.raises(RuntimeError, match="'cuda' is not available: no CUDA device is visible"):
        backend.set_backend("cuda")


def test_availability_and_info_say_why_not():
    reasons = backend.availability()
    assert reasons["numpy"] is None and set(reasons) == {"numpy", "cupy", "cuda"}
    assert "numpy" in backend.available_backends()
    text = backend.info()
    for name, reason in reasons.items():
        assert name in text
        if reason is not None:
            assert reason in text


@pytest.mark.parametrize("module", ["cudacnn.backends._numpy", "cudacnn.backends._cupy", "cudacnn.ops"])
def test_every_backend_function_is_defined(module):
    mod = importlib.import_module(module)
    missing = [name for name in BACKEND_FUNCTIONS if not callable(getattr(mod, name, None))]
    assert not missing, f"{module} lacks {missing}"


def test_cuda_backend_defines_every_function():
    pytest.importorskip("cupy", reason="the cuda backend module imports cupy")
    if backend._extension() is None:
        pytest.skip("cudacnn._C was not built")
    mod = importlib.import_module("cudacnn.backends._cuda")
    missing = [name for name in BACKEND_FUNCTIONS if not callable(getattr(mod, name, None))]
    assert not missing, f"cudacnn.backends._cuda lacks {missing}"


def test_ops_export_the_contract():
    assert set(BACKEND_FUNCTIONS) | {"conv1d", "conv1d_backward"} == set(ops.__all__)
