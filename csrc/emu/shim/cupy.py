"""A NumPy-backed stand-in for the slice of CuPy that cudacnn and its GPU tests use.

Arrays are numpy arrays of a subclass whose ``.data.ptr`` is the host address,
which the emulated kernels (build/emu/_C) read and write directly. Events and
streams are inert. Only for running the GPU tests on a CPU (csrc/emu/run_tests.sh).
"""
import numpy as _np
from numpy import *  # noqa: F401,F403  (dtypes and array functions)

EMULATED = True  # tests of what cannot be emulated (CUDA graphs) skip on this


class _Memory:
    def __init__(self, a):
        self.ptr = a.__array_interface__["data"][0]


class ndarray(_np.ndarray):
    @property
    def data(self):
        return _Memory(self)


def _device(a):
    return a.view(ndarray)


def asarray(a, dtype=None):
    """Like cupy.asarray: host input is copied to the "device"."""
    if isinstance(a, ndarray) and dtype in (None, a.dtype):
        return a
    return _device(_np.array(a, dtype=dtype, copy=True))


def ascontiguousarray(a, dtype=None):
    return _device(_np.ascontiguousarray(a, dtype=dtype))


def asnumpy(a):
    return _np.array(a, copy=True).view(_np.ndarray)


def empty(shape, dtype=_np.float32):
    return _device(_np.empty(shape, dtype=dtype))


def zeros(shape, dtype=_np.float32):
    return _device(_np.zeros(shape, dtype=dtype))


def ones(shape, dtype=_np.float32):
    return _device(_np.ones(shape, dtype=dtype))


def zeros_like(a, dtype=None):
    return _device(_np.zeros_like(a, dtype=dtype))


def sqrt(a):
    return _device(_np.sqrt(a))


class _Stream:
    ptr = 0

    def is_capturing(self):
        return False


class _Event:
    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


class _Runtime:
    @staticmethod
    def getDeviceCount():
        return 1

    @staticmethod
    def getDevice():
        return 0

    @staticmethod
    def getDeviceProperties(device):
        return {"l2CacheSize": 50 << 20}  # an H100's


class cuda:  # noqa: N801  (mirrors the cupy.cuda namespace)
    runtime = _Runtime
    Event = _Event

    @staticmethod
    def get_current_stream():
        return _Stream()

    @staticmethod
    def get_elapsed_time(start, end):
        return 1.0
