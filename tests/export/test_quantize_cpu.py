"""``calibrate --target cpu`` (export/qdq_cpu.py) on the tiny network: the Q/DQ graph ONNX Runtime's
own static quantizer writes from the same images, fused by ONNX Runtime into integer kernels, and
the pairing checks (ONNX Runtime's level, TensorRT's refusal).

Reference for the graph: onnxruntime.quantization.quantize_static (QDQ, per-channel, 7-bit
weights by ``reduce_range``, uint8 activations, MinMax, the same nodes excluded) on the same
pre-processed frames, which must give the same initializers (activation scales and zero points,
int8 weights, int32 biases) as our ranges with ``method max``. Which nodes stay in float
(output_tail) is checked on a hand-made graph.
"""

from __future__ import annotations

import collections
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def cpu_files(tiny_onnx, tmp_path_factory):
    """(fp32 ONNX, cpu-target INT8 ONNX (method max), calibration folder, calibrate's output),
    made by the command in a process of its own, as a user runs it (test_refused_after_modelopt)."""
    from higherhrnet_trt.benchmarks.scenes import generate_dataset

    tmp = tmp_path_factory.mktemp("int8_cpu")
    generate_dataset(str(tmp / "calib"), 4, seed=3000, size=(128, 128))
    out = str(tmp / "tiny.cpu.int8.onnx")
    done = subprocess.run(
        [sys.executable, "-m", "higherhrnet_trt.cli", "calibrate", str(tiny_onnx), "-o", out,
         "--images", str(tmp / "calib" / "images"), "--num-images", "4", "--holdout", "0",
         "--method", "max", "--target", "cpu", "--cache-dir", str(tmp / "cache"), "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return str(tiny_onnx), out, str(tmp / "calib" / "images"), done.stdout


def test_refused_after_modelopt_patched_onnxruntime(tiny_onnx, tmp_path, monkeypatch):
    """Once ModelOpt has patched ORT's quantizer in this process, the CPU layout is refused in one
    line (it would differ from ORT's own or fail) instead of written wrong."""
    from onnxruntime.quantization import base_quantizer

    from higherhrnet_trt.benchmarks.scenes import generate_dataset
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.export.quantize import quantize_int8

    modelopt_patching = pytest.importorskip("modelopt.onnx.quantization.ort_patching")
    monkeypatch.setattr(base_quantizer.BaseQuantizer, "adjust_tensor_ranges",
                        modelopt_patching._adjust_tensor_ranges)  # what patch_ort_modules sets
    generate_dataset(str(tmp_path / "calib"), 2, seed=3000, size=(128, 128))
    with pytest.raises(UserError, match="calibrate for the CPU in a new process"):
        quantize_int8(str(tiny_onnx), str(tmp_path / "x.onnx"), str(tmp_path / "calib" / "images"),
                      num_images=2, holdout=0, method="max", target="cpu", progress=False,
                      cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "x.onnx").exists()


def _initializers(path: str) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}


REFERENCE_QUANTIZER = """
import json
import sys
import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
data = np.load(sys.argv[2])
feeds = [{sys.argv[4]: data[k]} for k in sorted(data.files, key=int)]
class Reader(CalibrationDataReader):
    def __init__(self):
        self.it = iter(feeds)
    def get_next(self):
        return next(self.it, None)
quantize_static(sys.argv[1], sys.argv[3], Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=json.loads(sys.argv[5]))
"""


def test_same_graph_as_onnxruntime_quantizer(cpu_files, tmp_path):
    from higherhrnet_trt.export.calib_data import InputMaker, list_images
    from higherhrnet_trt.export.quant_common import check_fp32_input

    fp32, ours, images, _ = cpu_files
    _, summary, meta = check_fp32_input(fp32)
    maker = InputMaker(summary, meta, None)
    feeds = list(maker.feeds(list_images(images), []))
    (name,) = {k for f in feeds for k in f}
    np.savez(tmp_path / "feeds.npz", **{str(i): f[name] for i, f in enumerate(feeds)})
    ref = str(tmp_path / "ort.onnx")
    # ONNX Runtime's own quantizer in a fresh process: ModelOpt, once imported (calibrate's
    # TensorRT layout), patches onnxruntime.quantization in place, and the patched
    # quantize_static fails on this graph ("Quantization parameters are not specified for param cat").
    import json

    import onnx

    from higherhrnet_trt.export.qdq_cpu import output_tail

    in_float = output_tail(onnx.load(fp32))
    subprocess.run([sys.executable, "-c", REFERENCE_QUANTIZER, fp32, str(tmp_path / "feeds.npz"), ref, name,
                    json.dumps(in_float)], check=True, timeout=600)
    a, b = _initializers(ours), _initializers(ref)
    assert set(a) == set(b)
    scales = [n for n in a if n.endswith("_scale")]
    assert len(scales) > 50  # activations and weights of every Conv
    weights = [v for v in a.values() if v.dtype == np.int8 and v.ndim == 4]
    # 7 bits: every weight in [-64, 64] and the largest at 64 (symmetric per channel, by hand)
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) == 64
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        # Our min / max come from an optimised session (fused Conv arithmetic), ORT's from its
        # unoptimised one: the last bit of a range may differ, so a scale by float rounding and an
        # int32 bias (bias / scale, rounded) by one step where it sits at a half.
        atol = 1 if a[name].dtype == np.int32 else 0
        np.testing.assert_allclose(a[name].astype(np.float64), b[name].astype(np.float64),
                                   rtol=1e-6, atol=atol, err_msg=name)


