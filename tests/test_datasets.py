"""Data set loaders on tiny files the tests write, plus the real files where present."""
import gzip
import io
import os
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cudacnn import datasets

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------- digits
def test_digits_shapes_ranges_and_stratified_split():
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    assert x_train.shape == (1438, 1, 8, 8) and x_test.shape == (359, 1, 8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    # Every class is represented in the test set in proportion (about 20 %).
    counts_test = np.bincount(y_test, minlength=10)
    counts_all = counts_test + np.bincount(y_train, minlength=10)
    assert np.all(np.abs(counts_test - 0.2 * counts_all) <= 1)


def test_digits_matches_scikit_learn_and_split_is_deterministic():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    (x_train, y_train), (x_test, y_test) = datasets.load_digits()
    (x_train2, y_train2), (x_test2, _) = datasets.load_digits()
    np.testing.assert_array_equal(x_train, x_train2)
    np.testing.assert_array_equal(y_train, y_train2)
    np.testing.assert_array_equal(x_test, x_test2)
    # Together the splits are exactly scikit-learn's images, each once.
    ours = np.concatenate([x_train, x_test])[:, 0] * 16
    ours_labels = np.concatenate([y_train, y_test])
    order = np.lexsort(ours.reshape(len(ours), -1).T)
    ref_order = np.lexsort(reference.images.reshape(len(ours), -1).T)
    np.testing.assert_array_equal(ours[order], reference.images[ref_order])
    np.testing.assert_array_equal(ours_labels[order], reference.target[ref_order])
    # A different seed gives a different split.
    (_, y_other), _ = datasets.load_digits(seed=1)
    assert not np.array_equal(y_other, y_train)


def test_digits_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load_digits(test_fraction=1.5)


# ------------------------------------------------------------------------ IDX
def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_mnist_dir(directory: Path, gz: bool, n_train=6, n_test=4, size=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: write_idx(directory / name, array, gz) for name, array in arrays.items()}
    return arrays, paths


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_read_idx_round_trips_types(tmp_path, gz):
    for array in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
                  np.array([-5, 70000, 3], dtype=np.int32),
                  np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2)):
        path = write_idx(tmp_path / f"a{array.dtype}", array, gz)
        out = datasets.read_idx(path)
        assert out.dtype == array.dtype and out.dtype.isnative
        np.testing.assert_array_equal(out, array)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_load_mnist_directory(tmp_path, gz):
    arrays, _ = write_mnist_dir(tmp_path, gz)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(tmp_path)
    assert x_train.shape == (6, 1, 5, 5) and x_test.shape == (4, 1, 5, 5)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_allclose(x_train[:, 0] * 255, arrays["train-images-idx3-ubyte"], atol=1e-4)
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert 0.0 <= x_test.min() and x_test.max() <= 1.0


def test_load_fashion_mnist_from_env_directory(tmp_path, monkeypatch):
    arrays, _ = write_mnist_dir(tmp_path / "fashion-mnist", gz=True)
    monkeypatch.setenv("CUDACNN_DATA", str(tmp_path))
    (_, y_train), _ = datasets.load_fashion_mnist()
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])


def test_load_mnist_keras_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (3, 4, 4), dtype=np.uint8), "y_train": np.array([1, 2, 3], np.uint8),
              "x_test": rng.integers(0, 256, (2, 4, 4), dtype=np.uint8), "y_test": np.array([9, 0], np.uint8)}
    np.savez(tmp_path / "mnist.npz", **arrays)
    (x_train, _), (_, y_test) = datasets.load_mnist(tmp_path / "mnist.npz")
    assert x_train.shape == (3, 1, 4, 4)
    np.testing.assert_array_equal(y_test, [9, 0])


def test_broken_npz_is_a_clear_error(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=np.zeros((3, 4, 4), np.uint8), y_train=np.zeros(3, np.uint8),
                        x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.zeros(2, np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match="not a readable .npz") as err:
        datasets.load_mnist(path)
    assert str(path) in str(err.value)
    np.savez(path, x_train=np.array([None], dtype=object), y_train=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=str(path)):
        datasets.load_mnist(path)


def test_missing_mnist_files_name_what_is_missing(tmp_path):
    _, paths = write_mnist_dir(tmp_path, gz=False)
    paths["t10k-labels-idx1-ubyte"].unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        datasets.load_mnist(tmp_path / "nowhere")


def test_fashion_mnist_search_reports_places(tmp_path, monkeypatch):
    # MNIST files in the bare data root must not pass for Fashion-MNIST (same file names).
    write_mnist_dir(tmp_path, gz=False)
    monkeypatch.setenv("CUDACNN_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIR", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError, match="looked in") as err:
        datasets.load_fashion_mnist()
    assert str(tmp_path / "fashion-mnist") in str(err.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_truncated_idx_is_a_clear_error(tmp_path, gz):
    array = np.arange(50, dtype=np.uint8).reshape(2, 5, 5)
    data = idx_bytes(array)[:-7]
    path = tmp_path / ("cut.gz" if gz else "cut")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match="truncated") as err:
        datasets.read_idx(path)
    assert str(path) in str(err.value)


def test_truncated_gzip_stream_is_a_clear_error(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 6, 6), np.uint8)))[:-10])
    with pytest.raises(ValueError, match="gzip") as err:
        datasets.read_idx(path)
    assert str(path) in str(err.value)


