"""Keypoint AP of the fp32 / fp16 / int8 variants of one model on the same images, one table.

    python -m higherhrnet_trt.benchmarks.accuracy MODEL_FP32.onnx [--fp16 F.onnx] [--int8 F.onnx]
        [--make fp16,int8] [--num 50 --size 256 --seed 7 | --ann ANN.json --images DIR]
        [--work-dir DIR] [--json out.json]

Each variant runs through ``runtime.evaluate.evaluate_model`` (single scale, flip test as compiled
into the model, ONNX Runtime on the CPU) on the same images; the table gives AP, AP50, AP75, AR and
the AP difference to fp32. Variants not given are produced from the fp32 file with
``export/quantize.py`` (fp16: ModelOpt AutoCast; int8: Q/DQ calibrated on generated scenes of
another seed than the evaluation scenes). Without ``--ann`` the images are generated scenes
(benchmarks/scenes.py): self-contained, but not COCO: they show what the precision costs, not the
model's COCO accuracy. A model with random weights scores ~0 AP everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.engine.onnx_info import load_model, model_precision
from higherhrnet_trt.export.quant_common import compare_outputs
from higherhrnet_trt.runtime.evaluate import evaluate_model

from . import environment
from .bench import BenchSettings, StageRunner, _load_frame
from .compare import _quantize, write_scenes
from .environment import write_json

METRICS = ("AP", "AP50", "AP75", "AR")


def evaluate_variants(
    variants: dict[str, str], ann: str, images_dir: str, threads: int = 0, progress: bool = False,
    scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """{precision: onnx path} -> {precision: {stats, seconds, people, notes, precision_in_graph}};
    ``scales``: the test scales (default: evaluate_model's single scale 1)."""
    out: dict[str, Any] = {}
    for prec, path in variants.items():
        t0 = time.perf_counter()
        res = evaluate_model(path, ann, images_dir, backend="onnxruntime", progress=progress,
                             **({"scales": tuple(scales)} if scales else {}),
                             **({"threads": threads} if threads else {}))
        out[prec] = {"model": os.path.abspath(path), "precision_in_graph": model_precision(load_model(path)),
                     "stats": {k: float(v) for k, v in res.stats.items()},
                     "images": res.num_images, "people": res.num_people, "notes": list(res.notes),
                     "seconds": time.perf_counter() - t0}
    return out


def ap_summary(evaluated: dict[str, Any]) -> dict[str, Any]:
    """:func:`evaluate_variants`' result -> {"ap": {precision: AP}, "stats": {precision: {...}}}, the
    shape the model card keeps (benchmarks.demo_model, benchmarks.real_people)."""
    return {"ap": {p: r["stats"]["AP"] for p, r in evaluated.items()},
            "stats": {p: r["stats"] for p, r in evaluated.items()}}


def output_agreement(variants: dict[str, str], images_dir: str, count: int = 8) -> dict[str, Any]:
    """Heatmaps of each variant against fp32 on the first ``count`` images (pre-processed as the
    runtime does; ORT CPU at its default optimisation level, as in evaluation):
    {precision: {rel_max_err, mean_abs_err, cosine, peak_agreement}}. Meaningful even for weights
    that score no AP."""
    names = sorted(f for f in os.listdir(images_dir) if f.lower().endswith((".jpg", ".png")))[:count]
    frames = [_load_frame(os.path.join(images_dir, n)) for n in names]
    runner = StageRunner(BenchSettings(model=variants["fp32"], backend="onnxruntime", progress=False),
                         frames=frames[:1])
    feeds = []
    try:
        for frame in frames:
            runner.frames = [frame]
            feeds.append({runner.spec.name: runner.preprocess()[0]})
    finally:
        runner.close()
    out: dict[str, Any] = {}
    for prec, path in variants.items():
        if prec == "fp32":
            continue
        errors, _ = compare_outputs(variants["fp32"], path, feeds, "all")
        e = errors.get("heatmaps") or next(iter(errors.values()))
        out[prec] = {"rel_max_err": e.rel, "mean_abs_err": e.mean_abs, "cosine": e.cosine,
                     "peak_agreement": e.peak_agreement, "images": len(feeds)}
    return out


def format_table(r: dict[str, Any]) -> str:
    rows = r["results"]
    base = rows.get("fp32", {}).get("stats", {}).get("AP")
    lines = [f"{r['what']}: {r['images']} images",
             f"{'variant':<8}{'graph':>7}" + "".join(f"{m:>8}" for m in METRICS)
             + f"{'dAP':>9}{'people':>8}   heatmaps vs fp32: rel err / cosine / same peak"]
    for prec, row in rows.items():
        s = row["stats"]
        delta = f"{s['AP'] - base:+9.4f}" if base is not None and prec != "fp32" else f"{'':>9}"
        agree = r.get("agreement", {}).get(prec)
        extra = (f"   {agree['rel_max_err']:.2e} / {agree['cosine']:.5f} / {agree['peak_agreement']:.1%}"
                 if agree else "")
        lines.append(f"{prec:<8}{row['precision_in_graph']:>7}"
                     + "".join(f"{s.get(m, float('nan')):8.4f}" for m in METRICS)
                     + f"{delta}{row['people']:8d}{extra}")
    lines.extend(f"note: {n}" for n in r["notes"])
    return "\n".join(lines)


def run_accuracy(
    fp32: str, given: dict[str, str | None], make: Sequence[str], ann: str | None, images_dir: str | None,
    num: int = 50, size: int = 256, seed: int = 7, work_dir: str | None = None, threads: int = 0,
    calib_images: int = 32, progress: bool = False,
) -> dict[str, Any]:
    """Produce the missing variants, evaluate all; returns the JSON-able result."""
    if not os.path.isfile(fp32):
        raise UserError(f"model file not found: {fp32}")
    own = None
    if work_dir is None:
        own = tempfile.TemporaryDirectory(prefix="higherhrnet_accuracy_")
        work_dir = own.name
    os.makedirs(work_dir, exist_ok=True)
    notes: list[str] = []
    try:
        if ann is None:
            ann = write_scenes(os.path.join(work_dir, "eval"), num, size, seed)
            images_dir = os.path.join(work_dir, "eval", "images")
            what = f"generated scenes {size}x{size}, seed {seed} (not COCO)"
        else:
            what = f"{ann}"
        variants = {"fp32": fp32}
        for prec in ("fp16", "int8"):
            if given.get(prec):
                variants[prec] = given[prec]
            elif prec in make:
                out = os.path.join(work_dir, f"{os.path.basename(fp32)[:-5]}.{prec}.onnx")
                try:
                    _quantize(prec, fp32, out, work_dir, size, calib_images)
                except Exception as e:  # ModelOpt missing or failing: keep the other rows
                    notes.append(f"{prec}: not produced ({type(e).__name__}: "
                                 f"{(str(e).strip().splitlines() or [''])[0]})")
                    continue
                variants[prec] = out
        results = evaluate_variants(variants, ann, images_dir, threads, progress)
        agreement = output_agreement(variants, images_dir) if len(variants) > 1 else {}
        with open(ann, encoding="utf-8") as f:
            n_images = len(json.load(f)["images"])
    finally:
        if own is not None:
            own.cleanup()
    return {"schema": "higherhrnet_trt.accuracy/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "what": what, "images": n_images, "results": results, "agreement": agreement, "notes": notes,
            "environment": environment.collect("onnxruntime")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.accuracy",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("model", metavar="MODEL_FP32", help="the fp32 ONNX (higherhrnet-trt export)")
    ap.add_argument("--fp16", help="its fp16 ONNX (default: produced with ModelOpt AutoCast)")
    ap.add_argument("--int8", help="its INT8 Q/DQ ONNX (default: produced, calibrated on generated scenes)")
    ap.add_argument("--make", default="fp16,int8", help="variants to produce when not given ('' = none)")
    ap.add_argument("--ann", help="COCO keypoint annotations (default: generate scenes)")
    ap.add_argument("--images", help="folder of the --ann images")
    ap.add_argument("--num", type=int, default=50, help="generated scenes to evaluate on")
    ap.add_argument("--size", type=int, default=256, help="generated scene width = height, pixels")
    ap.add_argument("--seed", type=int, default=7, help="seed of the generated scenes")
    ap.add_argument("--calib-images", type=int, default=32, help="int8 calibration scenes (seed 1)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime CPU threads (0 = one per core)")
    ap.add_argument("--work-dir", help="keep generated scenes and produced ONNX files here")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if (args.ann is None) != (args.images is None):
        ap.error("--ann and --images go together")
    make = [m.strip() for m in args.make.split(",") if m.strip()]
    try:
        r = run_accuracy(args.model, {"fp16": args.fp16, "int8": args.int8}, make, args.ann, args.images,
                         args.num, args.size, args.seed, args.work_dir, args.threads, args.calib_images)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(r))
    if args.json:
        write_json(args.json, r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
