"""Map resizing and multi-scale aggregation of the official HigherHRNet test flow, in NumPy (+ OpenCV).

Official flow per test scale (``core/inference.py`` and ``tools/valid.py`` of
HRNet/HigherHRNet-Human-Pose-Estimation, PROJECT2IMAGE=True), with h x w the network input:

1. output 0 (stride 4: J heatmaps then J tag maps) is upsampled bilinearly to the size of output 1
   (stride 2, J heatmaps); heatmaps = mean of the two; tags = channels J.. of the *upsampled* output 0.
2. flip test: the same for the mirrored input, mirrored back, joints permuted by the flip index.
3. heatmaps and tags of both are resized bilinearly from stride 2 to the base size (input size at
   scale 1); heatmaps are averaged over image / mirrored image.
4. heatmaps are summed over scales and divided by the number of scales; tags are kept only from
   scale 1 (or from the single scale of a one-scale set), image and mirrored tags stacked on a new
   last axis.

Steps 1-2 happen in our ONNX graph; :class:`MultiScaleAggregator` does steps 3-4. Tags therefore go
stride 4 -> stride 2 -> base size in two bilinear steps, which is not the same as one stride 4 -> base
step; the aggregator does the first step itself when it is given stride-4 tags.

All resizes are ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)`` (no
antialias), reproduced by :func:`resize_bilinear`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: Stride of the (aggregated) heatmaps relative to the network input.
HEATMAP_STRIDE = 2


# --------------------------------------------------------------------------------------------------
# Bilinear resize (PyTorch align_corners=False semantics)
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def _linear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source taps of a 1-D bilinear resize, computed as PyTorch's CPU kernel computes them.

    Returns (i0, i1, w0, w1): (out_size,) intp indices and float32 weights, output[k] =
    w0[k] * input[i0[k]] + w1[k] * input[i1[k]].

    PyTorch works in float32: ratio = float32(in) / float32(out), source = ratio * (k + 0.5) - 0.5
    evaluated as one fused multiply-add (a single rounding: the kernel is compiled with FMA
    contraction), clamped at 0; i0 = floor, lambda = source - i0, i1 = i0 + 1 except at the last
    pixel. The product of two float32 numbers is exact in float64 and so is subtracting 0.5 at these
    magnitudes, hence float64 then one cast to float32 is exactly the FMA result. Matching these
    float32 coordinates matters: at source ~300 a float32 ulp is 3e-5 pixels, more than our 1e-5
    tolerance on map values once multiplied by a steep gradient.
    """
    ratio = np.float32(in_size) / np.float32(out_size)
    centres = np.arange(out_size, dtype=np.float32) + np.float32(0.5)
    src = (np.float64(ratio) * centres.astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.intp), in_size - 1)
    lam = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    i1 = i0 + (i0 < in_size - 1)
    w0 = (np.float32(1.0) - lam).astype(np.float32)
    for a in (i0, i1, w0, lam):
        a.flags.writeable = False  # cached: shared between calls
    return i0, i1, w0, lam