def _optimised_ops(path: str, tmp_path) -> collections.Counter:
    import onnx

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node)


def test_onnxruntime_fuses_every_conv_but_the_final_layer(cpu_files, tmp_path):
    """What makes the file fast: at "all" every Conv is an integer kernel except the final layers
    whose outputs only the outputs read (output_tail; HigherHRNet's stride-2 heatmaps layer). The
    stride-4 final layer also feeds the quantized Concat before the deconvolution, so ONNX Runtime
    quantizes its output for that reader and runs it in int8."""
    import onnx

    from higherhrnet_trt.export.qdq_cpu import output_tail

    fp32, ours, _, _ = cpu_files
    model = onnx.load(fp32)
    convs = sum(n.op_type == "Conv" for n in model.graph.node)
    tail = set(output_tail(model))
    readers: dict[str, list[str]] = {}
    for n in model.graph.node:
        for name in n.input:
            readers.setdefault(name, []).append(n.name)
    float_convs = sum(n.op_type == "Conv" and n.name in tail and set(readers[n.output[0]]) <= tail
                      for n in model.graph.node)
    ops = _optimised_ops(ours, tmp_path)
    assert float_convs == 1  # the tiny network's stride-2 final layer
    assert ops["QLinearConv"] == convs - float_convs, ops
    assert ops["Conv"] + ops["FusedConv"] == float_convs, ops


