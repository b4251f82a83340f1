"""Keras-style callbacks: History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
TerminateOnNaN, CSVLogger, LearningRateScheduler.

Hooks receive ``logs`` dicts of Python floats. ``on_train_batch_end`` logs are only
built (a device sync) when some callback sets ``needs_batch_logs``.
"""
from __future__ import annotations

import csv
import functools
import inspect
import io as _io
import math
import numbers
import os
import re
import string
import sys
from collections.abc import Iterable

import numpy as np

from .safetensors import atomic_write


def _check_int(owner, name, value, minimum=0):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(owner, name, value, minimum=None):
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or (minimum is not None and value < minimum)):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{owner}: {name} must be a finite number{bound}, got {value!r}")
    return float(value)


def _check_path(owner, name, value):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"{owner}: {name} must be a non-empty str or path, got {value!r}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(f"{owner}: {name} must be a str path, got {value!r}")
    return path


class Callback:
    """Keras' hooks. The per-batch ones read the epoch's running loss and metrics from the device,
    so fit calls them only when some callback defines them (or sets ``needs_batch_logs``)."""

    needs_batch_logs = False

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass

    # Keras 2's batch hooks go on being called, as there, through the current ones.
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)


def _defines(callback, *hooks) -> bool:
    """Whether ``callback`` has its own version of one of ``hooks`` (on its class or set on it)."""
    return any(hook in vars(callback) or getattr(type(callback), hook) is not getattr(Callback, hook)
               for hook in hooks)


def _call_hook(method, args):
    """``method(*args)``; a hook written without the trailing ``logs`` argument (cudacnn passed
    none to some before) is called without it."""
    if args and not _takes(getattr(method, "__func__", method), len(args) + hasattr(method, "__self__")):
        args = args[:-1]
    return method(*args)


@functools.lru_cache(maxsize=None)
def _takes(function, count) -> bool:
    """Whether ``function`` accepts ``count`` positional arguments (asked once per hook)."""
    try:
        inspect.signature(function).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): call as given
        pass
    return True


class History(Callback):
    """Per-epoch logs: ``history.history["loss"]`` etc.; ``history.epoch`` lists epoch indices."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor(Callback):
    """Shared logic: watch ``monitor``, decide if a value improved by more than ``min_delta``."""

    def __init__(self, monitor, min_delta, mode):
        super().__init__()
        owner = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"{owner}: monitor must be the name of a log key such as 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.min_delta = abs(_check_real(owner, "min_delta", min_delta))
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.mode = mode

    def _improved(self, current, best):
        if best is None:
            return True
        if self.mode == "min":
            return current < best - self.min_delta
        return current > best + self.min_delta

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            print(f"{type(self).__name__}: metric {self.monitor!r} is not available; available: "
                  f"{sorted(logs or {})}", file=sys.stderr)
        return value


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally restore the
    best weights at the end of training. As Keras 3: an epoch that improves on the best so far
    never stops training, and with a ``baseline`` the patience restarts only on epochs that
    also beat it (the best epoch is still the one restored)."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, min_delta, mode)
        self.patience = _check_int("EarlyStopping", "patience", patience)
        self.verbose = verbose
        self.baseline = None if baseline is None else _check_real("EarlyStopping", "baseline", baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _check_int("EarlyStopping", "start_from_epoch", start_from_epoch)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after each epoch via ``cudacnn.io``.

    ``filepath`` may hold ``{epoch}`` and log keys, e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}.safetensors"``.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto"):
        super().__init__(monitor, 0.0, mode)
        self.filepath = _check_path("ModelCheckpoint", "filepath", filepath)
        try:  # a malformed pattern ("ck-{.cudacnn") is reported now, not after the first epoch
            fields = [f for _, f, _, _ in string.Formatter().parse(self.filepath) if f is not None]
        except ValueError as exc:
            raise ValueError(f"ModelCheckpoint: bad filepath pattern {self.filepath!r}: {exc}") from None
        self._keys = [re.split(r"[.\[]", f, maxsplit=1)[0] for f in fields]
        if any(not key or key.isdigit() for key in self._keys):
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} may only hold named fields "
                             "such as {epoch} or {val_loss}")
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.best = None

    def on_train_begin(self, logs=None):
        directory = os.path.dirname(self.filepath)
        if directory and "{" not in directory:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"ModelCheckpoint: cannot create the directory {directory!r} "
                                 f"for {self.filepath!r}: {exc}") from None
        if not self._keys and os.path.isdir(self.filepath):  # a fixed path: refuse it now, not after an epoch
            raise ValueError(f"ModelCheckpoint: cannot write {self.filepath!r}: it is a directory; give a file path")

    def _path(self, epoch, logs):
        values = {**logs, "epoch": epoch + 1}
        missing = sorted({key for key in self._keys if key not in values})
        if missing:
            raise ValueError(f"ModelCheckpoint: filepath {self.filepath!r} needs the log key(s) {missing}, "
                             f"which are not available; available keys: {sorted(values)}"
                             + (" (val_* keys need validation data)" if any(k.startswith("val_") for k in missing)
                                else ""))
        try:
            path = self.filepath.format(**values)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} "
                             f"with {values}: {exc}") from None
        return path

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = self._current(logs)
            if current is None or not self._improved(current, self.best):
                return
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best} to {current}, saving to {path}")
            self.best = current
        if os.path.dirname(path):  # only for a file it writes: no empty folders for skipped epochs
            os.makedirs(os.path.dirname(path), exist_ok=True)
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, min_delta, mode)
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool) or not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be a number in (0, 1), got {factor!r}")
        self.factor = float(factor)
        self.patience = _check_int("ReduceLROnPlateau", "patience", patience)
        self.verbose = verbose
        self.cooldown = _check_int("ReduceLROnPlateau", "cooldown", cooldown)
        self.min_lr = _check_real("ReduceLROnPlateau", "min_lr", min_lr, minimum=0.0)

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)
        current = self._current(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            optimizer = self.model.optimizer
            new_lr = max(optimizer.learning_rate * self.factor, self.min_lr)
            if new_lr < optimizer.learning_rate:
                optimizer.learning_rate = new_lr
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.4g}.")
            self.cooldown_counter, self.wait = self.cooldown, 0


def _schedule_takes_lr(schedule):
    """Whether ``schedule`` is ``schedule(epoch, lr)`` rather than Keras 1's ``schedule(epoch)``, read
    from its signature: retrying after a TypeError (as Keras does) would also hide one raised inside it."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # no signature to read (some builtins): take the current form
        return True
    params = signature.parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    required = [p for p in positional if p.default is p.empty]
    required_keywords = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 2 or required_keywords or not (positional or varargs):
        raise TypeError(f"LearningRateScheduler: schedule must take (epoch) or (epoch, lr), got {schedule!r} "
                        f"with signature {signature}")
    return varargs or len(positional) >= 2


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to ``schedule(epoch, lr)``, or ``schedule(epoch)``
    for a one-argument schedule (Keras 1's form, which Keras 2 still accepts)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, got {schedule!r}")
        self._takes_lr = _schedule_takes_lr(schedule)
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        value = (self.schedule(epoch, self.model.optimizer.learning_rate) if self._takes_lr
                 else self.schedule(epoch))
        try:
            lr = None if isinstance(value, (str, bytes, bool)) else float(value)
        except (TypeError, ValueError):
            lr = None
        if lr is None or not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: schedule returned an invalid learning rate {value!r} "
                             f"at epoch {epoch}; it must return a positive finite number")
        self.model.optimizer.learning_rate = lr

    def on_epoch_end(self, epoch, logs=None):
        _log_learning_rate(self.model, logs)


