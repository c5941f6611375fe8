"""Several cameras through one model: throughput and latency against the number of sources N.

Each round takes one frame from each of N sources and predicts them together
(runtime/multi_source.py: ``predict_sources``, one ``Pipeline.predict_batch`` call; with a
``--dynamic-batch`` model one network call for the N frames). For each N it reports the round's
latency (median / p90, ms: from the round's frames in hand to their people), the frames per second
over all sources, the share of time in the network, and the process's resident memory after
warm-up and at the end (flat memory: the end should not grow with the rounds). ``--sequential``
adds the same rounds run as N single ``predict`` calls, to show what the batch buys. It prints
numbers; it asserts nothing.

    python -m higherhrnet_trt.benchmarks.multi_source MODEL [--sources 1,2,4] [--rounds 20]

Frames: the bundled sample (640x480, 4 people) and its mirror, alternated across sources, held in
memory (decoding video is not measured; it runs in the capture's own threads in real use).
MODEL: an ONNX exported with ``--dynamic-batch`` (and ``--dynamic``), e.g.
``higherhrnet-trt export --config demo -c export/assets/demo_w16_256.pth --dynamic --dynamic-batch``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.runtime import Pipeline
from higherhrnet_trt.runtime.multi_source import MultiSource, predict_sources
from higherhrnet_trt.runtime.sources import Frame, Source

from .soak import host_rss_mib

cv2 = lazy_import("cv2")


def _frames(n: int) -> list[np.ndarray]:
    path = os.path.join(os.path.dirname(__file__), "..", "runtime", "assets", "sample.jpg")
    image = cv2.imread(path)
    return [image if k % 2 == 0 else np.ascontiguousarray(image[:, ::-1]) for k in range(n)]


def measure(pipe, n: int, rounds: int, warmup: int, sequential: bool) -> dict:
    """Round latencies (s), frames per second and RSS (MiB) for N = n sources.

    The sources are in-memory frame lists read by MultiSource, so the rounds and their batching are
    those of ``run --source ... --source ...``."""
    class Repeat(Source):
        def __init__(self, image):
            super().__init__(kind="video", description="memory", length=warmup + rounds)
            self.image = image

        def __iter__(self):
            for i in range(warmup + rounds):
                yield Frame(image=self.image, index=i, name=f"f{i}")

    multi = MultiSource([Repeat(f) for f in _frames(n)])
    infer0 = pipe.stats.seconds["infer"]
    lat, rss_warm, t_start = [], None, None
    t_prev = time.perf_counter()
    if sequential:
        rounds_iter = ([(t.source, t.frame, pipe.predict(t.frame.image)) for t in r] for r in multi)
    else:
        rounds_iter = predict_sources(pipe, multi)
    for i, _ in enumerate(rounds_iter):
        now = time.perf_counter()
        if i == warmup - 1:
            rss_warm, t_start, infer0 = host_rss_mib(), now, pipe.stats.seconds["infer"]
        elif i >= warmup:
            lat.append(now - t_prev)
        t_prev = now
    total = time.perf_counter() - t_start
    lat = np.asarray(lat)
    return {"n": n, "median_ms": 1000 * float(np.median(lat)), "p90_ms": 1000 * float(np.percentile(lat, 90)),
            "fps": n * rounds / total, "infer_share": (pipe.stats.seconds["infer"] - infer0) / total,
            "rss_warm": rss_warm, "rss_end": host_rss_mib()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="ONNX exported with --dynamic-batch")
    ap.add_argument("--sources", default="1,2,4", help="values of N, comma-separated")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds per N")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    ap.add_argument("--sequential", action="store_true", help="also N single predict() calls a round")
    args = ap.parse_args(argv)

    opts = {"threads": args.threads} if args.threads else {}
    pipe = Pipeline(args.model, max_batch=64, **opts).activate()
    if pipe.backend.inputs[0].shape[0] != -1:
        print("note: this model has a fixed batch: the N frames go through N network calls "
              "(export with --dynamic-batch for one)")
    print(f"model {os.path.basename(args.model)}, {pipe.backend.name}, frames 640x480, "
          f"{args.rounds} rounds after {args.warmup} warm-up")
    print("| N | mode | round latency median / p90, ms | frames/s (all sources) | network share | "
          "RSS after warm-up / end, MiB |")
    print("|---|---|---|---|---|---|")
    modes = [("batch", False)] + ([("sequential", True)] if args.sequential else [])
    for n in [int(v) for v in args.sources.split(",")]:
        for mode, seq in modes:
            r = measure(pipe, n, args.rounds, args.warmup, seq)
            print(f"| {n} | {mode} | {r['median_ms']:.0f} / {r['p90_ms']:.0f} | {r['fps']:.2f} | "
                  f"{100 * r['infer_share']:.0f} % | {r['rss_warm']:.0f} / {r['rss_end']:.0f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
