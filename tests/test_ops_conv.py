"""conv2d / conv1d: forward against naive loops, backward against finite differences (float64)."""
import numpy as np
import pytest

import naive
from cudacnn import ops

# (N, C, H, W, K, R, S, stride, padding, dilation, groups): odd channels, H != W,
# batch 1, strides, pads, "same" with stride 2 and even kernels, dilation, groups.
CASES = [
    pytest.param(1, 3, 5, 7, 4, 3, 3, 1, 0, 1, 1, id="batch1-odd-channels"),
    pytest.param(2, 3, 6, 5, 5, 2, 3, 2, 1, 1, 1, id="stride2-pad1"),
    pytest.param(2, 3, 7, 6, 2, 3, 2, (2, 1), (1, 2), (2, 1), 1, id="mixed-pairs-dilation"),
    pytest.param(2, 4, 5, 6, 6, 3, 3, 1, 1, 1, 2, id="groups2"),
    pytest.param(1, 3, 6, 5, 3, 3, 3, 2, 1, 1, 3, id="depthwise"),
    pytest.param(2, 3, 5, 5, 6, 3, 3, 1, 1, 1, 3, id="depthwise-multiplier2"),
    pytest.param(2, 3, 7, 6, 4, 4, 2, 2, "same", 1, 1, id="same-stride2-even-kernel"),
    pytest.param(1, 2, 7, 8, 3, 3, 3, 1, "same", 2, 1, id="same-dilation2"),
    pytest.param(2, 3, 6, 7, 2, 3, 3, 2, "valid", 1, 1, id="valid-stride2"),
    pytest.param(2, 5, 4, 3, 3, 1, 1, 1, 0, 1, 1, id="pointwise"),
    pytest.param(1, 5, 5, 4, 3, 1, 1, 2, 0, 1, 1, id="pointwise-stride2"),
    pytest.param(2, 3, 4, 5, 2, 4, 5, 1, 0, 1, 1, id="kernel-equals-input"),
]


def _pads(padding, H, W, R, S, stride, dilation):
    """Explicit (top, bottom, left, right) for the naive reference, computed by naive.py itself
    (not by the library's padding helper, whose 'same' rule is under test here too)."""
    return naive.pads(padding, (H, W), (R, S), _pair(stride), _pair(dilation))


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _make(rng, N, C, H, W, K, R, S, groups):
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // groups, R, S))
    b = rng.standard_normal(K)
    return x, w, b


@pytest.mark.parametrize("N,C,H,W,K,R,S,stride,padding,dilation,groups", CASES)
def test_conv2d_forward_matches_naive(rng, N, C, H, W, K, R, S, stride, padding, dilation, groups):
    x, w, b = _make(rng, N, C, H, W, K, R, S, groups)
    y = ops.conv2d(x, w, b, stride, padding, dilation, groups)
    pads = _pads(padding, H, W, R, S, stride, dilation)
    expected = naive.conv2d(x, w, b, _pair(stride), pads, _pair(dilation), groups)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N,C,H,W,K,R,S,stride,padding,dilation,groups", CASES)
def test_conv2d_backward_matches_finite_differences(rng, N, C, H, W, K, R, S, stride, padding,
                                                     dilation, groups):
    x, w, b = _make(rng, N, C, H, W, K, R, S, groups)
    y = ops.conv2d(x, w, b, stride, padding, dilation, groups)
    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.conv2d(x, w, b, stride, padding, dilation, groups) * dy).sum())

    dx, dw, db = ops.conv2d_backward(dy, x, w, stride, padding, dilation, groups)
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, naive.numerical_grad(loss, wrt), rtol=1e-6, atol=1e-7)


def test_conv2d_backward_need_dx_false_skips_dx(rng):
    x, w, _ = _make(rng, 2, 3, 5, 5, 4, 3, 3, 1)
    dy = rng.standard_normal((2, 4, 3, 3))
    dx, dw, db = ops.conv2d_backward(dy, x, w, need_dx=False)
    _, dw_full, db_full = ops.conv2d_backward(dy, x, w)
    assert dx is None
    np.testing.assert_allclose(dw, dw_full, rtol=1e-12)
    np.testing.assert_allclose(db, db_full, rtol=1e-12)


