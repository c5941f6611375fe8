"""``--source "gst:... ! appsink"`` through PyGObject (PyPI's OpenCV has no GStreamer), and the
one-line errors when neither OpenCV nor PyGObject can run a pipeline (issue 16 item 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.runtime import gst_source

cv2 = pytest.importorskip("cv2")

SAMPLE = gst_source.__file__.replace("gst_source.py", "assets/sample.jpg")


@pytest.fixture
def gst():
    if gst_source.opencv_has_gstreamer(cv2):
        pytest.skip("this OpenCV has GStreamer: the PyGObject path is not the one taken")
    if gst_source.import_gst() is None:
        pytest.skip("PyGObject with GStreamer not importable: 'make gstreamer' installs Debian's "
                    "python3-gi and links it into the venv (apt-get as root)")


def run_cli(capsys, *argv):
    rc = main(list(map(str, argv)))
    return rc, capsys.readouterr().err


def test_gst_pipeline_through_pygobject_finds_what_predict_finds(gst, demo_onnx, tmp_path, capsys):
    """A PNG (lossless) with an odd width, so GStreamer pads its BGR rows to 4 bytes: the frames
    must still be the picture cv2.imread gives, and the people those of Pipeline.predict."""
    from higherhrnet_trt.runtime import Pipeline

    image = cv2.imread(SAMPLE)[:, 3:]  # 637 px wide: rows of 1911 bytes, padded to 1912
    png = tmp_path / "odd.png"
    cv2.imwrite(str(png), image)
    spec = (f"gst:filesrc location={png} ! pngdec ! imagefreeze num-buffers=3 ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink")
    rc, err = run_cli(capsys, "run", demo_onnx, "--source", spec, "--json", tmp_path / "g.json",
                      "--max-frames", "5", "--no-progress")  # 5: a guard; the pipeline ends at 3
    assert rc == 0, err
    assert "done: 3 frames" in err and "GStreamer pipeline" in err
    with Pipeline(str(demo_onnx)) as pipe:
        expected = pipe.predict(image)
    records = json.loads((tmp_path / "g.json").read_text())
    for image_id in range(3):
        mine = sorted((r for r in records if r["image_id"] == image_id), key=lambda r: -r["score"])
        assert len(mine) == len(expected) > 0
        for rec, kpts in zip(mine, expected.keypoints):
            got = np.asarray(rec["keypoints"]).reshape(-1, 3)
            np.testing.assert_allclose(got[:, :2], kpts[:, :2], atol=0.02)


def test_gi_capture_reads_the_exact_picture(gst, tmp_path):
    image = cv2.imread(SAMPLE)[:101, :63]  # odd sizes: padded rows
    png = tmp_path / "small.png"
    cv2.imwrite(str(png), image)
    cap = gst_source.GiCapture(f"filesrc location={png} ! pngdec ! imagefreeze num-buffers=2 ! "
                               "videoconvert ! video/x-raw,format=BGR ! appsink", timeout_s=10)
    assert cap.isOpened()
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 2 and all(np.array_equal(f, image) for f in frames)
    assert cap.ended and not cap.live  # a file pipeline ends; the source does not reopen it


@pytest.mark.parametrize("pipeline, message", [
    ("gst:nosuchelement ! appsink", "the GStreamer pipeline does not parse: no element"),
    ("gst:videotestsrc num-buffers=1 ! fakesink", "the GStreamer pipeline must end in appsink"),
])
def test_bad_pipelines_are_one_line(gst, tiny_onnx, capsys, pipeline, message):
    rc, err = run_cli(capsys, "run", tiny_onnx, "--source", pipeline, "--no-progress")
    assert rc == 1
    assert err.strip().splitlines()[-1].startswith("error: " + message)


def test_no_gstreamer_anywhere_is_one_line(tiny_onnx, capsys, monkeypatch):
    monkeypatch.setattr(gst_source, "opencv_has_gstreamer", lambda cv2: False)
    monkeypatch.setattr(gst_source, "import_gst", lambda: None)
    rc, err = run_cli(capsys, "run", tiny_onnx, "--source",
                      "gst:videotestsrc ! videoconvert ! appsink", "--no-progress")
    assert rc == 1
    assert err.strip().splitlines() == [f"error: {gst_source.NO_GSTREAMER}"]


def test_a_stalled_pipeline_ends_at_the_stream_timeout(gst, tiny_onnx, tmp_path):
    """An element stuck for 60 s (identity sleeps per buffer) must not hold `run` for 60 s:
    setting a stalled pipeline to NULL waits for its streaming thread, so the stop is bounded
    by --stream-timeout too. A hang bound (40 s), not a speed target."""
    import subprocess
    import sys

    stalled = ("gst:videotestsrc is-live=true ! video/x-raw,width=64,height=64,framerate=10/1 ! "
               "identity sleep-time=60000000 ! videoconvert ! video/x-raw,format=BGR ! appsink")
    proc = subprocess.run(
        [sys.executable, "-m", "higherhrnet_trt.cli.main", "run", str(tiny_onnx), "--source", stalled,
         "--stream-timeout", "1", "--json", str(tmp_path / "p.json"), "--no-progress"],
        capture_output=True, text=True, timeout=40)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("error: cannot start the GStreamer pipeline"), proc.stderr
    assert any("did not stop within the timeout" in ln for ln in lines), proc.stderr
