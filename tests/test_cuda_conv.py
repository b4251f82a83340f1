"""Our convolution kernels (direct, im2col + SGEMM, Winograd) against the NumPy float64 reference.

GPU only. Every case runs through ``cudacnn.ops`` on cupy arrays with each
algorithm forced, forward and backward, on awkward shapes: batch 1, odd
channels, H != W, sizes that are not multiples of any tile, stride 2,
dilation 2, groups 2, depthwise, "same" with stride 2 (asymmetric padding),
pointwise (im2col skips the column matrix), non-square kernels, a layer wide
enough for the 128x128 GEMM tile, and reductions split across blocks. The
im2col data gradient runs as a flipped-filter forward for stride 1 (padding
at most the filter span) and through col2im otherwise; both are covered.
Winograd F(2x2, 3x3) (3x3, stride 1, one group) has its own cases: odd
output sizes (partial tiles), padding 0 to 3, several chunks of images.
Outputs are NaN-poisoned before each kernel runs (``on_cuda``).

Tolerance (relative to the largest reference magnitude): 1e-4 for every conv
output and gradient (float32 accumulation over C*R*S or N*P*Q terms).
"""
import numpy as np
import pytest

from cudacnn import ops
from cuda_helpers import assert_close, cuda_log, on_cuda, to_cpu, to_gpu  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gpu

TOL = 1e-4
ALGOS = ("direct", "im2col")

# (N, C, H, W, K, (R, S), stride, padding, dilation, groups, bias)
CASES = {
    "batch1_odd_channels": (1, 3, 7, 9, 5, (3, 3), 1, 1, 1, 1, True),
    "stride2": (2, 4, 11, 8, 6, (3, 3), 2, 1, 1, 1, True),
    "dilation2": (2, 3, 10, 13, 4, (3, 3), 1, 2, 2, 1, False),
    "groups2": (2, 4, 9, 9, 6, (3, 3), 1, 1, 1, 2, True),
    "depthwise": (2, 6, 8, 7, 6, (3, 3), 1, 1, 1, 6, True),
    "depthwise_multiplier2": (2, 3, 8, 9, 6, (3, 3), 1, 1, 1, 3, False),
    "same_stride2": (3, 5, 9, 10, 7, (3, 3), 2, "same", 1, 1, True),
    "same_even_kernel": (2, 3, 8, 7, 4, (4, 2), 1, "same", 1, 1, True),
    "pointwise": (2, 8, 6, 6, 16, (1, 1), 1, 0, 1, 1, True),
    "pointwise_stride2": (2, 8, 7, 6, 5, (1, 1), 2, 0, 1, 1, False),
    "rect_kernel_mixed_stride": (2, 3, 17, 19, 33, (5, 4), (2, 1), (2, 1), 1, 1, True),
    "kernel_larger_than_input": (2, 3, 4, 5, 2, (7, 7), 1, 3, 1, 1, True),
    "pad_beyond_filter_span": (2, 3, 6, 5, 4, (3, 3), 1, 3, 1, 1, True),  # stride 1, yet dx via col2im
    "one_row_conv1d_like": (2, 3, 1, 40, 4, (1, 5), 1, (0, 2), 1, 1, True),
    "wide_layer_128_tile": (8, 16, 24, 24, 160, (3, 3), 1, 1, 1, 1, True),
    "few_filters_many_positions_64x128_tile": (16, 3, 20, 20, 8, (3, 3), 1, 1, 1, 1, True),
    "split_weight_reduction": (4, 3, 32, 33, 5, (3, 3), 1, 1, 1, 1, True),
    "many_channels_grouped": (2, 40, 6, 5, 24, (3, 3), 1, 1, 1, 4, True),
}


def _data(case, seed=0):
    N, C, H, W, K, (R, S), stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C // groups, R, S)) / np.sqrt(C // groups * R * S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, b, kw


