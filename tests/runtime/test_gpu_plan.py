"""runtime/gpu_plan.py: the GPU pipeline keeps the CPU Pipeline's contract (issue 15 item 7).

The CPU-testable half (frame checks, planning, engine I/O dtypes) is compared here with the CPU
Pipeline and OpenCV, without a GPU; the GPU-only checks are in tests/runtime/test_gpu_pipeline.py and
skip with a reason where no GPU and TensorRT-RTX are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.runtime.backends import Backend, TensorSpec
from higherhrnet_trt.runtime.gpu_plan import (
    check_io_dtypes,
    device_frame_shape,
    engine_input_wh,
    host_frame,
    plan_frame,
)

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

F32, F16 = np.dtype(np.float32), np.dtype(np.float16)


def test_host_frames_are_converted_like_opencv_would():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (24, 32), np.uint8)
    bgra = rng.integers(0, 256, (24, 32, 4), np.uint8)
    np.testing.assert_array_equal(host_frame(grey), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    np.testing.assert_array_equal(host_frame(grey[..., None]), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    np.testing.assert_array_equal(host_frame(bgra), cv2.cvtColor(bgra, cv2.COLOR_BGRA2BGR))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16])
def test_float_frames_are_refused_not_truncated(dtype):
    """np.asarray(0..1 floats, np.uint8) made every pixel 0: the GPU pipeline saw a black frame."""
    frame = np.full((24, 32, 3), 0.8, dtype)
    with pytest.raises(UserError, match="uint8 frame"):
        host_frame(frame)


@pytest.mark.parametrize("cai, message", [
    ({"typestr": "<f4", "shape": (24, 32, 3)}, "must be uint8"),
    ({"typestr": "|u1", "shape": (24, 32, 4)}, "must be \\(H, W, 3\\)"),
    ({"typestr": "|u1", "shape": (24, 32)}, "must be \\(H, W, 3\\)"),
])
def test_device_frames_are_checked(cai, message):
    with pytest.raises(UserError, match=message):
        device_frame_shape(cai)
    assert device_frame_shape({"typestr": "|u1", "shape": (24, 32, 3)}) == (24, 32)


class _Static(Backend):
    """A fixed-size model for the CPU Pipeline: the reference planning."""

    name = "static"

    def __init__(self, hw=(128, 128)):
        super().__init__("static.engine")
        self.hw = hw

    def activate_impl(self):
        pass

    def deactivate_impl(self):
        pass

    def infer_impl(self, feeds: Mapping[str, np.ndarray]):
        raise AssertionError("not run")

    @property
    def inputs(self):
        return [TensorSpec("image", (1, 3, *self.hw), F32)]

    @property
    def outputs(self):
        h, w = self.hw[0] // 2, self.hw[1] // 2
        return [TensorSpec("heatmaps", (1, 17, h, w), F32), TensorSpec("tags", (1, 17, h, w, 2), F32)]

    @property
    def metadata(self):
        return ModelMeta.for_dataset("coco", input_size=128)


@pytest.mark.parametrize("frame_hw", [(128, 128), (120, 160), (200, 90), (30, 40)])
def test_fixed_size_engines_plan_frames_as_the_cpu_pipeline(frame_hw):
    from higherhrnet_trt.runtime.pipeline import Pipeline

    frame = np.zeros((*frame_hw, 3), np.uint8)
    with Pipeline("static.engine", backend=_Static()) as pipe:
        inputs, ref = pipe.prepare(frame)
    size, matrix, geometry = plan_frame((frame_hw[1], frame_hw[0]), 128, engine_input_wh((1, 3, 128, 128)))
    assert size == (inputs[0][1].shape[3], inputs[0][1].shape[2]) == (128, 128)
    assert geometry.letterboxed == ref.letterboxed == (frame_hw[0] != frame_hw[1])
    np.testing.assert_array_equal(geometry.center, ref.center)
    np.testing.assert_array_equal(geometry.scale, ref.scale)
    np.testing.assert_array_equal(matrix, ref.warp(1.0)[0])


def test_dynamic_engines_plan_the_official_size_within_the_limits():
    from higherhrnet_trt.core.limits import FrameTooLarge
    from higherhrnet_trt.core.preprocess import preprocess

    frame = np.zeros((120, 160, 3), np.uint8)
    inputs, ref = preprocess(frame, 128)
    size, _, geometry = plan_frame((160, 120), 128, engine_input_wh((1, 3, -1, -1)))
    assert size == (inputs[0][1].shape[3], inputs[0][1].shape[2]) and not geometry.letterboxed
    np.testing.assert_array_equal(geometry.scale, ref.scale)
    with pytest.raises(FrameTooLarge):
        plan_frame((2000, 20), 128, None)


def test_engine_io_dtypes_are_checked():
    ok_in = [TensorSpec("image", (1, 3, 128, 128), F32)]
    ok_out = [TensorSpec("heatmaps", (1, 17, 64, 64), F32), TensorSpec("tags", (1, 17, 64, 64, 2), F32)]
    check_io_dtypes(ok_in, ok_out, "m.engine")
    with pytest.raises(UserError, match="image float16.*read and write float32"):
        check_io_dtypes([TensorSpec("image", (1, 3, 128, 128), F16)], ok_out, "m.engine")
    with pytest.raises(UserError, match="tags float16"):
        check_io_dtypes(ok_in, [ok_out[0], TensorSpec("tags", (1, 17, 64, 64, 2), F16)], "m.engine")
    with pytest.raises(UserError, match="only one of height / width"):
        engine_input_wh((1, 3, -1, 128))
