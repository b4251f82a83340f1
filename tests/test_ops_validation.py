"""Bad input: every op raises ValueError/TypeError naming the offending shapes or values."""
import re

import numpy as np
import pytest

from cudacnn import backend, ops

f32 = np.float32


def z(*shape, dtype=f32):
    return np.zeros(shape, dtype=dtype)


X = z(2, 4, 6, 5)
W = z(8, 4, 3, 3)

# (call, exception, message pattern), one row per entry of the contract's bad-input table,
# then the checks that follow from it in other ops.
BAD_INPUT = [
    pytest.param(lambda: ops.conv2d(z(4, 6, 5), W), ValueError,
                 r"conv2d: x must be 4-D \(N, C, H, W\), got shape \(4, 6, 5\)", id="wrong-ndim"),
    pytest.param(lambda: ops.conv2d(z(2, 3, 6, 5), W), ValueError,
                 r"input has 3 channels but weight \(8, 4, 3, 3\) with groups=1 expects 4",
                 id="channel-mismatch"),
    pytest.param(lambda: ops.conv2d(X, z(6, 1, 3, 3), groups=3), ValueError,
                 r"groups=3 must divide both the input channels \(4\) and the filters \(6\)",
                 id="groups-mismatch"),
    pytest.param(lambda: ops.conv2d(X, W, stride=(1, 0)), ValueError,
                 r"stride must be positive, got \(1, 0\)", id="non-positive-stride"),
    pytest.param(lambda: ops.conv2d(X, W, dilation=0), ValueError,
                 r"dilation must be positive, got 0", id="non-positive-dilation"),
    pytest.param(lambda: ops.conv2d(X, W, padding=-1), ValueError,
                 r"padding must be non-negative, got -1", id="negative-padding"),
    pytest.param(lambda: ops.conv2d(z(1, 4, 3, 4), z(2, 4, 5, 3)), ValueError,
                 r"kernel 5x3 is larger than the padded input 3x4 \(input 3x4",
                 id="kernel-larger-than-padded-input"),
    pytest.param(lambda: ops.conv2d(z(1, 4, 5, 5), z(2, 4, 3, 3), dilation=3), ValueError,
                 r"kernel 7x7 \(kernel \(3, 3\), dilation \(3, 3\)\) .* output would be -1x-1 \(below 1\)",
                 id="output-below-1"),
    pytest.param(lambda: ops.max_pool2d(X, 3, padding=2), ValueError,
                 r"max_pool2d: padding \(2, 2, 2, 2\) .* at most half the kernel \(3, 3\)",
                 id="pool-pad-over-half-kernel"),
    pytest.param(lambda: ops.conv2d(X, W.astype(np.float64)), TypeError,
                 r"w has dtype float64 but x has float32", id="dtype-mismatch"),
    pytest.param(lambda: ops.conv2d(X.astype(np.int32), W), TypeError,
                 r"x has dtype int32; expected float32 or float64", id="non-float-dtype"),
    pytest.param(lambda: ops.conv2d(X.tolist(), W), TypeError,
                 r"x must be a numpy or cupy array, got list", id="not-an-array"),
    # Checks that follow from the table in the other ops.
    pytest.param(lambda: ops.conv2d(X, W, z(7)), ValueError,
                 r"bias has shape \(7,\) but weight \(8, 4, 3, 3\) needs \(8,\)", id="conv-bias-shape"),
    pytest.param(lambda: ops.conv2d(X, W, padding="full"), ValueError,
                 r"padding must be an int, a pair, 'valid' or 'same', got 'full'", id="unknown-padding"),
    pytest.param(lambda: ops.conv2d(X, W, algo="fft"), ValueError, r"algo must be one of .* 'fft'",
                 id="unknown-algo"),
    pytest.param(lambda: ops.conv2d_backward(z(2, 8, 4, 4), X, W), ValueError,
                 r"dy has shape \(2, 8, 4, 4\) but .* has shape \(2, 8, 4, 3\)", id="conv-dy-shape"),
    pytest.param(lambda: ops.conv1d(z(2, 4, 6, 5), z(8, 4, 3)), ValueError,
                 r"conv1d: x must be 3-D \(N, C, L\), got shape \(2, 4, 6, 5\)", id="conv1d-ndim"),
    pytest.param(lambda: ops.conv1d(z(2, 3, 6), z(8, 4, 3)), ValueError,
                 r"conv1d: input has 3 channels but weight \(8, 4, 3\) with groups=1 expects 4",
                 id="conv1d-channels"),
    pytest.param(lambda: ops.conv1d(z(2, 4, 6), z(8, 4, 3), stride=-2), ValueError,
                 r"conv1d: stride must be positive, got -2", id="conv1d-stride"),
    pytest.param(lambda: ops.max_pool2d(z(1, 1, 3, 3), 4), ValueError,
                 r"max_pool2d: kernel 4x4 is larger than the padded input 3x3 .* 0x0 \(below 1\)",
                 id="pool-output-below-1"),
    pytest.param(lambda: ops.avg_pool2d(X, 2, stride=0), ValueError,
                 r"avg_pool2d: stride must be positive, got 0", id="pool-stride"),
    pytest.param(lambda: ops.max_pool2d_backward(z(2, 4, 3, 3), X, 2), ValueError,
                 r"dy has shape \(2, 4, 3, 3\) but pooling x \(2, 4, 6, 5\) gives output shape "
                 r"\(2, 4, 3, 2\)", id="pool-dy-shape"),
    pytest.param(lambda: ops.max_pool2d_backward(z(2, 4, 3, 2), X, 2, indices=z(2, 4, 3, 2)),
                 TypeError, r"indices must be int32 of shape \(2, 4, 3, 2\), got float32",
                 id="pool-indices-dtype"),
    pytest.param(lambda: ops.batch_norm(X, z(3), z(4), z(4), z(4), True), ValueError,
                 r"gamma has shape \(3,\) but x \(2, 4, 6, 5\) has 4 channels", id="bn-channels"),
    pytest.param(lambda: ops.batch_norm(X, z(4), z(4), z(4), z(4), True, momentum=1.5),
                 ValueError, r"momentum must be in \[0.0, 1.0\], got 1.5", id="bn-momentum"),
    pytest.param(lambda: ops.softmax_cross_entropy(z(3, 5), np.array([0, 5, 1])), ValueError,
                 r"label 5 is outside \[0, 5\) for logits \(3, 5\)", id="ce-label-range"),
    pytest.param(lambda: ops.softmax_cross_entropy(z(3, 5), np.array([0, 1])), ValueError,
                 r"labels has shape \(2,\) but logits \(3, 5\) needs \(3,\)", id="ce-label-count"),
    pytest.param(lambda: ops.softmax_cross_entropy(z(3, 5), np.array([0.0, 1.0, 2.0])),
                 TypeError, r"1-D labels must be integer class indices, got dtype float64",
                 id="ce-float-indices"),
    pytest.param(lambda: ops.conv2d(z(1, 2, 5, 5), z(3, 2, 3, 3), activation="tanh"), ValueError,
                 r"conv2d: activation must be None or 'relu'", id="conv2d-unfusable-activation"),
    pytest.param(lambda: ops.linear(z(3, 5), z(4, 5), activation="softmax"), ValueError,
                 r"linear: activation must be None or 'relu'", id="linear-unfusable-activation"),
    pytest.param(lambda: ops.linear(z(3, 5), z(4, 6)), ValueError,
                 r"x has 5 features \(shape \(3, 5\)\) but weight \(4, 6\) expects 6", id="linear-features"),
    pytest.param(lambda: ops.relu_backward(z(3, 4), z(4, 3)), ValueError,
                 r"dy has shape \(3, 4\) but x has shape \(4, 3\)", id="activation-shape"),
    pytest.param(lambda: ops.dropout(z(3, 4), 1.0, True, 0), ValueError,
                 r"rate must be in \[0.0, 1.0\), got 1.0", id="dropout-rate"),
    pytest.param(lambda: ops.dropout(z(3, 4), 0.5, True, 1.5), TypeError,
                 r"seed must be an int, got 1.5", id="dropout-seed"),
    pytest.param(lambda: ops.sgd_update(z(3, 4), z(4, 3), None, 0.1), ValueError,
                 r"g has shape \(4, 3\) but p has shape \(3, 4\)", id="optimizer-shape"),
    pytest.param(lambda: ops.sgd_update(z(3, 4), z(3, 4), None, 0.1, momentum=0.9), ValueError,
                 r"momentum=0.9 needs a velocity array", id="sgd-missing-velocity"),
    pytest.param(lambda: ops.adam_update(z(4, 3).T, z(3, 4), z(3, 4), z(3, 4), 0.1), ValueError,
                 r"p \(shape \(3, 4\)\) is updated in place and must be C-contiguous",
                 id="optimizer-non-contiguous"),
    pytest.param(lambda: ops.adam_update(z(3), z(3), z(3), z(3), 0.1, step=0), ValueError,
                 r"step must be >= 1, got 0", id="adam-step"),
    pytest.param(lambda: ops.relu(z(0, 3)), ValueError, r"relu: x is empty, shape \(0, 3\)",
                 id="empty-array"),
]


