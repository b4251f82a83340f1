"""compile / fit / evaluate / predict for models (mixed into ``Model``).

One step: slice a batch (moving it to the model's device if needed), forward,
loss and its gradient, backward through the graph, one optimizer update per
trainable weight. Losses and correct counts are summed on the device and read
back only when the progress bar refreshes or an epoch ends.
"""
from __future__ import annotations

import math
import sys
import time
import warnings

import numpy as np

from . import backend
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import random as _random
from .layers.base import to_device
from .ops import _validate as check


def _length(x, what):
    if not hasattr(x, "shape") or len(x.shape) == 0:
        raise TypeError(f"{what} must be an array with a batch axis, got {type(x).__name__}")
    return x.shape[0]


def _output_activation(layer):
    from .models import Model
    if isinstance(layer, Model):
        return _output_activation(layer.outputs[0].layer) if layer._single_output else (None, None)
    activation = getattr(layer, "activation", None)
    if isinstance(activation, str):
        return layer, activation
    return layer, getattr(activation, "name", None)


class _Progress:
    """Keras-like per-epoch progress bar, refreshed at most a few times a second."""

    def __init__(self, verbose, steps, epoch, epochs):
        if verbose == "auto":
            verbose = 1
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
        self.verbose, self.steps = verbose, steps
        self.interactive = sys.stdout.isatty()
        self.start = self.last = time.perf_counter()
        self.train_seconds = None
        if verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)

    def update(self, step, seen, read_logs):
        now = time.perf_counter()
        # Reading the logs syncs the device: at most twice a second, and only on a terminal
        # (in a log file the carriage-return redraws would pile up; Keras does the same).
        if self.verbose != 1 or now - self.last < 0.5 or not self.interactive:
            return
        self.last = now
        logs = read_logs()
        self._draw(step, seen, logs, now, end="\r")

    def training_done(self):
        """Stop the images/s clock before validation runs."""
        self.train_seconds = time.perf_counter() - self.start

    def finish(self, step, seen, logs):
        now = time.perf_counter()
        if self.verbose == 1:
            self._draw(step, seen, logs, now, end="\n")
        elif self.verbose == 2:
            elapsed = now - self.start
            text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"{self.steps}/{self.steps} - {elapsed:.1f}s - {text} - {self._rate(seen, now):.0f} img/s",
                  flush=True)

    def _rate(self, seen, now):
        seconds = self.train_seconds if self.train_seconds is not None else now - self.start
        return seen / max(seconds, 1e-9)

    def _draw(self, step, seen, logs, now, end):
        width = 30
        done = int(width * step / max(self.steps, 1))
        bar = "=" * max(done - 1, 0) + (">" if step < self.steps else "=") + "." * (width - done)
        elapsed = now - self.start
        text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        rate = self._rate(seen, now)
        digits = len(str(self.steps))
        start = "\r" if self.interactive else ""
        sys.stdout.write(f"{start}{step:{digits}d}/{self.steps} [{bar}] - {elapsed:.1f}s - {text} - "
                         f"{rate:.0f} img/s{end}")
        sys.stdout.flush()


