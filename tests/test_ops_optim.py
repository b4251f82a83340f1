"""Optimizer updates: in place, Keras semantics, checked element by element over several steps."""
import math

import numpy as np
import pytest

from cudacnn import ops, optimizers


def _steps(rng, shape=(3, 4), count=3):
    return [rng.standard_normal(shape) for _ in range(count)]


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.0),
                                                  (0.9, True, 0.01), (0.0, False, 0.1)])
def test_sgd_update(rng, momentum, nesterov, wd):
    p = rng.standard_normal((3, 4))
    velocity = np.zeros_like(p)
    ref_p, ref_v = p.ravel().tolist(), [0.0] * p.size
    lr = 0.05
    for g in _steps(rng):
        ops.sgd_update(p, g, velocity, lr, momentum, nesterov, wd)
        for i, gi in enumerate(g.ravel()):
            ref_p[i] -= lr * wd * ref_p[i]
            if momentum == 0:
                ref_p[i] -= lr * gi
                continue
            ref_v[i] = momentum * ref_v[i] - lr * gi
            ref_p[i] += momentum * ref_v[i] - lr * gi if nesterov else ref_v[i]
    np.testing.assert_allclose(p.ravel(), ref_p, rtol=1e-12)
    np.testing.assert_allclose(velocity.ravel(), ref_v if momentum else 0.0, rtol=1e-12)


def test_sgd_without_momentum_takes_no_velocity(rng):
    p = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal(5).astype(np.float32)
    expected = p - np.float32(0.1) * g
    ops.sgd_update(p, g, None, 0.1)
    np.testing.assert_allclose(p, expected, rtol=1e-6)


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_rmsprop_update(rng, wd):
    p = rng.standard_normal((3, 4))
    mean_square = np.zeros_like(p)
    ref_p, ref_s = p.ravel().tolist(), [0.0] * p.size
    lr, rho, eps = 0.01, 0.8, 1e-7
    for g in _steps(rng):
        ops.rmsprop_update(p, g, mean_square, lr, rho, eps, wd)
        for i, gi in enumerate(g.ravel()):
            ref_p[i] -= lr * wd * ref_p[i]
            ref_s[i] = rho * ref_s[i] + (1 - rho) * gi * gi
            ref_p[i] -= lr * gi / math.sqrt(ref_s[i] + eps)
    np.testing.assert_allclose(p.ravel(), ref_p, rtol=1e-12)
    np.testing.assert_allclose(mean_square.ravel(), ref_s, rtol=1e-12)


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_adam_update(rng, wd):
    p = rng.standard_normal((3, 4))
    m, v = np.zeros_like(p), np.zeros_like(p)
    ref_p, ref_m, ref_v = p.ravel().tolist(), [0.0] * p.size, [0.0] * p.size
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    for step, g in enumerate(_steps(rng, count=4), start=1):
        ops.adam_update(p, g, m, v, lr, b1, b2, eps, wd, step)
        lr_t = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
        for i, gi in enumerate(g.ravel()):
            ref_p[i] -= lr * wd * ref_p[i]
            ref_m[i] = b1 * ref_m[i] + (1 - b1) * gi
            ref_v[i] = b2 * ref_v[i] + (1 - b2) * gi * gi
            ref_p[i] -= lr_t * ref_m[i] / (math.sqrt(ref_v[i]) + eps)
    np.testing.assert_allclose(p.ravel(), ref_p, rtol=1e-12)
    np.testing.assert_allclose(m.ravel(), ref_m, rtol=1e-12)
    np.testing.assert_allclose(v.ravel(), ref_v, rtol=1e-12)


def test_updates_keep_float32_and_write_in_place(rng):
    p = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    state = [np.zeros_like(p) for _ in range(4)]
    p_before = p.copy()
    buffer = p
    ops.sgd_update(p, g, state[0], 0.1, momentum=0.9)
    ops.rmsprop_update(p, g, state[1], 0.1)
    ops.adam_update(p, g, state[2], state[3], 0.1)
    assert buffer is p and p.dtype == np.float32
    assert all(s.dtype == np.float32 and np.abs(s).sum() > 0 for s in state)
    assert not np.allclose(p, p_before)


