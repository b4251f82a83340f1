"""Our pooling and batch-norm kernels against the NumPy reference (GPU only).

Tolerances: max pooling is exact (values and int32 indices identical to the
float32 reference, ties included: the first maximum wins); average pooling
1e-5; global average pooling 1e-5; batch norm 1e-5 for the forward and the
running statistics, 1e-4 for the backward (two chained reductions), all
relative to the largest reference magnitude. Outputs are NaN-poisoned before
each kernel runs (``on_cuda``).
"""
import numpy as np
import pytest

from cudacnn import ops
from cuda_helpers import assert_close, cuda_log, on_cuda, to_cpu, to_gpu  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gpu

# (x shape, kernel, stride, padding)
POOL_CASES = {
    "2x2_batch1_odd": ((1, 3, 7, 9), 2, None, 0),
    "3x3_stride2_pad1_overlap": ((2, 5, 11, 8), 3, 2, 1),
    "same_stride2": ((2, 3, 9, 10), 3, 2, "same"),
    "rect_kernel": ((3, 2, 10, 7), (3, 2), (2, 1), (1, 0)),
    "kernel1": ((2, 3, 5, 4), 1, 1, 0),
    "2x2_tiling_windows": ((2, 3, 8, 6), 2, None, 0),  # backward: one thread per window
    "2x2_output_pairs": ((2, 3, 6, 12), 2, None, 0),  # W % 4 == 0: float4 rows, two outputs per thread
    "3x2_tiling_windows": ((1, 2, 9, 8), (3, 2), None, 0),
    "global_like": ((2, 4, 6, 5), (6, 5), 1, 0),
}


def _pool_data(shape, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: many windows have tied maxima
        return rng.integers(0, 3, size=shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_max_pool2d_is_exact(on_cuda, name, ties):
    cp = on_cuda
    shape, k, s, p = POOL_CASES[name]
    x = _pool_data(shape, ties=ties)
    y_ref, idx_ref = ops.max_pool2d(x, k, s, p, return_indices=True)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    dx_ref = ops.max_pool2d_backward(dy.astype(np.float64), x.astype(np.float64), k, s, p)
    gx, gdy = to_gpu(cp, x, dy)
    y, idx = ops.max_pool2d(gx, k, s, p, return_indices=True)
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(cp.asnumpy(y), y_ref)
    np.testing.assert_array_equal(cp.asnumpy(idx), idx_ref)
    assert_close(cp.asnumpy(ops.max_pool2d_backward(gdy, gx, k, s, p, indices=idx)), dx_ref, 1e-6, "dx (indices)")
    assert_close(cp.asnumpy(ops.max_pool2d_backward(gdy, gx, k, s, p)), dx_ref, 1e-6, "dx (recomputed)")


def test_max_pool2d_2x2_with_nans_is_the_same_on_both_paths(on_cuda):
    """NaN wins its window (y = NaN, the index points at a NaN), other windows match the reference
    exactly; an input that starts off a 16-byte boundary takes the one-output-per-thread kernel
    instead of the float4 one, with bit-identical results."""
    cp = on_cuda
    x = _pool_data((2, 2, 4, 8), seed=3)
    x[0, 0, 0, 1] = x[0, 1, 3, 6] = x[1, 0, 2, 4] = x[1, 0, 3, 5] = np.nan
    y_ref, idx_ref = ops.max_pool2d(x, 2, return_indices=True)
    dy = cp.asarray(np.random.default_rng(4).standard_normal(y_ref.shape).astype(np.float32))
    results = []
    for offset in (0, 1):  # aligned (float4 rows) and unaligned
        flat = cp.empty(x.size + offset, dtype=cp.float32)
        gx = flat[offset:].reshape(x.shape)
        gx[...] = cp.asarray(x)
        y, idx = ops.max_pool2d(gx, 2, return_indices=True)
        results.append([cp.asnumpy(a) for a in (y, idx, ops.max_pool2d_backward(dy, gx, 2, indices=idx))])
    for got, other in zip(*results):
        np.testing.assert_array_equal(got, other)
    y, idx, _ = results[0]
    np.testing.assert_array_equal(y, y_ref)
    nan_window = np.isnan(y_ref)
    np.testing.assert_array_equal(idx[~nan_window], idx_ref[~nan_window])
    planes = x.reshape(4, -1)
    assert np.isnan(np.take_along_axis(planes, idx.reshape(4, -1), axis=1)[nan_window.reshape(4, -1)]).all()


@pytest.mark.parametrize("include", [True, False])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_avg_pool2d(on_cuda, name, include):
    cp = on_cuda
    shape, k, s, p = POOL_CASES[name]
    x = _pool_data(shape)
    x64 = x.astype(np.float64)
    y_ref = ops.avg_pool2d(x64, k, s, p, count_include_pad=include)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape)
    dx_ref = ops.avg_pool2d_backward(dy, x64, k, s, p, count_include_pad=include)
    gx, gdy = to_gpu(cp, x, dy)
    assert_close(cp.asnumpy(ops.avg_pool2d(gx, k, s, p, count_include_pad=include)), y_ref, 1e-5, "forward")
    assert_close(cp.asnumpy(ops.avg_pool2d_backward(gdy, gx, k, s, p, count_include_pad=include)), dx_ref, 1e-5,
                 "backward")


@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (5, 9, 1, 1), (3, 70, 13, 11), (2, 3, 40, 41)])
def test_global_avg_pool2d(on_cuda, shape):
    cp = on_cuda
    x = _pool_data(shape)
    y_ref = ops.global_avg_pool2d(x.astype(np.float64))
    dy = np.random.default_rng(1).standard_normal(y_ref.shape)
    dx_ref = ops.global_avg_pool2d_backward(dy, x.astype(np.float64))
    gx, gdy = to_gpu(cp, x, dy)
    assert_close(cp.asnumpy(ops.global_avg_pool2d(gx)), y_ref, 1e-5, "forward")
    assert_close(cp.asnumpy(ops.global_avg_pool2d_backward(gdy, gx)), dx_ref, 1e-5, "backward")


