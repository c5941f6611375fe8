"""The bundled demo network on real people it never saw in training: export -> fp16 / INT8 (calibrated
on real training frames) -> ONNX Runtime -> decode -> COCO OKS AP against the committed silver labels
of the held-out set (the last 20 % of OpenCV's vtest.avi and two photos, labelled by MediaPipe Pose
at training time: benchmarks/data/silver_heldout.json), with the floor the model card measured.

The images come from Debian's opencv-doc (the Makefile installs it where apt is available); the
test skips with that reason where they are missing. The teacher itself is never needed here.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("modelopt", reason="INT8 calibration needs nvidia-modelopt (extra 'quantize')")
pytest.importorskip("pycocotools")
pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks import demo_model, real_people  # noqa: E402

WEIGHTS = demo_model.default_weights()
CARD = demo_model.card_path(WEIGHTS)
MISSING = real_people.distribution_missing()

#: fp32 AP may fall this far below the floor measured at training time on the same images (CPU ORT
#: thread counts change summation order; OpenCV's video decoder may differ by a grey level).
MARGIN = 0.03
#: fp16 within this of fp32 (rounding only).
FP16_DELTA = 0.01
#: INT8 (entropy calibration on 64 real training frames) within this of fp32: the issue's 0.03 plus
#: the ~0.01 that any change of the ranges moves INT8 AP by (tests/accuracy/test_demo_model.py).
INT8_DELTA = 0.04


def _card() -> dict:
    with open(CARD, encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.skipif(not os.path.isfile(WEIGHTS), reason=f"no trained demo weights at {WEIGHTS}")
@pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
def test_real_heldout_ap_floor_and_precisions(tmp_path):
    real = _card().get("real")
    if real is None:
        pytest.fail(f"{CARD} has no 'real' section: measure it (export/assets/MODEL_CARD.md, Recipe)")
    ann, images = real_people.materialize(str(tmp_path / "heldout"))
    calib = real_people.calibration_frames(str(tmp_path / "calib"), real["calib"])
    variants = demo_model.export_variants(WEIGHTS, str(tmp_path / "onnx"), calib, real["calib"],
                                          log=lambda *_: None, dynamic=True,
                                          calib_size=real["calib_size"], fp16_on_calib=False)
    res = real_people.evaluate_real(variants, ann, images, real["scale"], log=lambda *_: None)
    ap = res["ap"]
    assert res["images"] == real["images"], res
    assert ap["fp32"] >= real["ap"]["fp32"] - MARGIN, (ap, real["ap"])
    assert abs(ap["fp16"] - ap["fp32"]) <= FP16_DELTA, ap
    assert abs(ap["int8"] - ap["fp32"]) <= INT8_DELTA, ap


def test_heldout_labels_are_silver_and_held_out():
    """The committed labels say what they are, and hold only frames training never saw."""
    with open(real_people.HELDOUT_LABELS, encoding="utf-8") as f:
        data = json.load(f)
    assert "SILVER" in data["info"]["description"]
    frames = [r["frame"] for r in data["images"] if r["source"] == "vtest.avi"]
    assert frames and min(frames) >= real_people.HOLDOUT_FRAME
    photos = {r["source"] for r in data["images"] if r["source"] != "vtest.avi"}
    assert photos == {"messi5.jpg", "basketball1.png"}
