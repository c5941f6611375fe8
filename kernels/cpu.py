"""The compiled CPU decode (``cpu_decode.cpp``): built on first use, loaded with ctypes.

Same results as the NumPy decode (``decode.parse`` on the maps projected by
``decode.aggregate.resize_bilinear(backend="numpy")``), bit for bit (tests/kernels/test_cpu.py),
at the speed of a compiled loop. The library is compiled once per source, compiler and machine
into the per-user cache (``$XDG_CACHE_HOME/higherhrnet_trt/kernels``) with the system C++
compiler (``$CXX``, else g++, else c++); where none is found, :func:`available` is False and
:func:`unavailable_reason` says why in one line (the runtime then decodes in NumPy).

    from higherhrnet_trt.kernels import cpu
    if cpu.available():
        grouped, scores = cpu.decode(heatmaps, tags, cfg, size_wh=(512, 512))
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from collections.abc import Sequence

import numpy as np

from higherhrnet_trt.core.formats import cache_dir as _cache_dir
from higherhrnet_trt.decode import DecodeConfig, parse
from higherhrnet_trt.decode.aggregate import _linear_taps, resize_bilinear

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("cpu_decode.cpp", "common.cuh", "group.cuh", "munkres.cuh", "refine.cuh")
#: -ffp-contract=off: no fused multiply-add, every operation rounded as NumPy rounds it.
BASE_FLAGS = ("-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-pthread")
#: Limits of the compiled decode (larger settings decode in NumPy).
MAX_JOINTS, MAX_TAG_DIM, MAX_PEOPLE = 64, 2, 64

#: One image's people: grouped (P, J, 3 + T) float32 and scores (P,) float32, as decode.parse.
Decoded = tuple[np.ndarray, np.ndarray]
log = logging.getLogger("higherhrnet_trt.kernels")
_lock = threading.Lock()
_state: dict = {}


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def _arch_flags() -> tuple[str, ...]:
    """-march=native on x86-64 only: the library is built on the machine that runs it, and the cache
    key holds the CPU's feature flags, so a shared home on another CPU builds its own. aarch64
    (Jetson) gets the baseline (NEON is part of it), which every gcc accepts."""
    return ("-march=native",) if platform.machine().lower() in ("x86_64", "amd64") else ()


def _cpu_signature() -> bytes:
    try:
        with open("/proc/cpuinfo", "rb") as f:
            keys = (b"flags", b"Features", b"model name")
            lines = [ln for ln in f.read().splitlines() if ln.startswith(keys)]
        return b"\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor().encode()


def cache_dir() -> str:
    return _cache_dir("kernels")


def build_library(cxx: str | None = None) -> str:
    """Compile cpu_decode.cpp into the cache (once per source, compiler, flags and CPU); returns the
    shared library's path. Raises RuntimeError (one line) when no compiler is found or it fails."""
    cxx = cxx or _compiler()
    if not cxx:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    digest = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(KERNEL_DIR, name), "rb") as f:
            digest.update(f.read())
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"C++ compiler {cxx} does not run: {exc}") from None
    arch = _arch_flags()
    digest.update(version + repr((BASE_FLAGS, arch, platform.machine())).encode() + _cpu_signature())
    out = os.path.join(cache_dir(), f"cpu_decode_{digest.hexdigest()[:16]}.so")
    if os.path.isfile(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    src = os.path.join(KERNEL_DIR, "cpu_decode.cpp")
    log.info("compiling the CPU decode (once, into %s)", os.path.dirname(out))
    err = b""
    for flags in ((*BASE_FLAGS, *arch), BASE_FLAGS) if arch else (BASE_FLAGS,):
        try:
            res = subprocess.run([cxx, *flags, "-o", tmp, src], capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeError(f"C++ compiler {cxx} failed to run: {exc}") from None
        if res.returncode == 0:
            os.replace(tmp, out)
            return out
        err = res.stderr
    lines = err.decode(errors="replace").strip().splitlines()
    last = next((ln for ln in lines if "error" in ln), lines[-1] if lines else "(no message)")
    raise RuntimeError(f"{cxx} could not build kernels/cpu_decode.cpp: {last}")


def _load():
    with _lock:
        if "lib" in _state or "error" in _state:
            return _state.get("lib")
        try:
            lib = ctypes.CDLL(build_library())
        except (RuntimeError, OSError) as exc:
            _state["error"] = str(exc).splitlines()[0]
            return None
        f32 = np.ctypeslib.ndpointer(np.float32, flags="C")
        i32 = np.ctypeslib.ndpointer(np.int32, flags="C")
        ci, f64, vp = ctypes.c_int, ctypes.c_double, ctypes.c_void_p
        lib.hhr_cpu_decode.restype = ci
        lib.hhr_cpu_decode.argtypes = ([f32, f32] + [ci] * 7 + [vp] * 8
                                       + [ci, ci, f64, f64, ci, ci, ci, i32, ci, ci, f32, f32, i32, i32, vp])
        _state["lib"] = lib
        return lib


def available() -> bool:
    """True when the compiled decode is built (or builds now) and loads."""
    return _load() is not None


def unavailable_reason() -> str | None:
    """One line saying why the compiled decode is not available, or None when it is."""
    _load()
    return _state.get("error")


def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, ...] | None:
    if in_size == out_size:
        return None
    i0, i1, w0, w1 = _linear_taps(int(in_size), int(out_size))
    return (np.ascontiguousarray(i0, np.int32), np.ascontiguousarray(i1, np.int32),
            np.ascontiguousarray(w0, np.float32), np.ascontiguousarray(w1, np.float32))


def reference_decode(heatmaps: np.ndarray, tags: np.ndarray, cfg: DecodeConfig,
                     size_wh: Sequence[int]) -> Decoded:
    """What the compiled decode computes, in NumPy: heatmaps (J, h, w) and tags (J, h, w, T)
    resized to size_wh (W, H) by resize_bilinear(backend="numpy"), then decode.parse."""
    h = resize_bilinear(heatmaps, size_wh, backend="numpy")
    t = resize_bilinear(tags, size_wh, channels_last=True, backend="numpy")
    return parse(h, t, cfg)


def supports(cfg: DecodeConfig, num_joints: int, tag_dim: int) -> bool:
    """Whether the compiled decode handles these settings (else the NumPy decode does)."""
    return (num_joints <= MAX_JOINTS and 1 <= tag_dim <= MAX_TAG_DIM and cfg.max_people <= MAX_PEOPLE
            and cfg.nms_kernel == 2 * cfg.nms_padding + 1 and cfg.nms_padding >= 0)


def decode_batch(heatmaps: np.ndarray, tags: np.ndarray, cfg: DecodeConfig | None = None,
                 size_wh: Sequence[int] | None = None, threads: int = 0,
                 stage_s: np.ndarray | None = None) -> list[Decoded]:
    """Project and decode N images: heatmaps (N, J, h, w) and tags (N, J, h, w, T) float32 (tags at
    the heatmaps' size; a 4-D array is T = 1) -> one (grouped (P, J, 3 + T), scores (P,)) per image,
    as ``decode.parse`` on the maps resized to ``size_wh`` (W, H) pixels (None: no resize) by
    ``resize_bilinear(backend="numpy")``. threads: 0 = every hardware thread. stage_s: a (3,)
    float64 array that gets the calling thread's CPU seconds in the compiled steps (projection +
    NMS + top-k, grouping, refine): the stages' CPU time with threads=1, for benchmarks.
    Images the compiled code cannot decode (NaN / inf maps, an unsolvable matching, settings past
    its limits) go through the NumPy decode, so the result is the NumPy decode's in every case."""
    cfg = cfg or DecodeConfig()
    if stage_s is not None and not (stage_s.dtype == np.float64 and stage_s.size >= 3
                                    and stage_s.flags.c_contiguous):
        raise ValueError("stage_s must be a contiguous float64 array of 3 values")
    hm = np.ascontiguousarray(heatmaps, dtype=np.float32)
    tg = np.asarray(tags, dtype=np.float32)
    tg = np.ascontiguousarray(tg[..., None] if tg.ndim == 4 else tg)
    if hm.ndim != 4 or tg.ndim != 5 or tg.shape[:4] != hm.shape:
        raise ValueError(f"expected heatmaps (N, J, h, w) and tags (N, J, h, w, T), got {hm.shape} "
                         f"and {tg.shape}")
    N, J, h, w = hm.shape
    T = tg.shape[-1]
    W, H = (w, h) if size_wh is None else (int(size_wh[0]), int(size_wh[1]))
    cfg.check(J)
    lib = _load()

    def numpy_decode(n: int) -> Decoded:
        return reference_decode(hm[n], tg[n], cfg, (W, H))

    if lib is None or not supports(cfg, J, T) or N == 0:
        return [numpy_decode(n) for n in range(N)]
    k = min(cfg.max_people, H * W)
    P = J * k
    people = np.zeros((N, P, J, 3 + T), np.float32)
    scores = np.zeros((N, P), np.float32)
    count = np.zeros(N, np.int32)
    status = np.zeros(N, np.int32)
    ptr = []
    keep = []
    for taps in (_taps(w, W), _taps(h, H)):
        keep.append(taps)
        ptr += [None] * 4 if taps is None else [a.ctypes.data for a in taps]
    order = np.asarray(cfg.joint_order, np.int32)
    flags = (1 if cfg.adjust else 0) | (2 if cfg.refine else 0)
    rc = lib.hhr_cpu_decode(hm, tg, N, J, h, w, T, H, W, *ptr, k, cfg.max_people, cfg.detection_threshold,
                            cfg.tag_threshold, int(cfg.use_detection_val), int(cfg.ignore_too_much),
                            cfg.nms_padding, order, flags, int(threads), people, scores, count, status,
                            None if stage_s is None else stage_s.ctypes.data)
    if rc != 0:
        return [numpy_decode(n) for n in range(N)]
    return [numpy_decode(n) if status[n] else (people[n, :count[n]].copy(), scores[n, :count[n]].copy())
            for n in range(N)]


def decode(heatmaps: np.ndarray, tags: np.ndarray, cfg: DecodeConfig | None = None,
           size_wh: Sequence[int] | None = None, threads: int = 0) -> Decoded:
    """:func:`decode_batch` for one image: heatmaps (J, h, w), tags (J, h, w, T) or (J, h, w)."""
    tg = np.asarray(tags, dtype=np.float32)
    tg = tg[..., None] if tg.ndim == 3 else tg
    return decode_batch(np.asarray(heatmaps, dtype=np.float32)[None], tg[None], cfg, size_wh, threads)[0]
