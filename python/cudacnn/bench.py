"""``cudacnn bench``: time ops and models on every backend against NumPy and PyTorch.

Runs the chosen op cases (``cudacnn.benchcases``) and model cases
(``cudacnn.benchmodels``) on each engine (``cudacnn.benchrun``), prints one
table with the speed-up against our NumPy CPU backend and against PyTorch on
the same device, and writes ``bench.json`` and ``bench.png`` to ``--out``.
Without a GPU the CPU part runs and the report says why the GPU part was skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import benchcases, benchmodels
from .cli import non_negative_float, output_dir_problem, positive_int, thread_count
from .safetensors import atomic_write
from .benchrun import ENGINES, Engine, engine_unavailable_reason, environment, limit_cpu_threads, measure

SCHEMA = "cudacnn-bench/1"
GPU_ENGINES = ("cupy", "cuda", "torch-cuda")


# ----- running ----------------------------------------------------------------------------------
def reference_key(case) -> str:
    """The case without its conv algorithm: PyTorch picks its own, so one PyTorch row serves all three."""
    return f"{case.family}_{case.direction} {case.label}" if hasattr(case, "label") else case.name


def runs_on(case, engine: Engine) -> bool:
    """PyTorch conv rows are measured once per layer (on the 'auto' case)."""
    return not (engine.is_torch and case.algo not in (None, "auto"))


def run_case(case, engine: Engine, *, seed: int = 0, **timing) -> dict:
    """One row: the median time of ``case`` on ``engine``, its rate, or why it did not run."""
    row = {"case": case.name if not engine.is_torch else reference_key(case), "ref": reference_key(case),
           "family": case.family, "direction": case.direction, "algo": None if engine.is_torch else case.algo,
           "engine": engine.name, "device": engine.device, "metric": case.metric, "work": case.work()}
    host = case.inputs(np.random.default_rng(seed))
    try:
        with engine.active():
            inputs = engine.put(host)
            fn = case.torch(inputs) if engine.is_torch else case.ours(inputs)
            result = measure(engine, fn, **timing)
    except benchmodels.MirrorUnsupported as exc:
        return {**row, "skipped": f"no PyTorch mirror: {exc}"}
    except Exception as exc:  # one failing case (out of memory, a missing op) must not end the run
        return {**row, "error": f"{type(exc).__name__}: {exc}"}
    return {**row, "median_s": result.median, "min_s": min(result.times), "repeats": len(result.times),
            "spread": result.spread, "value": case.rate(result.median)}


def add_speedups(rows: list[dict]) -> None:
    """x_numpy: NumPy-backend time / this time; x_torch: PyTorch-on-this-device time / this time (> 1: faster)."""
    timed = [r for r in rows if "median_s" in r]
    by = {(r["engine"], r["ref"], r["algo"]): r["median_s"] for r in timed}
    for r in timed:
        numpy_time = by.get(("numpy", r["ref"], r["algo"])) or by.get(("numpy", r["ref"], "auto")) \
            or by.get(("numpy", r["ref"], None))
        torch_engine = "torch-cuda" if r["device"] == "gpu" else "torch-cpu"
        torch_time = by.get((torch_engine, r["ref"], None))
        r["x_numpy"] = numpy_time / r["median_s"] if numpy_time else None
        r["x_torch"] = torch_time / r["median_s"] if torch_time and r["engine"] != torch_engine else None


def run_all(cases, engines: list[Engine], *, log=print, **timing) -> list[dict]:
    """Every case on every engine, one engine at a time.

    Engine by engine, because alternating NumPy's BLAS threads and PyTorch's
    OpenMP threads on the same cores lets one's spinning idle threads slow the
    other; rows come back ordered case by case.
    """
    ordered = []
    for engine_index, engine in enumerate(engines):
        for case_index, case in enumerate(cases):
            if runs_on(case, engine):
                row = run_case(case, engine, **timing)
                ordered.append(((case_index, engine_index), row))
                log(format_progress(row))
    rows = [row for _, row in sorted(ordered, key=lambda item: item[0])]
    add_speedups(rows)
    return rows


# ----- reporting --------------------------------------------------------------------------------
def _fmt_ratio(x):
    return "" if x is None else f"{x:.2f}x"


def format_progress(row: dict) -> str:
    if "median_s" in row:
        return f"  {row['case']:<62} {row['engine']:<10} {row['median_s'] * 1e3:10.3f} ms"
    return f"  {row['case']:<62} {row['engine']:<10} {row.get('skipped') or row.get('error')}"


def format_table(rows: list[dict]) -> str:
    header = f"{'case':<62} {'engine':<17} {'time ms':>10} {'rate':>10} {'unit':<8} {'x numpy':>8} {'x torch':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        engine = "torch-cuda(cuDNN)" if r["engine"] == "torch-cuda" else r["engine"]
        if "median_s" not in r:
            lines.append(f"{r['case']:<62} {engine:<17} {r.get('skipped') or r.get('error')}")
            continue
        lines.append(f"{r['case']:<62} {engine:<17} {r['median_s'] * 1e3:10.3f} {r['value']:10.1f} "
                     f"{r['metric']:<8} {_fmt_ratio(r.get('x_numpy')):>8} {_fmt_ratio(r.get('x_torch')):>8}")
    lines.append("x numpy: our NumPy CPU backend's time / this time;  x torch: PyTorch on the same device's "
                 "time / this time (> 1 means faster).")
    return "\n".join(lines)


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write((json.dumps(payload, indent=1, default=str) + "\n").encode("utf-8"))


def write_chart(path: Path, rows: list[dict], title: str) -> bool:
    """Horizontal bars: each engine's speed-up over our NumPy backend, per case (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    refs = list(dict.fromkeys(r["case"] for r in rows if r.get("x_numpy") and r["engine"] != "numpy"))
    engines = [e for e in ENGINES if e != "numpy" and any(r["engine"] == e and r.get("x_numpy") for r in rows)]
    if not refs or not engines:
        return False
    height = 0.8 / len(engines)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.35 * len(refs) * max(1, len(engines) / 2)))
    for i, engine in enumerate(engines):
        values = {r["case"]: r["x_numpy"] for r in rows if r["engine"] == engine and r.get("x_numpy")}
        ys = [j + i * height for j, ref in enumerate(refs) if ref in values]
        ax.barh(ys, [values[ref] for ref in refs if ref in values], height, label=engine)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(refs))], refs, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("speed-up over the cudacnn NumPy CPU backend (log scale)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return True


# ----- command line -----------------------------------------------------------------------------
def _split(value: str) -> list[str]:
    """Comma-separated names, each once (a repeat would run and compare a case with itself)."""
    return list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="cudacnn bench", description="Time ops and models on every backend "
                                "against our NumPy backend and PyTorch; writes JSON and a PNG chart.")
    p.add_argument("--ops", default="all",
                   help=f"op families, comma-separated, 'all' (default) or 'none': {','.join(benchcases.FAMILIES)}")
    p.add_argument("--conv-layers", default="lecture",
                   help=f"conv layer sets (default lecture): {','.join(benchcases.CONV_SETS)}")
    p.add_argument("--algos", default="direct,im2col,winograd,auto",
                   help="conv2d algorithms for our backends (default: all four)")
    p.add_argument("--directions", default="fwd,bwd", help="op directions (default: fwd,bwd)")
    p.add_argument("--models", default="seed",
                   help="zoo models, comma-separated, 'seed' (default: the lectures' nets), 'all' or 'none'")
    p.add_argument("--modes", default="train,infer", help="model modes (default: train,infer)")
    p.add_argument("--backends", default="all",
                   help=f"engines, comma-separated or 'all' (default: those available): {','.join(ENGINES)} "
                        f"('torch' means torch-cpu,torch-cuda)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default 64, 8 with --quick)")
    p.add_argument("--scale", choices=("cpu", "gpu"), default="cpu",
                   help="sizes of the memory-bound ops (default cpu); 'gpu' is several times an H100's L2")
    p.add_argument("--quick", action="store_true", help="a smoke run: small batch, few cases, few repeats")
    p.add_argument("--budget", type=non_negative_float, default=None,
                   help="seconds of repeats per row (default 1, 0.2 quick)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="CPU threads for NumPy's BLAS and PyTorch alike (default: each library's own)")
    p.add_argument("--out", default="cudacnn_runs/bench", help="folder for bench.json and bench.png (default cudacnn_runs/bench)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    args = p.parse_args(argv)
    # Every name is checked here, before any case runs, so a typo is not found after an hour of timing.
    if args.ops not in ("all", "none"):
        _check_names(p, "--ops", args.ops, benchcases.FAMILIES, keywords=("all", "none"))
    _check_names(p, "--conv-layers", args.conv_layers, benchcases.CONV_SETS)
    _check_names(p, "--algos", args.algos, benchcases.CONV_ALGOS)
    _check_names(p, "--directions", args.directions, benchcases.DIRECTIONS)
    _check_names(p, "--modes", args.modes, benchmodels.MODES)
    if args.backends != "all":
        _check_names(p, "--backends", args.backends, (*ENGINES, "torch"), keywords=("all",))
    try:
        models = model_names(args.models)
    except ValueError as exc:
        p.error(f"--models: {exc}")
    if args.ops == "none" and not models:
        p.error("nothing to run: --ops none and no --models")
    problem = output_dir_problem(args.out, ("bench.json", "bench.png"))
    if problem:
        p.error(f"--out: {problem}")
    return args


def _check_names(parser, option: str, value: str, valid, keywords=()) -> None:
    """A usage error (exit 2) unless ``value`` is a non-empty comma list of ``valid`` names
    (``keywords`` such as 'all' are accepted by the caller, alone)."""
    names = _split(value)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        choices = ", ".join((*keywords, *valid))
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no names given"
        parser.error(f"{option}: {what}; choose from {choices}")


def gpu_unavailable_reason() -> str | None:
    """Why no GPU engine can run here (None if one can)."""
    reasons = [engine_unavailable_reason(n) for n in GPU_ENGINES]
    return None if None in reasons else reasons[0]


def choose_engines(spec: str) -> tuple[list[str], dict[str, str]]:
    """(engines to run, {engine: why skipped}) for a --backends value."""
    wanted = list(ENGINES) if spec == "all" else []
    if spec != "all":
        for name in _split(spec):
            wanted += ["torch-cpu", "torch-cuda"] if name == "torch" else [name]
        wanted = list(dict.fromkeys(wanted))  # "torch,torch-cpu" names torch-cpu twice
    unknown = [n for n in wanted if n not in ENGINES]
    if unknown:
        raise ValueError(f"unknown backends {unknown}; choose from {', '.join(ENGINES)}")
    skipped = {n: r for n in wanted if (r := engine_unavailable_reason(n)) is not None}
    return [n for n in wanted if n not in skipped], skipped


def build_cases(args, batch: int) -> list:
    families = benchcases.FAMILIES if args.ops == "all" else [] if args.ops == "none" else _split(args.ops)
    algos, conv_sets = _split(args.algos), _split(args.conv_layers)
    cases = benchcases.op_cases(families, conv_sets, batch, algos, _split(args.directions), args.scale)
    if args.quick:  # one conv layer per set and one algorithm keep the smoke run short
        cases = [c for c in cases if c.family != "conv2d" or
                 (c.layer in [benchcases.CONV_SETS[s][0] for s in conv_sets] and c.algo == algos[-1])]
    return cases + benchmodels.model_cases(model_names(args.models), batch, _split(args.modes))


def model_names(spec: str) -> list[str]:
    """Zoo names from a comma list in which 'seed' (the lectures' nets) and 'all' expand; 'none' is empty."""
    from . import zoo

    names = []
    for item in [] if spec == "none" else _split(spec):
        expanded = (benchmodels.seed_model_names() if item == "seed"
                    else list(zoo.names()) if item == "all" else [item])
        names += [n for n in expanded if n not in names]
    unknown = [n for n in names if n not in zoo.names()]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from seed, all, none, {', '.join(zoo.names())}")
    return names


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    batch = args.batch_size or (8 if args.quick else 64)
    names, skipped = choose_engines(args.backends)
    for name, reason in skipped.items():
        print(f"cudacnn bench: skipping {name}: {reason}")
    if not names:  # rather than overwrite bench.json with an empty run
        print(f"cudacnn bench: error: none of the engines asked for ({args.backends}) can run here",
              file=sys.stderr)
        return 2
    gpu_reason = None if any(n in GPU_ENGINES for n in names) else gpu_unavailable_reason()
    if gpu_reason:
        print(f"cudacnn bench: the GPU part is SKIPPED ({gpu_reason}); running the CPU part only.")
    try:
        thread_limit = limit_cpu_threads(args.threads) if args.threads else None  # noqa: F841 (kept alive)
    except RuntimeError as exc:  # threadpoolctl missing
        print(f"cudacnn bench: error: --threads: {exc}", file=sys.stderr)
        return 2
    engines = [Engine(n) for n in names]
    cases = build_cases(args, batch)
    timing = {"min_repeats": 1 if args.quick else 3, "max_repeats": 3 if args.quick else 50,
              "budget_s": args.budget if args.budget is not None else (0.2 if args.quick else 1.0)}
    env = environment()
    print(f"cudacnn bench: {len(cases)} cases x {len(engines)} engines ({', '.join(names)}), batch {batch}, "
          f"torch threads {env.get('torch_num_threads')}, {env['cpu_count']} CPUs")
    rows = run_all(cases, engines, **timing)
    out = Path(args.out)
    payload = {"schema": SCHEMA, "env": env, "batch_size": batch, "quick": args.quick, "scale": args.scale,
               "argv": list(argv if argv is not None else sys.argv[1:]), "timing": timing,
               "skipped_engines": skipped, "rows": rows}
    write_json_atomic(out / "bench.json", payload)
    print()
    print(format_table(rows))
    title = f"cudacnn bench, batch {batch}: {env['gpu']['name'] if env['gpu'] else env['cpu']}"
    charted = not args.no_plot and write_chart(out / "bench.png", rows, title)
    print(f"\nwrote {out / 'bench.json'}" + (f" and {out / 'bench.png'}" if charted else ""))
    if gpu_reason:
        print(f"GPU part skipped: {gpu_reason}")
    return 1 if any("error" in r for r in rows) else 0
