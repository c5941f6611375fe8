"""Baseline decoder for the speed benchmark: the official algorithm written as plain per-joint loops.

Same semantics as ``higherhrnet_trt.decode.parse`` (and as the official HeatmapParser), in
the shape of the official code: a dict of people keyed by first tag value, the ``munkres`` package
for the assignment, per-joint adjust, and a per-person refine that scores every pixel of every joint
map. It exists to measure what the vectorised decoder gains and to cross-check its outputs; the
runtime never imports it (it needs the ``munkres`` package at call time).
"""

from __future__ import annotations

import numpy as np

from higherhrnet_trt.decode.config import DecodeConfig


def loop_nms(heatmaps: np.ndarray, kernel: int = 5, padding: int = 2) -> np.ndarray:
    """heatmaps (J, H, W) float32 -> NMS'd (J, H, W) float32, one joint at a time."""
    J, H, W = heatmaps.shape
    out = np.empty_like(heatmaps)
    for j in range(J):
        padded = np.full((H + 2 * padding, W + 2 * padding), -np.inf, dtype=np.float32)
        padded[padding : padding + H, padding : padding + W] = heatmaps[j]
        rows = padded[:, 0:W].copy()
        for s in range(1, kernel):
            rows = np.maximum(rows, padded[:, s : s + W])
        pooled = rows[0:H].copy()
        for s in range(1, kernel):
            pooled = np.maximum(pooled, rows[s : s + H])
        out[j] = heatmaps[j] * (pooled == heatmaps[j])
    return out


def loop_top_k(det: np.ndarray, tags: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """det (J, H, W), tags (J, H, W, T) -> loc (J, k, 2) int64 [x, y], val (J, k), tag (J, k, T).

    Value descending, ties by lower flat index (also at the cut-off), as decode.topk.
    """
    J, H, W = det.shape
    k = min(k, H * W)
    loc = np.zeros((J, k, 2), dtype=np.int64)
    val = np.zeros((J, k), dtype=np.float32)
    tag = np.zeros((J, k, tags.shape[-1]), dtype=np.float32)
    for j in range(J):
        row = det[j].reshape(-1)
        kth = np.partition(row, H * W - k)[H * W - k]
        above = np.flatnonzero(row > kth)
        tied = np.flatnonzero(row == kth)[: k - above.size]
        sel = np.concatenate([above, tied])
        order = sorted(sel.tolist(), key=lambda i, r=row: (-float(r[i]), i))
        for n, i in enumerate(order):
            loc[j, n] = (i % W, i // W)
            val[j, n] = row[i]
            tag[j, n] = tags[j].reshape(H * W, -1)[i]
    return loc, val, tag


def loop_match(loc: np.ndarray, val: np.ndarray, tag: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """Official-style grouping with a dict of people and the munkres package."""
    from munkres import Munkres

    J, _, T = tag.shape
    empty = np.zeros((J, 3 + T))
    joint_dict: dict = {}
    tag_dict: dict = {}
    for step, j in enumerate(cfg.joint_order):
        joints = np.concatenate((loc[j], val[j, :, None], tag[j]), axis=1)
        keep = joints[:, 2] > cfg.detection_threshold
        tags = tag[j][keep]
        joints = joints[keep]
        if joints.shape[0] == 0:
            continue
        if step == 0 or len(joint_dict) == 0:
            for t, jt in zip(tags, joints):
                joint_dict.setdefault(t[0], np.copy(empty))[j] = jt
                tag_dict[t[0]] = [t]
            continue
        keys = list(joint_dict.keys())[: cfg.max_people]
        if cfg.ignore_too_much and len(keys) == cfg.max_people:
            continue
        means = np.array([np.mean(tag_dict[key], axis=0) for key in keys])
        dist = np.linalg.norm(joints[:, None, 3:] - means[None, :, :], ord=2, axis=2)
        cost = np.round(dist) * 100 - joints[:, 2:3] if cfg.use_detection_val else dist.copy()
        n_rows, n_cols = dist.shape
        if n_rows > n_cols:
            cost = np.concatenate((cost, np.zeros((n_rows, n_rows - n_cols)) + 1e10), axis=1)
        for r, c in Munkres().compute(cost):
            if r < n_rows and c < n_cols and dist[r][c] < cfg.tag_threshold:
                joint_dict[keys[c]][j] = joints[r]
                tag_dict[keys[c]].append(tags[r])
            else:
                joint_dict.setdefault(tags[r][0], np.copy(empty))[j] = joints[r]
                tag_dict[tags[r][0]] = [tags[r]]
    if not joint_dict:
        return np.zeros((0, J, 3 + T), dtype=np.float32)
    return np.array([joint_dict[key] for key in joint_dict]).astype(np.float32)


def _quarter(hm: np.ndarray, x: int, y: int) -> tuple[float, float]:
    H, W = hm.shape
    dx = 0.25 if hm[y, min(x + 1, W - 1)] > hm[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if hm[min(y + 1, H - 1), x] > hm[max(y - 1, 0), x] else -0.25
    return dx, dy


def loop_adjust(grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Quarter-pixel adjust, one joint of one person at a time."""
    out = grouped.copy()
    for p in range(out.shape[0]):
        for j in range(out.shape[1]):
            if out[p, j, 2] > 0:
                x, y = int(out[p, j, 0]), int(out[p, j, 1])
                dx, dy = _quarter(heatmaps[j], x, y)
                out[p, j, 0:2] = (x + 0.5 + dx, y + 0.5 + dy)
    return out


def loop_refine_person(heatmaps: np.ndarray, tags: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Official refine of one person: score every pixel of every joint map."""
    out = person.copy()
    found = []
    for j in range(out.shape[0]):
        if out[j, 2] > 0:
            x, y = out[j, :2].astype(np.int32)
            found.append(tags[j, y, x])
    centre = np.mean(found, axis=0)
    for j in range(out.shape[0]):
        hm = heatmaps[j]
        dist = ((tags[j] - centre[None, None, :]) ** 2).sum(axis=2) ** 0.5
        y, x = np.unravel_index(np.argmax(hm - np.round(dist)), hm.shape)
        v = hm[y, x]
        if v > 0 and out[j, 2] == 0:
            dx, dy = _quarter(hm, int(x), int(y))
            out[j, 0:3] = (x + 0.5 + dx, y + 0.5 + dy, v)
    return out


def loop_parse(
    heatmaps: np.ndarray, tags: np.ndarray, cfg: DecodeConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as decode.parse: (P, J, 3 + T) float32 and scores (P,) float32."""
    cfg = cfg or DecodeConfig()
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    det = loop_nms(heatmaps, cfg.nms_kernel, cfg.nms_padding)
    grouped = loop_match(*loop_top_k(det, tags, cfg.max_people), cfg)
    if cfg.adjust:
        grouped = loop_adjust(grouped, heatmaps)
    scores = np.array([person[:, 2].mean() for person in grouped], dtype=np.float32)
    if cfg.refine:
        grouped = np.array([loop_refine_person(heatmaps, tags, p) for p in grouped], dtype=np.float32)
        grouped = grouped.reshape(-1, heatmaps.shape[0], 3 + tags.shape[-1])
    return grouped, scores
