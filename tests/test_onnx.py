"""ONNX import (checked against onnxruntime on nets exported from PyTorch) and export (round trips).

Tolerance: float32 end to end, max |ours - onnxruntime| <= 1e-5 * max(1, max |reference|).
"""
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import cudacnn.onnx as conx  # noqa: E402
from cudacnn import zoo  # noqa: E402
from cudacnn.layers import Conv2D, Dense, Dropout, Flatten, Input, LeakyReLU  # noqa: E402
from cudacnn.models import Model, Sequential  # noqa: E402

import torch_reference as ref  # noqa: E402

TOL = 1e-5


def _close(ours, theirs):
    bound = TOL * max(1.0, float(np.abs(theirs).max()))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= bound, (np.abs(ours - theirs).max(), bound)


def _export_torch(net, x, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(net, (torch.from_numpy(x),), str(path), dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, **kwargs)
    return path


def _run_ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


NETS = [(ref.LeNet, (1, 28, 28)), (ref.SmallVGG, (3, 16, 16)), (ref.SmallResNet, (3, 32, 32)),
        (ref.SmallInception, (3, 16, 16))]


@pytest.mark.parametrize("net_class,shape", NETS, ids=[n.__name__ for n, _ in NETS])
@pytest.mark.parametrize("fold_bn", [True, False], ids=["bn-folded", "bn-kept"])
def test_import_matches_onnxruntime(tmp_path, net_class, shape, fold_bn):
    torch.manual_seed(0)
    net = ref.randomize_batchnorm(net_class().eval())
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    # Without constant folding the exporter keeps BatchNormalization and Identity nodes.
    path = _export_torch(net, x, tmp_path / "net.onnx", do_constant_folding=fold_bn)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    model = conx.load(path)
    _close(model.predict(x), _run_ort(path, x))
    if net_class is ref.LeNet:  # x.view(x.size(0), -1): the shape chain was folded into a Flatten
        assert {"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"} <= ops
        assert "Flatten" in [type(layer).__name__ for layer in model.layers]
    if not fold_bn and net_class in (ref.SmallVGG, ref.SmallResNet):
        assert "BatchNormalization" in ops
        assert "BatchNormalization" in [type(layer).__name__ for layer in model.layers]
    with torch.no_grad():
        _close(model.predict(x[:1]), net(torch.from_numpy(x[:1])).numpy())


def _graph(nodes, initializers, in_shape, out_shape):
    graph = helper.make_graph(
        nodes, "handmade", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
        [numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_matmul_add_dropout_identity_softmax(tmp_path, rng):
    w1 = rng.standard_normal((12, 6)).astype(np.float32)
    b1 = rng.standard_normal(6).astype(np.float32)
    w2 = rng.standard_normal((6, 4)).astype(np.float32)
    model = _graph([
        helper.make_node("Reshape", ["x", "same_shape"], ["r"]),  # a no-op view
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w1"], ["m1"]),
        helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Sigmoid", ["a1"], ["s1"]),
        helper.make_node("Dropout", ["s1"], ["d1"]),
        helper.make_node("Identity", ["d1"], ["i1"]),
        helper.make_node("Gemm", ["i1", "w2"], ["g"], alpha=0.5),
        helper.make_node("Softmax", ["g"], ["y"], axis=-1),
    ], {"w1": w1, "b1": b1, "w2": w2, "same_shape": np.array([0, 3, 2, 2], np.int64)}, (3, 2, 2), (4,))
    path = tmp_path / "mlp.onnx"
    onnx.save(model, str(path))
    x = rng.standard_normal((5, 3, 2, 2)).astype(np.float32)
    ours = conx.load(path)
    assert [type(layer).__name__ for layer in ours.layers][1:] == [
        "Flatten", "Dense", "Activation", "Dropout", "Dense", "Softmax"]  # MatMul+Add fused
    _close(ours.predict(x), _run_ort(path, x))


def test_unsupported_graphs_raise_clear_errors(tmp_path, rng):
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cases = {
        "asymmetric pads": ([helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 0, 1, 2])], {"w": w},
                            (4, 9, 10), "asymmetric pads"),
        "unknown op": ([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                        helper.make_node("LRN", ["c"], ["y"], size=3)], {"w": w}, (4, 8, 8), "LRN"),
        "batch-moving reshape": ([helper.make_node("Reshape", ["x", "s"], ["y"])],
                                 {"s": np.array([-1, 3], np.int64)}, (3,), "batch"),
        "reflect pad": ([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect")],
                        {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}, (3, 10, 10), "only zero padding"),
        "channel pad": ([helper.make_node("Pad", ["x", "p"], ["y"])],
                        {"p": np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64)}, (4, 8, 8), "height and width"),
    }
    for name, (nodes, inits, out_shape, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.onnx"
        onnx.save(_graph(nodes, inits, (3, 8, 8), out_shape), str(path))
        with pytest.raises(ValueError, match=message):
            conx.load(path)
    with pytest.raises(FileNotFoundError):
        conx.load(tmp_path / "missing.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\xff not protobuf \xff" * 8)
    with pytest.raises(ValueError, match="not an ONNX model"):
        conx.load(tmp_path / "garbage.onnx")


@pytest.mark.parametrize("name,shape", [("lenet5", (1, 32, 32)), ("allcnn_c", (3, 16, 16)),
                                        ("resnet18", (3, 32, 32)), ("googlenet", (3, 32, 32)),
                                        ("mnist_workshop", (1, 28, 28))])
def test_export_reproduced_by_onnxruntime(tmp_path, rng, name, shape):
    model = zoo.get(name, input_shape=shape, num_classes=7)
    for layer in model.leaf_layers():  # non-trivial batch-norm statistics
        if "moving_mean" in layer.state:
            c = layer.state["moving_mean"].shape[0]
            layer.state["moving_mean"] = rng.standard_normal(c).astype(np.float32) * 0.1
            layer.state["moving_variance"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    path = model.export_onnx(tmp_path / f"{name}.onnx")
    _close(_run_ort(path, x), model.predict(x))
    # and back in: the imported graph computes the same
    _close(conx.load(path).predict(x), model.predict(x))


def test_export_same_padding_stride_two_and_nested_model(tmp_path, rng):
    # Keras 'same' with stride 2 on an even size pads only bottom/right: written as asymmetric pads.
    base = zoo.get("allcnn_c", input_shape=(3, 10, 10), num_classes=5, classifier_activation=None)
    inputs = Input((3, 10, 10))
    outputs = Dense(3, activation="softmax")(Dropout(0.5)(base(inputs)))
    model = Model(inputs, outputs, name="nested")
    x = rng.standard_normal((3, 3, 10, 10)).astype(np.float32)
    path = conx.export_onnx(model, tmp_path / "nested.onnx")
    _close(_run_ort(path, x), model.predict(x))


def test_export_needs_a_built_model(tmp_path):
    with pytest.raises(ValueError, match="no graph"):
        conx.export_onnx(Sequential([Dense(3)]), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.gpu
def test_export_from_a_gpu_model(cp, tmp_path, rng):
    model = zoo.get("resnet18", input_shape=(3, 32, 32), num_classes=5)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    expected = model.predict(x)
    path = conx.export_onnx(model.to("gpu"), tmp_path / "gpu.onnx")
    _close(_run_ort(path, x), expected)


def test_export_of_an_augmented_model_is_its_inference_graph(tmp_path, rng):
    from cudacnn.layers import RandomCrop, RandomFlip, RandomRotation

    model = Sequential([Input((3, 12, 12)), RandomFlip(), RandomRotation(0.1), RandomCrop(8, 10),
                        zoo.get("cifar10_deeper", input_shape=(3, 8, 10), num_classes=4)])
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    path = model.export_onnx(tmp_path / "augmented.onnx")
    _close(_run_ort(path, x), model.predict(x))


def test_export_of_leaky_relu_slopes(tmp_path, rng):
    """activation="leaky_relu" (slope 0.2) and LeakyReLU layers (0.3, or as given) keep their slopes."""
    model = Sequential([Conv2D(4, 3, activation="leaky_relu", input_shape=(2, 6, 6)), LeakyReLU(),
                        Flatten(), Dense(5, activation="leaky_relu"), LeakyReLU(negative_slope=0.05)])
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    path = model.export_onnx(tmp_path / "leaky.onnx")
    _close(_run_ort(path, x), model.predict(x))


def test_export_of_a_softmax_over_feature_map_channels(tmp_path, rng):
    model = Sequential([Conv2D(3, 1, activation="softmax", input_shape=(2, 4, 5))])
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    path = model.export_onnx(tmp_path / "seg.onnx")
    _close(_run_ort(path, x), model.predict(x))
    _close(conx.load(path).predict(x), model.predict(x))  # and back in


def _save_unchecked(path, nodes, initializers=None, in_shape=(1, 8, 8)):
    """A graph written without onnx.checker: malformed on purpose."""
    graph = helper.make_graph(
        nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


_W = np.ones((2, 1, 3, 3), np.float32)
_ONES = np.ones(1, np.float32)


def _relu_after(*nodes):
    return [*nodes, helper.make_node("Relu", ["x"], ["y"])]


MALFORMED = {  # name: (nodes, initializers, expected message); the comment says what it raised before
    "conv-no-weight": ([helper.make_node("Conv", ["x"], ["y"])], {}, "Conv node .*required input 1"),  # AttributeError
    "conv-wrong-channels": ([helper.make_node("Conv", ["x", "w"], ["y"])], {"w": np.ones((2, 3, 3, 3), np.float32)},
                            "does not fit input"),  # checked before the layer allocates a kernel
    "conv-pads-2": ([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1])], {"w": _W},
                    "pads must have 4 entries"),  # unpacking ValueError
    "conv-string-weight": ([helper.make_node("Conv", ["x", "w"], ["y"])],
                           {"w": np.full((2, 1, 3, 3), "a", dtype=object)}, "must hold numbers"),
    "gemm-no-B": ([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f"], ["y"])], {},
                  r"Gemm node .*\(B\)"),  # AttributeError
    "matmul-no-B": ([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f"], ["y"])], {},
                    r"MatMul node .*\(B\)"),  # AttributeError
    "gemm-bias-size": ([helper.make_node("Flatten", ["x"], ["f"]),
                        helper.make_node("Gemm", ["f", "B", "C"], ["y"], transB=1)],
                       {"B": np.ones((3, 64), np.float32), "C": np.ones(5, np.float32)},
                       "bias of 5 values"),  # NumPy broadcasting error
    "bn-no-stats": ([helper.make_node("BatchNormalization", ["x", "g"], ["y"])], {"g": _ONES},
                    "BatchNormalization node .*required input 2"),  # AttributeError
    "bn-negative-var": ([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"])],
                        {"g": _ONES, "b": _ONES, "m": _ONES, "v": -_ONES}, "negative"),  # silent NaN output
    "maxpool-no-kernel": ([helper.make_node("MaxPool", ["x"], ["y"])], {}, "kernel_shape"),  # KeyError
    "no-outputs": ([helper.make_node("Relu", ["x"], [])], {}, "has no outputs"),  # IndexError
    "dropout-ratio-vector": ([helper.make_node("Dropout", ["x", "r"], ["y"])],
                             {"r": np.array([0.1, 0.2], np.float32)}, "single number"),  # TypeError
    "duplicate-output": ([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Sigmoid", ["x"], ["y"])], {},
                         "already produced"),  # the second silently replaced the first
    "fold-reshape": (_relu_after(helper.make_node("Reshape", ["a", "s"], ["b"])),
                     {"a": np.ones(6, np.float32), "s": np.array([4, 4], np.int64)}, "Reshape node .*reshape"),
    "fold-concat": (_relu_after(helper.make_node("Concat", ["a", "c"], ["b"], axis=0)),
                    {"a": np.ones((2, 2), np.float32), "c": np.ones((2, 3), np.float32)}, "Concat node"),
    "fold-gather": (_relu_after(helper.make_node("Gather", ["a", "i"], ["b"])),
                    {"a": np.ones(6, np.float32), "i": np.array([100], np.int64)}, "Gather node .*out of bounds"),
    "fold-transpose": (_relu_after(helper.make_node("Transpose", ["a"], ["b"], perm=[5, 0])),
                       {"a": np.ones((2, 2), np.float32)}, "Transpose node"),  # AxisError
    "fold-huge-constant": (_relu_after(helper.make_node("ConstantOfShape", ["s"], ["b"])),
                           {"s": np.array([10**6, 10**6, 10**3], np.int64)}, "elements"),  # MemoryError
    "fold-huge-broadcast": (_relu_after(helper.make_node("Add", ["p", "q"], ["b"])),
                            {"p": np.ones((100_000, 1), np.float32), "q": np.ones((1, 100_000), np.float32)},
                            "Add node .*elements"),  # a 40 GB constant
    "fold-int-div-by-zero": (_relu_after(helper.make_node("Div", ["p", "z"], ["b"])),
                             {"p": np.array([4], np.int64), "z": np.array([0], np.int64)}, "division by zero"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_graphs_raise_value_errors_naming_file_and_node(tmp_path, name):
    nodes, initializers, message = MALFORMED[name]
    path = _save_unchecked(tmp_path / f"{name}.onnx", nodes, initializers)
    with pytest.raises(ValueError, match=message) as err:
        conx.load(path)
    assert str(path) in str(err.value)


def test_an_empty_file_is_not_an_empty_model(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="not an ONNX model"):
        conx.load(tmp_path / "empty.onnx")


@pytest.mark.parametrize("field", ["graph", "input", "node"])
def test_names_that_are_not_utf8_are_sanitized(tmp_path, field):
    """protobuf returns a string field that is not valid UTF-8 as bytes (a TypeError in re.sub before)."""
    names = {"graph": "GRAPHNAME", "input": "INPUTNAME", "node": "NODENAME"}
    graph = helper.make_graph(
        [helper.make_node("Relu", [names["input"]], ["y"], name=names["node"])], names["graph"],
        [helper.make_tensor_value_info(names["input"], TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    raw = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    old = names[field].encode()
    assert raw.count(old) == (2 if field == "input" else 1)
    path = tmp_path / "names.onnx"
    path.write_bytes(raw.replace(old, b"ab\xff\xfe" + old[4:]))  # same length: the framing stays valid
    model = conx.load(path)
    assert "ab_" + names[field][4:] in [model.name, *(layer.name for layer in model.layers)]
    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 1, 8, 8)
    np.testing.assert_array_equal(model.predict(x), np.maximum(x, 0))


class _PooledFeatures(torch.nn.Module):
    """Ends in adaptive_avg_pool2d(x, 1): ONNX keeps (N, C, 1, 1); then an optional 1x1 conv."""

    def __init__(self, head_conv):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3)
        self.head = torch.nn.Conv2d(3, 4, 1) if head_conv else None

    def forward(self, x):
        y = torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1)
        return y if self.head is None else self.head(y)


@pytest.mark.parametrize("head_conv", [False, True], ids=["pool-output", "conv-after-pool"])
def test_a_global_pool_keeps_onnx_rank(tmp_path, head_conv):
    """A pooled (N, C, 1, 1) tensor keeps its rank for what follows (it came back as (N, C), and a
    Concat or Softmax after it counted axes from that shorter rank)."""
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    path = _export_torch(_PooledFeatures(head_conv).eval(), x, tmp_path / "p.onnx")
    _close(conx.load(path).predict(x), _run_ort(path, x))


def test_an_axis_counted_after_a_global_pool_is_refused_not_misread(tmp_path):
    class JoinLast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(2, 3, 3), torch.nn.Conv2d(2, 3, 3)

        def forward(self, x):
            pool = torch.nn.functional.adaptive_avg_pool2d
            return torch.cat([pool(self.a(x), 1), pool(self.b(x), 1)], dim=-1)

    x = np.zeros((2, 2, 6, 6), np.float32)
    path = _export_torch(JoinLast().eval(), x, tmp_path / "j.onnx")
    with pytest.raises(ValueError, match=r"Concat .* only the channel axis 1 is supported, got -1"):
        conx.load(path)


def test_a_graph_exported_with_a_static_batch_imports(tmp_path):
    """torch.onnx.export without dynamic_axes folds x.view(x.size(0), -1) to Reshape [batch, -1]."""
    torch.manual_seed(0)
    net = ref.LeNet().eval()
    x = np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(x),), str(tmp_path / "s.onnx"), dynamo=False, opset_version=13)
    model = conx.load(tmp_path / "s.onnx")
    _close(model.predict(x), _run_ort(tmp_path / "s.onnx", x))
    with torch.no_grad():
        _close(model.predict(x[:1]), net(torch.from_numpy(x[:1])).numpy())  # any batch size afterwards


def test_a_layer_called_with_training_true_is_not_exported_as_inference(tmp_path):
    from cudacnn.layers import BatchNormalization
    inputs = Input((2, 5, 5))
    x = BatchNormalization()(Conv2D(3, 3)(inputs), training=True)  # batch statistics, even in predict
    with pytest.raises(ValueError, match=r"cannot export layer 'batch_normalization\w*' to ONNX: it is called "
                                         r"with training=True"):
        Model(inputs, x).export_onnx(tmp_path / "m.onnx")
    inputs = Input((2, 5, 5))
    fixed = Model(inputs, BatchNormalization()(Conv2D(3, 3)(inputs), training=False))
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    _close(fixed.predict(x), _run_ort(fixed.export_onnx(tmp_path / "ok.onnx"), x))


def test_export_of_conv1d_reshape_zero_padding_and_global_max_pool(tmp_path, rng):
    from cudacnn import layers as L
    inputs = Input((2, 9))
    x = L.Conv1D(3, 3, padding="same", strides=2, activation="relu")(inputs)
    x = L.Conv1D(4, 2, dilation_rate=2)(x)
    x = L.Reshape((4, 1, 3))(x)
    x = L.ZeroPadding2D(((1, 0), (2, 1)))(x)
    maps = L.Conv2D(2, (2, 3))(x)  # sees where the padding went
    model = Model(inputs, [Dense(2)(L.GlobalMaxPooling2D()(maps)), maps])
    data = rng.standard_normal((3, 2, 9)).astype(np.float32)
    path = model.export_onnx(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for ours, theirs in zip(model.predict(data), session.run(None, {session.get_inputs()[0].name: data})):
        _close(ours, theirs)


class _PaddedMaxPooled(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3)

    def forward(self, x):
        x = self.conv(torch.nn.functional.pad(x, (2, 1, 1, 0)))  # left, right, top, bottom
        return torch.flatten(torch.nn.functional.adaptive_max_pool2d(x, 1), 1)


def test_a_pad_of_opset_10_takes_its_pads_attribute(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 1, 2, 0, 0, 0, 1])], "pad10",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 6])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 10)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "pad10.onnx"))
    x = np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype(np.float32)
    _close(conx.load(tmp_path / "pad10.onnx").predict(x), np.pad(x, ((0, 0), (0, 0), (1, 0), (2, 1))))


def test_import_of_zero_padding_and_global_max_pool(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6)).astype(np.float32)
    path = _export_torch(_PaddedMaxPooled().eval(), x, tmp_path / "p.onnx")
    assert {"Pad", "GlobalMaxPool"} <= {n.op_type for n in onnx.load(str(path)).graph.node}
    model = conx.load(path)
    _close(model.predict(x), _run_ort(path, x))
    _close(conx.load(model.export_onnx(tmp_path / "again.onnx")).predict(x), model.predict(x))
