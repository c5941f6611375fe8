"""The vectorised decoder and the per-joint-loop baseline agree bit for bit on synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.benchmarks.decode_speed import synthetic_scene
from higherhrnet_trt.benchmarks.loop_decode import loop_parse
from higherhrnet_trt.decode import DecodeConfig, parse

pytest.importorskip("munkres")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def _same(a, b):
    return all(x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    ("seed", "size", "people", "tag_dim", "cfg"),
    [
        (1, (96, 128), 6, 2, DecodeConfig()),
        (2, (128, 96), 12, 2, DecodeConfig()),
        (3, (64, 64), 4, 1, DecodeConfig()),
        (4, (80, 112), 9, 2, DecodeConfig(adjust=False)),
        (5, (96, 96), 10, 2, DecodeConfig(use_detection_val=False, tag_threshold=0.6)),
        # More candidates than max_people: spurious peaks and many people, small max_people.
        (6, (128, 128), 36, 2, DecodeConfig()),
        (7, (96, 128), 12, 2, DecodeConfig(max_people=5)),
        (8, (96, 128), 12, 2, DecodeConfig(max_people=5, ignore_too_much=True)),
    ],
)
def test_vectorised_equals_loop(seed, size, people, tag_dim, cfg):
    heatmaps, tags = synthetic_scene(seed, size=size, people=people, tag_dim=tag_dim, sigma=2.0, spurious=6)
    fast = parse(heatmaps, tags, cfg)
    assert fast[0].shape[0] > 0
    assert _same(fast, loop_parse(heatmaps, tags, cfg))


def test_synthetic_scene_is_deterministic():
    a = synthetic_scene(0, size=(32, 48), people=3)
    b = synthetic_scene(0, size=(32, 48), people=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (17, 32, 48) and a[1].shape == (17, 32, 48, 2)