def _resize_axis_numpy(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    """1-D bilinear resize of float32 ``x`` along ``axis`` (negative index) to ``out_size``."""
    in_size = x.shape[axis]
    if in_size == out_size:
        return x
    i0, i1, w0, w1 = _linear_taps(in_size, out_size)
    shape = [1] * x.ndim
    shape[axis] = out_size
    out = np.take(x, i0, axis=axis)
    out *= w0.reshape(shape)
    tail = np.take(x, i1, axis=axis)
    tail *= w1.reshape(shape)
    out += tail
    return out


def _is_power_of_two_ratio(a: int, b: int) -> bool:
    """True when a / b or b / a is 2**k (k >= 0)."""
    big, small = max(a, b), min(a, b)
    if big % small:
        return False
    q = big // small
    return q & (q - 1) == 0


def _cv2_or_none():
    try:
        import cv2
    except ImportError:  # the runtime must work without OpenCV (e.g. a torch-free, cv-free box)
        return None
    return cv2


def resize_bilinear(
    maps: np.ndarray,
    size_wh: Sequence[int],
    channels_last: bool = False,
    backend: str = "auto",
) -> np.ndarray:
    """Bilinear resize equal to ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``.

    maps: float32, (..., h, w) with ``channels_last=False`` (e.g. (N, C, h, w) or (C, h, w)), or
        (..., h, w, T) with ``channels_last=True`` (tags (N, J, h, w, T)).
    size_wh: (W, H) of the result, pixels. Up- and down-sampling, any ratio, no antialiasing.
    backend: "numpy" (exact PyTorch coordinates, float32 arithmetic: within a few float32 ulps of
        torch), "cv2" (cv2.resize per plane, several times faster), or "auto": cv2 when it is
        importable and both axis ratios are powers of two (1, 2, 4, ... either way), numpy
        otherwise. At power-of-two ratios the sample positions are exact in float32, so OpenCV and
        PyTorch agree to float32 rounding; at other ratios OpenCV computes positions in double and
        PyTorch in float32, which can differ by ~1e-4 on steep maps.
    Returns float32 with the spatial axes replaced by (H, W); the input itself (not a copy) when the
    size does not change.
    """
    x = np.asarray(maps, dtype=np.float32)
    spatial = (-3, -2) if channels_last else (-2, -1)
    if x.ndim < len(spatial) + (1 if channels_last else 0):
        raise ValueError(f"maps of shape {x.shape} have too few axes (channels_last={channels_last})")
    out_w, out_h = int(size_wh[0]), int(size_wh[1])
    if out_w < 1 or out_h < 1:
        raise ValueError(f"invalid output size {size_wh}")
    in_h, in_w = x.shape[spatial[0]], x.shape[spatial[1]]
    if (in_h, in_w) == (out_h, out_w):
        return x
    if backend not in ("auto", "numpy", "cv2"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'cv2', got {backend!r}")

    cv2 = None
    if backend != "numpy":
        cv2 = _cv2_or_none()
        if cv2 is None and backend == "cv2":
            raise ImportError("backend='cv2' needs OpenCV (pip install opencv-python-headless)")
        if backend == "auto" and not (
            _is_power_of_two_ratio(in_h, out_h) and _is_power_of_two_ratio(in_w, out_w)
        ):
            cv2 = None
    if cv2 is None:
        # Width first, then height: PyTorch's kernel nests the sums the same way
        # (w_h0 * (w_w0 * a + w_w1 * b) + w_h1 * (...)).
        return _resize_axis_numpy(_resize_axis_numpy(x, spatial[1], out_w), spatial[0], out_h)

    x = np.ascontiguousarray(x)
    lead = x.shape[:-3] if channels_last else x.shape[:-2]
    tail = x.shape[-1:] if channels_last else ()
    out = np.empty(lead + (out_h, out_w) + tail, dtype=np.float32)
    for idx in np.ndindex(*lead):
        # One call per plane: cv2.resize takes (h, w) or (h, w, T) images. It drops a trailing
        # channel axis of size 1, hence the reshape.
        out[idx] = cv2.resize(x[idx], (out_w, out_h), interpolation=cv2.INTER_LINEAR).reshape(
            out.shape[len(lead):]
        )
    return out


def resize_tags(tags: np.ndarray, size_wh: Sequence[int], backend: str = "auto") -> np.ndarray:
    """:func:`resize_bilinear` for tag maps (..., h, w, T) -> (..., H, W, T)."""
    return resize_bilinear(tags, size_wh, channels_last=True, backend=backend)


# --------------------------------------------------------------------------------------------------
# Multi-scale aggregation
# --------------------------------------------------------------------------------------------------


class MultiScaleAggregator:
    """Accumulates per-scale network outputs into the maps the parser reads (official steps 3-4).

    base_size_wh: (W, H) of the network input at scale 1 (FrameGeometry.base_size_wh).
    scales: the test scales, as given to preprocess (the official SCALE_FACTOR); heatmaps are divided
        by their number, tags are kept from scale 1 only (from the single scale if there is one).
    resolution: "input" = official PROJECT2IMAGE: maps resized to the base size. "heatmap" = the
        faster option: maps aggregated at heatmap resolution, base size / 2, so at scale 1 heatmaps
        need no resize at all and parsing works on a quarter of the pixels. Results then differ from
        the official ones (refine and adjust see a coarser grid); map coordinates back with
        FrameGeometry.map_to_image(coords, heatmap_size_wh=aggregator.output_size_wh).
    backend: passed to :func:`resize_bilinear`.

    Use: ``add(scale, heatmaps, tags)`` once per scale in any order (valid.py goes largest first; the
    float32 sum follows the order of the calls), then ``result()``.
    """

    def __init__(
        self,
        base_size_wh: Sequence[int],
        scales: Sequence[float] = (1.0,),
        resolution: str = "input",
        backend: str = "auto",
    ) -> None:
        if resolution not in ("input", "heatmap"):
            raise ValueError(f"resolution must be 'input' or 'heatmap', got {resolution!r}")
        if not scales:
            raise ValueError("scales must name at least one scale")
        self.scales = tuple(float(s) for s in scales)
        # The official code keeps tags only where scale_factor == 1 (or when there is one scale);
        # a multi-scale set without 1 leaves it with no tags at all (torch.cat of an empty list).
        if len(self.scales) > 1 and 1.0 not in self.scales:
            raise ValueError(f"a multi-scale set must contain 1.0 (tags come from scale 1): {scales!r}")
        w, h = int(base_size_wh[0]), int(base_size_wh[1])
        self.base_size_wh = (w, h)
        self.resolution = resolution
        if resolution == "heatmap":
            if w % HEATMAP_STRIDE or h % HEATMAP_STRIDE:
                raise ValueError(f"base size {base_size_wh} is not a multiple of {HEATMAP_STRIDE}")
            self.output_size_wh = (w // HEATMAP_STRIDE, h // HEATMAP_STRIDE)
        else:
            self.output_size_wh = (w, h)
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        """Forget everything added (reuse the aggregator for the next frame of the same size)."""
        self._heatmaps: np.ndarray | None = None
        self._tags: list[np.ndarray] = []
        self._pending = list(self.scales)

    def _keeps_tags(self, scale: float) -> bool:
        return scale == 1.0 or len(self.scales) == 1

    def add(self, scale: float, heatmaps: np.ndarray, tags: np.ndarray) -> None:
        """One scale's outputs.

        heatmaps: (N, J, h, w) float32, flip-averaged, at heatmap stride (2) of this scale's input.
        tags: (N, J, h', w', T) float32 (T = 2 with flip: image, mirrored image; a 4-D array is taken
            as T = 1) at stride 4 (the official output 0) or already at the heatmaps' size. Stride-4
            tags are first upsampled to the heatmaps' size, as the official code does, then resized
            with the heatmaps. Tags of scales other than 1 are ignored (not even resized).
        """
        scale = float(scale)
        if scale not in self._pending:
            raise ValueError(f"scale {scale} is not (or no longer) expected; pending: {self._pending}")
        heatmaps = np.asarray(heatmaps, dtype=np.float32)
        if heatmaps.ndim != 4:
            raise ValueError(f"heatmaps must be (N, J, h, w), got {heatmaps.shape}")
        if self._heatmaps is not None and heatmaps.shape[:2] != self._heatmaps.shape[:2]:
            raise ValueError(f"heatmaps {heatmaps.shape} do not match earlier scales {self._heatmaps.shape}")
        self._pending.remove(scale)

        projected = resize_bilinear(heatmaps, self.output_size_wh, backend=self.backend)
        if self._heatmaps is None:
            # Own copy: the caller's array may be a backend buffer that the next inference reuses.
            self._heatmaps = projected.copy() if projected is heatmaps else projected
        else:
            self._heatmaps += projected

        if self._keeps_tags(scale):
            tags = np.asarray(tags, dtype=np.float32)
            if tags.ndim == 4:
                tags = tags[..., None]
            if tags.ndim != 5 or tags.shape[:2] != heatmaps.shape[:2]:
                raise ValueError(f"tags must be (N, J, h, w, T) matching heatmaps {heatmaps.shape}, "
                                 f"got {tags.shape}")
            hm_wh = (heatmaps.shape[3], heatmaps.shape[2])
            # Official step 1 (stride 4 -> stride 2), then step 3 (stride 2 -> output size). Two
            # bilinear steps: a single stride 4 -> output resize gives different numbers.
            given = tags
            tags = resize_tags(tags, hm_wh, backend=self.backend)
            tags = resize_tags(tags, self.output_size_wh, backend=self.backend)
            self._tags.append(tags.copy() if tags is given else tags)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Final maps: heatmaps (N, J, H, W) float32 (mean over scales) and tags (N, J, H, W, T')
        float32, with (W, H) = output_size_wh and T' = T times the number of tag-keeping scales."""
        if self._pending:
            raise ValueError(f"scales {self._pending} were not added")
        assert self._heatmaps is not None
        # Official: final_heatmaps / float(len(SCALE_FACTOR)), in float32.
        heatmaps = self._heatmaps / np.float32(len(self.scales))
        tags = self._tags[0] if len(self._tags) == 1 else np.concatenate(self._tags, axis=-1)
        return heatmaps, tags


def aggregate(
    outputs: Sequence[tuple[float, np.ndarray, np.ndarray]],
    base_size_wh: Sequence[int],
    resolution: str = "input",
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """One-call form: [(scale, heatmaps (N, J, h, w), tags (N, J, h', w', T)), ...] -> (heatmaps
    (N, J, H, W), tags (N, J, H, W, T')), see :class:`MultiScaleAggregator`. Scales are added in
    the order given (valid.py's is largest first)."""
    agg = MultiScaleAggregator(base_size_wh, [s for s, _, _ in outputs], resolution, backend)
    for s, hm, tg in outputs:
        agg.add(s, hm, tg)
    return agg.result()
