"""Augmentation layers: identity at inference, shapes kept, deterministic under set_seed,
geometric maps doing what they say, gradients matching finite differences."""
import numpy as np
import pytest

import cudacnn
from cudacnn import Sequential
from cudacnn import layers as L

AUGMENTERS = [
    lambda: L.RandomFlip(), lambda: L.RandomTranslation(0.2, 0.2), lambda: L.RandomRotation(0.1),
    lambda: L.RandomZoom(0.2), lambda: L.GaussianNoise(0.1),
    lambda: L.RandomTranslation(0.3, 0.3, fill_mode="constant", fill_value=0.5, interpolation="nearest"),
    lambda: L.RandomZoom((-0.3, 0.3), (-0.1, 0.2), fill_mode="wrap"),
    lambda: L.RandomRotation(0.25, fill_mode="nearest"),
]


def images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, 2, 7, 9)).astype(np.float32)


@pytest.mark.parametrize("make", AUGMENTERS)
def test_identity_at_inference_and_shape_kept_in_training(make):
    x = images()
    layer = make()
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = layer(x, training=True)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not np.array_equal(y, x)


@pytest.mark.parametrize("make", AUGMENTERS)
def test_deterministic_under_set_seed(make):
    x = images()
    cudacnn.set_seed(9)
    first = make()(x, training=True)
    cudacnn.set_seed(9)
    np.testing.assert_array_equal(make()(x, training=True), first)


def test_flip_flips_whole_images():
    x = images(40)
    y = L.RandomFlip("horizontal")(x, training=True)
    flipped = np.array([np.array_equal(a, b[..., ::-1]) for a, b in zip(y, x)])
    kept = np.array([np.array_equal(a, b) for a, b in zip(y, x)])
    assert np.all(flipped | kept) and 5 < flipped.sum() < 35


def test_translation_shifts_by_whole_pixels():
    x = images(1)
    layer = L.RandomTranslation((0.0, 0.0), (2 / 9, 2 / 9), interpolation="nearest", fill_mode="constant")
    y = layer(x, training=True)
    np.testing.assert_allclose(y[..., 2:], x[..., :-2], atol=1e-6)
    np.testing.assert_array_equal(y[..., :2], 0)


def test_reflect_fill_mirrors_the_border():
    x = images(1)
    layer = L.RandomTranslation((0.0, 0.0), (-2 / 9, -2 / 9), interpolation="nearest")
    y = layer(x, training=True)
    np.testing.assert_allclose(y[..., :7], x[..., 2:], atol=1e-6)
    np.testing.assert_allclose(y[..., 7:], x[..., ::-1][..., :2], atol=1e-6)  # d c | reflected


def test_quarter_turn_rotation_on_a_square_image():
    x = np.random.default_rng(1).random((1, 1, 5, 5)).astype(np.float32)
    # A quarter turn is counter-clockwise for a positive factor (Keras), as np.rot90 turns.
    np.testing.assert_allclose(L.RandomRotation((0.25, 0.25))(x, training=True)[0, 0], np.rot90(x[0, 0], 1),
                               atol=1e-5)
    np.testing.assert_allclose(L.RandomRotation((-0.25, -0.25))(x, training=True)[0, 0], np.rot90(x[0, 0], 3),
                               atol=1e-5)


def test_random_crop_random_in_training_centre_at_inference():
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)
    crop = L.RandomCrop(4, 3)
    np.testing.assert_array_equal(crop(x, training=False), x[:, :, 1:5, 1:4])
    y = crop(x, training=True)
    assert y.shape == (2, 1, 4, 3)
    for img, out in zip(x, y):
        assert any(np.array_equal(out, img[:, r:r + 4, c:c + 3]) for r in range(3) for c in range(4))
    dx = crop.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.sum() == y.size
    model = Sequential([L.RandomCrop(4, 4, input_shape=(1, 6, 6)), L.Flatten(), L.Dense(2)])
    assert model.output_shape == (None, 2)
    with pytest.raises(ValueError, match="cannot crop"):
        L.RandomCrop(8, 8)(x)


@pytest.mark.parametrize("make", AUGMENTERS[:5])
def test_backward_matches_finite_differences_of_the_same_draw(make, rng):
    x = rng.random((2, 1, 5, 6))
    layer = make()
    cudacnn.set_seed(5)
    y = layer(x, training=True)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)
    eps = 1e-6
    for i in rng.choice(x.size, size=6, replace=False):
        flat = x.reshape(-1)
        old = flat[i]
        values = []
        for v in (old + eps, old - eps):
            flat[i] = v
            cudacnn.set_seed(5)  # same random transform
            values.append(float((layer(x, training=True) * r).sum()))
        flat[i] = old
        assert abs((values[0] - values[1]) / (2 * eps) - dx.reshape(-1)[i]) < 1e-5