@pytest.mark.parametrize("call,error,pattern", BAD_INPUT)
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


class _PretendGpuArray(np.ndarray):
    """A numpy array the device check is told to treat as a cupy array."""


def test_device_mismatch_names_both_arguments(monkeypatch):
    monkeypatch.setattr(backend, "is_gpu_array", lambda a: isinstance(a, _PretendGpuArray))
    w_gpu = W.view(_PretendGpuArray)
    with pytest.raises(TypeError, match=r"conv2d: w is a cupy \(GPU\) array but x is a numpy "
                                        r"\(CPU\) array"):
        ops.conv2d(X, w_gpu)


@pytest.mark.gpu
def test_device_mismatch_with_real_cupy_arrays(cp):
    with pytest.raises(TypeError, match=r"w is a cupy \(GPU\) array but x is a numpy \(CPU\) array"):
        ops.conv2d(X, cp.asarray(W))
    with pytest.raises(TypeError, match=r"x has dtype float64; expected float32 for cupy"):
        ops.relu(cp.zeros((2, 2), dtype=cp.float64))


def test_messages_start_with_the_op_name():
    for name, call in [("conv2d_backward", lambda: ops.conv2d_backward(X, X, W, stride=0)),
                       ("avg_pool2d_backward", lambda: ops.avg_pool2d_backward(X, X, 2, padding=-1)),
                       ("global_avg_pool2d", lambda: ops.global_avg_pool2d(z(2, 3))),
                       ("linear_backward", lambda: ops.linear_backward(z(3, 4), z(3, 5), z(4, 6)))]:
        with pytest.raises(ValueError, match="^" + re.escape(name) + ": "):
            call()


