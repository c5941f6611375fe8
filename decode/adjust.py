"""Sub-pixel adjustment of grouped joints: quarter pixel towards the higher neighbour, plus 0.5."""

from __future__ import annotations

import numpy as np


def quarter_offsets(
    joints: np.ndarray, heatmaps: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Official quarter-pixel rule at integer pixels.

    joints: (N,) int joint (map) index of each point; heatmaps: (J, H, W) float32 (before NMS);
    x, y: (N,) int pixel coordinates. Returns (dx, dy), (N,) float64, each +0.25 or -0.25:
    dx = +0.25 when map[y, min(x + 1, W - 1)] > map[y, max(x - 1, 0)] (strict, float32), else -0.25;
    dy likewise along y. Neighbours are clamped at the border, so a border pixel compares itself
    with its one inner neighbour; equal neighbours give -0.25.
    """
    _, H, W = heatmaps.shape
    right = heatmaps[joints, y, np.minimum(x + 1, W - 1)]
    left = heatmaps[joints, y, np.maximum(x - 1, 0)]
    down = heatmaps[joints, np.minimum(y + 1, H - 1), x]
    up = heatmaps[joints, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def adjust_joints(grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Official ``HeatmapParser.adjust`` on one image.

    grouped: (P, J, 3 + T) float32 from match_by_tag (x, y integer pixels); heatmaps: (J, H, W)
    float32, the maps before NMS. Returns a new (P, J, 3 + T) float32 where every joint with
    value > 0 gets x = int(x) + 0.5 + dx and y = int(y) + 0.5 + dy (quarter_offsets); other
    joints and columns are unchanged.
    """
    out = np.array(grouped, dtype=np.float32, copy=True)
    p, j = np.nonzero(out[:, :, 2] > 0)
    if p.size == 0:
        return out
    x = out[p, j, 0].astype(np.int64)
    y = out[p, j, 1].astype(np.int64)
    dx, dy = quarter_offsets(j, np.asarray(heatmaps, dtype=np.float32), x, y)
    out[p, j, 0] = x + 0.5 + dx
    out[p, j, 1] = y + 0.5 + dy
    return out
