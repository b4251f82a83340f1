"""safetensors files, atomic writes, and saving/loading weights and models."""
import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

import cudacnn
from cudacnn import io as cio
from cudacnn import layers as L
from cudacnn import safetensors as st


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "conv2d/kernel": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv2d/bias": np.arange(4, dtype=np.float32),
        "steps": np.array(7, dtype=np.int64),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float64),
        "half": np.linspace(-1, 1, 5).astype(np.float16),
        "bytes": np.arange(5, dtype=np.uint8),
    }


# ---------------------------------------------------------------- safetensors
def test_round_trip_keeps_names_shapes_dtypes_values_and_metadata(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "w.safetensors"
    st.write_safetensors(path, tensors, {"format": "test", "note": "ünïcode"})
    loaded, metadata = st.read_safetensors(path)
    assert metadata == {"format": "test", "note": "ünïcode"}
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].flags.writeable


def test_layout_follows_the_spec(tmp_path):
    path = tmp_path / "w.safetensors"
    st.write_safetensors(path, {"a": np.array([1.5, 2.0], np.float32), "b": np.array([[3]], np.int32)})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0  # the data section starts 8-byte aligned
    header = json.loads(raw[8:8 + n])
    assert header == {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "I32", "shape": [1, 1], "data_offsets": [8, 12]}}
    assert raw[8 + n:] == np.array([1.5, 2.0], "<f4").tobytes() + np.array([3], "<i4").tobytes()


def test_big_endian_and_non_contiguous_input_are_written_little_endian(tmp_path):
    path = tmp_path / "w.safetensors"
    source = np.arange(12, dtype=">f4").reshape(3, 4)[:, ::2]
    st.write_safetensors(path, {"x": source})
    loaded, _ = st.read_safetensors(path)
    assert loaded["x"].dtype == np.float32
    np.testing.assert_array_equal(loaded["x"], source)


def test_unsupported_inputs_are_rejected(tmp_path):
    with pytest.raises(TypeError, match="complex"):
        st.write_safetensors(tmp_path / "c", {"z": np.zeros(2, np.complex64)})
    with pytest.raises(TypeError, match="metadata"):
        st.write_safetensors(tmp_path / "m", {}, {"epochs": 3})
    assert not list(tmp_path.iterdir())


def test_cross_check_with_the_reference_implementation(tmp_path):
    reference = pytest.importorskip("safetensors.numpy")
    tensors = sample_tensors()
    ours = tmp_path / "ours.safetensors"
    theirs = tmp_path / "theirs.safetensors"
    st.write_safetensors(ours, tensors, {"k": "v"})
    reference.save_file(tensors, theirs, metadata={"k": "v"})
    from_ours = reference.load_file(ours)
    from_theirs, metadata = st.read_safetensors(theirs)
    assert metadata == {"k": "v"}
    for name, array in tensors.items():
        np.testing.assert_array_equal(from_ours[name], array)
        assert from_ours[name].dtype == array.dtype
        np.testing.assert_array_equal(from_theirs[name], array)
        assert from_theirs[name].dtype == array.dtype


def _corrupt(path: Path, header: dict, data: bytes = b""):
    body = json.dumps(header).encode()
    path.write_bytes(len(body).to_bytes(8, "little") + body + data)


