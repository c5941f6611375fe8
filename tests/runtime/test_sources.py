"""Frame sources: files, folders, videos, and live captures that drop (with fake captures)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.runtime.sources import (
    CaptureSource,
    ImageFiles,
    mask_credentials,
    open_source,
)

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def write_images(folder, n, size=(40, 30)):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"img_{i:02d}.png"), np.full((size[1], size[0], 3), 10 * i, np.uint8))


class FakeCapture:
    """cv2.VideoCapture stand-in: yields ``frames`` frames, then read() fails (a drop)."""

    def __init__(self, frames, opened=True, fps=25.0, count=0):
        self.frames, self.opened, self.fps, self.count = frames, opened, fps, count
        self.released = False
        self.reads = 0

    def isOpened(self):
        return self.opened

    def read(self):
        if self.reads < self.frames:
            self.reads += 1
            return True, np.full((8, 10, 3), self.reads, np.uint8)
        return False, None

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_COUNT: self.count}.get(prop, 0.0)

    def release(self):
        self.released = True


class Opener:
    """Hands out prepared captures in order; records the waits between them."""

    def __init__(self, *caps):
        self.caps = list(caps)
        self.opened = []
        self.sleeps = []

    def __call__(self):
        cap = self.caps.pop(0) if self.caps else FakeCapture(0, opened=False)
        self.opened.append(cap)
        return cap

    def sleep(self, s):
        self.sleeps.append(s)


def test_folder_sorted_and_unreadable_files_skipped(tmp_path, caplog):
    write_images(tmp_path / "d", 3)
    (tmp_path / "d" / "img_01b.jpg").write_bytes(b"broken")
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    (tmp_path / "d" / "img_00z.png").write_bytes(b"")
    src = open_source(str(tmp_path / "d"))
    assert isinstance(src, ImageFiles) and src.kind == "images" and src.length == 5
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"):
        frames = list(src)
    assert [f.name for f in frames] == ["img_00.png", "img_01.png", "img_02.png"]
    assert [f.index for f in frames] == [0, 1, 2] and frames[1].image[0, 0, 0] == 10
    assert frames[0].image.shape == (30, 40, 3) and frames[0].image.dtype == np.uint8
    assert [p.rsplit("/", 1)[1] for p in src.skipped] == ["img_00z.png", "img_01b.jpg"]
    assert sum("cannot read image" in r.message for r in caplog.records) == 1  # once, then counted


def test_folder_skips_hidden_files_such_as_a_killed_runs_temporaries(tmp_path):
    write_images(tmp_path / "d", 2)
    cv2.imwrite(str(tmp_path / "d" / ".img_00.123-abc.part.png"), np.zeros((30, 40, 3), np.uint8))
    src = open_source(str(tmp_path / "d"))
    assert [f.name for f in src] == ["img_00.png", "img_01.png"] and not src.skipped


def test_single_image_glob_and_grey(tmp_path):
    write_images(tmp_path, 2)
    cv2.imwrite(str(tmp_path / "grey.png"), np.zeros((5, 6), np.uint8))
    [frame] = list(open_source(str(tmp_path / "grey.png")))
    assert frame.image.shape == (5, 6, 3) and frame.path.endswith("grey.png")
    assert [f.name for f in open_source(str(tmp_path / "img_*.png"))] == ["img_00.png", "img_01.png"]


@pytest.mark.parametrize("spec, match", [
    ("missing_dir/", "no such file or folder"),
    ("nothing_*.png", "no images match"),
    ("  ", "empty"),
])
def test_bad_specs(tmp_path, monkeypatch, spec, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=match):
        open_source(spec)


def test_empty_folder(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no images in folder"):
        open_source(str(tmp_path / "e"))


def test_video_file_plays_to_its_end(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    src = open_source(path)
    assert src.kind == "video" and not src.is_live and src.fps == pytest.approx(10.0)
    frames = list(src)
    assert len(frames) == 5 and frames[-1].name == "clip_000004"
    assert frames[1].timestamp == pytest.approx(0.1, abs=0.02)
    src.close()
    assert len(list(src)) == 5  # iterating again reopens it


def test_unreadable_video_is_one_line(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot open video"):
        open_source(str(bad))


def test_camera_index_and_open_failure():
    op = Opener(FakeCapture(2))
    src = open_source("3", opener=op, sleep=op.sleep)
    assert src.kind == "camera" and src.is_live and src.description == "camera 3" and src.fps == 25.0
    with pytest.raises(UserError, match="cannot open camera 7"):
        open_source(7, opener=Opener(FakeCapture(0, opened=False)))


def test_stream_reconnects_with_exponential_backoff(caplog):
    """Every frame in turn (every_frame): the reconnect policy, without the newest-frame reader
    (tests/runtime/test_latest.py) deciding which frames are seen."""
    first, second = FakeCapture(3), FakeCapture(2)
    op = Opener(first, FakeCapture(0, opened=False), second)  # drop, one failed reopen, back
    src = open_source("rtsp://user:pw@cam/live", max_reconnects=4, backoff_s=0.5, opener=op,
                      sleep=op.sleep, every_frame=True)
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"):
        it = iter(src)
        frames = [next(it) for _ in range(5)]
        with pytest.raises(UserError, match="did not come back after 4 reconnect attempts"):
            next(it)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4] and frames[3].image[0, 0, 0] == 1
    # 0.5, 1.0 to get back; after the good frames the count starts again: 0.5, 1, 2, 4.
    assert op.sleeps == [0.5, 1.0, 0.5, 1.0, 2.0, 4.0]
    assert first.released and second.released and src.reconnects == 1
    assert all("pw" not in r.message for r in caplog.records)
    assert "user:***@cam" in src.description


def test_backoff_is_capped_and_first_open_of_a_stream_is_retried_on_request():
    op = Opener(FakeCapture(0, opened=False), FakeCapture(0, opened=False), FakeCapture(1))
    src = open_source("http://cam/video.mjpg", backoff_s=3.0, max_backoff_s=4.0, opener=op,
                      sleep=op.sleep, retry_first_open=True, every_frame=True)  # no reader thread
    assert op.sleeps == [3.0, 4.0] and src.kind == "stream" and src.opens == 3
    with pytest.raises(UserError, match="cannot open stream"):
        open_source("rtsp://cam", max_reconnects=2, opener=Opener(), sleep=lambda s: None,
                    retry_first_open=True)


def test_first_open_of_a_stream_is_one_attempt_by_default():
    """The policy (runtime/streams.py): a stream that does not open is one error line at once,
    not five retries (a closed port took 16 s, a silent server 3.3 minutes)."""
    op = Opener(FakeCapture(0, opened=False), FakeCapture(1))
    with pytest.raises(UserError, match=r"cannot open stream rtsp://cam/x \(waited up to 2\.5 s\)"):
        open_source("rtsp://cam/x", opener=op, sleep=op.sleep, timeout_s=2.5)
    assert len(op.opened) == 1 and op.sleeps == []


def test_capture_source_converts_odd_frames():
    class Grey(FakeCapture):
        def read(self):
            ok, img = super().read()
            return ok, (img[:, :, 0] if ok else None)

    src = CaptureSource(lambda: Grey(1), "video", "v", "v", "cannot", is_live=False)
    [frame] = list(src)
    assert frame.image.shape == (8, 10, 3)


def test_gstreamer_spec_is_recognised():
    op = Opener(FakeCapture(1))
    src = open_source("videotestsrc ! videoconvert ! appsink", opener=op, sleep=op.sleep)
    assert src.kind == "stream" and src.description == "GStreamer pipeline" and src.is_live


def test_mask_credentials():
    assert mask_credentials("rtsp://admin:s3cr3t@10.0.0.2:554/x") == "rtsp://admin:***@10.0.0.2:554/x"
    assert mask_credentials("rtsp://10.0.0.2/x") == "rtsp://10.0.0.2/x"
