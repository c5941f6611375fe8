"""SIGTERM (systemd, docker stop, timeout) during a long command: the same clean stop as Ctrl-C.

Each test starts the real CLI in a subprocess, waits (bounded polling, no timing asserts) until
the command is doing its work, sends SIGTERM and checks what it left: exit status 143, complete
outputs holding the work done so far, no temporary files. Issue 15, item 2.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from higherhrnet_trt.core.errors import Terminated, interrupt_exit_code, sigterm_as_interrupt

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")

WAIT_S = 300  # upper bound for the command to start its work on a slow, busy machine


def start(argv: list, tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    """The CLI in a subprocess, stderr to a file (polled by tests that wait for progress)."""
    err = tmp_path / "stderr.txt"
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **env)
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "higherhrnet_trt.cli", *map(str, argv)],
                                stdout=subprocess.PIPE, stderr=f, env=full_env, text=True)
    return proc, err


def terminate_when(proc: subprocess.Popen, ready: Callable[[], bool]) -> tuple[int, str]:
    """Poll ``ready`` (bounded), then SIGTERM; returns (exit status, stdout)."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert proc.poll() is None, f"the command ended (rc {proc.returncode}) before it was ready"
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the command never got to its work")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command did not stop after SIGTERM")
    return proc.returncode, out


def json_text_with(folder: Path, pattern: str) -> Callable[[], bool]:
    """Ready when a .json file in ``folder`` (the final or the temporary name) matches."""
    def ready() -> bool:
        for name in os.listdir(folder) if folder.is_dir() else ():
            if name.endswith(".json"):
                try:
                    if re.search(pattern, (folder / name).read_text()):
                        return True
                except OSError:  # renamed between listdir and read
                    pass
        return False

    return ready


def no_temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".part" in p.name or p.name.endswith(".tmp")]


# -- the helper ------------------------------------------------------------------------------------


def test_sigterm_raises_terminated_once_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info:
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode; never reached
    assert isinstance(info.value, KeyboardInterrupt) and interrupt_exit_code(info.value) == 143
    assert interrupt_exit_code(KeyboardInterrupt()) == 130
    with sigterm_as_interrupt():
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one while cleaning up: ignored
        time.sleep(0.01)
    assert signal.getsignal(signal.SIGTERM) == before


# -- the commands ----------------------------------------------------------------------------------


def test_sigterm_during_run_on_a_video_keeps_valid_json_and_a_playable_video(tiny_onnx, tmp_path,
                                                                            noise_video):
    clip = noise_video(tmp_path / "clip.avi", 400, size=(128, 96))
    out = tmp_path / "out"
    proc, err = start(["run", tiny_onnx, "--source", clip, "--save-dir", out, "--json",
                       out / "people.json", "--threads", "1", "--no-progress"], tmp_path)
    # Frame 1 in the JSON: frame 0 is in the video (the JSON is written first, frame by frame).
    rc, _ = terminate_when(proc, json_text_with(out, r'"image_id": [1-9]'))
    log = err.read_text()
    assert rc == 143, log
    done = int(re.search(r"terminated \(SIGTERM\): (\d+) frames", log).group(1))
    people = json.loads((out / "people.json").read_text())
    assert people and {r["image_id"] for r in people} <= set(range(done))
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert video.isOpened() and video.read()[0]
    # The signal may land between a frame's JSON records and its drawing: one frame fewer then.
    assert done - 1 <= int(video.get(cv2.CAP_PROP_FRAME_COUNT)) <= done
    assert not no_temporaries(out)


def coco_folder(tmp_path: Path, count: int) -> tuple[Path, Path]:
    folder = tmp_path / "val"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, count + 1):
        cv2.imwrite(str(folder / f"{i:012d}.jpg"), rng.integers(0, 255, (96, 128, 3), np.uint8))
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 128, "height": 96})
        k = np.zeros((17, 3))
        k[:, 0], k[:, 1], k[:, 2] = np.linspace(30, 90, 17), np.linspace(10, 80, 17), 2
        anns.append({"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": 3000.0,
                     "bbox": [30, 10, 60, 70], "num_keypoints": 17, "keypoints": k.ravel().tolist()})
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "person", "keypoints": [f"j{j}" for j in range(17)]}]}))
    return ann, folder


