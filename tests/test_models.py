"""Sequential and functional models: whole-model gradient checks in float64 (plain, residual,
inception), configs, named weights, transfer-learning reuse, nesting, device moves."""
import json

import numpy as np
import pytest

import cudacnn
from cudacnn import Model, Sequential
from cudacnn import layers as L
from cudacnn.models import model_from_config
from naive import assert_sampled_gradients


def check_model_gradients(model, x, rng, entries=4, tol=1e-6):
    """model.backward vs central differences of sum(model(x) * r), over inputs and every weight."""
    model.astype(np.float64)
    y = model.forward(x, training=True)
    r = rng.standard_normal(y.shape)
    dx = model.backward(r)
    grads = {f"{l.name}/{k}": g for l in model.leaf_layers() for k, g in l.grads.items()}
    weights = {f"{l.name}/{k}": v for l in model.leaf_layers() for k, v in l.params.items()}
    assert set(grads) == set(weights)

    def objective():
        return float((model.forward(x, training=True) * r).sum())

    targets = [("input", x, dx)] + [(k, weights[k], grads[k]) for k in weights]
    return assert_sampled_gradients(objective, targets, rng, entries, atol=tol)


def test_whole_model_gradient_check(rng):
    cudacnn.set_seed(3)
    model = Sequential([
        L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(2, 6, 6)),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Conv2D(3, 2, activation="tanh"),
        L.Flatten(),
        L.Dropout(0.0),
        L.Dense(5, activation="elu"),
        L.Dense(3, activation="softmax"),
    ])
    assert check_model_gradients(model, rng.standard_normal((4, 2, 6, 6)), rng) >= 30


def test_residual_block_gradient_check(rng):
    inputs = L.Input((3, 5, 5))
    h = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    h = L.BatchNormalization()(h)
    h = L.Conv2D(3, 3, padding="same")(h)
    h = L.Add()([h, inputs])
    h = L.Activation("relu")(h)
    out = L.Dense(2)(L.Flatten()(h))
    model = Model(inputs, out)
    check_model_gradients(model, rng.standard_normal((3, 3, 5, 5)), rng)


def test_inception_block_gradient_check(rng):
    inputs = L.Input((4, 6, 6))
    a = L.Conv2D(2, 1, activation="relu")(inputs)
    b = L.Conv2D(3, 3, padding="same", activation="relu")(L.Conv2D(2, 1)(inputs))
    c = L.Conv2D(2, 1)(L.MaxPooling2D(3, strides=1, padding="same")(inputs))
    merged = L.Concatenate()([a, b, c])
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(merged))
    model = Model(inputs, out)
    assert model.output_shape == (None, 3)
    assert merged.shape == (None, 7, 6, 6)
    check_model_gradients(model, rng.standard_normal((2, 4, 6, 6)), rng)


def test_a_tensor_feeding_several_layers_sums_its_gradients(rng):
    inputs = L.Input((4,))
    d = L.Dense(3)
    h = d(inputs)
    out = L.Add()([L.Activation("tanh")(h), L.Activation("sigmoid")(h)])
    model = Model(inputs, out).astype(np.float64)
    x = rng.standard_normal((2, 4))
    y = model.forward(x, training=True)
    dx = model.backward(np.ones_like(y))
    z = x @ d.params["kernel"].T + d.params["bias"]
    dz = (1 - np.tanh(z) ** 2) + (1 / (1 + np.exp(-z))) * (1 - 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(dx, dz @ d.params["kernel"], rtol=1e-10)


def small_cnn():
    return Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)), L.BatchNormalization(),
                       L.MaxPooling2D(), L.Flatten(), L.Dropout(0.3), L.Dense(10, activation="softmax")])


def test_named_weights_and_get_set_weights():
    model = small_cnn()
    names = list(model.named_weights())
    conv, bn, dense = model.layers[0].name, model.layers[1].name, model.layers[5].name
    assert names == [f"{conv}/kernel", f"{conv}/bias", f"{bn}/gamma", f"{bn}/beta", f"{bn}/moving_mean",
                     f"{bn}/moving_variance", f"{dense}/kernel", f"{dense}/bias"]
    assert model.named_weights()[f"{conv}/kernel"].shape == (4, 1, 3, 3)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [v.shape for v in model.named_weights().values()]
    other = small_cnn()
    other.set_weights(weights)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x), other.predict(x))
    with pytest.raises(ValueError, match="expects 8 weight arrays"):
        other.set_weights(weights[:-1])
    with pytest.raises(ValueError, match="shape"):
        other.set_weights(weights[:-1] + [np.zeros(3, np.float32)])


@pytest.mark.parametrize("build", [
    small_cnn,
    lambda: _functional(),
    lambda: Sequential([small_cnn(), L.Dense(2)]),
])
def test_config_round_trip_rebuilds_the_same_model(build):
    model = build()
    config = json.loads(json.dumps(model.get_config()))
    clone = model_from_config(config)
    assert type(clone) is type(model)
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert clone.count_params() == model.count_params()
    assert clone.get_config() == model.get_config()
    assert list(clone.named_weights()) == list(model.named_weights())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    wrapped = model_from_config({"class_name": type(model).__name__, "config": config})
    assert wrapped.count_params() == model.count_params()


