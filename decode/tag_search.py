"""Refine's search: per (person, joint), the pixel maximising ``heatmap - round(tag distance)``.

The official refine scores every pixel of every joint map for every person. ``tag_argmax`` finds the
same pixels while scoring only blocks that can hold a winner: a block's score is bounded above by
(its highest heatmap value) - round(lower bound of the tag distance to its tag bounding box), and a
block whose bound is below a score already reached cannot hold the maximum, nor a tie with it.
All searches of an image run together, so the NumPy call count does not grow with joints or people.
``dense_tag_argmax`` is the plain full-map search, kept as the reference the pruned one is tested
against.
"""

from __future__ import annotations

import numpy as np

#: Relative slack on the float64 distance bound: it must stay below the float32 distance the score
#: uses, which carries a few float32 roundings (relative error < 1e-6 all told).
_BOUND_SLACK = 1e-6
#: Pixels scored per NumPy call in the pruned search (bounds its temporaries to a few MB each).
_CHUNK_PIXELS = 1 << 20


def tag_scores(det: np.ndarray, tag: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Official refine score with tags in planes, in float32, equal bit for bit to the official
    ``det - np.round(((tag - center) ** 2).sum(axis=-1) ** 0.5)``.

    det: (N, M) float32 heatmap values; tag: (T, N, M) float32 tag planes at the same pixels;
    centers: (N, T) float32 mean tag per row. Returns (N, M) float32.
    The squares are summed channel 0 first, then 1, ...: NumPy sums a last axis of length T <= 2
    as that same single addition, so T = 1 and T = 2 (the real cases) match the official bits;
    for T >= 3 it may sum in another order.
    """
    diff = tag[0] - centers[:, 0, None]
    sq = diff * diff
    for c in range(1, tag.shape[0]):
        diff = tag[c] - centers[:, c, None]
        sq += diff * diff
    return det - np.round(np.sqrt(sq))


def dense_tag_argmax(
    heatmaps: np.ndarray, tags: np.ndarray, joints: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """Reference search over every pixel, one (joint, centre) at a time, with the official expression.

    heatmaps: (J, H, W) float32; tags: (J, H, W, T) float32; joints: (N,) int joint of each search;
    centers: (N, T) float32. Returns (N,) int64 flat index y * W + x of the maximum of
    heatmap - round(|tag - centre|); ties -> lowest flat index (np.argmax).
    """
    out = np.empty(len(joints), dtype=np.int64)
    for n, (j, c) in enumerate(zip(joints, centers)):
        dist = ((tags[j] - c[None, None, :]) ** 2).sum(axis=2) ** 0.5
        out[n] = int(np.argmax(heatmaps[j] - np.round(dist)))
    return out


def tag_argmax(
    heatmaps: np.ndarray, tags: np.ndarray, joints: np.ndarray, centers: np.ndarray, block: int = 16
) -> np.ndarray:
    """Same result as dense_tag_argmax, scoring only the blocks that can hold the maximum.

    heatmaps: (J, H, W) float32; tags: (J, H, W, T) float32; joints: (N,) int joint of each search;
    centers: (N, T) float32, finite. block: side in pixels of the square blocks the maps are cut
    into (maps are padded to a multiple with heatmap -inf, so padding never wins).
    Returns (N,) int64 flat index y * W + x; ties -> lowest flat index, as np.argmax. A search whose
    scores are all NaN (never with finite maps) falls back to the dense search.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    tags = np.asarray(tags, dtype=np.float32)
    joints = np.asarray(joints, dtype=np.int64).reshape(-1)
    N = len(joints)
    if N == 0:
        return np.zeros(0, dtype=np.int64)
    centers = np.asarray(centers, dtype=np.float32).reshape(N, -1)
    J, H, W = heatmaps.shape
    T = tags.shape[-1]
    B = int(block)
    hb, wb = -(-H // B), -(-W // B)
    nb, M = hb * wb, B * B

    # Only the joints searched: u indexes them, un[n] is search n's.
    used, un = np.unique(joints, return_inverse=True)
    det_p, tag_p = (heatmaps, tags) if len(used) == J else (heatmaps[used], tags[used])
    if (hb * B, wb * B) != (H, W):
        pad = ((0, 0), (0, hb * B - H), (0, wb * B - W))
        det_p = np.pad(det_p, pad, constant_values=-np.inf)
        # Edge padding keeps padded tags inside the real tag range, so bounds stay tight.
        tag_p = np.pad(tag_p, pad + ((0, 0),), mode="edge")
    U = det_p.shape[0]
    # Block layout, one contiguous row of M pixels per block: det (U, nb, M), tags (T, U, nb, M).
    det_b = det_p.reshape(U, hb, B, wb, B).transpose(0, 1, 3, 2, 4).reshape(U, nb, M)
    tag_b = tag_p.reshape(U, hb, B, wb, B, T).transpose(5, 0, 1, 3, 2, 4).reshape(T, U, nb, M)
    dy, dx = np.divmod(np.arange(M), B)
    by, bx = np.divmod(np.arange(nb), wb)
    # Flat index y * W + x of each block pixel; padding gets H * W, past every real pixel.
    py, px = by[:, None] * B + dy[None, :], bx[:, None] * B + dx[None, :]
    flat_b = np.where((py < H) & (px < W), py * W + px, H * W)

    # A lower bound on each search's best score: the exact score at every block's highest pixel.
    top = det_b.argmax(axis=2)
    b_max = np.take_along_axis(det_b, top[:, :, None], axis=2)[:, :, 0]
    tag_top = np.take_along_axis(tag_b, top[None, :, :, None], axis=3)[..., 0]  # (T, U, nb)
    best0 = tag_scores(b_max[un], tag_top[:, un], centers).max(axis=1)

    # Upper bound per (search, block): score <= b_max - round(dist) and round is non-decreasing, so
    # any distance lower bound d_lb gives round(dist) >= round(d_lb); float32 rounding of
    # b_max - k is monotone too, so the float32 bound holds for the float32 score.
    lo = tag_b.min(axis=3)[:, un].astype(np.float64)  # (T, N, nb)
    hi = tag_b.max(axis=3)[:, un].astype(np.float64)
    c64 = centers.T.astype(np.float64)[:, :, None]
    gap = np.maximum(np.maximum(lo - c64, c64 - hi), 0.0)
    d_lb = np.sqrt((gap * gap).sum(axis=0)) * (1.0 - _BOUND_SLACK)
    bound = b_max[un] - np.round(d_lb).astype(np.float32)

    # Score every pixel of every block that may hold a winner, in chunks of blocks so that flat
    # maps (many tied blocks) cannot blow up memory: first the best score per search, then the
    # lowest flat index reaching it, rescoring only the blocks whose maximum equals that best.
    pn, pb = np.nonzero(bound >= best0[:, None])
    pu = un[pn]
    step = max(1, _CHUNK_PIXELS // M)

    def score(sel: slice | np.ndarray) -> np.ndarray:
        return tag_scores(det_b[pu[sel], pb[sel]], tag_b[:, pu[sel], pb[sel]], centers[pn[sel]])

    f_max = np.concatenate([score(slice(i, i + step)).max(axis=1) for i in range(0, len(pn), step)])
    best = np.full(N, -np.inf, dtype=np.float32)
    np.maximum.at(best, pn, f_max)
    hit = np.flatnonzero(f_max == best[pn])
    out = np.full(N, H * W, dtype=np.int64)
    for i in range(0, len(hit), step):
        h = hit[i : i + step]
        first = np.where(score(h) == best[pn[h], None], flat_b[pb[h]], H * W).min(axis=1)
        np.minimum.at(out, pn[h], first)
    for n in np.flatnonzero(out >= H * W):
        out[n] = dense_tag_argmax(heatmaps, tags, joints[n : n + 1], centers[n : n + 1])[0]
    return out
