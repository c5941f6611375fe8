"""End-to-end accuracy of the bundled demo model: export -> fp16 / INT8 calibration -> ONNX Runtime
-> decode -> AP on 50 held-out generated scenes, against the floor measured at training time.

Skips (with the reason) in a checkout without trained demo weights; never passes without running.
"""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("modelopt", reason="INT8 calibration needs nvidia-modelopt (extra 'quantize')")
pytest.importorskip("pycocotools")
pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks import demo_model  # noqa: E402

WEIGHTS = demo_model.default_weights()
CARD = demo_model.card_path(WEIGHTS)

#: AP may fall this far below the CI floor measured at training time (CPU ORT thread counts change
#: summation order; the floor itself was measured on the same 50 scenes).
MARGIN = 0.03
#: fp16 AP must stay within this of fp32 (a cast of weights and activations: rounding only).
FP16_DELTA = 0.01
#: INT8 AP (entropy calibration, calibrate's defaults, on generated scenes that are not test scenes)
#: within this of fp32. Measured on the CI set with the bundled weights: -0.024 reading every value
#: (``--sample 0``), -0.033 with the default grid sample; calibrating on 48 instead of 54 scenes
#: moved them by 0.005 and 0.006 (to -0.028 / -0.027): INT8 AP here moves by about 0.01 with any
#: change of the ranges, and the budget is the measured loss plus that spread.
INT8_DELTA = 0.04


@pytest.mark.skipif(not os.path.isfile(WEIGHTS), reason=f"no trained demo weights at {WEIGHTS}")
def test_demo_model_ap_floor_and_precisions(tmp_path):
    card = json.loads(open(CARD, encoding="utf-8").read())
    ci = card["ci"]
    res = demo_model.measure(WEIGHTS, num_scenes=ci["scenes"], seed=ci["seed"], num_calib=ci["calib"],
                             work_dir=str(tmp_path), log=lambda *_: None)
    ap = res["ap"]
    assert ap["fp32"] >= ci["ap_fp32"] - MARGIN, (ap, ci)
    assert abs(ap["fp16"] - ap["fp32"]) <= FP16_DELTA, ap
    assert abs(ap["int8"] - ap["fp32"]) <= INT8_DELTA, ap
