"""Model-level benchmark cases: one training step and one inference pass of a zoo model.

The PyTorch side runs a *mirror* of our model: the same layers, built from our
layers' configs, with our initial weights copied in (our kernel layouts are
PyTorch's), trained with the same optimizer on the same batch. A trailing
softmax is fused into ``F.cross_entropy`` for training, as our training loop
fuses it into the loss. Sequential models and functional models whose graph
our model exposes are mirrored; anything else is reported as unsupported.
"""
from __future__ import annotations

import numpy as np

from .layers.activations import LEAKY_RELU_SLOPE

# The lectures' nets (the seed material); `cudacnn bench --models seed` picks those the zoo has.
SEED_MODELS = ("mnist_workshop", "digits_cnn", "mnist_conv", "cifar10_conv", "cifar10_conv_pool",
               "cifar10_deeper", "allcnn_c")
MODES = ("train", "infer")
LEARNING_RATE, MOMENTUM = 0.01, 0.9


class MirrorUnsupported(Exception):
    """Our model holds a layer (or graph) the PyTorch mirror cannot express."""


def seed_model_names() -> list[str]:
    from . import zoo

    have = set(zoo.names())
    return [name for name in SEED_MODELS if name in have]


def build_model(name: str, device: str = "cpu", dropout: bool = True, seed: int = 0):
    """A fresh zoo model with seeded weights, compiled with SGD(momentum) and sparse cross-entropy."""
    from . import optimizers, random, zoo

    random.set_seed(seed)
    model = zoo.get(name)
    if not dropout:
        for layer in model.layers:
            if type(layer).__name__ == "Dropout":
                layer.rate = 0.0
    model.compile(optimizer=optimizers.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM),
                  loss="sparse_categorical_crossentropy")
    return model.to(device)


def _model_input_shape(model) -> tuple:
    """Per-sample input shape (no batch axis) of a single-input model."""
    shape = model.input_shape
    if isinstance(shape, list):
        raise MirrorUnsupported("models with several inputs")
    return tuple(int(d) for d in shape[1:])


# ----- the PyTorch mirror -----------------------------------------------------------------------
def _same_pads(size: int, k: int, s: int, d: int = 1):
    """Keras/TF SAME: out = ceil(size/s); the odd extra pad goes bottom/right."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(padding, in_hw, kernel, strides, dilation=(1, 1)):
    """(left, right, top, bottom) for F.pad from a Keras-style padding spec."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = _same_pads(in_hw[0], kernel[0], strides[0], dilation[0])
        left, right = _same_pads(in_hw[1], kernel[1], strides[1], dilation[1])
        return (left, right, top, bottom)
    if isinstance(padding, int):
        return (padding,) * 4
    ph, pw = padding[:2] if len(padding) == 2 else (padding[0], padding[2])
    if len(padding) == 4:
        return (padding[2], padding[3], padding[0], padding[1])
    return (pw, pw, ph, ph)


def _activation(nn, name, config):
    if name in (None, "linear"):
        return []
    table = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if name in table:
        return [table[name]()]
    if name == "leaky_relu":  # activation="leaky_relu" slopes by our (Keras') default, not torch's 0.01
        return [nn.LeakyReLU(config.get("negative_slope", LEAKY_RELU_SLOPE))]
    if name == "elu":
        return [nn.ELU(config.get("alpha", 1.0))]
    if name == "softmax":
        return [nn.Softmax(dim=1)]
    raise MirrorUnsupported(f"activation {name!r}")


def _mirror_layer(torch, layer):
    """PyTorch modules for one of our layers, with its weights copied in."""
    nn = torch.nn
    kind, config = type(layer).__name__, layer.get_config()
    in_shape = tuple(layer.input_shape[1:]) if layer.input_shape else None
    params = {k: torch.from_numpy(np.array(layer.get_weights()[i]))
              for i, (k, _) in enumerate(layer.weight_items())}
    modules = []
    if kind == "Conv2D":
        k, s, d = config["kernel_size"], config["strides"], config["dilation_rate"]
        pads = _pads(config["padding"], in_shape[1:], k, s, d)
        if any(pads):
            modules.append(nn.ZeroPad2d(pads))
        conv = nn.Conv2d(in_shape[0], config["filters"], tuple(k), tuple(s), 0, tuple(d), config["groups"],
                         bias=config["use_bias"])
        with torch.no_grad():
            conv.weight.copy_(params["kernel"])
            if config["use_bias"]:
                conv.bias.copy_(params["bias"])
        modules += [conv, *_activation(nn, config["activation"], config)]
    elif kind == "Dense":
        dense = nn.Linear(in_shape[0], config["units"], bias=config["use_bias"])
        with torch.no_grad():
            dense.weight.copy_(params["kernel"])
            if config["use_bias"]:
                dense.bias.copy_(params["bias"])
        modules += [dense, *_activation(nn, config["activation"], config)]
    elif kind in ("MaxPooling2D", "AveragePooling2D"):
        k, s = tuple(config["pool_size"]), tuple(config["strides"])
        pads = _pads(config["padding"], in_shape[1:], k, s)
        if any(pads):
            if kind == "AveragePooling2D":
                raise MirrorUnsupported("AveragePooling2D with padding (Keras excludes the pad from the mean)")
            modules.append(nn.ConstantPad2d(pads, float("-inf")))
        modules.append((nn.MaxPool2d if kind == "MaxPooling2D" else nn.AvgPool2d)(k, s))
    elif kind == "GlobalAveragePooling2D":
        modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    elif kind == "Flatten":
        modules.append(nn.Flatten())
    elif kind == "Dropout":
        modules.append(nn.Dropout(layer.rate))
    elif kind == "BatchNormalization":
        bn = (nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d)(
            in_shape[0], eps=config["epsilon"], momentum=1.0 - config["momentum"])
        with torch.no_grad():
            bn.weight.copy_(params.get("gamma", torch.ones_like(bn.weight)))  # absent without scale/center
            bn.bias.copy_(params.get("beta", torch.zeros_like(bn.bias)))
            bn.running_mean.copy_(params["moving_mean"])
            bn.running_var.copy_(params["moving_variance"])
        modules.append(bn)
    elif kind in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"):
        modules += _activation(nn, layer.activation, config)
    elif kind == "InputLayer":
        pass
    else:
        raise MirrorUnsupported(f"layer {layer.name!r} of type {kind}")
    return modules


