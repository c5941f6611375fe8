"""How far behind a live stream the processed frame is, newest-frame reading against every frame.

    python -m higherhrnet_trt.benchmarks.live_lag [--fps 10] [--delay 0.3] [--frames 30] [--model X.onnx]

Serves the bundled sample from a real GStreamer RTSP server on 127.0.0.1 (tests/rtsp_server.py; needs
``make gstreamer``) at --fps, and runs ``Pipeline.stream`` on it with a model made --delay seconds
slower than it is, once per mode (newest frame, the default; ``every_frame=True``). The lag of a
result is the time from the moment the server sent that frame to the moment its people are out:
the server sends frame k at t0 + k / fps, t0 estimated from the capture times (each frame is
decoded after it was sent; the network's latency, under a ms on 127.0.0.1, is left out).
Printed per mode: median and max lag, frames dropped, and the bound the newest-frame reader
promises (one frame interval + one inference).
Record the output in benchmarks/RESULTS.md with the machine and its load (``uptime``).
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import time

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.runtime import Pipeline
from higherhrnet_trt.runtime.sources import open_source


def _repo_file(*parts: str) -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *parts)


def start_server(fps: int) -> tuple[subprocess.Popen, str]:
    """tests/rtsp_server.py under a Python that has PyGObject; (process, URL)."""
    script = _repo_file("tests", "rtsp_server.py")
    check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    python = next((p for p in (sys.executable, "/usr/bin/python3") if os.path.exists(p) and
                   subprocess.run([p, "-c", check], capture_output=True).returncode == 0), None)
    if python is None:
        raise SystemExit("no GStreamer RTSP server here: 'make gstreamer' installs it")
    proc = subprocess.Popen([python, script, "--image", _repo_file("runtime", "assets", "sample.jpg"),
                             "--fps", str(fps)], stdout=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = proc.stdout.readline() if sel.select(timeout=30) else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"the RTSP server did not start: {line!r}")
    return proc, f"rtsp://127.0.0.1:{int(line.split()[1])}/live"


def measure(pipe, url: str, fps: int, frames: int, every_frame: bool) -> dict:
    """One mode: ``frames`` results; lag of each (s), the frames dropped, inference times (s)."""
    source = open_source(url, every_frame=every_frame)
    seen, took = [], []  # (source frame index, capture time, result time) per result
    try:
        # One result more, left out: FFmpeg's open reads ahead to learn the stream's format, and
        # the frames it read reach the first inference at once (tests/runtime/test_rtsp.py says the same).
        for n, (frame, _) in enumerate(pipe.stream(source, max_frames=frames + 1)):
            if n:
                seen.append((frame.index, frame.capture_time, time.time()))
                took.append(pipe.last_seconds)
    finally:
        source.close()
    # A frame is decoded after the server sent it: t0 + k / fps <= capture time of frame k, so the
    # smallest capture time - k / fps is the closest estimate of t0 (0 ms network on 127.0.0.1).
    t0 = min(c - k / fps for k, c, _ in seen)
    lags = [r - (t0 + k / fps) for k, _, r in seen]
    return {"lags": lags, "took": took, "dropped": getattr(source, "dropped", 0),
            "read": getattr(source, "read", len(lags))}


class Slowed:
    """``pipe.predict`` made ``delay`` seconds slower; ``last_seconds``: the last call's time."""

    def __init__(self, pipe, delay: float) -> None:
        self.pipe, self.delay, self.fast = pipe, delay, pipe.predict
        self.last_seconds = 0.0
        pipe.predict = self.predict

    def predict(self, image):
        t = time.perf_counter()
        time.sleep(self.delay)
        poses = self.fast(image)
        self.last_seconds = time.perf_counter() - t
        return poses

    def stream(self, *a, **k):
        return self.pipe.stream(*a, **k)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=int, default=10, help="the server's frame rate")
    ap.add_argument("--delay", type=float, default=0.3, help="seconds added to each inference")
    ap.add_argument("--frames", type=int, default=30, help="results per mode")
    ap.add_argument("--model", default=_repo_file("runtime", "assets", "demo_w16_256.fp16.onnx"))
    args = ap.parse_args(argv)

    import numpy as np

    proc, url = start_server(args.fps)
    try:
        with Pipeline(args.model) as pipe:
            slow = Slowed(pipe, args.delay)
            slow.fast(np.zeros((256, 256, 3), np.uint8))  # warm-up, before any stream opens
            for every_frame in (False, True):
                r = measure(slow, url, args.fps, args.frames, every_frame)
                lags_ms = 1000 * np.asarray(r["lags"])
                inference = float(np.median(r["took"]))
                name = "every frame " if every_frame else "newest frame"
                print(f"{name}: lag median {np.median(lags_ms):.0f} ms, max {lags_ms.max():.0f} ms "
                      f"over {len(lags_ms)} results; inference {1000 * inference:.0f} ms (median, "
                      f"with the {args.delay:g} s delay); dropped {r['dropped']} of {r['read']} read"
                      + ("" if every_frame else f"; bound 1 interval + 1 inference = "
                         f"{1000 * (1 / args.fps + max(r['took'])):.0f} ms"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    print(f"stream {args.fps} FPS, {args.frames} results per mode, model {os.path.basename(args.model)}; "
          f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