@pytest.mark.parametrize("cut", [3, 8, 20, -1])
def test_truncated_files_are_a_clear_error(tmp_path, cut):
    path = tmp_path / "w.safetensors"
    st.write_safetensors(path, sample_tensors())
    raw = path.read_bytes()
    path.write_bytes(raw[:cut])
    with pytest.raises(ValueError) as err:
        st.read_safetensors(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("header, data, message", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 12, "trailing"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "gap"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "overlaps"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "truncated"),
    ({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unsupported dtype"),
    ({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unsupported dtype"),  # TypeError
    ({"a": {"dtype": {"F32": 1}, "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unsupported dtype"),
    ({"a": {"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}}, b"\0" * 4, "numpy cannot hold"),
    ({"a": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}, b"", "numpy cannot hold"),
    ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "invalid data_offsets"),
    ({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "needs dtype, shape and data_offsets"),
    ({"__metadata__": {"epochs": 3}}, b"", "__metadata__"),
])
def test_malformed_headers_are_a_clear_error(tmp_path, header, data, message):
    path = tmp_path / "bad.safetensors"
    _corrupt(path, header, data)
    with pytest.raises(ValueError, match=message) as err:
        st.read_safetensors(path)
    assert str(path) in str(err.value)


def test_garbage_and_huge_header_length(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes((10).to_bytes(8, "little") + b"{not json}")
    with pytest.raises(ValueError, match="corrupt safetensors header"):
        st.read_safetensors(path)
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="header length"):
        st.read_safetensors(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(ValueError, match=str(path)):
        st.read_safetensors(path)


# -------------------------------------------------------------- atomic writes
class _CrashingFile:
    """A file that dies (like a full disk or a killed process) once 100 bytes are written."""

    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, data):
        if self.written + len(data) > 100:
            self.f.write(data[:10])
            self.f.flush()
            raise OSError("disk full")
        self.written += len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_crash_mid_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    st.write_safetensors(path, {"x": np.ones(4, np.float32)})
    before = path.read_bytes()
    opened = []
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: opened.append(_CrashingFile(real_fdopen(fd, mode))) or opened[-1])
    with pytest.raises(OSError, match="disk full"):
        st.write_safetensors(path, {"x": np.zeros(1000, np.float32)})
    assert opened and opened[0].written > 0  # the crash came mid-file, after the header
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_failed_fsync_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    st.write_safetensors(path, {"x": np.ones(4, np.float32)})
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        st.write_safetensors(path, {"x": np.zeros(1000, np.float32)})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_atomic_write_replaces_and_syncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with cio.atomic_write(path) as f:
        f.write(b"new")
        assert path.read_bytes() == b"old"  # nothing visible until the rename
    assert path.read_bytes() == b"new"
    assert len(synced) == 2  # the file, then its directory
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # a normal file mode, not mkstemp's 0600


def test_saving_over_a_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "private.safetensors"
    st.write_safetensors(path, {"x": np.ones(2, np.float32)})
    path.chmod(0o600)
    st.write_safetensors(path, {"x": np.zeros(2, np.float32)})
    assert path.stat().st_mode & 0o777 == 0o600  # not the umask's 0644, readable by everyone
    np.testing.assert_array_equal(st.read_safetensors(path)[0]["x"], np.zeros(2))


def test_saving_through_a_symlink_replaces_the_file_it_points_at(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "model-v1.safetensors"
    st.write_safetensors(target, {"x": np.ones(2, np.float32)})
    link = tmp_path / "latest.safetensors"
    link.symlink_to(Path("store") / "model-v1.safetensors")  # relative, as `ln -s` makes them
    st.write_safetensors(link, {"x": np.zeros(2, np.float32)})
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "model-v1.safetensors")
    np.testing.assert_array_equal(st.read_safetensors(target)[0]["x"], np.zeros(2))
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["model-v1.safetensors"]


class _FullDisk(_CrashingFile):
    """A file on a full disk: every write fails with ENOSPC, naming no file (as real writes do)."""

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("fail", ["open", "write", "replace"])
def test_write_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch, fail):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old")
    real_open, real_fdopen, real_replace = os.open, os.fdopen, os.replace

    def failing_open(name, *args):  # as in a read-only directory (root ignores real permissions)
        if fail == "open":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(name))
        return real_open(name, *args)

    def failing_fdopen(fd, mode):
        f = real_fdopen(fd, mode)
        return _FullDisk(f) if fail == "write" else f

    def failing_replace(src, dst):
        if fail == "replace":
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), os.fspath(src), os.fspath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "open", failing_open)
    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    monkeypatch.setattr(os, "replace", failing_replace)
    expected = {"open": (PermissionError, errno.EACCES), "write": (OSError, errno.ENOSPC),
                "replace": (OSError, errno.EBUSY)}[fail]
    with pytest.raises(OSError) as err:
        st.write_safetensors(path, {"x": np.ones(4, np.float32)})
    assert type(err.value) is expected[0] and err.value.errno == expected[1]
    assert err.value.filename == str(path) and ".tmp" not in str(err.value), str(err.value)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


# ------------------------------------------------------ weights and models
def small_model(filters=4, units=10, extra=False):
    from cudacnn import layers
    from cudacnn.models import Sequential

    stack = [layers.Conv2D(filters, 3, padding="same", activation="relu", input_shape=(1, 8, 8)),
             layers.BatchNormalization(),
             layers.MaxPooling2D(2),
             layers.Flatten(),
             layers.Dense(units)]
    if extra:
        stack.append(layers.Dense(3))
    return Sequential(stack)


def functional_model():
    from cudacnn import layers
    from cudacnn.models import Input, Model

    inputs = Input((1, 8, 8))
    a = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = layers.Conv2D(4, 1)(inputs)
    merged = layers.Add()([a, b])
    outputs = layers.Dense(10, activation="softmax")(layers.Flatten()(merged))
    return Model(inputs, outputs)


def digits_batch(n=16):
    return np.random.default_rng(5).random((n, 1, 8, 8), dtype=np.float32)


def perturb_state(model):
    """Non-default BatchNorm moving averages, so that state must be saved too."""
    rng = np.random.default_rng(9)
    for name, value in model.named_weights().items():
        if "moving" in name:
            value[...] = rng.random(value.shape).astype(value.dtype) + 0.5


def test_weights_round_trip_gives_equal_predictions(tmp_path):
    source = small_model()
    perturb_state(source)
    path = tmp_path / "model.weights.safetensors"
    source.save_weights(path)
    target = small_model()  # same architecture, other automatic layer names, other initial weights
    x = digits_batch()
    assert not np.allclose(target.predict(x), source.predict(x))
    target.load_weights(path)
    np.testing.assert_array_equal(target.predict(x), source.predict(x))
    # The file is plain safetensors with the model's "layer/param" names.
    tensors, metadata = cio.read_safetensors(path)
    assert list(tensors) == list(source.named_weights())
    assert metadata["format"] == cio.WEIGHTS_FORMAT


@pytest.mark.parametrize("build", [small_model, functional_model], ids=["sequential", "functional"])
def test_save_and_load_model_round_trip(tmp_path, build):
    import cudacnn

    model = build()
    perturb_state(model)
    path = tmp_path / "model.cudacnn"
    model.save(path)
    restored = cudacnn.load_model(path)
    x = digits_batch()
    np.testing.assert_array_equal(restored.predict(x), model.predict(x))
    assert restored.get_config() == model.get_config()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.cudacnn"]


def test_load_model_keeps_the_compile_config(tmp_path):
    import cudacnn
    from cudacnn import optimizers

    model = small_model()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "m.cudacnn")
    restored = cudacnn.load_model(tmp_path / "m.cudacnn")
    assert isinstance(restored.optimizer, optimizers.SGD)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    assert restored.loss.get_config() == model.loss.get_config()
    x, y = digits_batch(), np.arange(16) % 10
    assert restored.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)
    uncompiled = cudacnn.load_model(tmp_path / "m.cudacnn", compile=False)
    assert uncompiled.optimizer is None


def test_load_weights_reports_every_mismatch_at_once(tmp_path):
    path = tmp_path / "w.safetensors"
    source = small_model()
    weights = dict(source.named_weights())
    names = list(weights)
    conv_kernel, conv_bias = names[0], names[1]
    weights[conv_kernel] = np.zeros((8, 1, 3, 3), np.float32)        # wrong shape
    weights[conv_bias] = weights[conv_bias].astype(np.float64)      # wrong dtype
    dropped = names[-1]
    del weights[dropped]                                            # missing
    weights["stray/kernel"] = np.zeros(3, np.float32)               # unexpected
    cio.write_safetensors(path, weights)
    before = {k: v.copy() for k, v in source.named_weights().items()}
    with pytest.raises(ValueError) as err:
        source.load_weights(path)
    message = str(err.value)
    assert str(path) in message and "4 problem(s)" in message
    assert f"shape mismatch for {conv_kernel}: model (4, 1, 3, 3), file (8, 1, 3, 3)" in message
    assert f"dtype mismatch for {conv_bias}: model float32, file float64" in message
    assert f"missing from the file: {dropped}" in message
    assert "not in the model: stray/kernel (3,)" in message
    for name, value in source.named_weights().items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, before[name])


