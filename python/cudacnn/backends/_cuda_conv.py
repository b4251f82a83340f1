"""conv2d on our kernels: the direct kernel, im2col + our SGEMM (the forward's im2col is
implicit), or Winograd F(2x2, 3x3) on the same SGEMM (3x3, stride 1, one group; forward and
data gradient).

``algo`` chooses per call ("direct" | "im2col" | "winograd" | "auto"); the environment
variable ``CUDACNN_CONV_ALGO`` overrides it for every call. An algorithm that does not
fit a geometry or pass gives way to one that does (a debug log line says so). "auto"
times the algorithms that fit once per geometry and pass (forward, backward data,
backward weight) with CUDA events, like ``cudnn.benchmark``, and remembers the fastest
(on large layers the direct backward kernels are not even timed).
Every algorithm is deterministic (no atomics), so for a fixed algorithm two
runs agree bit for bit; pin the algorithm for bitwise reproducibility across
processes, since "auto" may choose differently when timings are close. While
a stream is being captured into a CUDA graph nothing is timed: the cached
choice, else im2col, is used.
"""
from __future__ import annotations

import os
from functools import lru_cache

import cupy as cp

from . import _cuda_common as common

ALGOS = ("direct", "im2col", "winograd")
ENV_ALGO = "CUDACNN_CONV_ALGO"
# Column matrices of one chunk of images stay under 64 Mi floats (256 MB).
COL_BUDGET = 64 * 2**20
# Without a timing (e.g. during graph capture) im2col + SGEMM is the safer guess.
DEFAULT_ALGO = "im2col"
# "auto" times the direct backward kernels only on layers up to this many multiply-adds.
DIRECT_BACKWARD_MAX_MACS = 2**30

_chosen: dict[tuple, str] = {}  # (pass, geometry) -> fastest algorithm


