"""compile/fit/evaluate/predict: learning, History, validation, freezing, seeds, the fused path."""
import re

import numpy as np
import pytest

import cudacnn
from cudacnn import Sequential, callbacks, losses, ops, optimizers
from cudacnn import layers as L
from cudacnn.training import BatchSource


def blobs(n=240, seed=0):
    """Three well separated classes of 1x6x6 images (a bright quadrant each)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 1, 6, 6)).astype(np.float32)
    for cls, (r, c) in enumerate([(0, 0), (0, 3), (3, 0)]):
        x[y == cls, :, r:r + 3, c:c + 3] += 1.5
    return x, y


class BatchCounter(callbacks.Callback):
    """Records the index of every training batch fit runs."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(batch)


def cnn(dropout=0.2):
    return Sequential([L.Conv2D(6, 3, padding="same", activation="relu", input_shape=(1, 6, 6)),
                       L.BatchNormalization(), L.MaxPooling2D(), L.Flatten(), L.Dropout(dropout),
                       L.Dense(16, activation="relu"), L.Dense(3, activation="softmax")])


@pytest.mark.parametrize("make_optimizer", [
    lambda: "adam", lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True), lambda: optimizers.RMSprop(0.01),
    lambda: optimizers.Adam(0.01, weight_decay=1e-4), lambda: optimizers.AdamW(0.01), lambda: "adamw",
], ids=["adam", "sgd", "rmsprop", "adam_weight_decay", "AdamW", "adamw_by_name"])
def test_fit_learns_a_separable_problem(make_optimizer):
    optimizer = make_optimizer()  # a fresh instance per test: optimizers keep per-weight state
    cudacnn.set_seed(0)
    x, y = blobs()
    model = cnn()
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert len(history.history["loss"]) == 6
    assert history.history["loss"][-1] < history.history["loss"][0]
    xt, yt = blobs(90, seed=1)
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc >= 0.95, acc
    assert (model.predict(xt).argmax(1) == yt).mean() == pytest.approx(acc)


def test_categorical_targets_and_validation(capsys):
    cudacnn.set_seed(1)
    x, y = blobs(200)
    onehot = np.eye(3, dtype=np.float32)[y]
    model = cnn()
    model.compile(optimizers.Adam(0.01), "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, onehot, epochs=3, batch_size=20, validation_split=0.25, verbose=1)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    out = capsys.readouterr().out
    assert "Epoch 3/3" in out and "img/s" in out and "val_accuracy" in out
    history = model.fit(x[:100], onehot[:100], epochs=1, validation_data=(x[100:], onehot[100:]), verbose=2)
    assert "val_loss" in history.history
    assert "img/s" in capsys.readouterr().out
    logs = model.evaluate(x, onehot, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}


def test_metric_spelled_acc_logs_acc_and_early_stopping_can_monitor_it():
    """Keras names a metric as it was asked for: metrics=["acc"] logs acc and val_acc."""
    cudacnn.set_seed(0)
    x, y = blobs(120)
    model = cnn(0.0)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["acc"])
    stop = callbacks.EarlyStopping(monitor="val_acc", patience=0, min_delta=2.0)  # no epoch improves by 2
    history = model.fit(x, y, epochs=5, batch_size=20, validation_split=0.25, callbacks=[stop], verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert len(history.history["loss"]) == 2  # stopped by val_acc, not "not available"
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "acc"}


