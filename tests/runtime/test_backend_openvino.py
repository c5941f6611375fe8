"""OpenVINO backend: the same ONNX files as ONNX Runtime, checked against ONNX Runtime on each.

The outside reference is ONNX Runtime's fp32 result on the fp32 file. With the f32 inference
precision hint OpenVINO must match it to rounding (raw outputs and the Pipeline's Poses); fp16 and
INT8 Q/DQ files must stay within the bounds tests/export/test_quantize.py sets for ONNX Runtime on the same
kinds of file. The default hint (bf16 on CPUs with AMX / AVX512-BF16) is checked against a bf16
bound and its error printed (pytest -s shows it).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.runtime.backends import BACKENDS, create_backend
from higherhrnet_trt.runtime.backends import openvino_probe as probe
from higherhrnet_trt.runtime.backends.openvino_backend import cpu_name

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "runtime" / "assets" / "sample.jpg"  # 640x480, four people

#: max |err| / max |ref| allowed per output, and the least cosine similarity, by precision
F32_REL = 1e-4
BF16_REL, BF16_COS = 0.05, 0.999  # bf16 keeps 8 mantissa bits: ~0.4 % per op, tens of layers
FP16_REL, FP16_COS = 1e-2, 0.9999  # as tests/export/test_quantize.py for fp16 files under ONNX Runtime
INT8_REL, INT8_COS = 0.15, 0.995  # as tests/export/test_quantize.py for INT8 Q/DQ files under ONNX Runtime
#: OpenVINO f32 hint vs ONNX Runtime (optimisations off) on the same fp16 / INT8 file
SAME_FILE_REL = {"fp16": 2e-3, "int8": 0.1}
SAME_FILE_COS = {"fp16": 0.99999, "int8": 0.998}


@pytest.fixture(scope="module")
def ov():
    return pytest.importorskip("openvino")


def _ort(path, **options):
    """ONNX Runtime, one thread (the reference)."""
    return create_backend(str(path), backend="onnxruntime", threads=1, **options)


def _ov(path, **options):
    """OpenVINO, one thread (tests run beside other work)."""
    return create_backend(str(path), backend="openvino", threads=1, **options)


def _errors(ref: dict, out: dict) -> dict[str, tuple[float, float]]:
    """Per output: (max |out - ref| / max |ref|, cosine similarity), in float64."""
    errors = {}
    for name, r in ref.items():
        r64, o64 = r.astype(np.float64).ravel(), out[name].astype(np.float64).ravel()
        rel = float(np.abs(r64 - o64).max() / np.abs(r64).max())
        cos = float(r64 @ o64 / np.linalg.norm(r64) / np.linalg.norm(o64))
        errors[name] = (rel, cos)
    return errors


def _run(backend, x: np.ndarray) -> dict:
    with backend:
        return backend.infer({"image": x})


def _frame_input(size: int = 128) -> np.ndarray:
    """The sample photo pre-processed as calibration does: (1, 3, size, size) float32, normalised."""
    pytest.importorskip("cv2")
    from higherhrnet_trt.core.metadata import ModelMeta
    from higherhrnet_trt.export.calib_data import fixed_size_input, read_image

    frame = read_image(str(SAMPLE))[0]
    return fixed_size_input(frame, (size, size), ModelMeta().mean, ModelMeta().std)


# -- registry, import, errors ----------------------------------------------------------------------
def test_registered_and_imported_only_on_activate():
    assert BACKENDS["openvino"].endswith("openvino_backend:OpenVINOBackend")
    code = ("import sys; from higherhrnet_trt.runtime.pipeline import Pipeline; "
            "p = Pipeline('m.onnx', backend='openvino', threads=1); "
            "assert p.backend.name == 'openvino' and 'openvino' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO.parent)


def test_missing_openvino_is_one_line(tiny_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes "import openvino" raise ImportError
    with pytest.raises(BackendUnavailable) as err:
        _ov(tiny_onnx).activate()
    message = str(err.value)
    assert "\n" not in message and "pip install 'higherhrnet-trt[openvino]'" in message


def test_missing_corrupt_and_foreign_files(ov, tmp_path, tiny_onnx):
    with pytest.raises(UserError, match="not found"):
        _ov(tmp_path / "none.onnx").activate()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tiny_onnx.read_bytes()[:5000])
    with pytest.raises(UserError, match="OpenVINO cannot load") as err:
        _ov(cut).activate()
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.onnx"
    _write_foreign_onnx(foreign)
    with pytest.raises(UserError, match="no higherhrnet_trt metadata.*--config"):  # as under ONNX Runtime
        _ov(foreign).activate()


def _write_foreign_onnx(path: Path) -> None:
    """An ONNX file without our metadata (y = x)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_bad_options_are_one_line(ov, tiny_onnx):
    with pytest.raises(UserError, match="expected one of f32, bf16, f16"):
        _ov(tiny_onnx, inference_precision="fp32")
    with pytest.raises(UserError, match="cannot compile .* for device 'NOPE'") as err:
        _ov(tiny_onnx, device="NOPE").activate()
    assert "\n" not in str(err.value)


