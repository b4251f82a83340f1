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


# ----- Optimizer level: several steps of optimizer.apply against Keras 3's formulas -------------
#
# The references are written here from the Keras 3 sources (keras/src/optimizers/sgd.py,
# rmsprop.py, adam.py and BaseOptimizer._apply_weight_decay), vectorised over a tensor, float64,
# sharing no code with the backends. Keras 3 applies weight decay before the update, decoupled:
#   w -= w * weight_decay * lr
# and counts Adam's step t from 1 (local_step = iterations + 1, iterations starting at 0).
# Keras' documented defaults, spelled out where each reference is called:
#   SGD(learning_rate=0.01, momentum=0.0, nesterov=False)
#   RMSprop(learning_rate=0.001, rho=0.9, epsilon=1e-7)
#   Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)
#   AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)

def keras_sgd(w, grads, lr, momentum, nesterov=False, weight_decay=0.0):
    w, m, trajectory = w.copy(), np.zeros_like(w), []
    for g in grads:
        w = w - w * weight_decay * lr
        if momentum:
            m = m * momentum - g * lr
            w = w + (m * momentum - g * lr if nesterov else m)
        else:
            w = w - g * lr
        trajectory.append(w)
    return trajectory


def keras_rmsprop(w, grads, lr, rho, epsilon, weight_decay=0.0):
    w, s, trajectory = w.copy(), np.zeros_like(w), []
    for g in grads:
        w = w - w * weight_decay * lr
        s = rho * s + (1 - rho) * np.square(g)
        w = w - lr * g / np.sqrt(s + epsilon)  # epsilon inside the root (PyTorch: outside)
        trajectory.append(w)
    return trajectory


def keras_adam(w, grads, lr, beta_1, beta_2, epsilon, weight_decay=0.0):
    w, m, v, trajectory = w.copy(), np.zeros_like(w), np.zeros_like(w), []
    for t, g in enumerate(grads, start=1):
        w = w - w * weight_decay * lr
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (np.square(g) - v) * (1 - beta_2)
        w = w - (m * alpha) / (np.sqrt(v) + epsilon)  # epsilon not bias-corrected (PyTorch: it is)
        trajectory.append(w)
    return trajectory


KERAS_DEFAULTS = {
    "sgd": lambda w, gs: keras_sgd(w, gs, lr=0.01, momentum=0.0),
    "rmsprop": lambda w, gs: keras_rmsprop(w, gs, lr=0.001, rho=0.9, epsilon=1e-7),
    "adam": lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
    "adamw": lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                                      weight_decay=0.004),
}

SHAPES = {"kernel": (3, 4), "bias": (3,)}  # a Dense(3) on 4 features


def _start(rng):
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grad_steps(rng, count=6, smallest=1e-8):
    """Gradients whose magnitudes vary per element and per step from `smallest` to 10, so epsilon
    matters for some elements and not others, and Adam's second moment depends on beta_2."""
    return [{k: rng.standard_normal(s) * 10.0 ** rng.uniform(math.log10(smallest), 1, s)
             for k, s in SHAPES.items()} for _ in range(count)]


def _train(opt, start, grad_steps):
    """The weights of a float64 Dense(3) layer after each optimizer.apply with the given gradients."""
    from cudacnn.layers import Dense

    layer = Dense(3)
    layer.ensure_built((4,))
    layer.params = {k: v.copy() for k, v in start.items()}
    trajectory = []
    for grads in grad_steps:
        layer.grads = {k: g.copy() for k, g in grads.items()}
        opt.apply([layer])
        trajectory.append({k: v.copy() for k, v in layer.params.items()})
    assert opt.iterations == len(grad_steps)
    return trajectory