def _reference(x, w, b, kw, dy=None):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    b64 = None if b is None else b.astype(np.float64)
    y = ops.conv2d(x64, w64, b64, **kw)
    if dy is None:
        return y
    return y, ops.conv2d_backward(dy.astype(np.float64), x64, w64, **kw)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_conv2d_forward_and_backward(on_cuda, name, algo):
    cp = on_cuda
    x, w, b, kw = _data(CASES[name])
    y_ref = _reference(x, w, b, kw)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    _, (dx_ref, dw_ref, db_ref) = _reference(x, w, b, kw, dy)
    gx, gw, gb, gdy = to_gpu(cp, x, w, b, dy)

    y = ops.conv2d(gx, gw, gb, algo=algo, **kw)
    assert_close(cp.asnumpy(y), y_ref, TOL, f"{name}/{algo} forward")
    dx, dw, db = to_cpu(cp, *ops.conv2d_backward(gdy, gx, gw, algo=algo, **kw))
    assert_close(dx, dx_ref, TOL, f"{name}/{algo} dx")
    assert_close(dw, dw_ref, TOL, f"{name}/{algo} dw")
    assert_close(db, db_ref, TOL, f"{name}/{algo} db")


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_backward_without_dx(on_cuda, algo):
    cp = on_cuda
    x, w, b, kw = _data(CASES["stride2"])
    y_ref = _reference(x, w, b, kw)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    _, (_, dw_ref, db_ref) = _reference(x, w, b, kw, dy)
    gx, gw, gdy = to_gpu(cp, x, w, dy)
    dx, dw, db = ops.conv2d_backward(gdy, gx, gw, algo=algo, need_dx=False, **kw)
    assert dx is None
    assert_close(cp.asnumpy(dw), dw_ref, TOL, "dw")
    assert_close(cp.asnumpy(db), db_ref, TOL, "db")


CHUNK_CASES = {
    # Only the data gradient of strided convolutions stores column matrices, a chunk of images at a time.
    # C*R*S*P*Q = 720 floats per image: budget 1 -> 1 image per chunk; 1500 -> 2, then a ragged 1
    "one_image_per_chunk": ((3, 4, 9, 8, 6, (3, 3), 2, 1, 1, 2, True), 1),
    "ragged_last_chunk": ((3, 4, 9, 8, 6, (3, 3), 2, 1, 1, 2, True), 1500),
    # 4608 floats per image: chunks of 5 then 2
    "ragged_last_chunk_wide": ((7, 2, 32, 32, 3, (3, 3), 2, 1, 1, 1, True), 5 * 4608),
}


@pytest.mark.parametrize("name", sorted(CHUNK_CASES))
def test_im2col_processes_the_batch_in_chunks(on_cuda, monkeypatch, name):
    """A small column budget forces several chunks of images, the last one shorter."""
    from cudacnn.backends import _cuda_conv

    cp = on_cuda
    case, budget = CHUNK_CASES[name]
    monkeypatch.setattr(_cuda_conv, "COL_BUDGET", budget)
    x, w, b, kw = _data(case)
    y_ref = _reference(x, w, b, kw)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    _, (dx_ref, dw_ref, db_ref) = _reference(x, w, b, kw, dy)
    gx, gw, gb, gdy = to_gpu(cp, x, w, b, dy)
    assert_close(cp.asnumpy(ops.conv2d(gx, gw, gb, algo="im2col", **kw)), y_ref, TOL, "forward")
    dx, dw, db = to_cpu(cp, *ops.conv2d_backward(gdy, gx, gw, algo="im2col", **kw))
    assert_close(dx, dx_ref, TOL, "dx")
    assert_close(dw, dw_ref, TOL, "dw")
    assert_close(db, db_ref, TOL, "db")


def test_conv1d_runs_on_the_kernels(on_cuda):
    cp = on_cuda
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 50)).astype(np.float32)
    w = rng.standard_normal((5, 4, 7)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y_ref = ops.conv1d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride=2, padding="same")
    gx, gw, gb = to_gpu(cp, x, w, b)
    assert_close(cp.asnumpy(ops.conv1d(gx, gw, gb, stride=2, padding="same")), y_ref, TOL, "conv1d")


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_is_deterministic(on_cuda, algo):
    cp = on_cuda
    x, w, b, kw = _data(CASES["split_weight_reduction"])
    gx, gw, gb = to_gpu(cp, x, w, b)
    y1 = ops.conv2d(gx, gw, gb, algo=algo, **kw)
    y2 = ops.conv2d(gx, gw, gb, algo=algo, **kw)
    gdy = cp.asarray(np.random.default_rng(5).standard_normal(y1.shape).astype(np.float32))
    g1 = ops.conv2d_backward(gdy, gx, gw, algo=algo, **kw)
    g2 = ops.conv2d_backward(gdy, gx, gw, algo=algo, **kw)
    assert cp.array_equal(y1, y2)
    for a, c in zip(g1, g2):
        assert cp.array_equal(a, c), "two runs of the same backward differ bitwise"


def test_direct_and_im2col_agree(on_cuda):
    cp = on_cuda
    x, w, b, kw = _data(CASES["wide_layer_128_tile"])
    gx, gw, gb = to_gpu(cp, x, w, b)
    y_direct = cp.asnumpy(ops.conv2d(gx, gw, gb, algo="direct", **kw))
    y_im2col = cp.asnumpy(ops.conv2d(gx, gw, gb, algo="im2col", **kw))
    assert_close(y_direct, y_im2col, TOL, "direct vs im2col")