@pytest.mark.parametrize("update,n_state,hyper", [
    (ops.sgd_update, 1, dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
    (ops.rmsprop_update, 1, dict(rho=0.8, weight_decay=0.02)),
    (ops.adam_update, 2, dict(beta1=0.8, weight_decay=0.02, step=3)),
])
def test_a_list_of_weights_updates_each_as_alone(rng, update, n_state, hyper):
    shapes = [(3, 4), (7,), (2, 3, 5)]
    alone = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    state_alone = [[rng.random(s).astype(np.float32) for s in shapes] for _ in range(n_state)]
    together = [p.copy() for p in alone]
    state_together = [[a.copy() for a in states] for states in state_alone]
    for i, g in enumerate(grads):
        update(alone[i], g, *(states[i] for states in state_alone), 0.01, **hyper)
    update(together, grads, *state_together, 0.01, **hyper)
    for got, ref in zip(together + sum(state_together, []), alone + sum(state_alone, [])):
        np.testing.assert_array_equal(got, ref)


def test_weight_lists_are_checked_tensor_by_tensor():
    a, b = np.zeros((2, 3), np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="empty list"):
        ops.sgd_update([], [], None, 0.1)
    with pytest.raises(TypeError, match="p is a list of 2 arrays, so g must be a list of 2 too, got a list of 1"):
        ops.sgd_update([a, b], [a], None, 0.1)
    with pytest.raises(TypeError, match="so mean_square must be a list of 2 too, got ndarray"):
        ops.rmsprop_update([a, b], [a, b], a, 0.1)
    with pytest.raises(ValueError, match=r"g\[1\] has shape \(3,\) but p\[1\] has shape \(4,\)"):
        ops.sgd_update([a, b], [a, np.zeros(3, np.float32)], None, 0.1)
    with pytest.raises(TypeError, match=r"p\[0\] has dtype float32 but p\[1\] has float64"):
        ops.sgd_update([a, b.astype(np.float64)], [a, b.astype(np.float64)], None, 0.1)
    with pytest.raises(ValueError, match="momentum=0.9 needs a velocity array"):
        ops.sgd_update([a, b], [a, b], [np.zeros_like(a), None], 0.1, momentum=0.9)


@pytest.mark.parametrize("make,message", [
    (lambda: optimizers.Adam(beta_1=1.5), r"beta_1 must be in \[0.0, 1.0\)"),
    (lambda: optimizers.Adam(learning_rate=float("inf")), "learning_rate must be a finite real number"),
    (lambda: optimizers.Adam(epsilon=0), r"epsilon must be in \(0.0, inf\)"),
    (lambda: optimizers.RMSprop(rho=2), r"rho must be in \[0.0, 1.0\]"),
    (lambda: optimizers.SGD(weight_decay=float("inf")), "weight_decay must be a finite real number"),
    (lambda: optimizers.SGD("0.1"), "learning_rate must be a finite real number"),
    (lambda: optimizers.SGD(momentum=1.0), r"momentum must be in \[0.0, 1.0\)"),
    (lambda: optimizers.Adam(None), "learning_rate must be a finite real number"),
])
def test_optimizer_settings_are_checked_when_built(make, message):
    """Before any training step: a bad value used to fail only after a forward and backward pass."""
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_learning_rate_changes_are_checked_too():
    opt = optimizers.SGD(0.1)
    opt.learning_rate = 0.05
    assert opt.lr == 0.05
    with pytest.raises(ValueError, match="learning_rate"):
        opt.lr = -1.0


def test_adam_refuses_a_zero_epsilon_that_would_divide_zero_by_zero():
    p, g = np.ones(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="eps"):
        ops.adam_update(p, g, np.zeros(3, np.float32), np.zeros(3, np.float32), 0.1, eps=0.0)
