"""Shared fixtures: where the official reference data lives, and markers that skip cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _reference_dir() -> Path:
    env = os.environ.get("HIGHERHRNET_TRT_REFERENCE")
    return Path(env) if env else REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference (official manifests and vectors); set HIGHERHRNET_TRT_REFERENCE to move it."""
    path = _reference_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"official reference data not found at {path} (set HIGHERHRNET_TRT_REFERENCE)")
    return path


def pytest_collection_modifyitems(config, items):
    """Skip GPU / TensorRT tests with a reason when the hardware or library is absent."""
    import importlib.util

    def has(mod: str) -> bool:
        try:
            return importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            return False

    reasons = {}
    if not has("tensorrt"):
        reasons["tensorrt"] = "TensorRT (tensorrt module) is not installed on this machine"
    if not has("tensorrt_rtx"):
        reasons["tensorrt_rtx"] = "TensorRT-RTX (tensorrt_rtx module) is not installed"
    if not _gpu_available():
        reasons["gpu"] = "no NVIDIA GPU/driver on this machine"
    for item in items:
        for mark, why in reasons.items():
            if mark in item.keywords:
                item.add_marker(pytest.mark.skip(reason=why))


def _gpu_available() -> bool:
    import ctypes

    for lib in ("libcuda.so.1", "libcuda.so"):
        try:
            cuda = ctypes.CDLL(lib)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0:
            return count.value > 0
    return False


@pytest.fixture(scope="session")
def tiny_model(reference_dir):
    """The tiny reference HigherHRNet (official weights of tiny_official_state_dict.pt), eval mode."""
    torch = pytest.importorskip("torch")
    from higherhrnet_trt.export.model import build_model

    model = build_model("tiny")
    model.load_state_dict(
        torch.load(reference_dir / "tiny_official_state_dict.pt", weights_only=True), strict=True
    )
    return model


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    """tiny network exported once per session: static 1x3x128x128, flip test, aggregated outputs."""
    from higherhrnet_trt.export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny_128.onnx"
    export_onnx(tiny_model, str(path), input_size=128, flip=True)
    return path


@pytest.fixture(scope="session")
def tiny_onnx_dynamic(tiny_model, tmp_path_factory) -> Path:
    """tiny network with dynamic batch, height and width (multiples of 64), flip test."""
    from higherhrnet_trt.export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny_dynamic.onnx"
    export_onnx(tiny_model, str(path), input_size=128, dynamic=True, dynamic_batch=True, flip=True)
    return path


def write_noise_video(path: Path, frames: int = 5, size: tuple[int, int] = (160, 120)) -> Path:
    """An MJPG .avi of ``frames`` random frames of ``size`` (W, H): a video source for the CLI tests."""
    import cv2
    import numpy as np

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    rng = np.random.default_rng(1)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    w.release()
    return path


@pytest.fixture
def noise_video():
    """:func:`write_noise_video`, for tests."""
    return write_noise_video


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory) -> Path:
    """The bundled demo network (trained weights where bundled, else random) as the demo command
    exports it: batch 1, dynamic height and width, flip test (the Triton tests serve it)."""
    pytest.importorskip("torch")
    from higherhrnet_trt.core.files import DEMO_WEIGHTS, package_file
    from higherhrnet_trt.export.api import export

    weights = package_file(DEMO_WEIGHTS)
    path = tmp_path_factory.mktemp("demo") / "demo.onnx"
    # check=False: the export's own check against PyTorch is tested elsewhere (saves ~15 s here)
    export(weights if os.path.isfile(weights) else None, config="demo", output=str(path), dynamic=True,
           flip=True, check=False, log=lambda *a, **k: None)
    return path


@pytest.fixture(scope="session")
def demo_onnx_dynamic_batch(tmp_path_factory) -> Path:
    """The bundled trained demo network with dynamic batch, height and width and flip test: the
    several-sources tests check that a round's frames go through one network call."""
    pytest.importorskip("torch")
    from higherhrnet_trt.core.files import DEMO_WEIGHTS, package_file
    from higherhrnet_trt.export.api import export

    weights = package_file(DEMO_WEIGHTS)
    if not os.path.isfile(weights):
        pytest.skip(f"demo weights {weights} missing")
    path = tmp_path_factory.mktemp("demo") / "demo_dynamic_batch.onnx"
    export(weights, config="demo", output=str(path), dynamic=True, dynamic_batch=True, flip=True,
           check=False, log=lambda *a, **k: None)
    return path
