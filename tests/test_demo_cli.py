"""``higherhrnet-trt demo``: the README's main job, end to end on the CPU (export + ORT + decode)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.cli import demo as demo_cli
from higherhrnet_trt.cli import main

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")


def test_bundled_files_exist():
    sample = demo_cli.package_file(demo_cli.SAMPLE_IMAGE)
    assert cv2.imread(sample) is not None, sample


def test_demo_runs_the_bundled_onnx_and_exports_on_request(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--save-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert "using the bundled demo_w16_256.fp16.onnx" in err and "RANDOM" not in err
    assert sorted(os.listdir(out)) == ["people.json", "sample.jpg"]
    people = json.loads((out / "people.json").read_text())
    assert all(len(p["keypoints"]) == 51 and p["category_id"] == 1 for p in people)
    assert "done: 1 frames" in err
    assert people, "the trained demo model finds nobody on its own sample"

    # --force-export exports the checkpoint; a second run with those weights reuses the export.
    weights = demo_cli.package_file(demo_cli.DEMO_WEIGHTS)
    assert main(["demo", "--save-dir", str(out), "--force-export"]) == 0
    assert sorted(os.listdir(out)) == ["demo.onnx", "demo.onnx.source.json", "people.json", "sample.jpg"]
    capsys.readouterr()
    assert main(["demo", "--save-dir", str(out), "--weights", weights]) == 0
    assert "exported earlier" in capsys.readouterr().err


def test_demo_missing_weights_is_one_line(tmp_path, capsys):
    assert main(["demo", "--save-dir", str(tmp_path), "--weights", str(tmp_path / "nope.pth")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: --weights {tmp_path / 'nope.pth'}: file not found"]


#: COCO's OKS sigmas (cocoapi, person keypoints), restated here rather than read from the package.
_COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89,
                         .89]) / 10.0


def _oks(gt: dict, keypoints: np.ndarray) -> float:
    """COCO object keypoint similarity of one prediction (17, 3) to one generator label."""
    g = np.asarray(gt["keypoints"], float).reshape(17, 3)
    labelled = g[:, 2] > 0
    d2 = ((keypoints[:, :2] - g[:, :2]) ** 2).sum(1)
    e = d2 / (2 * gt["area"] * (2 * _COCO_SIGMAS) ** 2 + np.spacing(1))
    return float(np.exp(-e)[labelled].mean()) if labelled.any() else 0.0


@pytest.mark.skipif(not os.path.isfile(demo_cli.package_file(demo_cli.DEMO_WEIGHTS)),
                    reason="no trained demo weights bundled")
def test_trained_demo_finds_the_people_of_its_sample(tmp_path):
    """The bundled sample's people, as the scene generator labelled them, are each found by a person
    the demo draws (score >= run's default --person-thr 0.15) with an OKS of at least 0.45 (measured
    at training time: 0.69, 0.78, 0.62 and 0.49 for the one truncated by the border), and at most one
    spurious person is drawn."""
    from higherhrnet_trt.references import scenes

    # The labels of the bundled image (test_scenes checks that the image is this recipe's).
    labels = scenes.write_sample(str(tmp_path / "regenerated.jpg"))

    out = tmp_path / "demo"
    assert main(["demo", "--save-dir", str(out)]) == 0
    people = json.loads((out / "people.json").read_text())
    confident = [np.asarray(p["keypoints"], float).reshape(17, 3) for p in people if p["score"] >= 0.15]
    for k, gt in enumerate(labels):
        best = max((_oks(gt, kp) for kp in confident), default=0.0)
        assert best >= 0.45, f"sample person {k} ({gt['num_keypoints']} keypoints) best OKS {best:.2f}"
    assert len(confident) <= len(labels) + 1, f"{len(confident)} confident people for {len(labels)}"
