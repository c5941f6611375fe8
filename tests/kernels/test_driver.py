"""The GPU wrappers' host-side logic, checked without a GPU: the one-line message without a driver,
input checks of device arrays (__cuda_array_interface__), and the choice of CUBIN / PTX target."""

from __future__ import annotations

import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.gpu import query_gpu
from higherhrnet_trt.kernels import decode_gpu as dg


class FakeDeviceArray:
    """Exposes only __cuda_array_interface__ (v3), as CuPy / torch / pycuda arrays do."""

    def __init__(self, shape, typestr="<f4", strides=None, ptr=0x7F0000000000):
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": typestr, "strides": strides,
                                         "data": (ptr, False), "version": 3}


def test_no_driver_is_one_clear_line():
    if query_gpu() is not None:
        pytest.skip("this machine has a GPU and driver")
    with pytest.raises(UserError) as e:  # the project's error type: one line, no traceback
        dg.GpuDecoder(17, 64, 64, 2)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("no NVIDIA driver or GPU found")


def test_device_array_accepts_contiguous_float32():
    shape = (1, 17, 8, 8)
    assert dg.device_array(FakeDeviceArray(shape, ptr=1234), shape, "heatmaps") == 1234
    # explicit C strides (torch reports them) and size-1 axes with any stride are fine
    strides = (17 * 64 * 4, 64 * 4, 8 * 4, 4)
    assert dg.device_array(FakeDeviceArray(shape, strides=strides, ptr=5), shape, "heatmaps") == 5
    assert dg.device_array(FakeDeviceArray(shape, strides=(0,) + strides[1:], ptr=6), shape, "h") == 6
    assert dg.device_array(4321, shape, "heatmaps") == 4321  # raw pointer
    import numpy as np

    assert dg.device_array(np.zeros(shape, np.float32), shape, "heatmaps") is None  # host: upload
    # T = 1 tags may come without the channel axis
    assert dg.device_array(FakeDeviceArray((1, 17, 8, 8), ptr=7), (1, 17, 8, 8, 1), "tags",
                           alt_shapes=((1, 17, 8, 8),)) == 7


@pytest.mark.parametrize("kwargs, match", [
    ({"typestr": "<f2"}, "must be float32"),
    ({"typestr": ">f4"}, "must be float32"),
    ({"shape": (1, 17, 8, 9)}, "must have shape"),
    ({"strides": (17 * 64 * 4, 64 * 4, 4, 8 * 4)}, "C-contiguous"),  # transposed view
])
def test_device_array_rejects_what_the_kernels_would_misread(kwargs, match):
    shape = (1, 17, 8, 8)
    arr = FakeDeviceArray(kwargs.pop("shape", shape), **kwargs)
    with pytest.raises(ValueError, match=match):
        dg.device_array(arr, shape, "heatmaps")


def test_choose_target():
    supported = ["sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_100", "sm_120"]
    assert dg.choose_target("8.7", supported) == ("sm_87", "cubin")  # Orin: its own CUBIN
    assert dg.choose_target("12.1", supported) == ("sm_120", "ptx")  # newer than NVRTC: PTX, JIT
    assert dg.choose_target("8.8", supported) == ("sm_87", "ptx")
    with pytest.raises(RuntimeError, match="cannot compile for sm_72.*nvidia-cuda-nvrtc-cu12"):
        dg.choose_target("7.2", supported)  # Xavier with NVRTC 13


def test_choose_target_with_this_nvrtc():
    pytest.importorskip("cuda.bindings", reason="cuda-python is not installed")
    from higherhrnet_trt.kernels import compile as kc

    if kc.nvrtc_library_path(13) is None and kc.nvrtc_library_path(12) is None:
        pytest.skip("no NVRTC installed")
    supported = kc.supported_archs()
    for arch in kc.TARGET_ARCHS:
        if arch in supported:
            cc = arch[3:-1] + "." + arch[-1]
            assert dg.choose_target(cc, supported) == (arch, "cubin")


