"""SGD, RMSprop and Adam (Keras arguments and semantics), updating weights in place via ops.

Slots (velocity, moments) live beside each weight, on the same device, keyed by
layer and weight name; ``learning_rate`` is a plain attribute callbacks may change.
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module, is_gpu_array
from .layers.base import to_device
from . import ops
from .ops import _validate as check


class Optimizer:
    slot_names: tuple = ()

    def __init__(self, learning_rate=0.001, weight_decay=0.0, **kwargs):
        if "lr" in kwargs:  # the old Keras spelling
            learning_rate = kwargs.pop("lr")
        # Keras 2's time decay of the learning rate: lr / (1 + decay * steps taken before this one).
        self.decay = self._hyper("decay", kwargs.pop("decay", 0.0), 0.0)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        # Checked here, as the ops will at every step, so a bad value fails before training.
        self.learning_rate = learning_rate
        self.weight_decay = self._hyper("weight_decay", weight_decay, 0.0)
        self.iterations = 0
        self._slots = {}

    @property
    def lr(self):
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = self._hyper("learning_rate", value, 0.0, low_open=True)

    def _step_learning_rate(self):
        """The rate for the step under way (``iterations`` already counts it)."""
        return self.learning_rate / (1.0 + self.decay * (self.iterations - 1))

    def _hyper(self, name, value, low, high=None, **open_ends):
        return check.real(type(self).__name__, name, value, low, high, **open_ends)

    def apply(self, layers):
        """One step on every trainable weight of ``layers`` that has a gradient.

        Weights sharing a device and dtype (normally all of them) go to one update op,
        so the cuda backend updates the whole model in one or a few launches.
        """
        self.iterations += 1
        groups = {}
        for layer in layers:
            for key, param in layer.params.items():
                grad = layer.grads.get(key)
                if grad is None:
                    continue
                if grad.shape != param.shape:
                    raise ValueError(f"gradient for {layer.name}/{key} has shape {grad.shape}, "
                                     f"weight has {param.shape}")
                params, grads, slot_lists = groups.setdefault(
                    (is_gpu_array(param), param.dtype), ([], [], tuple([] for _ in self.slot_names)))
                params.append(param)
                grads.append(grad)
                for slot_list, slot in zip(slot_lists, self._slots_for(layer, key, param)):
                    slot_list.append(slot)
        for params, grads, slot_lists in groups.values():
            self._update(params, grads, slot_lists)

    def _slots_for(self, layer, key, param):
        slot_key = (layer.name, key)
        slots = self._slots.get(slot_key)
        if (slots is None or slots[0].shape != param.shape or slots[0].dtype != param.dtype
                or is_gpu_array(slots[0]) != is_gpu_array(param)):
            xp = get_array_module(param)
            slots = tuple(xp.zeros_like(param) for _ in self.slot_names)
            self._slots[slot_key] = slots
        return slots

    def to(self, device):
        self._slots = {k: tuple(to_device(s, device) for s in v) for k, v in self._slots.items()}

    def state_tensors(self, weights):
        """``{"layer/param/slot": array}``: the running state a saved model keeps, for its
        ``weights`` ("layer/param" -> array) only (the optimizer may have served others)."""
        return {f"{layer}/{key}/{slot}": value for (layer, key), values in self._slots.items()
                if _fits(values[0], weights.get(f"{layer}/{key}"))
                for slot, value in zip(self.slot_names, values)}

    def load_state(self, tensors, iterations, weights):
        """Take back ``state_tensors()`` and the step count for the model's ``weights``
        ("layer/param" -> array); returns the names of the slots that fit no weight, left out."""
        if iterations < 0:
            raise ValueError(f"a step count of {iterations}")
        slots, skipped = {}, []
        for name, value in tensors.items():
            weight, _, slot = name.rpartition("/")
            if slot in self.slot_names and _fits(value, weights.get(weight)):
                slots.setdefault(weight, {})[slot] = value
            else:
                skipped.append(name)
        restored = {}
        for weight, values in slots.items():
            if set(values) != set(self.slot_names):
                skipped += [f"{weight}/{slot}" for slot in values]
                continue
            layer, _, key = weight.rpartition("/")
            device = "gpu" if is_gpu_array(weights[weight]) else "cpu"
            restored[(layer, key)] = tuple(to_device(np.array(values[s]), device) for s in self.slot_names)
        self._slots, self.iterations = restored, iterations
        return sorted(skipped)

    def _update(self, params, grads, slot_lists):
        """One step on lists of weights, gradients and, per slot name, the slot arrays."""
        raise NotImplementedError

    def get_config(self):
        config = {"name": type(self).__name__, "learning_rate": self.learning_rate,
                  "weight_decay": self.weight_decay}
        return {**config, "decay": self.decay} if self.decay else config


def _fits(slot, weight) -> bool:
    return weight is not None and tuple(slot.shape) == tuple(weight.shape) and slot.dtype == weight.dtype


class SGD(Optimizer):
    slot_names = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.momentum = self._hyper("momentum", momentum, 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)

    def _update(self, params, grads, slot_lists):
        ops.sgd_update(params, grads, slot_lists[0], self._step_learning_rate(), momentum=self.momentum,
                       nesterov=self.nesterov, weight_decay=self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    slot_names = ("mean_square",)

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, weight_decay=0.0, **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.rho = self._hyper("rho", rho, 0.0, 1.0)
        self.epsilon = self._hyper("epsilon", epsilon, 0.0, low_open=True)

    def _update(self, params, grads, slot_lists):
        ops.rmsprop_update(params, grads, slot_lists[0], self._step_learning_rate(), rho=self.rho, eps=self.epsilon,
                           weight_decay=self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                 **kwargs):
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.beta_1 = self._hyper("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = self._hyper("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = self._hyper("epsilon", epsilon, 0.0, low_open=True)

    def _update(self, params, grads, slot_lists):
        ops.adam_update(params, grads, slot_lists[0], slot_lists[1], self._step_learning_rate(), beta1=self.beta_1,
                        beta2=self.beta_2, eps=self.epsilon, weight_decay=self.weight_decay,
                        step=self.iterations)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with Keras' default decoupled weight decay of 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def get(identifier) -> Optimizer:
    """An optimizer instance: given one, or built with Keras defaults from its name."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; choose one of {sorted(_BY_NAME)} or an Optimizer")
