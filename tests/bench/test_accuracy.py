"""benchmarks/accuracy.py: fp32 / fp16 of one model on the same generated scenes, one table."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cv2")
pytest.importorskip("pycocotools")


def test_accuracy_table_fp32_fp16(tiny_onnx, tmp_path, capsys):
    pytest.importorskip("modelopt")
    from higherhrnet_trt.benchmarks.accuracy import main

    out = tmp_path / "acc.json"
    rc = main([str(tiny_onnx), "--make", "fp16", "--num", "2", "--size", "128", "--threads", "1",
               "--work-dir", str(tmp_path / "work"), "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "dAP" in printed and "fp16" in printed
    r = json.loads(out.read_text())
    assert r["schema"] == "higherhrnet_trt.accuracy/1" and r["images"] == 2
    assert list(r["results"]) == ["fp32", "fp16"]
    assert r["results"]["fp32"]["precision_in_graph"] == "fp32"
    assert r["results"]["fp16"]["precision_in_graph"] == "fp16"
    for row in r["results"].values():
        assert {"AP", "AP50", "AP75", "AR"} <= set(row["stats"]) and row["images"] == 2


def test_accuracy_missing_model(tmp_path, capsys):
    from higherhrnet_trt.benchmarks.accuracy import main

    assert main([str(tmp_path / "none.onnx"), "--make", ""]) == 1
    assert "not found" in capsys.readouterr().err
