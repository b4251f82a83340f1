"""Constant folding for ONNX graphs: evaluate, in NumPy, every node whose inputs are known.

Exporters compute shapes at run time (``x.view(x.size(0), -1)`` becomes
Shape -> Gather -> Unsqueeze -> Concat -> Reshape). Our layers have static
per-sample shapes, so those chains fold to constants. The batch size is the one
unknown: ``Shape`` reports it as ``BATCH``, a prime no real layer size equals,
so a folded Reshape target can tell "keep the batch" from a fixed size.
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

BATCH = 999_983  # stands for the batch size inside folded shape arithmetic

_BINARY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater,
}


def attributes(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _axes(inputs, attrs):
    """Axes from the second input (opset >= 13) or the ``axes`` attribute (older opsets)."""
    if len(inputs) > 1 and inputs[1] is not None:
        return [int(a) for a in np.asarray(inputs[1]).ravel()]
    return list(attrs.get("axes", []))


def _div(a, b):
    if np.issubdtype(np.asarray(a).dtype, np.integer):
        return np.floor_divide(a, b)  # ONNX integer Div truncates; shapes are non-negative
    return np.divide(a, b)


def _slice(inputs, attrs):
    data = inputs[0]
    if len(inputs) > 1:
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
        steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    else:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes", range(len(starts))), [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[int(axis)] = slice(int(start), int(min(end, np.iinfo(np.int64).max)), int(step))
    return data[tuple(index)]


def _reshape(data, shape):
    shape = [data.shape[i] if s == 0 else int(s) for i, s in enumerate(shape)]
    return data.reshape(shape)


def evaluate(op: str, inputs: list, attrs: dict):
    """Value of one node's first output from constant inputs, or raise KeyError if op is unknown."""
    if op == "Constant":
        if "value" in attrs:
            return numpy_helper.to_array(attrs["value"])
        for key in ("value_int", "value_float"):
            if key in attrs:
                return np.array(attrs[key])
        for key in ("value_ints", "value_floats"):
            if key in attrs:
                return np.array(list(attrs[key]))
        raise ValueError(f"ONNX Constant with unsupported attributes {sorted(attrs)}")
    if op in ("Identity", "Dropout"):
        return inputs[0]
    if op == "Cast":
        return inputs[0].astype(helper.tensor_dtype_to_np_dtype(attrs["to"]))
    if op == "Gather":
        return np.take(inputs[0], inputs[1].astype(np.int64), axis=attrs.get("axis", 0))
    if op == "Unsqueeze":
        out = inputs[0]
        rank = out.ndim + len(_axes(inputs, attrs))
        for axis in sorted(a % rank for a in _axes(inputs, attrs)):
            out = np.expand_dims(out, axis)
        return out
    if op == "Squeeze":
        axes = _axes(inputs, attrs)
        return np.squeeze(inputs[0], axis=tuple(axes) if axes else None)
    if op == "Concat":
        return np.concatenate([np.atleast_1d(a) for a in inputs], axis=attrs.get("axis", 0))
    if op == "Slice":
        return _slice(inputs, attrs)
    if op == "Reshape":
        return _reshape(inputs[0], inputs[1])
    if op == "Flatten":
        axis = attrs.get("axis", 1)
        return inputs[0].reshape(int(np.prod(inputs[0].shape[:axis])), -1)
    if op == "Transpose":
        return np.transpose(inputs[0], attrs.get("perm"))
    if op == "ConstantOfShape":
        fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        return np.full([int(s) for s in inputs[0]], fill.ravel()[0], dtype=fill.dtype)
    if op == "ReduceProd":
        return np.prod(inputs[0], axis=attrs.get("axes"), keepdims=bool(attrs.get("keepdims", 1)))
    if op == "Div":
        return _div(inputs[0], inputs[1])
    if op in _BINARY:
        return _BINARY[op](inputs[0], inputs[1])
    raise KeyError(op)


def shape_value(per_sample_shape) -> np.ndarray:
    """What ONNX ``Shape`` yields for a runtime tensor: batch placeholder then the static dims."""
    return np.array([BATCH, *per_sample_shape], dtype=np.int64)


def reshape_keeps_batch(target, fixed_batch=None) -> tuple[int, ...]:
    """Per-sample shape of a folded Reshape target that keeps the batch dimension first.

    Accepts ``[BATCH, ...]``, ``[0, ...]`` (copy dim 0), ``[-1, d1, ...]`` with fixed
    ``d1...`` and, for a graph exported with a static batch, ``[fixed_batch, ...]``;
    returns the remaining dims (may hold one -1). Raises ValueError when the
    reshape would fold the batch into another dimension.
    """
    target = [int(t) for t in np.asarray(target).ravel()]
    if not target:
        raise ValueError("ONNX Reshape to a scalar is not a CNN layer")
    rest = target[1:]
    if any(t % BATCH == 0 and t != 0 for t in rest):
        raise ValueError(f"ONNX Reshape target {target} moves the batch dimension; unsupported")
    if target[0] in (BATCH, 0) or (fixed_batch is not None and target[0] == fixed_batch):
        return tuple(rest)
    if target[0] == -1 and -1 not in rest:
        return tuple(rest)
    raise ValueError(
        f"ONNX Reshape target {target} does not keep the batch as dimension 0; "
        "only per-sample reshapes (like flatten) are supported")
