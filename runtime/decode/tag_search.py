"""Refine's search: per person, the pixel maximising ``heatmap - round(tag distance)`` on one joint map.

The official refine evaluates that score on every pixel for every person. ``tag_argmax`` gives the
same pixel while scoring only blocks that can hold the winner: a block's score is bounded above by
(its highest heatmap value) - round(lower bound of the tag distance to its tag bounding box), and
a block whose bound is below a score already reached cannot hold the maximum, nor a tie with it.
``dense_tag_argmax`` is the plain full-map version, kept as the reference the pruned one is tested
against.
"""

from __future__ import annotations

import numpy as np

#: Relative slack on the float64 distance bound: it must stay below the float32 distance the score
#: uses, which carries a few float32 roundings (relative error < 1e-6 all told).
_BOUND_SLACK = 1e-6


def tag_scores(det: np.ndarray, tag: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Official refine score, in float32 with the official expression.

    det: (N, M) float32 heatmap values; tag: (N, M, T) float32 tag vectors at the same pixels;
    centers: (N, T) float32 mean tag per row. Returns (N, M) float32
    det - round(sqrt(sum_T (tag - center) ** 2)), with np.round (half to even).
    """
    dist = ((tag - centers[:, None, :]) ** 2).sum(axis=-1) ** 0.5
    return det - np.round(dist)


def dense_tag_argmax(heatmap: np.ndarray, tagmap: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Reference search over every pixel (what the official refine does).

    heatmap: (H, W) float32; tagmap: (H, W, T) float32; centers: (N, T) float32.
    Returns (N,) int64 flat index y * W + x of the maximum score; ties -> lowest flat index.
    """
    H, W = heatmap.shape
    out = np.empty(len(centers), dtype=np.int64)
    det = heatmap.reshape(1, H * W)
    tag = tagmap.reshape(1, H * W, -1)
    for n, c in enumerate(centers):
        out[n] = int(np.argmax(tag_scores(det, tag, c[None, :])[0]))
    return out


def tag_argmax(heatmap: np.ndarray, tagmap: np.ndarray, centers: np.ndarray, block: int = 16) -> np.ndarray:
    """Same result as dense_tag_argmax, scoring only the blocks that can hold the maximum.

    heatmap: (H, W) float32; tagmap: (H, W, T) float32; centers: (N, T) float32, finite.
    block: side in pixels of the square blocks the map is cut into (the map is padded to a
    multiple with heatmap -inf, so padding never wins). Returns (N,) int64 flat index y * W + x;
    ties -> lowest flat index, as np.argmax. Falls back to the dense search for a centre whose
    scores are all NaN (never with finite maps and centres).
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    tagmap = np.asarray(tagmap, dtype=np.float32)
    centers = np.asarray(centers, dtype=np.float32).reshape(len(centers), -1)
    H, W = heatmap.shape
    T = tagmap.shape[-1]
    N = len(centers)
    if N == 0:
        return np.zeros(0, dtype=np.int64)
    B = int(block)
    hb, wb = -(-H // B), -(-W // B)
    nb, M = hb * wb, B * B
    det_p = np.full((hb * B, wb * B), -np.inf, dtype=np.float32)
    det_p[:H, :W] = heatmap
    # Edge padding keeps the padded tags inside the real tag range, so bounds stay tight.
    tag_p = np.pad(tagmap, ((0, hb * B - H), (0, wb * B - W), (0, 0)), mode="edge")
    det_b = det_p.reshape(hb, B, wb, B).transpose(0, 2, 1, 3).reshape(nb, M)
    tag_b = tag_p.reshape(hb, B, wb, B, T).transpose(0, 2, 1, 3, 4).reshape(nb, M, T)
    ys = np.arange(hb * B).reshape(hb, 1, B, 1)
    xs = np.arange(wb * B).reshape(1, wb, 1, B)
    flat = np.where((ys < H) & (xs < W), ys * W + xs, H * W).reshape(nb, M)

    # A lower bound on each centre's best score: the exact score at every block's highest pixel.
    top = det_b.argmax(axis=1)
    b_idx = np.arange(nb)
    b_max = det_b[b_idx, top]
    f_top = tag_scores(
        np.broadcast_to(b_max, (N, nb)), np.broadcast_to(tag_b[b_idx, top], (N, nb, T)), centers
    )
    best0 = f_top.max(axis=1)

    # Upper bound per (centre, block): score <= b_max - round(dist) and round is non-decreasing, so
    # any distance lower bound d_lb gives round(dist) >= round(d_lb); float32 rounding of
    # b_max - k is monotone too, so the float32 bound holds for the float32 score.
    lo = tag_b.min(axis=1).astype(np.float64)
    hi = tag_b.max(axis=1).astype(np.float64)
    c64 = centers.astype(np.float64)[:, None, :]
    gap = np.maximum(np.maximum(lo[None] - c64, c64 - hi[None]), 0.0)
    d_lb = np.sqrt((gap * gap).sum(axis=2)) * (1.0 - _BOUND_SLACK)
    bound = b_max[None, :] - np.round(d_lb).astype(np.float32)

    pn, pb = np.nonzero(bound >= best0[:, None])
    f = tag_scores(det_b[pb], tag_b[pb], centers[pn])
    f_best = f.max(axis=1)
    best = np.full(N, -np.inf, dtype=np.float32)
    np.maximum.at(best, pn, f_best)
    first = np.where(f == best[pn][:, None], flat[pb], H * W).min(axis=1)
    out = np.full(N, H * W, dtype=np.int64)
    np.minimum.at(out, pn, first)
    for n in np.flatnonzero(out >= H * W):
        out[n] = dense_tag_argmax(heatmap, tagmap, centers[n : n + 1])[0]
    return out