def test_python_affine_inverse_is_the_kernels_bit_for_bit():
    """GpuPreprocessor inverts the warp matrix in Python; the kernel's (and cv2's) inversion is
    hhr::invert_affine: the same float64 operations, so the same bits."""
    import shutil

    import numpy as np

    if not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("no C++ compiler to build the kernels' host harness")
    from higherhrnet_trt.kernels.host import invert_affine_host
    from higherhrnet_trt.kernels.preprocess_gpu import Affine, Int3, invert_affine

    rng = np.random.default_rng(0)
    for _ in range(200):
        m = rng.normal(size=(2, 3)) * rng.choice([0.01, 1.0, 300.0], size=(2, 3))
        assert invert_affine(m).tobytes() == invert_affine_host(m).tobytes()
    assert invert_affine(np.zeros((2, 3))).tolist() == [0.0] * 6  # singular: cv2's zero matrix
    import ctypes

    assert ctypes.sizeof(Affine) == 48 and ctypes.sizeof(Int3) == 12


def test_preprocessor_without_driver_is_one_line():
    if query_gpu() is not None:
        pytest.skip("this machine has a GPU and driver")
    from higherhrnet_trt.kernels.preprocess_gpu import GpuPreprocessor, GpuResizer

    for make in (lambda: GpuPreprocessor(512), lambda: GpuResizer((128, 128), (256, 256))):
        with pytest.raises(UserError, match=r"^no NVIDIA driver or GPU found: [^\n]*--backend onnxruntime$"):
            make()


class FakeDriver:
    """Stands in for cuda.bindings.driver with host memory, so the wrappers' Python plumbing (buffer
    sizes, copies, launch calls, pinned buffers, cleanup) runs on a CPU. Kernels do nothing except
    what a launch records; device memory starts zeroed, so the decode finds no people."""

    def __init__(self):
        import ctypes

        self.ctypes = ctypes
        self.mem: dict[int, object] = {}
        self.launches: list[tuple[str, tuple, tuple]] = []
        self.ctx_depth = 0

    def _ok(self, *values):
        return (0, *values)

    def _alloc(self, nbytes):
        buf = self.ctypes.create_string_buffer(int(nbytes))
        addr = self.ctypes.addressof(buf)
        self.mem[addr] = buf
        return addr

    def cuInit(self, flags):
        return self._ok()

    def cuDeviceGet(self, i):
        return self._ok(i)

    def cuDevicePrimaryCtxRetain(self, dev):
        return self._ok("ctx")

    def cuDevicePrimaryCtxRelease(self, dev):
        return self._ok()

    def cuCtxSetCurrent(self, ctx):
        return self._ok()

    def cuCtxPushCurrent(self, ctx):
        self.ctx_depth += 1
        return self._ok()

    def cuCtxPopCurrent(self):
        self.ctx_depth -= 1
        return self._ok("ctx")

    def cuDriverGetVersion(self):
        return self._ok(13000)

    def cuModuleLoadData(self, image):
        assert bytes(image[:4]) == b"\x7fELF" or bytes(image[:2]) == b"//"
        return self._ok("module")

    def cuModuleGetFunction(self, module, name):
        return self._ok(name.decode())

    def cuModuleUnload(self, module):
        return self._ok()

    def cuMemAlloc(self, nbytes):
        return self._ok(self._alloc(nbytes))

    def cuMemHostAlloc(self, nbytes, flags):
        return self._ok(self._alloc(nbytes))

    def cuMemFree(self, ptr):
        assert self.mem.pop(int(ptr), None) is not None, "double or foreign free"
        return self._ok()

    cuMemFreeHost = cuMemFree

    def cuMemcpyHtoD(self, dst, src, nbytes):
        self.ctypes.memmove(int(dst), int(src), int(nbytes))
        return self._ok()

    def cuMemcpyHtoDAsync(self, dst, src, nbytes, stream):
        return self.cuMemcpyHtoD(dst, src, nbytes)

    cuMemcpyDtoH = cuMemcpyHtoD

    def cuMemcpyDtoHAsync(self, dst, src, nbytes, stream):
        return self.cuMemcpyHtoD(dst, src, nbytes)

    def cuMemsetD32Async(self, ptr, value, count, stream):
        self.ctypes.memset(int(ptr), 0, 4 * int(count))
        return self._ok()

    def cuStreamSynchronize(self, stream):
        return self._ok()

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shm, stream, params, extra):
        assert isinstance(params, int) and params != 0 and extra == 0
        self.launches.append((fn, (gx, gy, gz), (bx, by, bz)))
        return self._ok()


