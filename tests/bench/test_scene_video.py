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
