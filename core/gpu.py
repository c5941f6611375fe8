"""Which GPU is this? Name and compute capability from the CUDA driver, through ctypes.

Engines built by TensorRT (not RTX) run only on the compute capability they were built on, so the
sidecar records it and the runtime compares. ctypes on libcuda needs no cuda-python, torch or
TensorRT, and works on a Jetson (libcuda ships with L4T) as on a desktop.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

# CUdevice_attribute values from cuda.h (stable since CUDA 3).
_CC_MAJOR = 75
_CC_MINOR = 76


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device. compute_capability: "major.minor", e.g. "8.7" (Orin), "9.0" (H100)."""

    index: int
    name: str
    compute_capability: str

    @property
    def sm(self) -> str:
        """"sm87" style, as nvcc and TensorRT-RTX's enum spell it."""
        return "sm" + self.compute_capability.replace(".", "")


def _libcuda():
    for lib in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(lib)
        except OSError:
            continue
    return None


def query_gpu(index: int = 0) -> GpuInfo | None:
    """The CUDA device ``index`` (after CUDA_VISIBLE_DEVICES), or None without a driver or GPU."""
    cuda = _libcuda()
    if cuda is None:
        return None
    try:
        if cuda.cuInit(0) != 0:
            return None
        count = ctypes.c_int(0)
        if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or index >= count.value:
            return None
        dev = ctypes.c_int(0)
        if cuda.cuDeviceGet(ctypes.byref(dev), index) != 0:
            return None
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, 256, dev)
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev)
    except (AttributeError, OSError):  # a stub libcuda without the symbols
        return None
    return GpuInfo(index, name.value.decode(errors="replace").strip(), f"{major.value}.{minor.value}")