def test_cli_options_reach_the_backend(tiny_onnx):
    from higherhrnet_trt.cli import build_parser
    from higherhrnet_trt.cli.flags import options
    from higherhrnet_trt.runtime.options import ModelOptions

    def backend_options(*argv):
        args = build_parser().parse_args(["run", str(tiny_onnx), "-s", "x", *argv])
        return options(args, ModelOptions).backend_options()

    assert backend_options("--backend", "openvino", "--threads", "1",
                           "--inference-precision", "f32") == {"threads": 1, "inference_precision": "f32"}
    for argv in (["--providers", "CPUExecutionProvider"],):
        with pytest.raises(UserError, match="not an option of the openvino backend"):
            backend_options("--backend", "openvino", *argv)
    with pytest.raises(UserError, match="--inference-precision: not an option of the onnxruntime"):
        backend_options("--inference-precision", "f32")


# -- fp32 files: equal to ONNX Runtime -------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 3, 128, 128), (2, 3, 128, 192)], ids=["static", "dynamic"])
def test_f32_hint_equals_onnxruntime(ov, tiny_onnx, tiny_onnx_dynamic, shape):
    path = tiny_onnx if shape == (1, 3, 128, 128) else tiny_onnx_dynamic
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with _ort(path) as reference:
        ref = reference.infer({"image": x})
        ref_io, ref_meta = (reference.inputs, reference.outputs), reference.metadata
    with _ov(path, inference_precision="f32") as backend:
        assert backend.effective_precision == "f32"
        assert (backend.inputs, backend.outputs) == ref_io and backend.metadata == ref_meta
        out = backend.infer({"image": x})
    for name, (rel, _) in _errors(ref, out).items():
        assert out[name].shape == ref[name].shape and out[name].dtype == np.float32
        assert rel < F32_REL, (name, rel)


def test_default_hint_within_its_precision(ov, tiny_onnx):
    x = _frame_input()
    ref = _run(_ort(tiny_onnx), x)
    backend = _ov(tiny_onnx)
    out = _run(backend, x)
    errors = _errors(ref, out)
    print(f"\nOpenVINO default hint ({backend.effective_precision}) vs ONNX Runtime fp32: "
          + ", ".join(f"{k} rel {r:.2e} cos {c:.6f}" for k, (r, c) in errors.items()))
    for name, (rel, cos) in errors.items():
        assert rel < BF16_REL and cos > BF16_COS, (name, rel, cos)


def test_pipeline_poses_equal_onnxruntime(ov, tiny_onnx_dynamic):
    cv2 = pytest.importorskip("cv2")
    from higherhrnet_trt.runtime.pipeline import Pipeline

    frame = cv2.imread(str(SAMPLE))
    decode = {"max_people": 100}  # the tiny network's many weak people: compare them all
    with Pipeline(str(tiny_onnx_dynamic), backend="onnxruntime", threads=1, decode=decode) as pipe:
        ref = pipe.predict(frame)
    with Pipeline(str(tiny_onnx_dynamic), backend="openvino", threads=1, inference_precision="f32",
                  decode=decode) as pipe:
        got = pipe.predict(frame)
    assert len(ref) > 0 and len(got) == len(ref)
    # The random tiny network has near-equal peaks: another CPU's fp32 summation order can flip
    # which of two candidates a joint takes (one of its 1,700 joints on an AMX machine). Allow
    # such flips for 0.5 % of the joints; every other joint must agree to rounding.
    far = np.abs(got.keypoints[..., :2] - ref.keypoints[..., :2]).max(axis=-1) > 1e-3  # pixels
    assert far.mean() <= 0.005, f"{far.sum()} of {far.size} joints differ"
    np.testing.assert_allclose(got.keypoints[~far][:, 2], ref.keypoints[~far][:, 2], atol=1e-5)
    same = ~far.any(axis=1)  # people none of whose joints flipped
    np.testing.assert_allclose(got.scores[same], ref.scores[same], atol=1e-5)
    np.testing.assert_allclose(got.boxes[same], ref.boxes[same], atol=1e-3)


