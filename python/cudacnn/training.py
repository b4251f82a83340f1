"""compile / fit / evaluate / predict for models (mixed into ``Model``).

One step: slice a batch (moving it to the model's device if needed), forward,
loss and its gradient, backward through the graph, one optimizer update per
trainable weight. Losses and correct counts are summed on the device and read
back only when the progress bar refreshes or an epoch ends.
"""
from __future__ import annotations

import sys
import time

from . import backend
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import random as _random
from .layers.base import to_device


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
        self.verbose, self.steps = verbose, steps
        self.start = self.last = time.perf_counter()
        if verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)

    def update(self, step, seen, read_logs, final=False):
        now = time.perf_counter()
        if self.verbose != 1 or (not final and now - self.last < 0.5):
            return
        self.last = now
        logs = read_logs()
        self._draw(step, seen, logs, now, end="\r")

    def finish(self, step, seen, logs):
        now = time.perf_counter()
        if self.verbose == 1:
            self._draw(step, seen, logs, now, end="\n")
        elif self.verbose == 2:
            elapsed = now - self.start
            text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"{self.steps}/{self.steps} - {elapsed:.1f}s - {text} - {seen / max(elapsed, 1e-9):.0f} img/s",
                  flush=True)

    def _draw(self, step, seen, logs, now, end):
        width = 30
        done = int(width * step / max(self.steps, 1))
        bar = "=" * max(done - 1, 0) + (">" if step < self.steps else "=") + "." * (width - done)
        elapsed = now - self.start
        text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        rate = seen / max(elapsed, 1e-9)
        digits = len(str(self.steps))
        sys.stdout.write(f"\r{step:{digits}d}/{self.steps} [{bar}] - {elapsed:.1f}s - {text} - {rate:.0f} img/s"
                         + end)
        sys.stdout.flush()


