"""heatmap_nms / window_max: the official max-pool-equality NMS."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.decode import heatmap_nms, window_max

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def _brute_window_max(h: np.ndarray, p: int) -> np.ndarray:
    J, H, W = h.shape
    out = np.empty_like(h)
    for j in range(J):
        for y in range(H):
            for x in range(W):
                out[j, y, x] = h[j, max(y - p, 0) : y + p + 1, max(x - p, 0) : x + p + 1].max()
    return out


@pytest.mark.parametrize("padding", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 9, 13), (1, 1, 1), (1, 3, 20), (3, 6, 2)])
def test_window_max_matches_brute_force(shape, padding):
    rng = np.random.default_rng(sum(shape) + padding)
    h = rng.integers(-3, 4, shape).astype(np.float32)  # small integers: many plateaus
    assert np.array_equal(window_max(h, 2 * padding + 1, padding), _brute_window_max(h, padding))


def test_nms_keeps_local_maxima_and_plateaus():
    h = np.zeros((1, 8, 8), dtype=np.float32)
    h[0, 2, 2] = 0.9
    h[0, 2, 3] = 0.5  # inside 0.9's window: suppressed
    h[0, 6, 6] = h[0, 6, 7] = 0.4  # plateau: both kept (equality, not a strict max)
    h[0, 0, 7] = -0.2  # far from everything but surrounded by zeros: not a max
    out = heatmap_nms(h)
    assert out[0, 2, 2] == np.float32(0.9) and out[0, 2, 3] == 0
    assert out[0, 6, 6] == out[0, 6, 7] == np.float32(0.4)
    assert out[0, 0, 7] == 0


def test_nms_negative_local_max_survives():
    h = np.full((1, 7, 7), -1.0, dtype=np.float32)
    h[0, 3, 3] = -0.5
    out = heatmap_nms(h)
    assert out[0, 3, 3] == np.float32(-0.5)
    yy, xx = np.mgrid[0:7, 0:7]
    near = (np.maximum(abs(yy - 3), abs(xx - 3)) <= 2) & ((yy != 3) | (xx != 3))
    # Suppressed negatives become -0.0, as det * 0.0 does in the official code.
    assert (out[0][near] == 0).all() and np.signbit(out[0][near]).all()
    # Farther away, the flat -1 background is its own window max: kept.
    assert (out[0][~near & ((yy != 3) | (xx != 3))] == -1).all()


def test_nms_window_reach():
    """Kernel 5 / padding 2: a higher value 2 pixels away suppresses, 3 pixels away does not."""
    h = np.zeros((1, 1, 10), dtype=np.float32)
    h[0, 0, [2, 4, 7]] = [0.3, 0.5, 0.4]
    out = heatmap_nms(h, 5, 2)
    assert out[0, 0, 2] == 0 and out[0, 0, 4] == np.float32(0.5) and out[0, 0, 7] == np.float32(0.4)


def test_nms_all_zero_and_shape_checks():
    z = np.zeros((3, 5, 4), dtype=np.float32)
    assert np.array_equal(heatmap_nms(z), z)
    with pytest.raises(ValueError):
        heatmap_nms(z, 5, 1)