def test_load_weights_into_a_different_architecture(tmp_path):
    path = tmp_path / "w.safetensors"
    small_model(filters=4, extra=True).save_weights(path)
    with pytest.raises(ValueError) as err:
        small_model(filters=6).load_weights(path)
    message = str(err.value)
    assert "not in the model" in message and "shape mismatch" in message


def test_load_model_rejects_weights_only_and_corrupt_files(tmp_path):
    import cudacnn

    weights = tmp_path / "w.safetensors"
    small_model().save_weights(weights)
    with pytest.raises(ValueError, match="weights only"):
        cudacnn.load_model(weights)
    model_path = tmp_path / "m.cudacnn"
    small_model().save(model_path)
    raw = model_path.read_bytes()
    model_path.write_bytes(raw[: len(raw) - 50])
    with pytest.raises(ValueError, match="truncated") as err:
        cudacnn.load_model(model_path)
    assert str(model_path) in str(err.value)


def test_load_model_rejects_a_bad_config_or_version(tmp_path):
    import cudacnn

    path = tmp_path / "m.cudacnn"
    model = small_model()
    tensors = model.named_weights()
    base = {"format": cio.MODEL_FORMAT, "format_version": cio.FORMAT_VERSION}
    cio.write_safetensors(path, tensors, {**base, "model_config": json.dumps({"layers": [{"class_name": "NoSuchLayer"}]})})
    with pytest.raises(ValueError, match="cannot rebuild the model") as err:
        cudacnn.load_model(path)
    assert str(path) in str(err.value)
    cio.write_safetensors(path, tensors, {**base, "model_config": "{broken"})
    with pytest.raises(ValueError, match="corrupt model config"):
        cudacnn.load_model(path)
    cio.write_safetensors(path, tensors, {**base, "format_version": "99", "model_config": json.dumps(model.get_config())})
    with pytest.raises(ValueError, match="format version '99'"):
        cudacnn.load_model(path)


