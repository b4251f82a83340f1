"""Keras-style ``model.summary()`` table (shapes channels first)."""
from __future__ import annotations


def _shape_text(shape):
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _is_chain(model):
    """A graph whose layers each take the previous one's output alone (as VGG-16): Keras
    prints it like a Sequential model, without the "Connected to" column."""
    if not hasattr(model, "_tensor_of"):
        return True
    layers = model.layers
    for previous, layer in zip(layers, layers[1:]):
        inputs = model._tensor_of(layer).inputs
        if len(inputs) != 1 or inputs[0].layer is not previous:
            return False
    return True


def summary_rows(model, chain=False):
    """(layer text, output shape text, param count, connected-to text) per top-level layer."""
    from .layers.base import InputLayer
    rows = []
    for layer in model.layers:
        tensor = model._tensor_of(layer) if hasattr(model, "_tensor_of") else None
        if isinstance(layer, InputLayer):
            shape = tensor.shape if tensor is not None else layer.output_shape
            shape = shape if chain else [shape]
            connected = ""
        else:
            shape = layer.output_shape
            connected = ", ".join(f"{p.layer.name}[0][0]" for p in tensor.inputs) if tensor is not None else ""
        rows.append((f"{layer.name} ({type(layer).__name__})", _shape_text(shape),
                     layer.count_params(), connected))
    return rows


def summary_text(model, line_length=None):
    from .models import Sequential
    model._require_graph()
    functional = not isinstance(model, Sequential) and not _is_chain(model)
    rows = summary_rows(model, chain=not functional)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    cells = [[r[0], r[1], f"{r[2]:,}"] + ([r[3]] if functional else []) for r in rows]
    widths = [max(len(headers[i]), *(len(c[i]) for c in cells)) + 3 for i in range(len(headers))]
    width = max(sum(widths), line_length or 0)

    def line(values):
        return " " + "".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    total = model.count_params()
    trainable = model.count_trainable_params()
    out = [f'Model: "{model.name}"', "_" * width, line(headers), "=" * width]
    for i, c in enumerate(cells):
        out.append(line(c))
        out.append("=" * width if i == len(cells) - 1 else "")
    if not cells:
        out.append("=" * width)
    out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", "_" * width]
    return "\n".join(out)


def print_summary(model, line_length=None, print_fn=None):
    text = summary_text(model, line_length)
    (print_fn or print)(text)
