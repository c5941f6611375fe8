"""Which person score to report by default: precision and recall of the demo network's people per
threshold, on held-out generated scenes (the default ``person_thr`` in runtime/options.py).

weights -> ``export`` (fp32 ONNX, flip test) -> Pipeline (person_thr 0: every candidate) -> each
candidate matched to at most one annotated person at OKS >= 0.5 (greedy by score, as COCO's
matching) -> per threshold: precision = matched / reported, recall = matched / annotated.

    python -m higherhrnet_trt.benchmarks.person_thr --scenes 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from higherhrnet_trt.benchmarks.scenes import generate_dataset
from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.files import DEMO_WEIGHTS, package_file
from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.export.api import export
from higherhrnet_trt.runtime import Pipeline

cv2 = lazy_import("cv2")

THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
OKS_MATCH = 0.5


def oks(pred: np.ndarray, gt: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """COCO's object keypoint similarity of a prediction (J, 3) [x, y, score] to an annotation
    (J, 3) [x, y, v]: mean over the labelled joints of exp(-d^2 / (2 area (2 sigma)^2))."""
    labelled = gt[:, 2] > 0
    if not labelled.any():
        return 0.0
    d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(axis=1)
    e = d2 / (2.0 * max(area, 1.0) * (2.0 * sigmas) ** 2)
    return float(np.exp(-e[labelled]).mean())


def match(scores: np.ndarray, preds: np.ndarray, gts: list[tuple[np.ndarray, float]],
          sigmas: np.ndarray) -> np.ndarray:
    """Per prediction (best score first): whether it matched a still-free annotation at OKS >= 0.5."""
    taken = [False] * len(gts)
    hit = np.zeros(len(scores), bool)
    for i in np.argsort(-scores, kind="stable"):
        best, best_j = OKS_MATCH, -1
        for j, (gt, area) in enumerate(gts):
            if not taken[j]:
                value = oks(preds[i], gt, area, sigmas)
                if value >= best:
                    best, best_j = value, j
        if best_j >= 0:
            taken[best_j] = True
            hit[i] = True
    return hit


def measure(num_scenes: int, seed: int, work: str, weights: str, log=print) -> dict:
    """{"thresholds": [{person_thr, precision, recall, reported}], "annotated": N, ...}."""
    onnx = os.path.join(work, "demo.onnx")
    export(weights, config="demo", output=onnx, input_size=256, flip=True, log=lambda *a: None)
    ann_path = generate_dataset(os.path.join(work, "scenes"), num_scenes, seed=seed)
    with open(ann_path, encoding="utf-8") as f:
        ann = json.load(f)
    sigmas = np.asarray(keypoint_set("coco").sigmas, np.float64)
    people: dict[int, list] = {}
    for a in ann["annotations"]:
        if a.get("num_keypoints", 1) > 0:
            people.setdefault(a["image_id"], []).append(
                (np.asarray(a["keypoints"], np.float64).reshape(-1, 3), float(a["area"])))
    all_scores, all_hits = [], []
    with Pipeline(onnx, person_thr=0.0) as pipe:
        for image in ann["images"]:
            frame = cv2.imread(os.path.join(work, "scenes", "images", image["file_name"]))
            poses = pipe.predict(frame)
            all_scores.append(poses.scores)
            all_hits.append(match(poses.scores, poses.keypoints, people.get(image["id"], []), sigmas))
    scores, hits = np.concatenate(all_scores), np.concatenate(all_hits)
    annotated = sum(len(v) for v in people.values())
    rows = []
    for t in THRESHOLDS:
        keep = scores >= t
        reported = int(keep.sum())
        matched = int(hits[keep].sum())
        rows.append({"person_thr": t, "reported": reported, "matched": matched,
                     "precision": matched / reported if reported else 1.0,
                     "recall": matched / annotated if annotated else 0.0})
    return {"scenes": num_scenes, "seed": seed, "annotated": annotated, "thresholds": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.person_thr",
                                 description="precision / recall of the demo network's people per "
                                             "person_thr on held-out generated scenes (CPU)")
    ap.add_argument("--scenes", type=int, default=100, help="generated scenes")
    ap.add_argument("--seed", type=int, default=1000, help="their seed (1000: the model card's held-out set)")
    ap.add_argument("--weights", default=None, help="demo checkpoint (default: the bundled one)")
    ap.add_argument("--json", default=None, help="write the table here")
    args = ap.parse_args(argv)
    weights = args.weights or package_file(DEMO_WEIGHTS)
    with tempfile.TemporaryDirectory(prefix="person_thr_") as work:
        result = measure(args.scenes, args.seed, work, weights)
    print(f"{result['scenes']} scenes (seed {result['seed']}), {result['annotated']} annotated people; "
          f"a reported person is right when OKS >= {OKS_MATCH} with an unmatched one")
    print(f"{'person_thr':>10} {'reported':>9} {'precision':>10} {'recall':>7}")
    for r in result["thresholds"]:
        print(f"{r['person_thr']:>10.2f} {r['reported']:>9d} {r['precision']:>10.3f} {r['recall']:>7.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
