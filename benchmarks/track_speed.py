"""Tracker cost per frame on the CPU (runtime/track.py), N people walking, for each solver.

    python -m higherhrnet_trt.benchmarks.track_speed --people 30 --frames 2000

Synthetic people: 17 joints each, walking at 0.5-3 px a frame in a 1920x1080 frame, joint noise
of 1.5 px, 5 % of the joints missed per frame and 3 % of the people missed per frame (so lost
tracks and the second stage are exercised); person scores 0.15-0.9. Prints ms per frame (median,
mean, p90, p99; wall clock and the thread's CPU time) with ``lap`` (when installed) and with the
project's Munkres.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.runtime.track import Tracker


def frames(people: int, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    template = rng.normal(0, 1, (17, 2)) * [15, 40]
    start = rng.uniform([100, 100], [1820, 980], (people, 2))
    vel = rng.uniform(-3, 3, (people, 2)) * [1, 0.2]
    scores = rng.uniform(0.15, 0.9, people)
    out = []
    for k in range(count):
        centre = start + vel * k
        centre = np.mod(centre, [1920, 1080])  # walk out one side, in at the other
        xy = centre[:, None, :] + template[None] + rng.normal(0, 1.5, (people, 17, 2))
        s = np.where(rng.random((people, 17)) < 0.05, 0.0, scores[:, None])
        seen = rng.random(people) >= 0.03
        k3 = np.concatenate([xy, s[:, :, None]], axis=2)[seen]
        out.append((k3, k3[:, :, 2].mean(axis=1)))
    return out


def time_tracker(data, use_lap: bool | None) -> dict:
    trk = Tracker(COCO.sigmas, use_lap=use_lap)
    wall, cpu = [], []
    for f in data:
        t0, c0 = time.perf_counter(), time.thread_time()
        trk.update(f)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    out = {"tracks_end": trk.num_tracks}
    # Wall time includes being descheduled on a busy machine; CPU time (this thread's) does not.
    for name, values in (("wall", wall), ("cpu", cpu)):
        ms = np.array(values[10:]) * 1e3  # the first frames open the tracks
        out[name] = {"median_ms": round(float(np.median(ms)), 3), "mean_ms": round(float(ms.mean()), 3),
                     "p90_ms": round(float(np.percentile(ms, 90)), 3),
                     "p99_ms": round(float(np.percentile(ms, 99)), 3)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="tracker cost per frame")
    p.add_argument("--people", type=int, default=30)
    p.add_argument("--frames", type=int, default=2000)
    args = p.parse_args(argv)
    data = frames(args.people, args.frames)
    report = {"people": args.people, "frames": args.frames}
    try:
        import lap  # noqa: F401

        report["lap"] = time_tracker(data, None)
    except ImportError:
        report["lap"] = "not installed"
    report["munkres"] = time_tracker(data, False)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
