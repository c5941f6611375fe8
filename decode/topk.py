"""Per-joint top-k of the NMS'd heatmaps, with the tag vectors at those pixels."""

from __future__ import annotations

import numpy as np


def top_k(
    nms_heatmaps: np.ndarray, tags: np.ndarray, k: int = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``HeatmapParser.top_k`` after NMS: the k highest pixels of each joint map.

    nms_heatmaps: (J, H, W) float32 (output of heatmap_nms). tags: (J, H, W, T) float32.
    k: candidates per joint; clipped to H * W (torch.topk would raise there).
    Returns loc (J, k, 2) int64 [x, y] in heatmap pixels, val (J, k) float32 and tag (J, k, T)
    float32 (tag vector at the pixel).

    Order: value descending; equal values by ascending flat index y * W + x (also at the cut-off:
    of several pixels tied with the k-th value, the lowest flat indices are taken). torch.topk leaves
    tie order unspecified; the parser only looks at values above the detection threshold, and the
    official vectors have no ties there, so this rule never disagrees with them.
    """
    det = np.asarray(nms_heatmaps, dtype=np.float32)
    tag = np.asarray(tags, dtype=np.float32)
    J, H, W = det.shape
    T = tag.shape[-1]
    k = min(int(k), H * W)
    flat = det.reshape(J, H * W)
    tflat = tag.reshape(J, H * W, T)
    ind = np.empty((J, k), dtype=np.int64)
    if k == H * W:
        # Everything is selected: only the ordering is left to do.
        ind[:] = np.argsort(-flat, axis=1, kind="stable")
    else:
        # The k-th largest value per joint; all pixels above it are in, and the lowest-index pixels
        # equal to it fill the remaining slots, which makes the cut-off deterministic.
        kth = -np.partition(-flat, k - 1, axis=1)[:, k - 1]
        for j in range(J):
            row = flat[j]
            above = np.flatnonzero(row > kth[j])
            tied = np.flatnonzero(row == kth[j])[: k - above.size]
            sel = np.concatenate([above, tied])
            # lexsort: last key is primary (value descending), then flat index ascending.
            ind[j] = sel[np.lexsort((sel, -row[sel]))]
    val = np.take_along_axis(flat, ind, axis=1)
    tag_k = np.take_along_axis(tflat, ind[:, :, None], axis=1)
    loc = np.stack([ind % W, ind // W], axis=2)
    return loc, val, tag_k