# Values equal to a valid argument that are still bad arguments: 1.0 == True == 1.
EQUAL_BUT_INVALID = [
    pytest.param(dict(stride=True), TypeError, r"stride must be an int", id="bool-stride"),
    pytest.param(dict(stride=(1.0, 1.0)), TypeError, r"stride must be an int", id="float-stride-pair"),
    pytest.param(dict(dilation=1.0), TypeError, r"dilation must be an int", id="float-dilation"),
    pytest.param(dict(groups=True), TypeError, r"groups must be an int", id="bool-groups"),
    pytest.param(dict(padding=(1.0, 1)), TypeError, r"padding must be an int", id="float-padding"),
]


@pytest.mark.parametrize("kwargs,error,pattern", EQUAL_BUT_INVALID)
def test_checked_geometry_is_remembered_only_for_the_same_argument(kwargs, error, pattern):
    """A geometry checked once is remembered, yet an equal value of a bad type still raises."""
    good = dict(stride=1, dilation=1, groups=1, padding=(1, 1))
    expected = ops.conv2d(X, W, **good)
    np.testing.assert_array_equal(ops.conv2d(X, W, **good), expected)
    with pytest.raises(error, match=pattern):
        ops.conv2d(X, W, **{**good, **kwargs})
    # The accepted spellings that are not plain ints or tuples still work, unremembered.
    np.testing.assert_array_equal(ops.conv2d(X, W, stride=np.int64(1), padding=[1, 1]), expected)


def test_pooling_geometry_is_remembered_only_for_the_same_argument():
    expected = ops.max_pool2d(X, 2, stride=2)
    np.testing.assert_array_equal(ops.max_pool2d(X, 2, stride=2), expected)
    with pytest.raises(TypeError, match=r"max_pool2d: kernel_size must be an int"):
        ops.max_pool2d(X, 2.0, stride=2)
    with pytest.raises(TypeError, match=r"max_pool2d: stride must be an int"):
        ops.max_pool2d(X, 2, stride=(True, 2))
    np.testing.assert_array_equal(ops.max_pool2d(X, [2, 2], stride=np.int32(2)), expected)


def test_a_failed_check_is_not_remembered():
    bad = z(2, 3, 6, 5)  # 3 channels for W's 4
    for _ in range(2):
        with pytest.raises(ValueError, match=r"input has 3 channels"):
            ops.conv2d(bad, W)
