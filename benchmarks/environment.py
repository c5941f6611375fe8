"""What a benchmark ran on: CPU, GPU, driver, CUDA, libraries, Jetson power mode and clocks.

Every probe is optional and cheap: a missing tool, library or GPU gives ``None`` (or a short reason)
and never an exception, and nothing heavy is imported (TensorRT versions come from package
metadata; the GPU from the CUDA driver through ctypes, see ``core/gpu.py``). All values are
JSON-serialisable.
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from typing import Any

from higherhrnet_trt.core.files import atomic_open
from higherhrnet_trt.core.gpu import query_gpu
from higherhrnet_trt.core.lazy import import_cudart as _import_cudart


def import_cudart():
    """cuda-python's runtime module, or None where it is missing."""
    return _import_cudart(required=False)

#: Distribution names that carry a TensorRT flavour (pip wheels; JetPack's apt TensorRT has none).
TENSORRT_DISTS = ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-rtx", "tensorrt-rtx-cu13")


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    """stdout of a command, stripped; None when the tool is missing, fails or hangs."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip().rstrip("\x00")
    except OSError:
        return None


def dist_version(name: str) -> str | None:
    """Installed version of a distribution (no import), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo 'model name'; ARM boards: the device-tree model)."""
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return _read("/proc/device-tree/model") or platform.processor() or platform.machine()


def cpu_info() -> dict[str, Any]:
    """CPU model, logical cores, cores this process may use, load average (1/5/15 min)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"model": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "machine": platform.machine(), "loadavg_1_5_15": load}


def cuda_driver_api_version() -> int | None:
    """cuDriverGetVersion() through ctypes (e.g. 12040 = CUDA 12.4), None without a driver."""
    import ctypes

    for lib in ("libcuda.so.1", "libcuda.so"):
        try:
            cuda = ctypes.CDLL(lib)
        except OSError:
            continue
        version = ctypes.c_int(0)
        try:
            if cuda.cuDriverGetVersion(ctypes.byref(version)) == 0:
                return int(version.value)
        except AttributeError:
            return None
    return None


def cuda_runtime_version() -> str | None:
    """The CUDA runtime cuda-python binds (cudaRuntimeGetVersion), None without cuda-python."""
    cudart = import_cudart()
    if cudart is None:
        return None
    try:
        err, version = cudart.cudaRuntimeGetVersion()
    except Exception:  # a cuda-python without a loadable libcudart
        return None
    if int(err) != 0:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"


def gpu_info() -> dict[str, Any] | None:
    """GPU 0: name, compute capability, driver, CUDA versions; None on a machine without one."""
    gpu = query_gpu(0)
    if gpu is None:
        return None
    driver_api = cuda_driver_api_version()
    info: dict[str, Any] = {
        "name": gpu.name, "compute_capability": gpu.compute_capability,
        "cuda_driver_api": f"{driver_api // 1000}.{(driver_api % 1000) // 10}" if driver_api else None,
        "cuda_runtime": cuda_runtime_version(),
        "driver": None,
    }
    smi = _run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.max.sm,power.limit",
                "--format=csv,noheader", "-i", "0"])
    if smi:
        parts = [p.strip() for p in smi.splitlines()[0].split(",")]
        info["driver"] = parts[0]
        if len(parts) >= 4:
            info["clocks_sm"], info["clocks_max_sm"], info["power_limit"] = parts[1:4]
    else:  # Jetson (no nvidia-smi) and minimal containers
        text = _read("/proc/driver/nvidia/version")
        if text:
            info["driver"] = text.splitlines()[0]
    return info


def _freq_pair(folder: str, lo: str, hi: str) -> tuple[str, str] | None:
    a, b = _read(os.path.join(folder, lo)), _read(os.path.join(folder, hi))
    return (a, b) if a and b else None