@pytest.fixture()
def fake_gpu(monkeypatch):
    pytest.importorskip("cuda.bindings", reason="cuda-python (NVRTC) is not installed")
    from higherhrnet_trt.core import gpu as engine_gpu
    from higherhrnet_trt.kernels import compile as kc

    if kc.nvrtc_library_path(13) is None and kc.nvrtc_library_path(12) is None:
        pytest.skip("no NVRTC installed")
    drv = FakeDriver()
    from higherhrnet_trt.kernels import preprocess_gpu

    for module in (dg, preprocess_gpu):  # each looks the GPU up through its own import
        monkeypatch.setattr(module, "query_gpu", lambda index=0: engine_gpu.GpuInfo(0, "fake", "8.7"))
        monkeypatch.setattr(module, "_driver", lambda: drv)
    return drv


def test_decoder_plumbing_with_a_fake_driver(fake_gpu):
    import numpy as np

    with dg.GpuDecoder(17, 32, 40, 2, max_batch=2) as dec:
        allocated = len(fake_gpu.mem)
        out = dec.decode(np.zeros((2, 17, 32, 40), np.float32), np.zeros((2, 17, 32, 40, 2), np.float32))
        assert len(fake_gpu.mem) == allocated  # nothing allocated per call
        assert [o[0].shape for o in out] == [(0, 17, 5)] * 2 and [o[1].shape for o in out] == [(0,)] * 2
        names = [name for name, _, _ in fake_gpu.launches]
        assert names == ["hhr_nms_topk", "hhr_group", "hhr_refine"]
        assert fake_gpu.launches[0][1] == (17, 2, 1) and fake_gpu.launches[2][1] == (17 * 30, 2, 1)
        with pytest.raises(ValueError, match="float32"):
            dec.decode(FakeDeviceArray((2, 17, 32, 40), "<f2"), 0)
    assert fake_gpu.mem == {} and fake_gpu.ctx_depth == 0  # everything freed, contexts popped


def test_preprocess_and_resize_plumbing_with_a_fake_driver(fake_gpu):
    import numpy as np

    from higherhrnet_trt.kernels.preprocess_gpu import GpuPreprocessor, GpuResizer

    with GpuPreprocessor(64) as pre:
        ptr, geometry = pre(np.zeros((48, 100, 3), np.uint8))
        assert geometry.base_size_wh == (192, 64) and ptr in fake_gpu.mem  # 64-aligned, aspect kept
        assert fake_gpu.launches[-1] == ("hhr_warp_normalize", (12, 4, 1), (16, 16, 1))
        ptr2, _ = pre(FakeDeviceArray((48, 100, 3), "|u1", strides=(512, 3, 1)))
        assert ptr2 == ptr  # same size: same output buffer
    with GpuResizer((32, 40), (64, 80)) as rs:
        src, dst = rs.alloc(17 * 32 * 40 * 4), rs.alloc(17 * 64 * 80 * 4)
        rs(src, dst, planes=17)
        assert fake_gpu.launches[-1] == ("hhr_resize_bilinear", (5, 4, 17), (16, 16, 1))
    assert fake_gpu.mem == {} and fake_gpu.ctx_depth == 0
