"""Our SGEMM (linear), softmax / softmax-cross-entropy and activation kernels
against the NumPy reference (GPU only).

Tolerances (relative to the largest reference magnitude): 1e-4 for GEMM-based
results (linear, raw sgemm); 1e-5 for softmax, cross-entropy and activations.
Outputs are NaN-poisoned before each kernel runs (``on_cuda``).
"""
import numpy as np
import pytest

from cudacnn import ops
from cuda_helpers import assert_close, cuda_log, on_cuda, to_cpu, to_gpu  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gpu

LINEAR_CASES = {
    "tiny": ((5, 7), 3, True),
    "batch1": ((1, 33), 10, True),
    "leading_axes": ((2, 3, 7), 4, True),
    "no_bias": ((65, 130), 70, False),
    "large_128_tile": ((1100, 70), 1030, True),
    # Split-K (csrc/linear.cu): a reduction much longer than the output is
    # cut into ranges whose partial sums are added (with the bias) afterwards.
    "long_reduction": ((3, 5000), 2, True),
    "split_k_ragged_last_range": ((64, 2001), 33, True),
    "split_k_data_gradient": ((3, 5), 1000, True),
}


def _linear_data(name, seed):
    """x, w, b (or None) and dy of a LINEAR_CASES case, float32."""
    x_shape, out, bias = LINEAR_CASES[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal((out, x_shape[-1])).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32) if bias else None
    dy = rng.standard_normal(x_shape[:-1] + (out,)).astype(np.float32)
    return x, w, b, dy


def _f64(a):
    return None if a is None else a.astype(np.float64)


@pytest.mark.parametrize("name", ["tiny", "large_128_tile", "split_k_ragged_last_range"])
def test_linear_fused_relu(on_cuda, name):
    """activation="relu" in the GEMM epilogue, and after the split-K partial sums."""
    cp = on_cuda
    x, w, b, _ = _linear_data(name, seed=2)
    y_ref = np.maximum(ops.linear(_f64(x), _f64(w), _f64(b)), 0)
    gx, gw, gb = to_gpu(cp, x, w, b)
    y = cp.asnumpy(ops.linear(gx, gw, gb, activation="relu"))
    assert (y >= 0).all() and (y == 0).any()
    assert_close(y, y_ref, 1e-4, f"{name} relu")


def test_split_k_is_chosen_for_short_wide_layers():
    """The cases above do split (workspace > 0) where the output is a tile or two, and not otherwise."""
    from cudacnn.backends import _cuda_common as common

    C = common.ext()
    assert C.linear_workspace(3, 5000, 2) > 0 and C.linear_workspace(64, 2001, 33) > 0
    assert C.linear_workspace(3, 5, 1000) > 0  # the data gradient's reduction runs over 1000 outputs
    assert C.linear_workspace(64, 57600, 32) > 0  # the CIFAR-10 lecture net's Dense
    assert C.linear_workspace(4096, 512, 512) == 0  # 512 output tiles fill the GPU already


@pytest.mark.parametrize("name", sorted(LINEAR_CASES))
def test_linear(on_cuda, name):
    cp = on_cuda
    x, w, b, dy = _linear_data(name, seed=0)
    x64, w64, dy64 = _f64(x), _f64(w), _f64(dy)
    y_ref = ops.linear(x64, w64, _f64(b))
    dx_ref, dw_ref, db_ref = ops.linear_backward(dy64, x64, w64)
    gx, gw, gb, gdy = to_gpu(cp, x, w, b, dy)
    assert_close(cp.asnumpy(ops.linear(gx, gw, gb)), y_ref, 1e-4, "y")
    dx, dw, db = to_cpu(cp, *ops.linear_backward(gdy, gx, gw))
    assert_close(dx, dx_ref, 1e-4, "dx")
    assert_close(dw, dw_ref, 1e-4, "dw")
    assert_close(db, db_ref, 1e-4, "db")
    no_dx, dw2, _ = ops.linear_backward(gdy, gx, gw, need_dx=False)
    assert no_dx is None
    assert_close(cp.asnumpy(dw2), dw_ref, 1e-4, "dw without dx")


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (37, 45, 19), (130, 260, 9), (300, 290, 131), (50, 8200, 20)])
def test_raw_sgemm(on_cuda, mnk, trans_a, trans_b):
    """C = alpha * op(A) op(B) + beta * C for every transpose, sizes off the tile grid."""
    from cudacnn.backends import _cuda_common as common

    cp = on_cuda
    M, N, K = mnk
    rng = np.random.default_rng(2)
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(np.float32)
    c0 = rng.standard_normal((M, N)).astype(np.float32)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    expected = 1.5 * op_a.astype(np.float64) @ op_b.astype(np.float64) - 0.5 * c0
    ga, gb, gc = to_gpu(cp, a, b, c0)
    common.ext().sgemm(gc.data.ptr, ga.data.ptr, gb.data.ptr, M, N, K, trans_a, trans_b, 1.5, -0.5, common.stream())
    assert_close(cp.asnumpy(gc), expected, 1e-4, "sgemm beta=-0.5")
    gc.fill(np.nan)  # beta = 0 must not read C
    common.ext().sgemm(gc.data.ptr, ga.data.ptr, gb.data.ptr, M, N, K, trans_a, trans_b, 1.0, 0.0, common.stream())
    assert_close(cp.asnumpy(gc), op_a.astype(np.float64) @ op_b.astype(np.float64), 1e-4, "sgemm beta=0")


