"""Saving and loading models and weights (safetensors files; no pickle anywhere).

* ``save_weights(model, path)`` writes ``model.named_weights()`` ("layer/param"
  -> array, trainable params then state such as BatchNorm moving averages).
* ``save_model(model, path)`` writes one self-contained file (by convention
  ``*.cudacnn``): the same tensors, plus the architecture
  (``model.get_config()``) and, if the model was compiled, its compile config,
  as JSON strings in the safetensors ``__metadata__``, and the optimizer's
  running state (moments, step count) as tensors named ``__optimizer__/layer/param/slot``,
  so training resumes where it stopped, as from Keras' ``.keras`` files. Any
  safetensors reader can open it; ``load_model`` rebuilds the model from it.

Every write is atomic (see :func:`cudacnn.safetensors.atomic_write`). Loading
checks names, shapes and dtypes against the model and reports every mismatch
in one ValueError before changing any weight.
"""
from __future__ import annotations

import json
import warnings

import numpy as np

from .safetensors import atomic_write, read_safetensors, write_safetensors

__all__ = ["save_model", "load_model", "save_weights", "load_weights",
           "write_safetensors", "read_safetensors", "atomic_write"]

MODEL_FORMAT = "cudacnn.model"
WEIGHTS_FORMAT = "cudacnn.weights"
FORMAT_VERSION = "1"  # weights, and models without optimizer state
STATE_FORMAT_VERSION = "2"  # models with their optimizer's state: a reader of version 1 says so
READABLE_VERSIONS = (FORMAT_VERSION, STATE_FORMAT_VERSION)
OPTIMIZER_PREFIX = "__optimizer__/"


def _version() -> str:
    from . import __version__

    return __version__


def save_weights(model, path) -> None:
    """Write the model's weights (numpy or cupy) to a safetensors file."""
    metadata = {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "cudacnn_version": _version()}
    write_safetensors(path, model.named_weights(), metadata)


def load_weights(model, path) -> None:
    """Load weights saved by ``save_weights`` or ``save_model`` into ``model``.

    Every name, shape and dtype must match; all mismatches are reported at once,
    before any weight changes. When the file and the model share no layer name
    (the same architecture built again in one process, so ``conv2d_1`` became
    ``conv2d_4``), layers are paired in order instead, as Keras does.
    """
    tensors, _ = read_safetensors(path)
    _assign_weights(model, _split_optimizer_state(tensors)[0], path)


def save_model(model, path, include_optimizer=True) -> None:
    """Write architecture, compile config (if any), weights and (``include_optimizer``, as Keras 2)
    the optimizer's state to one file."""
    metadata = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "cudacnn_version": _version(),
        "model_config": json.dumps(model.get_config()),
    }
    compile_config = _compile_config(model)
    tensors = model.named_weights()
    if compile_config is not None:
        metadata["compile_config"] = json.dumps(compile_config)
        state = model.optimizer.state_tensors(tensors) if include_optimizer else {}
        if state:
            metadata["format_version"] = STATE_FORMAT_VERSION
            metadata["optimizer_iterations"] = str(model.optimizer.iterations)
            tensors.update({OPTIMIZER_PREFIX + name: value for name, value in state.items()})
    write_safetensors(path, tensors, metadata)


def load_model(path, compile: bool = True):
    """Rebuild a model saved by ``save_model``: architecture, weights and (if
    ``compile``) the loss, optimizer and metrics it was compiled with."""
    from .layers.base import only_weight_shapes
    from .models import model_from_config

    tensors, metadata = read_safetensors(path)
    tensors, optimizer_state = _split_optimizer_state(tensors)
    if metadata.get("format") != MODEL_FORMAT or "model_config" not in metadata:
        hint = (" (it holds weights only: build the model and call model.load_weights)"
                if metadata.get("format") == WEIGHTS_FORMAT else "")
        raise ValueError(f"{path}: not a cudacnn model file{hint}")
    if metadata.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: model file format version {metadata.get('format_version')!r} "
                         f"(written by cudacnn {metadata.get('cudacnn_version', '?')}); "
                         f"this cudacnn reads versions {', '.join(READABLE_VERSIONS)}")
    try:
        config = json.loads(metadata["model_config"])
        compile_config = json.loads(metadata["compile_config"]) if "compile_config" in metadata else None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: corrupt model config ({type(exc).__name__}: {exc})") from None
    try:
        with only_weight_shapes(array.shape for array in tensors.values()):
            model = model_from_config(config)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as exc:
        # A config edited by hand (a nested "config": null, an empty "inbound" list, nesting
        # deeper than the stack...) fails somewhere inside the rebuild; name the file.
        raise ValueError(f"{path}: invalid model config, cannot rebuild the model from it "
                         f"({type(exc).__name__}: {exc})") from exc
    if tensors and {array.dtype for array in tensors.values()} == {np.dtype(np.float64)}:
        model.astype(np.float64)  # saved after model.astype(np.float64): rebuild it so
    _assign_weights(model, tensors, path)
    if compile and compile_config is not None:
        _compile_from_config(model, compile_config, path)
        _restore_optimizer_state(model, optimizer_state, metadata.get("optimizer_iterations", "0"), path)
    return model