def test_validation_split_takes_the_last_samples():
    x, y = blobs(100)
    model = cnn(0.0)
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=1, batch_size=100, shuffle=False, validation_split=0.2, verbose=0)
    expected = model.evaluate(x[80:], y[80:], verbose=0)  # the weights did not change since
    assert history.history["val_loss"][0] == pytest.approx(expected[0], rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(expected[1])


def whole_set_cross_entropy(model, x, y):
    """The mean loss over all samples at once, by hand from the predicted probabilities."""
    p = model.predict(x, batch_size=len(x)).astype(np.float64)
    return float(-np.log(p[np.arange(len(y)), y]).mean())


def test_epoch_loss_weights_a_partial_last_batch_by_its_size():
    """50 samples in batches of 16: the last batch holds 2; the epoch loss is the mean over samples."""
    x, y = blobs(50)
    cudacnn.set_seed(5)
    model = cnn(0.0)
    model.compile(optimizers.SGD(1e-30), "sparse_categorical_crossentropy", ["accuracy"])  # steps change nothing
    expected = whole_set_cross_entropy(model, x, y)
    batch_losses = [whole_set_cross_entropy(model, x[i:i + 16], y[i:i + 16]) for i in range(0, 50, 16)]
    assert abs(np.mean(batch_losses) - expected) > 1e-3  # a plain mean of batch means would differ
    loss, acc = model.evaluate(x, y, batch_size=16, verbose=0)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert acc == pytest.approx((model.predict(x).argmax(1) == y).mean())
    # the training loss, in BN's training mode (batch statistics): one BN-free model keeps it comparable
    cudacnn.set_seed(5)
    plain = Sequential([L.Flatten(input_shape=(1, 6, 6)), L.Dense(3, activation="softmax")])
    plain.compile(optimizers.SGD(1e-30), "sparse_categorical_crossentropy")
    expected = whole_set_cross_entropy(plain, x, y)
    history = plain.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, validation_data=(x, y))
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-5)


