"""``higherhrnet-trt demo``: the README's main job, end to end on the CPU (export + ORT + decode)."""

from __future__ import annotations

import json
import os

import pytest

from higherhrnet_trt.runtime import demo_cli
from higherhrnet_trt.runtime.cli import main

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")


def test_bundled_files_exist():
    sample = demo_cli.package_file(demo_cli.SAMPLE_IMAGE)
    assert cv2.imread(sample) is not None, sample


def test_demo_writes_image_json_and_onnx(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--save-dir", str(out)]) == 0
    err = capsys.readouterr().err
    weights = os.path.isfile(demo_cli.package_file(demo_cli.DEMO_WEIGHTS))
    onnx_name = "demo.onnx" if weights else "demo_random.onnx"
    assert sorted(os.listdir(out)) == sorted([onnx_name, "people.json", "sample.jpg"])
    people = json.loads((out / "people.json").read_text())
    assert all(len(p["keypoints"]) == 51 and p["category_id"] == 1 for p in people)
    assert "done: 1 frames" in err
    if weights:
        assert "RANDOM" not in err
        assert people, "the trained demo model finds nobody on its own sample"
    else:  # never let random weights pass as a result
        assert "RANDOM weights" in err

    # A second run reuses the export (no torch work) and says so.
    assert main(["demo", "--save-dir", str(out)]) == 0
    assert "exported earlier" in capsys.readouterr().err


def test_demo_missing_weights_is_one_line(tmp_path, capsys):
    assert main(["demo", "--save-dir", str(tmp_path), "--weights", str(tmp_path / "nope.pth")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: --weights {tmp_path / 'nope.pth'}: file not found"]
