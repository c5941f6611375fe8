"""Several sources through one model (issue 16 item 3): rounds, one network call per round with a
dynamic-batch model, results tagged by source, per-source outputs, and the same people as
``Pipeline.predict`` on each frame alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.runtime import Pipeline
from higherhrnet_trt.runtime.multi_source import MultiSource, open_sources, predict_sources

cv2 = pytest.importorskip("cv2")

def _sample():
    from higherhrnet_trt.runtime import pipeline

    return cv2.imread(pipeline.__file__.replace("pipeline.py", "assets/sample.jpg"))


def write_folder(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"img_{i}.png"), image)
    return folder


def test_one_network_call_per_round_and_the_people_of_predict(demo_onnx_dynamic_batch, tmp_path):
    image = _sample()
    views = [image, np.ascontiguousarray(image[:, ::-1]), np.clip(image * 0.8, 0, 255).astype(np.uint8)]
    folders = [write_folder(tmp_path / f"cam{k}", [v, v]) for k, v in enumerate(views)]
    with Pipeline(str(demo_onnx_dynamic_batch)) as pipe:
        calls = []
        infer = pipe.backend.infer
        pipe.backend.infer = lambda feed: calls.append(next(iter(feed.values())).shape) or infer(feed)
        rounds = list(predict_sources(pipe, [str(f) for f in folders]))
        pipe.backend.infer = infer
        assert [len(r) for r in rounds] == [3, 3]
        assert calls == [(3, 3, 256, 384)] * 2  # the three frames of a round in one call (640x480 -> 384x256)
        for r in rounds:
            for source, frame, poses in r:
                alone = pipe.predict(views[source])  # the outside reference: one frame, one call
                assert frame.image.shape == views[source].shape and len(poses) == len(alone)
                np.testing.assert_allclose(poses.keypoints, alone.keypoints, atol=1e-3)
                np.testing.assert_allclose(poses.scores, alone.scores, atol=1e-5)


def test_sources_that_end_leave_the_rounds(tmp_path, noise_video):
    a = write_folder(tmp_path / "a", [np.zeros((8, 8, 3), np.uint8)] * 2)
    clip = noise_video(tmp_path / "clip.avi", frames=3)
    with open_sources([str(a), str(clip)]) as multi:
        rounds = [[(t.source, t.frame.index) for t in r] for r in multi]
        assert multi.length == 5 and not multi.is_live
    assert rounds == [[(0, 0), (1, 0)], [(0, 1), (1, 1)], [(1, 2)]]


def test_a_source_that_does_not_open_closes_the_others(tmp_path, monkeypatch):
    import higherhrnet_trt.runtime.sources as sources

    closed = []
    monkeypatch.setattr(sources.ImageFiles, "close", lambda self: closed.append(self.description))
    a = write_folder(tmp_path / "a", [np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(UserError, match="no such file"):
        open_sources([str(a), str(tmp_path / "missing.mp4")])
    assert closed and "folder" in closed[0]
    with pytest.raises(ValueError):
        MultiSource([])


def test_run_with_two_sources_tags_and_separates_outputs(demo_onnx, tmp_path, capsys, noise_video):
    image = _sample()
    a = write_folder(tmp_path / "a", [image, image])
    b = write_folder(tmp_path / "b", [image[:, ::-1]])  # the same file name img_0.png as in a
    clip = noise_video(tmp_path / "clip.avi", frames=3)
    out = tmp_path / "out"
    rc = main(["run", str(demo_onnx), "--source", str(a), "--source", str(b), "--source", str(clip),
               "--save-dir", str(out), "--json", str(out / "people.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "done: 6 frames" in err
    assert sorted(p.name for p in (out / "source0").iterdir()) == ["img_0.png", "img_1.png"]
    assert sorted(p.name for p in (out / "source1").iterdir()) == ["img_0.png"]
    assert int(cv2.VideoCapture(str(out / "source2" / "clip.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert "[2] wrote" in err
    records = json.loads((out / "people.json").read_text())
    by_source = {s: {r["image_id"] for r in records if r["source"] == s} for s in (0, 1, 2)}
    assert by_source[0] and by_source[1]  # the sample's people, in both sources
    assert not by_source[0] & by_source[1]  # image ids never repeat across sources
    with Pipeline(str(demo_onnx)) as pipe:
        expected = pipe.predict(np.ascontiguousarray(image[:, ::-1]))
    mine = sorted((r for r in records if r["source"] == 1), key=lambda r: -r["score"])
    assert len(mine) == len(expected)
    got = np.asarray([r["keypoints"] for r in mine]).reshape(len(mine), -1, 3)
    np.testing.assert_allclose(got[:, :, :2], expected.keypoints[:, :, :2], atol=0.02)


def test_max_frames_counts_per_source(demo_onnx, tmp_path, capsys, noise_video):
    clips = [noise_video(tmp_path / f"c{k}.avi", frames=4) for k in range(2)]
    rc = main(["run", str(demo_onnx), "--source", str(clips[0]), "--source", str(clips[1]),
               "--max-frames", "2", "--json", str(tmp_path / "p.json"), "--no-progress"])
    assert rc == 0 and "done: 4 frames" in capsys.readouterr().err
