"""Peak memory of one Pipeline.predict against the network input's size (the figure core/limits.py,
``run --help`` and the README state per input pixel).

Each (frame size, test scale) runs alone in a fresh process (peak RSS is per process) on the
bundled 640x480 sample (people in it: the decode's share counts), resized to each ``--frames``
size (stretched: an elongated frame gives an elongated network input, as core/limits.py bounds
them); the network input grows with the scale. Growth = peak RSS after predict minus RSS after
loading, divided by the input's pixels. A process whose resident memory passes ``--max-gb`` is
killed and its row says so (the figure is then a lower bound).

    python -m higherhrnet_trt.benchmarks.frame_memory outputs/demo/demo.onnx --scales 1,2,4
    python -m higherhrnet_trt.benchmarks.frame_memory demo.onnx --frames 1536x512 --scales 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from higherhrnet_trt.core.errors import UserError, script_exit
from higherhrnet_trt.core.limits import MAX_INPUT_PIXELS

_CHILD = """
import json, resource, sys, time
import numpy as np
from higherhrnet_trt.runtime import Pipeline
model, scale, frame_wh, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
pipe = Pipeline(model, scales=(scale,), **({"threads": threads} if threads else {})).activate()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import cv2
from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file
frame = cv2.imread(package_file(SAMPLE_IMAGE))
if frame_wh != "sample":
    w, h = (int(v) for v in frame_wh.lower().split("x"))
    frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if w * h < frame.size // 3 else
                       cv2.INTER_LINEAR)
size = pipe.prepare(frame)[0][0][1].shape
print(json.dumps({"input_hw": list(size[2:])}), flush=True)
t0 = time.perf_counter()
pipe.predict(frame)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"input_hw": list(size[2:]), "frame_wh": [frame.shape[1], frame.shape[0]],
                  "peak_mb": peak / 1024, "loaded_mb": base / 1024, "seconds": seconds}))
"""


def _rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (Linux /proc; 0 where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(model: str, scale: str, frame: str, threads: int, max_gb: float) -> dict:
    """One child process: {"input_hw", "frame_wh", "peak_mb", "loaded_mb", "seconds"} or, when
    killed at the cap, {"input_hw", "killed_mb"}. RuntimeError with the child's last line on
    failure (e.g. a frame core/limits.py refuses)."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, model, scale, frame, str(threads)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0.0
    while proc.poll() is None:  # watch the resident memory: the machine is shared
        rss = _rss_mb(proc.pid)
        if rss > max_gb * 1024:
            proc.kill()
            killed = rss
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    lines = [json.loads(x) for x in out.strip().splitlines() if x.startswith("{")]
    if killed:
        return {"input_hw": lines[0]["input_hw"] if lines else None, "killed_mb": killed}
    if proc.returncode != 0 or not lines:
        raise RuntimeError((err.strip().splitlines() or ["no output"])[-1])
    return lines[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.frame_memory",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a dynamic-size model (e.g. make demo's outputs/demo/demo.onnx)")
    ap.add_argument("--scales", default="1,2,4",
                    help="test scales, comma-separated, each run alone (0.25..4, core/limits.py)")
    ap.add_argument("--frames", default="sample", metavar="WxH[,WxH...]",
                    help="frame sizes: the bundled sample resized to each (default: as it is, 640x480); "
                         "e.g. 1536x512 (3:1) or 2048x256 (8:1, core/limits.py's widest)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = its default)")
    ap.add_argument("--max-gb", type=float, default=5.5,
                    help="kill a process whose resident memory passes this, GB (shared machines)")
    args = ap.parse_args(argv)
    if not os.path.isfile(args.model):
        raise UserError(f"model file not found: {args.model} (export one with 'higherhrnet-trt export "
                        "--dynamic', or run make demo)")

    print("frame (W x H)  input (H x W)   Mpx   of limit  peak RSS   loaded   growth/input px   "
          "predict s")
    worst = None
    for frame in args.frames.split(","):
        for scale in args.scales.split(","):
            try:
                r = measure(args.model, scale, frame, args.threads, args.max_gb)
            except RuntimeError as e:
                print(f"{frame:>13}  scale {scale}: failed: {e}")
                continue
            h, w = r["input_hw"] or (0, 0)
            px = h * w
            head = f"{frame:>13}  {h:5d} x {w:<5d}  {px / 1e6:5.2f}  {100 * px / MAX_INPUT_PIXELS:6.0f} %"
            if "killed_mb" in r:
                print(f"{head}  killed at {r['killed_mb']:.0f} MB resident (--max-gb {args.max_gb:g})")
                continue
            per_px_kb = (r["peak_mb"] - r["loaded_mb"]) * 1024 / px
            print(f"{head}  {r['peak_mb']:7.0f} MB {r['loaded_mb']:6.0f} MB  {per_px_kb:8.2f} KB"
                  f"       {r['seconds']:6.2f}")
            if worst is None or per_px_kb > worst[0]:
                worst = (per_px_kb, h, w, frame, scale)
    if worst:
        print(f"worst: {worst[0]:.2f} KB per input pixel ({worst[1]} x {worst[2]} input, frame "
              f"{worst[3]}, scale {worst[4]})")
    return 0 if worst else 1  # nothing measured: every row failed or was killed


if __name__ == "__main__":
    sys.exit(script_exit(main))
