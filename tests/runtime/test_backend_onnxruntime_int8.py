"""ONNX Runtime backend on INT8 Q/DQ files from ``calibrate``: the graph optimisation level it
picks (runtime/backends/onnxruntime_backend.needed_level) and the error that level gives against
the fp32 file's outputs.

Why it matters: ONNX Runtime's WeightBiasQuantization pass (level basic and above) rounds each
quantized Conv's int32 bias through fp16 in calibrate's default fp16 Q/DQ graphs; 123 of the demo
INT8 file's 6003 biases overflow. Measured (40 calibration scenes of seed 3000, 32 calibration
images, ORT 1.32): tags mean |error| against fp32 0.051 with optimisation disabled, 0.102 at "all".
Here (16 calibration scenes, 8 unseen scenes of seed 3100): 0.048 disabled, 0.163 at "basic" and
"all"; the test asserts < 0.075 for what the backend picks by itself, i.e. it fails at "all" (as it
did before the backend chose the level from the file's metadata).

The demo network with its bundled trained weights: random weights show nothing (batch norm at its
initial values folds into zero Conv biases, which the export drops: a random W32-512 file has 2
biased Convs of 302, the demo's 137 of 137; measured: the same error at both levels).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("modelopt.onnx.quantization", reason="INT8 calibration needs nvidia-modelopt")
pytest.importorskip("cv2")

from higherhrnet_trt.runtime.backends import create_backend  # noqa: E402

WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "..", "export", "assets", "demo_w16_256.pth")
#: tags mean |error| against fp32: 0.048 with ORT optimisation disabled, 0.163 at "all" (above).
TAGS_MEAN_ERR_MAX = 0.075


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    """(fp32 ONNX, INT8 fp16-Q/DQ ONNX, 8 unseen frames) of the trained demo network, 256x256."""
    if not os.path.isfile(WEIGHTS):
        pytest.skip(f"no trained demo weights at {WEIGHTS}")
    import cv2

    from higherhrnet_trt.benchmarks.scenes import generate_dataset
    from higherhrnet_trt.export.api import export
    from higherhrnet_trt.export.quantize import quantize_int8

    tmp = tmp_path_factory.mktemp("ort_int8")
    fp32, int8 = str(tmp / "demo.onnx"), str(tmp / "demo_int8.onnx")
    export(WEIGHTS, config="demo", output=fp32, input_size=256, flip=True, check=False,
           log=lambda *a, **k: None)
    generate_dataset(str(tmp / "calib"), 16, seed=3000)
    with warnings.catch_warnings():  # "calibrated on 16 images": few on purpose (time)
        warnings.simplefilter("ignore")
        quantize_int8(fp32, int8, str(tmp / "calib" / "images"), num_images=16, holdout=0,
                      high_precision="fp16", cache_dir=str(tmp / "cache"), progress=False)
    generate_dataset(str(tmp / "test"), 8, seed=3100)
    folder = tmp / "test" / "images"
    frames = [cv2.imread(str(folder / n)) for n in sorted(os.listdir(folder))]
    return fp32, int8, frames


def _outputs(path: str, frames, **options) -> tuple[dict[str, np.ndarray], str]:
    """Network outputs of every frame (letterboxed into the 256x256 input, as the runtime feeds
    static models), stacked; and the level the backend ran at."""
    from higherhrnet_trt.export.calib_data import fixed_size_input

    out: dict[str, list[np.ndarray]] = {}
    with create_backend(path, threads=1, **options) as backend:
        meta = backend.metadata
        for frame in frames:
            x = fixed_size_input(frame, (256, 256), meta.mean, meta.std)  # BGR, as read
            for k, v in backend.infer({"image": x}).items():
                out.setdefault(k, []).append(np.asarray(v, np.float64))
        used = getattr(backend, "graph_optimization_used", None)
    return {k: np.concatenate(v) for k, v in out.items()}, used


def test_int8_runs_as_accurately_as_it_can_by_default(demo_files):
    """The backend's own choice for an INT8 file keeps the tags' error against fp32 at the level
    of ORT without optimisation, not the doubled one of its bias quantization pass."""
    fp32, int8, frames = demo_files
    ref, ref_level = _outputs(fp32, frames)
    got, level = _outputs(int8, frames)
    tags_err = float(np.abs(got["tags"] - ref["tags"]).mean())
    heat_err = float(np.abs(got["heatmaps"] - ref["heatmaps"]).mean())
    assert tags_err < TAGS_MEAN_ERR_MAX, (tags_err, heat_err, level)
    # INT8, not fp32 run twice: the error is there, at calibration's scale (measured 3.8e-3)
    assert 1e-4 < heat_err < 1e-2, heat_err
    assert (ref_level, level) == ("all", "disable")  # fp32 files keep ORT's full optimisation


def test_user_override_is_used(demo_files):
    """--graph-optimization / graph_optimization= is what the session runs at, INT8 or not."""
    _, int8, frames = demo_files
    _, level = _outputs(int8, frames[:1], graph_optimization="all")
    assert level == "all"


def test_needed_level_reads_precision():
    from higherhrnet_trt.core.metadata import ModelMeta
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import needed_level

    assert needed_level(ModelMeta(precision="int8")) == "disable"
    assert needed_level(ModelMeta(precision="fp16")) == "all"
    assert needed_level(ModelMeta()) == "all"
