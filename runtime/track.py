"""Person IDs across frames: keypoint-similarity tracking of one source's people (``Tracker``).

Per frame, the people of the new frame are matched to the tracks of the frames before:

1. Prediction: every track's joints are moved by its constant velocity (the smoothed per-frame
   motion of its joints, pixels / frame) to where they should be now.
2. Cost: 1 - OKS (COCO object keypoint similarity with the dataset's sigmas) between a track's
   predicted joints and a person's joints, over the joints confident in both. 17 joints tell
   crossing people apart where their boxes overlap. A track missed for k frames has its scale
   widened (its position is less certain); pairs under ``min_oks`` are never matched.
3. Two stages, as ByteTrack: people scored >= ``high_score`` are matched to every confirmed track
   (seen or lost), then people between ``low_score`` and ``high_score`` to the confirmed tracks
   seen last frame that are still free (a weakly detected, partly occluded person keeps its
   track without weak false people starting tracks), then the remaining strong people to the
   tentative tracks. Each stage is one minimum-cost assignment where leaving a pair unmatched costs
   ``1 - min_oks``: ``lap.lapjv`` when ``lap`` is installed, else the project's Munkres
   (decode/munkres.py) on the same extended matrix, solved per group of people and tracks that can
   match at all (tiny groups: a crowd's frame costs no n^3 solve).
4. A strong person matched to no track opens a tentative track; it gets an ID (confirmed) after
   ``min_hits`` frames in a row. A confirmed track unmatched for more than ``max_lost`` frames is
   dropped; a tentative track unmatched once is dropped. IDs count up from 1 and are never reused.

State is bounded: at most ``max_tracks`` tracks (the oldest lost ones go first), each a few
(J, 2) arrays; no history is kept. One Tracker per source: frames of two cameras never share
tracks (``Pipeline(track=True)`` keeps one per source index).

Cost per frame, 30 people: see benchmarks/track_speed.py (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.decode.munkres import classic_munkres

#: COCO's OKS sigmas (core/keypoints.py has them per dataset; a Tracker takes the model's).
_DEFAULT_SIGMA = 0.08


@dataclass
class TrackerOptions:
    """Tracker settings (defaults chosen on generated videos, benchmarks/track_eval.py).

    high_score / low_score: person scores (mean joint score, ~0..1) of the two matching stages;
        people below low_score are not tracked (track_id -1).
    new_score: a strong person unmatched to any track opens one when scored >= this.
    min_oks: the least keypoint similarity (0..1) at which a person may continue a track.
    max_lost: frames a confirmed track stays findable after its person was last seen.
    min_hits: frames in a row a new track needs before it gets an ID (1: at once).
    kpt_thr: joints scored above this count in the similarity and move the track.
    velocity_smoothing: weight (0..1) of the newest per-frame motion in the track's velocity.
    lost_scale_growth: per missed frame, the track's area used by OKS grows by this fraction.
    max_tracks: most tracks kept (seen, lost and tentative together).
    """

    high_score: float = 0.2
    low_score: float = 0.15
    new_score: float = 0.2
    min_oks: float = 0.1
    max_lost: int = 30
    min_hits: int = 2
    kpt_thr: float = 0.1
    velocity_smoothing: float = 0.5
    lost_scale_growth: float = 0.5
    max_tracks: int = 200

    def check(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {self.low_score}, {self.high_score}")
        if not 0.0 < self.min_oks < 1.0:
            raise ValueError(f"min_oks must be in (0, 1), got {self.min_oks}")
        if self.max_lost < 0 or self.min_hits < 1 or self.max_tracks < 1:
            raise ValueError("max_lost >= 0, min_hits >= 1 and max_tracks >= 1 are needed")


# --------------------------------------------------------------------------------------------------
# Assignment
# --------------------------------------------------------------------------------------------------


def _lap_solver():
    """lap.lapjv when the ``lap`` package is installed, else None."""
    try:
        import lap  # noqa: PLC0415
    except ImportError:
        return None
    return lap


def _extended(cost: np.ndarray, limit: float) -> np.ndarray:
    """(R, C) cost -> the (R + C, C + R) square matrix where row i or column j may stay unmatched
    at ``limit / 2`` each (the matrix lapjv's ``extend_cost`` with ``cost_limit`` solves)."""
    r, c = cost.shape
    big = 1e6
    ext = np.full((r + c, c + r), big)
    ext[:r, :c] = np.where(cost < limit, cost, big)
    ext[:r, c:][np.arange(r), np.arange(r)] = limit / 2
    ext[r:, :c][np.arange(c), np.arange(c)] = limit / 2
    ext[r:, c:] = 0.0
    return ext


def _components(allowed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of each connected group of an (R, C) bool matrix of allowed pairs (rows and
    columns without any allowed pair are left out), by union-find over the pairs."""
    rows, cols = np.nonzero(allowed)
    r = allowed.shape[0]
    parent = list(range(r + allowed.shape[1]))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in zip(rows.tolist(), cols.tolist()):
        a, b = root(i), root(r + j)
        if a != b:
            parent[b] = a
    groups: dict[int, tuple[set, set]] = {}
    for i, j in zip(rows.tolist(), cols.tolist()):
        g = groups.setdefault(root(i), (set(), set()))
        g[0].add(i)
        g[1].add(j)
    return [(np.array(sorted(a)), np.array(sorted(b))) for a, b in groups.values()]


def assign(cost: np.ndarray, limit: float, use_lap: bool | None = None) -> list[tuple[int, int]]:
    """Minimum-cost matching of rows to columns where a row or column left unmatched costs
    ``limit / 2`` (so no pair of cost >= limit is ever matched).

    cost: (R, C) float. use_lap: None = lap when installed; False = the project's Munkres.
    Returns [(row, col)] sorted by row.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return []
    lap = _lap_solver() if use_lap is not False else None
    allowed = cost < limit
    # A pair that is its row's and its column's only allowed one is matched as it is (cheaper than
    # leaving both); the usual case of people apart from each other, solved without a solver.
    lone = allowed & (allowed.sum(axis=1, keepdims=True) == 1) & (allowed.sum(axis=0, keepdims=True) == 1)
    rows, cols = np.nonzero(lone)
    pairs: list[tuple[int, int]] = list(zip(rows.tolist(), cols.tolist()))
    allowed[rows, :] = False
    allowed[:, cols] = False
    for rows, cols in _components(allowed):
        sub = cost[np.ix_(rows, cols)]
        if lap is not None:
            _, x, _ = lap.lapjv(sub, extend_cost=True, cost_limit=limit)
            pairs += [(int(rows[i]), int(cols[j])) for i, j in enumerate(x) if j >= 0]
        else:
            ext = _extended(sub, limit)
            for i, j in classic_munkres(ext):
                if i < len(rows) and j < len(cols) and sub[i, j] < limit:
                    pairs.append((int(rows[i]), int(cols[j])))
    return sorted(pairs)


# --------------------------------------------------------------------------------------------------
# Similarity
# --------------------------------------------------------------------------------------------------


def oks_pairs(pred: np.ndarray, pred_known: np.ndarray, area: np.ndarray, joints: np.ndarray,
              confident: np.ndarray, sigmas: np.ndarray, min_common: int = 2) -> np.ndarray:
    """COCO OKS of K (track, person) pairs over the joints known in both.

    pred: (K, J, 2) a track's predicted joints, pixels; pred_known: (K, J) bool; area: (K,)
    pixels^2 (the OKS scale s^2); joints: (K, J, 2) the person's joints; confident: (K, J) bool;
    sigmas: (J,). Pairs sharing fewer than ``min_common`` joints get 0. Returns (K,) in [0, 1].
    """
    d2 = ((pred - joints) ** 2).sum(axis=2)
    e = d2 / ((8.0 * sigmas**2)[None, :] * np.maximum(area, 1.0)[:, None])  # d^2 / (2 s^2 (2 sigma)^2)
    both = pred_known & confident
    count = both.sum(axis=1)
    oks = np.where(both, np.exp(-e), 0.0).sum(axis=1) / np.maximum(count, 1)
    return np.where(count >= min_common, oks, 0.0)


def oks_matrix(pred: np.ndarray, pred_known: np.ndarray, area: np.ndarray, joints: np.ndarray,
               confident: np.ndarray, sigmas: np.ndarray, min_common: int = 2) -> np.ndarray:
    """oks_pairs for every (track, person): pred (T, J, 2), pred_known (T, J), area (T,); joints
    (D, J, 2), confident (D, J). Returns (T, D)."""
    t, d = pred.shape[0], joints.shape[0]
    ti, di = np.repeat(np.arange(t), d), np.tile(np.arange(d), t)
    return oks_pairs(pred[ti], pred_known[ti], area[ti], joints[di], confident[di], sigmas,
                     min_common).reshape(t, d)


def _centres(joints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J) -> (N, 2) mean of the masked joints (of all joints where none is)."""
    m = mask.copy()
    m[~m.any(axis=1)] = True
    return (joints * m[:, :, None]).sum(axis=1) / m.sum(axis=1)[:, None]


def _row_medians(values: np.ndarray) -> np.ndarray:
    """(N, J, 2) with NaN for missing -> (N, 2) median over J of the values present (>= 1 per row);
    np.nanmedian's result, without its per-call cost."""
    ordered = np.sort(values, axis=1)  # NaN last
    n = (~np.isnan(values[:, :, 0])).sum(axis=1)
    lo = np.take_along_axis(ordered, ((n - 1) // 2)[:, None, None].repeat(2, axis=2), axis=1)[:, 0]
    hi = np.take_along_axis(ordered, (n // 2)[:, None, None].repeat(2, axis=2), axis=1)[:, 0]
    return (lo + hi) / 2.0


def _box_areas(joints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J) -> (N,) area (pixels^2, sides at least 1 px) of the masked joints' box."""
    big = np.inf
    lo = np.where(mask[:, :, None], joints, big).min(axis=1)
    hi = np.where(mask[:, :, None], joints, -big).max(axis=1)
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    return np.maximum(span[:, 0], 1.0) * np.maximum(span[:, 1], 1.0)


# --------------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------------


class Tracker:
    """Stable integer IDs for the people of one source's frames, frame after frame.

    sigmas: the dataset's OKS sigmas, (J,) (the model's ``KeypointSet.sigmas``; None: 0.08 each).
    options: a TrackerOptions (None: the defaults). use_lap: None = ``lap`` when installed,
        False = the project's Munkres (same matching; benchmarks compare both).

    ``update(poses)`` -> the people's track IDs, (P,) int64: > 0 for a person of a confirmed track,
    -1 for one not tracked (scored below ``low_score``, or on a tentative track). The ``Pipeline``
    with ``track=True`` calls it and puts the IDs on ``Poses.track_ids``.

    State, T tracks (arrays, no history): ids (T,) (0 while tentative), joints (T, J, 2) pixels as
    last seen (joints not seen then keep their predicted place), known (T, J) joints ever seen,
    velocity (T, 2) pixels / frame, area (T,) pixels^2, last (T,) frame last seen, hits (T,).
    """

    def __init__(self, sigmas: Sequence[float] | None = None, options: TrackerOptions | None = None,
                 use_lap: bool | None = None) -> None:
        self.options = options or TrackerOptions()
        self.options.check()
        self.sigmas = None if sigmas is None else np.asarray(sigmas, dtype=np.float64)
        self.use_lap = use_lap
        self.frame = 0  # frames updated so far
        self._next_id = 1
        self._alloc(0 if self.sigmas is None else len(self.sigmas))

    def _alloc(self, num_joints: int) -> None:
        self.ids = np.zeros(0, np.int64)
        self.joints = np.zeros((0, num_joints, 2))
        self.known = np.zeros((0, num_joints), bool)
        self.velocity = np.zeros((0, 2))
        self.area = np.zeros(0)
        self.last = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)

    @property
    def num_tracks(self) -> int:
        """Tracks held now: seen, lost and tentative."""
        return int(self.ids.shape[0])

    @property
    def next_id(self) -> int:
        """The ID the next confirmed track gets (IDs are never reused)."""
        return self._next_id

    def reset(self) -> None:
        """Forget every track (a new scene); IDs keep counting up."""
        self._alloc(self.joints.shape[1])

    def update(self, poses) -> np.ndarray:
        """Match one frame's people to the tracks; returns their track IDs (P,) int64 (see class).

        poses: a Poses (keypoints (P, J, 3) [x, y, score] pixels, scores (P,)), or a (keypoints,
        scores) pair of arrays.
        """
        keypoints, scores = poses if isinstance(poses, tuple) else (poses.keypoints, poses.scores)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        kpts = np.asarray(keypoints, dtype=np.float64)
        if kpts.ndim != 3 or kpts.shape[0] != len(scores) or kpts.shape[2] < 3:
            raise ValueError(f"keypoints (P, J, 3) for P scores, got {kpts.shape} and {scores.shape}")
        if self.sigmas is None:
            self.sigmas = np.full(kpts.shape[1], _DEFAULT_SIGMA)
            self._alloc(kpts.shape[1])
        if kpts.shape[1] != len(self.sigmas):
            raise ValueError(f"{kpts.shape[1]} joints per person, the tracker has {len(self.sigmas)}")
        opt = self.options
        self.frame += 1
        xy = kpts[:, :, :2]
        conf = (kpts[:, :, 2] > opt.kpt_thr) & np.isfinite(xy).all(axis=2)
        xy = np.where(conf[:, :, None], xy, 0.0)
        finite = np.isfinite(scores)
        strong = finite & (scores >= opt.high_score)
        weak = finite & (scores >= opt.low_score) & ~strong

        gap = (self.frame - self.last).astype(np.float64)
        pred = self.joints + self.velocity[:, None, :] * gap[:, None, None]
        area = self.area * (1.0 + opt.lost_scale_growth * (gap - 1.0))
        sim = self._similarity(pred, area, xy, conf, strong | weak)

        match = np.full(len(scores), -1, np.int64)  # person -> track index
        confirmed = self.ids > 0
        self._match(sim, confirmed, strong, match)
        recent = confirmed & (gap == 1)
        self._match(sim, recent, weak, match)
        self._match(sim, ~confirmed, strong & (match < 0), match)

        people = np.flatnonzero(match >= 0)
        tracks = match[people]
        self._continue(tracks, xy[people], conf[people], pred[tracks], gap[tracks])
        keep = np.zeros(self.num_tracks, bool)
        keep[tracks] = True
        keep |= (self.ids > 0) & (self.frame - self.last <= opt.max_lost)
        ids = np.full(len(scores), -1, np.int64)
        ids[people] = self.ids[tracks]
        new = np.flatnonzero(strong & (match < 0) & (scores >= opt.new_score))
        self._select(keep)
        first = self.num_tracks
        self._open(xy[new], conf[new])
        ids[new] = self.ids[first:]
        ids[ids == 0] = -1
        self._bound()
        return ids

    def update_poses(self, poses):
        """update() for a Poses: the same Poses with ``track_ids`` set."""
        return poses.with_track_ids(self.update(poses))

    # -- steps ----------------------------------------------------------------------------------
    def _similarity(self, pred, area, xy, conf, tracked) -> np.ndarray:
        """(T, P) OKS of every track's prediction with every tracked person; 0 for pairs whose
        centres are more than 2 sqrt(area) apart (not compared: far beyond min_oks)."""
        t, p = self.num_tracks, xy.shape[0]
        sim = np.zeros((t, p))
        if t == 0 or not tracked.any():
            return sim
        tc = _centres(pred, self.known)
        pc = _centres(xy, conf)
        d2 = ((tc[:, None, :] - pc[None, :, :]) ** 2).sum(axis=2)
        near = (d2 <= 4.0 * np.maximum(area, 1.0)[:, None]) & tracked[None, :]
        ti, pi = np.nonzero(near)
        if ti.size:
            sim[ti, pi] = oks_pairs(pred[ti], self.known[ti], area[ti], xy[pi], conf[pi], self.sigmas)
        return sim

    def _match(self, sim: np.ndarray, tracks: np.ndarray, people: np.ndarray, match: np.ndarray) -> None:
        """One stage: the free ``tracks`` (T,) bool against ``people`` (P,) bool; into ``match``."""
        free = tracks.copy()
        free[match[match >= 0]] = False
        t_idx = np.flatnonzero(free)
        p_idx = np.flatnonzero(people & (match < 0))
        if t_idx.size == 0 or p_idx.size == 0:
            return
        cost = 1.0 - sim[np.ix_(t_idx, p_idx)]
        for r, c in assign(cost, 1.0 - self.options.min_oks, self.use_lap):
            match[p_idx[c]] = t_idx[r]

    def _continue(self, t: np.ndarray, xy: np.ndarray, conf: np.ndarray, pred: np.ndarray,
                  gap: np.ndarray) -> None:
        """Tracks ``t`` (M,) found again: their people's joints (M, J, 2) / conf (M, J), their
        predictions (M, J, 2) and frames since last seen (M,)."""
        if t.size == 0:
            return
        both = conf & self.known[t]
        moved = both.sum(axis=1) >= 2
        if moved.any():
            # Motion per frame of the joints seen now and before; the median ignores a joint that
            # jumped to another limb.
            diff = np.where(both[moved][:, :, None], xy[moved] - self.joints[t[moved]], np.nan)
            step = _row_medians(diff) / gap[moved][:, None]
            a = np.where(self.hits[t[moved]] > 1, self.options.velocity_smoothing, 1.0)[:, None]
            self.velocity[t[moved]] = a * step + (1.0 - a) * self.velocity[t[moved]]
        # Joints not seen now keep their predicted place, so a half-occluded person stays whole.
        self.joints[t] = np.where(conf[:, :, None], xy, pred)
        self.known[t] |= conf
        sized = conf.sum(axis=1) >= 2
        self.area[t[sized]] = _box_areas(xy[sized], conf[sized])
        self.last[t] = self.frame
        self.hits[t] += 1
        self._confirm(t)

    def _confirm(self, t: np.ndarray) -> None:
        """Give the tentative tracks among ``t`` their IDs once they have min_hits frames (all of
        them on the first frame), in track order."""
        due = t[(self.ids[t] == 0) & ((self.hits[t] >= self.options.min_hits) | (self.frame == 1))]
        due = np.sort(due)
        self.ids[due] = np.arange(self._next_id, self._next_id + due.size)
        self._next_id += int(due.size)

    def _open(self, xy: np.ndarray, conf: np.ndarray) -> None:
        """New tentative tracks for the people ``xy`` (N, J, 2) / ``conf`` (N, J)."""
        n = xy.shape[0]
        if n == 0:
            return
        self.ids = np.concatenate([self.ids, np.zeros(n, np.int64)])
        self.joints = np.concatenate([self.joints, xy])
        self.known = np.concatenate([self.known, conf])
        self.velocity = np.concatenate([self.velocity, np.zeros((n, 2))])
        self.area = np.concatenate([self.area, _box_areas(xy, conf)])
        self.last = np.concatenate([self.last, np.full(n, self.frame, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self._confirm(np.arange(self.num_tracks - n, self.num_tracks))

    def _select(self, keep: np.ndarray) -> None:
        for name in ("ids", "joints", "known", "velocity", "area", "last", "hits"):
            setattr(self, name, getattr(self, name)[keep])

    def _bound(self) -> None:
        """At most max_tracks: the longest-lost tracks are dropped first."""
        limit = self.options.max_tracks
        if self.num_tracks > limit:
            order = np.argsort(-self.last, kind="stable")[:limit]
            keep = np.zeros(self.num_tracks, bool)
            keep[order] = True
            self._select(keep)
