"""The CPU half of the GPU pipeline: which frames it takes, how each reaches the network, and which
engines it can read. Pure NumPy, so it is tested without a GPU (tests/runtime/test_gpu_plan.py); the GPU
pipeline (runtime/gpu_pipeline.py) and its pre-processing kernel (kernels/preprocess_gpu.py) call it.

The contract is the CPU ``Pipeline``'s: host frames go through the same ``check_frame`` (grey and
BGRA converted, float frames refused in one line instead of being truncated to zeros), frames are
bounded by core/limits.py, a fixed-size engine letterboxes every frame whose official size differs
from its input (``FrameGeometry.letterbox``), and the engine's I/O must be float32 (what the
kernels write and read: an fp16-I/O engine would be misread, so it is refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.limits import (
    check_frame,
    plan_frame,  # noqa: F401 (part of this module's contract)
)


def host_frame(frame: Any) -> np.ndarray:
    """A host frame as the kernels read it: (H, W, 3) uint8 C-contiguous (Pipeline's check_frame:
    grey (H, W) / (H, W, 1) and BGRA (H, W, 4) converted, other dtypes refused)."""
    return check_frame(frame if isinstance(frame, np.ndarray) else np.asarray(frame))


def device_frame_shape(cai: dict) -> tuple[int, int]:
    """(H, W) of a device frame from its ``__cuda_array_interface__``; UserError unless it is an
    (H, W, 3) uint8 array (the pre-processing kernel reads 3 interleaved bytes per pixel)."""
    typestr = str(cai.get("typestr", ""))
    shape = tuple(int(v) for v in cai.get("shape", ()))
    if typestr[1:] != "u1":
        raise UserError(f"device frames must be uint8 (0..255), got typestr {typestr!r}: convert on the "
                        "device (e.g. (x * 255).clip(0, 255).astype(uint8)) or pass a host array")
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 1:
        raise UserError(f"device frames must be (H, W, 3), got shape {shape}: convert grey or BGRA "
                        "frames to 3 channels on the device (e.g. cv2.cuda.cvtColor), or pass a host "
                        "array (converted like Pipeline's)")
    return shape[0], shape[1]


def engine_input_wh(shape: Sequence[int]) -> tuple[int, int] | None:
    """(W, H) of a fixed-size engine's (N, 3, H, W) input; None when height and width are dynamic."""
    if len(shape) != 4:
        raise UserError(f"expected an (N, 3, H, W) image input, got {tuple(shape)}")
    h, w = int(shape[2]), int(shape[3])
    if (h < 0) != (w < 0):
        raise UserError(f"only one of height / width is dynamic ({tuple(shape)}): re-export with "
                        "--dynamic (both) or a fixed --input-size")
    return None if h < 0 else (w, h)


def check_io_dtypes(inputs: Sequence, outputs: Sequence, path: str) -> None:
    """UserError unless the image input and the two outputs are float32 (``TensorSpec``s): the
    pre-processing kernel writes float32 and the resize / decode kernels read float32, so fp16 I/O
    would be read as garbage."""
    wrong = [f"{t.name} {np.dtype(t.dtype).name}" for t in list(inputs[:1]) + list(outputs[:2])
             if np.dtype(t.dtype) != np.float32]
    if wrong:
        raise UserError(f"{path} has non-float32 I/O ({', '.join(wrong)}) and the GPU pipeline's kernels "
                        "read and write float32: build the engine from an ONNX with float32 I/O "
                        "('convert' keeps them float32), or run it with Pipeline (CPU steps), which "
                        "casts")
