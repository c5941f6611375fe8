"""runtime.backends.tensorrt_backend: engines behind the Backend interface.

On CPU machines: the checks that run before any GPU work (sidecar missing / stale, no driver) are
exercised on a real TensorRT-RTX engine of the tiny network. On a GPU (markers gpu + tensorrt_rtx /
tensorrt): the engine's outputs against ONNX Runtime, and the whole Pipeline on an engine.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.runtime.backends import create_backend
from higherhrnet_trt.runtime.backends import tensorrt_backend as trt_backend

rtx = pytest.mark.tensorrt_rtx


@pytest.fixture(scope="module")
def rtx_engine(tiny_onnx, tmp_path_factory):
    from higherhrnet_trt.engine.build import build_engine

    engine = tmp_path_factory.mktemp("trt") / "tiny.engine"
    build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx", progress=False, log=lambda *_: None)
    return engine


def test_engine_extension_selects_tensorrt(tmp_path):
    backend = create_backend(str(tmp_path / "m.engine"))
    assert isinstance(backend, trt_backend.TensorRTBackend) and not backend.is_active
    assert isinstance(create_backend(str(tmp_path / "m.engine"), backend="tensorrt-rtx"),
                      trt_backend.TensorRTRTXBackend)


def test_missing_engine_and_sidecar_are_one_line(tmp_path):
    with pytest.raises(UserError, match="engine file not found"):
        create_backend(str(tmp_path / "nope.engine")).activate()
    lone = tmp_path / "lone.engine"
    lone.write_bytes(b"\0" * 64)
    with pytest.raises(UserError, match=r"lone\.engine\.json not found.*higherhrnet-trt build"):
        create_backend(str(lone)).activate()


@rtx
def test_stale_sidecar_names_the_rebuild(rtx_engine, tmp_path):
    import shutil

    copy = tmp_path / "copy.engine"
    shutil.copy(rtx_engine, copy)
    shutil.copy(str(rtx_engine) + ".json", str(copy) + ".json")
    with open(copy, "ab") as f:
        f.write(b"x")  # a different engine than the sidecar describes
    with pytest.raises(UserError, match="rebuild it: higherhrnet-trt build"):
        create_backend(str(copy)).activate()


@rtx
def test_no_driver_is_one_line(rtx_engine, monkeypatch):
    from higherhrnet_trt.runtime.backends import tensorrt_backend

    monkeypatch.setattr(tensorrt_backend, "query_gpu", lambda index=0: None)
    with pytest.raises(BackendUnavailable) as e:
        create_backend(str(rtx_engine)).activate()
    # An engine cannot run on the CPU: the advice names the ONNX it was built from.
    assert "no NVIDIA driver or GPU" in str(e.value) and "with --backend onnxruntime" in str(e.value)
    assert "\n" not in str(e.value)


@rtx
@pytest.mark.gpu
def test_rtx_engine_matches_onnxruntime(rtx_engine, tiny_onnx):
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    with create_backend(str(tiny_onnx)) as ort, create_backend(str(rtx_engine)) as trt:
        assert [s.name for s in trt.outputs] == [s.name for s in ort.outputs]
        assert trt.metadata == ort.metadata
        ref = ort.infer({ort.input_name: x})
        out = trt.infer({trt.input_name: x})
    for name in ref:
        assert out[name].shape == ref[name].shape
        scale = max(float(np.abs(ref[name]).max()), 1e-6)
        assert float(np.abs(out[name] - ref[name]).max()) / scale < 1e-2, name


@rtx
@pytest.mark.gpu
def test_pipeline_runs_on_an_engine(rtx_engine, tiny_onnx):
    from higherhrnet_trt.runtime.pipeline import Pipeline

    frame = np.random.default_rng(1).integers(0, 255, (120, 160, 3), np.uint8)
    with Pipeline(str(tiny_onnx)) as ref, Pipeline(str(rtx_engine)) as eng:
        a, b = ref.predict(frame), eng.predict(frame)
    assert os.path.basename(str(rtx_engine)).endswith(".engine")
    # The same people as ONNX Runtime finds in the same frame (fp32 engine: rounding apart).
    assert len(a) == len(b) and a.keypoints.shape[1:] == b.keypoints.shape[1:]
    np.testing.assert_allclose(b.keypoints[..., :2], a.keypoints[..., :2], atol=0.05)
    np.testing.assert_allclose(b.keypoints[..., 2], a.keypoints[..., 2], atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-3)


def test_backend_offers_the_bench_stages(tmp_path):
    """benchmarks.bench times H2D / GPU compute / D2H apart on backends with these methods."""
    from higherhrnet_trt.benchmarks.bench import is_staged

    assert is_staged(create_backend(str(tmp_path / "m.engine")))


@rtx
@pytest.mark.gpu
def test_cuda_graph_replay_matches(rtx_engine):
    x = np.random.default_rng(2).normal(size=(1, 3, 128, 128)).astype(np.float32)
    with create_backend(str(rtx_engine)) as trt:
        ref = trt.infer({trt.input_name: x})
        trt.enable_cuda_graph()
        out = trt.infer({trt.input_name: x})
        assert trt.device_memory_bytes > 0
    for name in ref:
        np.testing.assert_array_equal(out[name], ref[name])