def test_augmented_model_trains_and_predicts_deterministically():
    x, y = images(8), np.arange(8) % 2

    def run(train_seed):
        cudacnn.set_seed(0)
        model = Sequential([L.RandomFlip("horizontal", input_shape=(2, 7, 9)), L.RandomZoom(0.1),
                            L.GaussianNoise(0.1), L.Conv2D(3, 3, activation="relu"), L.Flatten(),
                            L.Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        initial = model.get_weights()
        cudacnn.set_seed(train_seed)  # the augmentation draws (and the shuffle) of fit
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        return model, initial

    model, initial = run(1)
    weights = model.get_weights()
    assert all(w.shape == w0.shape and not np.array_equal(w, w0) for w, w0 in zip(weights, initial))
    again, _ = run(1)  # the same seeds: bitwise the same training
    assert all(np.array_equal(a, b) for a, b in zip(weights, again.get_weights()))
    other, _ = run(2)  # other draws: other weights
    assert not all(np.array_equal(a, b) for a, b in zip(weights, other.get_weights()))
    # At inference the augmenters are the identity: predict is the rest of the model, in any batching.
    probs = model.predict(x)
    expected = x
    for layer in model.layers[3:]:
        expected = layer(expected, training=False)
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), probs)
    np.testing.assert_allclose(model.predict(x, batch_size=3), probs, rtol=1e-6)
    np.testing.assert_array_equal(again.predict(x), probs)


def test_gaussian_noise_has_the_stddev_asked_for():
    cudacnn.set_seed(0)
    x = np.full((50, 2, 50, 50), 3.0, np.float32)  # 250,000 draws: the sample std is within 0.5 %
    for stddev in (0.1, 0.5):
        noise = L.GaussianNoise(stddev)(x, training=True) - x
        assert noise.std() == pytest.approx(stddev, rel=0.01)
        assert abs(noise.mean()) < 5 * stddev / np.sqrt(noise.size)
        # Gaussian, not uniform: 68 % within one stddev, 95 % within two
        assert np.mean(np.abs(noise) < stddev) == pytest.approx(0.6827, abs=0.005)
        assert np.mean(np.abs(noise) < 2 * stddev) == pytest.approx(0.9545, abs=0.005)
    layer = L.GaussianNoise(0.5)
    layer(x, training=True)
    np.testing.assert_array_equal(layer.backward(x), x)  # additive noise: the gradient passes through


def test_translation_shift_stays_within_its_factor():
    """Nearest-pixel translation of images with distinct pixel values: each output is its input
    moved by one whole-pixel shift, at most round(factor * size), and the extremes are reached."""
    n, h, w = 200, 7, 9
    x = (np.arange(h * w, dtype=np.float32) + 1).reshape(1, 1, h, w).repeat(n, axis=0)
    cudacnn.set_seed(3)
    layer = L.RandomTranslation(0.2, 0.3, interpolation="nearest", fill_mode="constant")
    y = layer(x, training=True)
    shifts = set()
    for out in y[:, 0]:
        inside = np.argwhere(out > 0)
        r, c = inside[0]
        source_r, source_c = divmod(int(out[r, c]) - 1, w)
        dr, dc = r - source_r, c - source_c  # the image moved down by dr, right by dc
        expected = np.zeros((h, w), np.float32)
        expected[max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)] = \
            x[0, 0, max(-dr, 0):h + min(-dr, 0), max(-dc, 0):w + min(-dc, 0)]
        np.testing.assert_array_equal(out, expected)
        shifts.add((int(dr), int(dc)))
    rows, cols = {r for r, _ in shifts}, {c for _, c in shifts}
    assert rows == {-1, 0, 1}  # 0.2 * 7 = 1.4 rows
    assert cols == {-3, -2, -1, 0, 1, 2, 3}  # 0.3 * 9 = 2.7 columns


def test_bad_arguments():
    for make in (lambda: L.RandomTranslation(1.5, 0.1), lambda: L.RandomZoom(0.1, fill_mode="mirror"),
                 lambda: L.RandomRotation((0.2, 0.1)), lambda: L.GaussianNoise(-1)):
        with pytest.raises(ValueError):
            make()


@pytest.mark.gpu
@pytest.mark.parametrize("make", AUGMENTERS)
def test_gpu_augmentation_runs_on_the_device(make, cp):
    x = images()
    y = make()(cp.asarray(x), training=True)
    assert isinstance(y, cp.ndarray) and y.shape == x.shape


@pytest.mark.gpu
@pytest.mark.parametrize("make", AUGMENTERS[:4] + AUGMENTERS[5:])
def test_gpu_augmentation_matches_cpu_for_the_same_seed(make, cp):
    x = images()
    cudacnn.set_seed(3)
    expected = make()(x, training=True)
    cudacnn.set_seed(3)
    layer = make()
    np.testing.assert_allclose(cp.asnumpy(layer(cp.asarray(x), training=True)), expected, rtol=1e-5, atol=1e-5)
    dy = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    cudacnn.set_seed(3)
    cpu_layer = make()
    cpu_layer(x, training=True)
    np.testing.assert_allclose(cp.asnumpy(layer.backward(cp.asarray(dy))), cpu_layer.backward(dy),
                               rtol=1e-4, atol=1e-5)
