"""PyTorch ``state_dict`` interchange (torchvision names) for cudacnn zoo models, both ways.

Our weight layouts are PyTorch's (Conv2D kernel (K, C/groups, kh, kw), Dense
kernel (out, in), Flatten in C*H*W order), so converting a tensor means renaming
it and casting it to float32:

==================  ==============================================
PyTorch             cudacnn
==================  ==============================================
``weight``          ``kernel`` (Conv2D, Dense) / ``gamma`` (BatchNorm)
``bias``            ``bias`` / ``beta`` (BatchNorm)
``running_mean``    ``moving_mean``
``running_var``     ``moving_variance``
``num_batches_tracked``  dropped (a counter, not a weight)
==================  ==============================================

Module paths map onto layer names per architecture: ResNets name their layers
after torchvision's modules with dots turned into underscores
(``layer1.0.downsample.0`` -> ``layer1_0_downsample_0``); VGG keeps Keras'
layer names (``block1_conv1``, ``fc1``) and lists torchvision's indices.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from . import backend
from .layers.base import to_device
from .zoo.vgg import CONVS_PER_BLOCK as _VGG_CONVS

__all__ = ["load_torch_state_dict", "torch_state_dict", "read_state_dict", "torch_module_to_layer"]

_IGNORED_SUFFIXES = ("num_batches_tracked",)
_BN_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_TORCH_NAMES = {ours: theirs for theirs, ours in _BN_NAMES.items()}


def _vgg_module_names(convs_per_block) -> dict:
    """torchvision ``features.i`` / ``classifier.j`` -> Keras VGG layer names."""
    names, index = {}, 0
    for block, count in enumerate(convs_per_block, start=1):
        for conv in range(1, count + 1):
            names[f"features.{index}"] = f"block{block}_conv{conv}"
            index += 2  # conv, relu
        index += 1  # max pool
    names.update({"classifier.0": "fc1", "classifier.3": "fc2", "classifier.6": "predictions"})
    return names


_MODULE_TABLES = {arch: _vgg_module_names(convs) for arch, convs in _VGG_CONVS.items()}


def torch_module_to_layer(module_path: str, arch: str) -> str:
    """Our layer name for a torchvision module path in architecture ``arch``."""
    table = _MODULE_TABLES.get(arch)
    if table is not None:
        return table.get(module_path, module_path)
    return module_path.replace(".", "_")


def layer_to_torch_module(layer_name: str, arch: str) -> str:
    """The inverse of :func:`torch_module_to_layer`: torchvision's module path for one of our layers."""
    table = _MODULE_TABLES.get(arch)
    if table is not None:
        inverse = {ours: theirs for theirs, ours in table.items()}
        return inverse.get(layer_name, layer_name)
    block = re.fullmatch(r"(layer\d+)_(\d+)_(.+)", layer_name)  # ResNet: layer1_0_downsample_0
    if block:
        return ".".join([block[1], block[2], *block[3].split("_")])
    return layer_name


def torch_state_dict(model, arch: str | None = None) -> dict:
    """Our weights as a torchvision-named state_dict ``{key: numpy array}`` (load it with
    ``net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``)."""
    _check_model(model)
    arch = _arch(model, arch)
    state = {}
    for layer in model.leaf_layers():
        module = layer_to_torch_module(layer.name, arch)
        is_bn = "moving_mean" in layer.state
        for param, value in layer.weight_items():
            name = _BN_TORCH_NAMES[param] if is_bn else {"kernel": "weight"}.get(param, param)
            state[f"{module}.{name}"] = np.array(to_device(value, "cpu"), dtype=np.float32)
        if is_bn:
            state[f"{module}.num_batches_tracked"] = np.array(0, dtype=np.int64)
            if ("gamma" in layer.params) != ("beta" in layer.params):  # torch has both or neither
                channels = layer.state["moving_mean"].shape
                state.setdefault(f"{module}.weight", np.ones(channels, np.float32))
                state.setdefault(f"{module}.bias", np.zeros(channels, np.float32))
    return state


