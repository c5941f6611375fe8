"""A frame's path to the network, top to bottom: geometry, warp per scale, normalise.

1. ``FrameGeometry.official`` (dynamic-size models) or ``FrameGeometry.letterbox`` (fixed-size
   models) decides each scale's input size and warp matrix (core/geometry.py, which also maps the
   decoded people back: ``FrameGeometry.map_to_image``);
2. ``warp_image``: cv2.warpAffine with that matrix (bilinear, black border);
3. ``normalize``: ToTensor + Normalize through a float32 lookup table (``normalize_lut``, shared
   with the GPU kernel of kernels/preprocess.cu).

``preprocess`` (official multi-scale) and ``letterbox`` (fixed input) chain the three.

Reproduces ``tools/valid.py`` of HRNet/HigherHRNet-Human-Pose-Estimation: per test scale
``resize_align_multi_scale`` (``cv2.warpAffine``, bilinear, constant black border) then torchvision
``ToTensor`` + ``Normalize`` (RGB, /255, ImageNet mean and std). The warped pixels are bit-identical
to the official ones, the normalised values are the same float32 numbers torch computes.

OpenCV is imported inside the functions: on a Jetson it is JetPack's system build, and modules that
only need the geometry should not pay for (or depend on) the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .geometry import FrameGeometry, get_multi_scale_size, warp_matrix
from .lazy import lazy_import
from .limits import check_frame
from .metadata import IMAGENET_MEAN, IMAGENET_STD

cv2 = lazy_import("cv2")


def _check_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 only: the pre-processing functions convert nothing (core.limits.check_frame)."""
    return check_frame(image if isinstance(image, np.ndarray) else np.asarray(image), convert=False)


def warp_image(image: np.ndarray, geometry: FrameGeometry, scale: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 frame -> (h, w, 3) uint8 network input of one test scale, any channel order.

    cv2.warpAffine with the geometry's matrix, as the official call leaves it: INTER_LINEAR,
    BORDER_CONSTANT 0 (pixels outside the frame are black).
    """
    matrix, size_wh = geometry.warp(scale)
    return cv2.warpAffine(image, matrix, size_wh, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def resize_align(
    image: np.ndarray, input_size: int, current_scale: float, min_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``resize_align_multi_scale``: warp an image to the network input size of one scale.

    image: (H, W, 3) uint8, any channel order (the warp treats channels alike).
    input_size: training size (512 / 640); current_scale: this scale; min_scale: smallest scale.
    Returns (resized (h, w, 3) uint8, center (2,) float64 pixels, scale (2,) float64 units of 200 px),
    h and w from geometry.get_multi_scale_size. Bilinear interpolation; pixels outside the image
    are 0 (the official call leaves cv2.warpAffine's defaults: INTER_LINEAR, BORDER_CONSTANT 0).
    """
    image = _check_image(image)
    size_wh, center, scale = get_multi_scale_size(
        (image.shape[1], image.shape[0]), input_size, current_scale, min_scale
    )
    resized = cv2.warpAffine(
        image,
        warp_matrix(center, scale, size_wh),
        (int(size_wh[0]), int(size_wh[1])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return resized, center, scale


@lru_cache(maxsize=16)
def normalize_lut(mean: tuple[float, ...], std: tuple[float, ...], swap_rb: bool) -> np.ndarray:
    """(1, 256, 3) float32 table: entry [0, v, k] = normalised value of grey level v in input channel k.

    Every value is computed with the float32 operations torchvision performs,
    ``(float32(v) / 255 - mean) / std`` with float32 mean and std, so a lookup gives torch's exact
    numbers; with ``swap_rb`` input channel k (BGR) uses the constants of RGB channel 2 - k.
    """
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    table = (levels[:, None] - m[None, :]) / s[None, :]  # (256, 3) float32, RGB order
    if swap_rb:
        table = table[:, ::-1]
    return np.ascontiguousarray(table, dtype=np.float32).reshape(1, 256, 3)


def normalize(
    image: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    bgr: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """ToTensor + Normalize: (h, w, 3) uint8 -> (1, 3, h, w) float32 RGB planes, (x / 255 - mean) / std.

    image: uint8, RGB (default) or BGR with ``bgr=True``; the channel swap is folded into the lookup
    tables and the plane order, so it costs nothing. mean, std: per RGB channel, for values in [0, 1].
    out: optional preallocated (1, 3, h, w) float32 C-contiguous array to fill (e.g. a pinned buffer).
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {mean!r} and {std!r}")
    if out is None:
        out = np.empty((1, 3, h, w), dtype=np.float32)
    elif out.shape != (1, 3, h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous (1, 3, {h}, {w}) float32 array")
    lut = normalize_lut(tuple(float(v) for v in mean), tuple(float(v) for v in std), bool(bgr))
    # One table pass over the interleaved image (cv2.LUT: per-channel tables, float32 result), then
    # de-interleave; cheaper than three fancy-indexing passes.
    planes = cv2.split(cv2.LUT(image, lut))
    order = (2, 1, 0) if bgr else (0, 1, 2)  # input channel feeding RGB plane 0, 1, 2
    for c, k in enumerate(order):
        out[0, c] = planes[k]
    return out


def preprocess(
    image_bgr: np.ndarray,
    input_size: int,
    scales: Sequence[float] = (1.0,),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    bgr: bool = True,
) -> tuple[list[tuple[float, np.ndarray]], FrameGeometry]:
    """A frame -> network inputs for every test scale (largest first) and the frame's geometry.

    image_bgr: (H, W, 3) uint8 as cv2.imread / VideoCapture give it (BGR); pass ``bgr=False`` for an
        RGB image. The official code converts to RGB first; warping is channel-wise, so we warp the
        BGR pixels and swap while normalising (identical result).
    input_size: training size (512 / 640). scales: test scales, e.g. (1.0,) or (2.0, 1.0, 0.5); the
        sizes follow the official rule (the smallest scale is 64-aligned, see get_multi_scale_size).
    Returns ([(scale, input (1, 3, h, w) float32), ...] sorted by scale, largest first, as valid.py
    loops; FrameGeometry with base size, center and scale of scale 1).
    """
    image = _check_image(image_bgr)
    if not scales:
        raise ValueError("scales must name at least one scale")
    if any(float(s) <= 0 for s in scales):
        raise ValueError(f"scales must be positive, got {scales!r}")
    geometry = FrameGeometry.official((image.shape[1], image.shape[0]), input_size, float(min(scales)))
    inputs = [(s, normalize(warp_image(image, geometry, s), mean, std, bgr=bgr))
              for s in sorted((float(s) for s in scales), reverse=True)]
    return inputs, geometry


def letterbox(
    image: np.ndarray, input_wh: tuple[int, int], mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD, bgr: bool = True,
) -> tuple[np.ndarray, FrameGeometry]:
    """A frame into a fixed (W, H) input as the official code would warp it (bilinear, black
    border), whole frame visible and centred. Returns (input (1, 3, H, W) float32, FrameGeometry)."""
    image = _check_image(image)
    geometry = FrameGeometry.letterbox((image.shape[1], image.shape[0]), input_wh)
    return normalize(warp_image(image, geometry), mean, std, bgr=bgr), geometry
