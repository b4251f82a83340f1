"""ONNX interchange: ``load(path)`` imports a CNN as a cudacnn Model, ``export_onnx(model, path)`` writes one.

Needs the ``onnx`` package (``pip install onnx``); onnxruntime is only used by the tests.
Supported ops: Conv, Gemm, MatMul(+Add), Relu, LeakyRelu, Elu, Sigmoid, Tanh,
Softmax, MaxPool, AveragePool, GlobalAveragePool, ReduceMean (spatial),
BatchNormalization, Add, Concat, Flatten, Reshape (flattening), Dropout,
Identity; constant shape arithmetic (Shape, Gather, Unsqueeze, Concat, ...) is folded.
"""
from __future__ import annotations

from ._export import export_onnx, to_onnx
from ._import import load

__all__ = ["load", "export_onnx", "to_onnx"]
