"""runtime/track.py: person IDs on hand-made sequences, IDs worked out by hand.

Each sequence places stick people (17 COCO joints around a centre) frame by frame; the expected
IDs follow from the tracker's rules (IDs count from 1 in order of confirmation, a new person
after frame 1 gets its ID on its second frame, a person lost past max_lost gets a new one).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.runtime.track import Tracker, TrackerOptions, assign

#: A standing person 100 px tall, centre at the pelvis, (17, 2) offsets in pixels.
BODY = np.array([
    [0, -45], [-3, -48], [3, -48], [-6, -46], [6, -46],  # nose, eyes, ears
    [-12, -32], [12, -32], [-16, -16], [16, -16], [-18, 0], [18, 0],  # shoulders, elbows, wrists
    [-8, 0], [8, 0], [-9, 25], [9, 25], [-10, 50], [10, 50],  # hips, knees, ankles
], dtype=np.float64)
#: The same person with both arms raised above the head.
ARMS_UP = BODY.copy()
ARMS_UP[7:11] = [[-16, -50], [16, -50], [-18, -68], [18, -68]]


def person(x: float, y: float, body: np.ndarray = BODY, score: float = 0.8) -> np.ndarray:
    """(17, 3) keypoints [x, y, score] of a person centred at (x, y)."""
    out = np.empty((17, 3))
    out[:, :2] = body + (x, y)
    out[:, 2] = score
    return out


def frame(*people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame's (keypoints (P, 17, 3), scores (P,)); person scores are the mean joint scores."""
    if not people:
        return np.zeros((0, 17, 3)), np.zeros(0)
    kpts = np.stack(people)
    return kpts, kpts[:, :, 2].mean(axis=1)


def tracker(**options) -> Tracker:
    return Tracker(COCO.sigmas, TrackerOptions(**options), use_lap=False)


def run(trk: Tracker, frames) -> list[list[int]]:
    return [trk.update(f).tolist() for f in frames]


def test_two_people_swapping_places_keep_their_ids():
    # A (arms down) walks right from x=100, B (arms up) walks left from x=300, 10 px a frame, on
    # the same line: they overlap fully at frame 10 (x=200) and end at each other's start.
    # People are listed B first from frame 10 on, so the order of the list cannot carry the IDs.
    trk = tracker()
    seen = []
    for k in range(21):
        a, b = person(100 + 10 * k, 200), person(300 - 10 * k, 200, ARMS_UP)
        ids = trk.update(frame(a, b) if k < 10 else frame(b, a)).tolist()
        seen.append(ids if k < 10 else ids[::-1])
    assert seen == [[1, 2]] * 21


def test_person_occluded_for_a_few_frames_keeps_its_id():
    # A walks right 8 px a frame; frames 6, 7, 8 (1-based) it is hidden; B stands still. A is
    # predicted at constant velocity while hidden and matches again at frame 9.
    trk = tracker()
    out = []
    for k in range(12):
        a = person(100 + 8 * k, 150)
        b = person(400, 150)
        out.append(trk.update(frame(b) if 5 <= k <= 7 else frame(a, b)).tolist())
    assert out == [[1, 2]] * 5 + [[2]] * 3 + [[1, 2]] * 4


def test_person_partly_seen_with_a_low_score_keeps_its_track():
    # Frames 3-4: A's legs are missed and its score falls to 0.17 (under high_score 0.2, over
    # low_score 0.15): the second stage keeps it. A weak false person (0.17) elsewhere opens nothing.
    trk = tracker()
    weak = person(300, 300)
    weak[:, 2] = 0.17
    out = []
    for k in range(6):
        a = person(100 + 5 * k, 150)
        if k in (2, 3):
            a[11:, 2] = 0.0
            a[:11, 2] = 0.263  # mean over 17 joints: 0.170
        out.append(trk.update(frame(a, weak)).tolist())
    assert [o[0] for o in out] == [1] * 6
    assert [o[1] for o in out] == [-1] * 6


