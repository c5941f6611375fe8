"""Grouping: assign each joint's candidates to people by associative-embedding tag, joint by joint."""

from __future__ import annotations

import numpy as np

from .config import DecodeConfig
from .munkres import classic_munkres

#: Cost of a padding column (a candidate matched there starts a new person), as in the official code.
PAD_COST = 1e10


class _People:
    """People in creation order (the official dict's insertion order), keyed by their first tag value.

    Holds the grouped joints (P, J, 3 + T) float32 and, per person, the list of tags that the
    official ``tag_dict`` holds, so that the mean tag is ``np.mean`` of the same (n, T) float32 stack
    in the same order. That matters to the last bit: NumPy sums an (n, 2) stack along axis 0 row
    by row but an (n, 1) stack pairwise (8 partial sums once n >= 8); calling np.mean on the same
    stack reproduces whichever it does.
    """

    def __init__(self, num_joints: int, tag_dim: int, capacity: int) -> None:
        cap = max(capacity, 1)
        self.joints = np.zeros((cap, num_joints, 3 + tag_dim), dtype=np.float32)
        # A person gains at most one tag per joint step, so num_joints + 1 entries always suffice.
        self.tag_list = np.zeros((cap, num_joints + 1, tag_dim), dtype=np.float32)
        self.tag_count = np.zeros(cap, dtype=np.int64)
        self.mean = np.zeros((cap, tag_dim), dtype=np.float32)
        self.stale = np.zeros(cap, dtype=bool)
        # float(key) -> person index. Python float keys behave as the official np.float32 keys:
        # 0.0 and -0.0 are one key, and every NaN is a key of its own.
        self.index: dict[float, int] = {}
        self.count = 0

    def start(self, joint: int, row: np.ndarray, tag: np.ndarray) -> None:
        """Official ``joint_dict.setdefault(tag[0], zeros)[joint] = row; tag_dict[tag[0]] = [tag]``.

        A new key appends a person. A key that already exists (two people with the same first tag
        value) does not: the joint is written into that earlier person, overwriting whatever it
        had at this joint, and its tag list restarts as [tag]; it keeps its place in the order.
        """
        key = float(tag[0])
        p = self.index.get(key)
        if p is None:
            p = self.count
            self.count += 1
            self.index[key] = p
        self.joints[p, joint] = row
        self.tag_list[p, 0] = tag
        self.tag_count[p] = 1
        self.stale[p] = True

    def extend(self, p: int, joint: int, row: np.ndarray, tag: np.ndarray) -> None:
        """Official match branch: ``joint_dict[key][joint] = row; tag_dict[key].append(tag)``."""
        self.joints[p, joint] = row
        self.tag_list[p, self.tag_count[p]] = tag
        self.tag_count[p] += 1
        self.stale[p] = True

    def mean_tags(self, n: int) -> np.ndarray:
        """(n, T) float32 mean tag of the first n people (official ``np.mean(tag_dict[key], axis=0)``)."""
        for p in np.flatnonzero(self.stale[:n]):
            self.mean[p] = np.mean(self.tag_list[p, : self.tag_count[p]], axis=0)
            self.stale[p] = False
        return self.mean[:n]


def match_cost(
    cand_tags: np.ndarray, cand_vals: np.ndarray, person_tags: np.ndarray, use_detection_val: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Cost matrix of one joint step, in float64 as the official code computes it.

    cand_tags: (A, T) float32 tags of the candidates; cand_vals: (A,) float32 their values;
    person_tags: (G, T) float32 mean tags of the matchable people.
    Returns (cost, dist): dist (A, G) float64 L2 tag distance; cost (A, max(A, G)) float64 =
    round(dist) * 100 - value (np.round: half to even), or dist itself without use_detection_val,
    padded with PAD_COST columns when A > G so every candidate can go to a new person.
    """
    diff = cand_tags.astype(np.float64)[:, None, :] - person_tags.astype(np.float64)[None, :, :]
    dist = np.linalg.norm(diff, ord=2, axis=2)
    if use_detection_val:
        cost = np.round(dist) * 100 - cand_vals.astype(np.float64)[:, None]
    else:
        cost = dist.copy()
    a, g = dist.shape
    if a > g:
        cost = np.concatenate([cost, np.full((a, a - g), PAD_COST)], axis=1)
    return cost, dist


def match_by_tag(loc: np.ndarray, val: np.ndarray, tag: np.ndarray, cfg: DecodeConfig) -> np.ndarray:
    """Official ``match_by_tag``: group the top-k candidates into people.

    loc: (J, K, 2) int [x, y]; val: (J, K) float32; tag: (J, K, T) float32 (output of top_k).
    Returns (P, J, 3 + T) float32 [x, y, value, tag...] in heatmap pixels; joints a person lacks
    are all zero. People are in creation order.

    For joint j in cfg.joint_order, the candidates are the top-k entries with float64(value) >
    detection_threshold, in top-k order (rows). If no person exists yet (first joint in the order,
    or no earlier joint had a candidate), every candidate starts a person, in row order. Otherwise
    the first min(P, max_people) people are the columns, each as the float32 np.mean of its tag
    list; the cost is match_cost, and classic_munkres assigns rows to columns. Pairs are applied in
    row order: a pair whose column is a real person and whose float64 tag distance is
    < tag_threshold extends that person (joint set, tag appended); any other row starts a person.
    With ignore_too_much, a joint step is skipped entirely once max_people people exist.

    Starting a person is the official ``dict.setdefault`` keyed by the candidate's first tag value
    (float32 value; 0.0 and -0.0 are one key, NaNs are all distinct). A new key appends a person at
    the end (people order = first insertion of each key). An existing key, i.e. a person (any
    person, also one beyond max_people) whose key (the first tag value of the candidate that
    created it) equals this one, gets this joint written over whatever it had there and its tag
    list restarted as [tag]; it keeps its place and key, and no person is added. So two candidates
    of the first joint with equal first tags make one person holding the later candidate.
    """
    loc = np.asarray(loc)
    val = np.asarray(val, dtype=np.float32)
    tag = np.asarray(tag, dtype=np.float32)
    J, K, T = tag.shape
    people = _People(J, T, capacity=J * K)
    rows_all = np.concatenate(
        [loc.astype(np.float32), val[:, :, None], tag], axis=2
    )  # (J, K, 3 + T): exact, pixel indices are far below 2**24
    for step, j in enumerate(cfg.joint_order):
        keep = val[j].astype(np.float64) > cfg.detection_threshold
        if not keep.any():
            continue
        rows = rows_all[j][keep]
        tags = tag[j][keep]
        if step == 0 or people.count == 0:
            for r in range(rows.shape[0]):
                people.start(j, rows[r], tags[r])
            continue
        g = min(people.count, cfg.max_people)
        if cfg.ignore_too_much and g == cfg.max_people:
            continue
        cost, dist = match_cost(tags, val[j][keep], people.mean_tags(g), cfg.use_detection_val)
        for r, c in classic_munkres(cost).tolist():
            if c < g and dist[r, c] < cfg.tag_threshold:
                people.extend(c, j, rows[r], tags[r])
            else:
                people.start(j, rows[r], tags[r])
    return people.joints[: people.count].copy()
