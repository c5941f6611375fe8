"""match_by_tag: official grouping semantics, including its dict-key quirks."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.benchmarks.loop_decode import loop_match
from higherhrnet_trt.decode import DecodeConfig, match_by_tag

pytest.importorskip("munkres")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

J, K = 3, 4
ORDER = DecodeConfig(joint_order=(0, 1, 2))


def _candidates(per_joint: dict[int, list[tuple[int, int, float, float, float]]]):
    """{joint: [(x, y, value, tag0, tag1), ...]} in top-k order -> loc, val, tag arrays."""
    loc = np.zeros((J, K, 2), dtype=np.int64)
    val = np.zeros((J, K), dtype=np.float32)
    tag = np.zeros((J, K, 2), dtype=np.float32)
    for j, rows in per_joint.items():
        for r, (x, y, v, t0, t1) in enumerate(rows):
            loc[j, r] = (x, y)
            val[j, r] = v
            tag[j, r] = (t0, t1)
    return loc, val, tag


def _both(cands, cfg=ORDER) -> np.ndarray:
    got = match_by_tag(*cands, cfg)
    want = loop_match(*cands, cfg)
    assert got.shape == want.shape and np.array_equal(got, want)
    return got


def test_simple_two_people():
    g = _both(_candidates({
        0: [(5, 5, 0.9, 1.0, 1.0), (20, 5, 0.8, -2.0, -2.0)],
        1: [(21, 9, 0.7, -2.1, -2.0), (6, 9, 0.6, 1.1, 0.9)],
    }))
    assert g.shape == (2, J, 5)
    assert g[0, 1].tolist() == [6, 9, np.float32(0.6), np.float32(1.1), np.float32(0.9)]
    assert g[1, 1, :2].tolist() == [21, 9]


def test_same_first_tag_in_first_joint_is_one_person():
    """Two candidates keyed by the same tag value: the later one overwrites the earlier."""
    g = _both(_candidates({0: [(5, 5, 0.9, 1.0, 1.0), (30, 8, 0.5, 1.0, -3.0)]}))
    assert g.shape == (1, J, 5)
    assert g[0, 0, :3].tolist() == [30, 8, 0.5]


def test_unmatched_candidate_with_existing_key_joins_that_person():
    """A candidate too far from every person starts a 'new' person keyed by its first tag; when an
    earlier person has that key, the joint lands in the earlier person, whose tag list restarts."""
    g = _both(_candidates({
        0: [(5, 5, 0.9, 1.0, 1.0), (20, 5, 0.8, -2.0, -2.0)],
        1: [(40, 40, 0.7, 1.0, 3.0)],  # distance 2 from person 0: no match, same key 1.0
        2: [(41, 44, 0.6, 1.0, 2.9)],  # near the restarted tag (1, 3) of person 0, far from (1, 1)
    }))
    assert g.shape == (2, J, 5)
    assert g[0, 1, :2].tolist() == [40, 40] and g[0, 2, :2].tolist() == [41, 44]


def test_max_people_limits_the_columns():
    cands = _candidates({
        0: [(5, 5, 0.9, 1.0, 1.0), (20, 5, 0.8, -2.0, -2.0), (35, 5, 0.7, 4.0, 4.0)],
        1: [(36, 9, 0.6, 4.05, 4.1)],
    })
    # Person 2 is not a column with max_people 2: the candidate near its tag starts person 3.
    g = _both(cands, DecodeConfig(joint_order=(0, 1, 2), max_people=2))
    assert g.shape == (4, J, 5) and g[3, 1, :2].tolist() == [36, 9] and g[2, 1, 2] == 0
    g = _both(cands, DecodeConfig(joint_order=(0, 1, 2), max_people=3))
    assert g.shape == (3, J, 5) and g[2, 1, :2].tolist() == [36, 9]
    # ignore_too_much: once max_people people exist, later joints are skipped altogether.
    g = _both(cands, DecodeConfig(joint_order=(0, 1, 2), max_people=3, ignore_too_much=True))
    assert g.shape == (3, J, 5) and (g[:, 1, 2] == 0).all()
    # A key collision bypasses the column limit: tag 4.0 is person 2's key.
    cands[2][1, 0] = (4.0, 4.1)
    g = _both(cands, DecodeConfig(joint_order=(0, 1, 2), max_people=2))
    assert g.shape == (3, J, 5) and g[2, 1, :2].tolist() == [36, 9]


def test_threshold_is_float64_strict():
    """float32 0.1 is above the float64 threshold 0.1, as in the official float64 comparison."""
    g = _both(_candidates({0: [(1, 1, 0.1, 0.0, 0.0)]}))
    assert g.shape == (1, J, 5)
    g = _both(_candidates({0: [(1, 1, 0.1, 0.0, 0.0)]}), DecodeConfig(joint_order=(0, 1, 2),
                                                                       detection_threshold=0.2))
    assert g.shape == (0, J, 5)


def test_random_against_loop_with_options():
    rng = np.random.default_rng(4)
    for trial in range(40):
        people = rng.uniform(-3, 3, (int(rng.integers(1, 8)), 2))
        loc = rng.integers(0, 50, (J, K, 2))
        pick = rng.integers(0, len(people), (J, K))
        tag = (people[pick] + rng.normal(0, 0.4, (J, K, 2))).astype(np.float32)
        if trial % 3 == 0:
            tag = np.round(tag)  # equal first tags across joints and people
        val = -np.sort(-rng.uniform(0, 1, (J, K)), axis=1).astype(np.float32)
        cfg = DecodeConfig(
            joint_order=tuple(int(j) for j in rng.permutation(J)),
            max_people=int(rng.integers(1, 6)),
            use_detection_val=bool(trial % 2),
            ignore_too_much=trial % 5 == 0,
        )
        _both((loc, val, tag), cfg)
