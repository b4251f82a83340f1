"""Callbacks: EarlyStopping (with restore), ReduceLROnPlateau, TerminateOnNaN, CSVLogger,
ModelCheckpoint, LearningRateScheduler."""
import csv

import numpy as np
import pytest

import cudacnn
from cudacnn import Sequential, callbacks, io, optimizers
from cudacnn import layers as L


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def model(lr=0.05):
    cudacnn.set_seed(0)
    m = Sequential([L.Dense(8, activation="relu", input_shape=(4,)), L.Dense(2, activation="softmax")])
    m.compile(optimizers.SGD(lr), "sparse_categorical_crossentropy", ["accuracy"])
    return m


class Scripted(callbacks.Callback):
    """Overwrites the monitored value with a script, to drive monitors deterministically."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


def test_early_stopping_stops_and_restores_the_best_weights():
    x, y = data()
    m = model()
    snapshots = []

    class Snapshot(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(m.get_weights())

    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # Callbacks run in order: the script sets val_loss before EarlyStopping reads it.
    history = m.fit(x, y, epochs=20, verbose=0, validation_split=0.25,
                    callbacks=[Scripted("val_loss", [1.0, 0.5, 0.7, 0.8, 0.9] + [1.0] * 15), Snapshot(), stop])
    assert len(history.history["loss"]) == 4
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1
    for best, now in zip(snapshots[1], m.get_weights()):
        np.testing.assert_array_equal(best, now)


def test_early_stopping_min_delta_and_max_mode():
    x, y = data()
    m = model()
    stop = callbacks.EarlyStopping(monitor="accuracy", patience=1, min_delta=0.1)
    assert stop.mode == "max"
    history = m.fit(x, y, epochs=10, verbose=0, callbacks=[Scripted("accuracy", [0.5, 0.55, 0.58] + [0.6] * 7), stop])
    assert len(history.history["loss"]) == 2


def test_reduce_lr_on_plateau_reduces():
    x, y = data()
    m = model(lr=0.1)
    reduce = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.02)
    m.fit(x, y, epochs=7, verbose=0, callbacks=[Scripted("loss", [1.0] * 7), reduce])
    # plateau after epochs 1-2 -> 0.05, after 3-4 -> 0.025, after 5-6 -> clipped at 0.02
    assert m.optimizer.learning_rate == pytest.approx(0.02)
    m2 = model(lr=0.1)
    m2.fit(x, y, epochs=3, verbose=0,
           callbacks=[Scripted("loss", [1.0, 0.9, 0.8]), callbacks.ReduceLROnPlateau("loss", patience=1)])
    assert m2.optimizer.learning_rate == pytest.approx(0.1)


class LearningRates(callbacks.Callback):
    """The learning rate at each epoch end, after the callbacks before it ran."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(self.model.optimizer.learning_rate)


def test_reduce_lr_on_plateau_cooldown_pauses_the_count():
    """Keras' order: a cooldown epoch counts down and resets wait; no wait counts until it ends."""
    x, y = data()
    m = model(lr=0.1)
    rates = LearningRates()
    reduce = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, cooldown=2)
    m.fit(x, y, epochs=6, verbose=0, callbacks=[Scripted("loss", [1.0] * 6), reduce, rates])
    # epoch 0 sets best; 1: wait 1 -> reduce, cooldown 2; 2: cooldown 1; 3: cooldown 0, wait 1 -> reduce; ...
    assert rates.seen == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.0125])
    without = LearningRates()
    m = model(lr=0.1)
    m.fit(x, y, epochs=4, verbose=0, callbacks=[Scripted("loss", [1.0] * 4),
                                                callbacks.ReduceLROnPlateau("loss", 0.5, patience=1), without])
    assert without.seen == pytest.approx([0.1, 0.05, 0.025, 0.0125])


@pytest.mark.parametrize("values, epochs", [
    ([0.9] * 6, 2),  # never beats the baseline: stops after patience=2 epochs
    ([0.9, 0.8, 0.7, 0.6, 0.55, 0.52], 6),  # improving epochs never stop training (Keras 3)
    ([0.9, 0.4, 0.6, 0.6, 0.6, 0.6], 4),  # beats it at epoch 1, then patience runs from there
    ([0.4, 0.3, 0.2, 0.1, 0.05, 0.01], 6),  # beats it all along: trains to the end
])
def test_early_stopping_baseline(values, epochs):
    x, y = data()
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, baseline=0.5)
    history = model().fit(x, y, epochs=6, verbose=0, validation_split=0.25,
                          callbacks=[Scripted("val_loss", values), stop])
    assert len(history.history["loss"]) == epochs
    assert stop.stopped_epoch == (epochs - 1 if epochs < 6 else 0)


