"""batch_norm, softmax cross-entropy, linear, activations, dropout:
forward against naive loops, backward against finite differences (float64)."""
import numpy as np
import pytest

import naive
from cudacnn import ops


def _check_grads(loss, pairs, rtol=1e-6, atol=1e-8):
    for analytic, wrt in pairs:
        np.testing.assert_allclose(analytic, naive.numerical_grad(loss, wrt), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5), (1, 2, 3, 1)], ids=["2d", "4d", "batch1"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_matches_naive_and_updates_running_stats(rng, shape, training):
    C = shape[1]
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    running_mean, running_var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    ref_y, ref_mean, ref_var = naive.batch_norm(x, gamma, beta, running_mean, running_var,
                                                training, 0.3, 1e-3)
    y, _ = ops.batch_norm(x, gamma, beta, running_mean, running_var, training, 0.3, 1e-3)
    np.testing.assert_allclose(y, ref_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(running_mean, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, ref_var, rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1)], ids=["2d", "4d"])
def test_batch_norm_trains_on_one_value_per_channel(shape):
    """Keras trains through a last batch of one sample: each value is its channel's mean, of
    variance 0, so y = beta, the running variance decays toward 0 and no gradient reaches x."""
    x = np.array([1.0, -2.0, 3.0]).reshape(shape)
    gamma, beta = np.array([2.0, 0.5, 1.0]), np.array([0.5, -1.0, 0.0])
    running_mean, running_var = np.zeros(3), np.ones(3)
    y, cache = ops.batch_norm(x, gamma, beta, running_mean, running_var, True, momentum=0.1, eps=1e-3)
    np.testing.assert_allclose(y.reshape(3), beta, atol=1e-12)
    np.testing.assert_allclose(running_mean, [0.1, -0.2, 0.3], rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.9, rtol=1e-12)
    dy = np.array([0.3, -1.0, 2.0]).reshape(shape)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)
    np.testing.assert_allclose(dx, 0, atol=1e-12)
    np.testing.assert_allclose(dgamma, 0, atol=1e-12)
    np.testing.assert_allclose(dbeta, dy.reshape(3), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)], ids=["2d", "4d"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_backward_matches_finite_differences(rng, shape, training):
    C = shape[1]
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    mean0, var0 = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    dy = rng.standard_normal(shape)

    def loss():
        y, _ = ops.batch_norm(x, gamma, beta, mean0.copy(), var0.copy(), training)
        return float((y * dy).sum())

    _, cache = ops.batch_norm(x, gamma, beta, mean0.copy(), var0.copy(), training)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, cache)
    _check_grads(loss, [(dx, x), (dgamma, gamma), (dbeta, beta)], rtol=1e-5)


@pytest.mark.parametrize("label_kind", ["int", "onehot", "soft"])
def test_softmax_cross_entropy_matches_naive_and_finite_differences(rng, label_kind):
    N, K = 4, 5
    logits = rng.standard_normal((N, K)) * 3
    classes = rng.integers(0, K, N)
    labels = {"int": classes, "onehot": np.eye(K)[classes],
              "soft": rng.dirichlet(np.ones(K), N)}[label_kind]
    loss, cache = ops.softmax_cross_entropy(logits, labels)
    assert loss.shape == () and loss.dtype == np.float64
    np.testing.assert_allclose(loss, naive.softmax_cross_entropy(logits, labels), rtol=1e-12)

    def scalar():
        return float(ops.softmax_cross_entropy(logits, labels)[0])

    _check_grads(scalar, [(ops.softmax_cross_entropy_backward(cache), logits)])


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-5e4, 5e4, 0.0]], dtype=np.float32)
    loss, cache = ops.softmax_cross_entropy(logits, np.array([0, 0]))
    np.testing.assert_allclose(loss, 1e5 / 2, rtol=1e-6)
    dlogits = ops.softmax_cross_entropy_backward(cache)
    assert np.isfinite(dlogits).all()
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)


def test_linear_matches_naive_and_finite_differences(rng):
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    y = ops.linear(x, w, b)
    np.testing.assert_allclose(y, naive.linear(x, w, b), rtol=1e-12)
    np.testing.assert_allclose(ops.linear(x, w), naive.linear(x, w, None), rtol=1e-12)
    dy = rng.standard_normal(y.shape)

    def loss():
        return float((ops.linear(x, w, b) * dy).sum())

    dx, dw, db = ops.linear_backward(dy, x, w)
    _check_grads(loss, [(dx, x), (dw, w), (db, b)])
    assert ops.linear_backward(dy, x, w, need_dx=False)[0] is None


