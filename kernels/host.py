"""The CUDA kernels' arithmetic, compiled as C++ for the CPU (``host_harness.cpp``).

The decode kernels are written as ``__host__ __device__`` functions (``common.cuh``): the GPU
kernels run them in parallel, and this module builds the same code with the system C++ compiler
and runs it serially, so CI checks the kernels' exact float rules against the NumPy decode on
machines without a GPU. It is a test instrument, not a fast path (the serial NMS / refine scans are
slow on big maps).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess

import numpy as np

from higherhrnet_trt.core.errors import CudaError
from higherhrnet_trt.core.formats import cache_dir as _cache_dir
from higherhrnet_trt.decode import DecodeConfig
from higherhrnet_trt.decode.aggregate import _linear_taps


def cache_dir() -> str:
    return _cache_dir("kernels")

KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCES = ("host_harness.cpp", "common.cuh", "munkres.cuh", "group.cuh", "refine.cuh", "resize.cuh",
           "warp.cuh")
_LIB = None


def build_host_library(cxx: str | None = None) -> str:
    """Compile host_harness.cpp (cached by source hash); returns the shared library's path."""
    cxx = cxx or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise CudaError("no C++ compiler (g++) found to build the kernels' host harness")
    digest = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(KERNEL_DIR, name), "rb") as f:
            digest.update(f.read())
    out = os.path.join(cache_dir(), f"host_harness_{digest.hexdigest()[:16]}.so")
    if not os.path.isfile(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + f".{os.getpid()}.tmp"
        # -ffp-contract=off: no fused multiply-add, every operation rounded as NumPy rounds it.
        subprocess.run([cxx, "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", tmp,
                        os.path.join(KERNEL_DIR, "host_harness.cpp")], check=True, capture_output=True)
        os.replace(tmp, out)
    return out


def _lib():
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(build_host_library())
        f32, i32, f64 = (np.ctypeslib.ndpointer(np.float32, flags="C"),
                         np.ctypeslib.ndpointer(np.int32, flags="C"), ctypes.c_double)
        ci = ctypes.c_int
        lib.hhr_decode_host.restype = ci
        lib.hhr_decode_host.argtypes = [f32, f32, ci, ci, ci, ci, ci, ci, f64, f64, ci, ci, ci, i32, ci,
                                        f32, f32]
        u8 = np.ctypeslib.ndpointer(np.uint8, flags="C")
        lib.hhr_warp_host.restype = None
        lib.hhr_warp_host.argtypes = [u8, ci, ci, np.ctypeslib.ndpointer(np.float64, flags="C"), u8, ci, ci]
        f64p = np.ctypeslib.ndpointer(np.float64, flags="C")
        lib.hhr_warp_normalize_host.restype = None
        lib.hhr_warp_normalize_host.argtypes = [u8, ci, ci, f64p, f32, i32, f32, ci, ci]
        lib.hhr_invert_affine_host.restype = None
        lib.hhr_invert_affine_host.argtypes = [f64p, f64p]
        lib.hhr_resize_host.restype = None
        lib.hhr_resize_host.argtypes = [f32, ci, ci, ci, ci, f32, ci, ci] + [i32, i32, f32, f32] * 2
        lib.hhr_sizeof_group_work.restype = ci
        lib.hhr_sizeof_decode_params.restype = ci
        _LIB = lib
    return _LIB


def decode_host(heatmaps: np.ndarray, tags: np.ndarray, cfg=None) -> tuple[np.ndarray, np.ndarray]:
    """decode.parse, computed by the kernels' C++ code. Same inputs and outputs:
    heatmaps (J, H, W) float32, tags (J, H, W, T) float32 -> grouped (P, J, 3 + T), scores (P,)."""
    cfg = cfg or DecodeConfig()
    hm = np.ascontiguousarray(heatmaps, dtype=np.float32)
    tg = np.asarray(tags, dtype=np.float32)
    tg = np.ascontiguousarray(tg[..., None] if tg.ndim == 3 else tg)
    J, H, W = hm.shape
    T = tg.shape[-1]
    k = min(cfg.max_people, H * W)
    P = J * k
    people = np.zeros((P, J, 3 + T), np.float32)
    scores = np.zeros(P, np.float32)
    order = np.asarray(cfg.joint_order, np.int32)
    flags = (1 if cfg.adjust else 0) | (2 if cfg.refine else 0)
    n = _lib().hhr_decode_host(hm, tg, J, H, W, T, k, cfg.max_people, cfg.detection_threshold,
                               cfg.tag_threshold, int(cfg.use_detection_val), int(cfg.ignore_too_much),
                               cfg.nms_padding, order, flags, people, scores)
    if n < 0:
        raise CudaError(f"kernel decode failed with status {-n}")
    return people[:n].copy(), scores[:n].copy()


def warp_host(image_bgr: np.ndarray, forward: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """cv2.warpAffine(image, forward, size, INTER_LINEAR, BORDER_CONSTANT 0), as the kernel does it."""
    img = np.ascontiguousarray(image_bgr, dtype=np.uint8)
    w, h = int(size_wh[0]), int(size_wh[1])
    out = np.zeros((h, w, 3), np.uint8)
    m = np.ascontiguousarray(forward, dtype=np.float64).reshape(6)
    _lib().hhr_warp_host(img, img.shape[0], img.shape[1], m, out, h, w)
    return out


def warp_normalize_host(image_bgr: np.ndarray, forward: np.ndarray, size_wh: tuple[int, int],
                        lut: np.ndarray, plane_channel: tuple[int, int, int] = (2, 1, 0)) -> np.ndarray:
    """The fused pre-processing kernel (preprocess.cu), serially: (h, w, 3) uint8 frame -> (3, h, w)
    float32 network input. forward: (2, 3) image -> input matrix; lut: (256, 3) float32
    (core.preprocess.normalize_lut); plane_channel: input channel of each output plane."""
    img = np.ascontiguousarray(image_bgr, dtype=np.uint8)
    w, h = int(size_wh[0]), int(size_wh[1])
    out = np.empty((3, h, w), np.float32)
    m = np.ascontiguousarray(forward, dtype=np.float64).reshape(6)
    table = np.ascontiguousarray(lut, dtype=np.float32).reshape(256, 3)
    order = np.asarray(plane_channel, np.int32)
    _lib().hhr_warp_normalize_host(img, img.shape[0], img.shape[1], m, table, order, out, h, w)
    return out


def invert_affine_host(forward: np.ndarray) -> np.ndarray:
    """hhr::invert_affine (warp.cuh) of a (2, 3) forward matrix: (6,) float64."""
    m = np.ascontiguousarray(forward, dtype=np.float64).reshape(6)
    out = np.empty(6, np.float64)
    _lib().hhr_invert_affine_host(m, out)
    return out


def resize_taps(h: int, w: int, out_h: int, out_w: int) -> tuple[np.ndarray, ...]:
    """Kernel arguments of the bilinear resize from (h, w) to (out_h, out_w): ix0, ix1, wx0, wx1,
    iy0, iy1, wy0, wy1 as contiguous int32 / float32 arrays (aggregate._linear_taps)."""
    out = []
    for n, m in ((w, out_w), (h, out_h)):
        i0, i1, w0, w1 = _linear_taps(int(n), int(m))
        out += [np.ascontiguousarray(i0, np.int32), np.ascontiguousarray(i1, np.int32),
                np.ascontiguousarray(w0, np.float32), np.ascontiguousarray(w1, np.float32)]
    return tuple(out)


def resize_host(maps: np.ndarray, size_wh: tuple[int, int], channels_last: bool = False) -> np.ndarray:
    """The resize kernel (resize.cu), serially. maps (C, h, w) float32, or (C, h, w, T) with
    channels_last; returns (C, H, W[, T]) float32 with (W, H) = size_wh."""
    x = np.ascontiguousarray(maps, dtype=np.float32)
    if not channels_last:
        x = x[..., None]
    C, h, w, inner = x.shape
    W, H = int(size_wh[0]), int(size_wh[1])
    out = np.empty((C, H, W, inner), np.float32)
    _lib().hhr_resize_host(x, C, h, w, inner, out, H, W, *resize_taps(h, w, H, W))
    return out if channels_last else out[..., 0]


def struct_sizes() -> dict[str, int]:
    """sizeof of the structs the GPU wrapper mirrors, as the C++ compiler lays them out."""
    lib = _lib()
    return {"GroupWork": lib.hhr_sizeof_group_work(), "DecodeParams": lib.hhr_sizeof_decode_params()}
