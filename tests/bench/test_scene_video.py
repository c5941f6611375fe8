"""benchmarks/scene_video.py (walking videos with ground-truth IDs) and track_eval's crossing count."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")


def test_video_files_agree_and_repeat(tmp_path):
    from higherhrnet_trt.benchmarks.scene_video import plan_video, write_video

    folder = write_video(str(tmp_path / "a"), seed=3, index=1, size=(160, 112), frames=3)
    again = write_video(str(tmp_path / "b"), seed=3, index=1, size=(160, 112), frames=3)
    gt = (tmp_path / "a" / "v001" / "gt" / "gt.txt").read_text().splitlines()
    assert gt == (tmp_path / "b" / "v001" / "gt" / "gt.txt").read_text().splitlines()
    frames = json.loads((tmp_path / "a" / "v001" / "gt" / "keypoints.json").read_text())["frames"]
    walkers = len(plan_video(3, 1, (160, 112), 3)["walkers"])
    rows = [line.split(",") for line in gt]
    # One gt.txt row per person of keypoints.json, same frame (1-based) and ID, box of 4 numbers.
    assert [(int(r[0]), int(r[1])) for r in rows] == [(t + 1, p["id"]) for t, f in enumerate(frames)
                                                      for p in f]
    assert all(1 <= int(r[1]) <= walkers and len(r) == 9 for r in rows)
    assert all(len(p["keypoints"]) == 51 for f in frames for p in f)
    assert folder.endswith("v001") and again.endswith("v001")


def test_crossings_count_order_flips_of_overlapping_people():
    from higherhrnet_trt.benchmarks.track_eval import crossings

    def frame(xa, xb, yb=0):
        return [{"id": 1, "bbox": [xa, 0, 20, 50]}, {"id": 2, "bbox": [xb, yb, 20, 50]}]

    # 1 passes 2 (overlapping): one crossing; then 2 passes 1 far below it (no overlap): none.
    swap = [frame(0, 30), frame(10, 20), frame(22, 15), frame(40, 10)]
    apart = [frame(40, 10, 100), frame(30, 50, 100)]
    assert crossings(swap) == 1
    assert crossings(swap + apart) == 1
    assert crossings([frame(0, 30)] * 3) == 0
    assert np.isfinite(crossings([]))


def _person(pid, x0, area=10000.0):
    """A ground-truth person: 17 visible joints on a vertical line at x0, 10 px apart."""
    k = np.zeros((17, 3))
    k[:, 0], k[:, 1], k[:, 2] = x0, 10.0 * np.arange(17), 2
    return {"id": pid, "keypoints": k.reshape(-1).tolist(), "area": area, "bbox": [x0, 0, 1, 160]}


def test_error_causes_sort_misses_and_false_people_by_their_best_similarity():
    pytest.importorskip("motmetrics")
    from higherhrnet_trt.benchmarks.track_eval import accumulate, error_causes

    truth = [[_person(1, 0.0), _person(2, 500.0), _person(3, 1000.0), _person(4, 3000.0)]]
    exact = [np.array(p["keypoints"]).reshape(17, 3) for p in truth[0][:3]]
    off = exact[1].copy()
    off[7:, 0] += 400.0  # 7 of 17 joints in place, 10 far: OKS 7/17 = 0.41, in the 0.3-0.5 band
    kpts = np.stack([exact[0], off, exact[2], exact[0] + [1800.0, 0, 0]])
    # person 1 matched; 2's only detection is off (a miss and a false hypothesis, both "off");
    # 3's exact detection has no ID (found_without_id); 4 has none near (not_found); the
    # detection at x 1800 matches nobody.
    ids = [np.array([1, 2, -1, 4])]
    dets = [(kpts, np.ones(4))]
    acc = accumulate(truth, dets, ids)
    causes = error_causes(truth, dets, ids, acc)
    assert causes["misses"] == {"found_without_id": 1, "taken": 0, "found_off": 1, "not_found": 1}
    assert causes["false"] == {"duplicate": 0, "off": 1, "nobody": 1}
