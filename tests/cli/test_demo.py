"""``higherhrnet-trt demo``: the README's main job, end to end on the CPU (export + ORT + decode)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.cli import demo as demo_cli
from higherhrnet_trt.cli import main
from higherhrnet_trt.core.files import SAMPLE_IMAGE

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")


def test_bundled_files_exist():
    for sample in (SAMPLE_IMAGE, demo_cli.REAL_SAMPLE):
        path = demo_cli.package_file(sample)
        assert cv2.imread(path) is not None, path


def test_demo_runs_the_bundled_onnx_and_exports_on_request(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--save-dir", str(out)]) == 0
    err = capsys.readouterr().err
    assert "using the bundled demo_w16_256.fp16.onnx" in err and "RANDOM" not in err
    assert sorted(os.listdir(out)) == ["people.json", "vtest_0700.jpg"]
    people = json.loads((out / "people.json").read_text())
    assert all(len(p["keypoints"]) == 51 and p["category_id"] == 1 for p in people)
    assert "done: 1 frames" in err
    assert people, "the trained demo model finds nobody on its own sample"

    # --force-export exports the checkpoint; a second run with those weights reuses the export.
    weights = demo_cli.package_file(demo_cli.DEMO_WEIGHTS)
    assert main(["demo", "--save-dir", str(out), "--force-export"]) == 0
    assert sorted(os.listdir(out)) == ["demo.onnx", "demo.onnx.source.json", "people.json", "vtest_0700.jpg"]
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
    """The generated sample's people, as the scene generator labelled them: at least
    GENERATED_MIN_FOUND of its 4 are found by a drawn person (score >= run's default --person-thr
    0.15) with an OKS of at least 0.45, and at most one spurious person is drawn. Measured with the
    bundled real-people weights: best OKS 0.57, 0.81, 0.00 and 0.71, 3 drawn (the generated-scene
    network before them found all four: 0.69, 0.78, 0.62, 0.49; export/assets/MODEL_CARD.md)."""
    from higherhrnet_trt.benchmarks import scenes

    # The labels of the bundled image (test_scenes checks that the image is this recipe's).
    labels = scenes.write_sample(str(tmp_path / "regenerated.jpg"))

    out = tmp_path / "demo"
    generated = demo_cli.package_file(SAMPLE_IMAGE)
    assert main(["demo", "--save-dir", str(out), "--source", generated]) == 0
    people = json.loads((out / "people.json").read_text())
    confident = [np.asarray(p["keypoints"], float).reshape(17, 3) for p in people if p["score"] >= 0.15]
    best = [max((_oks(gt, kp) for kp in confident), default=0.0) for gt in labels]
    assert sum(b >= 0.45 for b in best) >= GENERATED_MIN_FOUND, f"best OKS per sample person {best}"
    assert len(confident) <= len(labels) + 1, f"{len(confident)} confident people for {len(labels)}"


GENERATED_MIN_FOUND = 3


#: On the real sample: labelled people found with OKS >= 0.5, and confident people that match no
#: labelled person or ignored region, at most. Measured with the bundled weights: 4 of the 6
#: labelled people (best OKS 0.80, 0.87, 0.81, 0.65, 0.44, 0.41), 0 unexplained of 9 drawn.
REAL_MIN_FOUND = 3
REAL_MAX_EXTRA = 2


@pytest.mark.skipif(not os.path.isfile(demo_cli.package_file(demo_cli.DEMO_WEIGHTS)),
                    reason="no trained demo weights bundled")
def test_demo_finds_the_people_of_its_real_sample(tmp_path):
    """``demo`` on its default sample (frame 700 of vtest.avi, held out from training): of the
    people the teacher labelled there with at least 10 joints, at least MIN_FOUND are found by a
    drawn person (score >= 0.15) with an OKS of at least 0.5 against the silver labels (measured
    when the weights were bundled: export/assets/MODEL_CARD.md), and at most MAX_EXTRA confident
    people match nobody labelled or ignored."""
    from higherhrnet_trt.benchmarks.real_people import HELDOUT_LABELS

    labels = json.loads(open(HELDOUT_LABELS, encoding="utf-8").read())
    image = next(r for r in labels["images"] if r.get("frame") == demo_cli.REAL_SAMPLE_FRAME)
    anns = [a for a in labels["annotations"] if a["image_id"] == image["id"]]
    people = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] >= 10]
    ignored = [a["bbox"] for a in anns if a["iscrowd"]]

    out = tmp_path / "demo"
    assert main(["demo", "--save-dir", str(out)]) == 0
    found = json.loads((out / "people.json").read_text())
    confident = [np.asarray(p["keypoints"], float).reshape(17, 3) for p in found if p["score"] >= 0.15]
    best = [max((_oks(gt, kp) for kp in confident), default=0.0) for gt in people]
    assert sum(b >= 0.5 for b in best) >= REAL_MIN_FOUND, (best, len(people))

    def explained(kp: np.ndarray) -> bool:
        if any(_oks(gt, kp) >= 0.3 for gt in people + [a for a in anns if not a["iscrowd"]]):
            return True
        cx, cy = kp[:, 0].mean(), kp[:, 1].mean()
        return any(x - 0.5 * w <= cx <= x + 1.5 * w and y - 0.5 * h <= cy <= y + 1.5 * h
                   for x, y, w, h in ignored)

    extra = sum(not explained(kp) for kp in confident)
    assert extra <= REAL_MAX_EXTRA, f"{extra} confident people match nobody on the real sample"