class TrainingMixin:
    def _init_training(self):
        self.optimizer = None
        self.loss = None
        self._metrics = []
        self.stop_training = False
        self.history = None

    # ----- setup ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        self._metrics = [metrics_module.resolve(m, self.loss) for m in (metrics or [])]

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
        expected = tuple(self.inputs[0].shape[1:])
        if tuple(x.shape[1:]) != expected:
            raise ValueError(f"model {self.name!r} expects inputs of shape (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        if backend.is_gpu_array(x) and self.device == "cpu":
            self.to("gpu")  # train where the data lives

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
    def _train_batch(self, xb, yb, fused_layer):
        out = self._forward_logits(xb, True, fused_layer)
        loss, dout = self.loss.value_and_grad(out, yb, logits=fused_layer is not None)
        self._run_backward([dout])
        self.optimizer.apply(self.trainable_layers())
        return loss, [fn(out, yb, fused_layer is not None) for _, fn in self._metrics]

    def _test_batch(self, xb, yb, fused_layer):
        out = self._forward_logits(xb, False, fused_layer)
        loss = self.loss.value(out, yb, logits=fused_layer is not None)
        return loss, [fn(out, yb, fused_layer is not None) for _, fn in self._metrics]

    def train_on_batch(self, x, y):
        self._check_compiled()
        self._prepare_inputs(x)
        fused = self._fused_output_layer()
        loss, counts = self._train_batch(self._to_model(x, self.dtype), self._to_model(y), fused)
        return self._logs(float(loss), [(float(c), n) for c, n in counts], 1)

    def test_on_batch(self, x, y):
        self._check_compiled()
        self._prepare_inputs(x)
        fused = self._fused_output_layer()
        loss, counts = self._test_batch(self._to_model(x, self.dtype), self._to_model(y), fused)
        return self._logs(float(loss), [(float(c), n) for c, n in counts], 1)

    def _logs(self, loss_total, metric_totals, count, prefix=""):
        logs = {prefix + "loss": loss_total / count}
        for (name, _), (correct, n) in zip(self._metrics, metric_totals):
            logs[prefix + name] = correct / max(n, 1)
        return logs

    # ----- epochs -----------------------------------------------------------------------------
    def _batches(self, x, y, batch_size, shuffle):
        n = _length(x, "x")
        order = None
        if shuffle:
            order = _random.generator().permutation(n)
            if backend.is_gpu_array(x):
                order = to_device(order, "gpu")
        for start in range(0, n, batch_size):
            if order is None:
                idx = slice(start, start + batch_size)
            else:
                idx = order[start:start + batch_size]
            yield x[idx], (None if y is None else y[idx])

    def _run_epoch(self, x, y, batch_size, shuffle, training, progress=None, callbacks=None):
        fused = self._fused_output_layer()
        dtype = self.dtype
        loss_total, metric_totals, seen = 0.0, [(0, 0) for _ in self._metrics], 0

        def read_logs():
            return self._logs(float(loss_total), [(float(c), n) for c, n in metric_totals], max(seen, 1))

        for step, (xb, yb) in enumerate(self._batches(x, y, batch_size, shuffle), start=1):
            xb, yb = self._to_model(xb, dtype), self._to_model(yb)
            step_fn = self._train_batch if training else self._test_batch
            loss, counts = step_fn(xb, yb, fused)
            size = xb.shape[0]
            loss_total = loss_total + loss * size
            metric_totals = [(c0 + c, n0 + n) for (c0, n0), (c, n) in zip(metric_totals, counts)]
            seen += size
            if callbacks is not None and callbacks.needs_batch_logs:
                callbacks.on_train_batch_end(step - 1, {"loss": float(loss)})
            if progress is not None:
                progress.update(step, seen, read_logs)
            if training and self.stop_training:
                break
        return read_logs(), step, seen

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train on arrays ``x`` (N, C, H, W) and ``y``; returns a History callback."""
        self._check_compiled()
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if y is None:
            raise ValueError("fit needs targets y")
        n = _length(x, "x")
        if _length(y, "y") != n:
            raise ValueError(f"x and y have different lengths: {n} and {_length(y, 'y')}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        if validation_split and validation_data is None:  # Keras: validation_data wins
            split_at = int(n * (1.0 - validation_split))
            if split_at == 0 or split_at == n:
                raise ValueError(f"validation_split={validation_split} leaves an empty split of {n} samples")
            x, y, validation_data = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            if _length(validation_data[0], "x_val") != _length(validation_data[1], "y_val"):
                raise ValueError("validation_data x and y have different lengths")
        self._prepare_inputs(x)
        history = callbacks_module.History()
        cbs = callbacks_module.CallbackList([*(callbacks or []), history], self)
        self.stop_training = False
        self.history = history
        steps = -(-_length(x, "x") // batch_size)
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            progress = _Progress(verbose, steps, epoch, epochs)
            logs, step, seen = self._run_epoch(x, y, batch_size, shuffle, True, progress, cbs)
            if validation_data is not None:
                val_logs, _, _ = self._run_epoch(validation_data[0], validation_data[1], batch_size,
                                                 False, False)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            progress.finish(step, seen, logs)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        return history

    def evaluate(self, x, y, batch_size=None, verbose=1, return_dict=False):
        """Loss and metrics over (x, y): a float when there are no metrics, else a list."""
        self._check_compiled()
        batch_size = 32 if batch_size is None else int(batch_size)
        if _length(y, "y") != _length(x, "x"):
            raise ValueError(f"x and y have different lengths: {_length(x, 'x')} and {_length(y, 'y')}")
        self._prepare_inputs(x)
        logs, _, _ = self._run_epoch(x, y, batch_size, False, False)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose=0):
        """Outputs (probabilities for a softmax head) for x, batch by batch; numpy in, numpy out."""
        batch_size = 32 if batch_size is None else int(batch_size)
        self._prepare_inputs(x)
        dtype = self.dtype
        outs = [self._run_forward([self._to_model(xb, dtype)], False)[0]
                for xb, _ in self._batches(x, None, batch_size, False)]
        xp = backend.get_array_module(*outs)
        out = xp.concatenate(outs, axis=0) if len(outs) > 1 else outs[0]
        return out if backend.is_gpu_array(x) else to_device(out, "cpu")

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=_length(x, "x"))