class TrainingMixin:
    def _init_training(self):
        self.optimizer = None
        self.loss = None
        self._metric_names, self._metrics, self._metrics_channels = [], [], None
        self.stop_training = False
        self.history = None

    # ----- setup ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        if len(self.outputs) > 1:
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs; training supports "
                             "single-output models")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        if isinstance(metrics, str):  # one metric given alone
            metrics = [metrics]
        self._metric_names = list(metrics or [])
        self._resolve_metrics()

    def _resolve_metrics(self):
        """Keras picks the kind of "accuracy" by the output width: a model compiled before it was
        built resolves its metrics again once built (see _prepare_inputs)."""
        channels = self.outputs[0].shape[1] if self.built and len(self.outputs[0].shape) > 1 else None
        self._metrics = [metrics_module.resolve(m, self.loss, channels) for m in self._metric_names]
        self._metrics_channels = channels

    def _check_compiled(self):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(f"model {self.name!r} must be compiled before training or evaluating: "
                               "call model.compile(optimizer, loss, metrics)")

    def _fused_output_layer(self):
        """The output layer whose activation the loss absorbs (fused softmax-CE), or None."""
        if len(self.outputs) != 1 or self.loss.from_logits or self.loss.fused_activation is None:
            return None
        layer, activation = _output_activation(self.outputs[0].layer)
        return layer if activation == self.loss.fused_activation else None

    def _prepare_inputs(self, x):
        if hasattr(self, "_build_from_data"):
            self._build_from_data(x)
        self._require_graph()
        if len(self.inputs) != 1:
            raise ValueError(f"model {self.name!r} has {len(self.inputs)} inputs; fit/evaluate/predict "
                             "take single-input models (call model.forward([x1, x2]) directly)")
        if self.loss is not None and self.outputs[0].shape[1] != self._metrics_channels:
            self._resolve_metrics()
        self._check_input_shape(x)
        if backend.is_gpu_array(x) and self.device == "cpu":
            self.to("gpu")  # train where the data lives

    def _check_input_shape(self, x):
        """Every batch, not only the first: the batches of an iterable may differ."""
        if not hasattr(x, "shape"):
            hint = " (for data given as nested lists, pass np.asarray(x))" if isinstance(x, (list, tuple)) else ""
            raise TypeError(f"model {self.name!r} takes arrays as input, got a batch of type "
                            f"{type(x).__name__}{hint}")
        expected = tuple(self.inputs[0].shape[1:])
        if tuple(x.shape[1:]) != expected:
            hint = ""
            if len(expected) == 3 and tuple(x.shape[1:]) == (*expected[1:], expected[0]):
                hint = " (channels-last data: cudacnn is channels-first, pass x.transpose(0, 3, 1, 2))"
            raise ValueError(f"model {self.name!r} expects inputs of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}{hint}")

    def _staged(self, source):
        """Array data for a GPU model goes to the GPU once, not batch by batch, when it fits easily;
        its targets are checked once, here."""
        if source.arrays:
            self._prepare_inputs(source.x)
            output_shape = self.outputs[0].shape  # (None, classes) for the losses that check targets
            if source.y is not None and self.loss is not None:
                self._check_target_shape(source.y)
            if source.y is not None and self.loss is not None and len(output_shape) == 2:
                # Once per data set (before any upload), not per batch: a batch's own check
                # would make the host wait for the device at every step.
                source.targets_checked = self.loss.check_targets(source.y, output_shape[-1])
            if self.device == "gpu" and not backend.is_gpu_array(source.x):
                source.stage_on_gpu()
        return source

    def _check_target_shape(self, y):
        """Targets must pair with the outputs for the loss and every metric, before any step."""
        y_shape = np.shape(y)  # arrays of either device, or lists
        target, output = tuple(y_shape[1:]), tuple(self.outputs[0].shape[1:])
        rules = [(self.loss.name, self.loss.target_rule)]
        rules += [(name, metrics_module.TARGET_RULES.get(fn)) for name, fn in self._metrics]
        for name, rule in rules:
            problem = rule(target, output) if rule is not None else None
            if problem:
                raise ValueError(f"{name}: {problem} (targets {tuple(y_shape)}, model outputs "
                                 f"{self.outputs[0].shape})")

    def _to_model(self, a, dtype=None):
        a = to_device(a, self.device)
        if dtype is not None and a.dtype != dtype:
            a = a.astype(dtype)
        return a

    def _forward_logits(self, xb, training, fused_layer):
        if fused_layer is not None:
            fused_layer._emit_logits = True
        try:
            return self._run_forward([xb], training)[0]
        finally:
            if fused_layer is not None:
                fused_layer._emit_logits = False

    # ----- one batch --------------------------------------------------------------------------
    def _train_batch(self, xb, yb, fused_layer, targets_checked=False):
        out = self._forward_logits(xb, True, fused_layer)
        loss, dout = self.loss.value_and_grad(out, yb, logits=fused_layer is not None, targets_checked=targets_checked)
        self._run_backward([dout])
        layers = self.trainable_layers()
        loss = loss + _regularization(layers, add_gradients=True)  # before the step, as Keras
        self.optimizer.apply(layers)
        return loss, [fn(out, yb, fused_layer is not None) for _, fn in self._metrics]

    def _test_batch(self, xb, yb, fused_layer, targets_checked=False):
        out = self._forward_logits(xb, False, fused_layer)
        loss = self.loss.value(out, yb, logits=fused_layer is not None, targets_checked=targets_checked)
        return loss, [fn(out, yb, fused_layer is not None) for _, fn in self._metrics]

    def train_on_batch(self, x, y, return_dict=False):
        """One step on one batch. As Keras: the loss (a float), or [loss, metric...] when the model
        has metrics, or the dict of them with ``return_dict``."""
        return self._one_batch(self._train_batch, x, y, return_dict)

    def test_on_batch(self, x, y, return_dict=False):
        """The loss and metrics of one batch, returned as ``train_on_batch`` returns them."""
        return self._one_batch(self._test_batch, x, y, return_dict)

    def _one_batch(self, step_fn, x, y, return_dict):
        self._check_compiled()
        self._prepare_inputs(x)
        self._check_target_shape(y)
        loss, counts = step_fn(self._to_model(x, self.dtype), self._to_model(y), self._fused_output_layer())
        logs = self._logs(float(loss), [(float(c), n) for c, n in counts], 1, self._test_penalty(step_fn))
        return _as_returned(logs, return_dict)

    def _test_penalty(self, step_fn):
        """Keras' reported loss includes the weight penalties; a training step adds its own (the
        weights change every step), a test pass adds them once: its weights stay put."""
        return 0.0 if step_fn == self._train_batch else float(_regularization(self.trainable_layers()))

    def _logs(self, loss_total, metric_totals, count, penalty=0.0):
        logs = {"loss": loss_total / count + penalty}
        for (name, _), (correct, n) in zip(self._metrics, metric_totals):
            logs[name] = correct / max(n, 1)
        return logs

    # ----- epochs -----------------------------------------------------------------------------
    def _run_epoch(self, source, training, progress=None, callbacks=None):
        """One pass of ``source``'s batches. Array batches share the shapes _staged checked;
        an iterable's are checked one by one."""
        targets_checked = source.targets_checked
        fused = self._fused_output_layer()
        dtype = self.dtype
        loss_total, metric_totals, seen, step = 0.0, [(0, 0) for _ in self._metrics], 0, 0

        step_fn = self._train_batch if training else self._test_batch
        penalty = self._test_penalty(step_fn)

        def read_logs():
            return self._logs(float(loss_total), [(float(c), n) for c, n in metric_totals], max(seen, 1), penalty)

        for step, (xb, yb) in enumerate(source.epoch(), start=1):
            if step == 1:
                self._prepare_inputs(xb)
            elif not source.arrays:
                self._check_input_shape(xb)
            if step == 1 or not source.arrays:
                self._check_target_shape(yb)
            xb, yb = self._to_model(xb, dtype), self._to_model(yb)
            if callbacks is not None and callbacks.calls_batch_begin:
                callbacks.on_train_batch_begin(step - 1, {})
            loss, counts = step_fn(xb, yb, fused, targets_checked)
            size = xb.shape[0]
            loss_total = loss_total + loss * size
            metric_totals = [(c0 + c, n0 + n) for (c0, n0), (c, n) in zip(metric_totals, counts)]
            seen += size
            if callbacks is not None and callbacks.needs_batch_logs:  # the epoch's running means, as Keras
                callbacks.on_train_batch_end(step - 1, read_logs())
            if progress is not None:
                progress.update(step, seen, read_logs)
            if training and self.stop_training:
                break
        if seen == 0:
            raise _NoBatches("no batches: the data is empty")
        return read_logs(), step, seen

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None):
        """Train on arrays ``x`` (N, C, H, W) and ``y``, or on an iterable of ``(x, y)`` batches
        (a list, a Keras-like Sequence, or a generator with ``steps_per_epoch``).
        Returns the History callback (``history.history`` holds the per-epoch logs)."""
        self._check_compiled()
        epochs = check.integer("fit", "epochs", epochs, minimum=0)
        initial_epoch = check.integer("fit", "initial_epoch", initial_epoch, minimum=0)
        validation_split = check.real("fit", "validation_split", validation_split, 0.0, 1.0, high_open=True)
        if validation_split and validation_data is None:  # Keras: validation_data wins
            if not hasattr(x, "shape"):
                raise ValueError("validation_split needs array inputs; pass validation_data with batches")
            n = _length(x, "x")
            split_at = int(n * (1.0 - validation_split))
            if split_at == 0 or split_at == n:
                raise ValueError(f"validation_split={validation_split} leaves an empty split of {n} samples")
            if y is not None and _length(y, "y") == n:
                x, y, validation_data = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        train = self._staged(BatchSource(x, y, batch_size, shuffle, steps_per_epoch, "x"))
        val = None
        if validation_data is not None:
            if _is_array_pair(validation_data):
                val = self._staged(BatchSource(*validation_data, train.batch_size, False, validation_steps,
                                               "x_val"))
            elif isinstance(validation_data, tuple):
                raise ValueError("validation_data must be a pair (x_val, y_val) or an iterable of batches, "
                                 f"got a tuple of {len(validation_data)}")
            else:
                val = BatchSource(validation_data, None, train.batch_size, False, validation_steps, "x_val")
        history = callbacks_module.History()
        given = callbacks_module.CallbackList(callbacks, self).callbacks  # a list, one callback or None
        cbs = callbacks_module.CallbackList([*given, history], self)
        cbs.set_params({"verbose": verbose, "epochs": epochs, "steps": train.steps})
        self.stop_training = False
        self.history = history
        cbs.on_train_begin({})
        logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch, {})
            progress = _Progress(verbose, train.steps, epoch, epochs)
            try:
                logs, step, seen = self._run_epoch(train, True, progress, cbs)
            except _NoBatches:
                if epoch == initial_epoch:
                    raise
                # Keras too stops with a warning and keeps what was learnt, history included.
                warnings.warn(f"the training data ran out of batches at epoch {epoch + 1}; training stops "
                              "(a generator needs steps_per_epoch * epochs batches)", stacklevel=2)
                break
            progress.training_done()
            if val is not None:
                cbs.on_test_begin({})
                val_logs, _, _ = self._run_epoch(val, False)
                cbs.on_test_end(val_logs)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            progress.finish(step, seen, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end(logs)
        return history

    def evaluate(self, x, y=None, batch_size=None, verbose=1, return_dict=False, steps=None):
        """Loss and metrics over (x, y) or over an iterable of (x, y) batches: a float when there
        are no metrics, else a list [loss, metric...] (a dict with ``return_dict``)."""
        self._check_compiled()
        source = self._staged(BatchSource(x, y, batch_size, False, steps, "x"))
        logs, _, _ = self._run_epoch(source, False)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
        return _as_returned(logs, return_dict)

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """Outputs (probabilities for a softmax head) for an array x or an iterable of batches:
        an array, or a list of arrays for a model with several outputs, as Keras;
        numpy in, numpy out (cupy in, cupy out)."""
        source = self._staged(BatchSource(x, None, batch_size, False, steps, "x", targets=False))
        batches, on_gpu = [], backend.is_gpu_array(x)  # per batch, the list of the model's outputs
        for xb, _ in source.epoch():
            if not batches:
                self._prepare_inputs(xb)
                if not source.arrays:  # staged arrays sit on the GPU; the caller's x decides
                    on_gpu = backend.is_gpu_array(xb)
            else:
                self._check_input_shape(xb)
            batches.append(self._run_forward([self._to_model(xb, self.dtype)], False))
        if not batches:
            raise ValueError("predict got no data")
        outputs = []
        for parts in zip(*batches):
            xp = backend.get_array_module(*parts)
            out = xp.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
            outputs.append(out if on_gpu else to_device(out, "cpu"))
        return outputs[0] if len(outputs) == 1 else outputs  # Model(x, [y]) too, as Keras

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=_length(x, "x"))

    # Keras 2's generator methods, as the lectures call them (Keras 3 folded them into fit,
    # evaluate and predict, which take generators directly).
    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, initial_epoch=0, shuffle=True):
        """``fit`` on a generator or Sequence of ``(x, y)`` batches (Keras 2 name)."""
        return self.fit(generator, epochs=epochs, verbose=verbose, callbacks=callbacks,
                        validation_data=validation_data, shuffle=shuffle, initial_epoch=initial_epoch,
                        steps_per_epoch=steps_per_epoch, validation_steps=validation_steps)

    def evaluate_generator(self, generator, steps=None, verbose=0):
        """``evaluate`` on a generator or Sequence of ``(x, y)`` batches (Keras 2 name)."""
        return self.evaluate(generator, steps=steps, verbose=verbose)

    def predict_generator(self, generator, steps=None, verbose=0):
        """``predict`` on a generator or Sequence of batches (Keras 2 name)."""
        return self.predict(generator, steps=steps, verbose=verbose)



