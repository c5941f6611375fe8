"""``higherhrnet-trt run`` and ``eval`` end to end on the tiny ONNX model (conftest fixtures).

The tiny network has random weights: these tests check files, counts, messages and exit codes,
not what it finds (tests/runtime/test_pipeline.py and tests/runtime/test_evaluate.py check accuracy
with oracle maps).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.cli import main

cv2 = pytest.importorskip("cv2")


def images(folder, n=3, size=(160, 120), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i + 1:012d}.jpg"), rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    return folder


def run_cli(capsys, *argv):
    rc = main(list(map(str, argv)))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_folder_to_images_and_json(tiny_onnx, tmp_path, capsys):
    src = images(tmp_path / "in")
    (src / "000000000009.jpg").write_bytes(b"truncated")
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", src, "--save-dir", tmp_path / "out",
                         "--json", tmp_path / "out" / "people.json", "--max-people", "4", "--no-progress")
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == [f"{i:012d}.jpg" for i in (1, 2, 3)] + ["people.json"]
    assert cv2.imread(str(tmp_path / "out" / "000000000001.jpg")).shape == (120, 160, 3)
    people = json.loads((tmp_path / "out" / "people.json").read_text())
    assert {r["image_id"] for r in people} <= {1, 2, 3}  # ids from the COCO-style names
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 for r in people)
    assert all(sum(r["image_id"] == i for r in people) <= 4 for i in (1, 2, 3))
    assert "done: 3 frames" in err and "skipped 1 unreadable images" in err
    assert "letterboxed" in err  # the static 128x128 model, said once
    assert err.count("letterboxed") == 1


def test_video_to_video_with_max_frames(tiny_onnx_dynamic, tmp_path, capsys, noise_video):
    clip = noise_video(tmp_path / "clip.avi")
    rc, _, err = run_cli(capsys, "run", tiny_onnx_dynamic, "-s", clip, "--save-dir", tmp_path,
                         "--json", tmp_path / "v.json", "--max-frames", "3", "--max-people", "3",
                         "--boxes", "--track", "--no-progress")
    assert rc == 0, err
    out = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    assert out.isOpened() and int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    records = json.loads((tmp_path / "v.json").read_text())
    assert {r["image_id"] for r in records} <= {0, 1, 2}
    assert all(isinstance(r["track_id"], int) and (r["track_id"] == -1 or r["track_id"] > 0)
               for r in records)
    assert "done: 3 frames" in err


def test_stream_that_never_comes_back_keeps_its_results(tiny_onnx, tmp_path, capsys, monkeypatch):
    """A live source that drops for good: one error line, exit 1, and the JSON written so far is
    complete and valid."""
    import higherhrnet_trt.runtime.sources as sources

    class Capture:
        def __init__(self, frames):
            self.left = frames

        def isOpened(self):
            return True

        def read(self):
            if self.left:
                self.left -= 1
                return True, np.full((96, 128, 3), 100, np.uint8)
            return False, None

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    caps = iter([Capture(3)])
    real = sources.open_source
    monkeypatch.setattr(sources, "open_source", lambda spec, **kw: real(
        spec, opener=lambda: next(caps, None), sleep=lambda s: None, **kw))
    # --every-frame: the fake delivers its 3 frames at once, which the newest-frame reader would
    # drop but the last of (tests/runtime/test_latest.py covers that reader's errors).
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", "rtsp://cam/x", "--json",
                         tmp_path / "s.json", "--reconnect", "2", "--max-people", "2", "--every-frame")
    assert rc == 1
    assert err.strip().splitlines()[-1].startswith("error: stream rtsp://cam/x stopped delivering")
    assert "reconnecting in 0.5 s (attempt 1/2)" in err
    assert "stopped by the error below: 3 frames" in err
    data = json.loads((tmp_path / "s.json").read_text())
    assert {r["image_id"] for r in data} <= {0, 1, 2}


@pytest.mark.parametrize("argv, message", [
    (["--source", "{empty}"], "no images in folder"),
    (["--source", "{src}", "--save-dir", "{src}"], "would destroy that input; choose another --save-dir"),
    (["--source", "{src}", "--scales", "1,2"], "fixed input size"),
    (["--source", "{src}", "--show"], "--show needs a display"),
    (["--source", "{src}", "--threads", "2", "--backend", "tensorrt"], "onnxruntime options"),
    (["--source", "{src}", "--graph-optimization", "all", "--backend", "openvino"],
     "--graph-optimization: not an option of the openvino backend"),
])
def test_one_line_errors(tiny_onnx, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    src = images(tmp_path / "in", n=1)
    (tmp_path / "empty").mkdir()
    argv = [a.format(src=src, empty=tmp_path / "empty") for a in argv]
    rc, _, err = run_cli(capsys, "run", tiny_onnx, *argv)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_show_without_gui_support(tiny_onnx, tmp_path, capsys, monkeypatch):
    try:
        cv2.namedWindow("probe")
        cv2.destroyAllWindows()
        pytest.skip("this OpenCV has GUI support")
    except cv2.error:
        pass
    monkeypatch.setenv("DISPLAY", ":99")
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", images(tmp_path / "in", 1), "--show")
    assert rc == 1 and "no GUI support" in err


def test_missing_model_and_bad_numbers(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "run", tmp_path / "none.onnx", "--source", tmp_path)
    assert rc == 1 and "model file not found" in err
    with pytest.raises(SystemExit):
        main(["run", "m.onnx", "--source", "x", "--kpt-thr", "2"])
    assert "from 0 to 1" in capsys.readouterr().err


# -- the person threshold (issue 26 item 4) ------------------------------------------------------


def test_people_below_person_thr_are_left_out_of_what_run_writes(demo_onnx, tmp_path, capsys):
    """The demo network on its sample: the default run writes (and counts) exactly the candidates
    that --person-thr 0 writes with a score >= 0.15, filtered here by hand."""
    import shutil

    from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(package_file(SAMPLE_IMAGE), src / "sample.jpg")
    rc, _, err_all = run_cli(capsys, "run", demo_onnx, "-s", src, "--json", tmp_path / "all.json",
                             "--person-thr", "0", "--no-progress")
    assert rc == 0, err_all
    rc, _, err = run_cli(capsys, "run", demo_onnx, "-s", src, "--json", tmp_path / "kept.json",
                         "--no-progress")
    assert rc == 0, err
    every = [r["score"] for r in json.loads((tmp_path / "all.json").read_text())]
    kept = [r["score"] for r in json.loads((tmp_path / "kept.json").read_text())]
    assert min(every) < 0.15 <= max(every)  # candidates on both sides, or this checks nothing
    assert sorted(kept) == sorted(s for s in every if s >= 0.15)
    assert f"1 frames, {len(kept)} people (score >= 0.15)" in err
    assert f"wrote {len(kept)} people" in err


def test_run_stream_takes_arguments(tiny_onnx, tmp_path):
    """The stream loop of run, called as the Python API: typed arguments, a callback per frame."""
    from higherhrnet_trt.runtime import Pipeline
    from higherhrnet_trt.runtime.options import OutputOptions
    from higherhrnet_trt.runtime.run_loop import run_stream

    seen = []
    pipe = Pipeline(str(tiny_onnx), person_thr=0.0)
    done = run_stream([str(images(tmp_path / "in", 3))], pipe,
                      OutputOptions(json=str(tmp_path / "p.json"), no_progress=True), max_frames=2,
                      on_people=lambda k, frame, poses: seen.append((k, frame.name, len(poses))))
    assert (done.status, done.frames, done.exit_code) == ("done", 2, 0)
    assert [s[:2] for s in seen] == [(0, "000000000001.jpg"), (0, "000000000002.jpg")]
    assert len(json.loads((tmp_path / "p.json").read_text())) == sum(s[2] for s in seen) == done.people


# -- eval --------------------------------------------------------------------------------------


def coco_set(tmp_path, num_joints=17):
    folder = images(tmp_path / "val", n=2, size=(200, 150))
    anns = []
    for i in (1, 2):
        k = np.zeros((num_joints, 3))
        k[:, 0] = np.linspace(60, 140, num_joints)
        k[:, 1] = np.linspace(20, 130, num_joints)
        k[:, 2] = 2
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": 6000.0,
                     "bbox": [60, 20, 80, 110], "num_keypoints": num_joints,
                     "keypoints": k.reshape(-1).tolist()})
    data = {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 200, "height": 150}
                       for i in (1, 2)],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": [f"j{j}" for j in range(num_joints)]}]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    return path, folder


def test_eval_prints_the_metric_table(tiny_onnx_dynamic, tmp_path, capsys):
    ann, folder = coco_set(tmp_path)
    rc, out, err = run_cli(capsys, "eval", tiny_onnx_dynamic, "--ann", ann, "--images", folder,
                           "--json", tmp_path / "res.json", "--no-progress")
    assert rc == 0, err
    assert "flip test on" in err and "scales 1" in err
    header = out.splitlines()[1].split("|")
    assert [h.strip() for h in header] == ["AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75",
                                           "ARM", "ARL"]
    assert "coco keypoints, 2 images" in out
    assert isinstance(json.loads((tmp_path / "res.json").read_text()), list)


def test_eval_errors_and_help(tiny_onnx, tmp_path, capsys):
    ann, folder = coco_set(tmp_path, num_joints=14)
    rc, _, err = run_cli(capsys, "eval", tiny_onnx, "--ann", ann, "--images", folder)
    assert rc == 1 and "14 keypoints per person but the model predicts 17" in err
    rc, _, err = run_cli(capsys, "eval", tiny_onnx, "--ann", ann, "--images", folder, "--multi-scale")
    assert rc == 1 and "fixed input size" in err
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "no --no-flip" in text and "export --no-flip" in text