BN_SHAPES = {
    "4d_odd": (3, 5, 7, 6),
    "4d_batch1": (1, 3, 4, 5),
    "2d": (7, 9),
    "2d_two_rows": (2, 300),
    "4d_split_reduction": (4, 3, 40, 41),  # more than 4096 values per channel: several blocks each
    "4d_many_channels": (2, 300, 3, 3),
    "4d_plane_float4": (2, 3, 16, 20),  # planes of >= 256 values, a multiple of 4: vector path
    "4d_plane_scalar": (2, 3, 17, 19),  # planes of >= 256 values, not a multiple of 4
    "4d_items_float4": (3, 5, 48, 64),  # 3 items of 4096 values per channel, the last cut short
    "4d_items_across_planes": (5, 4, 30, 31),  # scalar path; items begin and end inside planes
    "2d_one_row": (1, 9),  # one value per channel: variance 0, as a last batch of one sample gives
    "4d_one_value": (1, 3, 1, 1),
}

# How far the second read trails the reduction (csrc/batchnorm.cu): the
# default (a quarter of the L2: for these sizes, every reduction first, as
# with 0), and 1 byte, which the launcher raises to its shortest lag (a
# channel's items plus half the blocks the device holds at once; in the
# emulator, which runs one block at a time, a channel's items), where reduce
# and apply items alternate the most.
BN_LAGS = {"default": None, "two_pass": 0, "shortest": 1}


@pytest.fixture(params=sorted(BN_LAGS))
def bn_lag(request, on_cuda, monkeypatch):
    from cudacnn.backends import _cuda_norm
    monkeypatch.setattr(_cuda_norm, "LAG_BYTES", BN_LAGS[request.param])
    return on_cuda


def _bn_data(shape, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)  # a mean far from 0 tests the variance
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    running_mean = rng.standard_normal(C).astype(np.float32)
    running_var = rng.uniform(0.5, 2.0, C).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    return x, gamma, beta, running_mean, running_var, dy


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", sorted(BN_SHAPES))
def test_batch_norm(bn_lag, name, training):
    cp = bn_lag
    x, gamma, beta, rm, rv, dy = _bn_data(BN_SHAPES[name])
    ref_rm, ref_rv = rm.astype(np.float64), rv.astype(np.float64)
    y_ref, cache_ref = ops.batch_norm(x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
                                      ref_rm, ref_rv, training, momentum=0.1, eps=1e-3)
    dx_ref, dgamma_ref, dbeta_ref = ops.batch_norm_backward(dy.astype(np.float64), cache_ref)
    gx, ggamma, gbeta, grm, grv, gdy = to_gpu(cp, x, gamma, beta, rm, rv, dy)
    y, cache = ops.batch_norm(gx, ggamma, gbeta, grm, grv, training, momentum=0.1, eps=1e-3)
    assert_close(cp.asnumpy(y), y_ref, 1e-5, "y")
    assert_close(cp.asnumpy(cache["mean"]), cache_ref["mean"], 1e-5, "mean")
    assert_close(cp.asnumpy(cache["inv_std"]), cache_ref["inv_std"], 1e-5, "inv_std")
    assert_close(cp.asnumpy(grm), ref_rm, 1e-5, "running_mean")
    assert_close(cp.asnumpy(grv), ref_rv, 1e-5, "running_var")
    dx, dgamma, dbeta = to_cpu(cp, *ops.batch_norm_backward(gdy, cache))
    assert_close(dx, dx_ref, 1e-4, "dx")
    assert_close(dgamma, dgamma_ref, 1e-4, "dgamma")
    assert_close(dbeta, dbeta_ref, 1e-4, "dbeta")


