"""Each layer: shapes, forward against the ops it wraps, backward against central
differences in float64, config round trips and clear errors."""
import json

import numpy as np
import pytest

import cudacnn
from cudacnn import Sequential, layers as L, ops
from cudacnn.layers.base import reset_names
from naive import assert_sampled_gradients


def numeric_check(layer, x, rng, entries=5, atol=1e-6, rtol=1e-5, training=True):
    """Compare layer.backward (input and weight gradients) with central differences of sum(y * r)."""
    layer.ensure_built(tuple(x.shape[1:]))
    layer.astype(np.float64)
    y = layer.forward(x, training=training)
    r = rng.standard_normal(y.shape)
    dx = layer.backward(r)

    def objective():
        return float((layer.forward(x, training=training) * r).sum())

    targets = [("x", x, dx)] + [(k, layer.params[k], layer.grads[k]) for k in layer.params]
    assert_sampled_gradients(objective, targets, rng, entries, atol, rtol)


@pytest.mark.parametrize("make, shape", [
    (lambda: L.Conv2D(3, 3, padding="same", activation="relu"), (2, 2, 5, 5)),
    (lambda: L.Conv2D(4, (3, 2), strides=2, dilation_rate=1, groups=2, activation="tanh"), (2, 2, 7, 6)),
    (lambda: L.Conv1D(3, 3, padding="same", activation="elu"), (2, 2, 7)),
    (lambda: L.Dense(4, activation="sigmoid"), (3, 5)),
    (lambda: L.Dense(4, activation="softmax"), (3, 5)),
    (lambda: L.Dense(4, use_bias=False, activation="leaky_relu"), (3, 5)),
    (lambda: L.Dense(4, activation="relu"), (3, 5)),
    (lambda: L.Conv1D(3, 3, activation="relu"), (2, 2, 7)),
    (lambda: L.BatchNormalization(), (4, 3, 3, 3)),
    (lambda: L.BatchNormalization(momentum=0.9, epsilon=1e-5), (5, 3)),
    (lambda: L.BatchNormalization(), (3, 2, 5)),
    (lambda: L.BatchNormalization(center=False), (4, 3, 3, 3)),
    (lambda: L.BatchNormalization(scale=False), (5, 3)),
    (lambda: L.BatchNormalization(center=False, scale=False), (3, 2, 5)),
    (lambda: L.MaxPooling2D(), (2, 2, 4, 5)),
    (lambda: L.MaxPooling2D(3, strides=1, padding="same"), (2, 2, 4, 4)),
    (lambda: L.AveragePooling2D(2, padding="same"), (2, 2, 5, 5)),
    (lambda: L.GlobalAveragePooling2D(), (2, 3, 4, 4)),
    (lambda: L.Flatten(), (2, 3, 2, 2)),
    (lambda: L.Activation("tanh"), (2, 6)),
    (lambda: L.LeakyReLU(), (2, 6)),
    (lambda: L.ELU(alpha=0.5), (2, 6)),
    (lambda: L.ReLU(), (2, 6)),
    (lambda: L.Dropout(0.0), (2, 6)),
    (lambda: L.Conv2D(3, 2, activation="softmax"), (2, 2, 4, 3)),
    (lambda: L.Softmax(), (2, 3, 2, 5)),
])
def test_backward_matches_finite_differences(make, shape, rng):
    numeric_check(make(), rng.standard_normal(shape), rng)


def test_merge_layers_backward(rng):
    a, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    add = L.Add()
    add.ensure_built([a.shape[1:], b.shape[1:]])
    assert np.array_equal(add.forward([a, b]), a + b)
    dy = rng.standard_normal(a.shape)
    assert all(np.array_equal(g, dy) for g in add.backward(dy))
    c = rng.standard_normal((2, 1, 2, 2))
    cat = L.Concatenate()
    assert cat.ensure_built([a.shape[1:], c.shape[1:]]) == (4, 2, 2)
    y = cat.forward([a, c])
    np.testing.assert_array_equal(y, np.concatenate([a, c], axis=1))
    da, dc = cat.backward(y)
    np.testing.assert_array_equal(da, a)
    np.testing.assert_array_equal(dc, c)


