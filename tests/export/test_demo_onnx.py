"""The committed demo ONNX (runtime/assets/demo_w16_256.fp16.onnx, which ``demo`` runs without
torch) is what the bundled weights export to: the suite's fresh fp32 export of them, converted to
fp16 by the step ``python -m higherhrnet_trt.cli.demo_onnx`` uses, gives the same network outputs
on the bundled sample. Fails when the weights, the export or the conversion changed without the
file being regenerated."""

from __future__ import annotations

import os

import numpy as np
import pytest

from higherhrnet_trt.cli import demo as demo_cli
from higherhrnet_trt.core.files import SAMPLE_IMAGE
from higherhrnet_trt.export import demo_onnx as demo_export

pytest.importorskip("torch")
pytest.importorskip("modelopt")
cv2 = pytest.importorskip("cv2")


def network_outputs(path, image) -> list[np.ndarray]:
    """The ONNX's raw outputs on the image, resized to its 256 x 256 input (BGR -> RGB, [0, 1],
    ImageNet mean / std, as the runtime feeds it; the same input for both files is what matters)."""
    import onnxruntime as ort

    x = cv2.resize(image, (256, 256))[:, :, ::-1].astype(np.float32) / 255.0
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    return sess.run(None, {inp.name: x.astype(np.float16) if "16" in inp.type else x})


def test_committed_demo_onnx_is_a_fresh_export_of_the_bundled_weights(demo_onnx, tmp_path):
    """demo_onnx: the suite's fp32 export of the bundled weights (dynamic size, flip test)."""
    committed = demo_cli.package_file(demo_cli.DEMO_ONNX)
    assert committed == os.path.join(demo_export.package_root(), *demo_export.DEMO_ONNX)
    assert os.path.isfile(committed) and os.path.getsize(committed) < 10e6
    fresh = demo_export.fp16_from(str(demo_onnx), str(tmp_path / "fresh.onnx"), log=lambda *a: None)
    image = cv2.imread(demo_cli.package_file(SAMPLE_IMAGE))
    for got, want in zip(network_outputs(committed, image), network_outputs(fresh, image)):
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), atol=1e-3)
