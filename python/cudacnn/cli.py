"""The ``cudacnn`` command: ``train``, ``info`` and ``bench``.

``cudacnn train`` with no arguments trains the small ``digits_cnn`` on the
embedded 8x8 digits on the best backend available, prints the test accuracy
and saves the model (``cudacnn.load_model`` reads it back).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10")
DEFAULT_MODEL = {"digits": "digits_cnn", "fashion-mnist": "mnist_workshop", "mnist": "mnist_workshop",
                 "cifar10": "cifar10_conv_pool"}
# The digits defaults (with Adam and cosine decay) were measured to reach 0.97-0.98 test
# accuracy over several seeds, in 10-20 s on a busy 2-core CPU.
DEFAULT_EPOCHS = {"digits": 10, "fashion-mnist": 5, "mnist": 5, "cifar10": 10}
DEFAULT_BATCH_SIZE = {"digits": 16, "fashion-mnist": 32, "mnist": 32, "cifar10": 32}
OPTIMIZERS = ("adam", "sgd", "rmsprop")
BACKENDS = ("auto", "numpy", "cupy", "cuda")
MAX_THREADS = 1024


class UsageError(Exception):
    """A mistake on the command line or in the files named there: reported without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cudacnn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="{train,info,bench}")
    commands.required = True

    train = commands.add_parser("train", help="train a CNN on an image data set and save it",
                                description="Train a zoo CNN, report test accuracy and save the model.")
    train.add_argument("--dataset", choices=DATASETS, default="digits",
                       help="data set (default: digits, embedded in the package)")
    train.add_argument("--data", metavar="PATH",
                       help="directory (or .npz) holding the data set's files; default: search "
                            "$CUDACNN_DATA/<dataset>, /usr/share/datasets/fashion-mnist and "
                            "~/.keras/datasets")
    train.add_argument("--model", help="zoo model name (default: digits_cnn for digits, "
                                       "mnist_workshop for (fashion-)mnist, cifar10_conv_pool for cifar10)")
    train.add_argument("--epochs", type=positive_int, help="passes over the training set "
                       f"(default: {', '.join(f'{k} {v}' for k, v in DEFAULT_EPOCHS.items())})")
    train.add_argument("--batch-size", type=positive_int,
                       help="images per step (default: 16 for digits, else 32)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default: adam")
    train.add_argument("--lr", type=positive_float,
                       help="initial learning rate (default: the optimizer's own, e.g. 0.001 for adam)")
    train.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                       help="cosine: decay the learning rate towards 0 over the epochs (default)")
    train.add_argument("--augment", action="store_true",
                       help="put random-augmentation layers in front of the model (training only)")
    train.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="auto: our CUDA kernels, else CuPy, on a GPU if there is one, else NumPy")
    train.add_argument("--out", metavar="DIR",
                       help="where to save the model (default: ./cudacnn_runs/<dataset>-<model>/)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    train.add_argument("--threads", type=thread_count, default=1,
                       help="BLAS threads for the NumPy backend (default: 1; these small matrix "
                            "products run fastest single-threaded, and extra threads thrash a busy CPU)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress")

    commands.add_parser("info", help="say which backends are usable, and why not")
    commands.add_parser("bench", help="benchmarks (see `cudacnn bench --help`)", add_help=False)
    return parser