def _functional():
    inputs = L.Input((1, 8, 8))
    a = L.Conv2D(3, 3, padding="same", activation="relu")(inputs)
    b = L.Conv2D(3, 1)(inputs)
    h = L.Concatenate()([L.Add()([a, b]), a])
    return Model(inputs, L.Dense(4, activation="softmax")(L.Flatten()(h)), name="two_paths")


def test_transfer_learning_reuses_base_layers_and_weights():
    base = Sequential([L.Conv2D(4, 3, activation="relu", input_shape=(1, 8, 8)), L.MaxPooling2D()])
    kernel = base.layers[0].params["kernel"]
    x = L.Flatten()(base.output)
    x = L.Dense(3, activation="softmax")(x)
    model = Model(base.input, x)
    assert model.layers[1] is base.layers[0]
    assert model.layers[1].params["kernel"] is kernel
    for layer in model.layers[:-2]:
        layer.trainable = False
    assert model.count_trainable_params() == 4 * 3 * 3 * 3 + 3
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = np.random.default_rng(0).standard_normal((8, 1, 8, 8)).astype(np.float32)
    before = kernel.copy()
    model.fit(data, np.arange(8) % 3, epochs=1, verbose=0)
    np.testing.assert_array_equal(base.layers[0].params["kernel"], before)


def test_models_nest_and_freeze_as_a_whole():
    base = small_cnn()
    model = Sequential([base, L.Dense(2, activation="softmax")])
    assert model.output_shape == (None, 2)
    assert model.count_params() == base.count_params() + 22
    base.trainable = False
    assert all(not l.trainable for l in base.layers)
    assert model.count_trainable_params() == 22
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    before = [w.copy() for w in base.get_weights()]
    x = np.random.default_rng(1).standard_normal((16, 1, 8, 8)).astype(np.float32)
    model.fit(x, np.arange(16) % 2, epochs=2, batch_size=8, verbose=0)
    for old, new in zip(before, base.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_graph_errors_are_clear():
    a, b = L.Input((4,)), L.Input((4,))
    out = L.Add()([L.Dense(2)(a), L.Dense(2)(b)])
    with pytest.raises(ValueError, match="disconnected"):
        Model(a, out)
    shared = L.Dense(4)
    h = shared(shared(a))
    with pytest.raises(ValueError, match="used twice"):
        Model(a, h)
    with pytest.raises(TypeError, match="symbolic"):
        Model(np.zeros(3), out)
    with pytest.raises(ValueError, match="equal shapes"):
        L.Add()([L.Dense(2)(a), L.Dense(3)(b)])
    model = Model([a, b], out)
    assert model.predict is not None and model.input == [a, b]


def test_eager_call_and_batch_size_independence():
    model = small_cnn()
    x = np.random.default_rng(2).standard_normal((5, 1, 8, 8)).astype(np.float32)
    full = model(x)
    np.testing.assert_allclose(model.predict(x, batch_size=2), full, rtol=1e-6)
    assert full.shape == (5, 10)
    np.testing.assert_allclose(full.sum(axis=1), 1, rtol=1e-5)


def test_moving_to_gpu_without_one_fails_clearly():
    if cudacnn.backend.availability()["cupy"] is None:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="GPU"):
        small_cnn().to("gpu")


@pytest.mark.gpu
def test_gpu_round_trip_matches_cpu(cp):
    model = small_cnn()
    x = np.random.default_rng(3).standard_normal((4, 1, 8, 8)).astype(np.float32)
    expected = model.predict(x)
    model.to("gpu")
    assert model.device == "gpu"
    assert all(isinstance(v, cp.ndarray) for v in model.named_weights().values())
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-6)
    on_gpu = model.predict(cp.asarray(x))
    assert isinstance(on_gpu, cp.ndarray)
    model.to("cpu")
    assert all(isinstance(v, np.ndarray) for v in model.named_weights().values())
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-6)


def test_backward_skips_input_gradients_nobody_needs(monkeypatch):
    from cudacnn import ops
    inner = small_cnn()
    model = Sequential([L.Input((1, 8, 8)), L.RandomFlip("horizontal"), inner])
    flags = []
    real = ops.conv2d_backward
    monkeypatch.setattr(ops, "conv2d_backward", lambda *a, **k: flags.append(k["need_dx"]) or real(*a, **k))
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.train_on_batch(np.zeros((2, 1, 8, 8), np.float32), np.array([0, 1]))
    assert flags == [False]  # the first convolution: nothing below it needs dx


def test_layer_input_output_build_feature_extractors():
    base = Sequential([L.Conv2D(4, 3, input_shape=(1, 8, 8), name="c1"), L.MaxPooling2D(name="p1"),
                       L.Flatten(), L.Dense(3)])
    features = Model(base.input, base.get_layer("p1").output)
    assert features.output_shape == (None, 4, 3, 3)
    assert features.layers[1] is base.get_layer("c1")
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(features.predict(x), base.layers[1](base.layers[0](x)))
    assert base.get_layer("c1").input is base.input
    with pytest.raises(AttributeError, match="symbolic"):
        L.Dense(2).output
    assert len(base.weights) == 4 and len(base.trainable_weights) == 4
    base.get_layer("c1").trainable = False
    assert len(base.trainable_weights) == 2 and len(base.non_trainable_weights) == 2


