"""Saving and loading models and weights (safetensors files; no pickle anywhere).

* ``save_weights(model, path)`` writes ``model.named_weights()`` ("layer/param"
  -> array, trainable params then state such as BatchNorm moving averages).
* ``save_model(model, path)`` writes one self-contained file (by convention
  ``*.cudacnn``): the same tensors, plus the architecture
  (``model.get_config()``) and, if the model was compiled, its compile config,
  as JSON strings in the safetensors ``__metadata__``. Any safetensors reader
  can open it; ``load_model`` rebuilds the model from it.

Every write is atomic (see :func:`cudacnn.safetensors.atomic_write`). Loading
checks names, shapes and dtypes against the model and reports every mismatch
in one ValueError before changing any weight.
"""
from __future__ import annotations

import json

import numpy as np

from .safetensors import atomic_write, read_safetensors, write_safetensors

__all__ = ["save_model", "load_model", "save_weights", "load_weights",
           "write_safetensors", "read_safetensors", "atomic_write"]

MODEL_FORMAT = "cudacnn.model"
WEIGHTS_FORMAT = "cudacnn.weights"
FORMAT_VERSION = "1"


def _version() -> str:
    from . import __version__

    return __version__


def save_weights(model, path) -> None:
    """Write the model's weights (numpy or cupy) to a safetensors file."""
    metadata = {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "cudacnn_version": _version()}
    write_safetensors(path, model.named_weights(), metadata)


def load_weights(model, path) -> None:
    """Load weights saved by ``save_weights`` or ``save_model`` into ``model``.

    Every name, shape and dtype must match; all mismatches are reported at once.
    """
    tensors, _ = read_safetensors(path)
    _assign_weights(model, tensors, path)


def save_model(model, path) -> None:
    """Write architecture, compile config (if any) and weights to one file."""
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "cudacnn_version": _version(),
        "model_config": json.dumps(model.get_config()),
    }
    compile_config = _compile_config(model)
    if compile_config is not None:
        metadata["compile_config"] = json.dumps(compile_config)
    write_safetensors(path, model.named_weights(), metadata)


def load_model(path, compile: bool = True):
    """Rebuild a model saved by ``save_model``: architecture, weights and (if
    ``compile``) the loss, optimizer and metrics it was compiled with."""
    from .models import model_from_config

    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != MODEL_FORMAT or "model_config" not in metadata:
        hint = (" (it holds weights only: build the model and call model.load_weights)"
                if metadata.get("format") == WEIGHTS_FORMAT else "")
        raise ValueError(f"{path}: not a cudacnn model file{hint}")
    try:
        config = json.loads(metadata["model_config"])
        compile_config = json.loads(metadata["compile_config"]) if "compile_config" in metadata else None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt model config ({exc})") from None
    model = model_from_config(config)
    _assign_weights(model, tensors, path)
    if compile and compile_config is not None:
        model.compile(**compile_config)
    return model


def _compile_config(model):
    get = getattr(model, "get_compile_config", None)
    return get() if get is not None else None


def _assign_weights(model, tensors: dict, source) -> None:
    targets = model.named_weights()
    problems = [f"missing from the file: {name} {tuple(targets[name].shape)}"
                for name in targets if name not in tensors]
    problems += [f"not in the model: {name} {tuple(tensors[name].shape)}"
                 for name in tensors if name not in targets]
    for name in targets.keys() & tensors.keys():
        target, value = targets[name], tensors[name]
        if tuple(target.shape) != value.shape:
            problems.append(f"shape mismatch for {name}: model {tuple(target.shape)}, file {value.shape}")
        if np.dtype(target.dtype) != value.dtype:
            problems.append(f"dtype mismatch for {name}: model {target.dtype}, file {value.dtype}")
    if problems:
        listed = "\n  - ".join(problems)
        raise ValueError(f"{source}: the weights do not fit the model ({len(problems)} problem(s)):\n  - {listed}")
    for name, target in targets.items():
        # Copy into the live arrays, so optimizers holding them stay attached;
        # a cupy target takes the host array over to the device.
        target[...] = _like(target, tensors[name])


def _like(target, value):
    if isinstance(target, np.ndarray):
        return value
    from .backend import get_array_module

    return get_array_module(target).asarray(value)
