"""Our CUDA kernels against PyTorch/cuDNN (FP32, TF32 off) and a device-to-device copy, in one run.

Run on a GPU machine, after ``pip install --no-build-isolation .``:

    python benchmarks/gpu_kernels.py            # about 2-3 minutes on an H100
    python benchmarks/gpu_kernels.py --quick    # a smoke run: batch 8, lecture layers only
    python benchmarks/gpu_kernels.py --quick --cpu   # the script's own check, without a GPU

Measures, each with CUDA events after a warm-up call, median of repeats:

* conv2d forward and backward on VGG-16's and ResNet-18's 3x3 layers and the
  lectures' nets' layers (batch 64), for our ``direct``, ``im2col`` and
  ``auto`` algorithms and for cuDNN: GFLOP/s and the ratio to cuDNN;
* pooling, batch norm, softmax-CE at sizes several times the L2: GB/s (each
  input read once, each output written once) against the bandwidth of a
  measured device-to-device copy (bytes read + written);
* every output is compared with PyTorch's (relative L2 error).

Writes ``benchmarks/results/<device>-<date>-<commit>.json`` (and a copy under
$OUT when that is set) and prints a compact table last. The commit comes from
``git rev-parse HEAD`` or, on a copy without .git, from $CUDACNN_COMMIT.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from cudacnn import benchcases
from cudacnn.bench import reference_key, write_json_atomic
from cudacnn.benchrun import Engine, device_slug, engine_unavailable_reason, environment, measure

SCHEMA = "cudacnn-gpu-kernels/1"
RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = 1e-4  # float32 GEMM-based ops against cuDNN FP32: errors land near 1e-6


def copy_bandwidth(xp, engine, nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """GB/s of a device-to-device copy of ``nbytes``, counting bytes read plus bytes written."""
    src = xp.random.default_rng(1).standard_normal(nbytes // 4, dtype=xp.float32)
    dst = xp.empty_like(src)
    timing = measure(engine, lambda: xp.copyto(dst, src), warmup=2, min_repeats=repeats, max_repeats=repeats)
    return 2 * nbytes / timing.median / 1e9


def relative_error(xp, ours, reference) -> float:
    """max over outputs of ||ours - ref|| / ||ref||, computed on the device in float64."""
    if len(ours) != len(reference):
        return float("inf")
    worst = 0.0
    for a, b in zip(ours, reference):
        a, b = xp.asarray(a).astype(xp.float64), xp.asarray(b).astype(xp.float64)
        if a.shape != b.shape:
            return float("inf")
        denom = float(xp.linalg.norm(b.ravel())) or 1.0
        worst = max(worst, float(xp.linalg.norm((a - b).ravel())) / denom)
    return worst


def flat_outputs(out) -> list:
    if isinstance(out, (tuple, list)):
        return [a for item in out if item is not None for a in flat_outputs(item)]
    return [out]


def run_group(xp, torch, cases, engines, torch_engine, timing) -> list[dict]:
    """One layer/op in one direction: cuDNN first, then each of our algorithms, all on the same inputs."""
    inputs = cases[0].inputs(xp.random.default_rng(0))
    rows = []
    base = {"ref": reference_key(cases[0]), "family": cases[0].family, "direction": cases[0].direction,
            "metric": cases[0].metric, "work": cases[0].work()}
    t_inputs = torch_engine.put(inputs)
    fn = cases[0].torch(t_inputs)
    reference = [xp.from_dlpack(t.detach().contiguous()) for t in flat_outputs(fn())]
    torch_time = measure(torch_engine, fn, **timing).median
    rows.append({**base, "case": base["ref"], "engine": torch_engine.label, "algo": None,
                 "median_s": torch_time, "value": cases[0].rate(torch_time)})
    del fn, t_inputs
    for case in cases:
        for engine in engines:
            row = {**base, "case": case.name, "engine": engine.name, "algo": case.algo}
            try:
                with engine.active():
                    fn = case.ours(engine.put(inputs))
                    first = time.perf_counter()
                    out = fn()
                    engine.sync()
                    first = time.perf_counter() - first
                    err = relative_error(xp, flat_outputs(out), reference)
                    del out
                    # A call slower than a second is timed once more, warm, so one slow kernel cannot eat the run.
                    slow = {"warmup": 0, "min_repeats": 1, "max_repeats": 1} if first > 1.0 else {}
                    median = measure(engine, fn, **{**timing, **slow}).median
                rows.append({**row, "median_s": median, "value": case.rate(median), "rel_err": err,
                             "x_cudnn": torch_time / median})
            except Exception as exc:  # report and go on: one failing kernel must not hide the rest
                rows.append({**row, "error": f"{type(exc).__name__}: {exc}"})
            finally:
                fn = None
    del reference, inputs
    if xp is not np:
        xp.get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()
    return rows


def format_table(rows, copy_gbps) -> str:
    lines = [f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write)",
             f"{'case':<58} {'engine':<17} {'ms':>9} {'rate':>9} {'unit':<7} {'x cuDNN':>8} {'x copy':>7} {'rel err':>8}"]
    for r in rows:
        if "error" in r or "skipped" in r:
            lines.append(f"{r['case']:<58} {r['engine']:<17} {r.get('error') or r.get('skipped')}")
            continue
        x_cudnn = f"{r['x_cudnn']:.2f}" if "x_cudnn" in r else ""
        x_copy = f"{r['value'] / copy_gbps:.2f}" if r["metric"] == "GB/s" else ""
        err = f"{r['rel_err']:.1e}" + ("" if r["rel_err"] < TOLERANCE else " BAD") if "rel_err" in r else ""
        lines.append(f"{r['case']:<58} {r['engine']:<17} {r['median_s'] * 1e3:9.3f} {r['value']:9.1f} "
                     f"{r['metric']:<7} {x_cudnn:>8} {x_copy:>7} {err:>8}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batch 8, lecture layers, few repeats")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--conv-layers", default="lecture,resnet18,vgg16")
    p.add_argument("--ops", default=",".join(benchcases.FAMILIES), help="op families to run")
    p.add_argument("--with-cupy", action="store_true", help="also time the CuPy reference backend")
    p.add_argument("--max-seconds", type=float, default=200.0,
                   help="stop starting new cases after this long (the rest are listed as skipped)")
    p.add_argument("--cpu", action="store_true",
                   help="check this script without a GPU: our numpy backend against PyTorch CPU")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    ours_name, torch_name = ("numpy", "torch-cpu") if args.cpu else ("cuda", "torch-cuda")
    for name in (ours_name, torch_name):
        reason = engine_unavailable_reason(name)
        if reason is not None:
            print(f"gpu_kernels: cannot run: {name} is unavailable: {reason}")
            return 2
    import torch

    xp = np if args.cpu else __import__("cupy")
    started = time.perf_counter()
    env = environment()
    where = env["gpu"] or {"name": env["cpu"], "driver": None, "cuda_runtime": None}
    print(f"gpu_kernels: {where['name']}, driver {where['driver']}, CUDA {where['cuda_runtime']}, "
          f"cuDNN {where.get('cudnn')}, commit {env['commit'][:12]}", flush=True)
    batch = 8 if args.quick else args.batch
    conv_sets = ["lecture"] if args.quick else args.conv_layers.split(",")
    cases = benchcases.op_cases(args.ops.split(","), conv_sets, batch, scale="cpu" if args.quick else "gpu")
    timing = {"warmup": 1, "min_repeats": 3, "max_repeats": 5 if args.quick else 30,
              "budget_s": 0.05 if args.quick else 0.3}
    engines = [Engine(ours_name)] + ([Engine("cupy")] if args.with_cupy and not args.cpu else [])
    torch_engine = Engine(torch_name)
    copy_gbps = copy_bandwidth(xp, engines[0], nbytes=(1 << 24) if args.cpu else (1 << 30))
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s", flush=True)

    groups: OrderedDict[str, list] = OrderedDict()
    # Memory-bound ops and linear first, then conv from the smallest layer set to VGG-16: if the
    # time budget runs out, what is left unmeasured is the largest layers' repeats.
    for case in sorted(cases, key=lambda c: c.family == "conv2d"):
        groups.setdefault(reference_key(case), []).append(case)
    rows = []
    for key, group in groups.items():
        if time.perf_counter() - started > args.max_seconds:
            rows.append({"case": key, "engine": "-", "skipped": f"time budget of {args.max_seconds:.0f} s spent"})
            continue
        try:
            new = run_group(xp, torch, group, engines, torch_engine, timing)
        except Exception as exc:  # e.g. out of memory in the reference itself
            new = [{"case": key, "engine": torch_engine.label, "error": f"{type(exc).__name__}: {exc}"}]
        rows += new
        for r in new:
            status = f"{r['median_s'] * 1e3:.3f} ms" if "median_s" in r else r.get("error") or r.get("skipped")
            print(f"  {r['case']:<58} {r['engine']:<17} {status}", flush=True)

    env["torch"] = torch.__version__
    payload = {"schema": SCHEMA, "env": env, "batch_size": batch, "quick": args.quick, "timing": timing,
               "copy_gbps": copy_gbps, "tolerance": TOLERANCE, "tf32": False,
               "elapsed_s": time.perf_counter() - started, "rows": rows}
    stem = f"kernels-{device_slug(env)}-{env['date'][:10]}-{env['commit'][:8]}" + ("-quick" if args.quick else "")
    path = Path(args.out) / f"{stem}.json"
    write_json_atomic(path, payload)
    if os.environ.get("OUT"):
        write_json_atomic(Path(os.environ["OUT"]) / path.name, payload)
    print()
    print(format_table(rows, copy_gbps))
    print(f"wrote {path} in {payload['elapsed_s']:.0f} s")
    bad = [r for r in rows if "error" in r or r.get("rel_err", 0) >= TOLERANCE]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