def test_sigterm_during_eval_keeps_the_results_so_far(tiny_onnx, tmp_path):
    pytest.importorskip("pycocotools")
    ann, folder = coco_folder(tmp_path, 300)
    out = tmp_path / "out"
    out.mkdir()
    proc, err = start(["eval", tiny_onnx, "--ann", ann, "--images", folder, "--json",
                       out / "res.json", "--threads", "1", "--no-progress"], tmp_path)
    rc, _ = terminate_when(proc, json_text_with(out, r'"image_id": [2-9]'))
    log = err.read_text()
    assert rc == 143, log
    assert "stopped after" in log and log.strip().splitlines()[-1] == "terminated (SIGTERM)"
    results = json.loads((out / "res.json").read_text())
    assert results and {r["image_id"] for r in results} < set(range(1, 301))
    assert not no_temporaries(out)


def test_sigterm_during_bench_writes_what_it_measured(tiny_onnx, tmp_path):
    out = tmp_path / "bench.json"
    proc, err = start(["bench", tiny_onnx, "--warmup", "0", "--iters", "100000", "--threads", "1",
                       "--json", out], tmp_path)

    def timed_iterations() -> bool:  # tqdm's bar on stderr: "timed: ... | N/100000"
        counts = re.findall(r"timed:[^|]*\|[^|]*\|\s*(\d+)/", err.read_text())
        return bool(counts) and int(counts[-1]) >= 2

    rc, stdout = terminate_when(proc, timed_iterations)
    assert rc == 143, err.read_text()
    r = json.loads(out.read_text())
    done = r["interrupted"]["timed_iters_done"]
    assert r["interrupted"]["signal"] == "SIGTERM" and r["interrupted"]["timed_iters_asked"] == 100000
    assert 1 <= done < 100000 and r["settings"]["timed_iters"] == done
    assert r["stages"]["end_to_end"]["count"] == done and len(r["samples_ms"]["end_to_end"]) == done
    assert f"stopped after {done} of 100000 timed iterations" in stdout
    assert not no_temporaries(tmp_path)


def test_sigterm_during_calibrate_cleans_up_and_writes_no_output(tiny_onnx, tmp_path):
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(2)
    for i in range(60):
        cv2.imwrite(str(images / f"{i:03d}.jpg"), rng.integers(0, 255, (96, 128, 3), np.uint8))
    scratch, cache, out = tmp_path / "scratch", tmp_path / "cache", tmp_path / "out"
    scratch.mkdir()
    proc, err = start(["calibrate", tiny_onnx, "--images", images, "--num-images", "50",
                       "--cache-dir", cache, "-o", out / "m.int8.onnx", "--no-progress"],
                      tmp_path, TMPDIR=str(scratch))
    # Ready once its scratch folder exists: calibration (ModelOpt placement, then the pass) runs.
    rc, _ = terminate_when(proc, lambda: any(p.name.startswith("higherhrnet_trt_int8_")
                                             for p in scratch.iterdir()))
    assert rc == 143, err.read_text()
    assert err.read_text().strip().splitlines()[-1] == "terminated (SIGTERM)"
    leftovers = [p.name for p in scratch.iterdir() if p.name.startswith("higherhrnet_trt")]
    assert not leftovers  # the model copies under TMPDIR were removed
    assert not (out / "m.int8.onnx").exists()
    for path in (cache.iterdir() if cache.is_dir() else ()):  # only complete cache entries
        assert ".part" not in path.name and json.loads(path.read_text())["ranges"]
    assert not out.exists() or not no_temporaries(out)


INTERRUPTIBLE = """
import time
from higherhrnet_trt.core.errors import sigterm_as_interrupt
with sigterm_as_interrupt():
    try:  # the signal may arrive while "ready" is still being written
        print("ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise SystemExit(0)
raise SystemExit(3)
"""


def test_sigint_stops_a_process_started_with_sigint_ignored():
    """A job started by a script with '&', or by a pytest-xdist worker, inherits SIGINT ignored;
    ROS 2 launch still stops nodes with SIGINT: inside sigterm_as_interrupt it must interrupt."""
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert proc.stdout.read().strip() == "interrupted"
    finally:
        proc.kill()
        proc.wait()
