"""Losses (value and gradient) against PyTorch autograd and hand formulas, including the
clipped probabilities of the plain-probability paths; binary_accuracy's thresholds."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cudacnn import losses, metrics

EPS = losses.EPSILON


def torch_value_and_grad(fn, y_pred, *args):
    """(loss, d loss / d y_pred) by autograd, in float64."""
    p = torch.tensor(y_pred, dtype=torch.float64, requires_grad=True)
    loss = fn(p, *args)
    loss.backward()
    return loss.item(), p.grad.numpy()


def check(loss, y_pred, y_true, oracle, logits=False, rtol=1e-10):
    value, grad = loss.value_and_grad(y_pred, y_true, logits=logits)
    expected_value, expected_grad = oracle
    assert np.ndim(value) == 0
    assert float(value) == pytest.approx(expected_value, rel=rtol)
    assert grad.shape == y_pred.shape
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=1e-12)
    return grad


def probability_rows(rng, n=6, k=4):
    """Softmax rows, then rows with entries outside [EPS, 1 - EPS] (strictly, so torch.clamp's
    gradient is zero there as well): exact 0 and 1, and 1e-9 under the clip."""
    z = rng.standard_normal((n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    p[0] = [1.0, 0.0, 0.0, 0.0]  # both clips in one row
    p[1] = [1e-9, 0.5, 0.5 - 1e-9, 0.0]
    p[2] *= 0.8  # a row that does not sum to 1: Keras scales it first
    return p


def clipped_ce(p, onehot):
    """Keras 3's categorical cross-entropy on probabilities: rows scaled to sum 1, then clipped."""
    q = p / p.sum(-1, keepdim=True)
    return -(onehot * torch.log(torch.clamp(q, EPS, 1 - EPS))).sum() / p.shape[0]


def test_mean_squared_error_matches_the_hand_formula_and_torch(rng):
    y_pred = rng.standard_normal((5, 3))
    y_true = rng.standard_normal((5, 3))
    diff = y_pred - y_true
    hand = ((diff ** 2).mean(), 2 * diff / diff.size)
    torch_oracle = torch_value_and_grad(F.mse_loss, y_pred, torch.tensor(y_true))
    np.testing.assert_allclose(hand[1], torch_oracle[1], rtol=1e-12)  # the two oracles agree
    for name in ("mse", "mean_squared_error"):
        check(losses.get(name), y_pred, y_true, torch_oracle)
    # targets of another shape but the same size are reshaped (a column vector for (N,) targets)
    check(losses.MeanSquaredError(), y_pred[:, :1], y_true[:, 0],
          torch_value_and_grad(F.mse_loss, y_pred[:, :1], torch.tensor(y_true[:, :1])))


def test_mean_squared_error_small_case_by_hand():
    value, grad = losses.MeanSquaredError().value_and_grad(np.array([[1.0, 3.0]]), np.array([[0.0, 0.0]]))
    assert float(value) == pytest.approx(5.0)  # (1 + 9) / 2
    np.testing.assert_allclose(grad, [[1.0, 3.0]])  # 2 * diff / 2


