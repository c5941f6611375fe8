"""engine.build: real engines of the tiny reference network.

TensorRT-RTX builds ahead of time on a CPU, so fp32, fp16 (from the AutoCast ONNX), INT8 (from
the Q/DQ ONNX) and dynamic-shape engines are built here for real and their sidecars checked.
TensorRT 10/11 builds need a GPU: those tests carry the ``tensorrt`` and ``gpu`` markers.
"""

from __future__ import annotations

import os
import warnings

import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import sha256_file
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.engine import build as build_mod
from higherhrnet_trt.engine.build import build_engine, parse_shape
from higherhrnet_trt.engine.onnx_info import summarize
from higherhrnet_trt.engine.sidecar import check_compatible, read_sidecar

rtx = pytest.mark.tensorrt_rtx


@pytest.fixture(scope="module")
def fp16_onnx(tiny_onnx, tmp_path_factory):
    pytest.importorskip("modelopt.onnx.autocast", reason="nvidia-modelopt is not installed")
    from higherhrnet_trt.export.fp16 import convert_fp16

    out = tmp_path_factory.mktemp("fp16") / "tiny.fp16.onnx"
    convert_fp16(str(tiny_onnx), str(out))
    return out


@pytest.fixture(scope="module")
def int8_onnx(tiny_onnx, tmp_path_factory):
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    from higherhrnet_trt.export.quantize import quantize_int8
    from tests.export.test_quantize import make_images

    base = tmp_path_factory.getbasetemp()
    images = make_images(base / "calib_images", 24, broken=1)  # same frames as test_quantize
    out = tmp_path_factory.mktemp("int8") / "tiny.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few synthetic frames: the warning is tested elsewhere
        quantize_int8(str(tiny_onnx), str(out), str(images), num_images=512, method="max", holdout=4,
                      cache_dir=str(base / "calib_cache"), progress=False)
    return out


def _onnx_meta(path) -> ModelMeta:
    return summarize(str(path)).meta()


def _check_sidecar(engine, onnx_path, precision):
    import tensorrt_rtx

    s = read_sidecar(str(engine))
    assert s.flavor == "tensorrt-rtx" and s.version == tensorrt_rtx.__version__
    assert s.gpu == s.compute_capability == "ahead-of-time" and s.ahead_of_time
    assert "8.7" not in s.target_compute_capabilities and "8.6" in s.target_compute_capabilities
    assert s.precision == precision and s.strongly_typed and s.builder_flags == []
    assert s.onnx == {"path": str(onnx_path), "sha256": sha256_file(str(onnx_path))}
    assert s.meta() == _onnx_meta(onnx_path)
    assert s.engine_bytes == os.path.getsize(engine) and s.engine_sha256 == sha256_file(str(engine))
    assert [t["name"] for t in s.inputs] == ["image"]
    assert [t["name"] for t in s.outputs] == ["heatmaps", "tags"]
    assert s.rebuild_command().startswith(f"higherhrnet-trt build {onnx_path} -o {engine}")
    assert check_compatible(s, "tensorrt-rtx", tensorrt_rtx.__version__, None)  # only the no-GPU note
    return s


def test_parse_shape():
    assert parse_shape("1x3x512x704") == (1, 3, 512, 704)
    assert parse_shape("image:2x3x256x256") == (2, 3, 256, 256)
    assert parse_shape((1, 3, 64, 64)) == (1, 3, 64, 64) and parse_shape(None) is None
    with pytest.raises(UserError):
        parse_shape("1x3xax64")
    with pytest.raises(UserError):
        parse_shape("0x3x64x64")


@rtx
def test_build_fp32_static(tiny_onnx, tmp_path, monkeypatch):
    monitors = []
    original = build_mod._make_progress_monitor
    monkeypatch.setattr(build_mod, "_make_progress_monitor",
                        lambda trt: monitors.append(original(trt)) or monitors[-1])
    engine = tmp_path / "tiny.engine"
    report = build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx", progress=True)
    assert engine.is_file() and report.sidecar_path == str(engine) + ".json"
    s = _check_sidecar(engine, tiny_onnx, "fp32")
    assert s.onnx_precision == "fp32" and s.shapes == {}
    assert s.inputs[0]["shape"] == [1, 3, 128, 128] and s.inputs[0]["dtype"] == "float32"
    assert s.outputs[1]["shape"] == [1, 17, 64, 64, 2]
    # The build reported its phases through IProgressMonitor.
    assert len(monitors) == 1 and monitors[0].root is not None
    assert "fp32" in report.summary() and "ahead-of-time" in report.summary()


