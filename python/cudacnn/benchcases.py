"""Op-level benchmark cases, shared by ``cudacnn bench``, ``benchmarks/`` and ``benchmarks/gpu_kernels.py``.

A case knows its shapes, the work it does and how to run it on cudacnn (any
backend) and on PyTorch (the outside reference):

* work is counted from the shapes, never measured: FLOPs for conv2d and linear
  (a multiply-add is 2 FLOPs; a backward pass computes the data and the weight
  gradient, so it counts twice the forward), bytes for the memory-bound ops
  (each input read once and each output written once: the least traffic any
  implementation needs);
* ``inputs(rng)`` draws fresh random float32 inputs (never zeros: they hide
  unwritten outputs and can run faster than real data) with a NumPy or a CuPy
  ``Generator``, so large GPU inputs are drawn on the GPU;
* ``ours(a)`` / ``torch(t)`` take those inputs already on the engine's device
  and return a zero-argument callable that does the timed work (one-off set-up,
  such as the forward pass whose cache a backward pass needs, happens before).

Every callable returns the outputs that are compared with the reference.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

FAMILIES = ("conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "softmax_ce", "linear")
DIRECTIONS = ("fwd", "bwd")
CONV_ALGOS = ("direct", "im2col", "winograd", "auto")
# Our batch norm's training passes re-read their input while it is in L2 if the
# second read trails the first by a lag (csrc/batchnorm.cu). The GPU benchmark
# times these lags, as fractions of the L2, beside the default (None: a quarter);
# 0 is the two-pass order, every read from DRAM.
BN_LAGS = {"lag=L2/8": 0.125, "lag=L2/2": 0.5, "two-pass": 0.0}


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer without its batch: C x H x W -> K channels, R x R kernel."""

    label: str
    c: int
    h: int
    k: int
    r: int = 3
    stride: int = 1
    padding: int = 1

    @property
    def out_hw(self) -> int:
        return (self.h + 2 * self.padding - self.r) // self.stride + 1


# The conv layers of the lectures' Keras nets (padding 0 is Keras "valid", r//2 is "same").
LECTURE_CONVS = (
    ConvLayer("mnist_workshop.conv1 1x28x28->32", 1, 28, 32, padding=0),
    ConvLayer("mnist_workshop.conv2 32x13x13->64", 32, 13, 64, padding=0),
    ConvLayer("cifar10_conv.conv1 3x32x32->64", 3, 32, 64, padding=0),
    ConvLayer("cifar10_deeper.conv2 64x16x16->64", 64, 16, 64),
    ConvLayer("allcnn_c.conv2 96x32x32->96", 96, 32, 96),
    ConvLayer("allcnn_c.conv4 192x16x16->192", 192, 16, 192),
)
# VGG-16's distinct 3x3 layer shapes (ImageNet, 224x224 input).
VGG16_CONVS = (
    ConvLayer("vgg16.block1_conv2 64x224x224->64", 64, 224, 64),
    ConvLayer("vgg16.block2_conv2 128x112x112->128", 128, 112, 128),
    ConvLayer("vgg16.block3_conv2 256x56x56->256", 256, 56, 256),
    ConvLayer("vgg16.block4_conv2 512x28x28->512", 512, 28, 512),
    ConvLayer("vgg16.block5_conv2 512x14x14->512", 512, 14, 512),
)
# ResNet-18's 3x3 stride-1 layer shapes, one per stage.
RESNET18_CONVS = (
    ConvLayer("resnet18.layer1 64x56x56->64", 64, 56, 64),
    ConvLayer("resnet18.layer2 128x28x28->128", 128, 28, 128),
    ConvLayer("resnet18.layer3 256x14x14->256", 256, 14, 256),
    ConvLayer("resnet18.layer4 512x7x7->512", 512, 7, 512),
)
CONV_SETS = {"lecture": LECTURE_CONVS, "vgg16": VGG16_CONVS, "resnet18": RESNET18_CONVS}


