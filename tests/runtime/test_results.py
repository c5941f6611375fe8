"""COCO result records and the streaming writer."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.runtime.pipeline import Poses
from higherhrnet_trt.runtime.results import (
    CocoResultsWriter,
    image_id_from_name,
    load_results,
    poses_to_coco,
    write_results,
)

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def poses(n, j=17):
    rng = np.random.default_rng(n)
    k = rng.uniform(0, 100, (n, j, 3)).astype(np.float32)
    return Poses(k, rng.uniform(0, 1, n).astype(np.float32), np.zeros((n, 4), np.float32), (100, 100))


def test_records_are_flat_xyv_triples():
    p = poses(2)
    recs = poses_to_coco(p, 139, file_name="a.jpg")
    assert len(recs) == 2
    r = recs[1]
    assert set(r) == {"image_id", "category_id", "keypoints", "score", "file_name"}
    assert r["image_id"] == 139 and r["category_id"] == 1 and isinstance(r["image_id"], int)
    assert len(r["keypoints"]) == 51
    np.testing.assert_allclose(np.reshape(r["keypoints"], (17, 3)), p.keypoints[1], atol=6e-3)
    assert r["score"] == pytest.approx(float(p.scores[1]), abs=1e-6)
    json.dumps(recs)  # plain Python numbers only


def test_nonfinite_people_are_left_out():
    p = poses(3)
    p.keypoints[1, 4, 0] = np.nan
    kept = [r["score"] for r in poses_to_coco(p, 1)]
    np.testing.assert_allclose(kept, p.scores[[0, 2]], atol=1e-6)


def test_writer_streams_a_valid_list(tmp_path):
    path = tmp_path / "sub" / "out.json"
    with CocoResultsWriter(str(path)) as w:
        assert w.add(poses(2), 1) == 2
        w.add(Poses.empty(17), 2)  # no people: nothing written, still counted as an image
        # Before close the temporary file beside it already holds every record (flushed), missing
        # only the "]"; the real name appears complete, on close.
        assert not path.exists() and os.path.dirname(w.temp_path) == str(path.parent)
        partial = open(w.temp_path).read()
        assert json.loads(partial + "\n]")[1]["image_id"] == 1
        w.add(poses(1), 3)
    data = load_results(str(path))
    assert [r["image_id"] for r in data] == [1, 1, 3] and w.count == 3 and w.images == 3
    with pytest.raises(ValueError, match="closed"):
        w.add(poses(1), 4)


def test_empty_results_are_an_empty_list(tmp_path):
    CocoResultsWriter(str(tmp_path / "e.json")).close()
    assert load_results(str(tmp_path / "e.json")) == []
    write_results(str(tmp_path / "f.json"), poses_to_coco(poses(2), 5))
    assert len(load_results(str(tmp_path / "f.json"))) == 2


def test_image_ids_from_coco_names():
    assert image_id_from_name("000000000139.jpg", 7) == 139
    assert image_id_from_name("/data/val2017/000000000785.png", 7) == 785
    assert image_id_from_name("left_1.png", 7) == 7  # not all digits: the fallback


def test_tracked_people_carry_their_track_id():
    p = poses(2).with_track_ids([7, -1])
    assert [r["track_id"] for r in poses_to_coco(p, 1)] == [7, -1]
    assert "track_id" not in poses_to_coco(poses(1), 1)[0]
    assert p.select(-1.0).track_ids.tolist() == [7, -1]
