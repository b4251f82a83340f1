"""pytest plugin (-p emu_plugin): the GPU tests on a CPU, with the emulated kernels.

Puts the NumPy-backed cupy stand-in (csrc/emu/shim) first on the path and
installs build/emu/_C as ``cudacnn._C`` before any test imports cudacnn.
"""
import importlib.util
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "shim"))

_so = HERE.parents[1] / "build" / "emu" / ("_C" + sysconfig.get_config_var("EXT_SUFFIX"))
_spec = importlib.util.spec_from_file_location("cudacnn._C", _so)
_C = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_C)
sys.modules["cudacnn._C"] = _C