# -- fp16 and INT8 Q/DQ files ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def fp16_onnx(tiny_onnx, tmp_path_factory) -> Path:
    pytest.importorskip("modelopt.onnx.autocast", reason="nvidia-modelopt is not installed")
    from higherhrnet_trt.export.fp16 import convert_fp16

    out = tmp_path_factory.mktemp("ov_fp16") / "tiny.fp16.onnx"
    convert_fp16(str(tiny_onnx), str(out))
    return out


@pytest.fixture(scope="module")
def int8_onnx(tiny_onnx, tmp_path_factory) -> Path:
    """INT8 Q/DQ file calibrated ("max") on 8 crops of the sample photo."""
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    cv2 = pytest.importorskip("cv2")
    from higherhrnet_trt.export.quantize import quantize_int8

    work = tmp_path_factory.mktemp("ov_int8")
    images = work / "calib"
    images.mkdir()
    frame = cv2.imread(str(SAMPLE))
    for i, (x0, y0) in enumerate([(0, 0), (160, 0), (320, 0), (0, 120), (160, 120), (320, 120),
                                  (80, 60), (240, 180)]):
        crop = frame[y0:y0 + 300, x0:x0 + 320]
        cv2.imwrite(str(images / f"crop_{i}.jpg"), crop[:, ::-1] if i % 2 else crop)
    out = work / "tiny.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few images: the quantizer says so
        quantize_int8(str(tiny_onnx), str(out), str(images), num_images=8, method="max", holdout=1,
                      cache_dir=str(work / "cache"), progress=False)
    return out


@pytest.mark.parametrize("kind", ["fp16", "int8"])
def test_reduced_precision_files_stay_near_fp32(ov, tiny_onnx, fp16_onnx, int8_onnx, kind):
    path, max_rel, min_cos = (fp16_onnx, FP16_REL, FP16_COS) if kind == "fp16" else \
        (int8_onnx, INT8_REL, INT8_COS)
    if kind == "int8" and probe.int8_probe_error("CPU") > probe.MAX_RELATIVE_ERROR:
        with pytest.raises(UserError, match="int8 kernels compute 8-bit weights wrongly on this CPU"):
            _ov(int8_onnx, inference_precision="f32").activate()  # refused, not wrong (probe test)
        return
    x = _frame_input()
    ref = _run(_ort(tiny_onnx), x)  # fp32 file under ONNX Runtime: the reference
    same_file = _run(_ort(path, graph_optimization="disable"), x)
    exact, default = _ov(path, inference_precision="f32"), _ov(path)
    out, out_default = _run(exact, x), _run(default, x)
    report = {"onnxruntime": _errors(ref, same_file), "openvino f32 hint": _errors(ref, out),
              f"openvino default ({default.effective_precision})": _errors(ref, out_default)}
    print(f"\n{kind} file vs ONNX Runtime fp32 on the fp32 file:")
    for who, errors in report.items():
        print(f"  {who:26s} " + ", ".join(f"{k} rel {r:.3e} cos {c:.6f}" for k, (r, c) in errors.items()))
    for name, (rel, cos) in report["openvino f32 hint"].items():
        assert rel < max_rel and cos > min_cos, (kind, name, rel, cos)
    # Tighter, against the same file's exact Q/DQ arithmetic (ONNX Runtime, optimisations off):
    # int8 kernels round differently (one-step flips that add up), but not more than this.
    # Without unsigned_after_concat OpenVINO's first int8 convolution was wrong: rel 0.14, cos 0.993.
    for name, (rel, cos) in _errors(same_file, out).items():
        assert rel < SAME_FILE_REL[kind] and cos > SAME_FILE_COS[kind], (kind, name, rel, cos)


