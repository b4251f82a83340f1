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
        kind = "Functional" if type(layer).__name__ == "Model" else type(layer).__name__  # Keras' name
        rows.append((f"{layer.name} ({kind})", _shape_text(shape), layer.count_params(), connected))
    return rows


def summary_text(model, line_length=None):
    from .models import Sequential
    model._require_graph()
    functional = not isinstance(model, Sequential) and not _is_chain(model)
    rows = summary_rows(model, chain=not functional)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    cells = [[r[0], r[1], f"{r[2]:,}"] + ([r[3]] if functional else []) for r in rows]
    widths = [max(len(headers[i]), *(len(c[i]) for c in cells)) + 3 for i in range(len(headers))]
    if line_length is not None and line_length < sum(widths) + 1:
        # As Keras: a given line_length fixes the columns, and longer cells are cut to fit.
        widths = [max(4, w * (line_length - 1) // sum(widths)) for w in widths]
        widths[-1] = max(4, line_length - 1 - sum(widths[:-1]))
    width = max(sum(widths), line_length or 0)

    def cell(value, w):  # a cut cell ends in "~", so a cut number cannot pass for a whole one
        return (value if len(value) < w else value[:w - 2] + "~").ljust(w)

    def line(values):
        return " " + "".join(cell(v, w) for v, w in zip(values, widths)).rstrip()

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
    """Print the table; ``print_fn`` gets it line by line, as in Keras (e.g. ``lines.append``)."""
    for line in summary_text(model, line_length).split("\n"):
        (print_fn or print)(line)
