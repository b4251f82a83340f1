"""Dropout, the optimizer kernels and a whole training step on our kernels (GPU only).

* dropout: the mask (and every output bit) equals the NumPy reference's;
* optimizer steps: float32 kernels vs the float32 NumPy reference, 1e-6
  relative, over several steps, with and without weight decay;
* a small conv-bn-relu-pool-dense-softmaxCE net, written directly with
  cudacnn.ops, trained for two SGD-momentum steps on ``cuda`` (each conv
  algorithm forced) matches the same steps on ``numpy`` in float64 (1e-4
  relative), two runs on ``cuda`` agree bit for bit, and a captured CUDA
  graph of a step replays to the same bits as the eager step.
"""
import numpy as np
import pytest

from cudacnn import ops
from cuda_helpers import assert_close, cuda_log, on_cuda, to_gpu  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("rate,seed", [(0.37, 99), (0.5, 0), (0.9, 2**32 + 5), (0.01, 123456789)])
def test_dropout_mask_is_bitwise_identical(on_cuda, rate, seed):
    cp = on_cuda
    x = np.random.default_rng(0).standard_normal((3, 7, 33, 17)).astype(np.float32)
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    gx, gdy = to_gpu(cp, x, dy)
    y_ref, dx_ref = ops.dropout(x, rate, True, seed), ops.dropout_backward(dy, rate, True, seed)
    y, dx = cp.asnumpy(ops.dropout(gx, rate, True, seed)), cp.asnumpy(ops.dropout_backward(gdy, rate, True, seed))
    np.testing.assert_array_equal(y.view(np.uint32), y_ref.view(np.uint32))
    np.testing.assert_array_equal(dx.view(np.uint32), dx_ref.view(np.uint32))


UPDATES = {
    "sgd": (ops.sgd_update, 1, dict(lr=0.1)),
    "sgd_momentum": (ops.sgd_update, 1, dict(lr=0.1, momentum=0.9)),
    "sgd_nesterov_decay": (ops.sgd_update, 1, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "rmsprop": (ops.rmsprop_update, 1, dict(lr=0.01, rho=0.9, eps=1e-7)),
    "rmsprop_decay": (ops.rmsprop_update, 1, dict(lr=0.01, rho=0.8, eps=1e-3, weight_decay=0.1)),
    "adam": (ops.adam_update, 2, dict(lr=0.001)),
    "adam_decay": (ops.adam_update, 2, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-5, weight_decay=0.05)),
}


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_optimizer_updates(on_cuda, name):
    cp = on_cuda
    update, n_state, hyper = UPDATES[name]
    rng = np.random.default_rng(3)
    p = rng.standard_normal((5, 3, 7)).astype(np.float32)
    cpu = [p.copy()] + [np.zeros_like(p) for _ in range(n_state)]
    gpu = [cp.asarray(a) for a in cpu]
    for step in (1, 2, 3):
        g = rng.standard_normal(p.shape).astype(np.float32)
        extra = {"step": step} if update is ops.adam_update else {}
        update(cpu[0], g, *cpu[1:], **hyper, **extra)
        update(gpu[0], cp.asarray(g), *gpu[1:], **hyper, **extra)
    for got, ref, what in zip(gpu, cpu, ["param", "state 1", "state 2"]):
        assert_close(cp.asnumpy(got), ref, 1e-6, f"{name} {what}")


