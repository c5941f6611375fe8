"""adjust_joints: +0.5 and a quarter pixel towards the higher neighbour (clamped at borders)."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.decode import adjust_joints

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def _person(x: int, y: int, v: float = 0.5, joints: int = 1) -> np.ndarray:
    g = np.zeros((1, joints, 5), dtype=np.float32)
    g[0, 0] = (x, y, v, 1.5, -2.0)
    return g


def test_towards_higher_neighbour():
    h = np.zeros((1, 5, 6), dtype=np.float32)
    h[0, 2, 3] = 1.0
    h[0, 2, 4] = 0.6  # right > left: x + 0.25
    h[0, 1, 3] = 0.3  # up > down: y - 0.25
    out = adjust_joints(_person(3, 2), h)
    assert out[0, 0, :2].tolist() == [3.75, 2.25]
    assert out[0, 0, 2:].tolist() == [np.float32(0.5), 1.5, -2.0]


def test_equal_neighbours_go_minus_and_borders_clamp():
    h = np.zeros((1, 4, 4), dtype=np.float32)
    out = adjust_joints(_person(1, 1), h)
    assert out[0, 0, :2].tolist() == [1.25, 1.25]  # equal neighbours: -0.25 both ways
    h[0, 0, 0] = 1.0
    h[0, 0, 1] = 0.5  # at x = 0 the left neighbour is the pixel itself (1.0 > 0.5)
    out = adjust_joints(_person(0, 0), h)
    assert out[0, 0, :2].tolist() == [0.25, 0.25]
    h2 = np.zeros((1, 4, 4), dtype=np.float32)
    h2[0, 3, 3] = 0.1  # at the far corner the right/down neighbour is the pixel itself
    out = adjust_joints(_person(3, 3), h2)
    assert out[0, 0, :2].tolist() == [3.75, 3.75]


def test_missing_joints_untouched_and_input_kept():
    h = np.random.default_rng(0).random((2, 4, 4), dtype=np.float32)
    g = _person(2, 2, joints=2)
    before = g.copy()
    out = adjust_joints(g, h)
    assert np.array_equal(out[0, 1], np.zeros(5, dtype=np.float32))
    assert np.array_equal(g, before)
    assert adjust_joints(np.zeros((0, 2, 5), np.float32), h).shape == (0, 2, 5)
