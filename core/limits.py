"""Bounds on what one frame may cost: the network input's size and the test scales.

HigherHRNet's official sizing keeps a frame's aspect ratio: its short side goes to the network's
input size (times the test scale) and its long side follows. Host memory grows with the input's
pixels: one ``Pipeline.predict`` on ONNX Runtime's CPU provider (flip test on, maps decoded at
input resolution) took at most :data:`BYTES_PER_INPUT_PIXEL` (1.5 KB) per input pixel above the
loaded model, measured with ``python -m higherhrnet_trt.benchmarks.frame_memory MODEL --frames
sample,1024x1024,1536x512,2048x256 --scales ...`` (commands in benchmarks/RESULTS.md section 12): the
demo network 0.42-1.17 KB (1.5 GB peak at 3 Mpx, 3:1 or 8:1), random-weight W32-512 0.70-1.45 KB
(2.7 GB peak at 3 Mpx 4:3, 3.7 GB at 2.65 Mpx 8:1); the most per pixel at small inputs (fixed
costs) and elongated ones; W48 not measured. An odd frame (a 20x2000 strip becomes a 256x25600
input) or a typo (``--scales 100``) would otherwise exhaust the machine with no message, so both
are refused before any work, in one line that names the fix:

- at most :data:`MAX_SCALES` test scales, each within :data:`SCALE_RANGE` (:func:`check_scales`,
  the one scale check, also of the multi-scale rules);
- each scale's network input at most :data:`MAX_INPUT_PIXELS` pixels (the official multi-scale
  test of w32_640 on a 16:9 frame needs 2.95 Mpx) and at most :data:`MAX_ASPECT` : 1 between its
  sides.

:func:`check_frame` is the one frame check (type, dtype, shape, size; :class:`FrameError`).
:func:`needs_letterbox` is the one choice between the official sizing and a letterbox for a model
with a fixed input; :func:`plan_frame` plans one frame for the GPU pipeline as the CPU Pipeline does
(here, in core, so the kernels can use it). Only NumPy and geometry are imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import UserError
from .formats import SIZE_MULTIPLE
from .geometry import FrameGeometry, get_multi_scale_size

#: Most test scales at once (the official multi-scale set has 3: 2, 1, 0.5).
MAX_SCALES = 4
#: Smallest and largest test scale (the official ones lie in 0.5..2).
SCALE_RANGE = (0.25, 4.0)
#: Most pixels of one network input (one scale of one frame): 3 Mpx = 3 * 2**20.
MAX_INPUT_PIXELS = 3 * 2**20
#: Triton's dynamic batcher: longest wait for a fuller batch, microseconds (0: none; 1 s at most).
QUEUE_DELAY_US_RANGE = (0, 1_000_000)
#: Largest ratio of the network input's long side to its short side.
MAX_ASPECT = 8.0
#: Host memory of one frame per network input pixel, bytes: the worst case measured (W32-512,
#: 512x1536 input; see the module docstring). For the estimate in FrameTooLarge's message.
BYTES_PER_INPUT_PIXEL = 1.5 * 1024


#: Most pixels of a frame itself (before any resize).
MAX_FRAME_PIXELS = 100_000_000


class FrameError(UserError, ValueError):
    """A frame the pipeline cannot take (wrong type, dtype, shape or size): a UserError for the
    commands, a ValueError for code that calls the pre-processing functions directly."""


class FrameTooLarge(FrameError):
    """A frame whose network input would exceed the documented bounds (see the module docstring)."""


def check_frame(frame: np.ndarray, convert: bool = True) -> np.ndarray:
    """The one frame check: (H, W, 3) uint8, contiguous. With ``convert`` grey (H, W) / (H, W, 1)
    and 4-channel frames are accepted and converted (the Pipeline's API); without, only (H, W, 3)
    (the pre-processing functions). Raises FrameError in one line naming the fix."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"expected a frame as a numpy array (H, W, 3) uint8, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"expected a uint8 frame (0..255, as cv2 reads it), got {frame.dtype}: convert "
                         "with np.clip(img * 255, 0, 255).astype(np.uint8) for 0..1 floats")
    if convert and (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1)):
        frame = np.repeat(frame.reshape(frame.shape[0], frame.shape[1], 1), 3, axis=2)
    elif convert and frame.ndim == 3 and frame.shape[2] == 4:
        frame = frame[:, :, :3]
    if frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise FrameError(f"expected an (H, W, 3) frame, got shape {frame.shape}")
    if math.prod(frame.shape[:2]) > MAX_FRAME_PIXELS:
        raise FrameError(f"frame of {frame.shape[1]}x{frame.shape[0]} pixels is too large; resize it first")
    return np.ascontiguousarray(frame)


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """The one scale check: numbers, positive, 1..MAX_SCALES of them within SCALE_RANGE, and a
    multi-scale set that holds 1 with each scale an integer multiple of the smallest (or the input
    sizes stop being multiples of SIZE_MULTIPLE). Returns them distinct, largest first."""
    try:
        values = tuple(sorted({float(s) for s in scales}, reverse=True))
    except (TypeError, ValueError):
        raise UserError(f"scales must be numbers, e.g. (1.0,) or (2, 1, 0.5); got {scales!r}") from None
    if not values or min(values) <= 0 or not all(math.isfinite(s) for s in values):
        raise UserError(f"scales must be positive numbers, e.g. (1.0,) or (2, 1, 0.5); got {scales!r}")
    _check_scale_bounds(values)
    if len(values) > 1:
        if 1.0 not in values:
            raise UserError(f"a multi-scale set must contain 1 (tags come from scale 1): {values}")
        smallest = values[-1]
        if any(abs(s / smallest - round(s / smallest)) > 1e-9 for s in values):
            raise UserError(
                f"scales {values}: each must be an integer multiple of the smallest, or the input "
                f"sizes stop being multiples of {SIZE_MULTIPLE} and HigherHRNet cannot run them "
                "(the official multi-scale set is 2, 1, 0.5)"
            )
    return values


