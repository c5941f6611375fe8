"""Test-time geometry of the official HigherHRNet pipeline, in plain NumPy.

Conventions (those of the official code, HRNet/HigherHRNet-Human-Pose-Estimation):

- ``center``: (2,) float64, the image point (x, y) in pixels that lands in the middle of the network
  input. It is always the rounded image centre.
- ``scale``: (2,) float64, the image region (width, height) the network input covers, in units of
  200 pixels (a legacy of top-down pose datasets). Only ``scale[0]`` sets the zoom; the aspect ratio
  of the input decides the height.
- Sizes are ``(width, height)`` in pixels; arrays are indexed ``[..., y, x]``.

The network input for scale ``s`` is the image warped by a zoom-and-shift affine transform (no
rotation at test time). The final keypoints map back from heatmap pixels to image pixels through the
inverse transform, computed for the size of the maps that were parsed.

``FrameGeometry`` is the one object that owns a frame's path through the network: built for the
official aspect-preserving sizes (``FrameGeometry.official``) or for a fixed-size model's letterbox
(``FrameGeometry.letterbox``), it gives each scale's input size and forward warp matrix, and maps
decoded coordinates back to the frame (``map_to_image``). The CPU pipeline (runtime/preprocess.py,
OpenCV) and the GPU pipeline (kernels/preprocess_gpu.py) both warp with its matrices.

OpenCV is imported only inside ``warp_matrix`` (its LU solve makes the matrix bit-identical to the
official one); the Jetson deployment box imports this module before any image library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .formats import SIZE_MULTIPLE
from .lazy import lazy_import

cv2 = lazy_import("cv2")

#: The official code measures ``scale`` in units of this many pixels.
PIXEL_STD = 200.0


def _round_up(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    """Smallest multiple of ``multiple`` >= value, computed with Python float floor division as the
    official code does (so that results are bit-identical on float inputs such as 853.33)."""
    return int((value + multiple - 1) // multiple * multiple)


def get_multi_scale_size(
    image_wh: tuple[int, int], input_size: int, current_scale: float, min_scale: float
) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Network input size, center and scale for one test scale (official ``get_multi_scale_size``).

    The shorter image side goes to ``input_size * min_scale`` rounded up to a multiple of 64, the
    longer side keeps the aspect ratio and is rounded up to a multiple of 64; both are then multiplied
    by ``current_scale / min_scale`` and truncated to int. So the smallest scale of a multi-scale set
    is 64-aligned and the others are integer multiples of it when the ratios are integers (otherwise
    the official network cannot run them: e.g. 0.75/1/1.25 gives 853 px).

    image_wh: (W, H) of the original image, pixels.
    input_size: the network's training size (512 or 640), pixels.
    current_scale: this test scale, e.g. 2.0. min_scale: the smallest scale of the set.
    Returns ``((w, h), center, scale)``: the input size in pixels, center (2,) float64 pixels, and
    scale (2,) float64 in units of 200 px (the region of the image the input covers).
    """
    w, h = int(image_wh[0]), int(image_wh[1])
    # int(x + 0.5) of a positive half-integer: the official rounding of the centre (ties go up).
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)], dtype=np.float64)
    min_input_size = _round_up(min_scale * input_size)
    # The operation order below is the official one: the float results (scale especially) must be
    # bit-identical, since they feed the warp matrix.
    if w < h:
        w_resized = int(min_input_size * current_scale / min_scale)
        h_resized = int(_round_up(min_input_size / w * h) * current_scale / min_scale)
        scale_w = w / PIXEL_STD
        scale_h = h_resized / w_resized * w / PIXEL_STD
    else:
        h_resized = int(min_input_size * current_scale / min_scale)
        w_resized = int(_round_up(min_input_size / h * w) * current_scale / min_scale)
        scale_h = h / PIXEL_STD
        scale_w = w_resized / h_resized * h / PIXEL_STD
    return (w_resized, h_resized), center, np.array([scale_w, scale_h], dtype=np.float64)


def affine_point_pairs(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    output_size_wh: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """The three source / destination points that define the official warp, as float32.

    The official ``get_affine_transform`` (rotation 0, no shift) pins the centre, a point half the
    region width above it, and a third point at a right angle; it stores them as float32 before
    solving. Reproducing that float32 rounding is what makes our matrices equal the official ones to
    the last bit when solved the same way (``cv2.getAffineTransform``, see preprocess.py).

    center: (2,) pixels; scale: (2,) in units of 200 px; output_size_wh: (W, H) of the warped image.
    Returns (src, dst), each (3, 2) float32: image points and their images in the output.
    """
    center = np.asarray(center, dtype=np.float64)
    src_w = float(np.asarray(scale, dtype=np.float64)[0]) * PIXEL_STD
    dst_w, dst_h = float(output_size_wh[0]), float(output_size_wh[1])

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center + np.array([0.0, src_w * -0.5])  # float64 sum, then float32 as officially
    dst[0] = (dst_w * 0.5, dst_h * 0.5)
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5], dtype=np.float32)
    for pts in (src, dst):
        # Third point: the second one plus the first-minus-second direction turned by +90 degrees,
        # all in float32 arithmetic.
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], dtype=np.float32)
    return src, dst