# (N, C, H, W, K, (R, S), stride, padding, dilation, groups, bias): all 3x3, stride 1, one group.
WINOGRAD_CASES = {
    "batch1_odd_output": (1, 3, 7, 9, 5, (3, 3), 1, 1, 1, 1, True),  # 7x9 output: partial 2x2 tiles
    "valid_h_ne_w": (2, 4, 11, 8, 6, (3, 3), 1, 0, 1, 1, True),
    "pad2_no_bias": (2, 3, 6, 5, 4, (3, 3), 1, 2, 1, 1, False),
    "pad3_data_gradient_elsewhere": (2, 3, 6, 5, 4, (3, 3), 1, 3, 1, 1, True),  # dx: padding beyond 2
    "wide_layer_128_tile": (8, 16, 12, 10, 160, (3, 3), 1, 1, 1, 1, True),
    "odd_channels_many_tiles": (3, 17, 21, 19, 9, (3, 3), 1, 1, 1, 1, True),
    "deep_channels": (2, 256, 6, 6, 24, (3, 3), 1, 1, 1, 1, True),  # transformed products summed over 256
}


@pytest.mark.parametrize("name", sorted(WINOGRAD_CASES))
def test_winograd_forward_and_data_gradient(on_cuda, monkeypatch, name):
    from cudacnn.backends import _cuda_conv

    cp = on_cuda
    used = _record_algos(monkeypatch)
    x, w, b, kw = _data(WINOGRAD_CASES[name])
    y_ref = _reference(x, w, b, kw)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    _, (dx_ref, dw_ref, db_ref) = _reference(x, w, b, kw, dy)
    gx, gw, gb, gdy = to_gpu(cp, x, w, b, dy)
    assert_close(cp.asnumpy(ops.conv2d(gx, gw, gb, algo="winograd", **kw)), y_ref, TOL, f"{name} forward")
    dx, dw, db = to_cpu(cp, *ops.conv2d_backward(gdy, gx, gw, algo="winograd", **kw))
    assert_close(dx, dx_ref, TOL, f"{name} dx")
    assert_close(dw, dw_ref, TOL, f"{name} dw")
    assert_close(db, db_ref, TOL, f"{name} db")
    data_gradient_fits = kw["padding"] <= 2
    assert used[0] == ("_run_forward", "winograd")
    # Where Winograd does not fit (no weight gradient; dx padded beyond 2), im2col runs instead.
    assert ("_run_backward_data", "winograd" if data_gradient_fits else "im2col") in used
    assert ("_run_backward_weight", "im2col") in used
    assert "winograd" in _cuda_conv._Conv(x.shape, w.shape, (1, 1), (kw["padding"],) * 4, (1, 1), 1).candidates(
        "forward")


