"""export.calib_hist: streaming histograms and thresholds against ONNX Runtime's own calibrater.

The reference is onnxruntime.quantization.calibrate.HistogramCollector fed the same batches in the
same order (ModelOpt's settings): histograms, edges, min/max and the final thresholds must be
equal, including batches that grow the range (bins added) and a first batch of zeros.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

# ONNX Runtime's quantization tools import onnx (not in the runtime install, make test-py310)
pytest.importorskip("onnxruntime.quantization.calibrate")
from onnxruntime.quantization.calibrate import HistogramCollector  # noqa: E402

from higherhrnet_trt.export.calib_hist import (  # noqa: E402
    StreamingHistograms,
    entropy_threshold,
    histogram,
)


def _batches(seed: int = 0):
    """Activation-like batches: ReLU'd normals, a heavy tail, growing scales, a zero batch."""
    rng = np.random.default_rng(seed)
    out = {"relu": [], "signed": [], "zeros_first": []}
    for i, scale in enumerate([0.5, 1.0, 3.0, 2.0, 7.5]):
        x = rng.standard_normal(20000).astype(np.float32) * scale
        out["relu"].append(np.maximum(x, 0).reshape(2, 100, 100))
        out["signed"].append(x + rng.standard_cauchy(20000).astype(np.float32) * 0.05)
        out["zeros_first"].append(np.zeros(500, np.float32) if i == 0 else x[:500])
    return out


def _ort(method: str, data, percentile=99.999):
    bins = 128 if method == "entropy" else 2048
    col = HistogramCollector(method, symmetric=method == "percentile", num_bins=bins,
                             num_quantized_bins=128, percentile=percentile, scenario="same")
    with contextlib.redirect_stdout(io.StringIO()):
        for i in range(len(next(iter(data.values())))):
            col.collect({k: [v[i]] for k, v in data.items()})  # as calib_ranges fed it
        result = col.compute_collection_result()
    return col.histogram_dict, {k: float(max(abs(float(r[0])), abs(float(r[1])))) for k, r in result.items()}


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histograms_and_thresholds_equal_onnxruntime(method):
    data = _batches()
    ours = StreamingHistograms(method, 128 if method == "entropy" else 2048)
    for i in range(5):  # three tensors per batch, over two threads
        ours.add_batch({k: v[i] for k, v in data.items()}, workers=2)
    ref_hists, ref_thresholds = _ort(method, data, percentile=99.9)
    for k, ref in ref_hists.items():
        hist, edges, lo, hi, _ = ours.state[k]
        assert np.array_equal(hist, ref[0]), k
        assert edges.dtype == ref[1].dtype and np.array_equal(edges, ref[1]), k
        assert (lo, hi) == (ref[2], ref[3]), k
    assert len(ours.state["relu"][0]) > 128 if method == "entropy" else True, "range must have grown"
    assert ours.thresholds(128, percentile=99.9) == ref_thresholds


def test_entropy_threshold_equals_onnxruntime_on_the_same_histogram():
    """Same histogram handed to both threshold searches (a wide, uneven one: 1001 bins)."""
    rng = np.random.default_rng(3)
    hist = rng.poisson(np.exp(-np.linspace(-4, 4, 1001) ** 2) * 5000).astype(np.int64)
    hist[::97] = 0
    edges = np.linspace(-6, 6, 1002).astype(np.float32)
    lo, hi = np.float32(-5.9), np.float32(5.7)
    col = HistogramCollector("entropy", False, 128, 128, 99.999, "same")
    want = col.get_entropy_threshold((hist, edges, lo, hi, np.float32(6)), 128)
    got = entropy_threshold(hist, edges, lo, hi, 128)
    assert (float(got[0]), float(got[1])) == (float(want[0]), float(want[1]))
    assert -5.9 < float(got[0]) < 0 < float(got[1]) < 5.7  # a real clip, not the extremes


def test_memory_is_independent_of_the_number_of_batches():
    h = StreamingHistograms("entropy", 128)
    rng = np.random.default_rng(0)
    h.add("t", rng.standard_normal(1000).astype(np.float32))
    size = h.nbytes()
    for _ in range(50):
        h.add("t", rng.standard_normal(1000).astype(np.float32) * 0.5)
    assert h.nbytes() == size


@pytest.mark.parametrize("bins", [1, 7, 128, 2048])
def test_histogram_equals_numpy_at_the_edges(bins):
    """Values exactly on every edge, just beside them, outside them, and a zero range."""
    rng = np.random.default_rng(bins)
    x = (rng.standard_normal(50000) * 3).astype(np.float32)
    edges = np.histogram_bin_edges(x, bins)
    on_edges = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)])
    x = np.concatenate([x, on_edges.astype(np.float32)])
    for args in [dict(bins=bins), dict(bins=bins, range=(np.float32(-2), np.float32(2)))]:
        want = np.histogram(x, **args)
        got = histogram(x, bins, args.get("range"))
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    grown = np.hstack((edges, np.arange(edges[-1] + (edges[1] - edges[0]), 20, edges[1] - edges[0])))
    grown = grown.astype(np.float32)
    assert np.array_equal(histogram(x * 2, len(grown) - 1, edges=grown)[0], np.histogram(x * 2, grown)[0])
    zeros = np.zeros(10, np.float32)
    assert np.array_equal(histogram(zeros, bins, (zeros[0], zeros[0]))[1],
                          np.histogram(zeros, bins, range=(zeros[0], zeros[0]))[1])
