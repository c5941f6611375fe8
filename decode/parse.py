"""One-image decoder: NMS -> top-k -> grouping -> adjust -> scores -> refine."""

from __future__ import annotations

import numpy as np

from .adjust import adjust_joints
from .config import DecodeConfig
from .group import match_by_tag
from .nms import heatmap_nms
from .refine import refine_people
from .topk import top_k

#: The official COCO test settings.
DEFAULT_CONFIG = DecodeConfig()


def person_scores(grouped: np.ndarray) -> np.ndarray:
    """Official score: mean of the value column over all J joints (missing ones count as 0).

    grouped: (P, J, 3 + T) float32. Returns (P,) float32.
    """
    return np.asarray(grouped[:, :, 2].mean(axis=1), dtype=np.float32).reshape(grouped.shape[0])


def parse(
    heatmaps: np.ndarray, tags: np.ndarray, cfg: DecodeConfig = DEFAULT_CONFIG
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``HeatmapParser.parse`` for one image.

    heatmaps: (J, H, W) float32 aggregated heatmaps; tags: (J, H, W, T) float32 (T = 2 with flip
    test; a (J, H, W) map is taken as T = 1). Returns grouped (P, J, 3 + T) float32
    [x, y, detection value, tag_0..tag_T-1] in heatmap pixels (adjust adds the +0.5 and quarter
    pixel offsets; refine fills missing joints, which keep tag columns 0) and scores (P,) float32
    (mean detection value over joints, after adjust and before refine, as the official validation
    reports). No detection gives (0, J, 3 + T) and (0,).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if heatmaps.ndim != 3 or tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(
            f"expected heatmaps (J, H, W) and tags (J, H, W, T), got {heatmaps.shape} and {tags.shape}"
        )
    cfg.check(heatmaps.shape[0])
    det = heatmap_nms(heatmaps, cfg.nms_kernel, cfg.nms_padding)
    loc, val, tag_k = top_k(det, tags, cfg.max_people)
    grouped = match_by_tag(loc, val, tag_k, cfg)
    if cfg.adjust:
        grouped = adjust_joints(grouped, heatmaps)
    scores = person_scores(grouped)
    if cfg.refine:
        grouped = refine_people(grouped, heatmaps, tags)
    return grouped, scores