def _assert_follows(trajectory, start, grad_steps, reference, rtol=1e-12):
    for key in SHAPES:
        expected = reference(start[key], [g[key] for g in grad_steps])
        for step, (got, want) in enumerate(zip(trajectory, expected), start=1):
            np.testing.assert_allclose(got[key], want, rtol=rtol, atol=0, err_msg=f"{key}, step {step}")


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
@pytest.mark.parametrize("build", ["class", "get"])
def test_default_optimizers_step_with_keras_default_hyperparameters(rng, name, build):
    """SGD(), RMSprop(), Adam(), AdamW() and optimizers.get(name) behave as Keras' defaults."""
    classes = {"sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop, "adam": optimizers.Adam,
               "adamw": optimizers.AdamW}
    opt = classes[name]() if build == "class" else optimizers.get(name)
    start, grad_steps = _start(rng), _grad_steps(rng)
    _assert_follows(_train(opt, start, grad_steps), start, grad_steps, KERAS_DEFAULTS[name])


@pytest.mark.parametrize("name,changed", [
    ("sgd", lambda w, gs: keras_sgd(w, gs, lr=0.02, momentum=0.0)),
    ("sgd", lambda w, gs: keras_sgd(w, gs, lr=0.01, momentum=0.5)),
    ("rmsprop", lambda w, gs: keras_rmsprop(w, gs, lr=0.001, rho=0.99, epsilon=1e-7)),
    ("rmsprop", lambda w, gs: keras_rmsprop(w, gs, lr=0.001, rho=0.9, epsilon=1e-8)),
    ("adam", lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.9, beta_2=0.99, epsilon=1e-7)),
    ("adam", lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.8, beta_2=0.999, epsilon=1e-7)),
    ("adam", lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8)),
    ("adamw", lambda w, gs: keras_adam(w, gs, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
])
def test_the_default_step_data_tell_neighbouring_hyperparameters_apart(rng, name, changed):
    """Guards the test above: with these gradients a default off by a small change (lr 0.02,
    rho 0.99, beta_2 0.99, epsilon 1e-8, no AdamW decay, ...) moves the weights beyond its rtol."""
    start, grad_steps = _start(rng), _grad_steps(rng)
    for key in SHAPES:
        grads = [g[key] for g in grad_steps]
        default, other = KERAS_DEFAULTS[name](start[key], grads)[-1], changed(start[key], grads)[-1]
        assert np.max(np.abs(other - default) / np.abs(default)) > 1e-9


def test_keras_default_settings_are_the_attributes():
    assert optimizers.SGD().get_config() == {"name": "SGD", "learning_rate": 0.01, "weight_decay": 0.0,
                                             "momentum": 0.0, "nesterov": False}
    assert optimizers.RMSprop().get_config() == {"name": "RMSprop", "learning_rate": 0.001,
                                                 "weight_decay": 0.0, "rho": 0.9, "epsilon": 1e-7}
    adam = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert optimizers.Adam().get_config() == {"name": "Adam", "weight_decay": 0.0, **adam}
    assert optimizers.AdamW().get_config() == {"name": "AdamW", "weight_decay": 0.004, **adam}


@pytest.mark.parametrize("opt,reference", [
    (lambda: optimizers.SGD(0.05, momentum=0.9, weight_decay=0.01),
     lambda w, gs: keras_sgd(w, gs, 0.05, 0.9, weight_decay=0.01)),
    (lambda: optimizers.SGD(0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
     lambda w, gs: keras_sgd(w, gs, 0.05, 0.8, nesterov=True, weight_decay=0.02)),
    (lambda: optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-6, weight_decay=0.02),
     lambda w, gs: keras_rmsprop(w, gs, 0.01, 0.8, 1e-6, weight_decay=0.02)),
    (lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-6, weight_decay=0.05),
     lambda w, gs: keras_adam(w, gs, 0.01, 0.8, 0.95, 1e-6, weight_decay=0.05)),
    (lambda: optimizers.AdamW(0.02, weight_decay=0.1, beta_1=0.85),
     lambda w, gs: keras_adam(w, gs, 0.02, 0.85, 0.999, 1e-7, weight_decay=0.1)),
], ids=["sgd-momentum-decay", "sgd-nesterov-decay", "rmsprop-decay", "adam-decay", "adamw-decay"])
def test_optimizer_steps_with_weight_decay_follow_keras(rng, opt, reference):
    """Given settings, weight decay included, reach the update (Adam's used to be able to drop it)."""
    start, grad_steps = _start(rng), _grad_steps(rng, count=5)
    _assert_follows(_train(opt(), start, grad_steps), start, grad_steps, reference)


