"""runtime.gpu_pipeline: frame -> GPU pre-processing -> network -> GPU decode, optionally one CUDA graph.

Reference: the NumPy pipeline on the same network (same engine, or the same checkpoint through the
torch backend), so any difference is the GPU pre-processing or decode. Engine tests need a GPU and
TensorRT-RTX (or TensorRT), checkpoint tests a GPU and PyTorch with CUDA (what a GPU without TensorRT,
e.g. the lent H200, has): each skips cleanly without.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def rtx_engine(tiny_onnx, tmp_path_factory):
    from higherhrnet_trt.engine.build import build_engine

    engine = tmp_path_factory.mktemp("trt") / "tiny.engine"
    build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx", progress=False, log=lambda *_: None)
    return engine


def _frames(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_pth(tiny_model, tmp_path_factory):
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("pth") / "tiny.pth"
    torch.save(tiny_model.state_dict(), path)
    return path


def _needs_torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU (CPU-only build)")


def test_checkpoints_pick_the_torch_network():
    """No GPU needed: construction only chooses the backend (activation needs the GPU)."""
    pytest.importorskip("torch")
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline

    assert GpuPipeline("model.pth").backend.name == "torch"
    assert GpuPipeline("model.pth.tar").backend.name == "torch"


@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_gpu_pipeline_runs_a_checkpoint_like_the_numpy_pipeline(tiny_pth, cuda_graph):
    _needs_torch_cuda()
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline
    from higherhrnet_trt.runtime.pipeline import Pipeline

    # fp32 on both sides: the same network outputs, so differences are the GPU steps'.
    with Pipeline(str(tiny_pth), config="tiny", device="cuda", half=False) as ref, \
            GpuPipeline(str(tiny_pth), cuda_graph=cuda_graph, config="tiny", half=False) as gpu:
        for frame in _frames() + [np.random.default_rng(1).integers(0, 255, (96, 160, 3), np.uint8)]:
            a, b = ref.predict(frame), gpu.predict(frame)
            assert len(a) == len(b)
            np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-2)
            np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)


@pytest.mark.gpu
def test_gpu_pipeline_checkpoint_takes_device_frames(tiny_pth):
    _needs_torch_cuda()
    torch = pytest.importorskip("torch")
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline

    frame = _frames(1)[0]
    with GpuPipeline(str(tiny_pth), config="tiny", half=False) as gpu:
        host = gpu.predict(frame)
        dev = gpu.predict(torch.from_numpy(frame).cuda())
    np.testing.assert_array_equal(dev.keypoints, host.keypoints)


@pytest.mark.gpu
@pytest.mark.tensorrt_rtx
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


@pytest.mark.gpu
@pytest.mark.tensorrt_rtx
def test_gpu_pipeline_takes_device_frames(rtx_engine):
    cupy = pytest.importorskip("cupy")
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline

    frame = _frames(1)[0]
    with GpuPipeline(str(rtx_engine), cuda_graph=True) as gpu:
        host = gpu.predict(frame)
        dev = gpu.predict(cupy.asarray(frame))
    np.testing.assert_array_equal(dev.keypoints, host.keypoints)


@pytest.mark.gpu
@pytest.mark.tensorrt_rtx
def test_gpu_pipeline_keeps_the_cpu_contract(rtx_engine):
    """Grey and BGRA frames as Pipeline converts them, float frames refused (not read as zeros),
    and a frame of another aspect letterboxed into the fixed 128x128 engine like Pipeline does."""
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.runtime.gpu_pipeline import GpuPipeline
    from higherhrnet_trt.runtime.pipeline import Pipeline

    rng = np.random.default_rng(3)
    wide = rng.integers(0, 255, (96, 160, 3), np.uint8)  # official size 128x192 != 128x128: letterbox
    grey = rng.integers(0, 255, (128, 128), np.uint8)
    bgra = rng.integers(0, 255, (128, 128, 4), np.uint8)
    with Pipeline(str(rtx_engine)) as ref, GpuPipeline(str(rtx_engine)) as gpu:
        for frame in (wide, grey, bgra):
            a, b = ref.predict(frame), gpu.predict(frame)
            assert len(a) == len(b)
            np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-2)
        with pytest.raises(UserError, match="uint8"):
            gpu.predict(wide.astype(np.float32) / 255)