class _Conv:
    """Geometry of one call: the _C shape, the cache key and the im2col chunk.

    Built once per geometry (``_geometry``): a training step reuses its layers' shapes.
    """

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        N, C, H, W = x_shape
        K, _, R, S = w_shape
        (sh, sw), (dh, dw) = stride, dilation
        pt, pb, pl, pr = padding
        self.P = (H + pt + pb - dh * (R - 1) - 1) // sh + 1
        self.Q = (W + pl + pr - dw * (S - 1) - 1) // sw + 1
        self.N, self.K, self.groups = N, K, groups
        self.macs = N * K * (C // groups) * R * S * self.P * self.Q
        self.y_shape = (N, K, self.P, self.Q)
        self.key = (tuple(x_shape), tuple(w_shape), tuple(stride), tuple(padding), tuple(dilation), groups)
        self.shape = common.ext().Conv2dShape(
            N=N, C=C, H=H, W=W, K=K, R=R, S=S, P=self.P, Q=self.Q, stride_h=sh, stride_w=sw,
            pad_top=pt, pad_bottom=pb, pad_left=pl, pad_right=pr, dil_h=dh, dil_w=dw, groups=groups)
        pointwise = R == S == 1 and sh == sw == 1 and not any(padding)
        per_image = 0 if pointwise else C * R * S * self.P * self.Q
        max_chunk = min(N, 65535 // groups)
        if per_image > common.MAX_ELEMENTS:
            self.chunk = None  # one image's column matrix is beyond 32-bit indexing
        else:
            self.chunk = max_chunk if per_image == 0 else max(1, min(max_chunk, COL_BUDGET // per_image))
        # Winograd: 16 transformed floats per 2x2 output tile and input or output channel.
        self.winograd_chunk = {
            pass_name: _winograd_chunk(N, C, K, out_h, out_w)
            for pass_name, (out_h, out_w) in (("forward", (self.P, self.Q)), ("backward_data", (H, W)))}
        self._candidates = {}

    def candidates(self, pass_name):
        if pass_name not in self._candidates:
            self._candidates[pass_name] = self._fitting_algos(pass_name)
        return self._candidates[pass_name]

    def _fitting_algos(self, pass_name):
        C = common.ext()
        algos = []
        forward = pass_name == "forward"
        if not forward or C.conv2d_direct_supported(self.shape):
            algos.append("direct")
        # Only the data gradient of a strided convolution stores column matrices.
        if pass_name != "backward_data" or self.chunk is not None:
            algos.append("im2col")
        if (self.winograd_chunk.get(pass_name) is not None
                and C.conv2d_winograd_supported(self.shape, getattr(C.ConvPass, pass_name))):
            algos.append("winograd")
        return algos

    def workspace(self, floats):
        return (common.empty((floats,)) if floats > 0 else None), floats


@lru_cache(maxsize=512)
def _geometry(x_shape, w_shape, stride, padding, dilation, groups) -> _Conv:
    return _Conv(x_shape, w_shape, stride, padding, dilation, groups)


def _winograd_chunk(N, C, K, out_h, out_w):
    """Images per Winograd chunk within COL_BUDGET, or None if one image's tiles exceed 32-bit indexing."""
    tiles = ((out_h + 1) // 2) * ((out_w + 1) // 2)
    if 16 * max(C, K) * tiles > common.MAX_ELEMENTS:
        return None
    return max(1, min(N, COL_BUDGET // (16 * (C + K) * tiles)))


def _run_forward(conv, algo, y, x, w, b, relu):
    C = common.ext()
    if algo == "winograd":
        chunk = conv.winograd_chunk["forward"]
        ws, size = conv.workspace(C.conv2d_winograd_workspace(conv.shape, chunk, C.ConvPass.forward))
        C.conv2d_winograd_forward(common.ptr(y), common.ptr(x), common.ptr(w), common.ptr(b), relu, common.ptr(ws),
                                  size, chunk, conv.shape, common.stream())
        return
    if algo == "direct":
        C.conv2d_direct_forward(common.ptr(y), common.ptr(x), common.ptr(w), common.ptr(b), relu, conv.shape,
                                common.stream())
        return
    chunk = conv.chunk or 1  # unused by the forward, which stores no column matrix
    ws, size = conv.workspace(C.conv2d_im2col_workspace(conv.shape, chunk, C.ConvPass.forward))
    C.conv2d_im2col_forward(common.ptr(y), common.ptr(x), common.ptr(w), common.ptr(b), relu, common.ptr(ws), size,
                            chunk, conv.shape, common.stream())


def _run_backward_data(conv, algo, dx, dy, w):
    C = common.ext()
    if algo == "winograd":
        chunk = conv.winograd_chunk["backward_data"]
        ws, size = conv.workspace(C.conv2d_winograd_workspace(conv.shape, chunk, C.ConvPass.backward_data))
        C.conv2d_winograd_backward_data(common.ptr(dx), common.ptr(dy), common.ptr(w), common.ptr(ws), size, chunk,
                                        conv.shape, common.stream())
        return
    if algo == "direct":
        ws, size = conv.workspace(C.conv2d_direct_backward_data_workspace(conv.shape))
        C.conv2d_direct_backward_data(common.ptr(dx), common.ptr(dy), common.ptr(w), common.ptr(ws), size, conv.shape,
                                      common.stream())
        return
    ws, size = conv.workspace(C.conv2d_im2col_workspace(conv.shape, conv.chunk, C.ConvPass.backward_data))
    C.conv2d_im2col_backward_data(common.ptr(dx), common.ptr(dy), common.ptr(w), common.ptr(ws), size, conv.chunk,
                                  conv.shape, common.stream())


def _run_backward_weight(conv, algo, dw, dy, x):
    C = common.ext()
    if algo == "direct":
        ws, size = conv.workspace(C.conv2d_direct_backward_weight_workspace(conv.shape))
        C.conv2d_direct_backward_weight(common.ptr(dw), common.ptr(dy), common.ptr(x), common.ptr(ws), size,
                                        conv.shape, common.stream())
        return
    chunk = conv.chunk or 1  # unused: no column matrix is stored
    ws, size = conv.workspace(C.conv2d_im2col_workspace(conv.shape, chunk, C.ConvPass.backward_weight))
    C.conv2d_im2col_backward_weight(common.ptr(dw), common.ptr(dy), common.ptr(x), common.ptr(ws), size, chunk,
                                    conv.shape, common.stream())


def _capturing() -> bool:
    try:
        return cp.cuda.get_current_stream().is_capturing()
    except Exception:  # older CuPy without the query: assume not capturing
        return False


def _time_ms(run) -> float:
    run()  # warm-up: lazy module loading, caches
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    run()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end)


def choose_algo(conv, pass_name, requested, run) -> str:
    """The algorithm for this pass; `run(algo)` executes the pass (used to time "auto")."""
    forced = os.environ.get(ENV_ALGO) or requested
    if forced not in ("auto",) + ALGOS:
        raise ValueError(f"{ENV_ALGO} must be one of 'auto', 'direct', 'im2col', 'winograd', got {forced!r}")
    key = (pass_name,) + conv.key
    if forced == "auto" and key in _chosen:
        return _chosen[key]
    candidates = conv.candidates(pass_name)
    if not candidates:
        return None
    if forced != "auto":
        if forced in candidates:
            return forced
        fallback = DEFAULT_ALGO if DEFAULT_ALGO in candidates else candidates[0]
        common.log.debug("cuda backend: conv2d %s: algo %r does not fit geometry %s, using %r",
                         pass_name, forced, conv.key, fallback)
        return fallback
    if pass_name != "forward" and conv.macs > DIRECT_BACKWARD_MAX_MACS:
        # The direct backward kernels (a gather, per-filter-plane reductions) lose
        # to the GEMMs on large layers by far; timing them would cost seconds.
        candidates = [a for a in candidates if a != "direct"] or candidates
    if len(candidates) == 1:
        return candidates[0]
    if _capturing():
        return DEFAULT_ALGO if DEFAULT_ALGO in candidates else candidates[0]
    timings = {algo: _time_ms(lambda: run(algo)) for algo in candidates}
    best = min(timings, key=timings.get)
    common.log.debug("cuda backend: conv2d %s autotune %s: %s -> %s", pass_name, conv.key,
                     {a: round(t, 4) for a, t in timings.items()}, best)
    _chosen[key] = best
    return best


def conv2d(x, w, b, stride, padding, dilation, groups, algo="auto", activation=None):
    reason = common.unsupported(x, w, b)
    conv = None if reason else _geometry(tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups)
    if conv is not None and conv.N * conv.K * conv.P * conv.Q > common.MAX_ELEMENTS:
        reason = "an output beyond 2**31-1 elements"
    if reason:
        return common.fallback("conv2d", reason).conv2d(x, w, b, stride, padding, dilation, groups, algo, activation)
    x, w, b = common.f32(x), common.f32(w), common.f32(b)
    y = common.empty(conv.y_shape)
    relu = activation == "relu"
    chosen = choose_algo(conv, "forward", algo, lambda a: _run_forward(conv, a, y, x, w, b, relu))
    if chosen is None:
        return common.fallback("conv2d", f"no kernel fits geometry {conv.key}").conv2d(
            x, w, b, stride, padding, dilation, groups, algo, activation)
    _run_forward(conv, chosen, y, x, w, b, relu)
    return y


def conv2d_backward(dy, x, w, stride, padding, dilation, groups, algo="auto", need_dx=True):
    reason = common.unsupported(dy, x, w)
    if reason:
        return common.fallback("conv2d_backward", reason).conv2d_backward(
            dy, x, w, stride, padding, dilation, groups, algo, need_dx=need_dx)
    dy, x, w = common.f32(dy), common.f32(x), common.f32(w)
    conv = _geometry(tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups)
    C = common.ext()
    db = common.empty((conv.K,))
    C.channel_sum(common.ptr(db), common.ptr(dy), conv.N, conv.K, conv.P * conv.Q, common.stream())
    dw = common.empty(w.shape)
    chosen = choose_algo(conv, "backward_weight", algo, lambda a: _run_backward_weight(conv, a, dw, dy, x))
    _run_backward_weight(conv, chosen, dw, dy, x)
    dx = None
    if need_dx:
        dx = common.empty(x.shape)
        chosen = choose_algo(conv, "backward_data", algo, lambda a: _run_backward_data(conv, a, dx, dy, w))
        _run_backward_data(conv, chosen, dx, dy, w)
    return dx, dw, db
