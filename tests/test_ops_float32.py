"""float32 in, float32 out: every op keeps the working dtype and stays close to float64."""
import numpy as np
import pytest

from cudacnn import ops


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((3, 4, 9, 7)),
        "w": rng.standard_normal((6, 2, 3, 3)) * 0.3,
        "b": rng.standard_normal(6),
        "dy_conv": rng.standard_normal((3, 6, 5, 4)),
        "dy_pool": rng.standard_normal((3, 4, 5, 4)),
        "x1d": rng.standard_normal((3, 4, 11)),
        "w1d": rng.standard_normal((5, 4, 3)),
        "dy1d": rng.standard_normal((3, 5, 9)),
        "m": rng.standard_normal((5, 8)),
        "wl": rng.standard_normal((3, 8)),
        "dyl": rng.standard_normal((5, 3)),
        "c": rng.standard_normal(4),
        "labels": rng.integers(0, 8, 5),
    }


OPS = {
    "conv2d": lambda a: ops.conv2d(a["x"], a["w"], a["b"], stride=2, padding="same", groups=2),
    "conv2d_backward": lambda a: ops.conv2d_backward(a["dy_conv"], a["x"], a["w"], stride=2,
                                                     padding="same", groups=2),
    "conv1d": lambda a: ops.conv1d(a["x1d"], a["w1d"]),
    "conv1d_backward": lambda a: ops.conv1d_backward(a["dy1d"], a["x1d"], a["w1d"]),
    "max_pool2d": lambda a: ops.max_pool2d(a["x"], 2, padding="same"),
    "max_pool2d_backward": lambda a: ops.max_pool2d_backward(a["dy_pool"], a["x"], 2, padding="same"),
    "avg_pool2d": lambda a: ops.avg_pool2d(a["x"], 3, 2, 1),
    "avg_pool2d_backward": lambda a: ops.avg_pool2d_backward(a["dy_pool"], a["x"], 3, 2, 1),
    "global_avg_pool2d": lambda a: ops.global_avg_pool2d(a["x"]),
    "global_avg_pool2d_backward": lambda a: ops.global_avg_pool2d_backward(a["x"][:, :, 0, 0], a["x"]),
    "batch_norm": lambda a: ops.batch_norm(a["x"], a["c"], a["c"], a["c"] * 0, a["c"] ** 2, True)[0],
    "batch_norm_backward": lambda a: ops.batch_norm_backward(
        a["x"], ops.batch_norm(a["x"], a["c"], a["c"], a["c"] * 0, a["c"] ** 2, True)[1]),
    "softmax_cross_entropy": lambda a: ops.softmax_cross_entropy(a["m"], a["labels"])[0],
    "softmax_cross_entropy_backward": lambda a: ops.softmax_cross_entropy_backward(
        ops.softmax_cross_entropy(a["m"], a["labels"])[1]),
    "linear": lambda a: ops.linear(a["m"], a["wl"], a["wl"][:, 0]),
    "linear_backward": lambda a: ops.linear_backward(a["dyl"], a["m"], a["wl"]),
    "relu": lambda a: ops.relu(a["m"]),
    "relu_backward": lambda a: ops.relu_backward(a["m"], a["m"]),
    "leaky_relu": lambda a: ops.leaky_relu(a["m"]),
    "leaky_relu_backward": lambda a: ops.leaky_relu_backward(a["m"], a["m"]),
    "elu": lambda a: ops.elu(a["m"]),
    "elu_backward": lambda a: ops.elu_backward(a["m"], a["m"]),
    "sigmoid": lambda a: ops.sigmoid(a["m"]),
    "sigmoid_backward": lambda a: ops.sigmoid_backward(a["m"], ops.sigmoid(a["m"])),
    "tanh": lambda a: ops.tanh(a["m"]),
    "tanh_backward": lambda a: ops.tanh_backward(a["m"], ops.tanh(a["m"])),
    "softmax": lambda a: ops.softmax(a["m"]),
    "softmax_backward": lambda a: ops.softmax_backward(a["m"], ops.softmax(a["m"])),
    "dropout": lambda a: ops.dropout(a["m"], 0.4, True, 3),
    "dropout_backward": lambda a: ops.dropout_backward(a["m"], 0.4, True, 3),
}


def _as(inputs, dtype):
    return {k: v if v.dtype.kind in "iu" else v.astype(dtype) for k, v in inputs.items()}


@pytest.mark.parametrize("name", sorted(OPS))
def test_float32_output_dtype_and_accuracy(name):
    single, double = OPS[name](_as(_inputs(5), np.float32)), OPS[name](_as(_inputs(5), np.float64))
    single = single if isinstance(single, tuple) else (single,)
    double = double if isinstance(double, tuple) else (double,)
    for s, d in zip(single, double):
        assert s.dtype == np.float32 and d.dtype == np.float64
        np.testing.assert_allclose(s, d, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("update", ["sgd", "rmsprop", "adam"])
def test_optimizer_updates_keep_float32_close_to_float64(update):
    results = []
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(9)
        p = rng.standard_normal((4, 5)).astype(dtype)
        states = [np.zeros_like(p), np.zeros_like(p)]
        for step in range(1, 4):
            g = rng.standard_normal(p.shape).astype(dtype)
            if update == "sgd":
                ops.sgd_update(p, g, states[0], 0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)
            elif update == "rmsprop":
                ops.rmsprop_update(p, g, states[0], 0.01, weight_decay=1e-2)
            else:
                ops.adam_update(p, g, states[0], states[1], 0.01, weight_decay=1e-2, step=step)
        assert p.dtype == dtype and all(s.dtype == dtype for s in states)
        results.append(p)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
