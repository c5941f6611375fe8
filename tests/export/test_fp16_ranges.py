"""export.fp16_ranges / convert_fp16(method="ranges"): the bounded fp16 conversion.

Outside references: every tensor's max |x| from ONNX Runtime with every tensor as a plain graph
output (what AutoCast's reference runner does), and AutoCast's own classifier on the same inputs:
the bounded method must keep exactly the nodes AutoCast keeps fp32 and write the same graph.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("modelopt.onnx.autocast", reason="nvidia-modelopt is not installed")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.engine.onnx_info import summarize  # noqa: E402
from higherhrnet_trt.export import fp16_ranges as fr  # noqa: E402
from higherhrnet_trt.export.fp16 import convert_fp16  # noqa: E402
from higherhrnet_trt.export.quant_common import quiet  # noqa: E402


def _feeds(scale: float, count: int = 2):
    rng = np.random.default_rng(7)
    return [{"image": (scale * rng.standard_normal((1, 3, 128, 128))).astype(np.float32)}
            for _ in range(count)]


def _all_tensors_absmax(path, feeds) -> dict[str, float]:
    """Reference: every node output as a graph output, max |x| by NumPy."""
    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for t in node.output:
            if t and t not in known:
                model.graph.output.append(onnx.ValueInfoProto(name=t))
                known.add(t)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    out: dict[str, float] = {}
    for feed in feeds:
        for n, v in zip(names, sess.run(names, feed)):
            v = np.asarray(v)
            if v.dtype == np.float32 and v.size:
                out[n] = max(out.get(n, 0.0), float(np.abs(v).max()))
    return out


def test_measure_absmax_equals_every_tensor_as_output(tiny_onnx, tmp_path):
    feeds = _feeds(3.0)
    got, count = fr.measure_absmax(str(tiny_onnx), feeds, str(tmp_path))
    ref = _all_tensors_absmax(tiny_onnx, feeds)
    assert count == 2
    assert ref.keys() <= got.keys()
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, rel=1e-6, abs=0), name
    assert got["image"] == pytest.approx(max(float(np.abs(f["image"]).max()) for f in feeds))


def _fp32_nodes(model) -> set[str]:
    """Nodes that compute in fp32 in a converted graph: a float32 output, not a Cast."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    return {n.name for n in model.graph.node if n.op_type != "Cast"
            and any(types.get(o) == onnx.TensorProto.FLOAT for o in n.output)}


def test_ranges_keep_what_autocasts_classifier_keeps(tiny_onnx, tmp_path):
    """Inputs scaled so that some tensors (44 of 221) exceed 512: both methods keep the same nodes fp32."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    feeds = _feeds(100.0)
    absmax, _ = fr.measure_absmax(str(tiny_onnx), feeds, str(tmp_path))
    ours, rule = fr.convert_measured(str(tiny_onnx), absmax, keep_io_fp32=True, exclude=[])
    data = tmp_path / "data"
    data.mkdir()
    for i, f in enumerate(feeds):
        np.savez(data / f"{i}.npz", **f)
    with quiet():
        theirs = convert_to_mixed_precision(str(tiny_onnx), low_precision_type="fp16",
                                            keep_io_types=True, calibration_data=str(data),
                                            providers=["cpu"])
    kept = {n for n, _, _ in rule.kept}
    assert kept, "the scaled inputs must push some tensors past 512"
    assert len(kept) < len(ours.graph.node) / 2
    assert _fp32_nodes(ours) == _fp32_nodes(theirs)
    assert kept <= _fp32_nodes(ours)
    assert [(n.name, n.op_type) for n in ours.graph.node] == [(n.name, n.op_type)
                                                               for n in theirs.graph.node]


def test_convert_fp16_ranges_is_fp16_and_close(tiny_onnx, tmp_path):
    out = tmp_path / "tiny.fp16.onnx"
    report = convert_fp16(str(tiny_onnx), str(out), method="ranges")
    s = summarize(str(out))
    assert s.precision == "fp16" and s.meta().precision == "fp16"
    assert [t.dtype for t in s.inputs + s.outputs] == ["float32"] * 3
    assert report.method == "ranges" and report.kept_fp32 == []
    x = np.random.default_rng(3).standard_normal((1, 3, 128, 128)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ref = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    got = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"]).run(None, {"image": x})
    for r, g in zip(ref, got):
        assert np.abs(r - g).max() / np.abs(r).max() < 1e-2


def test_convert_fp16_rejects_unknown_method(tiny_onnx, tmp_path):
    with pytest.raises(UserError, match="ranges, autocast"):
        convert_fp16(str(tiny_onnx), str(tmp_path / "x.onnx"), method="fast")
