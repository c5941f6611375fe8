"""Person IDs on generated videos with known identities: IDF1, MOTA, ID switches (motmetrics).

Videos from benchmarks/scene_video.py (MOT layout, ground-truth IDs and keypoints per frame). The
model's people of every frame are computed once (cached as DIR/vNNN/poses-KEY.npz, KEY from the
model file and the test scales) and then tracked three ways:

- ``tracker``: runtime/track.py with its default options (what ``run --track`` does);
- ``greedy``: a naive per-frame matching, people of score >= 0.3 matched greedily to the previous
  frame's people by OKS (>= 0.1), no motion prediction, no memory of lost people;
- ``oracle``: the tracker on the ground-truth keypoints (visible joints, score 1): what the
  tracker does with perfect detections.

A hypothesis matches a ground-truth person when their COCO OKS (ground-truth visible area as the
scale) is >= 0.5 (the distance motmetrics minimises is 1 - OKS). Crossings: pairs of ground-truth
people whose left-right order changes while both are seen and their boxes overlap. Each method's
report also says why people were missed and hypotheses false (``misses``, ``false``: see
error_causes), which tells a detection limit (people found with joints off) from a tracking one.

    python -m higherhrnet_trt.benchmarks.scene_video --out /tmp/tv --num 20 --seed 100
    python -m higherhrnet_trt.benchmarks.track_eval /tmp/tv --model demo.onnx [--scales 2]

Needs motmetrics (extra ``bench``) and OpenCV.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import sys
import time

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.runtime.pipeline import Pipeline
from higherhrnet_trt.runtime.sources import import_cv2
from higherhrnet_trt.runtime.track import Tracker, TrackerOptions, oks_matrix

mm = lazy_import("motmetrics")

SIGMAS = np.asarray(COCO.sigmas, dtype=np.float64)
MATCH_OKS = 0.5


def load_truth(video: str) -> list[list[dict]]:
    with open(os.path.join(video, "gt", "keypoints.json"), encoding="utf-8") as f:
        return json.load(f)["frames"]


def cache_key(model: str, scales) -> str:
    """Names one model file (path, size, modification time) at one set of test scales, so a
    cached detection is never read for another model or scale."""
    st = os.stat(model)
    text = f"{os.path.abspath(model)}|{st.st_size}|{st.st_mtime_ns}|{','.join(map(str, scales))}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def detect(video: str, pipe) -> list[tuple[np.ndarray, np.ndarray]]:
    """The model's (keypoints (P, 17, 3), scores (P,)) per frame, cached in video/poses-KEY.npz."""
    cache = os.path.join(video, f"poses-{cache_key(pipe.model_path, pipe.scales)}.npz")
    if os.path.exists(cache):
        data = np.load(cache)
        return [(data[f"k{i}"], data[f"s{i}"]) for i in range(int(data["n"]))]

    cv2 = import_cv2()
    out = []
    for path in sorted(glob.glob(os.path.join(video, "img1", "*.jpg"))):
        poses = pipe.predict(cv2.imread(path))
        out.append((poses.keypoints, poses.scores))
    np.savez(cache, n=len(out), **{f"k{i}": k for i, (k, _) in enumerate(out)},
             **{f"s{i}": s for i, (_, s) in enumerate(out)})
    return out