def test_terminate_on_nan_stops_in_the_first_epoch():
    x, y = data()
    x[5] = np.nan
    m = model()
    history = m.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0,
                    callbacks=[callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1
    assert not np.isfinite(history.history["loss"][0])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    m = model()
    m.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert float(rows[3][2]) == pytest.approx(m.history.history["loss"][2])
    m.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[callbacks.CSVLogger(path, append=True)])
    rows = list(csv.reader(path.open()))
    assert len(rows) == 6 and rows[0][0] == "epoch"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_learning_rate_scheduler():
    x, y = data()
    m = model(lr=0.1)
    seen = []

    class Watch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    m.fit(x, y, epochs=3, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 0.1 / (e + 1)), Watch()])
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_learning_rate_scheduler_takes_a_one_argument_schedule():
    """Keras 2 still accepts Keras 1's schedule(epoch); the form is read from the signature."""
    x, y = data()
    seen = []

    class Watch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    def halving(epoch, lr=None, *, unused=0):
        assert lr is not None  # a second positional parameter gets the learning rate
        return lr / 2

    schedulers = [callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
                  callbacks.LearningRateScheduler(halving), callbacks.LearningRateScheduler(lambda *a: a[1]), Watch()]
    model(lr=0.4).fit(x, y, epochs=2, verbose=0, callbacks=schedulers)
    assert seen == pytest.approx([0.05, 0.025])


def test_learning_rate_scheduler_does_not_hide_a_type_error_inside_the_schedule():
    def schedule(epoch):
        return "0.1" + epoch  # a bug of the schedule itself: not retried with other arguments

    x, y = data()
    with pytest.raises(TypeError, match="can only concatenate str"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(schedule)])


@pytest.mark.parametrize("schedule, signature", [(lambda: 0.1, r"\(\)"), (lambda e, lr, extra: lr, r"\(e, lr, extra\)"),
                                                 (lambda e, *, factor: e, r"\(e, \*, factor\)")])
def test_learning_rate_scheduler_refuses_a_schedule_it_cannot_call(schedule, signature):
    with pytest.raises(TypeError, match=r"schedule must take \(epoch\) or \(epoch, lr\), got .* with signature "
                                        + signature):
        callbacks.LearningRateScheduler(schedule)


def test_model_checkpoint_saves_through_io(tmp_path):
    x, y = data()
    m = model()
    pattern = str(tmp_path / "w-{epoch:02d}.safetensors")
    m.fit(x, y, epochs=3, verbose=0, validation_split=0.25,
          callbacks=[Scripted("val_loss", [0.5, 0.6, 0.4]),
                     callbacks.ModelCheckpoint(pattern, save_best_only=True, save_weights_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-01.safetensors", "w-03.safetensors"]
    restored = model()
    io.load_weights(restored, str(tmp_path / "w-03.safetensors"))
    for a, b in zip(restored.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    first = model()
    io.load_weights(first, str(tmp_path / "w-01.safetensors"))  # the weights after epoch 1, not the last
    assert not all(np.array_equal(a, b) for a, b in zip(first.get_weights(), m.get_weights()))


def test_callback_argument_errors():
    with pytest.raises(ValueError):
        callbacks.EarlyStopping(mode="best")
    with pytest.raises(ValueError):
        callbacks.ReduceLROnPlateau(factor=1.5)
    x, y = data()
    with pytest.raises(TypeError, match="Callback"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[lambda: None])


def test_model_checkpoint_saves_whole_models(tmp_path):
    x, y = data()
    m = model()
    path = tmp_path / "last.cudacnn"
    m.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(path), monitor="loss")])
    loaded = io.load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))