def _graph_mirror(torch, model):
    """A torch Module running our functional model's nodes in order (Add and Concatenate included)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise MirrorUnsupported("models with several inputs or outputs")

    class GraphMirror(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleDict()
            self.plan = []  # (output id, input ids, merge kind or None, block name)
            for node in model._nodes:
                kind = type(node.layer).__name__
                if kind == "Concatenate" and node.layer.axis not in (1, -3):
                    raise MirrorUnsupported(f"Concatenate on axis {node.layer.axis}")
                if kind not in ("Add", "Concatenate"):
                    self.blocks[node.layer.name] = torch.nn.Sequential(*_mirror_layer(torch, node.layer))
                    kind = None
                self.plan.append((id(node), [id(p) for p in node.inputs], kind, node.layer.name))
            self.input_id, self.output_id = id(model.inputs[0]), id(model.outputs[0])

        def forward(self, x):
            values = {self.input_id: x}
            for out_id, in_ids, kind, name in self.plan:
                args = [values[i] for i in in_ids]
                if kind == "Add":
                    values[out_id] = torch.stack(args).sum(0)
                elif kind == "Concatenate":
                    values[out_id] = torch.cat(args, dim=1)
                else:
                    values[out_id] = self.blocks[name](args[0])
            return values[self.output_id]

    return GraphMirror()


def torch_mirror(model, device: str = "cpu"):
    """(body, ends_in_softmax): a torch Module computing what our ``model`` computes.

    A trailing softmax is left out of ``body`` (and reported) so that training
    can fuse it into the loss.
    """
    import torch

    if type(model).__name__ == "Sequential":
        modules = [m for layer in model.layers for m in _mirror_layer(torch, layer)]
        body = torch.nn.Sequential(*modules)
        last = modules[-1] if modules else None
    elif hasattr(model, "_nodes"):
        body = _graph_mirror(torch, model)
        last_block = body.blocks[body.plan[-1][3]] if body.plan and body.plan[-1][2] is None else None
        modules = list(last_block) if last_block is not None else []
        last = modules[-1] if modules else None
    else:
        raise MirrorUnsupported(f"{type(model).__name__} models")
    ends_in_softmax = isinstance(last, torch.nn.Softmax)
    if ends_in_softmax:  # drop it from the Sequential that holds it
        holder = body if type(model).__name__ == "Sequential" else body.blocks[body.plan[-1][3]]
        del holder[len(holder) - 1]
    return body.to("cuda" if device == "gpu" else "cpu"), ends_in_softmax


# ----- the case ---------------------------------------------------------------------------------
class ModelCase:
    """One training step (forward, loss, backward, SGD update) or one inference pass at a batch size."""

    family = "model"
    metric = "images/s"

    def __init__(self, model_name: str, mode: str, batch: int, dropout: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.model_name, self.mode, self.batch, self.dropout = model_name, mode, batch, dropout
        self.direction = mode
        self.algo = None
        self.models = {}  # the last model built per side ("ours", "torch"), for checks after a run
        self._shape_and_classes = None

    @property
    def name(self) -> str:
        return f"{self.model_name}_{self.mode} N={self.batch}"

    def work(self) -> float:
        return float(self.batch)

    def rate(self, seconds: float) -> float:
        return self.batch / seconds

    def inputs(self, rng):
        if self._shape_and_classes is None:  # building a model just for its shapes is slow for VGG: once
            model = build_model(self.model_name)
            self._shape_and_classes = _model_input_shape(model), int(model.layers[-1].output_shape[-1])
        shape, classes = self._shape_and_classes
        return {"x": rng.random((self.batch, *shape), dtype=np.float32),
                "y": rng.integers(0, classes, size=self.batch, dtype=np.int64)}

    def ours(self, a):
        from . import backend

        device = "gpu" if backend.is_gpu_array(a["x"]) else "cpu"
        model = build_model(self.model_name, device, self.dropout)
        self.models["ours"] = model
        if self.mode == "infer":
            return lambda: model.predict(a["x"], batch_size=self.batch)
        return lambda: model.train_on_batch(a["x"], a["y"])

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        device = "gpu" if t["x"].is_cuda else "cpu"
        body, ends_in_softmax = torch_mirror(build_model(self.model_name, "cpu", self.dropout), device)
        self.models["torch"] = body
        if self.mode == "infer":
            body.eval()

            def infer():
                with torch.no_grad():
                    out = body(t["x"])
                    return torch.softmax(out, dim=1) if ends_in_softmax else out
            return infer
        if not ends_in_softmax:
            raise MirrorUnsupported(f"{self.model_name} does not end in softmax; the mirror trains with "
                                    f"sparse cross-entropy on logits")
        body.train()
        optimizer = torch.optim.SGD(body.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(body(t["x"]), t["y"])
            loss.backward()
            optimizer.step()
            return loss.detach()
        return step


def model_cases(names, batch: int, modes=MODES) -> list[ModelCase]:
    return [ModelCase(name, mode, batch) for name in names for mode in modes]

