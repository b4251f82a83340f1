"""The safetensors file format, written and read with numpy alone (no pickle).

Layout (https://github.com/huggingface/safetensors):

    8 bytes      N, the header length, unsigned little-endian
    N bytes      JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
                        ..., "__metadata__": {"<key>": "<string value>"}}
    rest         the tensors' raw little-endian bytes; offsets are relative to
                 this buffer, which they must cover exactly, without holes or overlap

Every write goes through :func:`atomic_write`: a crash mid-save leaves the
previous file as it was.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
from pathlib import Path

import numpy as np

__all__ = ["write_safetensors", "read_safetensors", "atomic_write"]

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODES = {np.dtype(t): code for code, t in _DTYPES.items()}
# A header this large is a corrupt length field, not a real header (the reference
# implementation uses the same bound).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@contextlib.contextmanager
def atomic_write(path):
    """Yield a binary file that replaces ``path`` only once fully written.

    The bytes go to a temporary file in the same directory, which is flushed,
    fsync'ed and renamed over ``path``; the directory is then fsync'ed so the
    rename itself survives a power cut. On any error the temporary file is
    removed and ``path`` keeps its old content. A file that is replaced keeps
    its permissions; a symlink keeps pointing at the (new) file.
    """
    path = Path(path)
    if path.is_symlink():  # replace the file it points at, not the link
        path = Path(os.path.realpath(path))
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory; give a file path")
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {path}: directory {directory} does not exist")
    try:
        old_mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        old_mode = None
    tmp_name = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open rather than mkstemp, so a new file gets the usual umask-based mode, not 0600.
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            if old_mode is not None:  # before any byte is written: a private file never becomes readable
                os.chmod(tmp_name, old_mode)
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
    except OSError as exc:
        # Name the file the caller asked for, not our temporary one (write errors name no file at all).
        if exc.errno is None or exc.filename not in (None, str(tmp_name)):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _to_numpy(name: str, array) -> np.ndarray:
    if not isinstance(array, np.ndarray) and hasattr(array, "get"):
        array = array.get()  # a cupy array: copy it to the host
    array = np.asarray(array)
    if array.dtype.newbyteorder("=") not in _CODES:
        raise TypeError(f"tensor {name!r}: dtype {array.dtype} cannot be stored in safetensors "
                        f"(supported: {', '.join(str(np.dtype(t)) for t in _DTYPES.values())})")
    # (not np.ascontiguousarray, which turns a 0-d array into a 1-d one)
    return array.astype(array.dtype.newbyteorder("<"), order="C", copy=False)


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write ``{name: array}`` (numpy or cupy) and optional string metadata to ``path`` atomically."""
    if metadata is not None:
        bad = {k: type(v).__name__ for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))}
        if bad:
            raise TypeError(f"safetensors metadata keys and values must be str; not so for {bad}")
    header: dict = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    arrays = []
    offset = 0
    for name, array in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        array = _to_numpy(name, array)
        header[name] = {"dtype": _CODES[array.dtype.newbyteorder("=")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep the data 8-byte aligned, as the reference does
    with atomic_write(path) as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for array in arrays:
            f.write(array.tobytes())


def read_safetensors(path):
    """Read a safetensors file: ``(dict name -> numpy array, metadata dict)``.

    Raises ValueError naming the file when it is truncated or malformed.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give the path of a saved file (e.g. model.cudacnn)")
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    raw = path.read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (only {len(raw)} bytes; truncated?)")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len > min(_MAX_HEADER_BYTES, len(raw) - 8):
        raise ValueError(f"{path}: header length {header_len} does not fit in a {len(raw)}-byte file "
                         "(truncated, or not a safetensors file)")
    try:
        header = json.loads(raw[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: corrupt safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    data = memoryview(raw)[8 + header_len:]
    entries = [(name, *_parse_entry(path, name, entry)) for name, entry in header.items()]
    _check_layout(path, entries, len(data))
    tensors = {}
    for name, dtype, shape, (begin, end) in entries:
        array = np.frombuffer(data[begin:end], dtype=np.dtype(dtype).newbyteorder("<"))
        try:
            array = array.reshape(shape)
        except ValueError as exc:  # e.g. more than 64 dimensions, or (0, 2**62, 2**62)
            raise ValueError(f"{path}: tensor {name!r} has shape {shape}, which numpy cannot hold ({exc})") from None
        tensors[name] = array.astype(np.dtype(dtype))  # a writable, native-order copy
    return tensors, metadata


def _parse_entry(path, name, entry):
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise ValueError(f"{path}: tensor {name!r} needs dtype, shape and data_offsets, got {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:  # (a JSON list or object is unhashable)
        raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
    if not (isinstance(shape, list) and all(_is_count(d) for d in shape)):
        raise ValueError(f"{path}: tensor {name!r} has invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(_is_count(o) for o in offsets) and offsets[0] <= offsets[1]):
        raise ValueError(f"{path}: tensor {name!r} has invalid data_offsets {offsets!r}")
    nbytes = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise ValueError(f"{path}: tensor {name!r} of shape {tuple(shape)} and dtype {dtype} needs "
                         f"{nbytes} bytes but data_offsets {offsets} span {offsets[1] - offsets[0]}")
    return _DTYPES[dtype], tuple(shape), tuple(offsets)


def _is_count(value) -> bool:
    """A JSON non-negative integer (JSON true/false parse as bool, a subclass of int: not a count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_layout(path, entries, data_len):
    """The tensors must tile the data buffer exactly: in bounds, no gaps, no overlaps."""
    position = 0
    for name, _, _, (begin, end) in sorted(entries, key=lambda e: e[3]):
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else f"leaves a gap at byte {position}"
            raise ValueError(f"{path}: tensor {name!r} at data_offsets [{begin}, {end}] {problem}")
        position = end
    if position != data_len:
        problem = "truncated" if position > data_len else "has trailing bytes"
        raise ValueError(f"{path}: file {problem}: tensors need {position} data bytes, file has {data_len}")