def read_state_dict(source) -> dict:
    """A state_dict as ``{name: float numpy array}`` from a dict, a ``.pt``/``.pth`` or a ``.safetensors`` file.

    ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)`` (no
    arbitrary unpickling); they need torch. safetensors files need nothing.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no state_dict file at {path}")
        if path.suffix == ".safetensors":
            from .safetensors import read_safetensors
            source, _ = read_safetensors(path)
        elif path.suffix in (".pt", ".pth", ".bin"):
            try:
                import torch
            except ImportError:
                raise ImportError(f"reading {path} needs torch; "
                                  "save it as .safetensors to load without torch") from None
            try:
                source = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # pickled code, a truncated file, not a torch file at all
                raise ValueError(f"{path}: not a loadable state_dict (weights_only=True refused it: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
            source = _unwrap_checkpoint(source)
        else:
            raise ValueError(f"{path}: expected a .pt, .pth, .bin or .safetensors file")
        try:
            return read_state_dict(source)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from None
    if not isinstance(source, dict):
        raise TypeError(f"a state_dict must be a dict of arrays, got {type(source).__name__}")
    return {str(key): _as_numpy(key, value) for key, value in source.items()}


# Where training scripts keep the weights inside a checkpoint dict (with the epoch, the optimizer...).
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


def _unwrap_checkpoint(source):
    if isinstance(source, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(source.get(key), dict):
                return source[key]
    return source


def _as_numpy(key, value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        if getattr(value, "is_meta", False):
            raise ValueError(f"state_dict entry {key!r} is a meta tensor: it has a shape but no values")
        value = value.detach().cpu()
        if value.is_floating_point() and value.element_size() < 4:
            value = value.float()  # bfloat16 / float16 (NumPy has no bfloat16); our weights are float32
        try:
            value = value.numpy()
        except (TypeError, RuntimeError) as exc:
            raise TypeError(f"state_dict entry {key!r}: cannot convert a {value.dtype} tensor to NumPy "
                            f"({exc})") from None
    try:
        array = np.asarray(value)
    except ValueError as exc:  # a ragged list
        raise ValueError(f"state_dict entry {key!r} is not an array ({exc})") from None
    if array.dtype.kind == "f" and array.size and not np.all(np.abs(array[np.isfinite(array)]) <= _FLOAT32_MAX):
        raise ValueError(f"state_dict entry {key!r} holds values beyond float32's range (up to "
                         f"{float(np.abs(array[np.isfinite(array)]).max()):.3g}); they would load as inf")
    return array


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _our_key(torch_key: str, layers: dict, arch: str):
    """``(layer, store, param)`` for a torch key, or None when the model has no such weight."""
    module_path, _, torch_param = torch_key.rpartition(".")
    layer = layers.get(torch_module_to_layer(module_path, arch))
    if layer is None:
        return None
    if "gamma" in layer.params or "moving_mean" in layer.state:
        param = _BN_NAMES.get(torch_param)
    else:
        param = {"weight": "kernel", "bias": "bias"}.get(torch_param)
    for store in (layer.params, layer.state):
        if param in store:
            return layer, store, param
    return None


def load_torch_state_dict(model, source, arch: str | None = None, strict: bool = True) -> dict:
    """Copy a torchvision-named state_dict into ``model`` (a zoo model) and return a report.

    ``arch`` (default ``model.name``) picks the name map. The report lists
    ``missing`` (our weights it did not provide), ``unexpected`` (its tensors we
    have no place for) and ``mismatched`` (``(key, theirs, ours)`` shapes). With
    ``strict`` any of these raises one ValueError listing them all, before any
    weight changes; without it the matching tensors load and the report says
    what did not (e.g. a classifier dropped with ``include_top=False``).
    """
    _check_model(model)
    if not isinstance(strict, (bool, np.bool_)):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    arch = _arch(model, arch)
    tensors = read_state_dict(source)
    layers = {layer.name: layer for layer in model.leaf_layers()}  # nested bases included
    assignments, unexpected, mismatched, not_numbers, provided = [], [], [], [], set()
    for key, value in tensors.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        target = _our_key(key, layers, arch)
        if target is None:
            if not _identity_affine(key, value, layers, arch):
                unexpected.append(key)
            continue
        layer, store, param = target
        provided.add((layer.name, param))  # a mis-shaped tensor is reported once, not also as missing
        if tuple(value.shape) != tuple(store[param].shape):
            mismatched.append((key, tuple(value.shape), tuple(store[param].shape)))
            continue
        if value.dtype.kind not in "biuf":  # strings, objects, complex: nothing to load, say so now
            not_numbers.append((key, value.dtype))
            continue
        assignments.append((layer, store, param, value))
    missing = [f"{name}/{param}" for name, layer in layers.items()
               for param, _ in layer.weight_items() if (name, param) not in provided]
    report = {"missing": missing, "unexpected": unexpected, "mismatched": mismatched,
              "loaded": len(assignments)}
    if not_numbers:  # even without strict: a non-numeric tensor is a broken file, not a partial match
        listed = ", ".join(f"{key} ({dtype})" for key, dtype in not_numbers)
        raise ValueError(f"state_dict tensors must hold real numbers; not so for: {listed}")
    if strict and (missing or unexpected or mismatched):
        where = f"{source}: " if isinstance(source, (str, os.PathLike)) else ""
        raise ValueError(where + _describe(report, arch))
    # Convert everything first, so that no weight changes unless all of them can.
    converted = [(store, param, np.ascontiguousarray(value, dtype=store[param].dtype))
                 for _, store, param, value in assignments]
    for store, param, value in converted:
        old = store[param]
        store[param] = to_device(value, "gpu" if backend.is_gpu_array(old) else "cpu")
    return report


def _identity_affine(torch_key, value, layers, arch) -> bool:
    """A BatchNorm weight of ones or bias of zeros for one of our BatchNormalization layers built
    without scale or center (torch keeps both or neither; they change nothing)."""
    module_path, _, torch_param = torch_key.rpartition(".")
    layer = layers.get(torch_module_to_layer(module_path, arch))
    omitted = getattr(layer, "omitted_weights", dict)()
    param = _BN_NAMES.get(torch_param)
    return param in omitted and value.shape == layer.state["moving_mean"].shape and bool(np.all(value == omitted[param]))


def _check_model(model):
    if not callable(getattr(model, "leaf_layers", None)):
        raise TypeError(f"expected a cudacnn model, got {type(model).__name__}")


def _arch(model, arch):
    if arch is not None and not isinstance(arch, str):
        raise TypeError(f"arch must be an architecture name such as 'resnet18' or 'vgg16', got {arch!r}")
    return arch or getattr(model, "name", "")


def _describe(report, arch) -> str:
    lines = [f"state_dict does not match the {arch or 'model'} architecture:"]
    if report["missing"]:
        lines.append(f"  missing ({len(report['missing'])}): {', '.join(report['missing'])}")
    if report["unexpected"]:
        lines.append(f"  unexpected ({len(report['unexpected'])}): {', '.join(report['unexpected'])}")
    for key, theirs, ours in report["mismatched"]:
        lines.append(f"  shape mismatch: {key} is {theirs}, the model expects {ours}")
    lines.append("(pass strict=False to load the matching tensors and get this report back)")
    return "\n".join(lines)