@pytest.mark.parametrize("lag", ["default", "shortest"])
@pytest.mark.parametrize("shape", [(16, 64, 64, 64), (16, 64, 63, 65)], ids=["float4", "scalar"])
def test_batch_norm_interleaves_its_passes_on_a_gpu(on_cuda, monkeypatch, shape, lag):
    """More items than the lag and than the blocks a GPU holds at once: reduce and
    apply items run side by side, on many SMs, so the ready flags and the partials'
    fences are what keep the apply items right (the small shapes above finish every
    reduction before the first apply item on a GPU). Too slow to emulate."""
    cp = on_cuda
    from cudacnn.backends import _cuda_norm
    monkeypatch.setattr(_cuda_norm, "LAG_BYTES", BN_LAGS[lag])
    if getattr(cp, "EMULATED", False):
        pytest.skip("16 MB tensors take minutes emulated; the small shapes above interleave there")
    x, gamma, beta, rm, rv, dy = _bn_data(shape)
    ref_rm, ref_rv = rm.astype(np.float64), rv.astype(np.float64)
    y_ref, cache_ref = ops.batch_norm(x.astype(np.float64), gamma.astype(np.float64), beta.astype(np.float64),
                                      ref_rm, ref_rv, True)
    dx_ref, dgamma_ref, dbeta_ref = ops.batch_norm_backward(dy.astype(np.float64), cache_ref)
    runs = []
    for _ in range(2):
        gx, ggamma, gbeta, grm, grv, gdy = to_gpu(cp, x, gamma, beta, rm, rv, dy)
        y, cache = ops.batch_norm(gx, ggamma, gbeta, grm, grv, True)
        runs.append(to_cpu(cp, y, grm, grv, *ops.batch_norm_backward(gdy, cache)))
    for name, ours, ref, tol in zip(("y", "running_mean", "running_var", "dx", "dgamma", "dbeta"), runs[0],
                                    (y_ref, ref_rm, ref_rv, dx_ref, dgamma_ref, dbeta_ref),
                                    (1e-5, 1e-5, 1e-5, 1e-4, 1e-4, 1e-4)):
        assert_close(ours, ref, tol, name)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_statistics_of_a_large_mean_and_small_spread(bn_lag):
    """A mean far from 0 and a small spread: the variance must not cancel away (sums of x^2 would lose it)."""
    cp = bn_lag
    shape = (4, 3, 40, 41)
    x = (1000 + 0.01 * np.random.default_rng(1).standard_normal(shape)).astype(np.float32)
    C = shape[1]
    ref_rm, ref_rv = np.zeros(C), np.ones(C)
    _, cache_ref = ops.batch_norm(x.astype(np.float64), np.ones(C), np.zeros(C), ref_rm, ref_rv, True, eps=1e-8)
    grm, grv = cp.zeros(C, dtype=np.float32), cp.ones(C, dtype=np.float32)
    _, cache = ops.batch_norm(cp.asarray(x), cp.ones(C, dtype=np.float32), cp.zeros(C, dtype=np.float32), grm, grv,
                              True, eps=1e-8)
    assert_close(cp.asnumpy(cache["mean"]), cache_ref["mean"], 1e-6, "mean")
    assert_close(cp.asnumpy(cache["inv_std"]), cache_ref["inv_std"], 1e-3, "inv_std")
    assert_close(cp.asnumpy(grv), ref_rv, 1e-3, "running_var")


def test_batch_norm_is_deterministic(bn_lag):
    cp = bn_lag
    x, gamma, beta, rm, rv, dy = _bn_data(BN_SHAPES["4d_items_float4"])
    outs = []
    for _ in range(2):
        gx, ggamma, gbeta, grm, grv, gdy = to_gpu(cp, x, gamma, beta, rm, rv, dy)
        y, cache = ops.batch_norm(gx, ggamma, gbeta, grm, grv, True)
        outs.append([y, grm, grv, *ops.batch_norm_backward(gdy, cache)])
    for a, b in zip(*outs):
        assert cp.array_equal(a, b)