def test_adam_first_step_is_bias_corrected_from_t_1(rng):
    """With t = 1 the bias corrections make m_hat = g and v_hat = g**2, so Keras' first Adam step is
    lr * g / (|g| + epsilon / sqrt(1 - beta_2)): about lr * sign(g) for gradients far above epsilon."""
    start, grad_steps = _start(rng), _grad_steps(rng, count=1, smallest=1e-3)
    lr, beta_2, eps = 0.01, 0.98, 1e-7
    (after,) = _train(optimizers.Adam(lr, beta_1=0.7, beta_2=beta_2, epsilon=eps), start, grad_steps)
    for key, g in grad_steps[0].items():
        expected_step = lr * g / (np.abs(g) + eps / math.sqrt(1 - beta_2))
        np.testing.assert_allclose(start[key] - after[key], expected_step, rtol=1e-9)
        np.testing.assert_allclose(np.abs(start[key] - after[key]), lr, rtol=1e-3)


def test_adam_steps_continue_across_calls_and_weight_lists(rng):
    """The step count is the optimizer's, not the layer's: a second layer joining later still gets
    t = iterations (one Adam update for both), and separate apply calls continue the count."""
    from cudacnn.layers import Dense

    lr = 0.01
    opt = optimizers.Adam(lr, beta_1=0.5, beta_2=0.9)
    a, b = Dense(2), Dense(2)
    for layer in (a, b):
        layer.ensure_built((2,))
        layer.params = {"kernel": np.zeros((2, 2)), "bias": np.zeros(2)}
    g = np.array([[1.0, -2.0], [0.5, 3.0]])
    a.grads = {"kernel": g}
    opt.apply([a])
    a.grads, b.grads = {"kernel": g}, {"kernel": g}
    opt.apply([a, b])
    # b's first moments at t = 2: m = (1 - b1) g, v = (1 - b2) g**2
    alpha = lr * math.sqrt(1 - 0.9 ** 2) / (1 - 0.5 ** 2)
    expected_b = -alpha * 0.5 * g / (math.sqrt(0.1) * np.abs(g) + 1e-7)
    np.testing.assert_allclose(b.params["kernel"], expected_b, rtol=1e-12)
    # a saw g at t = 1 and t = 2: Keras' two steps
    np.testing.assert_allclose(a.params["kernel"], keras_adam(np.zeros((2, 2)), [g, g], lr, 0.5, 0.9, 1e-7)[-1],
                               rtol=1e-12)
    np.testing.assert_array_equal(a.params["bias"], 0.0)  # no gradient, no step (and no decay)


# ----- PyTorch, where the semantics coincide ------------------------------------------------------
# Differences, deliberate (Keras'): RMSprop's epsilon sits inside the root (PyTorch adds it to the
# root); Adam's epsilon is added to sqrt(v) without bias correction (PyTorch adds it to sqrt(v_hat));
# Keras' Adam(weight_decay=...) is decoupled, i.e. PyTorch's AdamW, not PyTorch's Adam (L2 in g).
# With epsilon = 1e-30 and gradients well above it the epsilon placements agree to rounding.

def _torch_trajectory(torch, make_opt, start, grad_steps):
    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in start.items()}
    opt = make_opt(list(tensors.values()))
    trajectory = []
    for grads in grad_steps:
        for key, t in tensors.items():
            t.grad = torch.tensor(grads[key], dtype=torch.float64)
        opt.step()
        trajectory.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
    return trajectory


