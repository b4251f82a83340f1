"""Transfer learning: frozen bases, new heads, fine-tuning, features written to file, the digits example."""
import io
import sys
from pathlib import Path

import numpy as np
import pytest

import cudacnn
from cudacnn import datasets, optimizers, transfer, zoo
from cudacnn import layers as L
from cudacnn.layers import Dense
from cudacnn.models import Sequential

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import transfer_digits  # noqa: E402

LOSS = "sparse_categorical_crossentropy"


@pytest.fixture
def digits():
    (x, y), _ = datasets.load_digits()
    return x[:48], y[:48] % 5


def test_feature_extractor_shares_layers_and_computes_the_prefix(rng):
    model = zoo.digits_cnn(num_classes=5)
    base = transfer.feature_extractor(model, "flatten")
    assert base.get_layer("conv1") is model.get_layer("conv1")
    assert base.output_shape == (None, 64 * 4 * 4)
    x = rng.random((3, 1, 8, 8), dtype=np.float32)
    head = model.get_layer("predictions")
    logits = base.predict(x) @ head.params["kernel"].T + head.params["bias"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict(x), expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        transfer.feature_extractor(model, "nope")


def test_frozen_base_head_equals_shallow_net_on_extracted_features(tmp_path, digits):
    """The lecture's shortcut is exact: training a head on a frozen base == training it on saved features."""
    x, y = digits
    cudacnn.set_seed(0)
    base = transfer.feature_extractor(zoo.digits_cnn(num_classes=5), "flatten")
    base.trainable = False
    model = transfer.add_head(base, num_classes=5)
    shallow = Sequential([Dense(5, activation="softmax", input_shape=(1024,))])
    shallow.set_weights(model.layers[-1].get_weights())
    base_before = base.get_weights()

    path = transfer.extract_features(base, x, tmp_path / "features.npy", batch_size=7)  # 48 = 6*7 + 6
    features = transfer.load_features(path)
    assert features.shape == (48, 1024) and features.dtype == np.float32
    np.testing.assert_allclose(features, base.predict(x), rtol=1e-5, atol=1e-6)  # batch size 7 vs 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npy"]  # no temp file left

    for m, inputs in ((model, x), (shallow, np.array(features))):
        m.compile(optimizers.SGD(0.1), LOSS)
        m.fit(inputs, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for ours, theirs in zip(model.layers[-1].get_weights(), shallow.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(a, b) for a, b in zip(base_before, base.get_weights()))  # frozen


def test_fine_tuning_updates_only_the_unfrozen_block(digits):
    x, y = digits
    model = zoo.digits_cnn(num_classes=5)
    transfer.set_trainable(model, True, from_layer="conv3")
    assert [l.trainable for l in model.layers] == [False, False, False, True, True, True]
    before = model.named_weights()
    before = {k: v.copy() for k, v in before.items()}
    model.compile(optimizers.Adam(1e-3), LOSS)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    changed = {k for k, v in model.named_weights().items() if not np.array_equal(v, before[k])}
    assert changed == {"conv3/kernel", "conv3/bias", "predictions/kernel", "predictions/bias"}
    transfer.set_trainable(model, False)
    assert not any(l.trainable for l in model.layers)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        transfer.set_trainable(model, True, from_layer="conv9")


def test_headless_zoo_base_with_new_head(rng):
    base = zoo.resnet18(input_shape=(3, 32, 32), include_top=False)
    assert base.output_shape == (None, 512, 1, 1)
    base.trainable = False
    model = transfer.add_head(base, num_classes=3, hidden_units=(16,), dropout=0.5, pooling="avg")
    assert model.count_trainable_params() == 512 * 16 + 16 + 16 * 3 + 3
    probs = model.predict(rng.random((2, 3, 32, 32), dtype=np.float32))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        transfer.add_head(base, 3, pooling="max")


def test_extract_features_is_atomic_and_validates(tmp_path, digits):
    x, _ = digits
    base = transfer.feature_extractor(zoo.digits_cnn(), "flatten")
    path = tmp_path / "f.npy"
    np.save(path, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"inputs of shape \(N, 1, 8, 8\), got \(48, 8, 8\)"):
        transfer.extract_features(base, x[:, 0], path)
    with pytest.raises(ValueError, match="batch_size"):
        transfer.extract_features(base, x, path, batch_size=0)

    class FailsOnSecondBatch:  # stands in for a model whose device fails mid-way
        inputs, outputs, name, device, dtype = base.inputs, base.outputs, "failing", "cpu", np.float32
        calls = 0

        def __call__(self, batch, training=False):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("device lost")
            return np.zeros((len(batch), 1024), np.float32)

    with pytest.raises(RuntimeError, match="device lost"):
        transfer.extract_features(FailsOnSecondBatch(), x, path, batch_size=16)
    np.testing.assert_array_equal(np.load(path), np.zeros(3, np.float32))  # old content kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]


@pytest.mark.slow
def test_transfer_digits_example_small():
    results = transfer_digits.run(per_class=5, epochs=4, pretrain_epochs=2)
    assert results["target_train_size"] == 25
    assert results["source_accuracy"] > 0.9  # pretraining on 0-4 worked
    for key in ("transfer_accuracy", "fine_tuned_accuracy", "feature_file_accuracy", "scratch_accuracy"):
        assert 0.3 < results[key] <= 1.0, (key, results)  # 5 classes: chance is 0.2


@pytest.mark.gpu
def test_extract_features_from_a_gpu_model_matches_cpu(cp, tmp_path, digits):
    x, _ = digits
    base = transfer.feature_extractor(zoo.digits_cnn(), "flatten")
    on_cpu = transfer.load_features(transfer.extract_features(base, x, tmp_path / "cpu.npy", batch_size=10))
    base.to("gpu")
    on_gpu = transfer.load_features(transfer.extract_features(base, x, tmp_path / "gpu.npy", batch_size=10))
    assert isinstance(on_gpu, np.ndarray)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-5)


def test_lecture_recipe_on_vgg16_freeze_then_fine_tune_block5(rng):
    x = rng.random((4, 3, 32, 32), dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    base = zoo.vgg16(input_shape=(3, 32, 32), include_top=False)
    base.trainable = False
    model = transfer.add_head(base, num_classes=2, hidden_units=(8,))
    snapshot = {k: v.copy() for k, v in model.named_weights().items()}

    def changed():
        return {k.split("/")[0] for k, v in model.named_weights().items() if not np.array_equal(v, snapshot[k])}

    model.compile(optimizers.RMSprop(1e-3), LOSS)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    head = {layer.name for layer in model.layers[2:] if layer.params}
    assert changed() == head  # the base stayed frozen

    transfer.set_trainable(base, True, from_layer="block5_conv1")
    snapshot = {k: v.copy() for k, v in model.named_weights().items()}
    model.compile(optimizers.RMSprop(1e-5), LOSS)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert changed() == head | {"block5_conv1", "block5_conv2", "block5_conv3"}


def test_preprocess_imagenet():
    images = np.zeros((2, 3, 4, 4), np.uint8)
    images[:, 0] = 255
    x = transfer.preprocess_imagenet(images)
    np.testing.assert_allclose(x[0, :, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)
    np.testing.assert_allclose(transfer.preprocess_imagenet(images / 255.0), x, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        transfer.preprocess_imagenet(np.zeros((2, 1, 4, 4)))


def test_preprocess_imagenet_enforces_its_documented_ranges():
    for images, message in ((np.full((1, 3, 4, 4), 200.0), r"0\.\.1"),            # 0..255 floats
                            (np.full((1, 3, 4, 4), np.nan, np.float32), r"0\.\.1"),
                            (np.full((1, 3, 4, 4), 200, np.int64), "uint8")):     # ints other than uint8
        with pytest.raises(ValueError, match=message):
            transfer.preprocess_imagenet(images)


def test_load_features_refuses_what_extract_features_never_writes(tmp_path):
    good = tmp_path / "f.npy"
    np.save(good, np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(transfer.load_features(good), np.arange(12).reshape(3, 4))
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(good.read_bytes()[:-5])
    archive = tmp_path / "f.npz"
    np.savez(archive, a=np.ones(3))
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for path, message in ((truncated, "truncated"), (archive, "not a features"), (objects, "numbers")):
        with pytest.raises(ValueError, match=message) as err:
            transfer.load_features(path)
        assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError):
        transfer.load_features(tmp_path / "absent.npy")


def _damaged_header(shape=(3, 4), edit=lambda raw: raw):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return edit(buffer.getvalue()) + b"\0" * 48


@pytest.mark.parametrize("raw, message", [  # the comment says what escaped before
    (_damaged_header(edit=lambda raw: raw[:8] + b"\x10\x00" + raw[10:]), "EOF in multi-line"),  # TokenError
    (_damaged_header(edit=lambda raw: raw.replace(b"<f4", b",f4")), "invalid syntax"),  # SyntaxError
    (_damaged_header(shape=(-4, -3)), r"impossible shape \(-4, -3\)"),  # ValueError without the file
    (_damaged_header(shape=(2**70, 0)), r"impossible shape \(1180591620717411303424, 0\)"),  # OverflowError
], ids=["cut-header", "bad-descr", "negative", "overflow"])
def test_load_features_reports_a_damaged_header_naming_the_file(tmp_path, raw, message):
    path = tmp_path / "features.npy"
    path.write_bytes(raw)
    for mmap in (True, False):
        with pytest.raises(ValueError, match=message) as err:
            transfer.load_features(path, mmap=mmap)
        assert str(err.value).startswith(f"{path}: not a features (.npy) file")


@pytest.mark.parametrize("call,error,message", [
    (lambda base: transfer.add_head(base, 2.7), TypeError, "num_classes must be an int, got 2.7"),
    (lambda base: transfer.add_head(base, 3, hidden_units=[0]), ValueError, "hidden_units must be >= 1"),
    (lambda base: transfer.add_head(base, 3, dropout=1.0), ValueError, "dropout must be in"),
    (lambda base: transfer.add_head(base.layers[0], 3), TypeError, "needs a cudacnn model as base"),
    (lambda base: transfer.set_trainable(base, "no"), TypeError, "trainable must be True or False"),
])
def test_transfer_helpers_check_their_arguments(call, error, message):
    base = cudacnn.Sequential([L.Conv2D(4, 3, input_shape=(1, 8, 8)), L.GlobalAveragePooling2D()])
    with pytest.raises(error, match=message):
        call(base)


def test_add_head_takes_one_hidden_size_and_drops_out_without_hidden_layers():
    base = cudacnn.Sequential([L.Conv2D(4, 3, input_shape=(1, 8, 8))])
    one = transfer.add_head(base, 3, hidden_units=16)
    assert [type(l).__name__ for l in one.layers[2:]] == ["Flatten", "Dense", "Dense"]
    plain = transfer.add_head(base, 3, dropout=0.5, pooling="avg")
    assert [type(l).__name__ for l in plain.layers[2:]] == ["GlobalAveragePooling2D", "Dropout", "Dense"]


def test_extract_features_keeps_a_float64_model_in_float64(tmp_path, rng):
    base = Sequential([L.Conv2D(3, 3, input_shape=(1, 6, 6)), L.Flatten()]).astype(np.float64)
    x = rng.standard_normal((5, 1, 6, 6))
    path = transfer.extract_features(base, x, tmp_path / "f64.npy", batch_size=2)
    features = transfer.load_features(path)
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features, base.predict(x))


def test_a_base_called_with_training_false_keeps_its_statistics_while_fine_tuned(rng, tmp_path):
    """Keras' recipe: base(inputs, training=False) keeps BatchNormalization in inference mode even
    when the base is trainable, so fine-tuning does not overwrite the pretrained statistics."""
    x = rng.standard_normal((16, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 16)

    def base_with_bn():
        return Sequential([L.Conv2D(4, 3, input_shape=(1, 6, 6)), L.BatchNormalization(), L.Flatten()])

    for base_training, moves in ((False, False), (None, True)):
        base = base_with_bn()
        model = transfer.add_head(base, 3, base_training=base_training)
        before = base.layers[1].state["moving_mean"].copy()
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        changed = not np.array_equal(base.layers[1].state["moving_mean"], before)
        assert changed == moves, base_training
        assert base.layers[0].params["kernel"].std() > 0 and model.count_trainable_params() == base.count_params() - 8 + 3 * 65
    # The call's mode is part of the saved model.
    transfer.add_head(base_with_bn(), 3).save(tmp_path / "m.cudacnn")
    loaded = cudacnn.load_model(tmp_path / "m.cudacnn")
    assert [t.training for t in loaded._nodes if isinstance(t.layer, Sequential)] == [False]
    with pytest.raises(TypeError, match=r"training must be a bool, got 'no'"):
        base_with_bn()(L.Input((1, 6, 6)), training="no")
