"""Pooling: forward against naive loops, backward against finite differences (float64)."""
import numpy as np
import pytest

import naive
from cudacnn import ops

# (N, C, H, W, kernel, stride, padding)
CASES = [
    pytest.param(1, 3, 6, 8, 2, None, 0, id="batch1-2x2"),
    pytest.param(2, 3, 7, 5, 3, 2, 1, id="overlap-stride2-pad1"),
    pytest.param(2, 1, 7, 6, (3, 2), (2, 1), (1, 1), id="pairs"),
    pytest.param(1, 3, 7, 6, 2, 2, "same", id="same-odd-input"),
    pytest.param(2, 2, 5, 7, 3, 1, "same", id="same-stride1"),
    pytest.param(2, 3, 7, 5, 3, 2, "valid", id="valid-drops-remainder"),
]


def _normalised(x, kernel, stride, padding):
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    s = k if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    return k, s, naive.pads(padding, x.shape[2:], k, s, (1, 1))  # the oracle pads for itself


def _distinct(rng, shape):
    """Values with no ties, so max pooling has a unique, differentiable argmax."""
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 - 3.0


@pytest.mark.parametrize("N,C,H,W,kernel,stride,padding", CASES)
def test_max_pool2d_matches_naive(rng, N, C, H, W, kernel, stride, padding):
    x = rng.standard_normal((N, C, H, W))
    y, indices = ops.max_pool2d(x, kernel, stride, padding, return_indices=True)
    ref_y, ref_idx = naive.max_pool2d(x, *_normalised(x, kernel, stride, padding))
    np.testing.assert_array_equal(y, ref_y)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indices, ref_idx)
    np.testing.assert_array_equal(ops.max_pool2d(x, kernel, stride, padding), y)


@pytest.mark.parametrize("N,C,H,W,kernel,stride,padding", CASES)
def test_max_pool2d_backward_matches_finite_differences(rng, N, C, H, W, kernel, stride, padding):
    x = _distinct(rng, (N, C, H, W))
    y, indices = ops.max_pool2d(x, kernel, stride, padding, return_indices=True)
    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.max_pool2d(x, kernel, stride, padding) * dy).sum())

    numeric = naive.numerical_grad(loss, x, eps=1e-4)
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, kernel, stride, padding), numeric,
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, kernel, stride, padding,
                                                       indices=indices), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("value", [-5.0, -np.inf])
def test_max_pool2d_ties_pick_the_first_and_padding_never_wins(value):
    x = np.full((1, 1, 3, 3), value)
    y, indices = ops.max_pool2d(x, 3, 1, 1, return_indices=True)
    # Every window is all `value` and padding: the first real element of each window wins.
    assert (y == value).all()
    np.testing.assert_array_equal(indices[0, 0], [[0, 0, 1], [0, 0, 1], [3, 3, 4]])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("N,C,H,W,kernel,stride,padding", CASES)
def test_avg_pool2d_matches_naive_and_finite_differences(rng, N, C, H, W, kernel, stride, padding,
                                                          count_include_pad):
    x = rng.standard_normal((N, C, H, W))
    y = ops.avg_pool2d(x, kernel, stride, padding, count_include_pad)
    ref = naive.avg_pool2d(x, *_normalised(x, kernel, stride, padding), count_include_pad)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)

    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.avg_pool2d(x, kernel, stride, padding, count_include_pad) * dy).sum())

    dx = ops.avg_pool2d_backward(dy, x, kernel, stride, padding, count_include_pad)
    np.testing.assert_allclose(dx, naive.numerical_grad(loss, x), rtol=1e-6, atol=1e-8)


def test_same_pool_output_is_ceil_of_input_over_stride(rng):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    assert ops.max_pool2d(x, 2, padding="same").shape == (1, 2, 4, 3)
    assert ops.avg_pool2d(x, 3, 2, padding="same").shape == (1, 2, 4, 3)