def test_wrong_magic_and_short_header(tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic") as err:
        datasets.read_idx(wrong)
    assert str(wrong) in str(err.value)
    bad_type = tmp_path / "badtype"
    bad_type.write_bytes(b"\x00\x00\x42\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="type code"):
        datasets.read_idx(bad_type)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(ValueError, match="header"):
        datasets.read_idx(short)
    trailing = tmp_path / "trailing"
    trailing.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"xx")
    with pytest.raises(ValueError, match="trailing"):
        datasets.read_idx(trailing)


def test_mismatched_counts_and_bad_labels(tmp_path):
    write_mnist_dir(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8), gz=False)
    with pytest.raises(ValueError, match="6 images but .* 5 labels"):
        datasets.load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 12, np.uint8), gz=False)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        datasets.load_mnist(tmp_path)


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"real Fashion-MNIST not installed at {FASHION_DIR}")
def test_real_fashion_mnist():
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(FASHION_DIR)
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    # Known first training labels of Fashion-MNIST: ankle boot, T-shirt, T-shirt, dress.
    np.testing.assert_array_equal(y_train[:4], [9, 0, 0, 3])


# ------------------------------------------------------------------- CIFAR-10
class _Python2StylePickler(pickle._Pickler):
    """Writes bytes as Python 2 str opcodes (BINSTRING), like the original CIFAR batches."""

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + struct.pack("<I", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def write_cifar_python(directory: Path, style: str, sizes=(2, 3, 1, 2, 2, 3)):
    directory.mkdir(parents=True, exist_ok=True)
    batches = {}
    for seed, (name, n) in enumerate(zip([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], sizes)):
        data, labels = cifar_batch(n, seed)
        batch = {b"batch_label": b"fake " + name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [b"img%d.png" % i for i in range(n)]}
        with open(directory / name, "wb") as f:
            if style == "python2":
                _Python2StylePickler(f, protocol=2).dump(batch)
            else:
                pickle.dump(batch, f, protocol=int(style))
        batches[name] = (data, labels)
    return batches


def write_cifar_binary(directory: Path, sizes=(2, 3, 1, 2, 2, 3)):
    directory.mkdir(parents=True, exist_ok=True)
    batches = {}
    for seed, (name, n) in enumerate(zip([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], sizes)):
        data, labels = cifar_batch(n, seed)
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        (directory / f"{name}.bin").write_bytes(records.tobytes())
        batches[name] = (data, labels)
    return batches


def check_cifar(loaded, batches):
    (x_train, y_train), (x_test, y_test) = loaded
    assert x_train.shape == (10, 3, 32, 32) and x_test.shape == (3, 3, 32, 32)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    data, labels = batches["data_batch_1"]
    # Rows are 1024 red, 1024 green, 1024 blue values, each plane row-major.
    np.testing.assert_allclose(x_train[0, 1, 2, 5] * 255, data[0, 1024 + 2 * 32 + 5], atol=1e-4)
    np.testing.assert_array_equal(y_train[:2], labels)
    np.testing.assert_array_equal(y_test, batches["test_batch"][1])


@pytest.mark.parametrize("style", ["python2", "3", "5"])
def test_cifar10_python_batches(tmp_path, style):
    batches = write_cifar_python(tmp_path / "cifar-10-batches-py", style)
    check_cifar(datasets.load_cifar10(tmp_path), batches)
    check_cifar(datasets.load_cifar10(tmp_path / "cifar-10-batches-py"), batches)


def test_cifar10_binary_batches(tmp_path):
    batches = write_cifar_binary(tmp_path / "cifar-10-batches-bin")
    check_cifar(datasets.load_cifar10(tmp_path), batches)


def test_cifar10_binary_truncated(tmp_path):
    write_cifar_binary(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated") as err:
        datasets.load_cifar10(tmp_path)
    assert str(path) in str(err.value)


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _EvalsCode:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload, culprit", [(_RunsShell(), "system"), (_EvalsCode(), "builtins.eval")],
                         ids=["os.system", "eval"])
def test_cifar10_malicious_pickle_is_refused(tmp_path, monkeypatch, payload, culprit):
    write_cifar_python(tmp_path, "3")
    evil = tmp_path / "data_batch_2"
    evil.write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=3))
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a) or 0)
    with pytest.raises(ValueError, match="refusing to unpickle") as err:
        datasets.load_cifar10(tmp_path)
    assert str(evil) in str(err.value) and culprit in str(err.value)
    assert not called


