"""export.quantize: fp16 (AutoCast) and INT8 Q/DQ (ModelOpt placement + our cached calibration).

Tolerances, measured on the tiny reference network (CPU, ONNX Runtime):
- fp16 vs fp32: max|err| / max|fp32| about 1e-3 per output; asserted < 1e-2, cosine > 0.9999.
- INT8 vs fp32 (variant run with ORT graph optimisation disabled): rel about 5e-2, cosine about
  0.9995 on held-out synthetic frames; asserted rel < 0.15 and cosine > 0.995.
- INT8 scales with method "max" and "entropy" equal ModelOpt's own calibration bit for bit.
The calibration frames are synthetic (blurred shapes and noise, written with OpenCV): enough to
exercise ranges and the pipeline; accuracy on real frames is a deployment check, not a unit test.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")
onnx = pytest.importorskip("onnx")

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.core.metadata import ModelMeta  # noqa: E402
from higherhrnet_trt.engine.onnx_info import summarize  # noqa: E402
from higherhrnet_trt.export import calib_ranges  # noqa: E402
from higherhrnet_trt.export import quantize as q  # noqa: E402
from higherhrnet_trt.export.calib_data import InputMaker, fixed_size_input, list_images, read_image  # noqa: E402
from higherhrnet_trt.export.fp16 import _EXACT_IN_FP16, convert_fp16  # noqa: E402
from higherhrnet_trt.export.quant_common import quiet  # noqa: E402


def make_images(folder, count: int, seed: int = 0, broken: int = 0) -> str:
    """Deterministic synthetic frames of varied sizes (written once per folder)."""
    if os.path.isdir(folder) and os.listdir(folder):
        return str(folder)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = int(rng.integers(90, 240)), int(rng.integers(90, 240))
        img = np.empty((h, w, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        for _ in range(8):
            color = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(5, 40)),
                       color, -1)
            cv2.line(img, (int(rng.integers(0, w)), int(rng.integers(0, h))),
                     (int(rng.integers(0, w)), int(rng.integers(0, h))), color, 3)
        img = cv2.GaussianBlur(img, (5, 5), 0)
        img = np.clip(img.astype(np.int16) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, f"frame_{i:03d}.jpg"), img)
    for i in range(broken):
        with open(os.path.join(folder, f"zz_broken_{i}.jpg"), "wb") as f:
            f.write(b"not an image")
    return str(folder)


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory) -> str:
    """24 readable frames + 1 corrupt file, shared by the engine tests (same path, same cache)."""
    return make_images(tmp_path_factory.getbasetemp() / "calib_images", 24, broken=1)


@pytest.fixture(scope="session")
def calib_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.getbasetemp() / "calib_cache")


def _ort(path, level="all"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _rel_cos(ref, out):
    ref = ref.astype(np.float64)
    out = out.astype(np.float64)
    rel = np.abs(ref - out).max() / np.abs(ref).max()
    cos = float(ref.ravel() @ out.ravel() / np.linalg.norm(ref) / np.linalg.norm(out))
    return rel, cos


# -- pre-processing ---------------------------------------------------------------------------------
def test_fixed_size_input_equals_official_when_sizes_agree():
    from higherhrnet_trt.core.preprocess import preprocess

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)  # official size at 128: 192 x 128
    official = preprocess(image, 128)[0][0][1]
    assert official.shape == (1, 3, 128, 192)
    ours = fixed_size_input(image, (128, 192), ModelMeta().mean, ModelMeta().std)
    np.testing.assert_array_equal(ours, official)


def test_fixed_size_input_letterboxes_with_black_border():
    image = np.full((50, 200, 3), 255, np.uint8)  # 4:1 frame into a square input
    meta = ModelMeta()
    x = fixed_size_input(image, (128, 128), meta.mean, meta.std)
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    black = (0.0 - np.asarray(meta.mean)) / np.asarray(meta.std)
    white = (1.0 - np.asarray(meta.mean)) / np.asarray(meta.std)
    np.testing.assert_allclose(x[0, :, 0, 64], black, rtol=1e-5)  # top border
    np.testing.assert_allclose(x[0, :, 64, 64], white, rtol=1e-5)  # image centre
    np.testing.assert_allclose(x[0, :, 64, 2], white, rtol=1e-5)  # full width kept


def test_input_maker_follows_the_model(tiny_onnx, tiny_onnx_dynamic):
    image = np.zeros((80, 100, 3), np.uint8)
    static = InputMaker(summarize(str(tiny_onnx)), ModelMeta(input_size=128))
    assert static.fixed_hw == (128, 128) and static.tensor(image).shape == (1, 3, 128, 128)
    dynamic = InputMaker(summarize(str(tiny_onnx_dynamic)), ModelMeta(input_size=128))
    assert dynamic.fixed_hw is None and dynamic.tensor(image).shape == (1, 3, 128, 192)


def test_list_images_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no images"):
        list_images(tmp_path)


# -- FP16 ------------------------------------------------------------------------------------------
def test_convert_fp16_keeps_io_fp32_and_metadata(tiny_onnx, tmp_path):
    out = tmp_path / "tiny.fp16.onnx"
    report = convert_fp16(str(tiny_onnx), str(out))
    s = summarize(str(out))
    assert s.precision == "fp16"
    assert [t.dtype for t in s.inputs + s.outputs] == ["float32"] * 3
    meta = s.meta()
    assert meta.precision == "fp16" and meta.config_name == "tiny"
    assert report.kept_fp32 == [] and set(report.errors) == {"heatmaps", "tags"}
    # Independent check (not the report's numbers): fp32 vs fp16 under ONNX Runtime.
    x = np.random.default_rng(3).standard_normal((1, 3, 128, 128)).astype(np.float32)
    ref = _ort(tiny_onnx).run(None, {"image": x})
    got = _ort(out, "disable").run(None, {"image": x})
    for r, g in zip(ref, got):
        rel, cos = _rel_cos(r, g)
        assert rel < 1e-2 and cos > 0.9999
    for e in report.errors.values():
        assert e.rel < 1e-2 and e.cosine > 0.9999


def test_convert_fp16_fp16_io_and_images(tiny_onnx, tmp_path, calib_dir):
    out = tmp_path / "tiny.fp16io.onnx"
    report = convert_fp16(str(tiny_onnx), str(out), keep_io_fp32=False, images=calib_dir, num_check=3)
    s = summarize(str(out))
    assert s.inputs[0].dtype == "float16" and s.outputs[0].dtype == "float16"
    assert report.checked_on == "3 images"
    assert report.errors["heatmaps"].rel < 1e-2


def test_convert_fp16_keeps_layers_fp32_when_error_demands(tiny_onnx, tmp_path):
    out = tmp_path / "tiny.fp16.strict.onnx"
    with pytest.warns(UserWarning, match="still above"):
        report = convert_fp16(str(tiny_onnx), str(out), tolerance=1e-7, max_rounds=1,
                                  method="autocast")
    assert len(report.kept_fp32) >= 1 and report.notes and "keeping fp32" in report.notes[0]
    kept = set(report.kept_fp32)
    m = onnx.load(str(out))
    inits = {i.name: i.data_type for i in m.graph.initializer}
    nodes = [n for n in m.graph.node if n.name in kept]
    assert len(nodes) == len(kept), "kept nodes must still exist in the converted graph"
    for n in nodes:  # arithmetic nodes, really computing in fp32: their weights stayed fp32
        assert n.op_type not in _EXACT_IN_FP16
        weights = [inits[i] for i in n.input if i in inits]
        assert all(t == onnx.TensorProto.FLOAT for t in weights), n.name


def test_convert_fp16_rejects_non_fp32(tiny_onnx, tmp_path):
    half = tmp_path / "half.onnx"
    convert_fp16(str(tiny_onnx), str(half))
    with pytest.raises(UserError, match="already fp16"):
        convert_fp16(str(half), str(tmp_path / "again.onnx"))


# -- INT8 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sample", [0, None])
@pytest.mark.parametrize("method", ["max", "entropy"])
def test_int8_scales_equal_modelopts_own_calibration(tiny_onnx, tmp_path, method, sample):
    """Our placement + calibration pass reproduces ModelOpt's PTQ (same frames, same order):
    exactly with every value fetched (sample 0); to float rounding with the default in-graph taps
    (optimised graph; the tiny network's larger tensors are sampled: "max" does not read the
    sample, and entropy's one 128-bin window here spans the exact range)."""
    from modelopt.onnx.quantization import quantize as modelopt_quantize
    from onnx import numpy_helper

    from higherhrnet_trt.export.calib_taps import DEFAULT_SAMPLE

    folder = make_images(tmp_path / "imgs", 8, seed=5)
    ours = tmp_path / "ours.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q.quantize_int8(str(tiny_onnx), str(ours), folder, num_images=100, method=method, holdout=0,
                        cache_dir=str(tmp_path / "cache"), progress=False,
                        sample=DEFAULT_SAMPLE if sample is None else sample)
    s = summarize(str(tiny_onnx))
    maker = InputMaker(s, s.meta())
    pool = list_images(folder)
    order = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]  # seed 0 shuffle
    data = np.concatenate([maker.tensor(read_image(p)[0]) for p in order], 0)
    theirs = tmp_path / "theirs.onnx"
    with quiet():
        modelopt_quantize(str(tiny_onnx), quantize_mode="int8", calibration_data={"image": data},
                          calibration_method=method, calibration_eps=["cpu"], output_path=str(theirs),
                          high_precision_dtype="fp16", log_level="CRITICAL")
    a = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(ours)).graph.initializer}
    b = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(theirs)).graph.initializer}
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        if sample == 0:
            assert np.array_equal(a[name], b[name]), name
        else:
            np.testing.assert_allclose(a[name].astype(np.float64), b[name].astype(np.float64),
                                       rtol=1e-5, err_msg=name)


