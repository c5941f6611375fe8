"""Pre-processing and bilinear resize on the GPU: the kernels of preprocess.cu and resize.cu,
loaded through cuda-python's driver API (as kernels.decode_gpu does for the decode).

    from higherhrnet_trt.kernels.preprocess_gpu import GpuPreprocessor
    pre = GpuPreprocessor(input_size=512)               # ImageNet mean/std, BGR frames
    ptr, geometry = pre(frame_bgr, stream=s)            # device (1, 3, h, w) float32 network input
    # frame_bgr: (H, W, 3) uint8 NumPy (uploaded) or a device array (CuPy, torch, pycuda: no copy)

The output equals core.preprocess.preprocess(frame, input_size)[0][0][1] (scale 1) where OpenCV
warps in fixed point (OpenCV <= 4.10, JetPack's 4.x): the kernel does OpenCV's fixed-point
bilinear warp and the runtime's float32 normalisation table (kernels/warp.cuh). Newer OpenCV warps
in float32 and differs by a few grey levels at some pixels.

Device and host buffers are allocated once (the frame buffer grows to the largest frame seen, one
output buffer per input size): nothing is allocated per frame after the first of each size.
Needs a GPU and cuda-python; without a driver the constructors raise one line (NO_DRIVER).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Sequence

import numpy as np

from higherhrnet_trt.core import preprocess as pp
from higherhrnet_trt.core.errors import CudaError
from higherhrnet_trt.core.gpu import query_gpu
from higherhrnet_trt.core.limits import plan_frame

from .decode_gpu import NO_DRIVER, _check, _driver, device_array, load_module, stream_handle
from .host import resize_taps


class Affine(ctypes.Structure):
    """Mirror of hhr::Affine (warp.cuh): [a b c; d e f] as 6 doubles, passed by value."""

    _fields_ = [("m", ctypes.c_double * 6)]


class Int3(ctypes.Structure):
    """CUDA's int3 (three 4-byte ints, 4-byte aligned), passed by value."""

    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("z", ctypes.c_int)]


def invert_affine(forward: np.ndarray) -> np.ndarray:
    """(6,) float64 inverse of a (2, 3) forward matrix, computed as cv2.warpAffine (and
    hhr::invert_affine) do it, operation by operation in float64."""
    M = [float(v) for v in np.asarray(forward, dtype=np.float64).reshape(6)]
    D = M[0] * M[4] - M[1] * M[3]
    D = 1.0 / D if D != 0.0 else 0.0
    A11, A22, A12, A21 = M[4] * D, M[0] * D, -M[1] * D, -M[3] * D
    b1 = -A11 * M[2] - A12 * M[5]
    b2 = -A21 * M[2] - A22 * M[5]
    return np.array([A11, A12, b1, A21, A22, b2], dtype=np.float64)


def launch(drv, fn, grid: Sequence[int], block: Sequence[int], args: Sequence, stream: int) -> None:
    """cuLaunchKernel with ``args`` given as ctypes values (c_int, c_uint64 pointers, Structures)
    in the kernel's parameter order."""
    ptrs = (ctypes.c_void_p * len(args))(*[ctypes.addressof(a) for a in args])
    _check(drv.cuLaunchKernel(fn, *grid, *block, 0, stream, ctypes.addressof(ptrs), 0), "cuLaunchKernel")


