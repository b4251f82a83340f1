"""Image data sets from local files (nothing is downloaded).

Every loader returns ``((x_train, y_train), (x_test, y_test))`` with images as
NCHW float32 in [0, 1] and labels as int64, ready for ``model.fit``.

* ``load_digits()``: the 8x8 handwritten digits embedded in this package
  (``data/digits.npz``: 1797 images, values 0..16). It is scikit-learn's bundled
  copy of the UCI "Optical Recognition of Handwritten Digits" test set
  (BSD-licensed, via ``sklearn.datasets.load_digits``), stored once as uint8 so
  that training needs no scikit-learn.
* ``load_mnist(path)``, ``load_fashion_mnist(path=None)``: the IDX files
  (``train-images-idx3-ubyte[.gz]`` and friends), gzipped or not, or a Keras
  ``mnist.npz``.
* ``load_cifar10(path)``: the python version (pickled batches, read with an
  unpickler that refuses everything but arrays, lists, dicts and strings) or
  the binary version (``data_batch_*.bin``).

Missing files raise ``FileNotFoundError`` saying where we looked; truncated or
malformed files raise ``ValueError`` naming the file.
"""
from __future__ import annotations

import gzip
import io
import math
import numbers
import os
import pickle
import pickletools
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from .npy_header import read_npy_header

__all__ = ["load_digits", "load_mnist", "load_fashion_mnist", "load_cifar10", "read_idx"]


