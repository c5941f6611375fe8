"""Peak memory of one Pipeline.predict against the network input's size (the figure core/limits.py,
``run --help`` and the README state per input pixel).

Each test scale runs alone in a fresh process (peak RSS is per process) on the bundled 640x480
sample (people in it: the decode's share counts); the network input grows with the scale.
Growth = peak RSS after predict minus RSS after loading, divided by the input's pixels.

    python -m higherhrnet_trt.benchmarks.frame_memory outputs/demo/demo.onnx --scales 1,2,4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = """
import json, resource, sys, time
import numpy as np
from higherhrnet_trt.runtime import Pipeline
model, scale = sys.argv[1], float(sys.argv[2])
pipe = Pipeline(model, scales=(scale,)).activate()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import cv2
from higherhrnet_trt.cli.demo import SAMPLE_IMAGE, package_file
frame = cv2.imread(package_file(SAMPLE_IMAGE))
t0 = time.perf_counter()
pipe.predict(frame)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = pipe.prepare(frame)[0][0][1].shape
print(json.dumps({"input_hw": list(size[2:]), "peak_mb": peak / 1024, "loaded_mb": base / 1024,
                  "seconds": seconds}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.frame_memory",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a dynamic-size model (e.g. make demo's outputs/demo/demo.onnx)")
    ap.add_argument("--scales", default="1,2,4",
                    help="test scales, comma-separated, each run alone (0.25..4, core/limits.py)")
    args = ap.parse_args(argv)
    print("input (H x W)   Mpx    peak RSS   loaded   growth/input px   predict s")
    for scale in args.scales.split(","):
        out = subprocess.run([sys.executable, "-c", _CHILD, args.model, scale], capture_output=True,
                             text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        px = r["input_hw"][0] * r["input_hw"][1]
        per_px_kb = (r["peak_mb"] - r["loaded_mb"]) * 1024 / px
        print(f"{r['input_hw'][0]:5d} x {r['input_hw'][1]:<5d}  {px / 1e6:5.2f}  {r['peak_mb']:7.0f} MB "
              f"{r['loaded_mb']:6.0f} MB  {per_px_kb:8.2f} KB       {r['seconds']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