def test_int8_convolutions_run_in_int8(ov, int8_onnx):
    """Every convolution the Q/DQ file quantizes runs in u8 / i8 (OpenVINO's execution graph)."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(int8_onnx))
    producer = {out: node.op_type for node in model.graph.node for out in node.output}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    quantized = sum(producer.get(n.input[0]) == "DequantizeLinear" for n in convs)
    backend = _ov(int8_onnx, check_int8=False)  # what runs, whether or not the probe passes here
    with backend:
        precisions = backend.runtime_precisions()
    in_int8 = sum(count for kind in ("Convolution", "Deconvolution")
                  for prec, count in precisions.get(kind, {}).items() if prec in ("u8", "i8"))
    print(f"\n{quantized} of {len(convs)} convolutions quantized in the file; OpenVINO runs "
          f"{in_int8} in int8: {precisions.get('Convolution')}, {precisions.get('Deconvolution')}")
    assert quantized > len(convs) // 2
    assert in_int8 == quantized, precisions


def _probe_path(tmp_path: Path, bits: int = 8) -> Path:
    path = tmp_path / f"probe{bits}.onnx"
    path.write_bytes(probe.probe_onnx_bytes(bits))
    return path


@pytest.mark.parametrize("bits", [8, 7])
def test_probe_asset_is_the_documented_graph(tmp_path, bits):
    """The committed probe files hold what write_probe writes (nodes and constants)."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    fresh = tmp_path / "fresh.onnx"
    probe.write_probe(str(fresh), bits)
    committed, written = onnx.load(str(_probe_path(tmp_path, bits))), onnx.load(str(fresh))
    assert [n.SerializeToString() for n in committed.graph.node] == \
        [n.SerializeToString() for n in written.graph.node]
    for a, b in zip(committed.graph.initializer, written.graph.initializer, strict=True):
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    w = probe.probe_arrays(bits)["w"]
    # by hand: 8-bit weights span [-127, 127], 7-bit ones [-64, 64] (pair sums 2 x 255 x 64 fit int16)
    assert int(np.abs(w.astype(np.int16)).max()) == (127 if bits == 8 else 64)


@pytest.mark.parametrize("bits", [8, 7])
def test_probe_reference_equals_onnxruntime(tmp_path, bits):
    """The probe's NumPy answer is ONNX Runtime's exact Q/DQ arithmetic (optimisations off)."""
    x = probe.probe_input()
    with create_backend(str(_probe_path(tmp_path, bits)), backend="onnxruntime", threads=1,
                        graph_optimization="disable") as ref:
        expected = ref.infer({"x": x})["y"]
    assert probe.relative_error(expected, probe.reference_output(x, bits)) < 1e-6


def test_weight_bits_reads_the_widest_int8_constant(ov, tmp_path):
    """A CPU-target file: 7 for the 7-bit probe's weights (|w| <= 64), 8 for the 8-bit probe's
    (up to 127); any other file (TensorRT layout, no target) is 8 whatever its constants."""
    from higherhrnet_trt.core.metadata import ModelMeta
    from higherhrnet_trt.runtime.backends.openvino_backend import weight_bits

    core = ov.Core()
    cpu, trt = ModelMeta(precision="int8", target="cpu"), ModelMeta(precision="int8", target="tensorrt")
    assert weight_bits(core.read_model(str(_probe_path(tmp_path, 7))), cpu) == 7
    assert weight_bits(core.read_model(str(_probe_path(tmp_path, 8))), cpu) == 8
    assert weight_bits(core.read_model(str(_probe_path(tmp_path, 7))), trt) == 8
    assert weight_bits(core.read_model(str(_probe_path(tmp_path, 7))), None) == 8


@pytest.mark.parametrize("bits", [8, 7])
def test_int8_probe_tells_right_from_wrong(ov, tmp_path, bits):
    """OpenVINO's CPU plugin computed a symmetric int8 quantizer after a Concat wrongly (max error
    ~30 %) until the backend rewrote it as the equal uint8 form; on CPUs without VNNI (and one
    listed with AMX-INT8) the rewritten form was still ~44 % wrong with 8-bit weights (int16
    saturation). Whatever this CPU does, each probe's verdict must be ONNX Runtime's, and an INT8
    file of that weight width is then either exact or refused in one line."""
    path = _probe_path(tmp_path, bits)
    x = probe.probe_input()
    with create_backend(str(path), backend="onnxruntime", threads=1, graph_optimization="disable") as ref:
        expected = ref.infer({"x": x})["y"]
    unchecked = _ov(path, inference_precision="f32", check_int8=False)
    with unchecked:
        got = unchecked.infer({"x": x})["y"]
        precisions = unchecked.runtime_precisions()
    assert unchecked.rewritten_quantizers == 1
    assert set(precisions["Convolution"]) <= {"u8", "i8"}, precisions  # still an int8 convolution
    rel = probe.relative_error(got, expected.astype(np.float64))
    verdict = probe.int8_probe_error("CPU", bits)
    print(f"\nOpenVINO int8 probe ({bits}-bit weights) on {cpu_name()}: error {verdict:.2e} "
          f"(vs ONNX Runtime {rel:.2e})")
    assert (verdict <= probe.MAX_RELATIVE_ERROR) == (rel < 1e-5), (verdict, rel)
    if verdict > probe.MAX_RELATIVE_ERROR:
        with pytest.raises(UserError, match="--backend onnxruntime"):
            _ov(path, inference_precision="f32").activate()