def test_short_of_images_because_of_the_holdout_says_so(tiny_onnx, tmp_path, calib_dir, calib_cache):
    with pytest.warns(UserWarning) as record:
        q.quantize_int8(str(tiny_onnx), str(tmp_path / "t.int8.onnx"), calib_dir, num_images=24, method="max",
                        holdout=4, cache_dir=calib_cache, progress=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "calibrated on 20 images (asked for 24; 4 of the folder's 25 held out" in messages


def test_int8_accuracy_skips_and_warnings(tiny_onnx, tmp_path, calib_dir, calib_cache):
    out = tmp_path / "tiny.int8.onnx"
    with pytest.warns(UserWarning) as record:
        report = q.quantize_int8(str(tiny_onnx), str(out), calib_dir, num_images=512, method="max",
                                 holdout=4, cache_dir=calib_cache, progress=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "unreadable" in messages and "calibrated on 20 images (asked for 512)" in messages
    assert len(report.skipped_images) == 1 and "zz_broken_0.jpg" in report.skipped_images[0]
    assert report.calibration_images == 20 and report.checked_on == "4 held-out images"
    s = summarize(str(out))
    assert s.precision == "int8" and s.op_counts["QuantizeLinear"] > 50
    assert s.meta().precision == "int8" and [t.dtype for t in s.inputs] == ["float32"]
    for e in report.errors.values():
        assert e.rel < 0.15 and e.cosine > 0.995
    # Independent check on an unseen frame, ORT optimisation disabled (see module docstring).
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    frame = read_image(make_images(tmp_path / "unseen", 1, seed=9) + "/frame_000.jpg")[0]
    x = fixed_size_input(frame, (128, 128), ModelMeta().mean, ModelMeta().std)
    with OnnxRuntimeBackend(str(tiny_onnx)) as ref, \
            OnnxRuntimeBackend(str(out), graph_optimization="disable") as var:
        assert var.metadata.precision == "int8"
        r, g = ref.infer({"image": x}), var.infer({"image": x})
    for name in ("heatmaps", "tags"):
        rel, cos = _rel_cos(r[name], g[name])
        assert rel < 0.15 and cos > 0.995, (name, rel, cos)


def test_int8_cache_skips_the_pass(tiny_onnx, tmp_path, calib_dir):
    cache = str(tmp_path / "cache")
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    kwargs = dict(num_images=16, method="percentile", holdout=2, cache_dir=cache, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = q.quantize_int8(str(tiny_onnx), str(first), calib_dir, **kwargs)
        calls = []
        original = calib_ranges.collect_ranges
        calib_ranges.collect_ranges = lambda *a, **k: calls.append(1) or original(*a, **k)
        try:
            t0 = time.perf_counter()
            r2 = q.quantize_int8(str(tiny_onnx), str(second), calib_dir, **kwargs)
            assert time.perf_counter() - t0 < 60
            assert calls == [] and r2.cache_hit and not r1.cache_hit
            assert r2.cache_path == r1.cache_path and os.path.isfile(r1.cache_path)
            assert r2.calibration_images == r1.calibration_images == 16
            # Any setting or image change is a new key: the pass runs again.
            r3 = q.quantize_int8(str(tiny_onnx), str(tmp_path / "c.onnx"), calib_dir,
                                 **{**kwargs, "percentile": 99.9})
            assert calls == [1] and not r3.cache_hit and r3.cache_path != r1.cache_path
        finally:
            calib_ranges.collect_ranges = original
    a = {i.name: i.SerializeToString() for i in onnx.load(str(first)).graph.initializer}
    b = {i.name: i.SerializeToString() for i in onnx.load(str(second)).graph.initializer}
    assert a == b


def test_int8_percentile_clips_below_max(tiny_onnx, tmp_path, calib_dir):
    import json

    ranges = {}
    for method in ("max", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = q.quantize_int8(str(tiny_onnx), str(tmp_path / f"{method}.onnx"), calib_dir,
                                num_images=12, method=method, percentile=99.0, holdout=0,
                                cache_dir=str(tmp_path / "cache"), progress=False)
        with open(r.cache_path) as f:
            ranges[method] = json.load(f)["ranges"]
        # the report says when histograms came from a sample (percentile) and not for "max"
        assert any("grid sample" in n for n in r.notes) == (method == "percentile"), r.notes
    assert ranges["max"].keys() == ranges["percentile"].keys()
    assert all(ranges["percentile"][t] <= ranges["max"][t] * (1 + 1e-6) for t in ranges["max"])
    assert sum(ranges["percentile"][t] < 0.9 * ranges["max"][t] for t in ranges["max"]) > 10


def test_int8_input_errors(tiny_onnx, tmp_path, calib_dir):
    with pytest.raises(UserError, match="method"):
        q.quantize_int8(str(tiny_onnx), str(tmp_path / "x.onnx"), calib_dir, method="minmax")
    with pytest.raises(UserError, match="not found"):
        q.quantize_int8(str(tiny_onnx), str(tmp_path / "x.onnx"), str(tmp_path / "nothing"))
    bad = make_images(tmp_path / "bad", 0, broken=3)
    with pytest.raises(UserError, match="could be read"):
        q.quantize_int8(str(tiny_onnx), str(tmp_path / "x.onnx"), bad, cache_dir=str(tmp_path))
