"""refine: the pruned tag search equals the dense official search; refine_people fills missing joints."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.benchmarks.loop_decode import loop_refine_person
from higherhrnet_trt.decode import (
    dense_tag_argmax,
    person_tags,
    refine_people,
    tag_argmax,
    tag_scores,
)

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


@pytest.mark.parametrize("T", [1, 2])
def test_tag_scores_bitwise_official_expression(T):
    rng = np.random.default_rng(T)
    det = rng.normal(size=(6, 500)).astype(np.float32)
    tag = (rng.normal(size=(6, 500, T)) * rng.choice([1e-3, 1.0, 30.0], (6, 1, 1))).astype(np.float32)
    centre = rng.normal(size=(6, T)).astype(np.float32)
    official = det - np.round(((tag - centre[:, None, :]) ** 2).sum(axis=2) ** 0.5)
    assert np.array_equal(tag_scores(det, np.moveaxis(tag, 2, 0), centre), official)


def _tie_heavy_maps(rng: np.random.Generator, J: int, H: int, W: int, T: int):
    """heatmaps (J, H, W) and tags (J, H, W, T), float32."""
    # Heatmap values on a 1/8 grid and tags on a 1/2 grid: equal scores everywhere and tag distances
    # landing exactly on .5, where np.round goes to even.
    heat = (rng.integers(-2, 9, (J, H, W)) / 8).astype(np.float32)
    tags = (rng.integers(-8, 9, (J, H, W, T)) / 2).astype(np.float32)
    return heat, tags


@pytest.mark.parametrize("block", [4, 8, 16])
@pytest.mark.parametrize("T", [1, 2])
def test_pruned_search_equals_dense_with_ties(block, T):
    rng = np.random.default_rng(block * 10 + T)
    for H, W in [(37, 53), (32, 48), (16, 16), (5, 70)]:
        heat, tags = _tie_heavy_maps(rng, 3, H, W, T)
        joints = rng.integers(0, 3, 25)
        centres = (rng.integers(-10, 11, (25, T)) / 2).astype(np.float32)
        centres[:5] += rng.normal(0, 0.3, (5, T)).astype(np.float32)
        centres[5] = 40.0  # far from every tag: every pixel loses an equal integer
        got = tag_argmax(heat, tags, joints, centres, block)
        assert np.array_equal(got, dense_tag_argmax(heat, tags, joints, centres)), (H, W)


def test_pruned_search_smooth_maps():
    """Realistic maps: blobs over small noise, smooth tag planes with noise."""
    rng = np.random.default_rng(3)
    J, H, W = 4, 96, 128
    yy, xx = np.mgrid[0:H, 0:W]
    heat = rng.normal(0, 0.01, (J, H, W)).astype(np.float32)
    tags = np.stack([np.broadcast_to((xx / W * 6 - 3 + j)[..., None], (H, W, 2)) for j in range(J)])
    tags = (tags + rng.normal(0, 0.05, tags.shape)).astype(np.float32)
    for _ in range(8):
        j, cy, cx = rng.integers(J), rng.uniform(0, H), rng.uniform(0, W)
        heat[j] += (rng.uniform(0.2, 1) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 18)).astype(np.float32)
    joints = np.repeat(np.arange(J), 6)
    centres = rng.uniform(-4, 4, (len(joints), 2)).astype(np.float32)
    want = dense_tag_argmax(heat, tags, joints, centres)
    assert np.array_equal(tag_argmax(heat, tags, joints, centres), want)
    assert tag_argmax(heat, tags, np.zeros(0, int), np.zeros((0, 2), np.float32)).shape == (0,)


def test_refine_people_fills_only_missing_joints():
    rng = np.random.default_rng(0)
    J, H, W = 3, 12, 10
    heat = np.zeros((J, H, W), dtype=np.float32)
    tags = rng.normal(5, 0.1, (J, H, W, 2)).astype(np.float32)  # background tags far from the person
    heat[0, 4, 6] = 0.8
    tags[0, 4, 6] = (1.0, 1.1)
    heat[1, 7, 2] = 0.3
    tags[1, 7, 2] = (1.2, 0.9)
    heat[1, 7, 3] = 0.2  # right neighbour higher than left: x + 0.25
    grouped = np.zeros((1, J, 5), dtype=np.float32)
    grouped[0, 0] = (6.25, 4.75, 0.8, 1.0, 1.1)  # detected (already adjusted)
    out = refine_people(grouped, heat, tags)
    assert np.array_equal(out[0, 0], grouped[0, 0])  # detected joints are untouched
    assert out[0, 1].tolist() == [2.75, 7.25, np.float32(0.3), 0.0, 0.0]  # filled, tags stay 0
    # Joint 2 has no positive value anywhere: its best pixel has value 0, so it stays missing.
    assert np.array_equal(out[0, 2], np.zeros(5, dtype=np.float32))
    assert np.array_equal(person_tags(grouped, tags)[0], tags[0, 4, 6])
    assert np.array_equal(grouped[0, 1], np.zeros(5, dtype=np.float32))  # input not modified


def test_refine_people_matches_official_style_loop():
    rng = np.random.default_rng(1)
    J, H, W = 5, 40, 48
    heat, tags = _tie_heavy_maps(rng, J, H, W, 2)
    grouped = np.zeros((6, J, 5), dtype=np.float32)
    for p in range(6):
        for j in rng.choice(J, rng.integers(1, J), replace=False):
            x, y = rng.integers(W), rng.integers(H)
            grouped[p, j] = (x + 0.25, y + 0.75, rng.uniform(0.2, 1), *tags[j, y, x])
    want = np.stack([loop_refine_person(heat, tags, person) for person in grouped])
    assert np.array_equal(refine_people(grouped, heat, tags), want)
    assert np.array_equal(refine_people(grouped, heat, tags, block=4), want)


def test_person_without_detected_joint_takes_pixel_zero():
    """Official refine: np.mean of no tags is NaN, every score is NaN, np.argmax picks pixel 0."""
    heat = np.full((2, 4, 4), 0.5, dtype=np.float32)
    heat[1, 0, 0] = -0.1
    tags = np.zeros((2, 4, 4, 2), dtype=np.float32)
    out = refine_people(np.zeros((1, 2, 5), dtype=np.float32), heat, tags)
    assert out[0, 0].tolist() == [0.25, 0.25, 0.5, 0.0, 0.0]  # equal neighbours: -0.25
    assert np.array_equal(out[0, 1], np.zeros(5, dtype=np.float32))  # value -0.1 <= 0: not filled