@pytest.mark.parametrize("make, message", [
    (lambda: callbacks.EarlyStopping(monitor=None), "monitor must be the name of a log key"),
    (lambda: callbacks.ModelCheckpoint("ck.cudacnn", monitor=3), "monitor must be the name of a log key"),
    (lambda: callbacks.EarlyStopping(patience=-1), "patience must be an integer >= 0, got -1"),
    (lambda: callbacks.EarlyStopping(patience="a"), "patience must be an integer"),
    (lambda: callbacks.EarlyStopping(min_delta=float("nan")), "min_delta must be a finite number"),
    (lambda: callbacks.EarlyStopping(baseline="x"), "baseline must be a finite number"),
    (lambda: callbacks.EarlyStopping(start_from_epoch=-2), "start_from_epoch"),
    (lambda: callbacks.ReduceLROnPlateau(factor=1.0), "factor must be a number in \\(0, 1\\)"),
    (lambda: callbacks.ReduceLROnPlateau(factor="0.5"), "factor must be a number in \\(0, 1\\)"),
    (lambda: callbacks.ReduceLROnPlateau(patience=-1), "patience"),
    (lambda: callbacks.ReduceLROnPlateau(cooldown=-2), "cooldown"),
    (lambda: callbacks.ReduceLROnPlateau(min_lr=-1), "min_lr must be a finite number >= 0"),
    (lambda: callbacks.ReduceLROnPlateau(min_lr=float("nan")), "min_lr"),
    (lambda: callbacks.ModelCheckpoint("ck-{.cudacnn"), "bad filepath pattern"),
    (lambda: callbacks.ModelCheckpoint("ck-{}.cudacnn"), "named fields"),
    (lambda: callbacks.CSVLogger("log.csv", separator=""), "separator must be one character"),
])
def test_callback_constructors_reject_bad_values(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: callbacks.ModelCheckpoint(None), "filepath must be"),
    (lambda: callbacks.CSVLogger(None), "filename must be"),
    (lambda: callbacks.LearningRateScheduler(0.1), "schedule must be a function"),
])
def test_callback_constructors_reject_bad_types(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_checkpoint_pattern_with_a_missing_log_key_names_it(tmp_path):
    x, y = data()
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "ck-{val_loss:.2f}.cudacnn"))
    with pytest.raises(ValueError, match=r"needs the log key\(s\) \['val_loss'\].*available keys: "
                                         r"\['accuracy', 'epoch', 'loss'\].*validation data"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    with pytest.raises(ValueError, match="cannot fill in filepath"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{epoch:s}"))])


def test_checkpoint_creates_its_directory(tmp_path):
    x, y = data()
    path = tmp_path / "new" / "ck-{epoch}.weights.safetensors"
    model().fit(x, y, epochs=1, verbose=0,
                callbacks=[callbacks.ModelCheckpoint(str(path), monitor="loss", save_weights_only=True)])
    assert (tmp_path / "new" / "ck-1.weights.safetensors").is_file()


@pytest.mark.parametrize("where, message", [("dir", "it is a directory"), ("nodir/log.csv", "does not exist")])
def test_csv_logger_checks_its_file_before_training(tmp_path, where, message):
    (tmp_path / "dir").mkdir()
    logger = callbacks.CSVLogger(str(tmp_path / where))
    x, y = data()
    m = model()
    before = m.get_weights()
    with pytest.raises(ValueError, match=message):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    for a, b in zip(before, m.get_weights()):  # raised at on_train_begin: nothing trained
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [float("nan"), "x", None, -0.1])
def test_learning_rate_scheduler_rejects_bad_returns(value):
    x, y = data()
    with pytest.raises(ValueError, match="schedule returned an invalid learning rate"):
        model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda e, lr: value)])


def test_single_callback_instead_of_a_list():
    x, y = data()
    stop = callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)
    assert len(model().fit(x, y, epochs=3, verbose=0, callbacks=stop).history["loss"]) == 2  # as Keras 3
    assert [type(c) for c in callbacks.CallbackList(callbacks.History(), None).callbacks] == [callbacks.History]
    assert callbacks.CallbackList(None, None).callbacks == []
    with pytest.raises(TypeError, match="callbacks must be a list of Callback instances, got 5"):
        callbacks.CallbackList(5, None)


