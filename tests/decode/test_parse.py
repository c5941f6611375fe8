"""parse: configuration, shapes and the edge cases the runtime relies on."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from higherhrnet_trt.core.keypoints import COCO, CROWDPOSE
from higherhrnet_trt.decode import DEFAULT_CONFIG, DecodeConfig, parse

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def test_defaults_are_the_official_test_config():
    cfg = DecodeConfig()
    assert cfg == DEFAULT_CONFIG
    assert cfg.joint_order == (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
    assert (cfg.max_people, cfg.detection_threshold, cfg.tag_threshold) == (30, 0.1, 1.0)
    assert cfg.use_detection_val and not cfg.ignore_too_much and cfg.adjust and cfg.refine
    assert (cfg.nms_kernel, cfg.nms_padding) == (5, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_people = 3  # type: ignore[misc]


def test_for_keypoints():
    assert DecodeConfig.for_keypoints(COCO) == DecodeConfig()
    cp = DecodeConfig.for_keypoints(CROWDPOSE, refine=False)
    assert cp.joint_order == CROWDPOSE.joint_order and not cp.refine


@pytest.mark.parametrize("T", [1, 2])
def test_all_zero_maps_give_no_people(T):
    grouped, scores = parse(np.zeros((17, 32, 24), np.float32), np.zeros((17, 32, 24, T), np.float32))
    assert grouped.shape == (0, 17, 3 + T) and grouped.dtype == np.float32
    assert scores.shape == (0,) and scores.dtype == np.float32


def test_peaks_below_threshold_give_no_people():
    h = np.zeros((17, 16, 16), np.float32)
    h[:, 8, 8] = 0.15
    grouped, scores = parse(h, np.zeros((17, 16, 16, 2), np.float32), DecodeConfig(detection_threshold=0.2))
    assert grouped.shape == (0, 17, 5) and scores.shape == (0,)


def test_single_person_and_three_d_tags():
    h = np.zeros((17, 20, 20), np.float32)
    h[3, 5, 7] = 0.8
    h[3, 5, 8] = 0.5  # right neighbour higher: x + 0.25
    tags = np.full((17, 20, 20), 2.0, np.float32)
    grouped, scores = parse(h, tags, DecodeConfig(refine=False))
    assert grouped.shape == (1, 17, 4)
    assert grouped[0, 3].tolist() == [7.75, 5.25, np.float32(0.8), 2.0]
    assert scores.tolist() == [np.float32(np.float32(0.8) / 17)]
    refined, _ = parse(h, tags)
    # Every other joint map is all zero: refine's best pixel has value 0, so nothing is added.
    assert np.array_equal(refined, grouped)


def test_crowdpose_fourteen_joints():
    rng = np.random.default_rng(0)
    h = (rng.random((14, 24, 24)) * 0.3).astype(np.float32)
    t = rng.normal(size=(14, 24, 24, 2)).astype(np.float32)
    grouped, scores = parse(h, t, DecodeConfig.for_keypoints(CROWDPOSE))
    assert grouped.shape[1:] == (14, 5) and scores.shape == (grouped.shape[0],)
    with pytest.raises(ValueError, match="joint_order"):
        parse(h, t)  # COCO order on 14 joints


def test_bad_shapes_and_config():
    h = np.zeros((17, 8, 8), np.float32)
    with pytest.raises(ValueError):
        parse(h, np.zeros((17, 8, 9, 2), np.float32))
    with pytest.raises(ValueError):
        parse(h, np.zeros((17, 8, 8, 2), np.float32), DecodeConfig(nms_kernel=3, nms_padding=2))


def test_runtime_decode_does_not_import_torch():
    code = "import sys, higherhrnet_trt.decode; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
