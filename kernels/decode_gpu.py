"""The decode on the GPU: the kernels of decode.cu, loaded through cuda-python's driver API.

    from higherhrnet_trt.kernels.decode_gpu import GpuDecoder
    dec = GpuDecoder(num_joints=17, height=256, width=256, tag_dim=2)   # maps at input size
    people = dec.decode(heatmaps, tags)     # device arrays (CuPy, torch, pycuda, Numba) or NumPy
    grouped, scores = people[0]             # as decode.parse: (P, J, 3 + T), (P,)

Device inputs are taken without copies from anything exposing ``__cuda_array_interface__`` (CuPy,
torch CUDA tensors, pycuda ``GPUArray``, Numba; checked: C-contiguous float32 of the decoder's
shape) or a raw pointer (int, unchecked); NumPy arrays are uploaded. ``stream`` is a CUDA stream
handle (int, or an object with ``.handle`` / ``.ptr`` / ``.cuda_stream`` as pycuda, CuPy and torch
streams have). Device and page-locked host buffers are allocated once per decoder for
``max_batch`` images; per call only the people cross to the host: one int per image, then each
image's P x J x (3 + T) people and scores, on the caller's stream. The decoder's (primary) context
is pushed for each call, so any thread may call it.

Needs a GPU and cuda-python; compiled by NVRTC for this GPU's architecture (kernels.compile, cached;
a GPU newer than the NVRTC gets PTX of the newest arch below it, which the driver compiles).
If a map has more NMS peaks above threshold than the kernel's buffer (2048), or Munkres reports an
unsolvable matrix, that image is decoded by the NumPy decoder instead and a warning says so.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from higherhrnet_trt.core.cuda import NO_DRIVER
from higherhrnet_trt.core.cuda import check as _check
from higherhrnet_trt.core.errors import CudaError
from higherhrnet_trt.core.gpu import query_gpu
from higherhrnet_trt.core.keypoints import COCO, CROWDPOSE
from higherhrnet_trt.decode import DecodeConfig, parse

from .compile import compile_kernel, nvrtc_version, supported_archs

log = logging.getLogger("higherhrnet_trt")

MAX_N = 32  # HHR_MAX_N in common.cuh
MAX_T = 2  # HHR_MAX_T


class DecodeParams(ctypes.Structure):
    """Mirror of hhr::DecodeParams (common.cuh); passed by value to the kernels."""

    _fields_ = [("num_joints", ctypes.c_int), ("k", ctypes.c_int), ("tag_dim", ctypes.c_int),
                ("height", ctypes.c_int), ("width", ctypes.c_int), ("max_people", ctypes.c_int),
                ("detection_threshold", ctypes.c_double), ("tag_threshold", ctypes.c_double),
                ("use_detection_val", ctypes.c_int), ("ignore_too_much", ctypes.c_int),
                ("nms_padding", ctypes.c_int), ("max_out_people", ctypes.c_int)]


#: sizeof(hhr::GroupWork): MunkresWork (C, star, prime, covers, path) + cost + dist + assign + mean.
GROUP_WORK_BYTES = (8 * MAX_N * MAX_N + 2 * MAX_N * MAX_N + 2 * MAX_N + 2 * 4 * (2 * MAX_N + 2)
                    + 2 * 8 * MAX_N * MAX_N + 4 * MAX_N + 4 * MAX_N * MAX_T)
GROUP_WORK_BYTES = (GROUP_WORK_BYTES + 7) // 8 * 8


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver  # cuda-python < 12.6
        except ImportError:
            raise CudaError("the GPU decode needs cuda-python: pip install cuda-python") from None
    return driver


def device_array(obj, shape: tuple[int, ...], name: str, kind: str = "f4",
                 alt_shapes: tuple[tuple[int, ...], ...] = ()) -> int | None:
    """Device pointer of ``obj`` after checking it is a C-contiguous array of ``shape``.

    obj: an int (raw device pointer, taken as is: the caller vouches for dtype and layout), anything
    with ``__cuda_array_interface__`` (CuPy, torch CUDA tensors, pycuda GPUArray, Numba), or host
    data (returns None: the caller uploads it). kind: the dtype as the interface spells it without
    the byte order ("f4" float32, "u1" uint8); alt_shapes: other shapes accepted with the same
    memory layout (e.g. tags (N, J, H, W) for T = 1). Raises ValueError on a wrong dtype, shape or
    layout: the kernels read raw memory, so a float16 or strided tensor would give garbage silently.
    """
    if isinstance(obj, int):
        return obj
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is None:
        return None
    typestr, got = str(cai.get("typestr", "")), tuple(int(v) for v in cai.get("shape", ()))
    if typestr[1:] != kind or typestr[:1] not in "<|=":
        raise ValueError(f"{name} must be {np.dtype(kind)} on the device, got typestr {typestr!r} "
                         "(convert first, e.g. .float() / .astype(numpy.float32))")
    if got != tuple(shape) and got not in alt_shapes:
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {got}")
    strides = cai.get("strides")
    if strides is not None:
        step = int(kind[1:])
        for n, stride in zip(reversed(got), reversed(tuple(strides))):
            if n > 1 and int(stride) != step:
                raise ValueError(f"{name} must be C-contiguous (.contiguous() / cupy.ascontiguousarray)")
            step *= n
    return int(cai["data"][0])


def choose_target(compute_capability: str, supported: list[str]) -> tuple[str, str]:
    """(arch, "cubin" | "ptx") to build for a GPU of ``compute_capability`` ("8.7") with an NVRTC
    that supports ``supported`` (["sm_75", ...]): this GPU's own CUBIN when NVRTC knows the arch,
    else PTX of the newest supported arch below it (the driver compiles it for the GPU). Raises
    RuntimeError when NVRTC knows no arch at or below the GPU's (e.g. sm_72 with NVRTC 13)."""
    major, minor = (int(v) for v in compute_capability.split("."))
    own = f"sm_{major}{minor}"
    if own in supported:
        return own, "cubin"

    def cc(arch: str) -> int:
        return int(arch.split("_")[1].rstrip("afh"))

    lower = [a for a in supported if cc(a) <= major * 10 + minor and a[3:].isdigit()]
    if not lower:
        raise CudaError(f"this NVRTC cannot compile for {own} (it supports {' '.join(supported)}): "
                           "install the NVRTC of your CUDA, e.g. pip install nvidia-cuda-nvrtc-cu12 on "
                           "JetPack 5/6, and select it with kernels.compile.preload_nvrtc(12)")
    return max(lower, key=cc), "ptx"