def _check_scale_bounds(scales: Sequence[float]) -> None:
    """UserError unless there are 1..MAX_SCALES scales within SCALE_RANGE."""
    lo, hi = SCALE_RANGE
    if len(scales) > MAX_SCALES:
        raise UserError(f"{len(scales)} test scales: at most {MAX_SCALES} (each runs the network "
                        "once per frame); the official multi-scale set is 2,1,0.5")
    bad = [s for s in scales if not lo <= float(s) <= hi]
    if bad:
        raise UserError(f"test scale {bad[0]:g} is outside {lo:g}..{hi:g} (the network input grows "
                        "with the square of the scale); the official ones are 2, 1 and 0.5")


def input_sizes(image_wh: tuple[int, int], input_size: int, scales: Sequence[float]) -> list[tuple[int, int]]:
    """Network input (W, H) of each scale under the official sizing, largest scale first."""
    smallest = float(min(scales))
    return [tuple(int(v) for v in get_multi_scale_size(image_wh, input_size, float(s), smallest)[0])
            for s in sorted(scales, reverse=True)]


def check_frame_size(image_wh: tuple[int, int], input_size: int, scales: Sequence[float]) -> None:
    """FrameTooLarge unless every scale's network input is within MAX_INPUT_PIXELS and MAX_ASPECT.

    image_wh: (W, H) of the frame, pixels; input_size: the network's training size (512, 640).
    """
    w, h = int(image_wh[0]), int(image_wh[1])
    aspect = max(w, h) / max(min(w, h), 1)
    if aspect > MAX_ASPECT:
        raise FrameTooLarge(f"frame of {w}x{h} pixels is {aspect:.1f} times longer than wide: at most "
                            f"{MAX_ASPECT:g}:1 (its network input would be as elongated); crop it "
                            "into pieces or pad it to a squarer shape")
    for (in_w, in_h), s in zip(input_sizes(image_wh, input_size, scales), sorted(scales, reverse=True)):
        if in_w * in_h > MAX_INPUT_PIXELS:
            raise FrameTooLarge(
                f"frame of {w}x{h} pixels needs a {in_w}x{in_h} network input at scale {s:g} "
                f"({in_w * in_h / 2**20:.1f} Mpx: up to about "
                f"{in_w * in_h * BYTES_PER_INPUT_PIXEL / 2**30:.0f} GB of memory); the limit is "
                f"{MAX_INPUT_PIXELS / 2**20:.0f} Mpx: use smaller --scales, or a model with a fixed "
                "--input-size (frames are letterboxed into it)")


def official_input_wh(image_wh: tuple[int, int], input_size: int, scale: float = 1.0) -> tuple[int, int]:
    """(W, H) of the network input that the official sizing gives a frame at one test scale."""
    return tuple(int(v) for v in FrameGeometry.official(image_wh, input_size, scale).input_size_wh(scale))


def needs_letterbox(image_wh: tuple[int, int], input_size: int, fixed_wh: tuple[int, int],
                    scale: float = 1.0) -> bool:
    """The one choice between the official sizing and a letterbox for a fixed-input model: True
    when the official input of the frame at ``scale`` is not the model's fixed (W, H)."""
    return official_input_wh(image_wh, input_size, scale) != tuple(int(v) for v in fixed_wh)


def plan_frame(image_wh: tuple[int, int], input_size: int, fixed_wh: tuple[int, int] | None = None
               ) -> tuple[tuple[int, int], np.ndarray, FrameGeometry]:
    """(input (W, H), forward (2, 3) float64 warp, FrameGeometry) of one frame, as Pipeline.prepare
    plans it: the official sizing for a dynamic engine (bounded by core/limits.py), the official
    sizing when it equals a fixed engine's input, else a letterbox into that input."""
    wh = (int(image_wh[0]), int(image_wh[1]))
    geometry = None
    if fixed_wh is None:
        check_frame_size(wh, input_size, (1.0,))
    elif needs_letterbox(wh, input_size, fixed_wh):
        geometry = FrameGeometry.letterbox(wh, tuple(fixed_wh))
    if geometry is None:
        geometry = FrameGeometry.official(wh, input_size)
    matrix, size = geometry.warp(1.0)
    return tuple(size), matrix, geometry