@rtx
def test_build_fp16_from_autocast_onnx(fp16_onnx, tmp_path):
    engine = tmp_path / "tiny_fp16.plan"
    build_engine(str(fp16_onnx), str(engine), backend="tensorrt-rtx", progress=False)
    s = _check_sidecar(engine, fp16_onnx, "fp16")
    assert s.onnx_precision == "fp16" and s.model["precision"] == "fp16"
    assert s.inputs[0]["dtype"] == "float32"  # I/O kept fp32 by convert_fp16


@rtx
def test_build_int8_from_qdq_onnx(int8_onnx, tmp_path):
    engine = tmp_path / "tiny_int8.engine"
    report = build_engine(str(int8_onnx), str(engine), backend="tensorrt-rtx", int8=True, progress=False)
    s = _check_sidecar(engine, int8_onnx, "int8+fp16")
    assert s.onnx_precision == "int8" and s.model["precision"] == "int8"
    assert any("--precision int8 not needed" in n for n in report.notes)


@rtx
def test_build_dynamic_profile(tiny_onnx_dynamic, tmp_path):
    engine = tmp_path / "tiny_dyn.engine"
    build_engine(str(tiny_onnx_dynamic), str(engine), backend="tensorrt-rtx", progress=False,
                 min_shape="1x3x64x64", opt_shape="1x3x128x192", max_shape="2x3x256x256")
    s = _check_sidecar(engine, tiny_onnx_dynamic, "fp32")
    assert s.shapes == {"image": {"min": [1, 3, 64, 64], "opt": [1, 3, 128, 192],
                                  "max": [2, 3, 256, 256]}}
    assert s.inputs[0]["shape"] == [-1, 3, -1, -1]
    assert "--max-shape 2x3x256x256" in s.rebuild_command()
    # No shapes given: a default profile from the model's input size (128), with a note.
    engine2 = tmp_path / "tiny_dyn_default.engine"
    report = build_engine(str(tiny_onnx_dynamic), str(engine2), backend="tensorrt-rtx", progress=False)
    assert report.shapes["image"] == {"min": [1, 3, 64, 64], "opt": [1, 3, 128, 128],
                                      "max": [1, 3, 256, 256]}
    assert any("default profile" in n for n in report.notes)


@rtx
def test_precision_flags_are_user_errors_on_rtx(tiny_onnx, fp16_onnx, tmp_path):
    engine = str(tmp_path / "x.engine")
    with pytest.raises(UserError,
                       match=r"--precision fp16 is a TensorRT 10 builder flag .*'higherhrnet-trt convert"):
        build_engine(str(tiny_onnx), engine, backend="tensorrt-rtx", fp16=True)
    with pytest.raises(UserError, match=r"--precision int8 needs a Q/DQ ONNX .*'higherhrnet-trt calibrate"):
        build_engine(str(tiny_onnx), engine, backend="tensorrt-rtx", int8=True)
    with pytest.raises(UserError, match="--precision int8 needs a Q/DQ ONNX"):
        build_engine(str(fp16_onnx), engine, backend="tensorrt-rtx", int8=True)
    with pytest.raises(UserError, match="reports no DLA"):
        build_engine(str(fp16_onnx), engine, backend="tensorrt-rtx", dla_core=0)
    assert not os.path.exists(engine)


