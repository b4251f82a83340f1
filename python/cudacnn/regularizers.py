"""Weight penalties added to the training loss, as Keras' ``kernel_regularizer`` and
``bias_regularizer``: L1 (l1 * sum |w|), L2 (l2 * sum w^2) and both (L1L2).

The penalty of every trainable layer's weights joins the loss that ``fit``, ``evaluate``
and ``train_on_batch`` report, and its gradient (l1 * sign(w) + 2 * l2 * w) joins the
weight's gradient before the optimizer step. Unlike the optimizers' ``weight_decay``
(every weight, decoupled from the loss), it applies to the weights chosen.
"""
from __future__ import annotations

from .backend import get_array_module
from .ops import _validate as check


class Regularizer:
    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check.real(type(self).__name__, "l1", l1, 0.0)
        self.l2 = check.real(type(self).__name__, "l2", l2, 0.0)

    def penalty(self, w):
        """The scalar added to the loss, on ``w``'s device."""
        xp = get_array_module(w)
        total = 0.0
        if self.l1:
            total = total + self.l1 * xp.abs(w).sum()
        if self.l2:
            total = total + self.l2 * (w * w).sum()
        return total

    def gradient(self, w):
        xp = get_array_module(w)
        grad = xp.zeros_like(w)
        if self.l1:
            grad += self.l1 * xp.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self):
        return f"{type(self).__name__}(l1={self.l1}, l2={self.l2})"


class L1(Regularizer):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    pass


l1, l2, l1_l2 = L1, L2, L1L2  # keras.regularizers.l2(0.01) spells the class in lower case

_BY_NAME = {"l1": L1, "l2": L2, "l1l2": L1L2}
# A name alone gets Keras' default factor, 0.01 (for "l1_l2": both, as Keras 2's l1_l2()).
_DEFAULTS = {"l1": lambda: L1(), "l2": lambda: L2(), "l1_l2": lambda: L1L2(0.01, 0.01)}


def get(identifier):
    """A regularizer from None, an instance, a name ('l1', 'l2', 'l1_l2') or a saved config."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _DEFAULTS:
        return _DEFAULTS[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _BY_NAME:
        return _BY_NAME[identifier["class_name"].lower()](**identifier.get("config", {}))
    raise ValueError(f"unknown regularizer {identifier!r}; give 'l1', 'l2', 'l1_l2' or "
                     "cudacnn.regularizers.L1/L2/L1L2(...)")


def serialize(regularizer):
    """A saved config; a plain Regularizer is saved as the L1L2 it equals, others must be ours."""
    kind = L1L2 if type(regularizer) is Regularizer else type(regularizer)
    if _BY_NAME.get(kind.__name__.lower()) is not kind:
        raise TypeError(f"only L1, L2 and L1L2 regularizers can be saved in a config, got {regularizer!r}")
    return {"class_name": kind.__name__, "config": regularizer.get_config()}