def test_leaving_and_new_person_at_the_same_spot_get_different_ids():
    # A walks out at the right (gone after frame 5); with max_lost=3 its track is dropped after
    # frame 9. From frame 12 B stands where A was last seen: B is new. Its first frame gets -1
    # (tentative), then ID 2: ID 1 is never given again.
    trk = tracker(max_lost=3)
    out = []
    for k in range(15):
        if k < 5:
            f = frame(person(560 + 10 * k, 200))
        elif k < 11:
            f = frame()
        else:
            f = frame(person(600, 200, ARMS_UP))
        out.append(trk.update(f).tolist())
    assert out == [[1]] * 5 + [[]] * 6 + [[-1], [2], [2], [2]]


def test_new_person_after_the_first_frame_waits_one_frame_for_its_id():
    trk = tracker()
    out = run(trk, [frame(person(100, 100)), frame(person(100, 100), person(300, 100)),
                    frame(person(100, 100), person(300, 100))])
    assert out == [[1], [1, -1], [1, 2]]


def test_ids_are_not_reused_after_reset():
    trk = tracker()
    assert trk.update(frame(person(100, 100), person(300, 100))).tolist() == [1, 2]
    trk.reset()
    run(trk, [frame(person(100, 100))])
    assert trk.update(frame(person(100, 100))).tolist() == [3]


def brute_force(cost: np.ndarray, limit: float) -> float:
    """Least total cost over every partial matching, each unmatched row or column at limit / 2."""
    r, c = cost.shape
    best = (r + c) * limit / 2
    for k in range(1, min(r, c) + 1):
        for rows in itertools.combinations(range(r), k):
            for cols in itertools.permutations(range(c), k):
                pairs = [cost[i, j] for i, j in zip(rows, cols)]
                if max(pairs) < limit:
                    best = min(best, sum(pairs) + (r + c - 2 * k) * limit / 2)
    return best


@pytest.mark.parametrize("use_lap", [False, None])
def test_assignment_is_the_least_cost_partial_matching(use_lap):
    if use_lap is None:
        pytest.importorskip("lap")
    rng = np.random.default_rng(0)
    for _ in range(60):
        r, c = rng.integers(1, 5, 2)
        cost = rng.uniform(0, 1, (r, c))
        limit = 0.6
        pairs = assign(cost, limit, use_lap=use_lap)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        total = sum(cost[i, j] for i, j in pairs) + (r + c - 2 * len(pairs)) * limit / 2
        assert all(cost[i, j] < limit for i, j in pairs)
        assert total == pytest.approx(brute_force(cost, limit))


def test_state_is_bounded_over_10000_frames_of_people_coming_and_going():
    # A person enters every 25 frames at one of 8 spots 300 px apart (in turn), walks 1 px a frame
    # for 60 frames and leaves; at most 3 are in view. A track outlives its person by max_lost=30
    # frames, so at most 3 seen + 2 lost (+1 tentative) tracks exist at once, however long the
    # run. A spot's last person left 140 frames before the next comes: each person is a new ID.
    rng = np.random.default_rng(1)
    trk = tracker(max_lost=30)
    spots = [np.array([200.0 + 300 * (s % 4), 200.0 + 300 * (s // 4)]) for s in range(8)]
    people: list[tuple[int, np.ndarray, np.ndarray]] = []  # (start frame, start, velocity)
    most = 0
    for k in range(10_000):
        if k % 25 == 0:
            people.append((k, spots[(k // 25) % 8], rng.choice([-1.0, 1.0], 2)))
        people = [p for p in people if k - p[0] < 60]
        trk.update(frame(*[person(*(s + v * (k - t0))) for t0, s, v in people]))
        most = max(most, trk.num_tracks)
    assert most <= 6
    assert trk.next_id == 10_000 // 25 + 1  # every person one ID, none split