def test_cifar10_malformed_batches(tmp_path):
    write_cifar_python(tmp_path, "3")
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"\(N, 3072\)"):
        datasets.load_cifar10(tmp_path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="dict"):
        datasets.load_cifar10(tmp_path)
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="test_batch"):
        datasets.load_cifar10(tmp_path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        datasets.load_cifar10(tmp_path)


def test_cifar10_found_through_cudacnn_data(tmp_path, monkeypatch):
    batches = write_cifar_binary(tmp_path / "cifar10" / "cifar-10-batches-bin")
    monkeypatch.setenv("CUDACNN_DATA", str(tmp_path))
    check_cifar(datasets.load_cifar10(), batches)
    monkeypatch.setenv("CUDACNN_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match="looked in"):
        datasets.load_cifar10()


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        datasets.load_cifar10(tmp_path)
    write_cifar_binary(tmp_path)
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch.bin"):
        datasets.load_cifar10(tmp_path)


# ------------------------------------------------- labels and arrays that are not what they claim
def test_digits_rejects_bad_arguments_and_empty_splits():
    with pytest.raises(TypeError, match="test_fraction"):
        datasets.load_digits(test_fraction="0.2")
    with pytest.raises(ValueError, match="test set empty"):
        datasets.load_digits(test_fraction=0.0001)
    with pytest.raises(ValueError, match="train set empty"):
        datasets.load_digits(test_fraction=0.9999)
    with pytest.raises(ValueError, match="seed"):
        datasets.load_digits(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        datasets.load_digits(seed="a")


def test_non_integral_labels_are_refused_not_truncated(tmp_path):
    write_mnist_dir(tmp_path, gz=False)
    labels = write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1.7, 2, 3, 4, 5], np.float32), gz=False)
    with pytest.raises(ValueError, match="whole numbers") as err:
        datasets.load_mnist(tmp_path)
    assert str(labels) in str(err.value)
    write_idx(labels, np.array([0, 1, 2, 3, 4, 5], np.float32), gz=False)  # whole floats are fine
    np.testing.assert_array_equal(datasets.load_mnist(tmp_path)[0][1], np.arange(6))


@pytest.mark.parametrize("labels, message", [(np.array([1.5, 2.0]), "whole numbers"),
                                             (np.array([np.nan, 2.0]), "whole numbers"),
                                             (np.array(["1", "2"]), "must be integers")],
                         ids=["fraction", "nan", "strings"])
def test_npz_labels_must_be_class_indices(tmp_path, labels, message):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4), np.uint8), y_train=labels,
             x_test=np.zeros((1, 4, 4), np.uint8), y_test=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=message) as err:
        datasets.load_mnist(path)
    assert str(path) in str(err.value)


def test_npz_images_must_be_real_numbers_in_range(tmp_path):
    path = tmp_path / "mnist.npz"
    for images in (np.full((1, 4, 4), np.nan, np.float32), np.zeros((1, 4, 4), np.complex64)):
        np.savez(path, x_train=images, y_train=np.zeros(1, np.uint8),
                 x_test=np.zeros((1, 4, 4), np.uint8), y_test=np.zeros(1, np.uint8))
        with pytest.raises(ValueError, match="x_train"):
            datasets.load_mnist(path)


def test_an_npy_file_named_npz_is_a_clear_error(tmp_path):
    path = tmp_path / "mnist.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="not a readable .npz") as err:
        datasets.load_mnist(path)
    assert str(path) in str(err.value)


def test_cifar10_float_labels_are_refused_not_truncated(tmp_path):
    write_cifar_python(tmp_path, "3")
    path = tmp_path / "data_batch_4"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.0, 1.7]}))
    with pytest.raises(ValueError, match="whole numbers") as err:
        datasets.load_cifar10(tmp_path)
    assert str(path) in str(err.value)