def test_checkpoint_and_csv_logger_refuse_unusable_files_before_training(tmp_path):
    x, y = np.zeros((4, 1, 6, 6), np.float32), np.array([0, 1, 2, 0])
    model = Sequential([L.Conv2D(2, 3, input_shape=(1, 6, 6)), L.Flatten(), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(ValueError, match=r"ModelCheckpoint: cannot write .*ckpt'?: it is a directory"):
        model.fit(x, y, verbose=0, callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "ckpt"), monitor="loss")])
    (tmp_path / "log.csv").write_bytes(b"epoch,loss\n0,\xff\xfe\n")
    with pytest.raises(ValueError, match=r"CSVLogger: cannot append to .*log.csv'?: it is not UTF-8 text"):
        model.fit(x, y, verbose=0, callbacks=[callbacks.CSVLogger(str(tmp_path / "log.csv"), append=True)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # refused before any step


def test_early_stopping_restores_the_best_epoch_even_below_a_baseline_never_beaten():
    """Keras 3 restores the best epoch whether or not it beat the baseline (it kept the last)."""
    x, y = data()

    class Snapshots(callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append(self.model.get_weights())
    snapshots = Snapshots()
    m = model()
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=3, baseline=0.5, restore_best_weights=True)
    m.fit(x, y, epochs=6, verbose=0, validation_split=0.25,
          callbacks=[Scripted("val_loss", [0.9, 0.7, 0.8, 0.85]), snapshots, stop])
    assert stop.stopped_epoch == 2 and stop.best_epoch == 1
    for got, best in zip(m.get_weights(), snapshots.weights[1]):
        np.testing.assert_array_equal(got, best)


def test_callback_hooks_receive_what_keras_passes():
    """A callback defining a batch hook gets it called with the epoch's running loss and metrics;
    params, the test hooks and the end-of-training logs are there too."""
    x, y = data()
    calls = []

    class Recorder(callbacks.Callback):  # no needs_batch_logs: defining the hook is enough
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", logs))

        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("batch_begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            calls.append(("batch_end", batch, sorted(logs)))

        def on_test_end(self, logs=None):
            calls.append(("test_end", sorted(logs)))

        def on_train_end(self, logs=None):
            calls.append(("train_end", sorted(logs)))
    recorder = Recorder()
    m = model()
    m.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    history = m.fit(x, y, batch_size=16, epochs=1, verbose=0, validation_split=0.25, callbacks=[recorder])
    steps = -(-len(x) * 3 // 4 // 16)
    assert recorder.params == {"verbose": 0, "epochs": 1, "steps": steps}
    assert calls[0] == ("train_begin", {})
    assert calls[1:1 + 2 * steps:2] == [("batch_begin", b) for b in range(steps)]
    assert calls[2:2 + 2 * steps:2] == [("batch_end", b, ["accuracy", "loss"]) for b in range(steps)]
    assert calls[-2] == ("test_end", ["accuracy", "loss"])
    assert calls[-1] == ("train_end", sorted(history.history))


def test_learning_rate_callbacks_log_the_rate_and_checkpoints_make_folders_only_when_saving(tmp_path):
    x, y = data()
    m = model(lr=0.1)
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch:02d}" / "m.cudacnn"), monitor="loss",
                                           save_best_only=True)
    history = m.fit(x, y, epochs=3, verbose=0, callbacks=[Scripted("loss", [1.0, 2.0, 0.5]), schedule, checkpoint])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e01", "e03"]  # epoch 2 did not improve


def test_hooks_written_without_logs_and_keras2_batch_hooks_still_run():
    x, y = data()
    events = []

    class Old(callbacks.Callback):  # cudacnn called these without logs before
        def on_train_begin(self):
            events.append("train_begin")

        def on_epoch_begin(self, epoch):
            events.append(("epoch_begin", epoch))

        def on_batch_end(self, batch, logs=None):  # Keras 2's name
            events.append(("batch_end", sorted(logs)))
    model().fit(x, y, batch_size=len(x), epochs=2, verbose=0, callbacks=[Old()])
    assert events == ["train_begin", ("epoch_begin", 0), ("batch_end", ["accuracy", "loss"]),
                      ("epoch_begin", 1), ("batch_end", ["accuracy", "loss"])]


def test_a_begin_only_batch_hook_does_not_read_the_batch_logs(monkeypatch):
    """Reading the running logs waits for the device: not for a hook that never sees them."""
    from cudacnn import training
    x, y = data()
    reads = []
    real_logs = training.TrainingMixin._logs
    monkeypatch.setattr(training.TrainingMixin, "_logs", lambda self, *a: reads.append(1) or real_logs(self, *a))

    begun = []

    class Warmup(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            begun.append(batch)
    model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[Warmup()])
    assert begun == list(range(8)) and len(reads) == 1  # the epoch's logs only