def test_winograd_is_not_offered_where_it_does_not_apply(on_cuda):
    from cudacnn.backends import _cuda_conv

    # (x shape, w shape, stride, (top, bottom, left, right) padding, dilation, groups)
    geometries = {
        "stride2": ((2, 4, 11, 8), (6, 4, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
        "dilation2": ((2, 3, 10, 13), (4, 3, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
        "groups2": ((2, 4, 9, 9), (6, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
        "5x5": ((2, 3, 9, 9), (4, 3, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    }
    for name, geometry in geometries.items():
        conv = _cuda_conv._Conv(*geometry)
        for pass_name in ("forward", "backward_data", "backward_weight"):
            assert "winograd" not in conv.candidates(pass_name), (name, pass_name)


@pytest.mark.parametrize("budget,chunk", [(1, 1), (6000, 2)], ids=["one_image_per_chunk", "ragged_last_chunk"])
def test_winograd_processes_the_batch_in_chunks(on_cuda, monkeypatch, budget, chunk):
    """16 * (C + K) * tiles = 16 * 9 * 20 = 2880 floats per image: a budget of 6000 gives chunks of 2, then 1."""
    from cudacnn.backends import _cuda_conv

    cp = on_cuda
    monkeypatch.setattr(_cuda_conv, "COL_BUDGET", budget)
    case = (3, 4, 8, 10, 5, (3, 3), 1, 1, 1, 1, True)
    x, w, b, kw = _data(case)
    conv = _cuda_conv._Conv(x.shape, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert conv.winograd_chunk == {"forward": chunk, "backward_data": chunk}
    y_ref = _reference(x, w, b, kw)
    dy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    _, (dx_ref, _, _) = _reference(x, w, b, kw, dy)
    gx, gw, gb, gdy = to_gpu(cp, x, w, b, dy)
    assert_close(cp.asnumpy(ops.conv2d(gx, gw, gb, algo="winograd", **kw)), y_ref, TOL, "forward")
    dx, _, _ = ops.conv2d_backward(gdy, gx, gw, algo="winograd", **kw)
    assert_close(cp.asnumpy(dx), dx_ref, TOL, "dx")


@pytest.mark.parametrize("algo", ALGOS + ("winograd",))
def test_fused_relu_epilogue(on_cuda, algo):
    """activation="relu" is applied in each algorithm's epilogue: relu of the reference, NaN kept."""
    cp = on_cuda
    x, w, b, kw = _data(CASES["batch1_odd_channels"])
    x[0, 1, 2, 3] = np.nan
    y_ref = np.maximum(_reference(x, w, b, kw), 0)
    gx, gw, gb = to_gpu(cp, x, w, b)
    y = cp.asnumpy(ops.conv2d(gx, gw, gb, algo=algo, activation="relu", **kw))
    nan = np.isnan(y_ref)
    assert nan.any() and np.array_equal(np.isnan(y), nan)
    assert (y[~nan] >= 0).all() and (y[~nan] == 0).any()
    assert_close(np.where(nan, 0, y), np.where(nan, 0, y_ref), TOL, f"{algo} relu")


def _record_algos(monkeypatch):
    """Wrap the pass runners so the test sees which algorithm each call used."""
    from cudacnn.backends import _cuda_conv

    used = []
    for name in ("_run_forward", "_run_backward_data", "_run_backward_weight"):
        real = getattr(_cuda_conv, name)

        def spy(conv, algo, *args, _real=real, _name=name):
            used.append((_name, algo))
            return _real(conv, algo, *args)

        monkeypatch.setattr(_cuda_conv, name, spy)
    return used


def test_auto_times_both_algorithms_once_then_reuses_the_choice(on_cuda, monkeypatch):
    from cudacnn.backends import _cuda_conv

    cp = on_cuda
    monkeypatch.setattr(_cuda_conv, "_chosen", {})
    used = _record_algos(monkeypatch)
    x, w, b, kw = _data(CASES["groups2"])
    gx, gw, gb = to_gpu(cp, x, w, b)
    y1 = ops.conv2d(gx, gw, gb, algo="auto", **kw)
    first = [a for n, a in used if n == "_run_forward"]
    assert set(first) == {"direct", "im2col"}, first  # both timed
    assert len(_cuda_conv._chosen) == 1
    used.clear()
    y2 = ops.conv2d(gx, gw, gb, algo="auto", **kw)
    assert len(used) == 1 and used[0][1] == next(iter(_cuda_conv._chosen.values()))
    assert cp.array_equal(y1, y2), "the autotuned result is the chosen algorithm's, bit for bit"
    assert_close(cp.asnumpy(y1), _reference(x, w, b, kw), TOL, "auto forward")


def test_env_var_forces_the_algorithm(on_cuda, monkeypatch):
    cp = on_cuda
    used = _record_algos(monkeypatch)
    monkeypatch.setenv("CUDACNN_CONV_ALGO", "direct")
    x, w, b, kw = _data(CASES["stride2"])
    gx, gw, gb = to_gpu(cp, x, w, b)
    ops.conv2d(gx, gw, gb, algo="im2col", **kw)
    assert used == [("_run_forward", "direct")]
    monkeypatch.setenv("CUDACNN_CONV_ALGO", "fastest")
    with pytest.raises(ValueError, match="CUDACNN_CONV_ALGO"):
        ops.conv2d(gx, gw, gb, **kw)


def test_float64_falls_back_to_cupy_visibly(cp, cuda_backend, cuda_log):
    """ops refuses float64 on the GPU; calling the backend directly shows the fallback path."""
    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((2, 3, 6, 5)))
    w = cp.asarray(rng.standard_normal((4, 3, 3, 3)))
    y = cuda_backend.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1, "auto")
    assert y.dtype == np.float64
    assert any("conv2d runs on the cupy backend" in m and "float64" in m for m in cuda_log), cuda_log
    ref = ops.conv2d(cp.asnumpy(x), cp.asnumpy(w), None, padding=1)
    np.testing.assert_allclose(cp.asnumpy(y), ref, rtol=1e-10, atol=1e-10)


def test_auto_skips_timing_direct_backward_on_large_layers(on_cuda, monkeypatch):
    from cudacnn.backends import _cuda_conv

    cp = on_cuda
    monkeypatch.setattr(_cuda_conv, "_chosen", {})
    monkeypatch.setattr(_cuda_conv, "DIRECT_BACKWARD_MAX_MACS", 0)  # every layer counts as large
    used = _record_algos(monkeypatch)
    x, w, b, kw = _data(CASES["stride2"])
    gx, gw = to_gpu(cp, x, w)
    y = ops.conv2d(gx, gw, None, **kw)
    gdy = cp.asarray(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    used.clear()
    ops.conv2d_backward(gdy, gx, gw, algo="auto", **kw)
    assert {a for _, a in used} == {"im2col"}, used