def test_failed_model_save_keeps_the_previous_model(tmp_path, monkeypatch):
    import cudacnn

    path = tmp_path / "m.cudacnn"
    first = small_model()
    first.save(path)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode: _CrashingFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="disk full"):
        small_model().save(path)
    monkeypatch.undo()
    x = digits_batch()
    np.testing.assert_array_equal(cudacnn.load_model(path).predict(x), first.predict(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.cudacnn"]


@pytest.mark.gpu
def test_gpu_model_saves_and_loads(tmp_path, cp):
    import cudacnn

    model = small_model()
    perturb_state(model)
    x = digits_batch()
    expected = model.predict(x)
    model.to("gpu")
    model.save(tmp_path / "gpu.cudacnn")
    model.save_weights(tmp_path / "gpu.safetensors")
    restored = cudacnn.load_model(tmp_path / "gpu.cudacnn")  # loads onto the CPU
    np.testing.assert_allclose(restored.predict(x), expected, rtol=1e-4, atol=1e-5)
    on_gpu = small_model().to("gpu")
    on_gpu.load_weights(tmp_path / "gpu.safetensors")  # host arrays copied into device weights
    assert all(cudacnn.backend.is_gpu_array(v) for v in on_gpu.named_weights().values())
    np.testing.assert_allclose(on_gpu.predict(x), expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------ hand-edited or hostile files
def test_safetensors_paths_and_odd_headers_are_clear_errors(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        st.read_safetensors(tmp_path)
    with pytest.raises(FileNotFoundError, match="no safetensors file"):
        st.read_safetensors(tmp_path / "absent.safetensors")
    path = tmp_path / "bad.safetensors"
    _corrupt(path, {"a": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, b"\0" * 8)
    with pytest.raises(ValueError, match="invalid shape"):  # JSON true is no dimension
        st.read_safetensors(path)
    body = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(ValueError, match="corrupt safetensors header") as err:  # not a RecursionError
        st.read_safetensors(path)
    assert str(path) in str(err.value)


def test_writing_to_a_directory_or_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        st.write_safetensors(tmp_path, {"a": np.zeros(2, np.float32)})
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        st.write_safetensors(tmp_path / "nowhere" / "w.safetensors", {"a": np.zeros(2, np.float32)})
    assert str(tmp_path / "nowhere") in str(err.value)
    assert not list(tmp_path.iterdir())


def _save_with_config(path, model, edit):
    """Save ``model``, its JSON model config changed by ``edit(config)`` (which may return a new one)."""
    config = json.loads(json.dumps(model.get_config()))
    config = edit(config) or config
    metadata = {"format": cio.MODEL_FORMAT, "format_version": cio.FORMAT_VERSION,
                "model_config": config if isinstance(config, str) else json.dumps(config)}
    cio.write_safetensors(path, model.named_weights(), metadata)
    return path


def _nested(depth):
    inner = '{"class_name": "Flatten", "config": {}}'
    for _ in range(depth):
        inner = '{"class_name": "Sequential", "config": {"layers": [' + inner + ']}}'
    return '{"input_shape": [1, 8, 8], "layers": [' + inner + ']}'


def _functional(**changes):
    config = {"name": "m", "layers": [{"class_name": "InputLayer", "config": {"name": "in", "shape": [1, 8, 8]}},
                                      {"class_name": "Flatten", "config": {"name": "fl"}, "inbound": ["in"]}],
              "input_layers": ["in"], "output_layers": ["fl"]}
    config["layers"][1].update(changes.pop("flatten", {}))
    config.update(changes)
    return config


def _set(index, **values):
    def edit(config):
        config["layers"][index]["config"].update(values)
    return edit


@pytest.mark.parametrize("edit", [
    lambda c: c["layers"].insert(0, {"class_name": "Sequential", "config": None}),  # was AttributeError
    lambda c: _functional(flatten={"inbound": []}),                                 # was IndexError
    lambda c: _functional(input_layers=[]),                                         # was IndexError
    lambda c: _nested(300),                                                         # was RecursionError
    lambda c: "[" * 100_000 + "]" * 100_000,                                        # was RecursionError (JSON)
    _set(0, filters=10**12),                 # was a MemoryError: a 36 TB kernel allocated before any check
    _set(0, kernel_size=[3, 10**12]),        # likewise
    lambda c: c.update(input_shape=[1, 10**6, 10**6]),  # a 4e12-input Dense kernel
    _set(4, units=7),                        # fits no stored tensor: refused before allocating, too
], ids=["nested-config-null", "empty-inbound", "empty-input-layers", "deep-nesting", "deep-json",
        "huge-filters", "huge-kernel", "huge-input", "other-units"])
def test_load_model_rejects_edited_configs_naming_the_file(tmp_path, edit):
    import cudacnn
    from cudacnn.layers.base import Layer

    add_weight = Layer.add_weight
    path = _save_with_config(tmp_path / "m.cudacnn", small_model(), edit)
    with pytest.raises(ValueError, match="model config") as err:
        cudacnn.load_model(path)
    assert str(path) in str(err.value)
    assert Layer.add_weight is add_weight  # the rebuild guard is gone again


def test_load_model_refuses_an_optimizer_that_is_no_registered_class(tmp_path):
    import cudacnn

    path = tmp_path / "m.cudacnn"
    model = small_model()
    model.compile("adam", "mse")
    model.save(path)
    tensors, metadata = cio.read_safetensors(path)
    compile_config = json.loads(metadata["compile_config"])
    compile_config["optimizer"]["name"] = "Optimizer"  # the abstract base: it would compile, then fail to train
    cio.write_safetensors(path, tensors, {**metadata, "compile_config": json.dumps(compile_config)})
    with pytest.raises(ValueError, match="cannot restore the compile settings") as err:
        cudacnn.load_model(path)
    assert "unknown optimizer 'Optimizer'" in str(err.value)
    assert cudacnn.load_model(path, compile=False).optimizer is None


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd_momentum"])
def test_a_saved_model_resumes_training_where_it_stopped(tmp_path, optimizer):
    """As from Keras' .keras files: the moments and step count are saved, so one more step after
    loading equals one more step of the original."""
    from cudacnn import optimizers
    make = {"adam": lambda: optimizers.Adam(0.01), "rmsprop": lambda: optimizers.RMSprop(0.01),
            "sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9)}[optimizer]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 16)
    model = cudacnn.Sequential([L.Conv2D(2, 3, input_shape=(1, 6, 6)), L.BatchNormalization(), L.Flatten(),
                                L.Dense(3, activation="softmax")])
    model.compile(make(), "sparse_categorical_crossentropy")
    for _ in range(3):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.cudacnn")
    loaded = cudacnn.load_model(tmp_path / "m.cudacnn")
    assert loaded.optimizer.iterations == 3
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Without compile, or into a model built anew, the state is left out, not refused.
    assert cudacnn.load_model(tmp_path / "m.cudacnn", compile=False).optimizer is None
    model.load_weights(tmp_path / "m.cudacnn")


def test_optimizer_state_that_fits_no_weight_is_left_out_with_a_warning(tmp_path):
    """As Keras skips optimizer variables that do not match: the rest of the state still loads."""
    model = cudacnn.Sequential([L.Dense(3, input_shape=(4,), name="d")])
    model.compile("adam", "mse")
    model.train_on_batch(np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32))
    model.save(tmp_path / "m.cudacnn")
    tensors, metadata = cio.read_safetensors(tmp_path / "m.cudacnn")
    tensors["__optimizer__/d/kernel/m"] = np.zeros((5, 5), np.float32)
    cio.write_safetensors(tmp_path / "odd.cudacnn", tensors, metadata)
    with pytest.warns(UserWarning, match=r"odd.cudacnn: optimizer state left out, it fits no weight of the "
                                         r"model: \['d/kernel/m', 'd/kernel/v'\]"):
        loaded = cudacnn.load_model(tmp_path / "odd.cudacnn")
    assert set(loaded.optimizer._slots) == {("d", "bias")} and loaded.optimizer.iterations == 1


def test_only_the_saved_models_own_optimizer_state_is_written(tmp_path, recwarn):
    """One optimizer may have served layers that are gone (pop, or a second model): not saved."""
    from cudacnn import optimizers
    sgd = optimizers.SGD(0.1, momentum=0.9)
    x, y = np.ones((2, 4), np.float32), np.zeros((2, 3), np.float32)
    first = cudacnn.Sequential([L.Dense(3, input_shape=(4,), name="first")])
    first.compile(sgd, "mse")
    first.train_on_batch(x, y)
    model = cudacnn.Sequential([L.Dense(3, input_shape=(4,), name="second")])
    model.compile(sgd, "mse")
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.cudacnn")
    tensors, metadata = cio.read_safetensors(tmp_path / "m.cudacnn")
    assert sorted(k for k in tensors if k.startswith("__optimizer__/")) == [
        "__optimizer__/second/bias/velocity", "__optimizer__/second/kernel/velocity"]
    assert metadata["format_version"] == "2"
    cudacnn.load_model(tmp_path / "m.cudacnn")
    assert not recwarn.list
    model.save(tmp_path / "lean.cudacnn", include_optimizer=False)
    tensors, metadata = cio.read_safetensors(tmp_path / "lean.cudacnn")
    assert metadata["format_version"] == "1" and not any(k.startswith("__optimizer__/") for k in tensors)
    assert cudacnn.load_model(tmp_path / "lean.cudacnn").optimizer.iterations == 0


@pytest.mark.parametrize("omitted", ["gamma", "beta"])
def test_a_batch_norm_file_from_before_scale_and_center_omitted_their_weights_loads(tmp_path, omitted):
    """BatchNormalization(scale=False) saved a gamma of ones before it stopped creating one."""
    model = cudacnn.Sequential([L.Dense(4, input_shape=(3,)),
                                L.BatchNormalization(name="bn", **{"scale" if omitted == "gamma" else "center": False})])
    tensors = model.named_weights()
    tensors[f"bn/{omitted}"] = (np.ones if omitted == "gamma" else np.zeros)(4, np.float32)
    cio.write_safetensors(tmp_path / "old.safetensors", tensors)
    model.load_weights(tmp_path / "old.safetensors")
    rebuilt = cudacnn.Sequential([L.Dense(4, input_shape=(3,)),  # automatic names: paired by position
                                  L.BatchNormalization(**{"scale" if omitted == "gamma" else "center": False})])
    rebuilt.load_weights(tmp_path / "old.safetensors")
    tensors[f"bn/{omitted}"] = np.full(4, 0.5, np.float32)  # not the constant the layer uses: refused
    cio.write_safetensors(tmp_path / "odd.safetensors", tensors)
    with pytest.raises(ValueError, match=rf"not in the model: bn/{omitted}"):
        model.load_weights(tmp_path / "odd.safetensors")

