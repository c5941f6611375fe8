"""Peak NMS on heatmaps: keep a value only where it equals the max of its window."""

from __future__ import annotations

import numpy as np


def _window_max_1d(a: np.ndarray, padding: int, axis: int) -> np.ndarray:
    """Max over the window [i - padding, i + padding] along ``axis``; outside the map counts as -inf.

    Max is exact, associative and idempotent, so two 1-D passes equal the 2-D max-pool bit for bit,
    and a window of k is the max of two overlapping windows of the largest power of two s <= k:
    log2(k) + 1 passes instead of k - 1.
    """
    axis %= a.ndim
    n = a.shape[axis]
    k = 2 * padding + 1

    def sl(x: np.ndarray, start: int, stop: int | None) -> np.ndarray:
        return x[(slice(None),) * axis + (slice(start, stop),)]

    shape = list(a.shape)
    shape[axis] = n + 2 * padding
    p = np.full(shape, -np.inf, dtype=a.dtype)
    sl(p, padding, padding + n)[...] = a
    cur, s = p, 1  # cur[i] = max of p[i : i + s] along axis
    while 2 * s <= k:
        cur = np.maximum(sl(cur, 0, -s), sl(cur, s, None))
        s *= 2
    if s < k:
        cur = np.maximum(sl(cur, 0, n), sl(cur, k - s, k - s + n))
    return sl(cur, 0, n)


def window_max(heatmaps: np.ndarray, kernel: int = 5, padding: int = 2) -> np.ndarray:
    """Max-pool with stride 1, as ``torch.nn.MaxPool2d(kernel, 1, padding)`` (implicit -inf padding).

    heatmaps: (J, H, W) float32. Returns (J, H, W) float32. Needs kernel == 2 * padding + 1.
    """
    if kernel != 2 * padding + 1:
        raise ValueError(f"kernel {kernel} with padding {padding} does not keep the map size")
    h = np.asarray(heatmaps, dtype=np.float32)
    out = np.empty_like(h)
    for s in _chunks(h):
        out[s] = _window_max_1d(_window_max_1d(h[s], padding, axis=2), padding, axis=1)
    return out


def _chunks(h: np.ndarray) -> list[slice]:
    """Slices of whole maps of about 2**18 pixels: their temporaries stay in cache (about twice as
    fast as whole 17 x 512 x 512 arrays), and small maps still go in few NumPy calls."""
    J, H, W = h.shape
    step = max(1, (1 << 18) // max(H * W, 1))
    return [slice(j, min(j + step, J)) for j in range(0, J, step)]


def heatmap_nms(heatmaps: np.ndarray, kernel: int = 5, padding: int = 2) -> np.ndarray:
    """Official ``HeatmapParser.nms``: ``det * (maxpool(det) == det)``.

    heatmaps: (J, H, W) float32. Returns (J, H, W) float32 where every value that is not the max of
    its kernel x kernel window (clipped at the border) becomes zero. Plateaus keep every tied pixel
    (equality, not a strict max), and negative local maxima are kept too (they stay negative);
    suppressed negatives become -0.0, which compares equal to 0.0.
    """
    if kernel != 2 * padding + 1:
        raise ValueError(f"kernel {kernel} with padding {padding} does not keep the map size")
    h = np.asarray(heatmaps, dtype=np.float32)
    out = np.empty_like(h)
    for s in _chunks(h):
        m = _window_max_1d(_window_max_1d(h[s], padding, axis=2), padding, axis=1)
        np.multiply(h[s], m == h[s], out=out[s])
    return out