def _cycled(batches):
    """A Sequence's (or a list's) batches, from the first again when more steps are asked for than
    it holds (after its on_epoch_end, which reshuffles a flow()), as Keras 2's fit_generator reads it."""
    while len(batches):
        for i in range(len(batches)):
            yield batches[i]
        if hasattr(batches, "on_epoch_end"):
            batches.on_epoch_end()


def _as_returned(logs, return_dict):
    """Keras' return value for logs: the dict, or the loss alone, or [loss, metric...]."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _steps(steps) -> int:
    if check.is_real(steps) and not check.is_int(steps) and math.isfinite(steps) and steps > 0:
        steps = math.ceil(steps)  # len(x) / batch_size, as Keras 2 runs it: the partial step too
    return check.integer("batches", "steps_per_epoch (or steps)", steps, minimum=1)


class _NoBatches(ValueError):
    """An epoch found no data."""


def _is_array_pair(data):
    """(x, y) or [x, y] of arrays, as Keras takes validation_data."""
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(hasattr(a, "shape") for a in data))


def _regularization(layers, add_gradients=False):
    """The weight penalties of trainable layers (kernel_regularizer=...), as Keras adds them to the loss."""
    total = 0.0
    for layer in layers:
        if layer.regularizers:
            total = total + layer.regularization_penalty(add_gradients)
    return total


class BatchSource:
    """Batches for one epoch at a time, from arrays (sliced, optionally shuffled with the seeded
    generator) or from an iterable of ``(x, y)`` batches."""

    def __init__(self, x, y, batch_size, shuffle, steps, what, targets=True):
        self.batch_size = 32 if batch_size is None else check.integer("batches", "batch_size", batch_size, minimum=1)
        if shuffle not in (True, False, "batch"):  # bool("no") would shuffle
            raise ValueError(f"shuffle must be True, False or 'batch', got {shuffle!r}")
        self.x, self.y, self.shuffle, self.targets = x, y, shuffle, targets
        self.targets_checked = False  # set by the model once it has checked all of y
        self.arrays = hasattr(x, "shape")
        if self.arrays:
            n = _length(x, what)
            if n == 0:
                raise ValueError(f"{what} is empty")
            if targets:
                if y is None:
                    raise ValueError(f"targets y are needed with array {what}")
                if _length(y, "y") != n:
                    raise ValueError(f"x and y have different lengths: {n} and {_length(y, 'y')}")
            # With steps the arrays are read as Keras 3 reads them: without a batch_size, in `steps`
            # batches; with one, on from where the last epoch stopped, an epoch ending early where
            # the data does (the next begins a new, reshuffled pass).
            if steps is not None and batch_size is None:
                self.batch_size = -(-n // _steps(steps))
            self._steps_given, self._pass = steps is not None, None
            self.steps = -(-n // self.batch_size) if steps is None else _steps(steps)
            return
        if x is None or isinstance(x, dict) or not hasattr(x, "__iter__") and not hasattr(x, "__getitem__"):
            raise TypeError(f"{what} must be an array or an iterable of (x, y) batches, got {type(x).__name__}")
        if y is not None:
            raise ValueError(f"y must be None when {what} yields (x, y) batches" + (
                f"; {what} is a list: for a list of samples pass np.asarray({what})"
                if isinstance(x, list) else ""))
        # A Keras-style Sequence (len and indexing; flow() iterators are one) is read from batch 0
        # every epoch, even when it is also an iterator; a plain generator continues across epochs.
        sequence = hasattr(x, "__getitem__") and hasattr(x, "__len__") and not isinstance(x, (list, tuple))
        self._iterator = x if not sequence and iter(x) is x else None
        if steps is None:
            if not hasattr(x, "__len__"):
                raise ValueError(f"{what} is a generator without len(): give steps_per_epoch / steps")
            steps = len(x)
        self.steps = _steps(steps)

    def stage_on_gpu(self, fraction=0.25):
        """Copy the arrays to the GPU if they take under ``fraction`` of its free memory."""
        arrays = [a for a in (self.x, self.y) if a is not None]
        free, _ = backend._cupy().cuda.runtime.memGetInfo()
        if sum(a.nbytes for a in arrays) < fraction * free:
            self.x = to_device(self.x, "gpu")
            self.y = None if self.y is None else to_device(self.y, "gpu")

    def epoch(self):
        if self.arrays:
            return self._array_batches()
        return self._iterable_batches()

    def _array_batches(self):
        return self._steps_of_passes() if self._steps_given else self._one_pass()

    def _steps_of_passes(self):
        taken = 0
        while taken < self.steps:
            batch = None if self._pass is None else next(self._pass, None)
            if batch is None:
                if taken:
                    self._pass = None
                    warnings.warn(f"the input ran out of data after {taken} of {self.steps} steps; this pass "
                                  "ends there, as in Keras", stacklevel=4)
                    return
                self._pass = self._one_pass()
                continue
            taken += 1
            yield batch

    def _one_pass(self):
        x, y = self.x, self.y
        n = _length(x, "x")
        order = None
        starts = range(0, n, self.batch_size)
        if self.shuffle == "batch":  # Keras: batch-sized chunks in random order, each read in one slice
            starts = [starts[i] for i in _random.generator().permutation(len(starts))]
        elif self.shuffle:
            order = _random.generator().permutation(n)
            if backend.is_gpu_array(x):
                order = to_device(order, "gpu")
        for start in starts:
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            yield x[idx], (None if y is None else y[idx])

    def _iterable_batches(self):
        source = self.x
        if self._iterator is not None:
            items = self._iterator
        elif hasattr(source, "__getitem__") and hasattr(source, "__len__"):
            items = _cycled(source)  # a Keras-style Sequence, or a list of batches
        else:
            items = iter(source)  # an iterable made anew each epoch
        for index, item in zip(range(self.steps), items):
            if self.targets:
                if isinstance(item, (tuple, list)) and len(item) == 3:
                    raise ValueError(f"batch {index} is (x, y, sample_weight): sample weights are not "
                                     "supported; yield (x, y) pairs")
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    got = f"a {type(item).__name__} of {len(item)}" if isinstance(item, (tuple, list)) else \
                        type(item).__name__
                    raise ValueError(f"each batch must be an (x, y) pair, batch {index} is {got}")
                yield item[0], item[1]
            else:
                yield (item[0] if isinstance(item, (tuple, list)) else item), None
        if hasattr(source, "on_epoch_end") and self._iterator is None:
            source.on_epoch_end()