def _log_learning_rate(model, logs):
    """The epoch's learning rate into its logs (and so the History), as Keras 3's callbacks that
    change it do ("lr" in Keras 2)."""
    if logs is not None:
        logs["learning_rate"] = float(model.optimizer.learning_rate)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite (syncs once per batch)."""

    needs_batch_logs = True

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training", file=sys.stderr)
            self.model.stop_training = True


class CSVLogger(Callback):
    """One CSV row per epoch (``epoch`` then the log keys, sorted); the file is rewritten
    atomically after each epoch."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = _check_path("CSVLogger", "filename", filename)
        if not isinstance(separator, str) or len(separator) != 1 or separator in "\r\n\"":
            raise ValueError(f"CSVLogger: separator must be one character (not a quote or newline), got {separator!r}")
        self.separator = separator
        self.append = bool(append)

    def on_train_begin(self, logs=None):
        directory = os.path.dirname(self.filename) or "."
        if os.path.isdir(self.filename) or not os.path.isdir(directory):
            raise ValueError(f"CSVLogger: cannot write {self.filename!r}: "
                             + ("it is a directory" if os.path.isdir(self.filename)
                                else f"the directory {directory!r} does not exist"))
        self._prefix = ""
        if self.append and os.path.exists(self.filename):
            try:
                with open(self.filename, encoding="utf-8") as f:
                    self._prefix = f.read()
            except UnicodeDecodeError as exc:
                raise ValueError(f"CSVLogger: cannot append to {self.filename!r}: it is not UTF-8 text "
                                 f"({exc.reason} at byte {exc.start})") from None
        self._keys = None
        self._rows = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
        self._rows.append([epoch] + [logs.get(k, "NA") for k in self._keys])
        buffer = _io.StringIO()
        writer = csv.writer(buffer, delimiter=self.separator, lineterminator="\n")
        if not self._prefix:
            writer.writerow(["epoch", *self._keys])
        writer.writerows(self._rows)
        _atomic_write_text(self.filename, self._prefix + buffer.getvalue())


def _atomic_write_text(path, text):
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


class CallbackList:
    def __init__(self, callbacks, model):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif not isinstance(callbacks, Iterable) or isinstance(callbacks, (str, bytes)):
            raise TypeError(f"callbacks must be a list of Callback instances, got {callbacks!r}")
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {cb!r}")
            cb.set_model(model)
        # The batch-end logs are read from the device, so only when some callback reads them.
        self.needs_batch_logs = any(cb.needs_batch_logs or _defines(cb, "on_train_batch_end", "on_batch_end")
                                    for cb in self.callbacks)
        self.calls_batch_begin = any(_defines(cb, "on_train_batch_begin", "on_batch_begin") for cb in self.callbacks)

    def set_params(self, params):
        for cb in self.callbacks:
            cb.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for cb in self.callbacks:
                _call_hook(getattr(cb, hook), args)
        return call
