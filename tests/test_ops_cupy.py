"""The xp-generic reference on CuPy (the ``cupy`` backend) against the same code on NumPy.

GPU only: run with ``pytest -q tests/test_ops_cupy.py`` on a machine with CuPy and a device.
"""
import numpy as np
import pytest

from cudacnn import backend, ops
from test_ops_float32 import OPS, _as, _inputs

pytestmark = pytest.mark.gpu


@pytest.fixture
def on_cupy_backend(cp):
    backend.set_backend("cupy")
    yield cp
    backend.set_backend(None)


def _to_gpu(cp, inputs):
    return {k: cp.asarray(v) for k, v in inputs.items()}


def _results(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", sorted(OPS))
def test_cupy_backend_matches_numpy(on_cupy_backend, name):
    cp = on_cupy_backend
    inputs = _as(_inputs(11), np.float32)
    gpu_inputs = _to_gpu(cp, inputs)
    expected = _results(OPS[name](inputs))
    got = _results(OPS[name](gpu_inputs))
    for g, e in zip(got, expected):
        assert isinstance(g, cp.ndarray) and g.dtype == np.float32
        np.testing.assert_allclose(cp.asnumpy(g), e, rtol=1e-4, atol=1e-5)


def test_max_pool_indices_and_dropout_mask_are_identical(on_cupy_backend):
    cp = on_cupy_backend
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 7)).astype(np.float32)
    y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    y_gpu, idx_gpu = ops.max_pool2d(cp.asarray(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(cp.asnumpy(y_gpu), y)
    np.testing.assert_array_equal(cp.asnumpy(idx_gpu), idx)
    np.testing.assert_array_equal(cp.asnumpy(ops.dropout(cp.asarray(x), 0.37, True, 99)),
                                  ops.dropout(x, 0.37, True, 99))


@pytest.mark.parametrize("update", ["sgd", "rmsprop", "adam"])
def test_cupy_optimizer_updates_match_numpy(on_cupy_backend, update):
    cp = on_cupy_backend
    rng = np.random.default_rng(4)
    p, g = rng.standard_normal((2, 5, 3)).astype(np.float32), rng.standard_normal((2, 5, 3)).astype(np.float32)
    cpu = [p.copy(), np.zeros_like(p), np.zeros_like(p)]
    gpu = [cp.asarray(a) for a in cpu]
    for arrays, grad in ((cpu, g), (gpu, cp.asarray(g))):
        for step in (1, 2):
            if update == "sgd":
                ops.sgd_update(arrays[0], grad, arrays[1], 0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
            elif update == "rmsprop":
                ops.rmsprop_update(arrays[0], grad, arrays[1], 0.01, weight_decay=0.01)
            else:
                ops.adam_update(arrays[0], grad, arrays[1], arrays[2], 0.01, weight_decay=0.01, step=step)
    for c, d in zip(cpu, gpu):
        np.testing.assert_allclose(cp.asnumpy(d), c, rtol=1e-5, atol=1e-6)


def test_batch_norm_running_stats_update_on_gpu(on_cupy_backend):
    cp = on_cupy_backend
    x = np.random.default_rng(5).standard_normal((4, 3, 5, 5)).astype(np.float32)
    stats_cpu = [np.zeros(3, np.float32), np.ones(3, np.float32)]
    stats_gpu = [cp.asarray(a) for a in stats_cpu]
    gamma, beta = np.ones(3, np.float32), np.zeros(3, np.float32)
    ops.batch_norm(x, gamma, beta, *stats_cpu, True)
    ops.batch_norm(cp.asarray(x), cp.asarray(gamma), cp.asarray(beta), *stats_gpu, True)
    for c, d in zip(stats_cpu, stats_gpu):
        np.testing.assert_allclose(cp.asnumpy(d), c, rtol=1e-5, atol=1e-6)