def test_a_gzip_bomb_is_refused_from_its_header_without_inflating_it(tmp_path):
    """A gzipped IDX file is read as a stream: the header's shape bounds what is inflated."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big"))
        f.write(b"\0" * (64 << 20))  # 64 MB of zeros behind a header that promises 10 bytes
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="has trailing bytes"):
            datasets.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes allocated: the data was inflated"
    huge = tmp_path / "huge-idx3-ubyte"
    huge.write_bytes(bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in (60000, 65536, 65536)))
    with pytest.raises(ValueError, match="beyond the limit of 2147483647 bytes"):
        datasets.read_idx(huge)
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "missing-idx1-ubyte")


def test_an_idx_header_is_capped_in_bytes_not_values(tmp_path):
    """116 bytes declaring 2.1e9 float64 values: under a count of values, but 17 GB to read."""
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2739136, 28, 28) + b"\0" * 100)
    with pytest.raises(ValueError, match="beyond the limit of 2147483647 bytes") as err:
        datasets.read_idx(path)
    assert str(path) in str(err.value) and "(2739136, 28, 28)" in str(err.value)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_an_idx_header_that_lies_about_its_size_costs_no_big_buffer(tmp_path, gz):
    path = tmp_path / "train-images-idx3-ubyte"
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 256, 1024, 1024) + b"\0" * 100  # promises 256 MiB
    path.write_bytes(gzip.compress(data) if gz else data)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="IDX file truncated") as err:
            datasets.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value)
    assert peak < 32 << 20, f"{peak} bytes allocated for 100 bytes of data"


def _npy(shape, descr="|u1", data=b""):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def _mnist_npz(path: Path, x_train: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", x_train)
        archive.writestr("y_train.npy", _npy((2,), data=b"\0" * 2))
        archive.writestr("x_test.npy", _npy((1, 4, 4), data=b"\0" * 16))
        archive.writestr("y_test.npy", _npy((1,), data=b"\0"))
    return path


_GOOD_NPY = _npy((2, 4, 4), data=b"\0" * 32)
_CUT_HEADER = _GOOD_NPY[:8] + b"\x10\x00" + _GOOD_NPY[10:]  # header length damaged: the dict is cut short


@pytest.mark.parametrize("x_train, message", [
    (_npy((10**7, 10**6, 28)), r"x_train.npy declares shape \(10000000, 1000000, 28\) of uint8, beyond the limit"),
    (_npy((2**70, 0)), r"x_train.npy declares shape .* beyond the limit"),  # OverflowError in numpy
    (_npy((-1, 2**70)), r"x_train.npy declares shape .* with a negative dimension"),  # OverflowError
    (_npy((100, 1000, 1000), data=b"\0" * 10), r"x_train.npy is truncated: .* needs 100000000 bytes of data, "
                                                r"it holds 10"),  # a 100 MB buffer, then EOFError
    (_CUT_HEADER, "x_train.npy has no valid .npy header"),  # tokenize.TokenError
    (_GOOD_NPY.replace(b"|u1", b",u1"), "x_train.npy has no valid .npy header"),  # SyntaxError
], ids=["huge", "zero-dim-overflow", "negative", "truncated", "cut-header", "bad-descr"])
def test_npz_entries_are_checked_from_their_headers_before_loading(tmp_path, x_train, message):
    path = _mnist_npz(tmp_path / "mnist.npz", x_train)
    with pytest.raises(ValueError, match=message) as err:
        datasets.load_mnist(path)
    assert str(path) in str(err.value)


def test_the_checked_npz_still_loads(tmp_path):
    (x_train, y_train), (x_test, _) = datasets.load_mnist(_mnist_npz(tmp_path / "mnist.npz", _GOOD_NPY))
    assert x_train.shape == (2, 1, 4, 4) and y_train.shape == (2,) and x_test.shape == (1, 1, 4, 4)


def _frame_overflow():
    raw = bytearray(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=4))
    assert raw[2] == pickle.FRAME[0]
    raw[3:11] = b"\xff" * 8  # a FRAME length of 2**64 - 1
    return bytes(raw)


@pytest.mark.parametrize("payload", [  # the comment says what escaped before
    b"\x80\x04\x8e" + b"\xff" * 8,  # BINBYTES8 of 2**64 - 1 bytes: OverflowError
    _frame_overflow(),  # OverflowError
    # BYTEARRAY8 of 4 EiB: CPython's failed allocation reads a stale export count (here from the 25 bytes
    # just freed by POP) and prints "SystemError: deallocated bytearray object has exported buffers"
    b"\x80\x05C\x19" + b"\x01" * 25 + b"0\x96" + (2**62).to_bytes(8, "little") + b".",
    # numpy.dtype("u1", False, True) given a dict as its state (one flipped bit in a real batch): SystemError
    b"\x80\x02}(C\x04datacnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R}bC\x06labels]u.",
], ids=["binbytes8", "frame", "bytearray8", "dtype-state"])
def test_cifar10_damaged_length_fields_are_value_errors(tmp_path, capfd, payload):
    write_cifar_python(tmp_path, "3")
    path = tmp_path / "data_batch_2"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="not a readable CIFAR-10 pickle batch") as err:
        datasets.load_cifar10(tmp_path)
    assert str(path) in str(err.value)
    assert "SystemError" not in capfd.readouterr().err