@pytest.mark.parametrize("H,W,R,S,stride", [(7, 6, 4, 2, 2), (8, 5, 3, 3, 2), (5, 5, 2, 2, 1),
                                             (9, 4, 5, 4, 3)])
def test_same_padding_is_ceil_with_extra_pad_bottom_right(rng, H, W, R, S, stride):
    x = rng.standard_normal((1, 2, H, W))
    w = rng.standard_normal((3, 2, R, S))
    y = ops.conv2d(x, w, stride=stride, padding="same")
    OH, OW = -(-H // stride), -(-W // stride)
    assert y.shape == (1, 3, OH, OW)
    total_h = max((OH - 1) * stride + R - H, 0)
    total_w = max((OW - 1) * stride + S - W, 0)
    # Keras/TF: the smaller half before, the larger half (odd extra) after.
    explicit = np.pad(x, ((0, 0), (0, 0), (total_h // 2, total_h - total_h // 2),
                          (total_w // 2, total_w - total_w // 2)))
    np.testing.assert_allclose(y, ops.conv2d(explicit, w, stride=stride), rtol=1e-12)


@pytest.mark.parametrize("size,kernel,stride,dilation,expected", [
    (9, 3, 2, 2, (2, 2)),   # out 5: 4 * 2 + 5 - 9 = 4
    (8, 3, 2, 2, (1, 2)),   # out 4: 3 * 2 + 5 - 8 = 3, the odd one after
    (7, 2, 2, 2, (1, 1)),   # dilated 2 -> 3; out 4: 6 + 3 - 7 = 2
    (10, 2, 2, 2, (0, 1)),  # out 5: 8 + 3 - 10 = 1
    (8, 4, 2, 2, (2, 3)),   # dilated 4 -> 7; out 4: 6 + 7 - 8 = 5
    (5, 3, 1, 3, (3, 3)),   # dilated 3 -> 7; out 5: 4 + 7 - 5 = 6
    (9, 1, 3, 2, (0, 0)),   # a 1x1 kernel never pads
])
def test_naive_same_pads_follow_the_tensorflow_rule(size, kernel, stride, dilation, expected):
    """The reference's own 'same' rule, checked by hand: pad_total = max((out - 1) * stride +
    (kernel - 1) * dilation + 1 - size, 0) with out = ceil(size / stride)."""
    assert naive.same_pads(size, kernel, stride, dilation) == expected


@pytest.mark.parametrize("H,W,R,S", [(9, 8, 3, 3), (8, 9, 3, 3), (10, 7, 2, 4), (7, 10, 4, 2),
                                     (8, 8, 2, 2), (9, 9, 3, 2)])
def test_same_padding_with_dilation2_stride2_matches_naive_and_torch(rng, H, W, R, S):
    """'same' pads for the dilated kernel, (k - 1) * d + 1, not the kernel itself: odd and even
    sizes and kernels, stride 2 (PyTorch's padding='same' refuses stride 2, so it gets the
    asymmetric pads explicitly through F.pad)."""
    x, w, b = _make(rng, 2, 3, H, W, 4, R, S, 1)
    y = ops.conv2d(x, w, b, stride=2, padding="same", dilation=2)
    assert y.shape == (2, 4, -(-H // 2), -(-W // 2))
    pads = naive.pads("same", (H, W), (R, S), (2, 2), (2, 2))
    np.testing.assert_allclose(y, naive.conv2d(x, w, b, (2, 2), pads, (2, 2), 1), rtol=1e-12, atol=1e-12)

    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    top, bottom, left, right = pads
    xt = F.pad(torch.tensor(x), (left, right, top, bottom))  # F.pad takes the last axis first
    expected = F.conv2d(xt, torch.tensor(w), torch.tensor(b), stride=2, dilation=2).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, x, w, stride=2, padding="same", dilation=2)
    xg, wg = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    F.conv2d(F.pad(xg, (left, right, top, bottom)), wg, stride=2, dilation=2).backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, xg.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, wg.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_same_padding_with_stride1_keeps_size(rng):
    x = rng.standard_normal((2, 3, 6, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 4, 3)).astype(np.float32)
    assert ops.conv2d(x, w, padding="same").shape == (2, 4, 6, 9)


def test_conv2d_float32_stays_float32_and_matches_float64(rng):
    x, w, b = _make(rng, 2, 3, 9, 8, 5, 3, 3, 1)
    y32 = ops.conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 2, 1)
    assert y32.dtype == np.float32 and y32.flags.c_contiguous
    np.testing.assert_allclose(y32, ops.conv2d(x, w, b, 2, 1), rtol=1e-4, atol=1e-5)


def test_conv2d_accepts_non_contiguous_input(rng):
    x, w, b = _make(rng, 2, 3, 6, 6, 2, 3, 3, 1)
    x_t = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    np.testing.assert_allclose(ops.conv2d(x_t, w, b, padding=1), ops.conv2d(x, w, b, padding=1))


# (N, C, L, K, S, stride, padding, dilation, groups)
CASES_1D = [
    pytest.param(1, 3, 9, 4, 3, 1, 0, 1, 1, id="plain"),
    pytest.param(2, 4, 10, 6, 2, 2, "same", 1, 2, id="same-stride2-groups2"),
    pytest.param(2, 3, 11, 2, 3, 3, 2, 2, 1, id="stride3-pad2-dilation2"),
]


@pytest.mark.parametrize("N,C,L,K,S,stride,padding,dilation,groups", CASES_1D)
def test_conv1d_matches_naive_and_finite_differences(rng, N, C, L, K, S, stride, padding, dilation,
                                                      groups):
    x = rng.standard_normal((N, C, L))
    w = rng.standard_normal((K, C // groups, S))
    b = rng.standard_normal(K)
    y = ops.conv1d(x, w, b, stride, padding, dilation, groups)
    pads = _pads(padding if isinstance(padding, str) else (0, padding), 1, L, 1, S, (1, stride),
                 (1, dilation))
    expected = naive.conv2d(x[:, :, None], w[:, :, None], b, (1, stride), pads, (1, dilation),
                            groups)[:, :, 0]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.conv1d(x, w, b, stride, padding, dilation, groups) * dy).sum())

    dx, dw, db = ops.conv1d_backward(dy, x, w, stride, padding, dilation, groups)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, naive.numerical_grad(loss, wrt), rtol=1e-6, atol=1e-7)


def test_batch_chunking_gives_the_same_results(rng, monkeypatch):
    from cudacnn.backends import _numpy_conv

    x, w, b = _make(rng, 5, 4, 7, 6, 6, 3, 3, 2)
    args = (2, 1, 1, 2)
    y = ops.conv2d(x, w, b, *args)
    dy = rng.standard_normal(y.shape)
    grads = ops.conv2d_backward(dy, x, w, *args)
    per_image = 4 * 9 * y.shape[2] * y.shape[3] * x.itemsize
    monkeypatch.setattr(_numpy_conv, "COLUMNS_BUDGET", 2 * per_image)  # chunks of 2, 2, 1 images
    assert len(_numpy_conv._batch_chunks(x, (3, 3), y.shape[2:])) == 3
    np.testing.assert_allclose(ops.conv2d(x, w, b, *args), y, rtol=1e-12)
    for chunked, whole in zip(ops.conv2d_backward(dy, x, w, *args), grads):
        np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def test_fused_relu_is_relu_of_the_plain_op(rng):
    """activation="relu" on conv2d, conv1d and linear equals relu applied afterwards (NaN propagates)."""
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    x[0, 0, 0, 0] = np.nan
    np.testing.assert_array_equal(ops.conv2d(x, w, b, padding=1, activation="relu"),
                                  ops.relu(ops.conv2d(x, w, b, padding=1)))
    np.testing.assert_array_equal(ops.conv1d(x[:, :, 0], w[:, :, 0], b, activation="relu"),
                                  ops.relu(ops.conv1d(x[:, :, 0], w[:, :, 0], b)))
    a, m = rng.standard_normal((5, 6)), rng.standard_normal((3, 6))
    np.testing.assert_array_equal(ops.linear(a, m, b[:3], activation="relu"), ops.relu(ops.linear(a, m, b[:3])))
    assert np.isnan(ops.conv2d(x, w, b, padding=1, activation="relu")).any()
