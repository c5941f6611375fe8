"""ONNX export: parity with PyTorch under ONNX Runtime, the official test-time math, metadata."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

import torch.nn.functional as F  # noqa: E402

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.core.keypoints import COCO  # noqa: E402
from higherhrnet_trt.core.metadata import ModelMeta  # noqa: E402
from higherhrnet_trt.export.onnx_export import AggregatedGraph, export_onnx, read_metadata  # noqa: E402
from higherhrnet_trt.runtime.backends import create_backend  # noqa: E402


def run(path, x: np.ndarray) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})


def test_raw_export_reproduces_official_outputs(tiny_model, reference_dir, tmp_path):
    io = np.load(reference_dir / "tiny_official_io.npz")
    path = tmp_path / "raw.onnx"
    export_onnx(tiny_model, str(path), input_size=(128, 192), batch=2, outputs="raw")
    out0, out1 = run(path, io["input"])
    assert np.abs(out0 - io["output0"]).max() < 1e-4
    assert np.abs(out1 - io["output1"]).max() < 1e-4


@pytest.mark.parametrize("flip", [True, False])
def test_static_export_parity(tiny_model, tmp_path, flip):
    path = tmp_path / "static.onnx"
    report = export_onnx(tiny_model, str(path), input_size=(64, 128), flip=flip)
    assert max(report.rel_error.values()) < 1e-5  # measured ~7e-7
    heat, tags = run(path, np.random.default_rng(0).standard_normal((1, 3, 64, 128), dtype=np.float32))
    assert heat.shape == (1, 17, 32, 64)
    assert tags.shape == (1, 17, 32, 64, 2 if flip else 1)


def test_dynamic_export_runs_other_shapes(tiny_model, tiny_onnx_dynamic):
    graph = AggregatedGraph(tiny_model).eval()
    sess = ort.InferenceSession(str(tiny_onnx_dynamic), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 64, 64), (3, 3, 192, 128), (2, 3, 256, 320)]:
        x = rng.standard_normal(shape, dtype=np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in graph(torch.from_numpy(x))]
        got = sess.run(None, {"image": x})
        for e, g in zip(expected, got):
            assert g.shape == e.shape
            assert np.abs(e - g).max() <= 1e-3 * np.abs(e).max()


def test_w32_small_input_parity(tmp_path):
    from higherhrnet_trt.export.model import build_model

    model = build_model("w32_512")
    torch.manual_seed(0)
    with torch.no_grad():  # default init gives near-zero outputs; spread the BN stats for a real test
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.1, 0.1)
    report = export_onnx(model, str(tmp_path / "w32.onnx"), input_size=128)
    assert max(report.rel_error.values()) < 1e-3
    assert all(v > 0 for v in report.max_abs_error.values())  # it compared real numbers


def test_in_graph_math_matches_official_pipeline(tiny_model, tiny_onnx, reference_dir, tmp_path):
    """pA of pipeline_vectors: flip test, stride-2 averaging, projection to input size."""
    pv = np.load(reference_dir / "pipeline_vectors.npz")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((pv["pA_resized_s1"] / 255.0 - mean) / std).astype(np.float32).transpose(2, 0, 1)[None]
    path = tmp_path / "pA.onnx"
    export_onnx(tiny_model, str(path), input_size=x.shape[2:], flip=True)
    heat, tags = run(path, np.ascontiguousarray(x))
    size = x.shape[2:]
    heat_in = F.interpolate(torch.from_numpy(heat), size=size, mode="bilinear", align_corners=False)
    t = torch.from_numpy(tags).permute(0, 4, 1, 2, 3).flatten(0, 1)  # (T, J, h, w)
    t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    tags_in = t.unsqueeze(0).permute(0, 2, 3, 4, 1)
    assert np.abs(heat_in.numpy() - pv["pA_final_heatmaps"]).max() < 1e-4
    assert np.abs(tags_in.numpy() - pv["pA_tags"]).max() < 1e-4


def test_metadata_round_trip(tiny_onnx):
    meta = read_metadata(str(tiny_onnx))
    assert meta.joint_names == list(COCO.joint_names)
    assert meta.flip_index == list(COCO.flip_index)
    assert meta.skeleton == [list(e) for e in COCO.skeleton]
    assert (meta.flip, meta.outputs, meta.heatmap_stride, meta.tag_stride) == (True, "aggregated", 2, 2)
    assert meta.config_name == "tiny" and meta.input_size == 128
    assert meta.mean == [0.485, 0.456, 0.406] and meta.std == [0.229, 0.224, 0.225]
    assert "opset" in meta.exporter
    with create_backend(str(tiny_onnx)) as backend:
        assert backend.metadata == meta
        assert [o.name for o in backend.outputs] == ["heatmaps", "tags"]
        assert backend.inputs[0].shape == (1, 3, 128, 128)
    assert ModelMeta.from_props(meta.to_props()) == meta


def test_input_size_must_be_multiple_of_64(tiny_model, tmp_path):
    with pytest.raises(UserError, match="multiple of 64"):
        export_onnx(tiny_model, str(tmp_path / "x.onnx"), input_size=100)