def solve_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 affine matrix M with ``dst_i = M @ (x_i, y_i, 1)`` for three point pairs.

    src, dst: (3, 2) points. Returns (2, 3) float64. Solved in closed form (Cramer's rule on the two
    difference vectors) in float64; it differs from OpenCV's LU solve only by rounding (< 1e-12
    relative).
    """
    s = np.asarray(src, dtype=np.float64)
    t = np.asarray(dst, dtype=np.float64)
    u1, u2 = s[1] - s[0], s[2] - s[0]
    det = u1[0] * u2[1] - u1[1] * u2[0]
    if det == 0.0:
        raise ValueError(f"degenerate affine point triplet: {s.tolist()}")
    v1, v2 = t[1] - t[0], t[2] - t[0]  # (2,) each: one entry per output row
    a = (v1 * u2[1] - v2 * u1[1]) / det
    b = (u1[0] * v2 - u2[0] * v1) / det
    c = t[0] - a * s[0, 0] - b * s[0, 1]
    return np.stack([a, b, c], axis=1)


def get_affine_transform(
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    output_size_wh: Sequence[float],
    inv: bool = False,
) -> np.ndarray:
    """Official test-time warp (rotation 0): image pixels -> output pixels, or back with ``inv``.

    center: (2,) pixels; scale: (2,) units of 200 px; output_size_wh: (W, H) pixels of the output.
    Returns (2, 3) float64 M acting on (x, y, 1) columns. Equals the official matrix to ~1e-13
    (same float32 points, a different float64 solver); preprocess.py uses OpenCV's own solver on
    the same points when bit-identical warps matter.
    """
    src, dst = affine_point_pairs(center, scale, output_size_wh)
    return solve_affine(dst, src) if inv else solve_affine(src, dst)


def apply_affine(coords: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to columns 0, 1 (x, y) of ``coords`` (..., >=2).

    Returns a copy with the same shape and dtype; other columns are untouched. Computed in float64,
    then cast back (the official code also writes float64 results into the float32 array).
    """
    coords = np.asarray(coords)
    if coords.ndim < 1 or coords.shape[-1] < 2:
        raise ValueError(f"coords must have shape (..., >=2), got {coords.shape}")
    out = coords.copy()
    m = np.asarray(matrix, dtype=np.float64)
    x = coords[..., 0].astype(np.float64)
    y = coords[..., 1].astype(np.float64)
    out[..., 0] = m[0, 0] * x + m[0, 1] * y + m[0, 2]
    out[..., 1] = m[1, 0] * x + m[1, 1] * y + m[1, 2]
    return out


def map_to_image(
    coords: np.ndarray,
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray,
    heatmap_size_wh: Sequence[int],
    base_size_wh: Sequence[int] | None = None,
) -> np.ndarray:
    """Heatmap pixel coordinates -> original image pixels (official ``get_final_preds`` mapping).

    coords: (..., >=2) array whose columns 0, 1 are x, y in pixels of maps of size
        ``heatmap_size_wh`` = (W, H), e.g. grouped people (P, J, 5). Other columns are copied.
    center, scale: the frame geometry (see module docstring).
    base_size_wh: leave None for the official behaviour, where the parsed maps were projected to the
        network input size (PROJECT2IMAGE) and ``heatmap_size_wh`` is that size. When maps were
        parsed at a lower resolution than the base size (the fast path of MultiScaleAggregator), pass
        the base size: coordinates are first moved to the base grid with the pixel-centre relation of
        a bilinear, align_corners=False resize, ``x_base = (x + 0.5) * W_base / W - 0.5``, so that the
        result matches where the official projection would have put the same map point.
    Returns an array of the same shape and dtype as ``coords``.
    """
    if base_size_wh is None or tuple(base_size_wh) == tuple(heatmap_size_wh):
        matrix = get_affine_transform(center, scale, heatmap_size_wh, inv=True)
    else:
        # Fold the grid change into the matrix (one float64 pass over the coordinates).
        rx = float(base_size_wh[0]) / float(heatmap_size_wh[0])
        ry = float(base_size_wh[1]) / float(heatmap_size_wh[1])
        to_base = np.array([[rx, 0.0, 0.5 * rx - 0.5], [0.0, ry, 0.5 * ry - 0.5], [0.0, 0.0, 1.0]])
        matrix = get_affine_transform(center, scale, base_size_wh, inv=True) @ to_base
    return apply_affine(coords, matrix)


def warp_matrix(center: np.ndarray, scale: np.ndarray, output_size_wh: Sequence[int]) -> np.ndarray:
    """(2, 3) float64 image -> input warp, bit-identical to the official one.

    OpenCV solves the official float32 point triplets (affine_point_pairs) with the same LU routine
    the official code calls. warpAffine rounds the matrix to fixed point, so a last-bit difference
    could move a pixel by one grey level; solving it the same way rules that out.
    """
    src, dst = affine_point_pairs(center, scale, output_size_wh)
    return cv2.getAffineTransform(src, dst)


