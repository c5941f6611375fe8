"""Official test-time pre-processing: warp each scale to a 64-aligned size, normalise, keep the geometry.

Reproduces ``tools/valid.py`` of HRNet/HigherHRNet-Human-Pose-Estimation: per test scale
``resize_align_multi_scale`` (``cv2.warpAffine``, bilinear, constant black border) then torchvision
``ToTensor`` + ``Normalize`` (RGB, /255, ImageNet mean and std). The warped pixels are bit-identical
to the official ones, the normalised values are the same float32 numbers torch computes.

OpenCV is imported inside the functions: on a Jetson it is JetPack's system build, and modules that
only need :class:`FrameGeometry` should not pay for (or depend on) the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .metadata import IMAGENET_MEAN, IMAGENET_STD
from .transforms import affine_point_pairs, get_multi_scale_size, map_to_image


@dataclass
class FrameGeometry:
    """What maps a frame's network outputs back to the frame.

    image_wh: (W, H) of the original frame, pixels.
    base_size_wh: (W, H) of the network input at scale 1: the size of the official final maps.
    center: (2,) float64, pixels; scale: (2,) float64, units of 200 px (see transforms.py).

    center and scale are those of scale 1, the geometry that matches maps of ``base_size_wh``.
    Official valid.py keeps the values of its last (smallest) scale instead; the two are identical
    whenever the ratios of the scales to the smallest one are integers, the only sets its network
    can run (e.g. [1], [0.5, 1, 2], [1, 2]).
    """

    image_wh: tuple[int, int]
    base_size_wh: tuple[int, int]
    center: np.ndarray
    scale: np.ndarray

    def map_to_image(self, coords: np.ndarray, heatmap_size_wh: Sequence[int] | None = None) -> np.ndarray:
        """Columns 0, 1 (x, y) of ``coords`` (..., >=2) from map pixels to frame pixels.

        heatmap_size_wh: (W, H) of the maps the coordinates refer to; None = ``base_size_wh`` (the
        official PROJECT2IMAGE flow). A smaller size (maps aggregated at heatmap resolution) is first
        moved to the base grid with the bilinear pixel-centre relation (see transforms.map_to_image).
        """
        if heatmap_size_wh is None:
            return map_to_image(coords, self.center, self.scale, self.base_size_wh)
        return map_to_image(coords, self.center, self.scale, heatmap_size_wh, self.base_size_wh)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image: {image.shape}")
    return image


def warp_matrix(center: np.ndarray, scale: np.ndarray, output_size_wh: Sequence[int]) -> np.ndarray:
    """(2, 3) float64 image -> input warp, bit-identical to the official one.

    OpenCV solves the official float32 point triplets (transforms.affine_point_pairs) with the same
    LU routine the official code calls. warpAffine rounds the matrix to fixed point, so a last-bit
    difference could move a pixel by one grey level; solving it the same way rules that out.
    """
    import cv2

    src, dst = affine_point_pairs(center, scale, output_size_wh)
    return cv2.getAffineTransform(src, dst)


def resize_align(
    image: np.ndarray, input_size: int, current_scale: float, min_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``resize_align_multi_scale``: warp an image to the network input size of one scale.

    image: (H, W, 3) uint8, any channel order (the warp treats channels alike).
    input_size: training size (512 / 640); current_scale: this scale; min_scale: smallest scale.
    Returns (resized (h, w, 3) uint8, center (2,) float64 pixels, scale (2,) float64 units of 200 px),
    h and w from transforms.get_multi_scale_size. Bilinear interpolation; pixels outside the image
    are 0 (the official call leaves cv2.warpAffine's defaults: INTER_LINEAR, BORDER_CONSTANT 0).
    """
    import cv2

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
def _normalize_lut(mean: tuple[float, ...], std: tuple[float, ...], swap_rb: bool) -> np.ndarray:
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
    import cv2

    image = _check_image(image)
    h, w = image.shape[:2]
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {mean!r} and {std!r}")
    if out is None:
        out = np.empty((1, 3, h, w), dtype=np.float32)
    elif out.shape != (1, 3, h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous (1, 3, {h}, {w}) float32 array")
    lut = _normalize_lut(tuple(float(v) for v in mean), tuple(float(v) for v in std), bool(bgr))
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
    min_scale = float(min(scales))
    image_wh = (int(image.shape[1]), int(image.shape[0]))
    base_size, center, scale = get_multi_scale_size(image_wh, input_size, 1.0, min_scale)
    inputs = []
    for s in sorted((float(s) for s in scales), reverse=True):
        resized, _, _ = resize_align(image, input_size, s, min_scale)
        inputs.append((s, normalize(resized, mean, std, bgr=bgr)))
    geometry = FrameGeometry(image_wh=image_wh, base_size_wh=base_size, center=center, scale=scale)
    return inputs, geometry
