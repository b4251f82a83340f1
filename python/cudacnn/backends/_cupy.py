"""The ``cupy`` backend: the xp-generic NumPy reference, run on CuPy arrays.

Every function in ``_numpy`` takes its array module from its arguments, so on
cupy arrays it is real GPU code (CuPy elementwise ops and cuBLAS matmuls).
"""
from ._numpy import *  # noqa: F401,F403