def test_relu_layers_fuse_the_activation_into_their_op(rng, monkeypatch):
    """Conv2D/Conv1D/Dense(activation="relu") pass activation="relu" to their op instead of a separate relu."""
    def no_separate_relu(*args, **kwargs):
        raise AssertionError("a separate relu pass ran")

    monkeypatch.setattr(ops, "relu", no_separate_relu)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)  # the layers' weights are float32
    for layer, inputs in ((L.Conv2D(4, 3, activation="relu"), x), (L.Conv1D(4, 3, activation="relu"), x[:, :, 0]),
                          (L.Dense(5, activation="relu"), x.reshape(2, -1))):
        y = layer(inputs)
        assert (y >= 0).all() and (y == 0).any()
        dx = layer.backward(rng.standard_normal(y.shape).astype(np.float32))
        assert dx.shape == inputs.shape  # the mask comes from the fused output (finite differences: above)


def test_forward_is_the_op_it_wraps(rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    conv = L.Conv2D(4, 3, strides=2, padding="same", activation="relu")
    y = conv(x)
    expected = ops.relu(ops.conv2d(x, conv.params["kernel"], conv.params["bias"], stride=2, padding="same"))
    np.testing.assert_array_equal(y, expected)
    assert conv.params["kernel"].shape == (4, 3, 3, 3) and y.shape == (2, 4, 3, 3)
    dense = L.Dense(5)
    z = dense(x.reshape(2, -1))
    np.testing.assert_array_equal(z, ops.linear(x.reshape(2, -1), dense.params["kernel"], dense.params["bias"]))
    assert dense.params["kernel"].shape == (5, 108)


def test_flatten_keeps_nchw_order():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(L.Flatten()(x), x.reshape(2, 12))


def test_dropout_only_in_training_and_backward_reuses_the_mask(rng):
    x = rng.standard_normal((50, 40)).astype(np.float32)
    layer = L.Dropout(0.5)
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = layer(x, training=True)
    dropped = y == 0
    assert 0.35 < dropped.mean() < 0.65
    np.testing.assert_allclose(y[~dropped], 2 * x[~dropped], rtol=1e-6)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, dropped)
    assert not np.array_equal(layer(x, training=True) == 0, dropped)  # a fresh mask each call


def test_batchnorm_keras_momentum_and_inference():
    layer = L.BatchNormalization(momentum=0.9, epsilon=1e-3)
    x = np.random.default_rng(0).standard_normal((8, 2, 3, 3)).astype(np.float32) * 3 + 5
    layer(x, training=True)
    batch_mean = x.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.state["moving_mean"], 0.1 * batch_mean, rtol=1e-5)
    y = layer(x, training=False)
    expected = (x - layer.state["moving_mean"][None, :, None, None]) / np.sqrt(
        layer.state["moving_variance"][None, :, None, None] + 1e-3)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert layer.count_params() == 8
    assert set(layer.params) == {"gamma", "beta"} and set(layer.state) == {"moving_mean", "moving_variance"}


