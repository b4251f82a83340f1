"""cudacnn: build and train convolutional neural networks on our own CUDA kernels.

The same Keras-style API runs on three backends, chosen per call from the
arrays: ``numpy`` (CPU reference), ``cuda`` (our kernels, ``cudacnn._C``) and
``cupy`` (the reference on the GPU when the kernels are absent).
"""
from __future__ import annotations

import importlib

from .backend import available_backends, info, set_backend

__version__ = "0.1.0"

# Heavier parts load on first use, so `import cudacnn` stays quick.
_LAZY = {
    "ops": "cudacnn.ops",
    "layers": "cudacnn.layers",
    "optimizers": "cudacnn.optimizers",
    "losses": "cudacnn.losses",
    "callbacks": "cudacnn.callbacks",
    "datasets": "cudacnn.datasets",
    "zoo": "cudacnn.zoo",
    "transfer": "cudacnn.transfer",
    "onnx": "cudacnn.onnx",
    "preprocessing": "cudacnn.preprocessing",
    "utils": "cudacnn.utils",
    "regularizers": "cudacnn.regularizers",
    "Sequential": "cudacnn.models:Sequential",
    "Model": "cudacnn.models:Model",
    "load_model": "cudacnn.io:load_model",
    "set_seed": "cudacnn.random:set_seed",
}

__all__ = ["available_backends", "info", "set_backend", *_LAZY]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'cudacnn' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attr) if attr else module
    globals()[name] = value
    return value
