"""Refine: give each person the joints it lacks, found by a tag-guided search of the whole map."""

from __future__ import annotations

import numpy as np

from .adjust import quarter_offsets
from .tag_search import tag_argmax


def person_tags(grouped: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Mean tag per person, as the official refine computes it (its ``prev_tag``).

    grouped: (P, J, 3 + T) float32; tags: (J, H, W, T) float32. Over the person's joints with
    value > 0, in joint index order, read the tag map at (int(y), int(x)) and take np.mean of that
    (n, T) float32 stack. Returns (P, T) float32; NaN for a person with no such joint.
    """
    P = grouped.shape[0]
    out = np.full((P, tags.shape[-1]), np.nan, dtype=np.float32)
    for p in range(P):
        js = np.flatnonzero(grouped[p, :, 2] > 0)
        if js.size:
            xy = grouped[p, js, :2].astype(np.int32)
            out[p] = np.mean(tags[js, xy[:, 1], xy[:, 0]], axis=0)
    return out


def refine_people(
    grouped: np.ndarray,
    heatmaps: np.ndarray,
    tags: np.ndarray,
    block: int = 16,
) -> np.ndarray:
    """Official ``HeatmapParser.refine`` applied to every person of one image.

    grouped: (P, J, 3 + T) float32 (after adjust or not); heatmaps: (J, H, W) float32 (before NMS);
    tags: (J, H, W, T) float32. Returns a new (P, J, 3 + T) float32.

    For each person and each joint with value exactly 0: the pixel (x, y) maximising
    heatmap - round(|tag - person tag|) (ties: lowest y * W + x; see tag_search) gives
    value v = heatmap[y, x]; when v > 0 the joint becomes (x + 0.5 + dx, y + 0.5 + dy, v) with the
    quarter offsets of adjust (applied whether or not adjust ran); its tag columns stay 0. A person
    with no joint of value > 0 has a NaN tag, and the official argmax then picks pixel (0, 0).
    Joints that have a value are untouched.

    block: block side of tag_argmax's pruned search (speed only; the result does not depend on it).
    """
    out = np.array(grouped, dtype=np.float32, copy=True)
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    if out.shape[0] == 0:
        return out
    J, H, W = heatmaps.shape
    centre = person_tags(out, tags)
    finite = np.isfinite(centre).all(axis=1)
    # Official argmax over all-NaN scores (a person without a tag) is pixel 0.
    pp, jj = np.nonzero((out[:, :, 2] == 0) & finite[:, None])
    idx = np.zeros((out.shape[0], J), dtype=np.int64)
    idx[pp, jj] = tag_argmax(heatmaps, tags, jj, centre[pp], block)
    pm, jm = np.nonzero(out[:, :, 2] == 0)
    i = idx[pm, jm]
    y, x = i // W, i % W
    v = heatmaps[jm, y, x]
    fill = v > 0
    pm, jm, x, y, v = pm[fill], jm[fill], x[fill], y[fill], v[fill]
    dx, dy = quarter_offsets(jm, heatmaps, x, y)
    out[pm, jm, 0] = x + 0.5 + dx
    out[pm, jm, 1] = y + 0.5 + dy
    out[pm, jm, 2] = v
    return out