def load_module(drv, kernel: str, compute_capability: str):
    """Compile ``kernel`` (kernels.compile, cached) for this GPU and load it: CUmodule.

    A load failure names the NVRTC and driver versions: CUBIN/PTX from a newer NVRTC (e.g. CUDA 13,
    PTX ISA 9.x) does not load on an older driver (JetPack 6's CUDA 12.x)."""
    arch, kind = choose_target(compute_capability, supported_archs())
    compiled = compile_kernel(kernel, arch)
    image = compiled.cubin if kind == "cubin" else compiled.ptx + b"\0"
    err, module = drv.cuModuleLoadData(image)
    if int(err) != 0:
        driver_version = drv.cuDriverGetVersion()[1]
        major, minor = nvrtc_version()
        raise CudaError(f"cannot load {kernel} ({kind} for {arch}, NVRTC {major}.{minor}) on this driver "
                           f"(CUDA {driver_version // 1000}.{driver_version % 1000 // 10}): {err}; "
                           "use the NVRTC of the driver's CUDA version (kernels.compile --nvrtc 12)")
    return module


def stream_handle(stream) -> int:
    if stream is None:
        return 0
    for attr in ("handle", "ptr", "cuda_stream"):
        value = getattr(stream, attr, None)
        if value is not None:
            return int(value)
    return int(stream)