# 30 tensors: two launches (24 per launch); sizes around the 1024-element block
# slice, a single element, and one tensor of many slices.
LIST_SIZES = [1, 7, 1023, 1024, 1025, 3, 2048, 5000] * 3 + [1, 1, 2, 99999, 17, 4096]


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_optimizer_updates_of_a_weight_list(on_cuda, name):
    """One call on a list of tensors (the multi-tensor kernel) equals the reference tensor by tensor."""
    cp = on_cuda
    update, n_state, hyper = UPDATES[name]
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(n).astype(np.float32) for n in LIST_SIZES]
    cpu = [[p.copy() for p in params]] + [[np.zeros_like(p) for p in params] for _ in range(n_state)]
    gpu = [[cp.asarray(a) for a in arrays] for arrays in cpu]
    for step in (1, 2):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        extra = {"step": step} if update is ops.adam_update else {}
        for i, g in enumerate(grads):
            update(cpu[0][i], g, *(arrays[i] for arrays in cpu[1:]), **hyper, **extra)
        update(gpu[0], [cp.asarray(g) for g in grads], *gpu[1:], **hyper, **extra)
    for what, got_list, ref_list in zip(["param", "state 1", "state 2"], gpu, cpu):
        for i, (got, ref) in enumerate(zip(got_list, ref_list)):
            assert_close(cp.asnumpy(got), ref, 1e-6, f"{name} {what} of tensor {i} ({ref.size} elements)")


def test_sgd_without_momentum_accepts_no_velocity(on_cuda):
    cp = on_cuda
    p = cp.asarray(np.arange(6, dtype=np.float32))
    ops.sgd_update(p, cp.ones(6, dtype=cp.float32), None, lr=0.5)
    np.testing.assert_array_equal(cp.asnumpy(p), np.arange(6, dtype=np.float32) - 0.5)


def _init_params(rng):
    return {
        "conv_w": (rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float32),
        "conv_b": (rng.standard_normal(6) * 0.1).astype(np.float32),
        "gamma": rng.uniform(0.8, 1.2, 6).astype(np.float32),
        "beta": (rng.standard_normal(6) * 0.1).astype(np.float32),
        "dense_w": (rng.standard_normal((10, 6 * 6 * 5)) * 0.05).astype(np.float32),
        "dense_b": np.zeros(10, dtype=np.float32),
    }