# Option types: a bad value is an argparse usage error (exit 2) naming the option and the value.
def _int_at_least(text: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise argparse.ArgumentTypeError(f"must be an integer {bounds}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def thread_count(text: str) -> int:
    return _int_at_least(text, 1, MAX_THREADS)


def _float_at_least(text: str, minimum: float, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"must be a finite number {'>' if strict else '>='} {minimum:g}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    return _float_at_least(text, 0.0, strict=True)


def non_negative_float(text: str) -> float:
    return _float_at_least(text, 0.0, strict=False)


def output_dir_problem(directory, files=()) -> str | None:
    """Why ``files`` cannot be written into ``directory`` (created if need be), or None.

    Checked before long work starts, so a bad --out is not found only at the end.
    """
    directory = Path(directory)
    try:
        if directory.exists() and not directory.is_dir():
            return f"{directory} exists and is not a directory"
        existing = directory
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return f"cannot create {directory}: {existing} is not a directory"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"cannot write in {existing}: permission denied"
        for name in files:
            if (directory / name).is_dir():
                return f"cannot write {directory / name}: it is a directory"
    except OSError as exc:  # a name too long for the file system, a loop of links...
        return f"cannot use {directory}: {exc.strerror or exc}"
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # Benchmarks keep their own options; hand them over untouched.
        from . import bench

        return bench.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from .backend import info

        print(info())
        return 0
    try:
        return train(args)
    except UsageError as exc:
        print(f"cudacnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncudacnn train: interrupted before the run was saved; files from an earlier run are kept",
              file=sys.stderr)
        return 130


# ---------------------------------------------------------------------- train
def train(args) -> int:
    from . import zoo
    from .backend import set_backend
    from .random import set_seed

    # Everything checkable is checked before the data set is read and training starts.
    model_name = args.model or DEFAULT_MODEL[args.dataset]
    if model_name not in zoo.names():
        raise UsageError(f"unknown model {model_name!r}; choose one of: {', '.join(zoo.names())}")
    if args.out is not None and not args.out.strip():
        raise UsageError("--out: an empty path; give a directory")
    out_dir = Path(args.out) if args.out else Path("cudacnn_runs") / f"{args.dataset}-{model_name}"
    problem = output_dir_problem(out_dir, ("model.cudacnn", "run.json"))
    if problem:
        raise UsageError(f"--out: {problem}")
    device, backend_name = _choose_device(args.backend)
    (x_train, y_train), (x_test, y_test) = _load_dataset(args.dataset, args.data)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    if num_classes < 2:
        raise UsageError(f"the {args.dataset} labels{f' in {args.data}' if args.data else ''} hold a single "
                         "class (0); a classifier needs at least two")
    set_seed(args.seed)
    model = _build_model(model_name, x_train.shape[1:], num_classes, args.augment)
    epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE[args.dataset]
    optimizer = _optimizer(args.optimizer, args.lr)
    print(f"cudacnn train: {model.name} on {args.dataset} ({len(x_train)} train / {len(x_test)} test images "
          f"of shape {tuple(x_train.shape[1:])}), {epochs} epochs, batch {batch_size}, "
          f"{args.optimizer} (lr {optimizer.learning_rate:g}, {args.lr_schedule}), backend {backend_name}",
          flush=True)

    if device == "gpu":
        from .layers.base import to_device

        model.to("gpu")  # and the data once, rather than batch by batch
        x_train, y_train, x_test, y_test = (to_device(a, "gpu") for a in (x_train, y_train, x_test, y_test))
    if args.backend != "auto":
        set_backend(backend_name)  # every op from here on, now that the arrays live where it expects
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    optimizer_config = optimizer.get_config()  # before the schedule changes the learning rate
    with _blas_threads(args.threads if device == "cpu" else None):
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                            verbose=0 if args.quiet else 1,
                            callbacks=_schedule(args.lr_schedule, optimizer.learning_rate, epochs))
        train_seconds = time.perf_counter() - start
        test = model.evaluate(x_test, y_test, batch_size=max(batch_size, 256), verbose=0, return_dict=True)
    test_loss, test_accuracy = float(test["loss"]), float(test["accuracy"])

    model_path = out_dir / "model.cudacnn"
    images_per_second = epochs * len(x_train) / train_seconds
    _save_run(out_dir, model, {
        "dataset": args.dataset, "model": model_name, "epochs": epochs, "batch_size": batch_size,
        "optimizer": optimizer_config, "lr_schedule": args.lr_schedule, "augment": args.augment,
        "seed": args.seed, "backend": backend_name, "test_loss": test_loss, "test_accuracy": test_accuracy,
        "train_seconds": train_seconds, "images_per_second": images_per_second,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    })
    print(f"test accuracy: {test_accuracy:.4f}  (test loss {test_loss:.4f}, {len(x_test)} images)")
    print(f"training: {train_seconds:.1f} s, {images_per_second:.0f} images/s on {backend_name}")
    print(f"saved model to {model_path}  (cudacnn.load_model reads it back)")
    return 0


def _choose_device(requested: str):
    """Where the model lives ("cpu"/"gpu") and which backend serves it, checked usable."""
    from . import backend as backends

    available = backends.availability()
    if requested == "auto":
        requested = backends.forced_backend()  # e.g. CUDACNN_BACKEND in the environment
        if requested is None:
            if available["cupy"] is not None:
                return "cpu", "numpy"
            return "gpu", "cuda" if available["cuda"] is None else "cupy"
    if requested not in available:
        raise UsageError(f"unknown backend {requested!r}; choose one of {', '.join(available)}")
    if available[requested] is not None:
        raise UsageError(f"backend {requested!r} is not available: {available[requested]}; "
                         "run `cudacnn info` for details")
    return ("cpu" if requested == "numpy" else "gpu"), requested


def _load_dataset(name: str, path):
    from . import datasets

    loaders = {"digits": datasets.load_digits, "fashion-mnist": datasets.load_fashion_mnist,
               "mnist": datasets.load_mnist, "cifar10": datasets.load_cifar10}
    if name == "digits":
        if path is not None:
            raise UsageError("the digits data set is embedded in the package; --data does not apply to it")
        return loaders[name]()
    try:
        data = loaders[name](path)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    (x_train, _), (x_test, _) = data
    for part, images in (("training", x_train), ("test", x_test)):
        if len(images) == 0:
            where = f" in {path}" if path else ""
            raise UsageError(f"the {name} {part} set{where} holds no images")
    return data


def _build_model(name: str, input_shape, num_classes: int, augment: bool):
    from . import zoo

    try:
        model = zoo.get(name, input_shape=tuple(input_shape), num_classes=num_classes)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"model {name!r} does not fit input shape {tuple(input_shape)}: {exc}") from None
    if not augment:
        return model
    from .layers import Input
    from .models import Sequential

    return Sequential([Input(tuple(input_shape)), *_augmentation_layers(input_shape), model],
                      name=f"augmented_{name}")


def _augmentation_layers(input_shape):
    """Small shifts and rotations; horizontal flips only for colour photos
    (a mirrored digit or letter is a different symbol)."""
    from . import layers

    chosen = [layers.RandomTranslation(0.1, 0.1), layers.RandomRotation(0.05)]
    if input_shape[0] == 3:
        chosen.insert(0, layers.RandomFlip("horizontal"))
    return chosen


def _optimizer(name: str, lr):
    from . import optimizers

    classes = {"adam": optimizers.Adam, "sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop}
    return classes[name]() if lr is None else classes[name](learning_rate=lr)


def _schedule(kind: str, initial_lr: float, epochs: int):
    if kind == "constant" or epochs == 1:
        return []
    from .callbacks import LearningRateScheduler

    # Half a cosine from the initial rate towards 0; the last epoch still learns a little.
    return [LearningRateScheduler(lambda epoch, lr: initial_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))]


@contextlib.contextmanager
def _blas_threads(threads):
    """Limit the BLAS thread pool (numpy's OpenBLAS/MKL) while training on the CPU.

    Uses threadpoolctl; without it, OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set
    before starting Python do the same, and we say so.
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if not any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")):
            print(f"note: cannot limit BLAS threads to {threads} without threadpoolctl; on a busy CPU "
                  f"`pip install threadpoolctl` or OPENBLAS_NUM_THREADS={threads} can make this many times faster",
                  file=sys.stderr)
        yield
        return
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _save_run(out_dir: Path, model, summary: dict) -> None:
    """model.cudacnn and run.json, each written atomically: the summary's rename waits for the
    model's, so a failure leaves the earlier pair (or nothing, and no new empty directory)."""
    from .io import atomic_write

    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(out_dir / "run.json") as f:
            f.write(json.dumps(_json_safe(summary), indent=2).encode())
            model.save(out_dir / "model.cudacnn")
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only if still empty
        raise UsageError(f"cannot save the run in {out_dir}: {exc}") from None


def _json_safe(value):
    """Non-finite floats (a diverged loss) as null: NaN is not JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