def _unaligned(cp, a):
    """A contiguous device copy of `a` that starts 4 bytes past a 16-byte boundary (no float4 loads)."""
    flat = cp.empty(a.size + 1, dtype=a.dtype)
    view = flat[1:].reshape(a.shape)
    view[...] = cp.asarray(a)
    assert view.data.ptr % 16 == 4
    return view


# K = 1000, 8, 300: rows of float4 (K % 4 == 0); the others are read a float at a time.
@pytest.mark.parametrize("N,K", [(5, 7), (1, 3), (33, 1000), (64, 10), (3, 1), (9, 8)])
def test_softmax_cross_entropy_with_class_indices(on_cuda, N, K):
    cp = on_cuda
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((N, K)) * 4).astype(np.float32)
    labels = rng.integers(0, K, N)  # int64, read as is by the kernels
    loss_ref, cache_ref = ops.softmax_cross_entropy(logits.astype(np.float64), labels)
    dl_ref = ops.softmax_cross_entropy_backward(cache_ref)
    glogits, = to_gpu(cp, logits)
    loss, cache = ops.softmax_cross_entropy(glogits, cp.asarray(labels))
    assert loss.shape == () and loss.dtype == np.float32
    assert_close(cp.asnumpy(loss), loss_ref, 1e-5, "loss")
    assert_close(cp.asnumpy(cache["row_max"]), cache_ref["row_max"], 0, "row_max")
    assert_close(cp.asnumpy(cache["log_sum"]), cache_ref["log_sum"], 1e-5, "log_sum")
    assert_close(cp.asnumpy(ops.softmax_cross_entropy_backward(cache)), dl_ref, 1e-5, "dlogits")


@pytest.mark.parametrize("N,K", [(5, 7), (2, 300), (3, 12)])
def test_softmax_cross_entropy_with_probability_rows(on_cuda, N, K):
    cp = on_cuda
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((N, K)).astype(np.float32)
    targets = rng.uniform(0, 1, (N, K)).astype(np.float32)  # rows need not sum to 1
    loss_ref, cache_ref = ops.softmax_cross_entropy(logits.astype(np.float64), targets.astype(np.float64))
    dl_ref = ops.softmax_cross_entropy_backward(cache_ref)
    glogits, gtargets = to_gpu(cp, logits, targets)
    loss, cache = ops.softmax_cross_entropy(glogits, gtargets)
    assert_close(cp.asnumpy(loss), loss_ref, 1e-5, "loss")
    assert_close(cp.asnumpy(ops.softmax_cross_entropy_backward(cache)), dl_ref, 1e-5, "dlogits")


def test_unchecked_out_of_range_labels_give_nan_as_the_reference_does(on_cuda):
    """labels_checked=True skips the range check: a bad label must not read outside its row."""
    cp = on_cuda
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((4, 8)).astype(np.float32)
    labels = np.array([1, 8, -3, 7])
    loss_ref, cache_ref = ops.softmax_cross_entropy(logits.astype(np.float64), labels, labels_checked=True)
    loss, cache = ops.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels), labels_checked=True)
    assert np.isnan(float(loss_ref)) and np.isnan(float(cp.asnumpy(loss)))
    assert_close(cp.asnumpy(ops.softmax_cross_entropy_backward(cache)),
                 ops.softmax_cross_entropy_backward(cache_ref), 1e-5, "dlogits")


