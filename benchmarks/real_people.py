"""The demo model on real people: AP against silver (teacher) labels through the product chain.

weights -> ``export`` (fp32 ONNX, dynamic size, flip test) -> ``convert_fp16`` / ``quantize_int8``
(calibrated on real training frames) -> ONNX Runtime at test scale ``--scale`` -> runtime decode ->
COCO OKS AP (pycocotools) against the held-out set that ``references/silver.py`` writes (the last
20 % of OpenCV's vtest.avi and two whole photos, labelled by MediaPipe Pose: silver labels, not
ground truth).

    python -m higherhrnet_trt.benchmarks.real_people --scale 1.5 --json real.json

Without ``--silver`` the held-out labels committed in ``benchmarks/data/silver_heldout.json`` are
used, with their images read from Debian's ``opencv-doc`` package (``apt-get install opencv-doc``),
and INT8 is calibrated on vtest frames that training saw (below ``HOLDOUT_FRAME``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.lazy import lazy_import

from .accuracy import ap_summary, evaluate_variants
from .demo_model import default_weights, export_variants, measure, update_card

cv2 = lazy_import("cv2")

#: Where Debian's opencv-doc puts vtest.avi and the photos.
OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
HELDOUT_LABELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "silver_heldout.json")
HOLDOUT_FRAME = 636  # references/silver.py: vtest frames from here on are held out


def distribution_missing(data_dir: str = OPENCV_DATA) -> str | None:
    """Why the real held-out set cannot be made here (None when it can)."""
    if not os.path.isfile(os.path.join(data_dir, "vtest.avi")):
        return f"no {data_dir}/vtest.avi: apt-get install opencv-doc"
    return None


def _vtest_frames(wanted: set[int], data_dir: str) -> dict:
    cap = cv2.VideoCapture(os.path.join(data_dir, "vtest.avi"))
    frames, index = {}, 0
    while wanted - frames.keys():
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            frames[index] = frame
        index += 1
    cap.release()
    return frames


def materialize(out_dir: str, labels: str = HELDOUT_LABELS, data_dir: str = OPENCV_DATA,
                max_images: int | None = None) -> tuple[str, str]:
    """Write the held-out images named in ``labels`` (``source``: vtest.avi with ``frame``, or a
    photo's file name in ``data_dir``) as PNG into ``out_dir/images``; with ``max_images`` only
    the first ones (the photos always). Returns (annotation file, images folder)."""
    with open(labels, encoding="utf-8") as f:
        data = json.load(f)
    records = data["images"]
    if max_images is not None:
        photos = [r for r in records if r["source"] != "vtest.avi"]
        frames = [r for r in records if r["source"] == "vtest.avi"]
        records = frames[:max(max_images - len(photos), 0)] + photos
    keep = {r["id"] for r in records}
    images_dir = os.path.join(out_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    frames = _vtest_frames({r["frame"] for r in records if r["source"] == "vtest.avi"}, data_dir)
    for r in records:
        image = frames.get(r.get("frame")) if r["source"] == "vtest.avi" else \
            cv2.imread(os.path.join(data_dir, r["source"]), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read {r['source']} from {data_dir}: apt-get install opencv-doc")
        r["file_name"] = os.path.splitext(r["file_name"])[0] + ".png"
        cv2.imwrite(os.path.join(images_dir, r["file_name"]), image)
    data["images"] = records
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    ann = os.path.join(out_dir, "person_keypoints.json")
    with open(ann, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return ann, images_dir


def calibration_frames(out_dir: str, count: int = 64, data_dir: str = OPENCV_DATA) -> str:
    """``count`` vtest frames from the training part (evenly spaced below ``HOLDOUT_FRAME``) as PNG
    files in ``out_dir``: real frames of the camera, as a user calibrates on theirs."""
    os.makedirs(out_dir, exist_ok=True)
    step = max(HOLDOUT_FRAME // count, 1)
    for index, frame in sorted(_vtest_frames(set(range(0, HOLDOUT_FRAME, step)[:count]), data_dir).items()):
        cv2.imwrite(os.path.join(out_dir, f"vtest_{index:04d}.png"), frame)
    return out_dir


def evaluate_real(variants: dict[str, str], ann: str, images_dir: str, scale: float, threads: int = 0,
                  log=print) -> dict:
    """{precision: onnx} at test scale ``scale`` (``accuracy.evaluate_variants``) -> {"ap": {precision:
    AP}, "stats": {...}, "scale": s, "images": N, "people": P}."""
    evaluated = evaluate_variants(variants, ann, images_dir, threads, scales=(scale,))
    for precision, r in evaluated.items():
        stats = r["stats"]
        log(f"real held-out, scale {scale}, {precision}: AP {stats['AP']:.4f} "
            f"AP50 {stats['AP50']:.4f} AR {stats['AR']:.4f} ({r['seconds']:.0f} s)")
    last = next(reversed(evaluated.values()))
    return {**ap_summary(evaluated), "scale": scale, "images": last["images"], "people": last["people"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.real_people",
                                 description="AP of the demo model on the silver-labelled held-out real set "
                                             "(ONNX Runtime, CPU) at fp32/fp16/int8.")
    ap.add_argument("--weights", help="demo-config checkpoint (default: the bundled one)")
    ap.add_argument("--silver", help="references/silver.py's output folder (val/ and train/; default: the "
                                      "committed held-out labels over opencv-doc's images)")
    ap.add_argument("--scale", type=float, nargs="+", default=[1.5],
                    help="test scales, each measured alone (1: the shorter side becomes 256)")
    ap.add_argument("--precisions", default="fp32,fp16,int8",
                    help="comma-separated among fp32, fp16, int8 (target tensorrt) and int8_cpu "
                         "(calibrate --target cpu)")
    ap.add_argument("--calib", type=int, default=64, help="real training frames for INT8 calibration")
    ap.add_argument("--generated", type=int, default=0,
                    help="also measure this many held-out generated scenes (seed 1000) at scale 1")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its default)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--card", action="store_true",
                    help="write the first --scale's result as the 'real' section of the JSON beside the "
                         "weights (the floor tests/accuracy/test_real_people.py reads); needs the committed "
                         "labels (no --silver), the set CI measures")
    args = ap.parse_args(argv)
    if args.card and args.silver:
        ap.error("--card records the committed held-out set: leave out --silver")

    weights = args.weights or default_weights()
    if not os.path.isfile(weights):
        ap.error(f"not found: {weights}")
    if args.silver is None and distribution_missing():
        ap.error(distribution_missing())
    precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
    t0 = time.perf_counter()
    result: dict = {"weights": os.path.abspath(weights), "real": []}
    try:
        with tempfile.TemporaryDirectory(prefix="real_ap_") as work:
            if args.silver:
                val = os.path.join(args.silver, "val", "person_keypoints.json")
                val_images = os.path.join(args.silver, "val", "images")
                calib = os.path.join(args.silver, "train", "images")
            else:
                val, val_images = materialize(os.path.join(work, "heldout"))
                calib = calibration_frames(os.path.join(work, "calib"), args.calib)
            variants = export_variants(weights, work, calib, args.calib, precisions, dynamic=True,
                                       calib_size=int(round(256 * max(args.scale))), fp16_on_calib=False)
            for scale in args.scale:
                result["real"].append(evaluate_real(variants, val, val_images, scale, args.threads))
            if args.generated:
                result["generated"] = measure(weights, args.generated, work_dir=work, variants=variants,
                                              threads=args.threads)
    except UserError as e:  # one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        return 1
    result["seconds"] = time.perf_counter() - t0
    if args.card:
        first = result["real"][0]
        path = update_card(weights, {"real": {
            "scale": first["scale"], "images": first["images"], "ap": first["ap"], "stats": first["stats"],
            "calib": args.calib, "calib_size": int(round(256 * max(args.scale))),
            "labels": "benchmarks/data/silver_heldout.json (MediaPipe Pose 0.10.14: silver)"}})
        print(f"wrote the 'real' section of {path}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    print(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