@pytest.mark.parametrize("center, scale, names", [
    (True, True, ["gamma", "beta", "moving_mean", "moving_variance"]),
    (False, True, ["gamma", "moving_mean", "moving_variance"]),
    (True, False, ["beta", "moving_mean", "moving_variance"]),
    (False, False, ["moving_mean", "moving_variance"]),
])
def test_batchnorm_creates_gamma_and_beta_only_as_keras_does(center, scale, names, rng):
    """No gamma without scale, no beta without center: the weights, their count and get/set_weights
    order (gamma, beta, moving_mean, moving_variance) are Keras's; the output is as gamma 1, beta 0."""
    layer = L.BatchNormalization(center=center, scale=scale)
    x = rng.standard_normal((6, 4, 3, 3)).astype(np.float32) * 2 + 1
    y = layer(x, training=True)
    assert [key for key, _ in layer.weight_items()] == names
    assert len(layer.get_weights()) == len(names) and layer.count_params() == 4 * len(names)
    assert layer.count_trainable_params() == 4 * (center + scale)
    full = L.BatchNormalization()
    np.testing.assert_allclose(y, full(x, training=True), rtol=1e-5, atol=1e-6)
    layer.backward(np.ones_like(y))
    assert list(layer.grads) == [name for name in ("gamma", "beta") if name in names]
    values = [np.full(4, i + 2.0, np.float32) for i in range(len(names))]
    layer.set_weights(values)
    for key, value in zip(names, values):
        np.testing.assert_array_equal((layer.params if key in layer.params else layer.state)[key], value)
    stats = dict(zip(names, values))
    expected = ((x - stats["moving_mean"][:, None, None]) / np.sqrt(stats["moving_variance"][:, None, None] + 1e-3)
                * stats.get("gamma", np.ones(4))[:, None, None] + stats.get("beta", np.zeros(4))[:, None, None])
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("center, scale", [(False, True), (True, False), (False, False)])
def test_batchnorm_without_gamma_or_beta_trains_saves_and_loads(center, scale, tmp_path, rng):
    from cudacnn import io

    cudacnn.set_seed(0)
    model = cudacnn.Sequential([L.Conv2D(3, 3, input_shape=(2, 6, 6)),
                                L.BatchNormalization(center=center, scale=scale),
                                L.Flatten(), L.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = rng.standard_normal((16, 2, 6, 6)).astype(np.float32), rng.integers(0, 2, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    bn = model.layers[1]
    assert [key.split("/")[1] for key in model.named_weights() if key.startswith(bn.name)] == [
        name for name, present in (("gamma", scale), ("beta", center), ("moving_mean", True),
                                   ("moving_variance", True)) if present]
    io.save_model(model, tmp_path / "m.cudacnn")
    loaded = io.load_model(tmp_path / "m.cudacnn")
    assert list(loaded.named_weights()) == list(model.named_weights())
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    io.save_weights(model, tmp_path / "w.safetensors")
    loaded.set_weights([w * 0 for w in loaded.get_weights()])
    io.load_weights(loaded, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_frozen_batchnorm_runs_in_inference_mode():
    layer = L.BatchNormalization()
    x = np.random.default_rng(1).standard_normal((8, 2)).astype(np.float32) + 3
    layer.trainable = False
    y = layer(x, training=True)
    np.testing.assert_array_equal(layer.state["moving_mean"], 0)
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-3), rtol=1e-6)


def test_auto_names_follow_keras():
    reset_names()
    names = [L.Conv2D(1, 1).name, L.Conv2D(1, 1).name, L.MaxPooling2D().name, L.Dense(1).name,
             L.BatchNormalization().name, L.GlobalAveragePooling2D().name, L.ReLU().name]
    assert names == ["conv2d", "conv2d_1", "max_pooling2d", "dense", "batch_normalization",
                     "global_average_pooling2d", "re_lu"]


ALL_LAYERS = [
    L.Conv2D(8, (3, 5), strides=(2, 1), padding="same", dilation_rate=1, groups=1, activation="relu",
             use_bias=False, kernel_initializer="he_normal", input_shape=(3, 8, 8)),
    L.Conv1D(4, 3, activation="tanh"), L.Dense(7, activation="softmax", kernel_initializer="lecun_normal"),
    L.Flatten(), L.Dropout(0.25), L.BatchNormalization(momentum=0.9, epsilon=1e-5),
    L.MaxPooling2D(3, strides=2, padding="same"), L.AveragePooling2D(2), L.GlobalAveragePooling2D(),
    L.Activation("sigmoid"), L.ReLU(), L.LeakyReLU(alpha=0.1), L.ELU(alpha=0.7), L.Softmax(),
    L.Add(), L.Concatenate(axis=1), L.RandomFlip("horizontal"), L.RandomTranslation(0.1, 0.2),
    L.RandomRotation(0.05, fill_mode="constant"), L.RandomZoom(0.2, interpolation="nearest"),
    L.RandomCrop(5, 6), L.GaussianNoise(0.1),
]


@pytest.mark.parametrize("layer", ALL_LAYERS, ids=lambda l: type(l).__name__)
def test_config_round_trip(layer):
    config = json.loads(json.dumps(layer.get_config()))
    clone = L.get(type(layer).__name__).from_config(config)
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("make, shape, match", [
    (lambda: L.Dense(3), (2, 3, 4, 4), "Flatten"),
    (lambda: L.Conv2D(3, 3), (2, 4, 4), "rank 3"),
    (lambda: L.Conv2D(3, 5), (2, 1, 4, 4), "too small"),
    (lambda: L.Conv2D(4, 3, groups=2), (2, 3, 6, 6), "divisible"),
    (lambda: L.MaxPooling2D(), (2, 8), r"\(C, H, W\)"),
])
def test_bad_inputs_raise_clear_errors(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(np.zeros(shape, np.float32))


@pytest.mark.parametrize("make, message", [
    (lambda: L.Dense(0), "units must be >= 1, got 0"),
    (lambda: L.Conv2D(4, 3, padding="full"), "padding must be .*got 'full'"),
    (lambda: L.Conv2D(3, 3, groups=2), "groups must be a positive int dividing filters=3, got 2"),
    (lambda: L.Conv2D(6, 3, groups=4), "groups must be a positive int dividing filters=6, got 4"),
    (lambda: L.Conv1D(6, 3, groups=4), "groups must be a positive int dividing filters=6, got 4"),
    (lambda: L.Conv2D(4, 3, groups=0), "groups must be a positive int"),
    (lambda: L.Dropout(1.0), r"Dropout rate must be in \[0.0, 1.0\), got 1.0"),
    (lambda: L.Activation("swish"), "unknown activation 'swish'"),
    (lambda: L.Dense(3, activation="swish"), "unknown activation 'swish'"),
    (lambda: L.BatchNormalization(axis=-1), "channel axis 1.*got -1"),
    (lambda: L.Conv2D(4, 0), "kernel_size must be a positive int"),
    (lambda: L.Conv2D(4, 3, strides=(1, 0)), "strides must be a positive int"),
    (lambda: L.RandomFlip("diagonal"), "RandomFlip mode must be .*got 'diagonal'"),
])
def test_bad_arguments_raise_at_construction_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()  # the constructor alone: no call that could fail for another reason


@pytest.mark.parametrize("make, message", [
    (lambda: L.Concatenate(axis="a"), "Concatenate axis must be an int, got 'a'"),
    (lambda: L.Concatenate(axis=1.5), "Concatenate axis must be an int, got 1.5"),  # int() would give 1
    (lambda: L.Concatenate(axis=True), "Concatenate axis must be an int, got True"),
    (lambda: L.BatchNormalization(axis="1"), "BatchNormalization axis must be an int, got '1'"),
    (lambda: L.BatchNormalization(axis=1.0), "BatchNormalization axis must be an int, got 1.0"),
    (lambda: L.BatchNormalization(axis=True), "BatchNormalization axis must be an int, got True"),
])
def test_a_non_int_axis_is_a_type_error_naming_it(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_numpy_int_axes_are_accepted_and_batchnorm_axis_minus_3_needs_images():
    assert L.Concatenate(axis=np.int64(-1)).axis == -1
    L.BatchNormalization(axis=np.int32(-3))(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"axis -3 is not the channel axis of inputs of shape \(None, 3\)"):
        L.BatchNormalization(axis=-3)(np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("make", [lambda: L.Dense(3, kernel_initializer="nope"),
                                  lambda: L.Conv2D(3, 3, bias_initializer="nope")])
def test_an_unknown_initializer_is_refused_at_construction(make):
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        make()


def test_calling_a_layer_on_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="arrays with a batch axis"):
        L.Dense(2)([1.0, 2.0])
    with pytest.raises(TypeError, match="arrays with a batch axis"):
        L.Dense(2)(np.zeros(3, np.float32))


def test_leaky_relu_slopes_are_keras_defaults():
    """activation="leaky_relu" slopes by 0.2 (keras.activations.leaky_relu); the LeakyReLU layer by 0.3."""
    x = np.array([[-10.0, 4.0]], np.float32)
    np.testing.assert_allclose(L.Activation("leaky_relu")(x), [[-2.0, 4.0]])
    np.testing.assert_allclose(L.LeakyReLU()(x), [[-3.0, 4.0]])
    np.testing.assert_allclose(L.LeakyReLU(negative_slope=0.1)(x), [[-1.0, 4.0]])
    dense = L.Dense(1, activation="leaky_relu", use_bias=False, kernel_initializer="ones")
    np.testing.assert_allclose(dense(np.array([[-1.0, -2.0]], np.float32)), [[-0.6]], rtol=1e-6)


def test_leaky_relu_slope_may_not_be_negative():
    """As in Keras: the layer's backward reads the sign of its output, wrong for a negative slope."""
    with pytest.raises(ValueError, match=r"LeakyReLU: negative_slope must be in \[0.0, inf\), got -0.5"):
        L.LeakyReLU(negative_slope=-0.5)
    layer = L.LeakyReLU(negative_slope=0.0)
    x = np.array([[-2.0, 0.5]], np.float32)
    np.testing.assert_array_equal(layer(x, training=True), [[0.0, 0.5]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2), np.float32)), [[0.0, 1.0]])


def test_elu_and_leaky_relu_layer_defaults_by_value():
    """ELU: alpha 1 (x for x > 0, exp(x) - 1 below); the LeakyReLU layer: slope 0.3; both also backward."""
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    elu = L.ELU()
    np.testing.assert_allclose(elu(x), [[np.exp(-2.0) - 1, np.exp(-0.5) - 1, 0.0, 1.5]], rtol=1e-12)
    np.testing.assert_allclose(elu.backward(np.ones_like(x))[:, [0, 1, 3]], [[np.exp(-2.0), np.exp(-0.5), 1.0]],
                               rtol=1e-12)
    np.testing.assert_allclose(L.Activation("elu")(x)[0, :2], np.exp([-2.0, -0.5]) - 1, rtol=1e-12)
    np.testing.assert_allclose(L.ELU(alpha=0.5)(x)[0, :2], 0.5 * (np.exp([-2.0, -0.5]) - 1), rtol=1e-12)
    leaky = L.LeakyReLU()
    np.testing.assert_allclose(leaky(x)[:, [0, 1, 3]], [[-0.6, -0.15, 1.5]], rtol=1e-12)
    np.testing.assert_allclose(leaky.backward(np.ones_like(x))[:, [0, 1, 3]], [[0.3, 0.3, 1.0]], rtol=1e-12)
    assert leaky.get_config()["negative_slope"] == 0.3 and elu.get_config()["alpha"] == 1.0


@pytest.mark.parametrize("make", [
    lambda **kw: cudacnn.Sequential([L.Conv2D(8, 1, input_shape=(32, 32, 3), **kw)]),
    lambda **kw: cudacnn.Sequential([L.Conv2D(8, 1, input_shape=(28, 28, 1), **kw)]),
    lambda **kw: cudacnn.Model(*(lambda i: (i, L.Conv2D(8, 1)(i)))(L.Input((16, 20, 4), **kw))),
])
def test_a_keras_channels_last_input_shape_is_refused_with_the_fix(make):
    """Keras' (H, W, C) would silently build a net for H channels; cudacnn says what to write instead."""
    with pytest.raises(ValueError, match=r"channels-first.*x\.transpose\(0, 3, 1, 2\)"):
        make()
    model = make(data_format="channels_first")  # H channels really meant: accepted and kept on save
    first = model.layers[0]
    assert first.get_config()["data_format"] == "channels_first"
    with pytest.raises(ValueError, match="channels-first"):
        make(data_format="channels_last")


def test_channels_first_shapes_that_end_in_a_small_size_are_accepted():
    for shape in [(3, 32, 32), (64, 4, 4), (1, 28, 28), (4, 8, 3), (16, 4, 3)]:
        cudacnn.Sequential([L.Conv2D(2, 1, input_shape=shape)])


def test_channels_last_data_gets_a_transpose_hint():
    model = cudacnn.Sequential([L.Conv2D(2, 3, input_shape=(3, 8, 8)), L.Flatten(), L.Dense(2)])
    with pytest.raises(ValueError, match=r"got \(4, 8, 8, 3\) \(channels-last data.*transpose\(0, 3, 1, 2\)"):
        model.predict(np.zeros((4, 8, 8, 3), np.float32))


def test_channels_first_escape_survives_save_and_load_and_data_driven_builds(tmp_path):
    for model in (cudacnn.Sequential([L.Conv2D(2, 3, input_shape=(16, 16, 3), data_format="channels_first")]),
                  cudacnn.Model(*(lambda i: (i, L.Conv2D(2, 3)(i)))(L.Input((16, 16, 3),
                                                                          data_format="channels_first")))):
        model.save(tmp_path / "m.cudacnn")
        assert cudacnn.load_model(tmp_path / "m.cudacnn").input_shape == (None, 16, 16, 3)
    x = np.zeros((2, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="channels-first"):  # built from channels-last-looking data
        cudacnn.Sequential([L.Conv2D(2, 3)]).predict(x)
    assert cudacnn.Sequential([L.Conv2D(2, 3, data_format="channels_first")]).predict(x).shape == (2, 2, 14, 1)


def test_softmax_of_feature_maps_is_over_channels(rng):
    """Keras applies softmax along its channel axis; channels first, that is axis 1, per position."""
    x = rng.standard_normal((2, 4, 3, 5))
    y = L.Softmax()(x)
    expected = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-10)
    conv = L.Conv1D(3, 1, activation="softmax")
    np.testing.assert_allclose(conv(rng.standard_normal((2, 2, 7)).astype(np.float32)).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("make,error,message", [
    (lambda: L.Input((2.5,)), TypeError, "shape must be a tuple of ints"),
    (lambda: L.RandomCrop(2.5, 5), TypeError, "RandomCrop height must be an int"),
    (lambda: L.GaussianNoise(float("nan")), TypeError, "stddev must be a finite real number"),
    (lambda: L.BatchNormalization(epsilon=float("nan")), TypeError, "epsilon must be a finite"),
    (lambda: L.BatchNormalization(momentum="0.9"), TypeError, "momentum must be a finite"),
    (lambda: L.LeakyReLU(alpha=float("nan")), TypeError, "negative_slope must be a finite"),
    (lambda: L.ELU(alpha=float("inf")), TypeError, "alpha must be a finite"),
    (lambda: L.Dropout("abc"), TypeError, "Dropout rate must be a finite"),
    (lambda: L.Dense(True), TypeError, "Dense units must be an int"),
    (lambda: L.Conv2D(2.0, 3), TypeError, "filters must be an int"),
    (lambda: L.RandomRotation((0.1,)), ValueError, r"factor must be a number or a \(lower, upper\) pair"),
    (lambda: L.RandomRotation(float("nan")), TypeError, "factor must be a finite"),
    (lambda: cudacnn.Model([], []), ValueError, "at least one input and one output"),
])
def test_bad_layer_and_model_arguments_are_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_merge_layers_refuse_different_batch_sizes(rng):
    """Per-sample shapes agree, so NumPy would broadcast one sample over the batch."""
    a, b = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((1, 3, 2, 2))
    for layer in (L.Add(), L.Concatenate()):
        with pytest.raises(ValueError, match=r"different batch sizes \[2, 1\]"):
            layer([a, b])


def test_model_lookups_and_set_weights_take_plain_lists():
    model = cudacnn.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="layer index 99 is out of range for 1 layers"):
        model.get_layer(index=99)
    model.set_weights([[[1, 2, 3], [4, 5, 6]], [0.5, -0.5]])
    np.testing.assert_array_equal(model.predict(np.ones((1, 3), np.float32)), [[6.5, 14.5]])
    built = cudacnn.Sequential([L.Dense(2)])
    built.build(4)
    assert built.input_shape == (None, 4)


def test_a_built_layer_refuses_inputs_of_another_width():
    dense, conv = L.Dense(2), L.Conv2D(2, 1)
    dense(np.ones((1, 3), np.float32))
    conv(np.ones((1, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match="built for 3 input features"):
        cudacnn.Sequential([L.Input((5,)), dense])
    with pytest.raises(ValueError, match="built for 3 input channels"):
        conv(np.ones((1, 4, 4, 4), np.float32))
    assert conv(np.ones((1, 3, 6, 5), np.float32)).shape == (1, 2, 6, 5)  # other sizes: fully convolutional


def test_a_declared_channels_first_shape_stays_trusted_through_transfer_and_onnx(tmp_path):
    base = cudacnn.Sequential([L.Conv2D(2, 1, input_shape=(16, 16, 3), data_format="channels_first"),
                               L.GlobalAveragePooling2D()])
    model = cudacnn.transfer.add_head(base, 2)  # the head's input copies the base's checked shape
    assert model.input_shape == (None, 16, 16, 3)
    path = model.export_onnx(tmp_path / "m.onnx")
    assert cudacnn.onnx.load(path).input_shape == (None, 16, 16, 3)


@pytest.mark.parametrize("make,message", [
    (lambda **kw: L.Conv1D(4, 3, input_shape=(100, 3), **kw),
     r"input_shape=\(100, 3\) reads as 100 channels of length 3.*input_shape=\(3, 100\) and x.transpose\(0, 2, 1\)"),
    (lambda **kw: L.Reshape((28, 28, 1), **kw), r"target_shape=\(28, 28, 1\) reads as 28 channels.*\(1, 28, 28\);"),
])
def test_keras_channels_last_idioms_for_signals_and_reshape_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
    make(data_format="channels_first")  # meant as written
    L.Conv1D(4, 3, input_shape=(3, 100))
    L.Reshape((1, 28, 28))


def test_keras_functional_merge_spellings():
    x = L.Input((4, 6, 6))
    a, b = L.Conv2D(3, 1)(x), L.Conv2D(5, 1)(x)
    assert L.concatenate([a, b]).shape == (None, 8, 6, 6)
    assert L.add([a, L.Conv2D(3, 1)(x)]).shape == (None, 3, 6, 6)


def test_keras_channel_axis_habits_get_a_channels_first_hint():
    x = L.Input((4, 6, 6))
    a, b = L.Conv2D(3, 1)(x), L.Conv2D(5, 1)(x)
    with pytest.raises(ValueError, match=r"differ outside the concat axis -1 \(cudacnn is channels-first: "
                                         r"feature maps join their channels along axis=1"):
        L.Concatenate(axis=-1)([a, b])
    with pytest.warns(UserWarning, match=r"joining feature maps along axis 3, their width"):
        assert L.Concatenate(axis=3)([a, L.Conv2D(3, 1)(x)]).shape == (None, 3, 6, 12)


def test_shape_errors_name_the_keras_layout_fix():
    conv = L.Conv2D(4, 3, input_shape=(2, 8, 8))
    Sequential([conv])
    with pytest.raises(ValueError, match=r"got \(3, 3, 2, 4\) \(a Keras-layout kernel: pass kernel.transpose\(3, 2, 0, 1\)\)"):
        conv.set_weights([np.zeros((3, 3, 2, 4), np.float32), np.zeros(4, np.float32)])
    dense = L.Dense(3, input_shape=(5,))
    Sequential([dense])
    with pytest.raises(ValueError, match=r"got \(5, 3\) \(a Keras-layout Dense kernel: pass kernel.T\)"):
        dense.set_weights([np.zeros((5, 3), np.float32), np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match=r"got shape \(28, 28\); for one channel give \(1, 28, 28\)"):
        Sequential([L.Conv2D(2, 3, input_shape=(28, 28))])
    with pytest.raises(AttributeError, match=r"has no input yet: it is built on the first data"):
        Sequential([L.Dense(2)]).input