class GpuDecoder:
    """Fixed-size GPU decode: maps of (J, height, width) with tag_dim channels, up to max_batch images."""

    def __init__(self, num_joints: int, height: int, width: int, tag_dim: int = 2,
                 cfg: DecodeConfig | None = None, max_batch: int = 1, device: int = 0) -> None:
        self.cfg = cfg or DecodeConfig.for_keypoints(_keypoints_for(num_joints))
        self.cfg.check(num_joints)
        if self.cfg.max_people > MAX_N or tag_dim > MAX_T or num_joints > 32:
            raise ValueError(f"kernels handle top-k <= {MAX_N}, tag_dim <= {MAX_T}, J <= 32")
        gpu = query_gpu(device)
        if gpu is None:
            raise CudaError(NO_DRIVER)
        drv = self.drv = _driver()
        _check(drv.cuInit(0), "cuInit")
        dev = _check(drv.cuDeviceGet(device), "cuDeviceGet")
        self.ctx = _check(drv.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
        self._device = dev
        _check(drv.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        self.module = load_module(drv, "decode.cu", gpu.compute_capability)
        self.fn = {name: _check(drv.cuModuleGetFunction(self.module, name.encode()), name)
                   for name in ("hhr_nms_topk", "hhr_group", "hhr_refine")}
        J, k, T, N = num_joints, min(self.cfg.max_people, height * width), tag_dim, max_batch
        self.shape = (J, height, width, T)
        self.max_batch = N
        self.P = J * k
        self.params = DecodeParams(J, k, T, height, width, self.cfg.max_people, self.cfg.detection_threshold,
                                   self.cfg.tag_threshold, int(self.cfg.use_detection_val),
                                   int(self.cfg.ignore_too_much), self.cfg.nms_padding, self.P)
        sizes = {
            "heatmaps": N * J * height * width * 4, "tags": N * J * height * width * T * 4,
            "cand_xy": N * J * k * 2 * 4, "cand_val": N * J * k * 4, "cand_tag": N * J * k * T * 4,
            "cand_count": N * J * 4, "status": N * 4, "joint_order": J * 4,
            "work": N * GROUP_WORK_BYTES, "people": N * self.P * J * (3 + T) * 4, "keys": N * self.P * 4,
            "tag_list": N * self.P * (J + 1) * T * 4, "tag_count": N * self.P * 4, "num_people": N * 4,
            "scores": N * self.P * 4,
        }
        self.buf = {name: int(_check(drv.cuMemAlloc(size), f"cuMemAlloc {name}"))
                    for name, size in sizes.items()}
        order = np.asarray(self.cfg.joint_order, np.int32)
        _check(drv.cuMemcpyHtoD(self.buf["joint_order"], order.ctypes.data, order.nbytes), "joint order")
        # Page-locked host buffers for what comes back (counts, status, people, scores): the copies
        # run on the caller's stream, one synchronisation per call, nothing allocated per call.
        row = J * (3 + T)
        self._host_ptr = []
        self._counts = self._pinned(N, np.int32)
        self._status = self._pinned(N, np.int32)
        self._people = self._pinned(N * self.P * row, np.float32).reshape(N, self.P, J, 3 + T)
        self._scores = self._pinned(N * self.P, np.float32).reshape(N, self.P)

    def _pinned(self, count: int, dtype) -> np.ndarray:
        """A page-locked host array of ``count`` items (freed by close())."""
        nbytes = count * np.dtype(dtype).itemsize
        ptr = int(_check(self.drv.cuMemHostAlloc(nbytes, 0), "cuMemHostAlloc"))
        self._host_ptr.append(ptr)
        return np.frombuffer((ctypes.c_char * nbytes).from_address(ptr), dtype=dtype, count=count)

    # -- launching ---------------------------------------------------------------------------------
    def _launch(self, name: str, grid, block, args, stream: int) -> None:
        holders = []
        for a in args:
            holders.append(a if isinstance(a, ctypes.Structure) else ctypes.c_uint64(a))
        ptrs = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
        _check(self.drv.cuLaunchKernel(self.fn[name], *grid, *block, 0, stream, ctypes.addressof(ptrs), 0),
               f"launch {name}")

    def decode(self, heatmaps, tags, batch: int | None = None,
               stream=None) -> list[tuple[np.ndarray, np.ndarray]]:
        """heatmaps (N, J, H, W) float32, tags (N, J, H, W, T) float32, on the device or the host.
        Returns per image (grouped (P, J, 3 + T), scores (P,)) as decode.parse."""
        _check(self.drv.cuCtxPushCurrent(self.ctx), "cuCtxPushCurrent")  # callable from any thread
        try:
            return self._decode(heatmaps, tags, batch, stream)
        finally:
            self.drv.cuCtxPopCurrent()

    def _decode(self, heatmaps, tags, batch, stream) -> list[tuple[np.ndarray, np.ndarray]]:
        J, H, W, T = self.shape
        s = stream_handle(stream)
        n = batch or (int(heatmaps.shape[0]) if hasattr(heatmaps, "shape") else 1)
        if n > self.max_batch:
            raise ValueError(f"batch {n} > max_batch {self.max_batch}")
        hp = device_array(heatmaps, (n, J, H, W), "heatmaps")
        tp = device_array(tags, (n, J, H, W, T), "tags", alt_shapes=((n, J, H, W),) if T == 1 else ())
        host_maps = {}  # host inputs must outlive the async copies
        if hp is None:
            host_maps["h"] = np.ascontiguousarray(heatmaps, np.float32).reshape(n, J, H, W)
            h = host_maps["h"]
            _check(self.drv.cuMemcpyHtoDAsync(self.buf["heatmaps"], h.ctypes.data, h.nbytes, s),
                   "H2D heatmaps")
            hp = self.buf["heatmaps"]
        if tp is None:
            host_maps["t"] = np.ascontiguousarray(tags, np.float32).reshape(n, J, H, W, T)
            t = host_maps["t"]
            _check(self.drv.cuMemcpyHtoDAsync(self.buf["tags"], t.ctypes.data, t.nbytes, s), "H2D tags")
            tp = self.buf["tags"]
        self.enqueue(hp, tp, n, s)
        return self.collect(hp, tp, n, s)

    def enqueue(self, heatmaps_ptr: int, tags_ptr: int, n: int, stream: int) -> None:
        """Queue the whole decode of ``n`` images whose maps are at these device pointers on
        ``stream``, ending with the copies of the per-image people counts and status to pinned host
        memory. Nothing here waits or depends on results, so it can be captured in a CUDA graph
        (GpuPipeline does); :meth:`collect` then fetches the people. The context must be current."""
        drv, b, p = self.drv, self.buf, self.params
        J = self.shape[0]
        _check(drv.cuMemsetD32Async(b["status"], 0, n, stream), "memset")
        self._launch("hhr_nms_topk", (J, n, 1), (256, 1, 1),
                     [heatmaps_ptr, tags_ptr, p, b["cand_xy"], b["cand_val"], b["cand_tag"],
                      b["cand_count"], b["status"]], stream)
        self._launch("hhr_group", (n, 1, 1), (32, 1, 1),
                     [heatmaps_ptr, b["cand_xy"], b["cand_val"], b["cand_tag"], b["cand_count"],
                      b["joint_order"], p, b["work"], b["people"], b["keys"], b["tag_list"],
                      b["tag_count"], b["num_people"], b["scores"], b["status"]], stream)
        if self.cfg.refine:
            self._launch("hhr_refine", (self.P, n, 1), (256, 1, 1),
                         [heatmaps_ptr, tags_ptr, p, b["people"], b["num_people"]], stream)
        _check(drv.cuMemcpyDtoHAsync(self._counts.ctypes.data, b["num_people"], n * 4, stream), "D2H counts")
        _check(drv.cuMemcpyDtoHAsync(self._status.ctypes.data, b["status"], n * 4, stream), "D2H status")

    def collect(self, heatmaps_ptr: int, tags_ptr: int, n: int,
                stream: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Wait for an :meth:`enqueue`'d decode and copy only the people found to the host.
        Returns per image (grouped (P, J, 3 + T), scores (P,)). The context must be current."""
        drv, b = self.drv, self.buf
        J, H, W, T = self.shape
        _check(drv.cuStreamSynchronize(stream), "sync")
        counts, status = self._counts[:n], self._status[:n]
        row = J * (3 + T) * 4
        for i in range(n):  # only the people found cross to the host
            c = int(counts[i])
            if c and not status[i]:
                _check(drv.cuMemcpyDtoHAsync(self._people[i].ctypes.data, b["people"] + i * self.P * row,
                                             c * row, stream), "D2H people")
                _check(drv.cuMemcpyDtoHAsync(self._scores[i].ctypes.data, b["scores"] + i * self.P * 4,
                                             c * 4, stream), "D2H scores")
        _check(drv.cuStreamSynchronize(stream), "sync")
        out = []
        for i in range(n):
            if status[i]:
                log.warning(f"GPU decode of image {i}: status {int(status[i])} (too many peaks or an "
                            "unsolvable assignment): decoded on the CPU instead")
                out.append(self._cpu_fallback(heatmaps_ptr, tags_ptr, i, int(status[i])))
                continue
            c = int(counts[i])
            out.append((self._people[i, :c].copy(), self._scores[i, :c].copy()))
        return out

    def _cpu_fallback(self, heatmaps_ptr: int, tags_ptr: int, i: int, status: int):
        """Image i decoded by the NumPy decoder (what the kernels could not do)."""
        J, H, W, T = self.shape
        hm = np.empty((J, H, W), np.float32)
        tg = np.empty((J, H, W, T), np.float32)
        for arr, base in ((hm, heatmaps_ptr), (tg, tags_ptr)):
            _check(self.drv.cuMemcpyDtoH(arr.ctypes.data, base + i * arr.nbytes, arr.nbytes), "D2H fallback")
        if status & 4 and not (np.isfinite(hm).all() and np.isfinite(tg).all()):
            # NaN / inf costs make the classic Munkres steps cycle: the NumPy decoder would not return.
            raise ValueError(f"image {i}: heatmaps or tags contain NaN or inf; the grouping cannot be solved")
        return parse(hm, tg, self.cfg)

    def close(self) -> None:
        """Free the device and pinned buffers and the module; idempotent."""
        if getattr(self, "module", None) is None:
            return
        drv = self.drv
        for ptr in self.buf.values():
            drv.cuMemFree(ptr)
        self.buf = {}
        for ptr in self._host_ptr:
            drv.cuMemFreeHost(ptr)
        self._host_ptr = []
        drv.cuModuleUnload(self.module)
        self.module = None
        drv.cuDevicePrimaryCtxRelease(self._device)

    def __enter__(self) -> GpuDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _keypoints_for(num_joints: int):
    return CROWDPOSE if num_joints == CROWDPOSE.num_joints else COCO
