"""Build cudacnn's kernels and bindings for CPU emulation: build/emu/_C<ext suffix>.

Each csrc/*.cu is rewritten into C++ (launches become cudaemu::launch calls,
extern shared arrays point at the emulated dynamic shared memory) and compiled
with g++ against csrc/emu/cuda_runtime.h. Usage: python csrc/emu/build.py
"""
from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pybind11

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
OUT = ROOT / "build" / "emu"

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)
EXTERN_SHARED = re.compile(r"extern __shared__ (\w+) (\w+)\[\];")


def to_cpp(source: str) -> str:
    source = EXTERN_SHARED.sub(r"\1 *\2 = reinterpret_cast<\1 *>(::cudaemu::dynamic_shared());", source)
    return LAUNCH.sub(r"::cudaemu::launch(\1, \2)(", source)


def compile_one(cpp: Path) -> Path:
    obj = cpp.with_suffix(".o")
    includes = [CSRC / "emu", OUT / "src", pybind11.get_include(), sysconfig.get_paths()["include"]]
    cmd = ["g++", "-std=c++20", "-O2", "-g", "-fPIC", *(f"-I{d}" for d in includes), "-c", str(cpp), "-o", str(obj)]
    subprocess.run(cmd, check=True)
    return obj


def main() -> int:
    src = OUT / "src"
    src.mkdir(parents=True, exist_ok=True)
    for header in [*CSRC.glob("*.cuh"), *CSRC.glob("*.h")]:
        (src / header.name).write_text(to_cpp(header.read_text()))
    units = [src / "bindings.cpp"]
    units[0].write_text((CSRC / "bindings.cpp").read_text())
    for cu in sorted(CSRC.glob("*.cu")):
        unit = src / (cu.stem + ".cpp")
        unit.write_text(to_cpp(cu.read_text()))
        units.append(unit)
    with ThreadPoolExecutor() as pool:
        objects = list(pool.map(compile_one, units))
    target = OUT / ("_C" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["g++", "-shared", "-o", str(target), *map(str, objects)], check=True)
    print(f"built {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
