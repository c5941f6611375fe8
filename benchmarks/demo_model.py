"""The demo model's accuracy through the product chain, at fp32, fp16 and INT8, on generated scenes.

weights -> ``export`` (fp32 ONNX, flip test in the graph) -> ``convert_fp16`` / ``quantize_int8``
(calibrated on other generated scenes) -> ONNX Runtime -> runtime decode -> COCO OKS AP.
The model card's numbers (export/assets/MODEL_CARD.md, demo_w16_256.json) and the CI floor test
(tests/accuracy/test_demo_model.py) both come from :func:`measure`.

    python -m higherhrnet_trt.benchmarks.demo_model --scenes 200 --seed 1000 --json ap.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from higherhrnet_trt.benchmarks.scenes import generate_dataset
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import DEMO_WEIGHTS, package_file

from ..export.api import export
from ..export.fp16 import convert_fp16
from ..export.quantize import quantize_int8
from .accuracy import ap_summary, evaluate_variants

#: Seeds of the generated sets (training used seed 1; see the model card).
HELD_OUT_SEED = 1000  # model card: 200 scenes
CI_SEED = 2000  # CI: 50 scenes
CI_SCENES = 50
CALIB_SEED = 3000  # INT8 calibration scenes


def default_weights() -> str:
    return package_file(DEMO_WEIGHTS)


def card_path(weights: str) -> str:
    """Measured numbers kept beside the weights: demo_w16_256.pth -> demo_w16_256.json."""
    return os.path.splitext(weights)[0] + ".json"


def update_card(weights: str, sections: dict) -> str:
    """Write ``sections`` into the JSON beside the weights (:func:`card_path`), keeping the sections
    already there: this module writes "heldout" and "ci", ``benchmarks.real_people`` "real".
    Returns the path."""
    path = card_path(weights)
    card: dict = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            card = json.load(f)
    card.update(sections)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1)
    return path


def export_variants(weights: str | None, work_dir: str, calib_images: str | None, num_calib: int = 64,
                    precisions=("fp32", "fp16", "int8"), log=print, *, dynamic: bool = False,
                    calib_size: int | None = None, fp16_on_calib: bool = True) -> dict[str, str]:
    """ONNX files of the demo model: precision -> path (traced at 256x256, flip test).
    "int8" is calibrate's default (target tensorrt), "int8_cpu" the same calibration with
    target cpu (ONNX Runtime's placement, run at full graph optimisation).

    dynamic: a dynamic input size (files ``demo_*_dynamic.onnx``), for test scales other than 1
    (``benchmarks.real_people``); calib_size: the INT8 calibration's pre-processing size (default:
    the traced one); fp16_on_calib: the fp16 conversion's ranges and check come from
    ``calib_images`` (False: from its seeded random inputs)."""
    os.makedirs(work_dir, exist_ok=True)
    suffix = "_dynamic" if dynamic else ""
    fp32 = os.path.join(work_dir, f"demo_fp32{suffix}.onnx")
    export(weights, config="demo", output=fp32, input_size=256, dynamic=dynamic, flip=True, log=log)
    out = {"fp32": fp32}
    if "fp16" in precisions:
        out["fp16"] = os.path.join(work_dir, f"demo_fp16{suffix}.onnx")
        log(convert_fp16(fp32, out["fp16"], images=calib_images if fp16_on_calib else None).summary())
    # The CPU layout first: ModelOpt's TensorRT-layout calibration changes onnxruntime.quantization
    # in place for the rest of the process (export/qdq_cpu.check_onnxruntime_unpatched).
    for precision, target in (("int8_cpu", "cpu"), ("int8", "tensorrt")):
        if precision in precisions:
            out[precision] = os.path.join(work_dir, f"demo_{precision}{suffix}.onnx")
            log(quantize_int8(fp32, out[precision], images=calib_images, num_images=num_calib,
                              input_size=calib_size, cache_dir=work_dir, progress=False,
                              target=target).summary())
    return out


def prepare_variants(weights: str | None, work_dir: str, num_calib: int = 64,
                     precisions=("fp32", "fp16", "int8"), log=print) -> dict[str, str]:
    """Generate the calibration scenes (seed ``CALIB_SEED``) in ``work_dir`` and export the ONNX
    variants there once: precision -> path. :func:`measure` takes the result to evaluate several
    scene sets without exporting and calibrating again (minutes of CPU each time)."""
    weights = weights or default_weights()
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"demo weights not found: {weights}")
    generate_dataset(os.path.join(work_dir, "calib"), num_calib, seed=CALIB_SEED)
    return export_variants(weights, os.path.join(work_dir, "onnx"), os.path.join(work_dir, "calib", "images"),
                           num_calib, precisions, log)


def measure(weights: str | None = None, num_scenes: int = 200, seed: int = HELD_OUT_SEED,
            num_calib: int = 64, work_dir: str | None = None, precisions=("fp32", "fp16", "int8"),
            threads: int = 0, log=print, variants: dict[str, str] | None = None) -> dict:
    """AP (COCO OKS, pycocotools) of each precision on ``num_scenes`` generated scenes (256x256,
    ``benchmarks.scenes``' default distribution) of ``seed``. Returns {"ap": {precision: AP},
    "stats": {precision: {...}}, "scenes": N, "seed": seed, "calibration": {...}, "seconds": s}.

    ``variants`` (from :func:`prepare_variants`) skips the export; otherwise ``weights`` are
    exported and calibrated on ``num_calib`` scenes first."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="demo_ap_") as tmp:
        work = work_dir or tmp
        if variants is None:
            variants = prepare_variants(weights, work, num_calib, precisions, log)
        ann = generate_dataset(os.path.join(work, f"eval_{seed}"), num_scenes, seed=seed)
        evaluated = evaluate_variants(variants, ann, os.path.join(work, f"eval_{seed}", "images"), threads)
        result: dict = {**ap_summary(evaluated), "scenes": num_scenes, "seed": seed,
                        "calibration": {"scenes": num_calib, "seed": CALIB_SEED, "method": "entropy"}}
        for precision, ap in result["ap"].items():
            log(f"{precision}: AP {ap:.4f}")
    result["seconds"] = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.demo_model",
                                 description="AP of the demo model at fp32/fp16/int8 on generated scenes "
                                             "(ONNX Runtime, CPU).")
    ap.add_argument("--weights", help="demo-config checkpoint (default: the bundled one)")
    ap.add_argument("--scenes", type=int, default=200, help="held-out generated scenes to evaluate")
    ap.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="seed of those scenes")
    ap.add_argument("--calib", type=int, default=64, help="generated scenes for INT8 calibration")
    ap.add_argument("--precisions", default="fp32,fp16,int8",
                    help="comma-separated variants among fp32, fp16, int8 (target tensorrt) and "
                         "int8_cpu (calibrate --target cpu)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--card", action="store_true",
                    help="also measure the CI set (50 scenes, seed 2000) and write both, with the CI "
                         "settings tests/accuracy/test_demo_model.py reads, to the JSON beside the weights")
    args = ap.parse_args(argv)
    weights = args.weights or default_weights()
    if not os.path.isfile(weights):
        ap.error(f"demo weights not found: {weights} (train them: export/assets/MODEL_CARD.md; "
                 "or pass --weights)")
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="demo_ap_") as work:
            precisions = tuple(p.strip() for p in args.precisions.split(",") if p.strip())
            variants = prepare_variants(weights, work, args.calib, precisions)
            res = measure(weights, args.scenes, args.seed, args.calib, work_dir=work, variants=variants)
            ci = None
            if args.card:
                ci = measure(weights, CI_SCENES, CI_SEED, args.calib, work_dir=work, variants=variants)
    except UserError as e:  # one line, as the CLI says it
        print(f"error: {e}", file=sys.stderr)
        return 1
    if ci is not None:
        path = update_card(weights, {
            "heldout": res,
            "ci": {"scenes": CI_SCENES, "seed": CI_SEED, "calib": args.calib, "ap_fp32": ci["ap"]["fp32"],
                   "ap": ci["ap"], "seconds": round(ci["seconds"], 1)}})
        print(f"wrote {path} (CI set: " + ", ".join(f"{k} {v:.4f}" for k, v in ci["ap"].items())
              + ")")
    fp32 = res["ap"]["fp32"]
    print(f"{'precision':<10}{'AP':>8}{'delta':>9}   ({res['scenes']} scenes, seed {res['seed']}; "
          f"{res['seconds']:.0f}s evaluating, {time.perf_counter() - t0:.0f}s with export and calibration)")
    for k, v in res["ap"].items():
        print(f"{k:<10}{v:>8.4f}{v - fp32:>+9.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