@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probability_rows"])
def test_softmax_cross_entropy_on_rows_not_16_byte_aligned(on_cuda, soft):
    """K % 4 == 0 but the rows start off a float4 boundary: the float-at-a-time path, same results."""
    cp = on_cuda
    rng = np.random.default_rng(2)
    N, K = 6, 8
    logits = (rng.standard_normal((N, K)) * 3).astype(np.float32)
    labels = rng.uniform(0, 1, (N, K)).astype(np.float32) if soft else rng.integers(0, K, N)
    loss_ref, cache_ref = ops.softmax_cross_entropy(logits.astype(np.float64), labels.astype(
        np.float64) if soft else labels)
    dl_ref = ops.softmax_cross_entropy_backward(cache_ref)
    glabels = _unaligned(cp, labels) if soft else cp.asarray(labels)
    loss, cache = ops.softmax_cross_entropy(_unaligned(cp, logits), glabels)
    assert_close(cp.asnumpy(loss), loss_ref, 1e-5, "loss")
    assert_close(cp.asnumpy(ops.softmax_cross_entropy_backward(cache)), dl_ref, 1e-5, "dlogits")


@pytest.mark.parametrize("K", [3, 4], ids=["floats", "float4"])
def test_softmax_cross_entropy_with_minus_infinity_logits(on_cuda, K):
    """A -inf logit (a masked class) has probability 0: finite loss, zero gradient there."""
    cp = on_cuda
    logits = np.full((2, K), -np.inf, dtype=np.float32)
    logits[0, 1], logits[1, 0], logits[1, K - 1] = 2.0, -1.0, 3.0
    labels = np.array([1, K - 1])
    loss_ref, cache_ref = ops.softmax_cross_entropy(logits.astype(np.float64), labels)
    loss, cache = ops.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels))
    dlogits = cp.asnumpy(ops.softmax_cross_entropy_backward(cache))
    assert np.isfinite(float(loss)) and np.isfinite(dlogits).all()
    assert_close(cp.asnumpy(loss), loss_ref, 1e-5, "loss")
    assert_close(dlogits, ops.softmax_cross_entropy_backward(cache_ref), 1e-5, "dlogits")


def test_softmax_cross_entropy_large_logits_are_stable(on_cuda):
    cp = on_cuda
    logits = np.array([[1000.0, 0.0, -1000.0], [50.0, 50.0, 50.0]], dtype=np.float32)
    labels = np.array([2, 1])
    loss_ref, _ = ops.softmax_cross_entropy(logits.astype(np.float64), labels)
    loss, _ = ops.softmax_cross_entropy(cp.asarray(logits), cp.asarray(labels))
    assert np.isfinite(float(loss))
    assert_close(cp.asnumpy(loss), loss_ref, 1e-5, "loss")


@pytest.mark.parametrize("shape", [(2, 3, 37), (4, 1), (1, 2000)])
def test_softmax(on_cuda, shape):
    cp = on_cuda
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    y_ref = ops.softmax(x.astype(np.float64))
    dx_ref = ops.softmax_backward(dy.astype(np.float64), y_ref)
    gx, gdy = to_gpu(cp, x, dy)
    y = ops.softmax(gx)
    assert_close(cp.asnumpy(y), y_ref, 1e-5, "softmax")
    assert_close(cp.asnumpy(ops.softmax_backward(gdy, y)), dx_ref, 1e-5, "softmax_backward")


ACTIVATIONS = {
    "relu": ((), "x"),
    "leaky_relu": ((0.2,), "x"),
    "elu": ((0.7,), "x"),
    "sigmoid": ((), "y"),
    "tanh": ((), "y"),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations(on_cuda, name):
    cp = on_cuda
    params, backward_takes = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 5, 7, 11)) * 5).astype(np.float32)
    x.flat[::17] = 0.0  # the kink of relu-like functions
    dy = rng.standard_normal(x.shape).astype(np.float32)
    forward, backward = getattr(ops, name), getattr(ops, name + "_backward")
    y_ref = forward(x.astype(np.float64), *params)
    dx_ref = backward(dy.astype(np.float64), x.astype(np.float64) if backward_takes == "x" else y_ref, *params)
    gx, gdy = to_gpu(cp, x, dy)
    y = forward(gx, *params)
    assert_close(cp.asnumpy(y), y_ref, 1e-5, f"{name} forward")
    dx = backward(gdy, gx if backward_takes == "x" else y, *params)
    assert_close(cp.asnumpy(dx), dx_ref, 1e-5, f"{name} backward")


def test_activation_of_a_non_contiguous_view(on_cuda):
    cp = on_cuda
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    y = ops.relu(cp.asarray(x)[:, ::2])
    np.testing.assert_array_equal(cp.asnumpy(y), np.maximum(x[:, ::2], 0))
