"""The whole pre-decode chain against the official test-time flow (pipeline_vectors.npz, 3 cases).

image -> core.preprocess (official sizing + warp + normalisation) -> exported ONNX (flip test and
stride-2 averaging in the graph) on ONNX Runtime -> decode.aggregate (projection to input size,
multi-scale averaging, tag concatenation) must give the official final heatmaps and tags: pA in
full, pB (scales 2, 1, 0.5, no flip) and pC (scales 2, 1, flip) at 4096 sampled positions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from higherhrnet_trt.core.preprocess import preprocess  # noqa: E402
from higherhrnet_trt.decode.aggregate import aggregate  # noqa: E402
from higherhrnet_trt.export.onnx_export import export_onnx  # noqa: E402
from higherhrnet_trt.runtime.backends import create_backend  # noqa: E402

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

TOL = 1e-4


@pytest.fixture(scope="module")
def vectors(reference_dir):
    meta = {m["case"]: m for m in json.loads((reference_dir / "pipeline_vectors_meta.json").read_text())}
    with np.load(reference_dir / "pipeline_vectors.npz") as z:
        return meta, {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """Dynamic-shape tiny exports, with and without the flip test."""
    folder = tmp_path_factory.mktemp("pv")
    out = {}
    for flip in (True, False):
        path = folder / f"tiny_flip{int(flip)}.onnx"
        export_onnx(tiny_model, str(path), input_size=128, dynamic=True, flip=flip, check=False)
        out[flip] = str(path)
    return out


@pytest.mark.parametrize("case", ["pA", "pB", "pC"])
def test_official_final_maps(case, vectors, models):
    meta, z = vectors
    m = meta[case]
    scales = m["scale_factor"]
    image_bgr = np.ascontiguousarray(z[f"{case}_image"][:, :, ::-1])  # stored RGB, as valid.py has it
    inputs, geometry = preprocess(image_bgr, m["input_size"], scales)
    assert tuple(geometry.base_size_wh) == tuple(z[f"{case}_base_size"])
    np.testing.assert_allclose(geometry.center, z[f"{case}_center"], atol=1e-9)
    np.testing.assert_allclose(geometry.scale, z[f"{case}_scale"], atol=1e-9)
    outputs = []
    with create_backend(models[m["flip_test"]]) as backend:
        for s, x in inputs:
            heat, tags = backend.infer({backend.inputs[0].name: x}).values()
            outputs.append((s, heat, tags))
    final_heatmaps, final_tags = aggregate(outputs, geometry.base_size_wh)
    if case == "pA":
        assert np.abs(final_heatmaps - z["pA_final_heatmaps"]).max() < TOL
        assert np.abs(final_tags - z["pA_tags"]).max() < TOL
    else:
        j, y, x = z[f"{case}_sample_idx"].T
        assert np.abs(final_heatmaps[0, j, y, x] - z[f"{case}_heatmaps_sampled"]).max() < TOL
        assert np.abs(final_tags[0, j, y, x] - z[f"{case}_tags_sampled"]).max() < TOL
    flat = final_heatmaps[0].reshape(final_heatmaps.shape[1], -1)
    np.testing.assert_allclose(flat.max(1), z[f"{case}_heatmaps_joint_max"], atol=TOL)
