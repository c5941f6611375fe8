"""export.calib_taps: INT8 calibration statistics computed in-graph (exact min / max, grid sample).

Outside references: the same tensors fetched whole from an ONNX Runtime session without graph
optimisation (min, max and ``x[:, :, ::s, ::s]`` taken by NumPy, with strides worked out by hand
below), and ONNX Runtime's own HistogramCollector on the whole tensors for the thresholds.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from higherhrnet_trt.export.calib_hist import StreamingHistograms  # noqa: E402
from higherhrnet_trt.export.calib_taps import CalibrationTaps  # noqa: E402


def _shapes_and_ops(path):
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(model.graph.value_info) + list(model.graph.input)}
    ops = {o: n.op_type for n in model.graph.node for o in n.output}
    return shapes, ops, model.graph.input[0].name


def _pick(shapes, ops, op, shape):
    return next(t for t, s in shapes.items() if ops.get(t) == op and s == shape)


@pytest.fixture(scope="module")
def tapped(tiny_onnx, tmp_path_factory):
    """(tensors with their hand-worked strides, feeds, taps' values, whole tensors) on the tiny
    network: a ReLU output and an Add output of 2x64x64x64 = 524288 values (sample 8192: 64 times
    fewer, grid step sqrt(64) = 8), the 1x3x128x128 input (49152 values: 6 times fewer, step
    ceil(sqrt(6)) = 3) and a 2x256x32x32 Conv output (step 8)."""
    shapes, ops, name = _shapes_and_ops(tiny_onnx)
    tensors = {_pick(shapes, ops, "Relu", [2, 64, 64, 64]): 8,
               _pick(shapes, ops, "Conv", [2, 256, 32, 32]): 8,
               name: 3}
    adds = [t for t, s in shapes.items() if ops.get(t) == "Add" and s[:2] == [2, 256]]
    tensors[adds[0]] = 8
    rng = np.random.default_rng(3)
    feeds = [{name: rng.normal(0, 1.5, (1, 3, 128, 128)).astype(np.float32)} for _ in range(2)]
    tmp = tmp_path_factory.mktemp("taps")
    taps = CalibrationTaps(str(tiny_onnx), list(tensors), 8192, feeds[0], str(tmp))
    model = onnx.load(str(tiny_onnx))
    for t in tensors:
        if t != name:
            model.graph.output.append(onnx.ValueInfoProto(name=t))
    whole_path = tmp / "whole.onnx"
    onnx.save(model, str(whole_path))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    whole = ort.InferenceSession(str(whole_path), opts, providers=["CPUExecutionProvider"])
    inner = [t for t in tensors if t != name]
    results = []
    for feed in feeds:
        got = taps.run(feed)
        full = dict(zip(inner, whole.run(inner, feed)))
        full[name] = feed[name]
        results.append((got, full))
    return tensors, ops, results


def test_taps_measure_min_and_max_of_every_value(tapped):
    tensors, ops, results = tapped
    for got, full in results:
        for t in tensors:
            x = full[t]
            assert got[t].high == pytest.approx(float(x.max()), rel=1e-5, abs=1e-6), t
            if ops.get(t) == "Relu":  # taken as 0 by construction: check the claim on the data
                assert got[t].low == 0.0 and float(x.min()) == 0.0
            else:
                assert x.min() < 0, t  # a tensor where the minimum is really measured
                assert got[t].low == pytest.approx(float(x.min()), rel=1e-5, abs=1e-6), t


def test_taps_sample_is_the_grid_of_rows_and_columns(tapped):
    tensors, _, results = tapped
    for got, full in results:
        for t, step in tensors.items():
            expected = full[t][:, :, ::step, ::step]
            assert got[t].sample.shape == expected.shape, t
            np.testing.assert_allclose(got[t].sample, expected, rtol=1e-5, atol=1e-5, err_msg=t)


def test_taps_without_sample_measure_only_the_range(tiny_onnx, tmp_path):
    shapes, ops, name = _shapes_and_ops(tiny_onnx)
    t = _pick(shapes, ops, "Relu", [2, 64, 64, 64])
    feed = {name: np.zeros((1, 3, 128, 128), np.float32)}
    got = CalibrationTaps(str(tiny_onnx), [t], 0, feed, str(tmp_path)).run(feed)
    assert got[t].sample is None and got[t].high >= 0.0


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histograms_from_taps_equal_onnxruntimes_collector(tapped, method):
    """With every value sampled and the taps' min / max, the thresholds are ONNX Runtime's on the
    whole tensors; with the grid sample they stay near them."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    tensors, _, results = tapped
    bins = 128 if method == "entropy" else 2048
    ours, sampled = StreamingHistograms(method, bins), StreamingHistograms(method, bins)
    theirs = HistogramCollector(method, symmetric=method == "percentile", num_bins=bins,
                                num_quantized_bins=128, percentile=99.99, scenario="same")
    for got, full in results:
        for t in tensors:
            ours.add(t, full[t], got[t].low, got[t].high)
            sampled.add(t, got[t].sample, got[t].low, got[t].high)
        with contextlib.redirect_stdout(io.StringIO()):
            theirs.collect({t: [full[t]] for t in tensors})
    with contextlib.redirect_stdout(io.StringIO()):
        reference = theirs.compute_collection_result()
    exact = ours.thresholds(num_quantized_bins=128, percentile=99.99)
    near = sampled.thresholds(num_quantized_bins=128, percentile=99.99)
    for t in tensors:
        ref = max(abs(float(reference[t][0])), abs(float(reference[t][1])))
        assert exact[t] == pytest.approx(ref, rel=1e-6), t
        assert near[t] == pytest.approx(ref, rel=0.25), t