def test_global_avg_pool2d_and_backward(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y = ops.global_avg_pool2d(x)
    expected = np.array([[np.sum(x[n, c]) / 20 for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.global_avg_pool2d(x) * dy).sum())

    np.testing.assert_allclose(ops.global_avg_pool2d_backward(dy, x),
                               naive.numerical_grad(loss, x), rtol=1e-6, atol=1e-8)


def test_pooling_keeps_float32(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    for y in (ops.max_pool2d(x, 2), ops.avg_pool2d(x, 2), ops.global_avg_pool2d(x)):
        assert y.dtype == np.float32


@pytest.mark.parametrize("H,W,kernel,stride", [(7, 6, 2, 2), (8, 5, 3, 2), (5, 9, 4, 3)])
def test_same_pool_padding_puts_the_odd_extra_bottom_right(rng, H, W, kernel, stride):
    x = rng.standard_normal((2, 3, H, W))
    OH, OW = -(-H // stride), -(-W // stride)
    total_h = max((OH - 1) * stride + kernel - H, 0)
    total_w = max((OW - 1) * stride + kernel - W, 0)
    pads = ((0, 0), (0, 0), (total_h // 2, total_h - total_h // 2),
            (total_w // 2, total_w - total_w // 2))
    y_max = ops.max_pool2d(x, kernel, stride, "same")
    assert y_max.shape == (2, 3, OH, OW)
    explicit = ops.max_pool2d(np.pad(x, pads, constant_values=-np.inf), kernel, stride)
    np.testing.assert_array_equal(y_max, explicit)
    y_avg = ops.avg_pool2d(x, kernel, stride, "same", count_include_pad=True)
    np.testing.assert_allclose(y_avg, ops.avg_pool2d(np.pad(x, pads), kernel, stride), rtol=1e-12)


@pytest.mark.parametrize("where,value,window", [
    ((0, 0, 0, 0), 2, "rows 0..1, columns 0..1"),     # a position of the window to the right
    ((0, 0, 0, 1), 10, "rows 0..1, columns 2..3"),    # a position of the window below
    ((0, 0, 1, 0), 4, "rows 2..3, columns 0..1"),     # a position of the window above
    ((0, 0, 0, 1), 1, "rows 0..1, columns 2..3"),     # a position of the window to the left
    ((0, 1, 1, 1), -1, "rows 2..3, columns 2..3"),    # before the plane
    ((1, 0, 1, 0), 16, "rows 2..3, columns 0..1"),    # past the plane
])
def test_max_pool2d_backward_refuses_indices_outside_their_windows(rng, where, value, window):
    x = _distinct(rng, (2, 2, 4, 4))
    y, indices = ops.max_pool2d(x, 2, return_indices=True)
    dy = rng.standard_normal(y.shape)
    bad = indices.copy()
    bad[where] = value
    n, c, p, q = where
    with pytest.raises(ValueError, match=fr"indices\[{n}, {c}, {p}, {q}\] = {value} is not a position in its "
                                         fr"window: {window} of the 4x4 input"):
        ops.max_pool2d_backward(dy, x, 2, indices=bad)
    # The caller's promise skips the check (layers pass max_pool2d's own indices so).
    ops.max_pool2d_backward(dy, x, 2, indices=indices, indices_checked=True)


@pytest.mark.parametrize("where,value,window", [
    ((0, 0, 0, 0), 2, "rows 0..1, columns 0..1"),   # row 0, column 2: past the window's columns -1..1
    ((0, 0, 0, 0), -4, "rows 0..1, columns 0..1"),  # "row -1, column 1": the top padding, not a position
    ((0, 0, 2, 0), 25, "rows 3..4, columns 0..1"),  # "row 5, column 0": the bottom padding
])
def test_max_pool2d_backward_indices_may_not_point_into_the_padding(rng, where, value, window):
    x = _distinct(rng, (1, 1, 5, 5))
    y, indices = ops.max_pool2d(x, 3, 2, 1, return_indices=True)  # windows of rows and columns -1..1, 1..3, 3..5
    dy = rng.standard_normal(y.shape)
    bad = indices.copy()
    bad[where] = value
    n, c, p, q = where
    with pytest.raises(ValueError, match=fr"indices\[{n}, {c}, {p}, {q}\] = {value} .* {window} of the 5x5"):
        ops.max_pool2d_backward(dy, x, 3, 2, 1, indices=bad)
    np.testing.assert_array_equal(ops.max_pool2d_backward(dy, x, 3, 2, 1, indices=indices),
                                  ops.max_pool2d_backward(dy, x, 3, 2, 1))