@dataclass
class FrameGeometry:
    """How one frame reaches the network and how the network's coordinates come back to it.

    image_wh: (W, H) of the original frame, pixels.
    base_size_wh: (W, H) of the network input at scale 1: the size of the official final maps.
    center: (2,) float64, pixels; scale: (2,) float64, units of 200 px (see the module docstring).
    input_size: the short side the network was trained at (512 / 640), pixels; 0 for a letterbox.
    min_scale: the smallest test scale of the set (the official sizes are 64-aligned at it).
    letterboxed: True when a fixed-size model's input was filled by :meth:`letterbox`.

    center and scale are those of scale 1, the geometry that matches maps of ``base_size_wh``.
    Official valid.py keeps the values of its last (smallest) scale instead; the two are identical
    whenever the ratios of the scales to the smallest one are integers, the only sets its network
    can run (e.g. [1], [0.5, 1, 2], [1, 2]).
    """

    image_wh: tuple[int, int]
    base_size_wh: tuple[int, int]
    center: np.ndarray
    scale: np.ndarray
    input_size: int = 0
    min_scale: float = 1.0
    letterboxed: bool = False

    @classmethod
    def official(cls, image_wh: tuple[int, int], input_size: int, min_scale: float = 1.0) -> FrameGeometry:
        """The official sizing (get_multi_scale_size) of a frame for a dynamic-size model.

        input_size: the short side the network was trained at (512 / 640), pixels.
        min_scale: the smallest test scale of the set that will run.
        """
        image_wh = (int(image_wh[0]), int(image_wh[1]))
        base, center, scale = get_multi_scale_size(image_wh, input_size, 1.0, float(min_scale))
        return cls(image_wh, tuple(base), center, scale, int(input_size), float(min_scale))

    @classmethod
    def letterbox(cls, image_wh: tuple[int, int], input_wh: tuple[int, int]) -> FrameGeometry:
        """A whole frame fitted into a fixed (W, H) input, centred, aspect kept, black borders.

        center / scale follow the official conventions, so the official warp and map_to_image apply
        unchanged. The official sizing is the special case where the input size was chosen from the
        frame; these formulas then give the same center and scale.
        """
        w, h = int(image_wh[0]), int(image_wh[1])
        in_w, in_h = int(input_wh[0]), int(input_wh[1])
        center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)], dtype=np.float64)
        # Frame relatively wider than the input: its width fills the input. On a tie, the branch the
        # official sizing takes (portrait frames size by width), so the floats match it bit for bit.
        if w * in_h > h * in_w or (w * in_h == h * in_w and w < h):
            scale_w = w / PIXEL_STD
            scale_h = in_h / in_w * w / PIXEL_STD
        else:  # the height fills it (operation order of the official code's else branch)
            scale_h = h / PIXEL_STD
            scale_w = in_w / in_h * h / PIXEL_STD
        return cls((w, h), (in_w, in_h), center, np.array([scale_w, scale_h], dtype=np.float64),
                   letterboxed=True)

    def _scaled(self, scale: float) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
        """(input (W, H) pixels, center, scale in 200 px) of test scale ``scale``."""
        if self.letterboxed or not self.input_size:
            return tuple(int(v) for v in self.base_size_wh), self.center, self.scale
        size, center, scale_200 = get_multi_scale_size(self.image_wh, self.input_size, float(scale),
                                                       self.min_scale)
        return (int(size[0]), int(size[1])), center, scale_200

    def input_size_wh(self, scale: float = 1.0) -> tuple[int, int]:
        """(W, H) pixels of the network input at test scale ``scale`` (no matrix is solved)."""
        return self._scaled(scale)[0]

    def warp(self, scale: float = 1.0) -> tuple[np.ndarray, tuple[int, int]]:
        """(forward (2, 3) float64 matrix frame -> input, input (W, H) pixels) at test scale ``scale``.

        The official resize_align_multi_scale recomputes center and scale per test scale; so does
        this, so every scale's warp is bit-identical to the official one.
        """
        size, center, scale_200 = self._scaled(scale)
        return warp_matrix(center, scale_200, size), size

    def map_to_image(self, coords: np.ndarray, heatmap_size_wh: Sequence[int] | None = None) -> np.ndarray:
        """Columns 0, 1 (x, y) of ``coords`` (..., >=2) from map pixels to frame pixels.

        heatmap_size_wh: (W, H) of the maps the coordinates refer to; None = ``base_size_wh`` (the
        official PROJECT2IMAGE flow). A smaller size (maps aggregated at heatmap resolution) is first
        moved to the base grid with the bilinear pixel-centre relation (see map_to_image).
        """
        if heatmap_size_wh is None:
            return map_to_image(coords, self.center, self.scale, self.base_size_wh)
        return map_to_image(coords, self.center, self.scale, heatmap_size_wh, self.base_size_wh)
