"""Peak NMS on heatmaps: keep a value only where it equals the max of its window."""

from __future__ import annotations

import numpy as np


def _window_max_1d(a: np.ndarray, padding: int, axis: int) -> np.ndarray:
    """Max over the window [i - padding, i + padding] along ``axis``; outside the map counts as -inf.

    Max is exact and associative, so two 1-D passes equal the 2-D max-pool bit for bit.
    """
    n = a.shape[axis]
    pad = [(0, 0)] * a.ndim
    pad[axis] = (padding, padding)
    p = np.pad(a, pad, mode="constant", constant_values=-np.inf)

    def sl(start: int) -> np.ndarray:
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(start, start + n)
        return p[tuple(idx)]

    out = sl(0).copy()
    for s in range(1, 2 * padding + 1):
        np.maximum(out, sl(s), out=out)
    return out


def window_max(heatmaps: np.ndarray, kernel: int = 5, padding: int = 2) -> np.ndarray:
    """Max-pool with stride 1, as ``torch.nn.MaxPool2d(kernel, 1, padding)`` (implicit -inf padding).

    heatmaps: (J, H, W) float32. Returns (J, H, W) float32. Needs kernel == 2 * padding + 1.
    """
    if kernel != 2 * padding + 1:
        raise ValueError(f"kernel {kernel} with padding {padding} does not keep the map size")
    h = np.asarray(heatmaps, dtype=np.float32)
    return _window_max_1d(_window_max_1d(h, padding, axis=-1), padding, axis=-2)


def heatmap_nms(heatmaps: np.ndarray, kernel: int = 5, padding: int = 2) -> np.ndarray:
    """Official ``HeatmapParser.nms``: ``det * (maxpool(det) == det)``.

    heatmaps: (J, H, W) float32. Returns (J, H, W) float32 where every value that is not the max of
    its kernel x kernel window (clipped at the border) becomes zero. Plateaus keep every tied pixel
    (equality, not a strict max), and negative local maxima are kept too (they stay negative);
    suppressed negatives become -0.0, which compares equal to 0.0.
    """
    h = np.asarray(heatmaps, dtype=np.float32)
    return h * (window_max(h, kernel, padding) == h)
