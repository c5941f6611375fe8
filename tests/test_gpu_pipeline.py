"""runtime.gpu_pipeline: frame -> GPU pre-processing -> TensorRT -> GPU decode, optionally one CUDA graph.

Reference: the NumPy pipeline on the same engine (same network outputs), so any difference is the
GPU pre-processing or decode. Needs a GPU and TensorRT-RTX (or TensorRT): skipped cleanly without.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.tensorrt_rtx]


@pytest.fixture(scope="module")
def rtx_engine(tiny_onnx, tmp_path_factory):
    from higherhrnet_trt.engine.build import build_engine

    engine = tmp_path_factory.mktemp("trt") / "tiny.engine"
    build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx", progress=False, log=lambda *_: None)
    return engine


def _frames(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(n)]


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_gpu_pipeline_matches_numpy_pipeline(rtx_engine, cuda_graph):
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline
    from higherhrnet_trt.runtime.pipeline import Pipeline

    with Pipeline(str(rtx_engine)) as ref, GpuPipeline(str(rtx_engine), cuda_graph=cuda_graph) as gpu:
        for frame in _frames():
            a, b = ref.predict(frame), gpu.predict(frame)
            assert len(a) == len(b)
            np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-2)
            np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)


def test_gpu_pipeline_takes_device_frames(rtx_engine):
    cupy = pytest.importorskip("cupy")
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline

    frame = _frames(1)[0]
    with GpuPipeline(str(rtx_engine), cuda_graph=True) as gpu:
        host = gpu.predict(frame)
        dev = gpu.predict(cupy.asarray(frame))
    np.testing.assert_array_equal(dev.keypoints, host.keypoints)