def conv2d_flops(n, c, k, r, s, oh, ow, groups=1, direction="fwd") -> float:
    """2*N*K*(C/g)*R*S*OH*OW for the forward pass; twice that for backward (dx and dw)."""
    forward = 2.0 * n * k * (c // groups) * r * s * oh * ow
    return forward if direction == "fwd" else 2.0 * forward


def linear_flops(n, n_in, n_out, direction="fwd") -> float:
    forward = 2.0 * n * n_in * n_out
    return forward if direction == "fwd" else 2.0 * forward


def _torch_grads(torch, y, wrt, dy):
    """Backward through torch's autograd (the path a PyTorch user gets); the graph is kept for repeats."""
    return lambda: torch.autograd.grad(y, wrt, dy, retain_graph=True)


def _leaf(t):
    return t.detach().requires_grad_(True)


class OpCase:
    """Base: a named op call with a fixed shape and direction."""

    family = ""
    metric = "GFLOP/s"  # or "GB/s"

    def __init__(self, label: str, direction: str, algo: str | None = None):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.label, self.direction, self.algo = label, direction, algo

    @property
    def name(self) -> str:
        algo = f"[{self.algo}]" if self.algo else ""
        return f"{self.family}_{self.direction}{algo} {self.label}"

    def work(self) -> float:
        """FLOPs (metric GFLOP/s) or bytes (metric GB/s) of one call."""
        raise NotImplementedError

    def rate(self, seconds: float) -> float:
        """GFLOP/s or GB/s at this time per call."""
        return self.work() / seconds / 1e9

    def inputs(self, rng) -> dict:
        """Random inputs drawn by ``rng`` (numpy.random.Generator or cupy.random.Generator)."""
        raise NotImplementedError

    def ours(self, a: dict):
        raise NotImplementedError

    def torch(self, t: dict):
        raise NotImplementedError


def _randn(rng, *shape, scale=1.0):
    out = rng.standard_normal(shape, dtype=np.float32)
    return out * np.float32(scale) if scale != 1.0 else out


def _xp(rng):
    """The array module that ``rng`` draws into."""
    return np if isinstance(rng, np.random.Generator) else __import__("cupy")


class Conv2dCase(OpCase):
    family = "conv2d"

    def __init__(self, layer: ConvLayer, batch: int, direction: str, algo: str = "auto"):
        super().__init__(f"{layer.label} N={batch}", direction, algo)
        self.layer, self.n = layer, batch

    def work(self):
        L = self.layer
        return conv2d_flops(self.n, L.c, L.k, L.r, L.r, L.out_hw, L.out_hw, direction=self.direction)

    def inputs(self, rng):
        L = self.layer
        fan_in = L.c * L.r * L.r
        return {
            "x": _randn(rng, self.n, L.c, L.h, L.h),
            "w": _randn(rng, L.k, L.c, L.r, L.r, scale=(2.0 / fan_in) ** 0.5),
            "b": _randn(rng, L.k, scale=0.1),
            "dy": _randn(rng, self.n, L.k, L.out_hw, L.out_hw),
        }

    def ours(self, a):
        from cudacnn import ops

        L = self.layer
        if self.direction == "fwd":
            return lambda: ops.conv2d(a["x"], a["w"], a["b"], stride=L.stride, padding=L.padding, algo=self.algo)
        return lambda: ops.conv2d_backward(a["dy"], a["x"], a["w"], stride=L.stride, padding=L.padding,
                                           algo=self.algo)

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        L = self.layer
        if self.direction == "fwd":
            return lambda: F.conv2d(t["x"], t["w"], t["b"], stride=L.stride, padding=L.padding)
        x, w, b = _leaf(t["x"]), _leaf(t["w"]), _leaf(t["b"])
        y = F.conv2d(x, w, b, stride=L.stride, padding=L.padding)
        return _torch_grads(torch, y, (x, w, b), t["dy"])


class LinearCase(OpCase):
    family = "linear"

    def __init__(self, label: str, batch: int, n_in: int, n_out: int, direction: str):
        super().__init__(f"{label} {n_in}->{n_out} N={batch}", direction)
        self.n, self.n_in, self.n_out = batch, n_in, n_out

    def work(self):
        return linear_flops(self.n, self.n_in, self.n_out, self.direction)

    def inputs(self, rng):
        return {
            "x": _randn(rng, self.n, self.n_in),
            "w": _randn(rng, self.n_out, self.n_in, scale=(1.0 / self.n_in) ** 0.5),
            "b": _randn(rng, self.n_out, scale=0.1),
            "dy": _randn(rng, self.n, self.n_out),
        }

    def ours(self, a):
        from cudacnn import ops

        if self.direction == "fwd":
            return lambda: ops.linear(a["x"], a["w"], a["b"])
        return lambda: ops.linear_backward(a["dy"], a["x"], a["w"])

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        if self.direction == "fwd":
            return lambda: F.linear(t["x"], t["w"], t["b"])
        x, w, b = _leaf(t["x"]), _leaf(t["w"]), _leaf(t["b"])
        return _torch_grads(torch, F.linear(x, w, b), (x, w, b), t["dy"])


class _MemoryBound(OpCase):
    metric = "GB/s"
    itemsize = 4

    def __init__(self, label: str, shape: tuple, direction: str):
        dims = "x".join(str(d) for d in shape)
        super().__init__(f"{label} {dims}", direction)
        self.shape = tuple(shape)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))