@pytest.mark.parametrize("soft", [False, True], ids=["one_hot", "probability_rows"])
def test_categorical_crossentropy_on_logits(rng, soft):
    z = rng.standard_normal((6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    targets = np.eye(4)[labels]
    if soft:  # rows summing to 1, as the fused op requires
        t = rng.random((6, 4))
        targets = t / t.sum(1, keepdims=True)
    oracle = torch_value_and_grad(F.cross_entropy, z, torch.tensor(targets))
    check(losses.CategoricalCrossentropy(from_logits=True), z, targets, oracle)
    check(losses.CategoricalCrossentropy(), z, targets, oracle, logits=True)  # the fused training path


def test_categorical_crossentropy_on_probabilities_clips_as_keras(rng):
    p = probability_rows(rng)
    labels = np.array([0, 3, 2, 1, 0, 3])  # row 0: p = 1 (clipped), row 1: p = 0 (clipped)
    onehot = np.eye(4)[labels]
    oracle = torch_value_and_grad(clipped_ce, p, torch.tensor(onehot))
    grad = check(losses.CategoricalCrossentropy(), p, onehot, oracle)
    assert grad[0, 0] == 0 and grad[1, 3] == 0  # clipped: no gradient, though the target is 1 there
    assert np.isfinite(grad).all()
    # the clipped value: log(1 - EPS) and log(EPS) for rows 0 and 1
    value = float(losses.CategoricalCrossentropy().value(p[:2], onehot[:2]))
    assert value == pytest.approx(-(np.log(1 - EPS) + np.log(EPS)) / 2, rel=1e-12)


def test_sparse_categorical_crossentropy_on_logits_and_probabilities(rng):
    z = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 3, 2, 1, 0, 3])
    oracle = torch_value_and_grad(F.cross_entropy, z, torch.tensor(labels))
    loss = losses.SparseCategoricalCrossentropy()
    check(losses.SparseCategoricalCrossentropy(from_logits=True), z, labels, oracle)
    check(loss, z, labels.reshape(-1, 1), oracle, logits=True)  # (N, 1) labels as well
    p = probability_rows(rng)
    onehot = np.eye(4)[labels]
    oracle = torch_value_and_grad(clipped_ce, p, torch.tensor(onehot))
    grad = check(loss, p, labels, oracle)
    check(loss, p, labels.astype(np.float64), oracle)  # integral float labels
    assert grad[0, 0] == 0 and grad[1, 3] == 0


def test_binary_crossentropy_on_logits(rng):
    z = rng.standard_normal((5, 3)) * 4
    z[0, 0], z[0, 1] = 40.0, -40.0  # far in the tails: still finite and exact
    y = rng.random((5, 3))  # soft targets as well as 0/1
    y[1] = [0.0, 1.0, 1.0]
    oracle = torch_value_and_grad(F.binary_cross_entropy_with_logits, z, torch.tensor(y))
    check(losses.BinaryCrossentropy(from_logits=True), z, y, oracle)
    check(losses.BinaryCrossentropy(), z, y, oracle, logits=True)


def test_binary_crossentropy_on_probabilities_clips_as_keras(rng):
    p = rng.uniform(0.05, 0.95, (5, 3))
    p[0] = [0.0, 1.0, 1e-9]  # clipped entries
    p[1] = [1.0, 0.0, 1 - 1e-9]
    y = rng.integers(0, 2, (5, 3)).astype(np.float64)
    y[0] = [1.0, 0.0, 1.0]  # wrong side of the clip: large but finite loss, zero gradient
    y[1] = [1.0, 0.0, 0.3]

    def clipped_bce(q, t):
        q = torch.clamp(q, EPS, 1 - EPS)
        return -(t * torch.log(q) + (1 - t) * torch.log(1 - q)).mean()

    oracle = torch_value_and_grad(clipped_bce, p, torch.tensor(y))
    grad = check(losses.BinaryCrossentropy(), p, y, oracle, rtol=1e-9)
    np.testing.assert_array_equal(grad[:2], 0)
    # unclipped entries: torch's own binary_cross_entropy agrees
    inner = torch_value_and_grad(F.binary_cross_entropy, p[2:], torch.tensor(y[2:]))
    check(losses.BinaryCrossentropy(), p[2:], y[2:], inner, rtol=1e-9)


def test_loss_called_keras_style_takes_targets_first():
    value = losses.get("mse")(np.array([[0.0, 0.0]]), np.array([[1.0, 3.0]]))
    assert float(value) == pytest.approx(5.0)


