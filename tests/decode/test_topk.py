"""top_k: per-joint candidates in value order, ties by flat index, tags gathered."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.decode import top_k

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def test_order_locations_and_tags():
    J, H, W, T = 2, 4, 5, 2
    det = np.zeros((J, H, W), dtype=np.float32)
    det[0, 1, 3] = 0.9
    det[0, 3, 0] = 0.7
    det[1, 0, 4] = 0.2
    tags = np.arange(J * H * W * T, dtype=np.float32).reshape(J, H, W, T)
    loc, val, tag = top_k(det, tags, k=3)
    assert loc.shape == (J, 3, 2) and val.shape == (J, 3) and tag.shape == (J, 3, T)
    assert loc[0, 0].tolist() == [3, 1] and loc[0, 1].tolist() == [0, 3]
    assert val[0, :2].tolist() == [np.float32(0.9), np.float32(0.7)]
    assert np.array_equal(tag[0, 0], tags[0, 1, 3]) and np.array_equal(tag[1, 0], tags[1, 0, 4])
    # The remaining slots are zeros, lowest flat indices first.
    assert loc[0, 2].tolist() == [0, 0] and loc[1, 1].tolist() == [0, 0] and loc[1, 2].tolist() == [1, 0]


def test_ties_lowest_flat_index_first_even_at_the_cut():
    det = np.zeros((1, 3, 3), dtype=np.float32)
    det[0].flat[[8, 2, 5, 0]] = [0.5, 0.5, 0.5, 0.9]
    tags = np.zeros((1, 3, 3, 1), dtype=np.float32)
    loc, val, _ = top_k(det, tags, k=3)
    flat = loc[0, :, 1] * 3 + loc[0, :, 0]
    assert flat.tolist() == [0, 2, 5]
    assert val[0].tolist() == [np.float32(0.9), np.float32(0.5), np.float32(0.5)]


def test_matches_stable_sort_on_random_maps():
    rng = np.random.default_rng(0)
    det = rng.integers(0, 6, (3, 7, 9)).astype(np.float32) / 4  # many ties
    tags = rng.normal(size=(3, 7, 9, 2)).astype(np.float32)
    for k in (1, 5, 30, 63, 100):
        loc, val, tag = top_k(det, tags, k)
        kk = min(k, 63)
        for j in range(3):
            order = np.argsort(-det[j].ravel(), kind="stable")[:kk]
            assert np.array_equal(loc[j, :, 1] * 9 + loc[j, :, 0], order)
            assert np.array_equal(val[j], det[j].ravel()[order])
            assert np.array_equal(tag[j], tags[j].reshape(63, 2)[order])
