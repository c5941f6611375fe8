"""Compile the CUDA kernels: NVRTC through cuda-python at run time (cached), or nvcc ahead of time.

NVRTC must match the CUDA driver that will load the result: PTX/CUBIN from CUDA 13's NVRTC (PTX ISA
9.x) does not load on JetPack 6's CUDA 12.x driver, and NVRTC 13 no longer knows sm_72 (Xavier). So
the runtime compiles with the NVRTC of the installed CUDA, and CI compiles every kernel with NVRTC 12
and NVRTC 13 (``nvidia-cuda-nvrtc-cu12`` / ``nvidia-cuda-nvrtc`` wheels). cuda-python loads the
first libnvrtc it finds; :func:`preload_nvrtc` picks one explicitly (call it before any NVRTC use in
the process: the choice is per process).

    python -m higherhrnet_trt.kernels.compile --arch sm_87 sm_90            # NVRTC, into the cache
    python -m higherhrnet_trt.kernels.compile --nvcc --arch sm_87 -o build/  # nvcc, ahead of time
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from higherhrnet_trt.core.errors import CudaError
from higherhrnet_trt.core.formats import cache_dir as _cache_dir


def cache_dir() -> str:
    return _cache_dir("kernels")

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
#: Kernel translation units (each includes the .cuh headers it needs).
KERNELS = ("decode.cu", "preprocess.cu", "resize.cu")
HEADERS = ("common.cuh", "munkres.cuh", "group.cuh", "refine.cuh", "resize.cuh", "warp.cuh")
#: Jetson Orin (8.7) and desktop / data-centre GPUs from Turing on. sm_72 (Xavier) needs NVRTC 12.
TARGET_ARCHS = ("sm_75", "sm_86", "sm_87", "sm_89", "sm_90", "sm_100", "sm_120")
#: No FMA contraction: the kernels must round every operation as the NumPy decode does.
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false", "-default-device")

NO_NVRTC = ("NVRTC (the CUDA runtime compiler) is not installed: pip install 'cuda-python' plus "
            "'nvidia-cuda-nvrtc' (CUDA 13) or 'nvidia-cuda-nvrtc-cu12' (CUDA 12, JetPack 6), or "
            "install the CUDA toolkit")


@dataclass(frozen=True)
class Compiled:
    """One kernel file compiled for one architecture."""

    kernel: str
    arch: str  # "sm_87"
    nvrtc_version: tuple[int, int]
    ptx: bytes
    cubin: bytes
    log: str = ""


def read_sources() -> dict[str, bytes]:
    """name -> bytes of every kernel and header file."""
    out = {}
    for name in KERNELS + HEADERS:
        with open(os.path.join(KERNEL_DIR, name), "rb") as f:
            out[name] = f.read()
    return out


def nvrtc_library_path(major: int) -> str | None:
    """libnvrtc.so.<major> from the NVIDIA pip wheels, or None."""
    import importlib.util

    pkg = {12: "nvidia.cuda_nvrtc", 13: "nvidia.cu13"}.get(major)
    patterns = []
    if pkg:
        try:
            spec = importlib.util.find_spec(pkg)
        except ModuleNotFoundError:
            spec = None
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                patterns.append(os.path.join(loc, "lib", f"libnvrtc.so.{major}*"))
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            patterns.append(os.path.join(root, "lib64", f"libnvrtc.so.{major}*"))
    for pattern in patterns:
        hits = sorted(p for p in glob.glob(pattern) if "alt" not in os.path.basename(p))
        if hits:
            return hits[0]
    return None


def preload_nvrtc(major: int) -> str:
    """Load libnvrtc.so.<major> into this process so cuda-python uses it. Returns its path."""
    path = nvrtc_library_path(major)
    if path is None:
        raise CudaError(f"NVRTC {major} not found: pip install "
                           + ("nvidia-cuda-nvrtc-cu12" if major == 12 else "nvidia-cuda-nvrtc"))
    # RTLD_LOCAL: cuda-python finds it as already loaded, and its symbols stay out of the global
    # namespace other libraries resolve against.
    ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    return path


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        try:
            from cuda import nvrtc  # cuda-python < 12.6
        except ImportError:
            raise CudaError(NO_NVRTC) from None
    return nvrtc


def _check(nvrtc, result, what: str):
    err, *values = result
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CudaError(f"NVRTC {what} failed: {err}")
    return values[0] if len(values) == 1 else tuple(values)


def nvrtc_version() -> tuple[int, int]:
    nvrtc = _nvrtc()
    try:
        return tuple(_check(nvrtc, nvrtc.nvrtcVersion(), "version"))
    except Exception as e:  # DynamicLibNotFoundError when no libnvrtc is installed
        if type(e).__name__ == "DynamicLibNotFoundError":
            raise CudaError(NO_NVRTC) from None
        raise


def supported_archs() -> list[str]:
    nvrtc = _nvrtc()
    return [f"sm_{a}" for a in _check(nvrtc, nvrtc.nvrtcGetSupportedArchs(), "supported archs")]


def cuda_include_dirs() -> list[str]:
    """Include folders for cuda_fp16.h and friends (the nvidia-cuda-runtime wheel, or CUDA_HOME)."""
    import importlib.util

    dirs = []
    for pkg in ("nvidia.cu13", "nvidia.cuda_runtime"):
        try:
            spec = importlib.util.find_spec(pkg)
        except ModuleNotFoundError:
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec else []:
            if os.path.isfile(os.path.join(loc, "include", "cuda_fp16.h")):
                dirs.append(os.path.join(loc, "include"))
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and os.path.isfile(os.path.join(root, "include", "cuda_fp16.h")):
            dirs.append(os.path.join(root, "include"))
    return dirs


def compile_kernel(kernel: str, arch: str, defines: dict[str, int] | None = None,
                   use_cache: bool = True) -> Compiled:
    """Compile ``kernel`` (a name in KERNELS) for ``arch`` ("sm_87") with NVRTC: PTX and CUBIN.

    Cached on disk by (sources, arch, NVRTC version, defines). Raises RuntimeError with NVRTC's
    log on a compile error.
    """
    nvrtc = _nvrtc()
    version = nvrtc_version()
    sources = read_sources()
    defines = dict(defines or {})
    key = hashlib.sha256()
    for name in sorted(sources):
        key.update(name.encode() + sources[name])
    key.update(f"{kernel}|{arch}|{version}|{sorted(defines.items())}|{NVRTC_OPTIONS}".encode())
    stem = os.path.join(cache_dir(), f"{os.path.splitext(kernel)[0]}_{arch}_nvrtc{version[0]}{version[1]}_"
                        f"{key.hexdigest()[:16]}")
    if use_cache and os.path.isfile(stem + ".cubin") and os.path.isfile(stem + ".ptx"):
        with open(stem + ".ptx", "rb") as f, open(stem + ".cubin", "rb") as g:
            return Compiled(kernel, arch, version, f.read(), g.read(), "cached")

    headers = [n for n in sources if n.endswith(".cuh")]
    prog = _check(nvrtc, nvrtc.nvrtcCreateProgram(sources[kernel], kernel.encode(), len(headers),
                                                  [sources[h] for h in headers],
                                                  [h.encode() for h in headers]), "create program")
    try:
        opts = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in NVRTC_OPTIONS]
        opts += [f"-D{k}={v}".encode() for k, v in defines.items()]
        opts += [f"-I{d}".encode() for d in cuda_include_dirs()]
        err, = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        size = _check(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "log size")
        # Mutable buffers: NVRTC writes into them. (b" " * n is the interpreter's cached b" " when
        # n == 1, the usual empty log: writing NUL into it broke every b" " in the process, which
        # made torch.load fail later in the same process.)
        log = bytearray(size)
        nvrtc.nvrtcGetProgramLog(prog, log)
        log_text = bytes(log).decode(errors="replace").rstrip("\0 \n")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CudaError(f"{kernel} does not compile for {arch} with NVRTC "
                               f"{version[0]}.{version[1]}:\n{log_text}")
        ptx_buf = bytearray(_check(nvrtc, nvrtc.nvrtcGetPTXSize(prog), "PTX size"))
        _check(nvrtc, nvrtc.nvrtcGetPTX(prog, ptx_buf), "PTX")
        cubin_buf = bytearray(_check(nvrtc, nvrtc.nvrtcGetCUBINSize(prog), "CUBIN size"))
        _check(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin_buf), "CUBIN")
        ptx, cubin = bytes(ptx_buf), bytes(cubin_buf)
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    os.makedirs(cache_dir(), exist_ok=True)
    for ext, data in ((".ptx", ptx), (".cubin", cubin)):
        tmp = f"{stem}{ext}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, stem + ext)
    return Compiled(kernel, arch, version, ptx, cubin, log_text)


def compile_all(archs=TARGET_ARCHS, use_cache: bool = True) -> list[Compiled]:
    """Every kernel for every architecture; raises on the first compile error."""
    return [compile_kernel(k, a, use_cache=use_cache) for a in archs for k in KERNELS]


def compile_nvcc(arch: str, out_dir: str, nvcc: str | None = None) -> list[str]:
    """Ahead-of-time build with nvcc: ``<kernel>_<arch>.cubin`` (and .ptx) per kernel in out_dir."""
    nvcc = nvcc or shutil.which("nvcc")
    if not nvcc:
        raise CudaError("nvcc not found: install the CUDA toolkit, or use the NVRTC path (default)")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for kernel in KERNELS:
        stem = os.path.join(out_dir, f"{os.path.splitext(kernel)[0]}_{arch}")
        for kind in ("cubin", "ptx"):
            target = arch if kind == "cubin" else arch.replace("sm_", "compute_")
            subprocess.run([nvcc, f"-arch={target}", "--fmad=false", "-std=c++17", f"-{kind}",
                            os.path.join(KERNEL_DIR, kernel), "-o", f"{stem}.{kind}"], check=True)
            written.append(f"{stem}.{kind}")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.kernels.compile",
                                 description="Compile the decode kernels for GPU architectures.")
    ap.add_argument("--arch", nargs="+", default=list(TARGET_ARCHS),
                    help="targets, e.g. sm_87 (Jetson Orin) sm_90; default: all supported targets")
    ap.add_argument("--nvrtc", type=int, choices=(12, 13),
                    help="NVRTC major version to load (pip wheels); default: the first found")
    ap.add_argument("--nvcc", action="store_true", help="compile ahead of time with nvcc instead")
    ap.add_argument("-o", "--output", default="build/kernels", help="output folder for --nvcc")
    ap.add_argument("--no-cache", action="store_true", help="recompile even when cached")
    args = ap.parse_args(argv)
    try:
        if args.nvcc:
            for arch in args.arch:
                for path in compile_nvcc(arch, args.output):
                    print(path)
            return 0
        if args.nvrtc:
            print(f"using {preload_nvrtc(args.nvrtc)}")
        major, minor = nvrtc_version()
        print(f"NVRTC {major}.{minor}; supports {' '.join(supported_archs())}")
        for c in compile_all(args.arch, use_cache=not args.no_cache):
            print(f"{c.kernel:<15} {c.arch:<7} PTX {len(c.ptx):>7} B  CUBIN {len(c.cubin):>7} B"
                  + ("  (cached)" if c.log == "cached" else ""))
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
