"""People whose joints span two people: a count over the people a ``run --json`` wrote.

Associative-embedding grouping joins joints by tag alone (no spatial limit, as in the official
decoder), so when two people's tags come close one drawn person can carry a joint of another
person far away. A person counts as spread when one of its joints (score >= ``kpt_thr``) lies more
than ``height_ratio`` times the person's joint height *sideways* from its median joint and more
than ``min_px`` pixels: walkers are about three times taller than wide, so a joint that far to the
side is on someone else.

    python -m higherhrnet_trt.benchmarks.joint_spread people.json [more.json ...]
    python -m higherhrnet_trt.benchmarks.joint_spread --write-clip vtest_held.avi   # vtest's held-out frames

RESULTS.md section 20 ran it on ``run --track --scales 2`` over vtest.avi's held-out frames. For a
file written with ``--track`` it also prints how long the track IDs lasted (:func:`track_summary`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from higherhrnet_trt.core.errors import UserError, script_exit
from higherhrnet_trt.core.lazy import lazy_import

from .real_people import HOLDOUT_FRAME, OPENCV_DATA

cv2 = lazy_import("cv2")


def is_spread(keypoints: np.ndarray, kpt_thr: float = 0.1, height_ratio: float = 1.0,
              min_px: float = 40.0) -> bool:
    """keypoints: (17, 3) x, y in image pixels, score. True when a scored joint lies more than
    ``height_ratio`` x the scored joints' height and ``min_px`` sideways from their median."""
    scored = keypoints[keypoints[:, 2] >= kpt_thr]
    if len(scored) < 3:
        return False
    median_x = float(np.median(scored[:, 0]))
    height = max(float(np.ptp(scored[:, 1])), 1.0)
    sideways = float(np.abs(scored[:, 0] - median_x).max())
    return sideways > height_ratio * height and sideways > min_px


def count_spread(people: list[dict], **limits) -> dict:
    """people: records of ``run --json`` (``keypoints`` flat 17 x 3, ``score``) -> counts and the
    spread people's scores."""
    scores = [p["score"] for p in people
              if is_spread(np.asarray(p["keypoints"], float).reshape(-1, 3), **limits)]
    return {"people": len(people), "spread": len(scores), "spread_scores": scores}


def write_heldout_clip(path: str, data_dir: str = OPENCV_DATA) -> int:
    """vtest.avi's held-out frames (from HOLDOUT_FRAME on) as one MJPG video at 10 fps; frames written."""
    cap = cv2.VideoCapture(os.path.join(data_dir, "vtest.avi"))
    writer, index, written = None, 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index >= HOLDOUT_FRAME:
            if writer is None:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10,
                                         (frame.shape[1], frame.shape[0]))
            writer.write(frame)
            written += 1
        index += 1
    cap.release()
    if writer is not None:
        writer.release()
    return written


def track_summary(people: list[dict]) -> dict | None:
    """people: records of ``run --track --json`` (``track_id``; -1 = no ID yet) -> {"ids": distinct
    IDs, "long": IDs on 20+ records, "short": IDs on under 5, "longest": records of the longest,
    "untracked": records with -1}; None when no record has a ``track_id``."""
    if not any("track_id" in p for p in people):
        return None
    counts: dict[int, int] = {}
    for p in people:
        tid = int(p.get("track_id", -1))
        if tid >= 0:
            counts[tid] = counts.get(tid, 0) + 1
    lengths = list(counts.values())
    return {"ids": len(counts), "long": sum(n >= 20 for n in lengths),
            "short": sum(n < 5 for n in lengths), "longest": max(lengths, default=0),
            "untracked": sum(int(p.get("track_id", -1)) < 0 for p in people)}


def _read_people(path: str) -> list:
    """The records of one ``run --json`` file; a missing or unreadable file is a UserError."""
    fix = "pass a file written by 'higherhrnet-trt run --json'"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}; {fix}") from None
    except ValueError as e:
        raise UserError(f"{path} is not JSON ({e}); {fix}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.joint_spread",
                                 description="count people whose joints span two people in run --json output")
    ap.add_argument("json", nargs="*", help="people files written by 'higherhrnet-trt run --json'")
    ap.add_argument("--write-clip", metavar="AVI", help="write vtest.avi's held-out frames here and stop")
    args = ap.parse_args(argv)
    if args.write_clip:
        print(f"wrote {write_heldout_clip(args.write_clip)} frames to {args.write_clip}")
        return 0
    for path in args.json:
        people = _read_people(path)
        result = count_spread(people)
        median = np.median(result["spread_scores"]) if result["spread_scores"] else float("nan")
        print(f"{path}: {result['spread']} of {result['people']} people spread "
              f"({100 * result['spread'] / max(result['people'], 1):.0f} %), median score {median:.2f}")
        tracks = track_summary(people)
        if tracks:
            print(f"{path}: {tracks['ids']} track IDs, {tracks['long']} on 20+ frames, {tracks['short']} "
                  f"on under 5, the longest {tracks['longest']} frames; {tracks['untracked']} people "
                  "without an ID")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
