"""The decode on the GPU: the kernels of decode.cu, loaded through cuda-python's driver API.

    from higherhrnet_trt.kernels.decode_gpu import GpuDecoder
    dec = GpuDecoder(num_joints=17, height=256, width=256, tag_dim=2)   # maps at input size
    people = dec.decode(heatmaps, tags)     # device arrays (CuPy, torch, pycuda, Numba) or NumPy
    grouped, scores = people[0]             # as runtime.decode.parse: (P, J, 3 + T), (P,)

Device inputs are taken without copies from anything exposing ``__cuda_array_interface__`` (CuPy,
torch CUDA tensors, pycuda ``GPUArray``, Numba) or a raw pointer (int); NumPy arrays are uploaded.
``stream`` is a CUDA stream handle (int, or an object with ``.handle`` / ``.ptr`` as pycuda and CuPy
streams have). Buffers are allocated once per decoder for ``max_batch`` images; per call only the
people cross to the host: one int per image, then each image's P x J x (3 + T) people and scores.

Needs a GPU and cuda-python; compiled by NVRTC for this GPU's architecture (kernels.compile, cached).
If a map has more NMS peaks above threshold than the kernel's buffer (2048), or Munkres reports an
unsolvable matrix, that image is decoded by the NumPy decoder instead and a warning says so.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

from ..runtime.decode import DecodeConfig, parse

log = logging.getLogger("higherhrnet_trt")

NO_DRIVER = "no NVIDIA driver found; use --backend onnxruntime (the NumPy decode runs on the CPU)"
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
            raise RuntimeError("the GPU decode needs cuda-python: pip install cuda-python") from None
    return driver


def _check(result, what: str):
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA driver error in {what}: {err}")
    return values[0] if len(values) == 1 else tuple(values)


def device_pointer(obj) -> tuple[int, bool]:
    """(device pointer, is_device) of a CUDA array-like; (0, False) for host data."""
    if isinstance(obj, int):
        return obj, True
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None:
        return int(cai["data"][0]), True
    return 0, False


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
        from ..engine.gpu import query_gpu
        from .compile import compile_kernel

        self.cfg = cfg or DecodeConfig.for_keypoints(_keypoints_for(num_joints))
        self.cfg.check(num_joints)
        if self.cfg.max_people > MAX_N or tag_dim > MAX_T or num_joints > 32:
            raise ValueError(f"kernels handle top-k <= {MAX_N}, tag_dim <= {MAX_T}, J <= 32")
        gpu = query_gpu(device)
        if gpu is None:
            raise RuntimeError(NO_DRIVER)
        drv = self.drv = _driver()
        _check(drv.cuInit(0), "cuInit")
        dev = _check(drv.cuDeviceGet(device), "cuDeviceGet")
        self.ctx = _check(drv.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
        self._device = dev
        _check(drv.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        compiled = compile_kernel("decode.cu", gpu.sm.replace("sm", "sm_"))
        self.module = _check(drv.cuModuleLoadData(compiled.cubin), "cuModuleLoadData")
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
        self._counts = np.zeros(N, np.int32)
        self._status = np.zeros(N, np.int32)

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
        Returns per image (grouped (P, J, 3 + T), scores (P,)) as runtime.decode.parse."""
        drv, b = self.drv, self.buf
        J, H, W, T = self.shape
        s = stream_handle(stream)
        hp, hdev = device_pointer(heatmaps)
        tp, tdev = device_pointer(tags)
        n = batch or (int(heatmaps.shape[0]) if hasattr(heatmaps, "shape") else 1)
        if n > self.max_batch:
            raise ValueError(f"batch {n} > max_batch {self.max_batch}")
        host_maps = {}
        if not hdev:
            host_maps["h"] = np.ascontiguousarray(heatmaps, np.float32).reshape(n, J, H, W)
            h = host_maps["h"]
            _check(drv.cuMemcpyHtoDAsync(b["heatmaps"], h.ctypes.data, h.nbytes, s), "H2D heatmaps")
            hp = b["heatmaps"]
        if not tdev:
            host_maps["t"] = np.ascontiguousarray(tags, np.float32).reshape(n, J, H, W, T)
            t = host_maps["t"]
            _check(drv.cuMemcpyHtoDAsync(b["tags"], t.ctypes.data, t.nbytes, s), "H2D tags")
            tp = b["tags"]
        _check(drv.cuMemsetD32Async(b["status"], 0, n, s), "memset")
        p = self.params
        self._launch("hhr_nms_topk", (J, n, 1), (256, 1, 1),
                     [hp, tp, p, b["cand_xy"], b["cand_val"], b["cand_tag"], b["cand_count"], b["status"]], s)
        self._launch("hhr_group", (n, 1, 1), (32, 1, 1),
                     [hp, b["cand_xy"], b["cand_val"], b["cand_tag"], b["cand_count"], b["joint_order"], p,
                      b["work"], b["people"], b["keys"], b["tag_list"], b["tag_count"], b["num_people"],
                      b["scores"], b["status"]], s)
        if self.cfg.refine:
            self._launch("hhr_refine", (self.P, n, 1), (256, 1, 1),
                         [hp, tp, p, b["people"], b["num_people"]], s)
        counts, status = self._counts[:n], self._status[:n]
        _check(drv.cuMemcpyDtoHAsync(counts.ctypes.data, b["num_people"], n * 4, s), "D2H counts")
        _check(drv.cuMemcpyDtoHAsync(status.ctypes.data, b["status"], n * 4, s), "D2H status")
        _check(drv.cuStreamSynchronize(s), "sync")
        out = []
        row = J * (3 + T)
        for i in range(n):
            c = int(counts[i])
            if status[i]:
                log.warning(f"GPU decode of image {i}: status {int(status[i])} (too many peaks or an "
                            "unsolvable assignment): decoded on the CPU instead")
                out.append(self._cpu_fallback(hp, tp, i))
                continue
            people = np.empty((c, J, 3 + T), np.float32)
            scores = np.empty(c, np.float32)
            if c:
                src = b["people"] + i * self.P * row * 4
                _check(drv.cuMemcpyDtoH(people.ctypes.data, src, c * row * 4), "D2H people")
                _check(drv.cuMemcpyDtoH(scores.ctypes.data, b["scores"] + i * self.P * 4, c * 4), "D2H")
            out.append((people, scores))
        return out

    def _cpu_fallback(self, heatmaps_ptr: int, tags_ptr: int, i: int):
        J, H, W, T = self.shape
        hm = np.empty((J, H, W), np.float32)
        tg = np.empty((J, H, W, T), np.float32)
        for arr, base in ((hm, heatmaps_ptr), (tg, tags_ptr)):
            _check(self.drv.cuMemcpyDtoH(arr.ctypes.data, base + i * arr.nbytes, arr.nbytes), "D2H fallback")
        return parse(hm, tg, self.cfg)

    def close(self) -> None:
        drv = self.drv
        for ptr in self.buf.values():
            drv.cuMemFree(ptr)
        self.buf = {}
        drv.cuModuleUnload(self.module)
        drv.cuDevicePrimaryCtxRelease(self._device)

    def __enter__(self) -> GpuDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _keypoints_for(num_joints: int):
    from ..runtime.datasets import COCO, CROWDPOSE

    return CROWDPOSE if num_joints == CROWDPOSE.num_joints else COCO