def test_linear_applies_to_the_last_axis(rng):
    x, w = rng.standard_normal((2, 3, 5)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(ops.linear(x, w), naive.linear(x.reshape(6, 5), w, None).reshape(2, 3, 4))


X_ACT = np.array([[-3.0, -0.7, -1e-3, 0.4], [2.5, -40.0, 35.0, 0.9], [1.3, -1.1, 0.2, -0.25]])


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "sigmoid", "tanh"])
def test_activation_matches_naive_and_finite_differences(rng, name):
    x = X_ACT.copy()
    y = getattr(ops, name)(x)
    np.testing.assert_allclose(y, naive.activation(name, x), rtol=1e-12, atol=1e-300)
    dy = rng.standard_normal(x.shape)

    def loss():
        return float((getattr(ops, name)(x) * dy).sum())

    backward = getattr(ops, name + "_backward")
    dx = backward(dy, y) if name in ("sigmoid", "tanh") else backward(dy, x)
    _check_grads(loss, [(dx, x)])


def test_activation_parameters(rng):
    x = X_ACT.copy()
    np.testing.assert_allclose(ops.leaky_relu(x, 0.2), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(ops.elu(x, 0.5), np.where(x > 0, x, 0.5 * np.expm1(x)))
    dy = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ops.leaky_relu_backward(dy, x, 0.2), np.where(x > 0, dy, 0.2 * dy))
    np.testing.assert_allclose(ops.elu_backward(dy, x, 0.5), np.where(x > 0, dy, 0.5 * np.exp(x) * dy))


def test_sigmoid_does_not_overflow_in_float32():
    x = np.array([-1000.0, -88.0, 0.0, 88.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise"):
        y = ops.sigmoid(x)
    np.testing.assert_allclose(y, [0, 1 / (1 + np.exp(88.0)), 0.5, 1, 1], atol=1e-30)


def test_softmax_matches_naive_and_finite_differences(rng):
    x = rng.standard_normal((2, 3, 4)) * 2
    y = ops.softmax(x)
    np.testing.assert_allclose(y, naive.softmax(x), rtol=1e-12)
    dy = rng.standard_normal(x.shape)

    def loss():
        return float((ops.softmax(x) * dy).sum())

    _check_grads(loss, [(ops.softmax_backward(dy, y), x)])


@pytest.mark.parametrize("rate,seed", [(0.3, 0), (0.5, 12345), (0.9, 2**32 - 1)])
def test_dropout_mask_follows_the_counter_rng(rate, seed):
    x = np.arange(1, 3 * 5 * 7 + 1, dtype=np.float32).reshape(3, 5, 7)
    y = ops.dropout(x, rate, True, seed)
    keep = naive.dropout_keep(seed, x.size, rate).reshape(x.shape)
    scale = np.float32(1 / (1 - rate))
    np.testing.assert_array_equal(y, np.where(keep, x * scale, 0))
    dy = np.ones_like(x)
    np.testing.assert_array_equal(ops.dropout_backward(dy, rate, True, seed), np.where(keep, scale, 0))


def test_dropout_statistics_and_identity_cases(rng):
    x = np.ones((200, 500), dtype=np.float32)
    y = ops.dropout(x, 0.3, True, 7)
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02
    assert not np.array_equal(y, ops.dropout(x, 0.3, True, 8))
    assert ops.dropout(x, 0.3, False, 7) is x
    assert ops.dropout(x, 0.0, True, 7) is x
    assert ops.dropout_backward(x, 0.3, False, 7) is x


def test_dropout_backward_matches_finite_differences(rng):
    x = rng.standard_normal((3, 4, 5))
    dy = rng.standard_normal(x.shape)

    def loss():
        return float((ops.dropout(x, 0.4, True, 21) * dy).sum())

    _check_grads(loss, [(ops.dropout_backward(dy, 0.4, True, 21), x)])


def test_softmax_cross_entropy_with_labels_checked_skips_the_range_check_and_gives_nan_when_wrong():
    logits = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    good = np.array([0, 3, 1])
    checked, _ = ops.softmax_cross_entropy(logits, good, labels_checked=True)
    unchecked, _ = ops.softmax_cross_entropy(logits, good)
    assert float(checked) == float(unchecked)
    bad = np.array([0, 4, -1])
    with pytest.raises(ValueError, match=r"label -1 is outside \[0, 4\)"):
        ops.softmax_cross_entropy(logits, bad)
    loss, cache = ops.softmax_cross_entropy(logits, bad, labels_checked=True)
    assert np.isnan(float(loss))  # as the kernels do: never an out-of-bounds read, never silently finite
    dlogits = ops.softmax_cross_entropy_backward(cache)
    probs = ops.softmax(logits)
    np.testing.assert_allclose(dlogits[1:], probs[1:] / 3, rtol=1e-6)  # no target in range: no -1
    with pytest.raises(TypeError, match="labels_checked must be a bool"):
        ops.softmax_cross_entropy(logits, good, labels_checked=1)
