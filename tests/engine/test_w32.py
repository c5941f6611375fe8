"""TensorRT-RTX engines from the real network (W32-512, random weights), fp16 and INT8 (issue 13.5).

The chain a user runs: export -> convert (fp16) / calibrate on 4 generated scenes (INT8) -> build
with TensorRT-RTX, ahead of time on this CPU. The engine inspector needs a GPU to deserialize an
engine; without one, the build keeps the inspector report the builder logs (ENGINE.layers.txt,
engine/layers.py), and that is what is checked here: every convolution the Q/DQ ONNX quantizes
(its input and weight both come from DequantizeLinear) must run with Int8 input and Int8 weights
in the engine, and the fp16 engine must have no Int8 at all. The reference is the ONNX graph,
counted with the onnx package, not the code under test.

Measured on the 2-core CI machine (RESULTS.md section 11): ~3.5 min for the whole module, peak
memory ~3.7 GB (calibration).
"""

from __future__ import annotations

import warnings

import pytest

pytestmark = [pytest.mark.tensorrt_rtx, pytest.mark.slow]


def quantized_convs(onnx_path) -> dict[str, int]:
    """Conv / ConvTranspose nodes of a Q/DQ ONNX whose data input and weight both come from
    DequantizeLinear (what TensorRT should run in INT8), by op type."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    counts = {"Conv": 0, "ConvTranspose": 0}
    for node in graph.node:
        if node.op_type in counts and all(producer.get(x) == "DequantizeLinear" for x in node.input[:2]):
            counts[node.op_type] += 1
    return counts


@pytest.fixture(scope="module")
def w32(tmp_path_factory) -> dict:
    """W32-512 fp32 (random weights), its fp16 and INT8 (4 scenes, max) ONNX, and both engines."""
    pytest.importorskip("torch")
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    from higherhrnet_trt.benchmarks.scenes import generate_dataset
    from higherhrnet_trt.engine.build import build_engine
    from higherhrnet_trt.export.api import export
    from higherhrnet_trt.export.fp16 import convert_fp16
    from higherhrnet_trt.export.quantize import quantize_int8

    d = tmp_path_factory.mktemp("w32")
    fp32 = d / "w32.onnx"
    # check=False: the export's check against PyTorch is tested at small scale elsewhere.
    export(None, config="w32_512", output=str(fp32), check=False, log=lambda *a, **k: None)
    convert_fp16(str(fp32), str(d / "w32.fp16.onnx"), num_check=4)
    generate_dataset(str(d / "scenes"), 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4 images: the few-images warning is tested elsewhere
        quantize_int8(str(fp32), str(d / "w32.int8.onnx"), str(d / "scenes" / "images"), num_images=4,
                      holdout=1, cache_dir=str(d / "calib_cache"), progress=False)
    out = {"dir": d}
    for name in ("fp16", "int8"):
        out[name] = build_engine(str(d / f"w32.{name}.onnx"), str(d / f"w32.{name}.engine"),
                                 backend="tensorrt-rtx", progress=False, log=None)
    return out


def test_int8_engine_runs_every_quantized_conv_in_int8(w32):
    from higherhrnet_trt.engine.layers import read_builder_layers, summarize

    ref = quantized_convs(w32["dir"] / "w32.int8.onnx")
    assert ref["Conv"] > 250  # HRNet-W32 has ~300 convolutions; calibration quantized them
    layers = read_builder_layers(w32["int8"].engine_path)
    assert layers, "the build kept no layer information"
    stats = summarize(layers)
    int8_convs = [x for x in layers if x["type"] == "correlation"
                  and x["inputs"][:1] == ["Int8"] and "Int8" in x["constants"]]
    assert len(int8_convs) == ref["Conv"] == stats.conv_int8_inputs == stats.conv_int8_weights
    # TensorRT-RTX 1.7.1 runs the one ConvTranspose in fp16 although the ONNX quantizes it
    # (its Int8 weights are dequantized to Half first): the only non-Int8 convolution.
    assert stats.convs == ref["Conv"] + ref["ConvTranspose"]
    assert [n for n in stats.non_int8_convs if "ConvTranspose" not in n] == []
    assert stats.precision["Int8"] > 200  # the quantize kernels between convolutions


def test_fp16_engine_has_no_int8(w32):
    from higherhrnet_trt.engine.layers import read_builder_layers, summarize

    assert quantized_convs(w32["dir"] / "w32.fp16.onnx") == {"Conv": 0, "ConvTranspose": 0}
    stats = summarize(read_builder_layers(w32["fp16"].engine_path))
    assert stats.convs > 250 and stats.conv_int8_inputs == stats.conv_int8_weights == 0
    assert stats.conv_half_weights == stats.convs and "Int8" not in stats.precision


def test_engine_sizes_and_precisions(w32):
    import os

    fp16, int8 = w32["fp16"], w32["int8"]
    assert (fp16.precision, int8.precision) == ("fp16", "int8+fp16")
    assert fp16.engine_bytes == os.path.getsize(fp16.engine_path)
    # W32-512's fp32 ONNX is 116 MB: an engine with fp16 or int8 weights is about half of it
    # (measured 62 and 67 MB: kernels too); fp32 weights would put it over 100 MB.
    for report in (fp16, int8):
        assert 40e6 < report.engine_bytes < 100e6


def test_info_layers_counts_the_int8_convolutions(w32, capsys):
    from higherhrnet_trt.engine.info import info

    ref = quantized_convs(w32["dir"] / "w32.int8.onnx")
    assert info(w32["int8"].engine_path, show_layers=True) == 0
    out = capsys.readouterr().out
    assert f"Int8 inputs {ref['Conv']}, Int8 weights {ref['Conv']}" in out