def test_output_tail_is_what_follows_the_last_convolutions():
    """A hand-made graph: x -> Conv a -> Relu -> Conv b -> Add(c) -> y, and Conv a -> Resize ->
    Conv c -> Add, Conv c -> Concat -> z. What follows the last convolution on every path to an
    output, those convolutions included: b, c, the Add, the Concat (the Relu, the Resize and a
    stay quantized)."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv_a"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w"], ["b"], name="conv_b"),
             helper.make_node("Resize", ["a", "", "s"], ["u"], name="resize"),
             helper.make_node("Conv", ["u", "w"], ["c"], name="conv_c"),
             helper.make_node("Add", ["b", "c"], ["y"]),  # unnamed: output_tail names it
             helper.make_node("Concat", ["c", "c"], ["z"], name="concat", axis=1)]
    from higherhrnet_trt.export.qdq_cpu import output_tail

    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("x", "y", "z")]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0]),
             helper.make_tensor("s", TensorProto.FLOAT, [4], [1, 1, 2, 2])]
    model = helper.make_model(helper.make_graph(nodes, "g", [vi[0]], vi[1:], inits))
    tail = output_tail(model)
    add_name = model.graph.node[5].name
    assert add_name and sorted(tail) == sorted(["conv_b", "conv_c", "concat", add_name])


def test_backend_runs_it_optimised_and_close_to_fp32(cpu_files, caplog):
    from higherhrnet_trt.export.calib_data import InputMaker, list_images
    from higherhrnet_trt.export.quant_common import check_fp32_input
    from higherhrnet_trt.runtime.backends import create_backend

    fp32, ours, images, _ = cpu_files
    _, summary, meta = check_fp32_input(fp32)
    feed = next(iter(InputMaker(summary, meta, None).feeds(list_images(images), [])))
    with create_backend(fp32, threads=1) as b:
        ref = b.infer(feed)
    with caplog.at_level("WARNING", logger="higherhrnet_trt"), create_backend(ours, threads=1) as b:
        got = b.infer(feed)
        assert b.metadata.target == "cpu" and b.metadata.precision == "int8"
        assert b.graph_optimization_used == "all"
    assert not [r for r in caplog.records if "INT8 file for TensorRT" in r.getMessage()]
    r, v = ref["heatmaps"].ravel(), got["heatmaps"].ravel()
    cos = float(r @ v / np.sqrt((r @ r) * (v @ v)))
    assert 0.99 < cos < 1.0, cos  # INT8, not fp32 twice


def test_pairings():
    from higherhrnet_trt.core.metadata import ModelMeta
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import needed_level, pairing_note

    trt, cpu = ModelMeta(precision="int8", target="tensorrt"), ModelMeta(precision="int8", target="cpu")
    old = ModelMeta(precision="int8")  # written before the key existed: TensorRT's placement
    assert [needed_level(m) for m in (trt, cpu, old, ModelMeta())] == ["disable", "all", "disable", "all"]
    assert pairing_note(cpu, "m.onnx") is None and pairing_note(ModelMeta(), "m.onnx") is None
    note = pairing_note(old, "/x/m.onnx")
    assert "\n" not in note and "--target cpu" in note and "m.onnx" in note


def test_file_states_its_7_bit_weights(cpu_files):
    """calibrate --target cpu stamps weight_bits 7, and the graph's int8 weights are that wide."""
    from higherhrnet_trt.export.onnx_export import read_metadata

    _, ours, _, _ = cpu_files
    assert read_metadata(ours).weight_bits == 7
    widest = max(int(np.abs(v.astype(np.int16)).max()) for v in _initializers(ours).values()
                 if v.dtype == np.int8)
    assert widest <= 64


def test_saturation_note():
    """One line for a CPU-target file with 8-bit weights on a CPU that saturates them, else none."""
    from higherhrnet_trt.core.metadata import ModelMeta
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import saturation_note

    eight, seven = ModelMeta(precision="int8", target="cpu"), ModelMeta(precision="int8", target="cpu",
                                                                        weight_bits=7)
    note = saturation_note(eight, "/x/m.onnx", True)
    assert note and "\n" not in note and "m.onnx" in note and "calibrate --target cpu" in note
    assert saturation_note(eight, "m.onnx", False) is None  # a VNNI CPU: 8-bit weights are fine
    assert saturation_note(seven, "m.onnx", True) is None
    assert saturation_note(ModelMeta(precision="int8", target="tensorrt"), "m.onnx", True) is None
    assert saturation_note(ModelMeta(), "m.onnx", True) is None


def test_tensorrt_build_refuses_cpu_target(cpu_files):
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.engine.build_plan import plan_precision
    from higherhrnet_trt.engine.onnx_info import summarize

    _, ours, _, summary = cpu_files
    assert f"wrote {ours} (int8 for cpu)" in summary  # calibrate says which target the file is for
    with pytest.raises(UserError, match="--target tensorrt") as e:
        plan_precision(None, summarize(ours), False, False, ours)
    assert "\n" not in str(e.value)


def test_unknown_target_is_one_line(tiny_onnx, tmp_path):
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.export.quantize import quantize_int8

    with pytest.raises(UserError, match="target must be one of tensorrt, cpu"):
        quantize_int8(str(tiny_onnx), str(tmp_path / "x.onnx"), str(tmp_path), target="gpu")


def test_export_refuses_an_engine_of_a_cpu_target(tmp_path):
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.export.api import export

    with pytest.raises(UserError, match="builds no TensorRT engine"):
        export(None, config="tiny", output=str(tmp_path / "x.onnx"), int8=True, images=str(tmp_path),
               target="cpu", format="engine", log=lambda *a, **k: None)