# --------------------------------------------------------------------- digits
def load_digits(test_fraction: float = 0.2, seed: int = 0):
    """The embedded 8x8 digits, split per class into train and test.

    The split is stratified and seeded, so every call with the same arguments
    gives the same sets, each with (about) ``test_fraction`` of every digit.
    Images are (N, 1, 8, 8) float32, the original 0..16 values divided by 16.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    with resources.files("cudacnn").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as archive:
            images, labels = archive["images"], archive["labels"].astype(np.int64)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test_mask[members[: round(len(members) * test_fraction)]] = True
    if test_mask.all() or not test_mask.any():
        raise ValueError(f"test_fraction={test_fraction} leaves the {'train' if test_mask.all() else 'test'} "
                         "set empty")
    train_idx = rng.permutation(np.flatnonzero(~test_mask))
    test_idx = np.flatnonzero(test_mask)
    x = (images.astype(np.float32) / 16.0)[:, None, :, :]
    return (x[train_idx], labels[train_idx]), (x[test_idx], labels[test_idx])


# ------------------------------------------------------------------------ IDX
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


# Far above any image data set: a header that declares more is corrupt or hostile, and is refused
# before a byte of data is read (or a buffer allocated).
_MAX_DATA_BYTES = 2**31 - 1
_READ_CHUNK = 1 << 24  # data is read in pieces, so a header that lies about its size costs no big buffer


def _check_declared_size(source, shape, dtype) -> int:
    """The bytes an array of ``shape`` and ``dtype`` holds; ValueError for a shape beyond the limit."""
    if any(d < 0 for d in shape):
        raise ValueError(f"{source} declares shape {shape}, with a negative dimension")
    # A zero dimension or an empty dtype exempts nothing: numpy must still index the other dimensions.
    if math.prod(d for d in shape if d) * max(dtype.itemsize, 1) > _MAX_DATA_BYTES:
        raise ValueError(f"{source} declares shape {shape} of {dtype}, beyond the limit of {_MAX_DATA_BYTES} bytes")
    return math.prod(shape) * dtype.itemsize


def _open_idx(path: Path):
    """A binary stream of the file, un-gzipped as it is read when it starts with the gzip magic
    (streamed, so a file that inflates far past its header's shape is never held in memory)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or plain.

    Header: two zero bytes, a type code (0x08 = uint8, ...), the number of
    dimensions, then each dimension as a big-endian uint32; the data follows.
    """
    path = Path(path)
    stream = _open_idx(path)  # a missing file raises as itself
    try:
        with stream:
            head = stream.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise ValueError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
            type_code, ndim = head[2], head[3]
            if type_code not in _IDX_DTYPES:
                raise ValueError(f"{path}: unknown IDX data type code 0x{type_code:02x}")
            raw_dims = stream.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise ValueError(f"{path}: truncated IDX header ({4 + len(raw_dims)} bytes, need {4 + 4 * ndim})")
            dims = tuple(int(d) for d in np.frombuffer(raw_dims, ">u4"))
            dtype = np.dtype(_IDX_DTYPES[type_code])
            need = _check_declared_size(f"{path}: IDX header", dims, dtype)
            data = bytearray()
            while len(data) < need and (chunk := stream.read(min(_READ_CHUNK, need - len(data)))):
                data += chunk
            extra = stream.read(1)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if len(data) != need or extra:
        problem = "truncated" if len(data) < need else "has trailing bytes"
        raise ValueError(f"{path}: IDX file {problem}: the header with shape {dims} needs {need} bytes of data")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find_idx_file(directory: Path, stem: str) -> Path | None:
    # The original archives unpack to "train-images-idx3-ubyte"; some mirrors
    # use "train-images.idx3-ubyte".
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _has_idx_files(directory: Path) -> bool:
    return all(_find_idx_file(directory, stem) for stem in _IDX_FILES.values())


def _load_idx_directory(directory: Path, num_classes: int = 10):
    arrays = {}
    for key, stem in _IDX_FILES.items():
        found = _find_idx_file(directory, stem)
        if found is None:
            raise FileNotFoundError(f"{directory}: missing {stem} (or {stem}.gz)")
        arrays[key] = (found, read_idx(found))
    splits = []
    for part in ("train", "test"):
        (x_path, images), (y_path, labels) = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.ndim != 3:
            raise ValueError(f"{x_path}: expected images of shape (N, H, W), got {images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"{y_path}: expected labels of shape (N,), got {labels.shape}")
        splits.append(_images_and_labels(images[:, None], labels, num_classes, x_path, y_path))
    return tuple(splits)


def _images_and_labels(images, labels, num_classes, x_source, y_source):
    """Validate and convert to float32 NCHW in [0, 1] and int64 labels."""
    if len(images) != len(labels):
        raise ValueError(f"{x_source} has {len(images)} images but {y_source} has {len(labels)} labels")
    labels = _class_labels(labels, num_classes, y_source)
    if images.dtype == np.uint8:
        x = images.astype(np.float32) / np.float32(255.0)
    elif images.dtype.kind not in "iuf":
        raise ValueError(f"{x_source}: images must be numbers (uint8, or others in [0, 1]), got dtype {images.dtype}")
    else:
        x = images.astype(np.float32)
        if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # (written so that NaN fails too)
            raise ValueError(f"{x_source}: non-uint8 images must already lie in [0, 1], "
                             f"found {x.min()}..{x.max()}")
    return x, labels


def _class_labels(labels, num_classes, source):
    """``labels`` as int64 class indices, refusing non-integers and values outside [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"{source}: labels must be integers, got dtype {labels.dtype}")
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():  # 1.7 would silently become class 1
            raise ValueError(f"{source}: labels must be whole numbers, found {labels[~whole].ravel()[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{source}: labels must lie in [0, {num_classes}), "
                         f"found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def _check_npz_entry(archive: zipfile.ZipFile, key: str) -> None:
    """Read the .npy header of entry ``key`` and refuse the array it declares if it is bigger than the
    cap or than the entry: np.load allocates whatever a header declares before reading any data."""
    name = f"{key}.npy"
    if name not in archive.namelist():
        raise KeyError(key)
    with archive.open(name) as f:
        try:
            shape, dtype = read_npy_header(f)
        except ValueError as exc:
            raise ValueError(f"entry {name} has no valid .npy header ({exc})") from None
        header_bytes = f.tell()
    nbytes = _check_declared_size(f"entry {name}", shape, dtype)
    holds = archive.getinfo(name).file_size - header_bytes
    if not dtype.hasobject and nbytes > holds:  # (object arrays are refused by np.load, unread)
        raise ValueError(f"entry {name} is truncated: shape {shape} of {dtype} needs {nbytes} bytes "
                         f"of data, it holds {holds}")


def _load_npz(path: Path, num_classes: int = 10):
    """A Keras-style ``mnist.npz`` (x_train, y_train, x_test, y_test as uint8)."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):  # np.load also reads .npy files
            raise ValueError(f"it holds a single array of shape {archive.shape}, not an .npz archive")
        with archive:
            for key in _IDX_FILES:
                _check_npz_entry(archive.zip, key)
            arrays = {key: archive[key] for key in _IDX_FILES}
    except KeyError as exc:
        raise ValueError(f"{path}: missing array {exc}; expected x_train, y_train, x_test, y_test") from None
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    splits = []
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{path}: expected x_{part} (N, H, W) and y_{part} (N,), "
                             f"got {images.shape} and {labels.shape}")
        splits.append(_images_and_labels(images[:, None], labels, num_classes,
                                         f"{path}[x_{part}]", f"{path}[y_{part}]"))
    return tuple(splits)


def _data_root() -> Path | None:
    env = os.environ.get("CUDACNN_DATA")
    return Path(env).expanduser() if env else None


def _search_dirs(subdir: str, extra: list[Path]) -> list[Path]:
    # Only $CUDACNN_DATA/<subdir>, not $CUDACNN_DATA itself: MNIST and
    # Fashion-MNIST use the same file names, so a bare root would be ambiguous.
    root = _data_root()
    return [*([root / subdir] if root else []), *extra, Path.home() / ".keras" / "datasets" / subdir]


def _load_mnist_like(path, name: str, subdir: str, extra_dirs: list[Path], npz_name: str | None):
    if path is not None:
        path = Path(path).expanduser()
        if path.is_file() and path.suffix == ".npz":
            return _load_npz(path)
        if path.is_dir():
            return _load_idx_directory(path)
        raise FileNotFoundError(f"{name}: {path} is neither a directory of IDX files nor an .npz file")
    candidates = _search_dirs(subdir, extra_dirs)
    if npz_name:
        root = _data_root()
        candidates += [*([root / npz_name] if root else []), Path.home() / ".keras" / "datasets" / npz_name]
    for candidate in candidates:
        if candidate.is_dir() and _has_idx_files(candidate):
            return _load_idx_directory(candidate)
        if candidate.is_file() and candidate.suffix == ".npz":
            return _load_npz(candidate)
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"{name} files not found; looked in: {looked}. "
                            f"Pass the directory holding {', '.join(_IDX_FILES.values())} (.gz or not).")


def load_mnist(path=None):
    """MNIST from a directory of IDX files or a Keras ``mnist.npz``.

    With no path, looks for ``mnist/`` or ``mnist.npz`` in ``$CUDACNN_DATA``
    and ``~/.keras/datasets``.
    """
    return _load_mnist_like(path, "MNIST", "mnist", [], "mnist.npz")


SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(path=None):
    """Fashion-MNIST from a directory of IDX files.

    With no path, looks in ``$CUDACNN_DATA/fashion-mnist``,
    ``/usr/share/datasets/fashion-mnist`` (Debian's dataset-fashion-mnist) and
    ``~/.keras/datasets/fashion-mnist``.
    """
    return _load_mnist_like(path, "Fashion-MNIST", "fashion-mnist",
                            [SYSTEM_FASHION_MNIST_DIR], None)


# ------------------------------------------------------------------- CIFAR-10
_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR_TEST = ["test_batch"]
_CIFAR_RECORD = 1 + 3 * 32 * 32

# Everything a pickled numpy array needs, under numpy 1.x and 2.x names.
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NUMPY_CORE = "numpy._core" if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else "numpy.core"


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds arrays, lists, dicts and strings; refuses every other global."""

    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")  # the batches were pickled by Python 2
        self._source = source

    def find_class(self, module, name):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"{self._source}: refusing to unpickle {module}.{name}; "
                "a CIFAR-10 batch holds only arrays, lists, dicts and strings")
        # Pickles name numpy's internals as numpy.core (1.x) or numpy._core (2.x).
        if module != "numpy":
            module = _NUMPY_CORE + "." + module.rsplit(".", 1)[1]
        return super().find_class(module, name)


def _load_cifar_pickle(path: Path):
    raw = path.read_bytes()
    try:
        # pickletools checks every length field against the bytes really there, so the unpickler never
        # attempts an allocation the file cannot back (a failing one makes CPython print a SystemError).
        for _ in pickletools.genops(raw):
            pass
        batch = _ArraysOnlyUnpickler(io.BytesIO(raw), path).load()
    except pickle.UnpicklingError as exc:
        message = str(exc)
        raise ValueError(message if str(path) in message else f"{path}: {message}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError,
            OverflowError, SystemError) as exc:  # (numpy reports some bad reconstruct arguments as SystemError)
        raise ValueError(f"{path}: not a readable CIFAR-10 pickle batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a dict batch, got {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: batch lacks 'data' or 'labels' (keys: {sorted(map(str, batch))})")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {what}")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError, RecursionError):
        raise ValueError(f"{path}: 'labels' must be a list of integers") from None
    if labels.ndim != 1:
        raise ValueError(f"{path}: 'labels' must be one-dimensional, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar_binary(path: Path):
    raw = path.read_bytes()
    if not raw or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path}: size {len(raw)} is not a whole number of {_CIFAR_RECORD}-byte "
                         "records (1 label byte + 3072 pixel bytes); truncated?")
    records = np.frombuffer(raw, np.uint8).reshape(-1, _CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def _cifar_layout(directory: Path):
    """(directory, suffix) of the batches under ``directory``, or None."""
    for where in (directory, directory / "cifar-10-batches-py", directory / "cifar-10-batches-bin"):
        for suffix in ("", ".bin"):
            if (where / f"data_batch_1{suffix}").is_file():
                return where, suffix
    return None


def load_cifar10(path=None):
    """CIFAR-10 from the extracted python or binary archive.

    ``path`` is the directory holding ``data_batch_1..5`` and ``test_batch``
    (python version) or their ``.bin`` twins, or its parent. With no path,
    looks in ``$CUDACNN_DATA/cifar10``, ``$CUDACNN_DATA`` and ``~/.keras/datasets``
    (and their ``cifar-10-batches-py``/``-bin`` subdirectories).
    Images come out as (N, 3, 32, 32) float32 in [0, 1].
    """
    if path is None:
        root = _data_root()
        candidates = _search_dirs("cifar10", [*([root] if root else []), Path.home() / ".keras" / "datasets"])
        layout = next((found for c in candidates if c.is_dir() and (found := _cifar_layout(c))), None)
        if layout is None:
            looked = ", ".join(str(c) for c in candidates)
            raise FileNotFoundError(f"CIFAR-10 files not found; looked in: {looked}. Pass the extracted "
                                    "cifar-10-batches-py (or -bin) directory")
    else:
        path = Path(path).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"CIFAR-10: {path} is not a directory; pass the extracted "
                                    "cifar-10-batches-py (or -bin) directory")
        layout = _cifar_layout(path)
        if layout is None:
            raise FileNotFoundError(f"CIFAR-10: no data_batch_1 or data_batch_1.bin in {path} "
                                    "or its cifar-10-batches-py/-bin subdirectories")
    directory, suffix = layout
    read = _load_cifar_binary if suffix else _load_cifar_pickle
    splits = []
    for names in (_CIFAR_TRAIN, _CIFAR_TEST):
        images, labels = [], []
        for name in names:
            file = directory / f"{name}{suffix}"
            if not file.is_file():
                raise FileNotFoundError(f"CIFAR-10: missing {file}")
            x, y = read(file)
            if len(x) != len(y):
                raise ValueError(f"{file}: {len(x)} images but {len(y)} labels")
            y = _class_labels(y, 10, file)
            images.append(x)
            labels.append(y)
        source = directory / f"{names[0]}{suffix}"
        splits.append(_images_and_labels(np.concatenate(images), np.concatenate(labels), 10, source, source))
    return tuple(splits)