@rtx
def test_shape_and_option_errors(tiny_onnx, tiny_onnx_dynamic, tmp_path):
    engine = str(tmp_path / "x.engine")
    with pytest.raises(UserError, match="static input 1x3x128x128.*--dynamic"):
        build_engine(str(tiny_onnx), engine, backend="tensorrt-rtx", opt_shape="1x3x256x256")
    with pytest.raises(UserError, match="--opt-shape 1x3x100x128: height and width must be multiples of 64"):
        build_engine(str(tiny_onnx_dynamic), engine, backend="tensorrt-rtx", opt_shape="1x3x100x128")
    with pytest.raises(UserError, match="min <= opt <= max"):
        build_engine(str(tiny_onnx_dynamic), engine, backend="tensorrt-rtx",
                     min_shape="1x3x256x256", opt_shape="1x3x128x128", max_shape="1x3x512x512")
    with pytest.raises(UserError, match="axis 1 is fixed to 3"):
        build_engine(str(tiny_onnx_dynamic), engine, backend="tensorrt-rtx", opt_shape="1x4x128x128")
    with pytest.raises(UserError, match="must end in"):
        build_engine(str(tiny_onnx), str(tmp_path / "x.onnx2"), backend="tensorrt-rtx")
    with pytest.raises(UserError, match="only applies with --dla-core"):
        build_engine(str(tiny_onnx), engine, backend="tensorrt-rtx", gpu_fallback=True)
    with pytest.raises(UserError, match="ONNX file not found"):
        build_engine(str(tmp_path / "missing.onnx"), engine, backend="tensorrt-rtx")


@rtx
def test_options_reach_the_sidecar(tiny_onnx, tmp_path):
    engine = tmp_path / "opts.engine"
    report = build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx", workspace=512,
                          optimization_level=2, timing_cache=str(tmp_path / "tc.bin"), progress=False)
    s = read_sidecar(str(engine))
    assert not s.version_compatible and s.build_args["workspace"] == 512
    assert s.build_args["optimization_level"] == 2
    assert any("--timing-cache ignored" in n for n in report.notes)
    assert "--workspace 512 --timing-cache" in s.rebuild_command()
    assert s.rebuild_command().endswith("--optimization-level 2")
    # TensorRT-RTX's pip package has no lean runtime: version-compatible builds fail (measured).
    with pytest.raises(UserError, match="--version-compatible is not available with TensorRT-RTX"):
        build_engine(str(tiny_onnx), str(tmp_path / "vc.engine"), backend="tensorrt-rtx",
                     version_compatible=True)


def test_onnx_without_metadata_is_a_user_error(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(UserError, match="no higherhrnet_trt metadata"):
        build_engine(str(path), str(tmp_path / "f.engine"))


# -- TensorRT 10 / 11 on a GPU (skipped here: no tensorrt module, no GPU) ---------------------------
@pytest.mark.tensorrt
@pytest.mark.gpu
def test_tensorrt_build_records_gpu(tiny_onnx, tmp_path):
    from higherhrnet_trt.core.gpu import query_gpu
    from higherhrnet_trt.engine.flavors import load_flavor

    flavor = load_flavor("tensorrt")
    engine = tmp_path / "trt.engine"
    build_engine(str(tiny_onnx), str(engine), backend="tensorrt", progress=False)
    s = read_sidecar(str(engine))
    gpu = query_gpu()
    assert s.flavor == "tensorrt" and s.version == flavor.version
    assert s.gpu == gpu.name and s.compute_capability == gpu.compute_capability
    assert check_compatible(s, "tensorrt", flavor.version, gpu) == []


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_tensorrt_fp16_flag_only_on_10(tiny_onnx, tmp_path):
    from higherhrnet_trt.engine.flavors import load_flavor

    flavor = load_flavor("tensorrt")
    engine = tmp_path / "flag.engine"
    if flavor.has_precision_flags:
        build_engine(str(tiny_onnx), str(engine), backend="tensorrt", fp16=True, progress=False)
        s = read_sidecar(str(engine))
        assert s.builder_flags == ["FP16"] and not s.strongly_typed
    else:
        with pytest.raises(UserError, match="higherhrnet-trt convert"):
            build_engine(str(tiny_onnx), str(engine), backend="tensorrt", fp16=True)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_tensorrt_builds_qdq_and_fp16_onnx_strongly_typed(int8_onnx, fp16_onnx, tmp_path):
    for onnx_path, precision in ((int8_onnx, "int8+fp16"), (fp16_onnx, "fp16")):
        engine = tmp_path / f"{precision}.engine"
        build_engine(str(onnx_path), str(engine), backend="tensorrt", progress=False)
        s = read_sidecar(str(engine))
        assert s.precision == precision and s.strongly_typed and s.builder_flags == []
