"""The lectures' MNIST workshop net on Fashion-MNIST, cudacnn (NumPy CPU) beside PyTorch CPU.

    python benchmarks/fashion_workshop.py          # 5 epochs each, several minutes on 2 cores
    python benchmarks/fashion_workshop.py --seeds 0-4   # the same for 5 seeds: accuracy's spread
    python benchmarks/fashion_workshop.py --sides cudacnn-numpy --batch-size 32 --lr 5e-4 --seeds 0   # other settings
    KERAS_BACKEND=torch python benchmarks/fashion_workshop.py --sides keras --seeds 0-4   # Keras itself

Both sides train the same net (Conv32-pool-Conv64-pool-Dense64-Dropout0.3-Dense10,
``cudacnn.zoo.get("mnist_workshop")``; PyTorch runs a mirror of it that starts
from the very same weights) the same way: RMSprop (Keras defaults: lr 1e-3,
rho 0.9, eps 1e-7; PyTorch's RMSprop adds eps outside the square root where Keras and
cudacnn add it inside, the one difference), sparse categorical cross-entropy, batch 64, the last 10% of
the training set held out for validation (as Keras' ``validation_split``), the
rest shuffled every epoch. Reported per side: test accuracy, the wall time of
the whole fit (validation included) and training images/s = epochs x training
images / fit time. Writes ``benchmarks/results/fashion-workshop-<cpu>-<date>-<commit>.json``.
With ``--seeds`` every seed gives both sides new initial weights (the same on both
sides), a new shuffle and new dropout masks; the file records each run and the
spread of test accuracy per side (``...-seeds.json``).
``--sides keras`` runs the lecture's recipe in Keras 3 itself (``pip install keras``;
any backend, e.g. ``KERAS_BACKEND=torch``), channels-last as the lecture writes it,
with Keras' own initial weights: the reference for what the recipe reaches.

This is a benchmark, not a timed test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import cudacnn
from cudacnn import benchmodels, optimizers, zoo
from cudacnn.bench import write_json_atomic
from cudacnn.benchrun import device_slug, environment, limit_cpu_threads

RESULTS = Path(__file__).resolve().parent / "results"
LR, RHO, EPS = 1e-3, 0.9, 1e-7


def ours_fit(x, y, x_test, y_test, epochs, batch_size, seed=0, lr=LR) -> dict:
    cudacnn.set_seed(seed)
    model = zoo.get("mnist_workshop", input_shape=x.shape[1:])
    model.compile(optimizer=optimizers.RMSprop(learning_rate=lr, rho=RHO, epsilon=EPS),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, validation_split=0.1, verbose=0)
    fit_s = time.perf_counter() - start
    _, test_acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    return {"fit_s": fit_s, "test_accuracy": float(test_acc),
            "val_accuracy": [float(a) for a in history.history.get("val_accuracy", [])],
            "loss": [float(v) for v in history.history.get("loss", [])]}


def torch_fit(x, y, x_test, y_test, epochs, batch_size, seed=0, lr=LR) -> dict:
    """The same net, weights, optimizer, split and batch size in PyTorch (eager, CPU)."""
    import torch
    import torch.nn.functional as F

    cudacnn.set_seed(seed)
    body, ends_in_softmax = benchmodels.torch_mirror(zoo.get("mnist_workshop", input_shape=x.shape[1:]))
    assert ends_in_softmax, "the workshop net ends in softmax; training fuses it into the loss"
    optimizer = torch.optim.RMSprop(body.parameters(), lr=lr, alpha=RHO, eps=EPS)
    split = int(len(x) * 0.9)
    xt, yt = torch.from_numpy(x[:split]), torch.from_numpy(y[:split])
    xv, yv = torch.from_numpy(x[split:]), torch.from_numpy(y[split:])
    generator = torch.Generator().manual_seed(seed)

    def accuracy(xs, ys):
        body.eval()
        with torch.no_grad():
            hits = sum(int((body(xs[i:i + 256]).argmax(1) == ys[i:i + 256]).sum()) for i in range(0, len(xs), 256))
        body.train()
        return hits / len(xs)

    val_acc, losses = [], []
    start = time.perf_counter()
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(split, generator=generator).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(body(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / split)
        val_acc.append(accuracy(xv, yv))
    fit_s = time.perf_counter() - start
    return {"fit_s": fit_s, "test_accuracy": accuracy(torch.from_numpy(x_test), torch.from_numpy(y_test)),
            "val_accuracy": val_acc, "loss": losses}


def keras_fit(x, y, x_test, y_test, epochs, batch_size, seed=0, lr=LR) -> dict:
    """The lecture's recipe in Keras 3: its Sequential net, RMSprop, validation_split=0.1, NHWC input."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(x.shape[2:] + x.shape[1:2]),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=lr, rho=RHO, epsilon=EPS),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    nhwc = (0, 2, 3, 1)
    start = time.perf_counter()
    history = model.fit(x.transpose(nhwc), y, epochs=epochs, batch_size=batch_size, validation_split=0.1, verbose=0)
    fit_s = time.perf_counter() - start
    _, test_acc = model.evaluate(x_test.transpose(nhwc), y_test, batch_size=256, verbose=0)
    return {"fit_s": fit_s, "test_accuracy": float(test_acc),
            "val_accuracy": [float(a) for a in history.history.get("val_accuracy", [])],
            "loss": [float(v) for v in history.history.get("loss", [])]}