def _train(xp, params, state, x, labels, algo, steps=2):
    """Two SGD-momentum steps of conv3x3 -> BN -> relu -> maxpool2 -> dense -> softmax CE."""
    velocity = {k: xp.zeros_like(v) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        h = ops.conv2d(x, params["conv_w"], params["conv_b"], padding=1, algo=algo)
        hb, bn_cache = ops.batch_norm(h, params["gamma"], params["beta"], state["mean"], state["var"],
                                      training=True, momentum=0.1, eps=1e-3)
        hr = ops.relu(hb)
        hp, idx = ops.max_pool2d(hr, 2, return_indices=True)
        flat = hp.reshape(hp.shape[0], -1)
        logits = ops.linear(flat, params["dense_w"], params["dense_b"])
        loss, ce_cache = ops.softmax_cross_entropy(logits, labels)
        losses.append(loss)
        dlogits = ops.softmax_cross_entropy_backward(ce_cache)
        dflat, dwd, dbd = ops.linear_backward(dlogits, flat, params["dense_w"])
        dhr = ops.max_pool2d_backward(dflat.reshape(hp.shape), hr, 2, indices=idx)
        dhb = ops.relu_backward(dhr, hb)
        dh, dgamma, dbeta = ops.batch_norm_backward(dhb, bn_cache)
        _, dwc, dbc = ops.conv2d_backward(dh, x, params["conv_w"], padding=1, algo=algo, need_dx=False)
        grads = {"conv_w": dwc, "conv_b": dbc, "gamma": dgamma, "beta": dbeta, "dense_w": dwd, "dense_b": dbd}
        for k in params:
            ops.sgd_update(params[k], grads[k], velocity[k], lr=0.1, momentum=0.9)
    return losses, grads


def _problem():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 3, 12, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    return x, labels, _init_params(rng)


def _run_cuda(cp, algo):
    x, labels, params = _problem()
    gparams = {k: cp.asarray(v) for k, v in params.items()}
    state = {"mean": cp.zeros(6, dtype=cp.float32), "var": cp.ones(6, dtype=cp.float32)}
    losses, grads = _train(cp, gparams, state, cp.asarray(x), cp.asarray(labels), algo)
    return losses, grads, gparams, state


@pytest.mark.parametrize("algo", ["direct", "im2col", "auto"])
def test_training_step_matches_numpy(on_cuda, algo):
    cp = on_cuda
    x, labels, params = _problem()
    ref_params = {k: v.astype(np.float64) for k, v in params.items()}
    ref_state = {"mean": np.zeros(6), "var": np.ones(6)}
    ref_losses, ref_grads = _train(np, ref_params, ref_state, x.astype(np.float64), labels, "auto")
    losses, grads, gparams, state = _run_cuda(cp, algo)
    for got, ref in zip(losses, ref_losses):
        assert_close(cp.asnumpy(got), ref, 1e-4, "loss")
    for k in ref_grads:
        # The conv bias feeds batch norm, which cancels it: its gradient is 0 up to
        # rounding, so measure it on the scale of the conv weight gradient.
        scale = np.abs(ref_grads["conv_w"]).max() if k == "conv_b" else None
        assert_close(cp.asnumpy(grads[k]), ref_grads[k], 1e-4, f"last-step gradient {k}", scale=scale)
    for k in ref_params:
        assert_close(cp.asnumpy(gparams[k]), ref_params[k], 1e-4, f"updated {k}")
    for k in ref_state:
        assert_close(cp.asnumpy(state[k]), ref_state[k], 1e-4, f"running {k}")


@pytest.mark.parametrize("algo", ["direct", "im2col"])
def test_training_step_is_bitwise_deterministic(on_cuda, algo):
    cp = on_cuda
    first, second = _run_cuda(cp, algo), _run_cuda(cp, algo)
    for a, b in zip(first[0], second[0]):
        assert cp.array_equal(a, b), "loss differs between two identical runs"
    for k in first[1]:
        assert cp.array_equal(first[1][k], second[1][k]), f"gradient {k} differs between two identical runs"
        assert cp.array_equal(first[2][k], second[2][k]), f"parameter {k} differs between two identical runs"


def test_fallback_is_logged(cp, cuda_backend, cuda_log):
    """Direct backend calls with float64 cupy arrays (ops refuses them) take the cupy path, visibly."""
    x = cp.asarray(np.random.default_rng(0).standard_normal((4, 5)))
    y = cuda_backend.relu(x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(cp.asnumpy(y), np.maximum(cp.asnumpy(x), 0))
    assert any("relu runs on the cupy backend" in m for m in cuda_log), cuda_log


def test_a_training_step_replays_as_a_cuda_graph(on_cuda):
    """Outputs and workspaces come from CuPy's pool and every kernel runs on the current
    stream, so a whole step can be captured and replayed (one-hot targets: integer labels
    would make ops check their range on the host, which a capture forbids)."""
    cp = on_cuda
    if getattr(cp, "EMULATED", False):
        pytest.skip("CUDA graphs are not emulated")
    x, labels, params = _problem()
    targets = np.eye(10, dtype=np.float32)[labels]

    def fresh():
        state = {"mean": cp.zeros(6, dtype=cp.float32), "var": cp.ones(6, dtype=cp.float32)}
        return {k: cp.asarray(v) for k, v in params.items()}, state

    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        gx, gt = cp.asarray(x), cp.asarray(targets)
        eager_params, eager_state = fresh()
        eager_losses, _ = _train(cp, eager_params, eager_state, gx, gt, "im2col", steps=1)  # also fills the pool
        graph_params, graph_state = fresh()
        stream.synchronize()
        stream.begin_capture()
        graph_losses, _ = _train(cp, graph_params, graph_state, gx, gt, "im2col", steps=1)
        graph = stream.end_capture()
        graph.launch()
        stream.synchronize()
    assert cp.array_equal(graph_losses[0], eager_losses[0])
    for k in params:
        assert cp.array_equal(graph_params[k], eager_params[k]), f"{k} differs after the graph replay"
    for k in eager_state:
        assert cp.array_equal(graph_state[k], eager_state[k])