def test_fused_softmax_cross_entropy_is_used_and_matches_the_plain_loss(monkeypatch):
    x, y = blobs(32)
    model = cnn(0.0)
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    calls = []
    real = ops.softmax_cross_entropy
    monkeypatch.setattr(ops, "softmax_cross_entropy", lambda *a, **k: calls.append(k) or real(*a, **k))
    fused_loss = model.evaluate(x, y, batch_size=32, verbose=0)[0]
    # used, and told that evaluate checked all of y at once (no per-batch wait for the device)
    assert calls == [{"labels_checked": True}], "the fused softmax-CE op was not used as expected"
    probs = model.predict(x)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    plain = losses.SparseCategoricalCrossentropy().value(probs, y)
    assert float(plain) == pytest.approx(fused_loss, rel=1e-5)
    # the probability path gives the same gradient as the fused one
    logits = np.random.default_rng(0).standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    p = ops.softmax(logits)
    _, dp = losses.SparseCategoricalCrossentropy().value_and_grad(p, labels)
    dlogits = ops.softmax_backward(dp, p)
    _, fused = losses.SparseCategoricalCrossentropy().value_and_grad(logits, labels, logits=True)
    np.testing.assert_allclose(dlogits, fused, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("where", ["train", "validation"])
def test_fit_checks_all_labels_before_the_first_step(where):
    """fit checks y once, up front (batches then skip their own check): a bad label in the last
    batch, or in the validation data, stops fit before any weight changes."""
    x, y = blobs(64)
    model = cnn(0.0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    y_val = y[:8].copy()
    (y if where == "train" else y_val)[-1] = 7
    with pytest.raises(ValueError, match=r"label 7 is outside \[0, 3\) for a model of 3 outputs"):
        model.fit(x, y, epochs=1, batch_size=16, validation_data=(x[:8], y_val), verbose=0)
    for w0, w1 in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    with pytest.raises(ValueError, match="integer class indices"):
        model.fit(x, y + 0.5, epochs=1, verbose=0)


def test_from_logits_and_binary_losses():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((6, 1))
    targets = rng.integers(0, 2, (6, 1)).astype(np.float64)
    sig = 1 / (1 + np.exp(-logits))
    on_probs, grad_p = losses.BinaryCrossentropy().value_and_grad(sig, targets)
    on_logits, grad_z = losses.BinaryCrossentropy(from_logits=True).value_and_grad(logits, targets)
    assert float(on_probs) == pytest.approx(float(on_logits), rel=1e-6)
    np.testing.assert_allclose(grad_p * sig * (1 - sig), grad_z, rtol=1e-6)
    x, y = blobs(64)
    model = Sequential([L.Flatten(input_shape=(1, 6, 6)), L.Dense(1, activation="sigmoid")])
    model.compile(optimizers.Adam(0.05), "binary_crossentropy", ["accuracy"])
    history = model.fit(x, (y == 0).astype(np.float32), epochs=10, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert model.predict(x).min() >= 0


def test_frozen_layers_do_not_change_and_frozen_bn_keeps_its_statistics():
    cudacnn.set_seed(4)
    x, y = blobs(64)
    model = cnn()
    conv, bn = model.layers[0], model.layers[1]
    conv.trainable = False
    bn.trainable = False
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    frozen = [w.copy() for w in conv.get_weights() + bn.get_weights()]
    dense_before = model.layers[-1].params["kernel"].copy()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for old, new in zip(frozen, conv.get_weights() + bn.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(dense_before, model.layers[-1].params["kernel"])


def test_set_seed_makes_runs_bitwise_identical():
    x, y = blobs(96)

    def run():
        cudacnn.set_seed(123)
        model = Sequential([L.RandomFlip("horizontal", input_shape=(1, 6, 6)), L.GaussianNoise(0.05),
                            L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(), L.Flatten(),
                            L.Dropout(0.3), L.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        history = model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0)
        return history.history, model.get_weights()

    (h1, w1), (h2, w2) = run(), run()
    assert h1 == h2
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    cudacnn.set_seed(124)
    assert not np.array_equal(cnn().get_weights()[0], w1[0])


def test_keras_initializer_statistics():
    cudacnn.set_seed(0)
    layer = L.Conv2D(64, 3)
    layer.ensure_built((32, 8, 8))
    limit = np.sqrt(6 / (32 * 9 + 64 * 9))
    w = layer.params["kernel"]
    assert w.dtype == np.float32 and np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.95 * limit
    assert np.array_equal(layer.params["bias"], np.zeros(64, np.float32))
    he = L.Dense(500, kernel_initializer="he_normal")
    he.ensure_built((400,))
    assert np.std(he.params["kernel"]) == pytest.approx(np.sqrt(2 / 400), rel=0.03)


@pytest.mark.parametrize("class_name,function_name", [("HeNormal", "he_normal"), ("GlorotUniform", "glorot_uniform"),
                                                      ("LecunNormal", "lecun_normal"), ("Zeros", "zeros")])
def test_initializers_by_keras_class_name(class_name, function_name):
    from cudacnn import initializers
    assert initializers.get(class_name) is initializers.get(function_name)
    with pytest.raises(ValueError, match="unknown initializer 'HeNormalish'"):
        initializers.get("HeNormalish")


def test_training_errors_are_clear():
    x, y = blobs(20)
    model = cnn()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with pytest.raises(ValueError, match="different lengths"):
        model.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="label"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile("adagrad-x", "mse")
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile("adam", "hinge-x")
    with pytest.raises(ValueError, match="expects inputs"):
        model.predict(np.zeros((2, 1, 7, 7), np.float32))


def test_train_on_batch_and_uint8_inputs():
    x, y = blobs(32)
    images = np.clip(x * 60 + 60, 0, 255).astype(np.uint8)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    logs = model.train_on_batch(images, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"} and np.isfinite(logs["loss"])
    loss, accuracy = model.train_on_batch(images, y)  # as Keras: [loss, metric...]
    assert set(model.test_on_batch(images, y, return_dict=1)) == {"loss", "accuracy"}  # any true value
    assert np.isfinite(loss) and 0 <= accuracy <= 1 and model.test_on_batch(images, y)[0] == pytest.approx(
        model.test_on_batch(images, y, return_dict=True)["loss"])
    assert model.predict(images).dtype == np.float32


@pytest.mark.gpu
def test_fit_on_gpu_data_trains_on_the_gpu(cp):
    cudacnn.set_seed(0)
    x, y = blobs()
    model = cnn()
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(cp.asarray(x), cp.asarray(y), epochs=4, batch_size=16, verbose=0)
    assert model.device == "gpu"
    assert history.history["accuracy"][-1] > 0.9
    xt, yt = blobs(90, seed=1)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.9  # numpy data, moved per batch


def test_sequential_accepts_an_input_and_builds_lazily():
    x, y = blobs(32)
    explicit = Sequential([L.Input((1, 6, 6)), L.Flatten(), L.Dense(3, activation="softmax")])
    assert explicit.output_shape == (None, 3) and len(explicit.layers) == 2
    lazy = Sequential([L.Flatten(), L.Dense(3, activation="softmax")])
    assert not lazy.built
    lazy.compile("adam", "sparse_categorical_crossentropy")
    lazy.fit(x, y, epochs=1, verbose=0)
    assert lazy.built and lazy.count_params() == 36 * 3 + 3


@pytest.mark.gpu
def test_gpu_training_step_matches_cpu(cp):
    """One SGD step (conv, BN, pool, dropout, dense, fused softmax-CE) on both devices."""
    x, y = blobs(32)
    cudacnn.set_seed(7)
    cpu = cnn(dropout=0.3)
    gpu = cnn(dropout=0.3)
    gpu.set_weights(cpu.get_weights())
    gpu.to("gpu")
    for model in (cpu, gpu):
        model.compile(optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy", ["accuracy"])
    cudacnn.set_seed(11)
    cpu_logs = cpu.train_on_batch(x, y, return_dict=True)
    cudacnn.set_seed(11)  # the same dropout seed: the counter RNG gives the same mask on the GPU
    gpu_logs = gpu.train_on_batch(cp.asarray(x), cp.asarray(y), return_dict=True)
    assert gpu_logs["loss"] == pytest.approx(cpu_logs["loss"], rel=1e-4)
    for (name, a), b in zip(cpu.named_weights().items(), gpu.named_weights().values()):
        np.testing.assert_allclose(cp.asnumpy(b), a, rtol=1e-3, atol=1e-5, err_msg=name)


class Batches:
    """A Keras-style Sequence: len() batches, indexable, with an on_epoch_end hook."""

    def __init__(self, x, y, size):
        self.x, self.y, self.size, self.epochs_seen = x, y, size, 0

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        return self.x[i * self.size:(i + 1) * self.size], self.y[i * self.size:(i + 1) * self.size]

    def on_epoch_end(self):
        self.epochs_seen += 1


def test_fit_evaluate_predict_on_batch_iterables():
    x, y = blobs(96)
    cudacnn.set_seed(2)
    arrays = cnn(0.0)
    cudacnn.set_seed(2)
    batched = cnn(0.0)
    for m in (arrays, batched):
        m.compile(optimizers.SGD(0.05), "sparse_categorical_crossentropy", ["accuracy"])
    sequence = Batches(x, y, 16)
    h1 = arrays.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=(x[:32], y[:32]))
    h2 = batched.fit(sequence, epochs=2, verbose=0, validation_data=Batches(x[:32], y[:32], 16))
    assert sequence.epochs_seen == 2
    for key in h1.history:
        np.testing.assert_allclose(h1.history[key], h2.history[key], rtol=1e-6)

    def endless():
        while True:
            yield x[:16], y[:16]

    history = batched.fit(endless(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    listed = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    assert batched.evaluate(listed, verbose=0) == pytest.approx(batched.evaluate(x, y, verbose=0))
    np.testing.assert_allclose(batched.predict([b for b, _ in listed]), batched.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        batched.fit(endless(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="y must be None"):
        batched.fit(listed, y, verbose=0)
    with pytest.raises(TypeError, match="iterable"):
        batched.fit(5, y, verbose=0)


def test_keras2_generator_methods_run_the_same_steps_as_fit():
    """fit_generator / evaluate_generator / predict_generator, as the lectures call them."""
    x, y = blobs(96)

    def batches():
        while True:
            for i in range(0, 96, 32):
                yield x[i:i + 32], y[i:i + 32]

    models = []
    for _ in range(2):
        cudacnn.set_seed(3)
        model = cnn(0.0)
        model.compile(optimizers.SGD(0.05), "sparse_categorical_crossentropy", ["accuracy"])
        models.append(model)
    h1 = models[0].fit(batches(), steps_per_epoch=3, epochs=2, validation_data=(x[:32], y[:32]), verbose=0)
    h2 = models[1].fit_generator(batches(), steps_per_epoch=3, epochs=2, validation_data=(x[:32], y[:32]),
                                 verbose=0)
    assert set(h2.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key in h1.history:
        np.testing.assert_allclose(h1.history[key], h2.history[key], rtol=1e-6)
    assert models[1].evaluate_generator(batches(), steps=3) == pytest.approx(models[1].evaluate(x, y, verbose=0))
    np.testing.assert_allclose(models[1].predict_generator((b for b, _ in batches()), steps=3),
                               models[1].predict(x), rtol=1e-6)


def test_fused_path_reaches_into_a_nested_model(monkeypatch):
    x, y = blobs(16)
    inner = cnn(0.0)
    model = Sequential([L.Input((1, 6, 6)), L.RandomFlip("horizontal"), inner])
    model.compile("sgd", "sparse_categorical_crossentropy")
    calls = []
    real = ops.softmax_cross_entropy
    monkeypatch.setattr(ops, "softmax_cross_entropy", lambda *a, **k: calls.append(k) or real(*a, **k))
    model.train_on_batch(x, y)
    assert calls == [{"labels_checked": False}]  # one batch on its own: the op checks the labels
    assert not inner.layers[-1]._emit_logits  # reset after the step: predict gives probabilities
    np.testing.assert_allclose(model.predict(x).sum(1), 1, rtol=1e-5)


@pytest.mark.gpu
def test_gpu_model_with_numpy_data_stages_it_once(cp):
    cudacnn.set_seed(0)
    x, y = blobs()
    model = cnn().to("gpu")
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.2, verbose=0)
    assert history.history["val_accuracy"][-1] > 0.9
    out = model.predict(x)
    assert isinstance(out, np.ndarray) and out.shape == (len(x), 3)


@pytest.mark.parametrize("call,error,message", [
    (lambda m, x, y: m.fit(x, y, batch_size=2.7, verbose=0), TypeError, "batch_size must be an int, got 2.7"),
    (lambda m, x, y: m.fit(x, y, epochs=-1, verbose=0), ValueError, "epochs must be >= 0, got -1"),
    (lambda m, x, y: m.fit(x, y, epochs=1.5, verbose=0), TypeError, "epochs must be an int"),
    (lambda m, x, y: m.fit(x, y, initial_epoch=-3, verbose=0), ValueError, "initial_epoch must be >= 0"),
    (lambda m, x, y: m.fit(x, y, validation_split="0.2", verbose=0), TypeError, "validation_split must be a finite"),
    (lambda m, x, y: m.predict(x, batch_size=0), ValueError, "batch_size must be >= 1"),
])
def test_fit_arguments_are_checked_not_truncated(call, error, message):
    x, y = blobs(20)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy", "accuracy")  # one metric alone is fine
    before = model.get_weights()
    with pytest.raises(error, match=message):
        call(model, x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("loss,metric,y,message", [
    ("categorical_crossentropy", "sparse_categorical_accuracy", lambda y: np.eye(3, dtype=np.float32)[y],
     "sparse_categorical_accuracy: targets must be class indices"),
    ("sparse_categorical_crossentropy", "categorical_accuracy", lambda y: y,
     r"categorical_accuracy: targets of per-sample shape \(\) must match the outputs \(3,\)"),
    ("binary_crossentropy", "binary_accuracy", lambda y: y,
     "binary_crossentropy: targets of 1 values per sample cannot pair with 3 outputs"),
    ("categorical_crossentropy", "accuracy", lambda y: np.eye(4, dtype=np.float32)[y],
     r"categorical_crossentropy: targets of per-sample shape \(4,\) must match"),
])
def test_targets_that_do_not_pair_with_loss_or_metric_fail_before_any_step(loss, metric, y, message):
    x, labels = blobs(20)
    model = cnn()
    model.compile("sgd", loss, [metric])
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y(labels), verbose=0)
    with pytest.raises(ValueError, match=message):  # batches from a generator: checked at the first
        model.fit(iter([(x[:10], y(labels)[:10])]), steps_per_epoch=1, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_acc_on_one_output_channel_is_binary_accuracy_whatever_the_loss():
    """Keras 3 picks binary accuracy for one output unit: argmax over one column is always 0."""
    x = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32).reshape(-1, 1)
    model = Sequential([L.Dense(1, activation="sigmoid", input_shape=(3,))])
    model.compile("sgd", "mse", ["acc"])
    acc = model.evaluate(x, y, verbose=0, return_dict=True)["acc"]
    assert acc == pytest.approx(((model.predict(x) > 0.5) == (y > 0.5)).mean())


def test_train_on_batch_checks_target_shapes_too():
    model = Sequential([L.Dense(1, input_shape=(3,))])
    model.compile("sgd", "mse")
    x = np.zeros((10, 3), np.float32)
    for call in (model.train_on_batch, model.test_on_batch):
        with pytest.raises(ValueError, match="targets of 3 values per sample cannot pair with 1 outputs"):
            call(x, np.zeros((10, 3), np.float32))


def test_accuracy_kind_follows_the_output_width_when_the_model_is_built_by_fit():
    """One sigmoid output means binary accuracy, whether or not input_shape was given."""
    x, y = blobs(40)
    y = (y == 0).astype(np.float32)[:, None]
    for first in (L.Conv2D(2, 3, input_shape=(1, 6, 6)), L.Conv2D(2, 3)):
        model = Sequential([first, L.Flatten(), L.Dense(1, activation="sigmoid")])
        model.compile("adam", "mse", ["accuracy"])
        accuracy = model.fit(x, y, verbose=0).history["accuracy"][0]
        predicted = model.predict(x)[:, 0] > 0.5
        assert accuracy == pytest.approx(float(np.mean(predicted == (y[:, 0] > 0.5))), abs=0.15)
        assert model._metrics[0][1].__name__ == "binary_accuracy"


def test_batches_are_each_checked():
    x, y = blobs(20)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    wide = np.zeros((10, 1, 8, 8), np.float32)
    for call in (lambda: model.fit([(x[:10], y[:10]), (wide, y[:10])], verbose=0),
                 lambda: model.evaluate([(x[:10], y[:10]), (wide, y[:10])], verbose=0),
                 lambda: model.predict([x[:10], wide])):
        with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 1, 6, 6\), got \(10, 1, 8, 8\)"):
            call()
    onehot = np.eye(3, dtype=np.float32)[y[10:]]
    with pytest.raises(ValueError, match=r"class indices .* per-sample shape \(3,\)"):
        model.fit([(x[:10], y[:10]), (x[10:], onehot)], verbose=0)


def test_batches_with_sample_weights_are_refused():
    x, y = blobs(20)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    for call in (lambda: model.fit([(x, y, np.ones(20))], verbose=0),
                 lambda: model.evaluate([(x, y, np.zeros(20))], verbose=0)):
        with pytest.raises(ValueError, match=r"batch 0 is \(x, y, sample_weight\): sample weights are not supported"):
            call()


def test_validation_data_may_be_a_list_pair():
    x, y = blobs(40)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, validation_data=[x[:8], y[:8]], verbose=0).history
    assert set(history) == {"loss", "val_loss"}
    # Validated after the epoch's last step, with the weights it left.
    assert history["val_loss"][0] == pytest.approx(model.evaluate(x[:8], y[:8], verbose=0), rel=1e-6)


def test_inputs_that_are_not_arrays_get_clear_errors():
    x, y = blobs(8)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match=r"takes arrays as input, got a batch of type list .*np.asarray"):
        model.predict(x.tolist())
    with pytest.raises(ValueError, match=r"x is a list: for a list of samples pass np.asarray\(x\)"):
        model.fit(x.tolist(), y, verbose=0)
    with pytest.raises(TypeError, match=r"x must be an array or an iterable of \(x, y\) batches, got dict"):
        model.fit({"input": x}, verbose=0)
    with pytest.raises(ValueError, match=r"steps_per_epoch \(or steps\) must be >= 1, got -1"):
        model.fit((b for b in [(x, y)]), steps_per_epoch=-1, verbose=0)


def test_a_generator_that_runs_out_stops_training_with_a_warning():
    x, y = blobs(16)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="ran out of batches at epoch 3"):
        history = model.fit((b for b in [(x, y)] * 2), steps_per_epoch=1, epochs=4, verbose=0)
    assert len(history.history["loss"]) == 2
    with pytest.raises(ValueError, match="no batches"):
        model.fit(iter([]), steps_per_epoch=1, epochs=2, verbose=0)


@pytest.mark.parametrize("label", [np.inf, np.nan, 1e20, 2.5])
def test_float_labels_that_are_not_class_indices_are_named(label):
    x, y = blobs(8)
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    labels = y.astype(np.float64)
    labels[3] = label
    with pytest.raises(ValueError, match=r"labels must be integer class indices, got " + re.escape(repr(float(label)))):
        model.fit(x, labels, verbose=0)


def test_user_metrics_follow_keras_convention():
    """fn(y_true, y_pred) sees probabilities (the fused softmax applied) and is averaged per sample."""
    x, y = blobs(50)
    seen = []

    def mean_top_probability(y_true, y_pred):
        seen.append(np.asarray(y_pred).sum(axis=1))
        return np.max(y_pred, axis=1)  # one value per sample

    def batch_accuracy(y_true, y_pred):
        return np.mean(np.argmax(y_pred, axis=1) == y_true)  # the batch mean

    model = cnn(dropout=0.0)
    model.compile("adam", "sparse_categorical_crossentropy", [mean_top_probability, batch_accuracy])
    loss, top, accuracy = model.evaluate(x, y, batch_size=16, verbose=0)  # batches of 16, 16, 16, 2
    probabilities = model.predict(x)
    np.testing.assert_allclose(np.concatenate(seen), 1.0, rtol=1e-5)
    assert top == pytest.approx(float(probabilities.max(axis=1).mean()), rel=1e-5)
    # A returned batch mean counts once per batch, as Keras' Mean metric counts it.
    hits = probabilities.argmax(axis=1) == y
    batch_means = [hits[i:i + 16].mean() for i in range(0, 50, 16)]
    assert accuracy == pytest.approx(float(np.mean(batch_means)), abs=1e-6)
    # Our own metric functions, given as functions, keep their meaning.
    from cudacnn import metrics
    model.compile("adam", "sparse_categorical_crossentropy", [metrics.sparse_categorical_accuracy])
    assert model.evaluate(x, y, verbose=0)[1] == pytest.approx(float(hits.mean()), abs=1e-6)


def test_predict_returns_every_output_of_a_multi_output_model():
    """As Keras: a list with one array per output, each over all the batches."""
    from cudacnn import Model
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    inputs = L.Input((1, 8, 8))
    conv = L.Conv2D(4, 3)(inputs)
    pooled = L.MaxPooling2D()(conv)
    model = Model(inputs, [conv, pooled])
    maps, pools = model.predict(x, batch_size=2)
    expected_maps, expected_pools = model(x)
    np.testing.assert_array_equal(maps, expected_maps)
    np.testing.assert_array_equal(pools, expected_pools)
    assert maps.shape == (5, 4, 6, 6) and pools.shape == (5, 4, 3, 3)


def test_more_steps_than_a_sequence_holds_read_it_again():
    """Keras 2's fit_generator reads a Sequence round and round: steps_per_epoch=10 on a flow() of
    3 batches trains 10 batches, reshuffled at each pass (it trained 3, silently)."""
    from cudacnn.preprocessing import ImageDataGenerator
    x, y = blobs(40)
    flow = ImageDataGenerator().flow(x, y, batch_size=16, seed=0)
    assert len(flow) == 3
    counter = BatchCounter()
    model = cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(flow, steps_per_epoch=10, epochs=2, verbose=0, callbacks=[counter])
    assert len(counter.seen) == 20
    batches = ImageDataGenerator().flow(x, batch_size=16, shuffle=False)  # 16, 16 and 8 images
    assert model.predict(batches, steps=5).shape == (16 + 16 + 8 + 16 + 16, 3)
    assert len(model.predict([x[:4], x[4:8]], steps=3)) == 12


def test_a_single_output_in_a_list_predicts_an_array_and_float_steps_round_up():
    """Keras returns an array for Model(x, [y]); Keras 2 runs steps_per_epoch=len(x)/32 to the end."""
    from cudacnn import Model
    inputs = L.Input((1, 6, 6))
    model = Model(inputs, [L.Dense(3)(L.Flatten()(inputs))])
    x, y = blobs(40)
    assert isinstance(model.predict(x), np.ndarray) and model.predict(x).shape == (40, 3)
    counter = BatchCounter()
    model = cnn()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(iter([(x[:8], y[:8])] * 3), steps_per_epoch=len(x[:20]) / 8, verbose=0, callbacks=[counter])
    assert counter.seen == [0, 1, 2]
    with pytest.raises(TypeError, match=r"steps_per_epoch \(or steps\) must be an int"):
        model.fit(iter([(x, y)]), steps_per_epoch=float("nan"), verbose=0)


def test_steps_with_array_inputs_read_as_keras_3_reads_them():
    """fit(x, y, batch_size=10, steps_per_epoch=3) trains 3 batches an epoch, on through the data;
    without a batch_size the data comes in `steps` batches; past the end of the data an epoch (or
    a predict) stops with a warning, never reading a sample twice."""
    x, y = blobs(100)
    counter = BatchCounter()
    model = cnn(dropout=0.0)
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, batch_size=10, steps_per_epoch=3, epochs=2, verbose=0, callbacks=[counter])
    assert counter.seen == [0, 1, 2, 0, 1, 2]
    assert model.evaluate(x, y, batch_size=10, steps=1, verbose=0) == pytest.approx(
        model.evaluate(x[:10], y[:10], verbose=0), rel=1e-6)
    assert model.predict(x, batch_size=10, steps=2).shape == (20, 3)
    assert model.predict(x, steps=1).shape == (100, 3)  # one batch of ceil(100 / 1)
    assert model.evaluate(x, y, steps=3, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    with pytest.warns(UserWarning, match=r"ran out of data after 3 of 4 steps"):
        assert model.predict(x, batch_size=40, steps=4).shape == (100, 3)
    sizes = []

    class Sizes(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            sizes.append(batch)
    with pytest.warns(UserWarning, match=r"ran out of data after 1 of 2 steps"):
        model.fit(x, y, batch_size=40, steps_per_epoch=2, epochs=3, shuffle=False, verbose=0, callbacks=[Sizes()])
    assert sizes == [0, 1, 0, 0, 1]  # 40 + 40, then the last 20 alone, then a new pass


def test_shuffle_batch_reorders_whole_batches_and_other_values_are_refused():
    x = np.arange(10, dtype=np.float32)[:, None]
    source = BatchSource(x, np.zeros(10), 4, "batch", None, "x")
    cudacnn.set_seed(0)
    firsts = [tuple(int(v) for v in xb[:, 0]) for xb, _ in source.epoch()]
    assert sorted(firsts) == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    orders = {tuple(tuple(int(v) for v in xb[:, 0]) for xb, _ in source.epoch()) for _ in range(8)}
    assert len(orders) > 1  # a new chunk order per epoch
    with pytest.raises(ValueError, match=r"shuffle must be True, False or 'batch', got 'no'"):
        BatchSource(x, np.zeros(10), 4, "no", None, "x")