@pytest.mark.parametrize("y_pred, logits, expected", [
    ([0.55, 0.45, 0.65, 0.35, 0.501, 0.499], False, [1, 0, 1, 0, 1, 0]),
    ([0.1, -0.1, 2.0, -2.0, 0.55, -0.55], True, [1, 0, 1, 0, 1, 0]),  # logits: threshold 0
])
def test_binary_accuracy_thresholds(y_pred, logits, expected):
    y_pred = np.array(y_pred).reshape(-1, 1)
    expected = np.array(expected)
    correct, count = metrics.binary_accuracy(y_pred, expected, logits)
    assert (int(correct), count) == (6, 6)
    correct, count = metrics.binary_accuracy(y_pred, 1 - expected, logits)
    assert (int(correct), count) == (0, 6)
    soft = np.where(expected == 1, 0.55, 0.45)  # soft targets are read by their own 0.5 threshold
    assert int(metrics.binary_accuracy(y_pred, soft, logits)[0]) == 6


def test_cross_entropy_on_feature_maps_is_per_position_over_channels(rng):
    """Segmentation-style outputs (N, C, H, W): torch's cross_entropy over the class axis 1,
    averaged over every position; our fused path (logits) and probability path agree."""
    logits = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 4, 5))
    onehot = np.moveaxis(np.eye(3)[labels], -1, 1)
    oracle = torch_value_and_grad(lambda z, t: torch.nn.functional.cross_entropy(z, t), logits,
                                  torch.tensor(labels))
    for loss, targets in ((losses.SparseCategoricalCrossentropy(), labels),
                          (losses.CategoricalCrossentropy(), onehot)):
        value, grad = loss.value_and_grad(logits, targets, logits=True)
        np.testing.assert_allclose(float(value), oracle[0], rtol=1e-10)
        np.testing.assert_allclose(grad, oracle[1], rtol=1e-8, atol=1e-12)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    value, _ = losses.CategoricalCrossentropy().value_and_grad(probabilities, onehot)
    np.testing.assert_allclose(float(value), oracle[0], rtol=1e-8)


def test_accuracy_on_feature_maps_counts_positions(rng):
    from cudacnn import metrics
    y_pred = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 4, 5))
    expected = (y_pred.argmax(axis=1) == labels).sum()
    correct, count = metrics.sparse_categorical_accuracy(y_pred, labels)
    assert (int(correct), count) == (expected, 40)
    correct, count = metrics.categorical_accuracy(y_pred, np.moveaxis(np.eye(3)[labels], -1, 1))
    assert (int(correct), count) == (expected, 40)


def test_a_segmentation_net_trains_per_position():
    import cudacnn
    from cudacnn import layers as L
    cudacnn.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 2, 5, 5)).astype(np.float32)
    labels = (x[:, 0] > x[:, 1]).astype(np.int64)  # per pixel: which channel is larger
    model = cudacnn.Sequential([L.Conv2D(2, 1, activation="softmax", input_shape=(2, 5, 5))])
    model.compile(cudacnn.optimizers.Adam(0.05), "sparse_categorical_crossentropy", ["acc"])
    history = model.fit(x, labels, epochs=15, batch_size=4, verbose=0)
    assert history.history["acc"][-1] > 0.95
    loss, acc = model.evaluate(x, labels, verbose=0)
    assert acc == pytest.approx((model.predict(x).argmax(axis=1) == labels).mean())


@pytest.mark.parametrize("name,power", [("hinge", 1), ("squared_hinge", 2)])
@pytest.mark.parametrize("labels", ["plus_minus_one", "zero_one"])
def test_hinge_losses_match_keras_formula_and_torch_gradients(rng, name, power, labels):
    """Keras: mean(max(1 - y * y_pred, 0) ** power), 0/1 targets read as -1/1."""
    y_pred = rng.standard_normal((6, 3)) * 2
    signs = rng.choice([-1.0, 1.0], size=(6, 3))
    y_true = signs if labels == "plus_minus_one" else (signs + 1) / 2
    oracle = torch_value_and_grad(
        lambda p, t: torch.clamp(1 - t * p, min=0).pow(power).mean(), y_pred, torch.tensor(signs))
    check(losses.get(name), y_pred, y_true, oracle)