def _split_optimizer_state(tensors):
    """(the model's weights, the optimizer's state by "layer/param/slot") of a file's tensors."""
    weights = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    state = {k[len(OPTIMIZER_PREFIX):]: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
    return weights, state


def _restore_optimizer_state(model, state, iterations, source) -> None:
    try:
        skipped = model.optimizer.load_state(state, int(iterations), model.named_weights())
    except ValueError as exc:
        raise ValueError(f"{source}: cannot restore the optimizer state ({exc}); load with compile=False "
                         "to start the optimizer afresh") from None
    if skipped:  # as Keras, which skips optimizer variables that do not match
        warnings.warn(f"{source}: optimizer state left out, it fits no weight of the model: {skipped}; "
                      "those weights start with fresh slots", stacklevel=3)


def _compile_config(model):
    """What ``model.compile`` was given, as JSON-able data (None if never compiled).

    The optimizer's running state (moments, step count) is saved beside, as tensors.
    """
    optimizer, loss = getattr(model, "optimizer", None), getattr(model, "loss", None)
    if optimizer is None or loss is None:
        return None
    return {"optimizer": optimizer.get_config(), "loss": loss.get_config(),
            "metrics": [name for name, _ in getattr(model, "_metrics", [])]}


def _compile_from_config(model, config, source) -> None:
    from . import losses, optimizers

    try:
        optimizer_config = dict(config["optimizer"])
        # (by registered name only: getattr(optimizers, name) would call any function the module holds)
        optimizer = type(optimizers.get(optimizer_config.pop("name")))(**optimizer_config)
        loss_config = dict(config["loss"])
        loss = type(losses.get(loss_config.pop("name")))(**loss_config)
        model.compile(optimizer=optimizer, loss=loss, metrics=config["metrics"])
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{source}: cannot restore the compile settings ({type(exc).__name__}: {exc}); "
                         "load with compile=False and compile the model yourself") from None


def _without_omitted_weights(model, tensors: dict, partners: dict) -> dict:
    """The file's tensors less the affine weights a layer does without when they hold the constant
    it uses instead (BatchNormalization(scale=False) saved gamma = 1 before it stopped creating it);
    ``partners`` maps the file's layer names to the model's."""
    omitted = {layer.name: getattr(layer, "omitted_weights", dict)() for layer in model.leaf_layers()}

    def kept(name, array):
        layer, _, param = name.rpartition("/")
        constant = omitted.get(partners.get(layer), {}).get(param)
        return constant is None or not np.all(array == constant)
    return {name: array for name, array in tensors.items() if kept(name, array)}


def _assign_weights(model, tensors: dict, source) -> None:
    targets = model.named_weights()
    if not targets and tensors:
        raise ValueError(f"{source}: the model has no weights yet; build it first "
                         "(give the first layer input_shape, or call the model on data)")
    ours, theirs = _layer_structure(targets), _layer_structure(tensors)
    by_position = _by_position(ours, theirs)
    partners = ({other: mine for (mine, _), (other, _) in zip(ours, theirs)} if by_position
                else {layer: layer for layer, _ in theirs})
    tensors = _without_omitted_weights(model, tensors, partners)
    pairs = (_pair_by_position(ours, _layer_structure(tensors)) if by_position
             else [(name, name) for name in targets if name in tensors])
    paired_model = {m for m, _ in pairs}
    paired_file = {f for _, f in pairs}
    problems = [f"missing from the file: {name} {tuple(targets[name].shape)}"
                for name in targets if name not in paired_model]
    problems += [f"not in the model: {name} {tuple(tensors[name].shape)}"
                 for name in tensors if name not in paired_file]
    for model_name, file_name in pairs:
        target, value = targets[model_name], tensors[file_name]
        label = model_name if model_name == file_name else f"{model_name} (file: {file_name})"
        if tuple(target.shape) != value.shape:
            problems.append(f"shape mismatch for {label}: model {tuple(target.shape)}, file {value.shape}")
        if np.dtype(target.dtype) != value.dtype:
            problems.append(f"dtype mismatch for {label}: model {target.dtype}, file {value.dtype}")
    if problems:
        listed = "\n  - ".join(problems)
        raise ValueError(f"{source}: the weights do not fit the model ({len(problems)} problem(s)):\n  - {listed}")
    for model_name, file_name in pairs:
        target = targets[model_name]
        # Copy into the live arrays, so optimizers holding them stay attached;
        # a cupy target takes the host array over to the device.
        target[...] = _like(target, tensors[file_name])


def _layer_structure(names):
    """[(layer_name, [param names])] in order, from "layer/param" keys."""
    layers: dict[str, list[str]] = {}
    for name in names:
        layer, _, param = name.rpartition("/")
        layers.setdefault(layer, []).append(param)
    return list(layers.items())


def _by_position(ours, theirs) -> bool:
    """Pair weights layer by layer, in order, when no layer name is shared: automatic layer names
    count up per process (conv2d, conv2d_1, ...), so the same architecture built again gets other
    names; like Keras's topological loading, its file still loads. Otherwise names decide."""
    return bool(ours and theirs and not {layer for layer, _ in ours} & {layer for layer, _ in theirs})


def _pair_by_position(ours, theirs):
    """(model name, file name) of each weight, layer by layer in order; unpaired weights are
    reported by the caller."""
    return [(f"{mine}/{param}", f"{other}/{param}")
            for (mine, params), (other, their_params) in zip(ours, theirs)
            for param in params if param in their_params]


def _like(target, value):
    if isinstance(target, np.ndarray):
        return value
    from .backend import get_array_module

    return get_array_module(target).asarray(value)