def test_freezing_an_unbuilt_sequential_freezes_its_layers():
    model = Sequential([L.Dense(3), L.Dense(2)])
    model.trainable = False
    assert not any(layer.trainable for layer in model.layers)
    model.build((4,))
    assert model.count_trainable_params() == 0 and model.count_params() == 15 + 8


def test_a_head_added_to_a_loaded_model_gets_a_name_of_its_own(tmp_path):
    """In a new process automatic names restart; a loaded base's names are taken all the same."""
    from cudacnn import transfer
    from cudacnn.layers.base import reset_names
    reset_names()
    base = Sequential([L.Conv2D(2, 3, input_shape=(1, 6, 6)), L.Flatten(), L.Dense(4)], name="base")
    base.save(tmp_path / "base.cudacnn")
    reset_names()  # as a fresh process starts
    model = transfer.add_head(cudacnn.load_model(tmp_path / "base.cudacnn"), 3)
    names = [layer.name for layer in model.leaf_layers()]
    assert len(names) == len(set(names)) and "dense" in names and "dense_1" in names
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    model.save(tmp_path / "tuned.cudacnn")
    np.testing.assert_array_equal(cudacnn.load_model(tmp_path / "tuned.cudacnn").predict(x), model.predict(x))


def test_nested_layers_may_not_share_a_name():
    base = Sequential([L.Dense(4, name="features", input_shape=(3,))], name="base")
    with pytest.raises(ValueError, match=r"unique across nested models too .* 'features' \(in 'base', 'features'\)"):
        Sequential([base, L.Dense(2, name="features")])
    inner = Sequential([L.Dense(4, name="shared", input_shape=(3,))], name="inner")
    other = Sequential([L.Dense(4, name="shared", input_shape=(3,))], name="other")
    x = L.Input((3,))
    with pytest.raises(ValueError, match=r"'shared' \(in 'inner', 'other'\)"):
        Model(x, L.Add()([inner(x), other(x)]))


def test_a_refused_add_leaves_the_sequential_model_as_it_was():
    model = Sequential([L.Conv2D(2, 3, input_shape=(1, 8, 8))])
    with pytest.raises(ValueError):
        model.add(L.Dense(3))  # needs Flatten first
    assert [layer.name for layer in model.layers] == [model.layers[0].name]
    assert model.output_shape == (None, 2, 6, 6)
    model.add(L.Flatten())
    model.add(L.Dense(3))
    x = np.zeros((4, 1, 8, 8), np.float32)
    assert model.predict(x).shape == (4, 3) and model.count_params() == 20 + 72 * 3 + 3


def test_a_refused_build_leaves_the_sequential_model_as_it_was():
    model = Sequential([L.Conv2D(4, 3, padding="same", input_shape=(1, 4, 4)), L.Flatten(), L.Dense(3)])
    with pytest.raises(ValueError, match="built for 64 input features"):
        model.build((1, 16, 16))
    assert model.input_shape == (None, 1, 4, 4)
    assert [layer.output_shape for layer in model.layers] == [(None, 4, 4, 4), (None, 64), (None, 3)]
    model.add(L.Dense(2))
    assert model.predict(np.zeros((2, 1, 4, 4), np.float32)).shape == (2, 2)


def test_trainable_flags_survive_saving(tmp_path):
    from cudacnn import transfer
    base = Sequential([L.Conv2D(2, 3, input_shape=(1, 6, 6), name="c1"), L.Conv2D(2, 3, name="c2")], name="b")
    model = Sequential([base, L.Flatten(), L.Dense(3)])
    base.trainable = False
    transfer.set_trainable(model, True, from_layer="c2")
    flags = {layer.name: layer.trainable for layer in model.leaf_layers()}
    assert not flags["c1"] and flags["c2"]
    model.save(tmp_path / "m.cudacnn")
    loaded = cudacnn.load_model(tmp_path / "m.cudacnn")
    assert {layer.name: layer.trainable for layer in loaded.leaf_layers()} == flags
    assert loaded.count_trainable_params() == model.count_trainable_params()


def test_a_float64_model_loads_as_float64(tmp_path):
    model = small_cnn().astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2,) + model.input_shape[1:])
    model.save(tmp_path / "m64.cudacnn")
    loaded = cudacnn.load_model(tmp_path / "m64.cudacnn")
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_trainable_must_be_a_bool_in_code_and_in_configs():
    with pytest.raises(TypeError, match=r"dense_x: trainable must be a bool, got 'no'"):
        L.Dense(2, trainable="no", name="dense_x")
    config = small_cnn().get_config()
    config["trainable"] = "no"
    with pytest.raises(TypeError, match=r"trainable must be a bool, got 'no'"):
        model_from_config(config)
