"""PyTorch backend: same graph as the ONNX export, so the same outputs and metadata; one-line errors.

The CPU tests run everywhere torch is installed; the CUDA ones (FP16, CUDA graphs, device input)
are marked gpu and skip without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.runtime.backends import create_backend, default_backend_for  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pth(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("pth") / "tiny.pth"
    torch.save(tiny_model.state_dict(), path)
    return path


def _image(h: int = 128, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, h, w)).astype(np.float32)


def test_pth_picks_the_torch_backend(tmp_path):
    assert default_backend_for("w32.pth") == "torch"
    assert default_backend_for("model_best.pth.tar") == "torch"


def test_outputs_match_the_exported_onnx(tiny_pth, tiny_onnx):
    x = _image()
    with create_backend(str(tiny_pth), config="tiny", device="cpu") as tb:
        assert tb.name == "torch" and tb.device == "cpu"
        out = tb.infer({"image": x})
        meta = tb.metadata
    with create_backend(str(tiny_onnx)) as ob:
        ref = ob.infer({"image": x})
        ref_meta = ob.metadata
    for name in ("heatmaps", "tags"):
        assert out[name].dtype == np.float32 and out[name].shape == ref[name].shape
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-4, atol=1e-4)
    for field in ("dataset", "joint_names", "flip_index", "outputs", "flip", "heatmap_stride",
                  "tag_stride", "input_size", "config_name"):
        assert getattr(meta, field) == getattr(ref_meta, field), field
    assert meta.precision == "fp32" and meta.dynamic_shape


def test_pipeline_runs_a_checkpoint(tiny_pth):
    from higherhrnet_trt.runtime.pipeline import Pipeline

    frame = np.random.default_rng(1).integers(0, 255, (96, 160, 3), np.uint8)
    with Pipeline(str(tiny_pth), config="tiny", device="cpu") as pipe:
        poses = pipe.predict(frame)
    assert poses.keypoints.shape[1:] == (17, 3)


def test_device_input_path_on_cpu(tiny_pth):
    x = _image(seed=2)
    with create_backend(str(tiny_pth), config="tiny", device="cpu") as tb:
        heatmaps, tags = tb.infer_device(torch.from_numpy(x))
        ref = tb.infer({"image": x})
        with pytest.raises(UserError, match=r"\(N, 3, H, W\)"):
            tb.infer_device(torch.zeros(3, 128, 128))
    np.testing.assert_array_equal(heatmaps.numpy(), ref["heatmaps"])
    np.testing.assert_array_equal(tags.numpy(), ref["tags"])


def test_errors_are_one_line(tmp_path, tiny_pth):
    with pytest.raises(UserError, match="checkpoint not found"):
        create_backend(str(tmp_path / "none.pth"), device="cpu").activate()
    # tiny's widths fit only the tiny config: auto finds it; a wrong config names the fix.
    with create_backend(str(tiny_pth), device="cpu") as tb:
        assert tb.metadata.config_name == "tiny"
    with pytest.raises(UserError, match="W8 widths, config w32_512 is W32"):
        create_backend(str(tiny_pth), config="w32_512", device="cpu").activate()
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            create_backend(str(tiny_pth), config="tiny", device="cuda").activate()


@pytest.mark.gpu
def test_cuda_fp16_and_cuda_graph_match_fp32(tiny_pth):
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU")
    x = _image(seed=3)
    with create_backend(str(tiny_pth), config="tiny", device="cpu") as ref_b:
        ref = ref_b.infer({"image": x})
    with create_backend(str(tiny_pth), config="tiny", device="cuda", half=True) as fp16:
        out = fp16.infer({"image": x})
        assert fp16.metadata.precision == "fp16"
    with create_backend(str(tiny_pth), config="tiny", device="cuda", half=False, cuda_graph=True) as g:
        first = g.infer({"image": x})
        again = g.infer({"image": x})  # replayed
        dev = g.infer_device(torch.from_numpy(x).cuda())
    scale = np.abs(ref["heatmaps"]).max()
    assert np.abs(out["heatmaps"] - ref["heatmaps"]).max() <= 2e-2 * scale
    np.testing.assert_allclose(first["heatmaps"], ref["heatmaps"], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(first["heatmaps"], again["heatmaps"])
    np.testing.assert_array_equal(dev[0].cpu().numpy(), again["heatmaps"])