def oracle(truth: list[list[dict]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ground-truth people as detections: visible joints at score 1, others 0 (image corner)."""
    out = []
    for frame in truth:
        k = np.array([np.array(p["keypoints"]).reshape(17, 3) for p in frame]).reshape(-1, 17, 3)
        k[:, :, 2] = (k[:, :, 2] > 0).astype(np.float64)
        out.append((k, k[:, :, 2].mean(axis=1) if len(k) else np.zeros(0)))
    return out


def track_with(tracker: Tracker, dets) -> list[np.ndarray]:
    return [tracker.update(d) for d in dets]


def greedy(dets, min_score: float = 0.3, min_oks: float = 0.1) -> list[np.ndarray]:
    """Naive per-frame matching to the previous frame (see module)."""
    next_id, prev, out = 1, None, []
    for kpts, scores in dets:
        ids = np.full(len(scores), -1, np.int64)
        keep = np.flatnonzero(scores >= min_score)
        xy, conf = kpts[keep, :, :2], kpts[keep, :, 2] > 0.1
        if prev is not None and len(keep) and len(prev[0]):
            pxy, pconf, pids = prev
            area = np.array([_area(p, c) for p, c in zip(pxy, pconf)])
            sim = oks_matrix(pxy, pconf, area, xy, conf, SIGMAS)
            while sim.size and sim.max() >= min_oks:
                r, c = np.unravel_index(int(sim.argmax()), sim.shape)
                ids[keep[c]] = pids[r]
                sim[r, :] = -1
                sim[:, c] = -1
        for p in keep:
            if ids[p] < 0:
                ids[p] = next_id
                next_id += 1
        prev = (xy, conf, ids[keep])
        out.append(ids)
    return out


def _area(xy: np.ndarray, conf: np.ndarray) -> float:
    if conf.sum() < 2:
        return 1.0
    span = xy[conf].max(axis=0) - xy[conf].min(axis=0)
    return float(max(span[0], 1) * max(span[1], 1))


def gt_oks(gt: dict, kpts: np.ndarray) -> np.ndarray:
    """OKS of one ground-truth person with P hypotheses (P, 17, >=2) -> (P,)."""
    g = np.array(gt["keypoints"]).reshape(17, 3)
    vis = g[:, 2] > 0
    d2 = ((kpts[:, :, :2] - g[None, :, :2]) ** 2).sum(axis=2)
    e = d2 / ((2 * SIGMAS) ** 2 * (gt["area"] + np.spacing(1)) * 2)
    return np.exp(-e)[:, vis].mean(axis=1) if vis.any() else np.zeros(len(kpts))


def accumulate(truth, dets, ids):
    acc = mm.MOTAccumulator(auto_id=True)
    for frame, (kpts, _), fid in zip(truth, dets, ids):
        hyp = np.flatnonzero(fid > 0)
        dist = np.array([1.0 - gt_oks(g, kpts[hyp]) for g in frame]).reshape(len(frame), len(hyp))
        dist[dist > 1.0 - MATCH_OKS] = np.nan
        acc.update([g["id"] for g in frame], fid[hyp].tolist(), dist)
    return acc


#: Bands of the best OKS an unmatched person or hypothesis has with anything (see error_causes).
NEAR_OKS = 0.3


def error_causes(truth, dets, ids, acc) -> dict:
    """Why motmetrics left people unmatched, from its MISS and FP events.

    A missed ground-truth person is ``found_without_id`` when some detection of the frame has OKS
    >= 0.5 with it but no track ID (scored below the tracker's low_score, or a tentative track),
    ``taken`` when every such detection has an ID that motmetrics gave to another person,
    ``found_off`` when the best detection is at OKS 0.3-0.5 (found, joints placed too far off),
    ``not_found`` below that. A false hypothesis (an ID'd person matching nobody) is ``duplicate``
    when a ground-truth person at OKS >= 0.5 was taken by another, ``off`` at 0.3-0.5, ``nobody``
    below. Returns {"misses": {...}, "false": {...}} counts over the frames."""
    misses = {"found_without_id": 0, "taken": 0, "found_off": 0, "not_found": 0}
    false = {"duplicate": 0, "off": 0, "nobody": 0}
    events = acc.mot_events
    for (frame, _), row in events[events["Type"].isin(["MISS", "FP"])].iterrows():
        people = truth[frame]
        kpts, fid = dets[frame][0], ids[frame]
        if row["Type"] == "MISS":
            gt = next(g for g in people if g["id"] == row["OId"])
            oks = gt_oks(gt, kpts) if len(kpts) else np.zeros(0)
            best = float(oks.max()) if oks.size else 0.0
            if ((oks >= MATCH_OKS) & (fid <= 0)).any():
                misses["found_without_id"] += 1
            elif best >= MATCH_OKS:
                misses["taken"] += 1
            elif best >= NEAR_OKS:
                misses["found_off"] += 1
            else:
                misses["not_found"] += 1
        else:
            hyp = kpts[np.flatnonzero(fid == row["HId"])[:1]]
            best = max((float(gt_oks(g, hyp)[0]) for g in people), default=0.0)
            key = "duplicate" if best >= MATCH_OKS else "off" if best >= NEAR_OKS else "nobody"
            false[key] += 1
    return {"misses": misses, "false": false}


def crossings(truth) -> int:
    """Pairs of people whose left-right order flips while both are seen with overlapping boxes."""
    count, last = 0, {}
    for frame in truth:
        boxes = {p["id"]: p["bbox"] for p in frame}
        for a in boxes:
            for b in boxes:
                if a >= b:
                    continue
                xa, xb = boxes[a][0] + boxes[a][2] / 2, boxes[b][0] + boxes[b][2] / 2
                side = np.sign(xa - xb)
                if (a, b) in last and last[(a, b)] != side and side != 0 and _overlap(boxes[a], boxes[b]):
                    count += 1
                if side != 0:
                    last[(a, b)] = side
    return count


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def evaluate(videos: list[str], pipe, options: TrackerOptions | None = None) -> dict:
    accs = {"tracker": [], "greedy": [], "oracle": []}
    causes = {name: [] for name in accs}
    total_crossings = 0
    for v in videos:
        truth = load_truth(v)
        dets = detect(v, pipe)
        total_crossings += crossings(truth)
        gt_dets = oracle(truth)
        runs = {"tracker": (dets, track_with(Tracker(SIGMAS, options), dets)),
                "greedy": (dets, greedy(dets)),
                "oracle": (gt_dets, track_with(Tracker(SIGMAS, options), gt_dets))}
        for method, (d, ids) in runs.items():
            acc = accumulate(truth, d, ids)
            accs[method].append(acc)
            causes[method].append(error_causes(truth, d, ids, acc))
    mh = mm.metrics.create()
    names = [os.path.basename(v) for v in videos]
    report = {"videos": len(videos), "crossings": total_crossings}
    for method, acc in accs.items():
        s = mh.compute_many(acc, metrics=["idf1", "mota", "num_switches", "precision", "recall",
                                          "num_fragmentations"], names=names, generate_overall=True)
        row = s.loc["OVERALL"]
        switches = int(row["num_switches"])
        report[method] = {"idf1": round(float(row["idf1"]), 3), "mota": round(float(row["mota"]), 3),
                          "switches": switches,
                          "switches_per_crossing": round(switches / max(total_crossings, 1), 2),
                          "precision": round(float(row["precision"]), 3),
                          "recall": round(float(row["recall"]), 3),
                          "fragmentations": int(row["num_fragmentations"]),
                          **_summed(causes[method])}
    return report


def _summed(causes: list[dict]) -> dict:
    """error_causes of every video added up."""
    return {kind: {k: sum(c[kind][k] for c in causes) for k in causes[0][kind]} for kind in causes[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="folder of vNNN videos from benchmarks/scene_video.py")
    p.add_argument("--model", required=True, help="model (.onnx) whose people are tracked")
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0],
                   help="test scales of the model's pipeline, as run --scales (default 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime intra-op threads (default 0: one per core)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a TrackerOptions field for this run (repeatable)")
    args = p.parse_args(argv)

    fields = vars(TrackerOptions())
    settings = [s.split("=", 1) for s in args.set]
    for item in settings:
        if len(item) != 2 or item[0] not in fields:
            p.error(f"--set {'='.join(item)}: expected NAME=VALUE with NAME among {', '.join(fields)}")
    try:
        options = TrackerOptions(**{k: type(fields[k])(v) for k, v in settings})
        options.check()
    except ValueError as e:
        p.error(f"--set: {e}")
    videos = sorted(glob.glob(os.path.join(args.data, "v[0-9][0-9][0-9]")))
    if not videos:
        p.error(f"no vNNN video folders in {args.data}: write them with "
                "'python -m higherhrnet_trt.benchmarks.scene_video --out DIR'")
    t0 = time.perf_counter()
    try:
        # person_thr 0: the trackers see every candidate, as Pipeline(track=True) tracks before person_thr
        with Pipeline(args.model, scales=args.scales, person_thr=0.0, threads=args.threads) as pipe:
            report = evaluate(videos, pipe, options)
    except UserError as e:  # a missing model, bad scales: one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        return 1
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["scales"] = args.scales
    report["options"] = vars(options)
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