def jetson_info() -> dict[str, Any] | None:
    """Jetson power mode (``nvpmodel -q``) and whether clocks are locked; None off a Jetson.

    clocks_locked: True when every CPU core's and the GPU's minimum frequency equals its maximum
    (what ``sudo jetson_clocks`` sets), False when any differs, None when unreadable.
    """
    release = _read("/etc/nv_tegra_release")
    if release is None and shutil.which("nvpmodel") is None:
        return None
    info: dict[str, Any] = {"l4t": release.splitlines()[0] if release else None,
                            "model": _read("/proc/device-tree/model")}
    power = _run(["nvpmodel", "-q"])
    info["power_mode"] = " | ".join(line.strip() for line in power.splitlines() if line.strip()) \
        if power else None
    pairs = []
    for cpu in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        pair = _freq_pair(cpu, "scaling_min_freq", "scaling_max_freq")
        if pair:
            pairs.append(("cpu", pair))
    for dev in glob.glob("/sys/class/devfreq/*"):
        name = os.path.basename(os.path.realpath(dev))
        if any(k in name for k in ("gpu", "ga10b", "gv11b", "gp10b")):
            pair = _freq_pair(dev, "min_freq", "max_freq")
            if pair:
                pairs.append(("gpu", pair))
    info["clocks_locked"] = all(a == b for _, (a, b) in pairs) if pairs else None
    info["clock_ranges"] = [{"unit": kind, "min": a, "max": b} for kind, (a, b) in pairs[:16]]
    return info


def tensorrt_versions() -> dict[str, str]:
    """Installed TensorRT flavours by distribution name (pip wheels only; no import)."""
    out = {}
    for name in TENSORRT_DISTS:
        version = dist_version(name)
        if version:
            out[name] = version
    return out


def collect(backend_name: str | None = None, backend: Any = None) -> dict[str, Any]:
    """The environment record of a benchmark JSON.

    backend_name / backend: the backend benchmarked; adds its library's version (onnxruntime
    version and the providers it runs on; the TensorRT flavour a TensorRT backend reports).
    """
    import numpy as np

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpu": gpu_info(),
        "jetson": jetson_info(),
        "numpy": np.__version__,
        "onnxruntime": dist_version("onnxruntime") or dist_version("onnxruntime-gpu"),
        "tensorrt": tensorrt_versions() or None,
        "torch": dist_version("torch"),
        "higherhrnet_trt": dist_version("higherhrnet-trt"),
    }
    if backend_name is not None:
        info: dict[str, Any] = {"name": backend_name}
        if backend_name == "onnxruntime":
            info["library"] = "onnxruntime " + str(env["onnxruntime"])
            info["providers"] = list(getattr(backend, "providers", []) or [])
            info["threads"] = getattr(backend, "threads", None) or "default (one per core)"
            # the level the session ran at ("auto" disables it for INT8 files)
            info["graph_optimization"] = getattr(backend, "graph_optimization_used", None)
        elif backend_name == "openvino":
            info["library"] = "openvino " + str(dist_version("openvino"))
            info["device"] = getattr(backend, "device", None)
            info["threads"] = getattr(backend, "threads", None) or "default (one per core)"
            # the precision its floating-point layers ran in (bf16 by default on AMX CPUs)
            info["inference_precision"] = getattr(backend, "effective_precision", None)
        flavor = getattr(backend, "flavor", None)
        if flavor is not None and hasattr(flavor, "describe"):  # an engine.flavors.Flavor
            info["tensorrt"] = flavor.describe()
        elif isinstance(flavor, str):  # TensorRTBackend: "auto" (= the sidecar's) or a name
            info["tensorrt_flavor"] = flavor
            info["tensorrt_versions"] = tensorrt_versions() or None
        env["backend"] = info
    return env


def write_json(path: str, data: dict) -> None:
    """Write a benchmark result as indented JSON and say where (the CLIs' common last step)."""
    import json

    with atomic_open(path) as f:  # complete or absent, never half a file
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