class _PoolCase(_MemoryBound):
    """2x2 stride-2 pooling (the lectures' MaxPooling2D((2, 2)))."""

    kernel = 2

    @property
    def out_numel(self) -> int:
        n, c, h, w = self.shape
        return n * c * (h // self.kernel) * (w // self.kernel)

    def inputs(self, rng):
        n, c, h, w = self.shape
        k = self.kernel
        return {"x": _randn(rng, *self.shape), "dy": _randn(rng, n, c, h // k, w // k)}


class MaxPoolCase(_PoolCase):
    family = "max_pool2d"

    def work(self):
        # fwd: read x, write y.  bwd: read dy and the int32 argmax indices, write dx.
        if self.direction == "fwd":
            return self.itemsize * (self.numel + self.out_numel)
        return self.itemsize * (2 * self.out_numel + self.numel)

    def ours(self, a):
        from cudacnn import ops

        k = self.kernel
        if self.direction == "fwd":
            return lambda: ops.max_pool2d(a["x"], k)
        _, indices = ops.max_pool2d(a["x"], k, return_indices=True)
        return lambda: ops.max_pool2d_backward(a["dy"], a["x"], k, indices=indices, indices_checked=True)

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        k = self.kernel
        if self.direction == "fwd":
            return lambda: F.max_pool2d(t["x"], k)
        x = _leaf(t["x"])
        return _torch_grads(torch, F.max_pool2d(x, k), (x,), t["dy"])


class AvgPoolCase(_PoolCase):
    family = "avg_pool2d"

    def work(self):
        # Both directions read one tensor and write the other.
        return self.itemsize * (self.numel + self.out_numel)

    def ours(self, a):
        from cudacnn import ops

        k = self.kernel
        if self.direction == "fwd":
            return lambda: ops.avg_pool2d(a["x"], k)
        return lambda: ops.avg_pool2d_backward(a["dy"], a["x"], k)

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        k = self.kernel
        if self.direction == "fwd":
            return lambda: F.avg_pool2d(t["x"], k)
        x = _leaf(t["x"])
        return _torch_grads(torch, F.avg_pool2d(x, k), (x,), t["dy"])


@contextmanager
def _bn_lag(fraction):
    """Our cuda backend's batch-norm lag set to ``fraction`` of the L2 (None: left as it is)."""
    if fraction is None:
        yield
        return
    from cudacnn.backends import _cuda_common, _cuda_norm

    before = _cuda_norm.LAG_BYTES
    _cuda_norm.LAG_BYTES = int(fraction * _cuda_common.l2_bytes())
    try:
        yield
    finally:
        _cuda_norm.LAG_BYTES = before


class BatchNormCase(_MemoryBound):
    """Training-mode batch norm over (N, C, H, W): batch statistics, running stats updated.

    ``algo``: one of BN_LAGS for our cuda backend, or None for the default.
    """

    family = "batch_norm"
    momentum, eps = 0.1, 1e-5

    def __init__(self, label: str, shape: tuple, direction: str, algo: str | None = None):
        if algo is not None and algo not in BN_LAGS:
            raise ValueError(f"batch norm variant must be one of {tuple(BN_LAGS)}, got {algo!r}")
        super().__init__(label, shape, direction)
        self.algo = algo

    def work(self):
        # fwd: read x, write y.  bwd: read dy and x, write dx (per-channel vectors are negligible).
        tensors = 2 if self.direction == "fwd" else 3
        return self.itemsize * tensors * self.numel

    def inputs(self, rng):
        c = self.shape[1]
        return {
            "x": _randn(rng, *self.shape),
            "gamma": 1.0 + _randn(rng, c, scale=0.1),
            "beta": _randn(rng, c, scale=0.1),
            "running_mean": _xp(rng).zeros(c, np.float32),
            "running_var": _xp(rng).ones(c, np.float32),
            "dy": _randn(rng, *self.shape),
        }

    def ours(self, a):
        from cudacnn import ops

        lag = None if isinstance(a["x"], np.ndarray) else BN_LAGS.get(self.algo)  # only our GPU kernels have a lag

        def forward():
            with _bn_lag(lag):
                return ops.batch_norm(a["x"], a["gamma"], a["beta"], a["running_mean"], a["running_var"],
                                      training=True, momentum=self.momentum, eps=self.eps)

        def backward():
            with _bn_lag(lag):
                return ops.batch_norm_backward(a["dy"], cache)

        if self.direction == "fwd":
            return lambda: forward()[0]
        _, cache = forward()
        return backward

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        def forward(x, gamma, beta):
            return F.batch_norm(x, t["running_mean"], t["running_var"], gamma, beta, training=True,
                                momentum=self.momentum, eps=self.eps)

        if self.direction == "fwd":
            return lambda: forward(t["x"], t["gamma"], t["beta"])
        x, gamma, beta = _leaf(t["x"]), _leaf(t["gamma"]), _leaf(t["beta"])
        return _torch_grads(torch, forward(x, gamma, beta), (x, gamma, beta), t["dy"])


class SoftmaxCECase(_MemoryBound):
    """Fused softmax + cross-entropy on (N, K) logits with integer labels, mean over the batch."""

    family = "softmax_ce"

    def work(self):
        # fwd: read logits and labels.  bwd: read logits and labels, write dlogits.
        n = self.shape[0]
        label_bytes = 8 * n
        if self.direction == "fwd":
            return self.itemsize * self.numel + label_bytes
        return 2 * self.itemsize * self.numel + label_bytes

    def inputs(self, rng):
        n, k = self.shape
        return {"logits": _randn(rng, n, k, scale=2.0), "labels": rng.integers(0, k, size=n, dtype=np.int64)}

    def ours(self, a):
        from cudacnn import ops

        if self.direction == "fwd":
            return lambda: ops.softmax_cross_entropy(a["logits"], a["labels"])[0]
        _, cache = ops.softmax_cross_entropy(a["logits"], a["labels"])
        return lambda: ops.softmax_cross_entropy_backward(cache)

    def torch(self, t):
        import torch
        import torch.nn.functional as F

        if self.direction == "fwd":
            return lambda: F.cross_entropy(t["logits"], t["labels"])
        logits = _leaf(t["logits"])
        loss = F.cross_entropy(logits, t["labels"])
        return lambda: torch.autograd.grad(loss, (logits,), retain_graph=True)


def _memory_shapes(batch: int, scale: str) -> dict:
    """Tensor shapes for the memory-bound ops.

    ``cpu``: what the lectures' CIFAR nets see at this batch.  ``gpu``: sizes
    several times an H100's 50 MB L2, so the timing measures DRAM, not cache.
    """
    if scale == "gpu":
        return {"pool": (64, 128, 112, 112), "bn": (64, 128, 112, 112), "ce": (65536, 1000)}
    return {"pool": (batch, 64, 32, 32), "bn": (batch, 64, 32, 32), "ce": (batch, 1000)}


def op_cases(families=FAMILIES, conv_sets=("lecture",), batch: int = 64, algos=CONV_ALGOS,
             directions=DIRECTIONS, scale: str = "cpu") -> list[OpCase]:
    """The op cases for the chosen families, conv layer sets, batch size and size scale."""
    for what, given, known in (("op families", families, FAMILIES), ("conv layer sets", conv_sets, sorted(CONV_SETS)),
                               ("conv2d algorithms", algos, CONV_ALGOS), ("directions", directions, DIRECTIONS)):
        unknown = set(given) - set(known)
        if unknown:
            raise ValueError(f"unknown {what} {sorted(unknown)}; choose from {tuple(known)}")
    if scale not in ("cpu", "gpu"):
        raise ValueError(f"scale must be 'cpu' or 'gpu', got {scale!r}")
    shapes = _memory_shapes(batch, scale)
    cases: list[OpCase] = []
    for direction in directions:
        if "conv2d" in families:
            cases += [Conv2dCase(layer, batch, direction, algo)
                      for name in conv_sets for layer in CONV_SETS[name] for algo in algos]
        if "max_pool2d" in families:
            cases.append(MaxPoolCase("2x2", shapes["pool"], direction))
        if "avg_pool2d" in families:
            cases.append(AvgPoolCase("2x2", shapes["pool"], direction))
        if "batch_norm" in families:
            cases.append(BatchNormCase("train", shapes["bn"], direction))
            if scale == "gpu":
                cases += [BatchNormCase("train", shapes["bn"], direction, lag) for lag in BN_LAGS]
        if "softmax_ce" in families:
            cases.append(SoftmaxCECase("int labels", shapes["ce"], direction))
        if "linear" in families:
            cases.append(LinearCase("cifar10_deeper.dense1", batch, 4096, 128, direction))
            if scale == "gpu":
                # A long reduction into few outputs (split-K's case), and a large layer.
                cases.append(LinearCase("cifar10_conv.dense1", batch, 57600, 32, direction))
                cases.append(LinearCase("vgg16.fc1", batch, 25088, 4096, direction))
    return cases