class _KernelModule:
    """One compiled kernel file on one GPU: driver, primary context, module, device allocations."""

    def __init__(self, kernel: str, names: Sequence[str], device: int) -> None:
        gpu = query_gpu(device)
        if gpu is None:
            raise CudaError(NO_DRIVER)
        drv = self.drv = _driver()
        _check(drv.cuInit(0), "cuInit")
        self._device = _check(drv.cuDeviceGet(device), "cuDeviceGet")
        self.ctx = _check(drv.cuDevicePrimaryCtxRetain(self._device), "cuDevicePrimaryCtxRetain")
        _check(drv.cuCtxPushCurrent(self.ctx), "cuCtxPushCurrent")
        try:
            self.module = load_module(drv, kernel, gpu.compute_capability)
            self.fn = {n: _check(drv.cuModuleGetFunction(self.module, n.encode()), n) for n in names}
        finally:
            drv.cuCtxPopCurrent()
        self._allocs: list[int] = []

    @contextlib.contextmanager
    def _ctx(self) -> Iterator[None]:
        """This module's context current on the calling thread for the duration."""
        _check(self.drv.cuCtxPushCurrent(self.ctx), "cuCtxPushCurrent")
        try:
            yield
        finally:
            self.drv.cuCtxPopCurrent()

    def alloc(self, nbytes: int) -> int:
        """Device buffer of ``nbytes`` bytes owned by this object (freed by close()): its pointer."""
        with self._ctx():
            ptr = int(_check(self.drv.cuMemAlloc(max(int(nbytes), 1)), "cuMemAlloc"))
        self._allocs.append(ptr)
        return ptr

    def _free(self, ptr: int) -> None:
        if ptr in self._allocs:
            self._allocs.remove(ptr)
            with self._ctx():
                self.drv.cuMemFree(ptr)

    def upload(self, array: np.ndarray) -> int:
        """A device copy of a host array (C order), owned by this object: its pointer."""
        array = np.ascontiguousarray(array)
        ptr = self.alloc(array.nbytes)
        with self._ctx():
            _check(self.drv.cuMemcpyHtoD(ptr, array.ctypes.data, array.nbytes), "H2D")
        return ptr

    def download(self, ptr: int, shape: Sequence[int], dtype=np.float32, stream=None) -> np.ndarray:
        """Copy a C-contiguous device array at ``ptr`` into a new NumPy array (after the work queued
        on ``stream``; synchronises it)."""
        out = np.empty(tuple(shape), dtype=dtype)
        s = stream_handle(stream)
        with self._ctx():
            _check(self.drv.cuMemcpyDtoHAsync(out.ctypes.data, ptr, out.nbytes, s), "D2H")
            _check(self.drv.cuStreamSynchronize(s), "sync")
        return out

    def close(self) -> None:
        """Free the buffers and the module; idempotent."""
        if getattr(self, "module", None) is None:
            return
        with self._ctx():
            for ptr in self._allocs:
                self.drv.cuMemFree(ptr)
            self._allocs = []
            self.drv.cuModuleUnload(self.module)
        self.module = None
        self.drv.cuDevicePrimaryCtxRelease(self._device)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class GpuPreprocessor(_KernelModule):
    """A frame -> the network input of scale 1, on the GPU, in one kernel (preprocess.cu).

    input_size: the network's training size (512 / 640), pixels; the input is the official
    64-aligned size for the frame (core.geometry.FrameGeometry.official). mean, std: per RGB channel for
    values in [0, 1]. bgr: frames are BGR (cv2 / VideoCapture); False for RGB frames.
    """

    def __init__(self, input_size: int, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, bgr: bool = True, device: int = 0,
                 input_wh: tuple[int, int] | None = None) -> None:
        super().__init__("preprocess.cu", ("hhr_warp_normalize",), device)
        self.input_size = int(input_size)
        self.input_wh = input_wh  # a fixed-size engine's (W, H): frames are letterboxed into it
        mean = tuple(float(v) for v in (pp.IMAGENET_MEAN if mean is None else mean))
        std = tuple(float(v) for v in (pp.IMAGENET_STD if std is None else std))
        self._lut = self.upload(pp.normalize_lut(mean, std, bool(bgr)).reshape(256, 3))
        self._order = Int3(*((2, 1, 0) if bgr else (0, 1, 2)))
        self._frame, self._frame_bytes = 0, 0
        self._outputs: dict[tuple[int, int], int] = {}
        self._geometry: dict[tuple[int, int], tuple] = {}

    def plan(self, image_wh: tuple[int, int]):
        """(input size (w, h), forward (2, 3) float64 matrix, FrameGeometry) for frames of image_wh,
        exactly as the CPU Pipeline plans them (runtime/gpu_plan.py; cached per frame size)."""
        key = (int(image_wh[0]), int(image_wh[1]))
        if key not in self._geometry:
            self._geometry[key] = plan_frame(key, self.input_size, self.input_wh)
        return self._geometry[key]

    def __call__(self, frame, out=None, stream=None, frame_shape: tuple[int, int] | None = None,
                 frame_pitch: int | None = None):
        """Pre-process one frame. Returns (device pointer of the (1, 3, h, w) float32 input, geometry).

        frame: (H, W, 3) uint8 NumPy array (copied to the device), a device array with
            ``__cuda_array_interface__`` (rows may be padded: the row stride is used as pitch), or a
            raw device pointer (int) with ``frame_shape`` (H, W) and optionally ``frame_pitch`` bytes.
        out: device buffer for the result (int pointer or a float32 (1, 3, h, w) device array);
            default: the preprocessor's own buffer for this size (overwritten by the next frame).
        stream: CUDA stream handle or object (see decode_gpu.stream_handle); the kernel is queued on
            it and nothing waits for it.
        """
        drv = self.drv
        s = stream_handle(stream)
        with self._ctx():
            src, (H, W), pitch = self._frame_source(frame, frame_shape, frame_pitch, s)
            (w, h), forward, geometry = self.plan((W, H))
            if out is None:
                if (w, h) not in self._outputs:
                    self._outputs[(w, h)] = self.alloc(3 * h * w * 4)
                dst = self._outputs[(w, h)]
            else:
                dst = device_array(out, (1, 3, h, w), "out", alt_shapes=((3, h, w),))
                if dst is None:
                    raise ValueError("out must be a device array or a device pointer")
            minv = Affine((ctypes.c_double * 6)(*invert_affine(forward)))
            args = [ctypes.c_uint64(src), ctypes.c_int(H), ctypes.c_int(W), ctypes.c_int(pitch), minv,
                    ctypes.c_uint64(self._lut), self._order, ctypes.c_uint64(dst), ctypes.c_int(h),
                    ctypes.c_int(w)]
            grid = ((w + 15) // 16, (h + 15) // 16, 1)
            launch(drv, self.fn["hhr_warp_normalize"], grid, (16, 16, 1), args, s)
        return dst, geometry

    def _frame_source(self, frame, shape, pitch, stream: int) -> tuple[int, tuple[int, int], int]:
        """(device pointer, (H, W), row pitch in bytes) of the frame, uploading host frames."""
        if isinstance(frame, int):
            if shape is None:
                raise ValueError("a raw frame pointer needs frame_shape=(H, W)")
            H, W = (int(v) for v in shape)
            return frame, (H, W), int(pitch or W * 3)
        cai = getattr(frame, "__cuda_array_interface__", None)
        if cai is not None:
            dims = tuple(int(v) for v in cai["shape"])
            if str(cai.get("typestr", ""))[1:] != "u1" or len(dims) != 3 or dims[2] != 3:
                raise ValueError(f"frame must be (H, W, 3) uint8, got {dims} {cai.get('typestr')!r}")
            strides = cai.get("strides")
            row = W3 = dims[1] * 3
            if strides is not None:
                row = int(strides[0])
                if int(strides[2]) != 1 or int(strides[1]) != 3 or row < W3:
                    raise ValueError("frame pixels must be interleaved BGR (strides (pitch, 3, 1))")
            return int(cai["data"][0]), (dims[0], dims[1]), row
        img = np.ascontiguousarray(frame)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {img.shape} {img.dtype}")
        if img.nbytes > self._frame_bytes:
            self._free(self._frame)
            self._frame, self._frame_bytes = self.alloc(img.nbytes), img.nbytes
        _check(self.drv.cuMemcpyHtoDAsync(self._frame, img.ctypes.data, img.nbytes, stream), "H2D frame")
        # Pageable source: the copy is staged before the call returns, so `img` may go away.
        return self._frame, (img.shape[0], img.shape[1]), img.shape[1] * 3


class GpuResizer(_KernelModule):
    """Bilinear resize of device maps with PyTorch's coordinates (align_corners=False), equal to
    decode.aggregate.resize_bilinear(backend="numpy") (resize.cu).

    in_hw, out_hw: (h, w) and (H, W) of the planes, pixels. Taps are uploaded once.
    """

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int], device: int = 0) -> None:
        super().__init__("resize.cu", ("hhr_resize_bilinear",), device)
        self.in_hw = (int(in_hw[0]), int(in_hw[1]))
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        self._taps = [self.upload(a) for a in resize_taps(*self.in_hw, *self.out_hw)]

    def __call__(self, src, dst, planes: int, inner: int = 1, stream=None) -> None:
        """Resize ``planes`` planes: src (planes, h, w, inner) float32 -> dst (planes, H, W, inner).

        src, dst: device arrays (checked) or raw pointers. inner: 1 for heatmaps ((N * J) planes of
        (h, w)), T for channels-last tags. Queued on ``stream``; nothing waits for it.
        """
        (h, w), (H, W) = self.in_hw, self.out_hw
        lead = (planes, h, w) if inner == 1 else (planes, h, w, inner)
        sp = device_array(src, lead, "src", alt_shapes=((planes, h, w, inner), (1, planes, h, w)))
        dp = device_array(dst, (planes, H, W) if inner == 1 else (planes, H, W, inner), "dst",
                          alt_shapes=((planes, H, W, inner), (1, planes, H, W)))
        if sp is None or dp is None:
            raise ValueError("src and dst must be device arrays or device pointers")
        s = stream_handle(stream)
        args = [ctypes.c_uint64(sp), ctypes.c_int(h), ctypes.c_int(w), ctypes.c_int(inner),
                ctypes.c_uint64(dp), ctypes.c_int(H), ctypes.c_int(W)]
        args += [ctypes.c_uint64(p) for p in self._taps]
        with self._ctx():
            launch(self.drv, self.fn["hhr_resize_bilinear"], ((W + 15) // 16, (H + 15) // 16, planes),
                   (16, 16, 1), args, s)