SIDES = {"cudacnn-numpy": ours_fit, "torch-cpu": torch_fit, "keras": keras_fit}
DEFAULT_SIDES = ("cudacnn-numpy", "torch-cpu")


def run(x, y, x_test, y_test, epochs=5, batch_size=64, sides=DEFAULT_SIDES, seed=0, lr=LR) -> dict:
    """Train each side from one seed; returns the results record (no file written)."""
    train_images = epochs * int(len(x) * 0.9)
    results = {"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "train_images": int(len(x) * 0.9),
               "test_images": len(x_test), "seed": seed, "load_before": os.getloadavg()[0], "sides": {}}
    for name in sides:
        side = SIDES[name](x, y, x_test, y_test, epochs, batch_size, seed, lr)
        side["images_per_s"] = train_images / side["fit_s"]
        results["sides"][name] = side
        print(f"seed {seed} {name:14s} test accuracy {side['test_accuracy']:.4f}  fit {side['fit_s']:.1f} s  "
              f"{side['images_per_s']:.0f} training images/s", flush=True)
    results["load_after"] = os.getloadavg()[0]
    if {"cudacnn-numpy", "torch-cpu"} <= set(sides):
        results["ours_over_torch_images_per_s"] = (results["sides"]["cudacnn-numpy"]["images_per_s"]
                                                   / results["sides"]["torch-cpu"]["images_per_s"])
    return results


def run_seeds(x, y, x_test, y_test, seeds, epochs=5, batch_size=64, sides=DEFAULT_SIDES, lr=LR) -> dict:
    """run() once per seed; adds each side's test-accuracy spread over the seeds."""
    runs = [run(x, y, x_test, y_test, epochs, batch_size, sides, seed, lr) for seed in seeds]
    spread = {}
    for side in runs[0]["sides"]:
        acc = np.array([r["sides"][side]["test_accuracy"] for r in runs])
        spread[side] = {"test_accuracy": acc.tolist(), "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                        "min": float(acc.min()), "max": float(acc.max()), "runs_at_or_above_0.90": int((acc >= 0.90).sum())}
        print(f"{side:14s} test accuracy over seeds {list(seeds)}: mean {acc.mean():.4f}, "
              f"min {acc.min():.4f}, max {acc.max():.4f}", flush=True)
    return {"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "seeds": list(seeds), "runs": runs, "spread": spread}


def parse_seeds(text: str) -> list[int]:
    """'3' -> [3]; '0-4' -> [0, 1, 2, 3, 4]; '1,5,9' -> [1, 5, 9]."""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return seeds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=LR,
                   help=f"RMSprop learning rate (default {LR}, Keras' default; the lecture names none)")
    p.add_argument("--data", default=None, help="Fashion-MNIST directory (default: cudacnn's search path)")
    p.add_argument("--seeds", type=parse_seeds, default=None,
                   help="several runs, e.g. 0-4 or 1,5,9: records the spread of test accuracy")
    p.add_argument("--sides", default=",".join(DEFAULT_SIDES),
                   help=f"comma list of {', '.join(SIDES)} (default: {','.join(DEFAULT_SIDES)})")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for NumPy's BLAS and PyTorch alike (default: each library's own)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    sides = tuple(args.sides.split(","))
    unknown = set(sides) - set(SIDES)
    if unknown:
        p.error(f"unknown sides {sorted(unknown)}; choose from {', '.join(SIDES)}")
    thread_limit = limit_cpu_threads(args.threads) if args.threads else None  # noqa: F841 (kept alive)

    (x, y), (x_test, y_test) = cudacnn.datasets.load_fashion_mnist(args.data)
    env = environment()
    print(f"fashion_workshop: {len(x)} train / {len(x_test)} test images, {args.epochs} epochs, batch "
          f"{args.batch_size}; {env['cpu']} ({env['cpu_count']} CPUs), torch threads "
          f"{env.get('torch_num_threads')}", flush=True)
    stem = f"fashion-workshop-{device_slug(env)}-{env['date'][:10]}-{env['commit'][:8]}-b{args.batch_size}"
    if args.lr != LR:
        stem += f"-lr{args.lr:g}"
    if sides != DEFAULT_SIDES:
        stem += "-" + "-".join(sides)
    if args.seeds:
        results = run_seeds(x, y, x_test, y_test, args.seeds, args.epochs, args.batch_size, sides, args.lr)
        payload = {"schema": "cudacnn-fashion-seeds/1", "env": env, **results}
        write_json_atomic(Path(args.out) / f"{stem}-seeds.json", payload)
        print(f"wrote {Path(args.out) / f'{stem}-seeds.json'}")
        return 0
    results = run(x, y, x_test, y_test, args.epochs, args.batch_size, sides, lr=args.lr)
    payload = {"schema": "cudacnn-fashion-workshop/1", "env": env, **results}
    path = Path(args.out) / f"{stem}.json"
    write_json_atomic(path, payload)
    if "ours_over_torch_images_per_s" in results:
        print(f"cudacnn / PyTorch training throughput: {results['ours_over_torch_images_per_s']:.2f}x")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
