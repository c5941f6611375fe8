"""export.export (the Python API behind 'higherhrnet-trt export'): its fp16, INT8 and engine steps.

The files written are checked from the outside: their precision as read from the ONNX graph
(engine.onnx_info) and the engine's sidecar, not from what export() reports about itself.
"""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("torch")

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.engine.onnx_info import summarize  # noqa: E402
from higherhrnet_trt.export import export  # noqa: E402


@pytest.mark.parametrize("kwargs, message", [
    (dict(half=True, int8=True), "choose one of half"),
    (dict(int8=True), "int8 needs calibration images"),
    (dict(format="tflite"), "format must be 'onnx' or 'engine'"),
    (dict(output="model.engine"), "must end in .onnx"),
])
def test_requests_refused_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(UserError, match=message):
        export(config="tiny", **{"output": str(tmp_path / "m.onnx"), **kwargs}, log=lambda m: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tensorrt_rtx
def test_fp16_onnx_and_its_engine(tmp_path):
    pytest.importorskip("modelopt.onnx.autocast", reason="nvidia-modelopt is not installed")
    from higherhrnet_trt.engine.sidecar import read_sidecar

    lines: list[str] = []
    out = tmp_path / "tiny.onnx"
    r = export(config="tiny", output=str(out), input_size=128, half=True, format="engine", log=lines.append)
    assert r.random_weights and r.fp32_onnx == str(tmp_path / "tiny.fp32.onnx") and r.onnx == str(out)
    assert summarize(r.fp32_onnx).precision == "fp32" and summarize(r.onnx).precision == "fp16"
    assert r.engine == str(tmp_path / "tiny.engine") and read_sidecar(r.engine).precision == "fp16"
    assert set(r.timings) == {"load", "onnx", "fp16", "engine"}
    assert lines[-1].startswith(f"wrote {r.engine} in ") and any("(fp16)" in line for line in lines)


def test_int8_onnx_calibrated_on_the_given_images(tmp_path, monkeypatch):
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    pytest.importorskip("cv2")
    from tests.export.test_quantize import make_images

    images = make_images(tmp_path / "images", 6)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the ranges cache, not ~/.cache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few images: the warning is tested in test_quantize
        r = export(config="tiny", output=str(tmp_path / "t.onnx"), input_size=128, int8=True,
                   images=images, num_images=5, method="max", log=lambda m: None)
    assert summarize(r.onnx).precision == "int8" and r.engine is None
    assert set(r.timings) == {"load", "onnx", "int8"}
    assert len(list((tmp_path / "cache").rglob("int8_ranges_*.json"))) == 1
