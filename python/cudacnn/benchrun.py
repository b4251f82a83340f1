"""Engines, timing and the environment record shared by every cudacnn benchmark.

An *engine* is one place a case can run: ``numpy`` (our CPU backend),
``cupy`` / ``cuda`` (our GPU backends, forced for the duration of a case),
``torch-cpu`` and ``torch-cuda`` (PyTorch, the outside reference; on the GPU
with cuDNN, FP32 with TF32 off).

Timing: device work is asynchronous, so every timed call is synchronised.
CPU engines are timed with ``time.perf_counter`` around call + sync; GPU
engines with CUDA events recorded around the call on the current stream. A
warm-up call comes first (module load, kernel compilation, cuDNN autotuning,
handle creation stay out of the numbers); the median of the repeats is the
figure reported.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import backend

ENGINES = ("numpy", "cupy", "cuda", "torch-cpu", "torch-cuda")
OURS = ("numpy", "cupy", "cuda")


def _torch():
    try:
        import torch
    except Exception:
        return None
    return torch


def engine_unavailable_reason(name: str) -> str | None:
    """None if the engine can run here, else why not (for skip messages)."""
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose from {ENGINES}")
    if name in OURS:
        return backend.availability()[name]
    torch = _torch()
    if torch is None:
        return "PyTorch is not installed"
    if name == "torch-cuda" and not torch.cuda.is_available():
        return "PyTorch sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def available_engines() -> list[str]:
    return [name for name in ENGINES if engine_unavailable_reason(name) is None]


def configure_torch(torch) -> None:
    """FP32 as FP32 (TF32 off, so cuDNN is compared like for like); cuDNN picks its fastest algorithm.

    The CPU thread count is left as torch found it (by default the core count,
    as for NumPy's BLAS); results record ``torch.get_num_threads()``.
    """
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True


def limit_cpu_threads(n: int):
    """Use ``n`` CPU threads in NumPy's BLAS and in PyTorch alike; returns the BLAS limiter (keep it alive).

    On a machine shared with other work, fewer threads than cores can run much
    faster: a BLAS thread that loses its core stalls the others at each barrier.
    """
    if n <= 0:
        raise ValueError(f"thread count must be positive, got {n}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise RuntimeError("limiting NumPy's BLAS threads needs threadpoolctl (pip install threadpoolctl)") from None
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)
    return threadpool_limits(limits=n)


@dataclass
class Engine:
    name: str
    device: str = field(init=False)

    def __post_init__(self):
        reason = engine_unavailable_reason(self.name)
        if reason is not None:
            raise RuntimeError(f"engine {self.name!r} is not available: {reason}")
        self.device = "gpu" if self.name in ("cupy", "cuda", "torch-cuda") else "cpu"
        if self.is_torch:
            configure_torch(_torch())

    @property
    def is_torch(self) -> bool:
        return self.name.startswith("torch")

    @property
    def label(self) -> str:
        """Row label: PyTorch on the GPU runs cuDNN for conv, pooling and batch norm."""
        return "torch-cuda(cuDNN)" if self.name == "torch-cuda" else self.name

    # ----- data -----------------------------------------------------------------------------
    def put(self, array):
        """A numpy or cupy array (or a dict of them) as this engine's own copy on its device."""
        if isinstance(array, dict):
            return {k: self.put(v) for k, v in array.items()}
        on_gpu = backend.is_gpu_array(array)
        if self.is_torch:
            torch = _torch()
            if on_gpu and self.device == "gpu":
                return torch.from_dlpack(array).clone()  # a copy: in-place updates stay on one side
            host = array.get() if on_gpu else np.ascontiguousarray(array)
            return torch.from_numpy(host).to("cuda" if self.device == "gpu" else "cpu")
        if self.device == "gpu":
            return backend._cupy().array(array, copy=True)
        return array.get() if on_gpu else array.copy()

    def to_host(self, out) -> list[np.ndarray]:
        """The outputs of a call (an array, or a possibly nested tuple/list) as a flat list of numpy arrays."""
        if isinstance(out, (tuple, list)):
            return [a for item in out if item is not None for a in self.to_host(item)]
        if self.is_torch:
            return [out.detach().cpu().numpy()]
        if backend.is_gpu_array(out):
            return [out.get()]
        return [np.asarray(out)]

    # ----- running --------------------------------------------------------------------------
    @contextlib.contextmanager
    def active(self):
        """Force our backend for this engine while a case is set up and timed."""
        if self.is_torch:
            yield
            return
        previous = backend._forced
        backend.set_backend(self.name)
        try:
            yield
        finally:
            backend._forced = previous

    def sync(self) -> None:
        if self.device == "cpu":
            return
        if self.is_torch:
            _torch().cuda.synchronize()
        else:
            backend._cupy().cuda.get_current_stream().synchronize()

    def time_once(self, fn) -> float:
        """Seconds for one call of ``fn``, its device work included."""
        if self.device == "cpu":
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start
        if self.is_torch:
            torch = _torch()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        cp = backend._cupy()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end) / 1e3


@dataclass
class Timing:
    times: list

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much to trust a difference between two medians."""
        return (max(self.times) - min(self.times)) / self.median


def measure(engine: Engine, fn, *, warmup: int = 1, min_repeats: int = 3, max_repeats: int = 50,
            budget_s: float = 1.0) -> Timing:
    """Warm up, then repeat until ``min_repeats`` and ``budget_s`` seconds are both reached (or ``max_repeats``)."""
    for _ in range(warmup):
        fn()
        engine.sync()
    times: list[float] = []
    while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < budget_s):
        times.append(engine.time_once(fn))
    return Timing(times)


# ----- environment ------------------------------------------------------------------------------
def git_commit(repo: Path | None = None) -> str:
    """The commit benchmarked: ``git rev-parse HEAD``, else $CUDACNN_COMMIT, else "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo or Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("CUDACNN_COMMIT", "unknown")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _cuda_version_string(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


def environment() -> dict:
    """Where and when the numbers were taken: CPU, GPU, driver, CUDA, library versions, date, commit."""
    import cudacnn

    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "cudacnn": cudacnn.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        # Other work on the machine skews CPU timings: a load above the core count means shared cores.
        "load_average_1m": os.getloadavg()[0],
        "backends": backend.availability(),
        "gpu": None,
    }
    torch = _torch()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_num_threads"] = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_info
        env["blas_threads"] = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    except ImportError:
        pass
    cp = backend._cupy()
    if cp is not None and backend.gpu_count():
        props = cp.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        env["gpu"] = {
            "name": name.decode() if isinstance(name, bytes) else name,
            "driver": _nvidia_driver(),
            "cuda_driver_api": _cuda_version_string(cp.cuda.runtime.driverGetVersion()),
            "cuda_runtime": _cuda_version_string(cp.cuda.runtime.runtimeGetVersion()),
            "cupy": cp.__version__,
            "l2_bytes": props.get("l2CacheSize"),
            "multiprocessors": props.get("multiProcessorCount"),
        }
        if torch is not None and torch.cuda.is_available():
            env["gpu"]["torch_cuda"] = torch.version.cuda
            env["gpu"]["cudnn"] = torch.backends.cudnn.version()
    return env


def device_slug(env: dict) -> str:
    """A file-name-safe device name: the GPU if there is one, else the CPU."""
    name = env["gpu"]["name"] if env.get("gpu") else f"cpu-{env['cpu']}"
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower())
    return "-".join(part for part in slug.split("-") if part)[:48]