@pytest.mark.parametrize("ours,theirs", [
    (lambda: optimizers.SGD(), lambda o, ps: o.SGD(ps, lr=0.01)),
    (lambda: optimizers.SGD(0.05, momentum=0.9), lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.9)),
    (lambda: optimizers.SGD(0.05, momentum=0.8, nesterov=True),
     lambda o, ps: o.SGD(ps, lr=0.05, momentum=0.8, nesterov=True)),
    (lambda: optimizers.RMSprop(epsilon=1e-30), lambda o, ps: o.RMSprop(ps, lr=0.001, alpha=0.9, eps=1e-30)),
    (lambda: optimizers.Adam(epsilon=1e-30), lambda o, ps: o.Adam(ps, lr=0.001, betas=(0.9, 0.999), eps=1e-30)),
    (lambda: optimizers.Adam(0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-30, weight_decay=0.05),
     lambda o, ps: o.AdamW(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-30, weight_decay=0.05)),
    (lambda: optimizers.AdamW(epsilon=1e-30),
     lambda o, ps: o.AdamW(ps, lr=0.001, betas=(0.9, 0.999), eps=1e-30, weight_decay=0.004)),
], ids=["sgd-default", "sgd-momentum", "sgd-nesterov", "rmsprop-default", "adam-default",
        "adam-decay-is-adamw", "adamw-default"])
def test_optimizers_match_torch_where_semantics_coincide(rng, ours, theirs):
    torch = pytest.importorskip("torch")
    start, grad_steps = _start(rng), _grad_steps(rng, smallest=1e-3)
    expected = _torch_trajectory(torch, lambda ps: theirs(torch.optim, ps), start, grad_steps)
    for step, (got, want) in enumerate(zip(_train(ours(), start, grad_steps), expected), start=1):
        for key in SHAPES:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-14, err_msg=f"{key}, step {step}")


def test_epsilon_placement_is_keras_not_torch_for_tiny_gradients():
    """The deliberate difference, shown: a gradient of 1e-7 with epsilon 1e-7 takes Keras' step."""
    torch = pytest.importorskip("torch")
    g, lr, eps = 1e-7, 0.001, 1e-7
    start = {"kernel": np.ones((3, 4)), "bias": np.ones(3)}
    grad_steps = [{k: np.full(s, g) for k, s in SHAPES.items()}]
    cases = [
        (optimizers.RMSprop(lr, rho=0.9, epsilon=eps),
         lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=0.9, eps=eps),
         lr * g / math.sqrt(0.1 * g * g + eps)),  # PyTorch: lr * g / (sqrt(0.1) g + eps)
        (optimizers.Adam(lr, epsilon=eps),
         lambda ps: torch.optim.Adam(ps, lr=lr, eps=eps),
         lr * g / (g + eps / math.sqrt(1 - 0.999))),  # PyTorch: lr * g / (g + eps)
    ]
    for ours, theirs, keras_step in cases:
        (got,) = _train(ours, start, grad_steps)
        (torch_got,) = _torch_trajectory(torch, theirs, start, grad_steps)
        np.testing.assert_allclose(1.0 - got["kernel"], keras_step, rtol=1e-9)
        assert abs((1.0 - torch_got["kernel"][0, 0]) / keras_step - 1) > 0.5


def test_keras2_decay_divides_the_rate_by_one_plus_decay_times_the_steps_taken(rng):
    """Keras 2's SGD(lr, momentum, decay): step t (from 1) uses lr / (1 + decay * (t - 1))."""
    start, grad_steps = _start(rng), _grad_steps(rng)

    def keras2_sgd(w, grads, lr=0.1, momentum=0.9, decay=0.3):
        v, trajectory = np.zeros_like(w), []
        for t, g in enumerate(grads, start=1):
            v = momentum * v - lr / (1 + decay * (t - 1)) * g
            w = w + v
            trajectory.append(w)
        return trajectory

    opt = optimizers.SGD(lr=0.1, momentum=0.9, decay=0.3)
    _assert_follows(_train(opt, start, grad_steps), start, grad_steps, keras2_sgd)
    assert opt.get_config()["decay"] == 0.3 and opt.learning_rate == 0.1  # the base rate stays put
    assert "decay" not in optimizers.SGD().get_config()
    with pytest.raises(ValueError, match=r"SGD: decay must be in \[0.0, inf\), got -1"):
        optimizers.SGD(decay=-1)
