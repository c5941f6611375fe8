"""Official pre-processing (runtime/preprocess.py) against the recorded official pipeline vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from higherhrnet_trt.core import preprocess as P  # noqa: E402
from higherhrnet_trt.core.metadata import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


@pytest.fixture(scope="module")
def pipeline(reference_dir):
    meta = json.loads((reference_dir / "pipeline_vectors_meta.json").read_text())
    with np.load(reference_dir / "pipeline_vectors.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def _key(s: float) -> str:
    return f"s{s:g}"  # 1.0 -> s1, 0.5 -> s0.5


@pytest.mark.opencv5
def test_resize_align_bit_exact(pipeline):
    """Warped inputs equal the official resize_align_multi_scale output to the last grey level."""
    meta, z = pipeline
    checked = 0
    for m in meta:
        case, image = m["case"], z[f"{m['case']}_image"]
        for s in m["scale_factor"]:
            resized, center, scale = P.resize_align(image, m["input_size"], s, min(m["scale_factor"]))
            ref = z[f"{case}_resized_{_key(s)}"]
            assert resized.dtype == np.uint8 and resized.shape == ref.shape, (case, s)
            diff = np.abs(resized.astype(np.int16) - ref).max()
            assert diff == 0, f"{case} scale {s}: {int((resized != ref).sum())} values differ, max {diff}"
            np.testing.assert_array_equal(center, z[f"{case}_center"])
            checked += 1
    assert checked == 6


def test_warp_matrix_bit_exact(reference_dir):
    """OpenCV solving the official float32 points gives the official matrices bit for bit."""
    entries = json.loads((reference_dir / "sizing_vectors.json").read_text())
    n = 0
    for e in entries:
        for p in e["per_scale"]:
            m = P.warp_matrix(np.array(p["center"]), np.array(p["scale"]), p["size_wh"])
            np.testing.assert_array_equal(m, np.array(p["warp_affine"]))
            n += 1
    assert n == 270


@pytest.mark.opencv5
def test_preprocess_inputs_and_geometry(pipeline):
    """BGR frame in -> the official normalised inputs (largest scale first) and geometry."""
    meta, z = pipeline
    for m in meta:
        case, rgb = m["case"], z[f"{m['case']}_image"]
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        inputs, geo = P.preprocess(bgr, m["input_size"], m["scale_factor"])
        assert [s for s, _ in inputs] == sorted(m["scale_factor"], reverse=True)
        assert geo.image_wh == (rgb.shape[1], rgb.shape[0])
        assert list(geo.base_size_wh) == m["base_size_wh"] == z[f"{case}_base_size"].tolist()
        np.testing.assert_array_equal(geo.center, z[f"{case}_center"])
        np.testing.assert_array_equal(geo.scale, z[f"{case}_scale"])
        for s, x in inputs:
            key = _key(s)
            assert x.dtype == np.float32 and x.flags.c_contiguous
            assert list(x.shape) == m["inputs"][key], (case, key)
            np.testing.assert_allclose(
                x.ravel()[:3], m["input_first_values"][key], atol=1e-6, rtol=0, err_msg=f"{case} {key}"
            )
            # Whole tensor: torchvision's float32 arithmetic on the official warped pixels, exactly.
            ref = z[f"{case}_resized_{key}"].astype(np.float32).transpose(2, 0, 1)[None]
            mean = np.asarray(IMAGENET_MEAN, np.float32)[None, :, None, None]
            std = np.asarray(IMAGENET_STD, np.float32)[None, :, None, None]
            np.testing.assert_array_equal(x, (ref / np.float32(255) - mean) / std)
        # The same frame given as RGB gives the same tensors.
        inputs_rgb, _ = P.preprocess(rgb, m["input_size"], m["scale_factor"], bgr=False)
        for (_, a), (_, b) in zip(inputs, inputs_rgb):
            np.testing.assert_array_equal(a, b)


def test_normalize_matches_torchvision_arithmetic():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    img[0, :3] = [[0, 0, 0], [255, 255, 255], [128, 7, 200]]
    x = P.normalize(img)
    # ToTensor (uint8 -> float32 / 255) then Normalize (sub_ mean, div_ std) in float32.
    t = torch.from_numpy(img.transpose(2, 0, 1).copy()).float().div(255)
    t = t.sub(torch.tensor(IMAGENET_MEAN)[:, None, None]).div(torch.tensor(IMAGENET_STD)[:, None, None])
    np.testing.assert_array_equal(x[0], t.numpy())
    # BGR: the swap is folded in.
    np.testing.assert_array_equal(P.normalize(np.ascontiguousarray(img[..., ::-1]), bgr=True), x)
    # Other constants, and a preallocated output.
    out = np.empty((1, 3, 37, 53), np.float32)
    y = P.normalize(img, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), out=out)
    assert y is out
    std = np.array([0.25, 0.5, 1.0], np.float32)
    ref = (img.astype(np.float32) / np.float32(255) - np.float32(0.5)) / std
    np.testing.assert_array_equal(y[0], ref.transpose(2, 0, 1))


def test_non_contiguous_and_odd_inputs():
    rng = np.random.default_rng(5)
    big = rng.integers(0, 256, (90, 161, 3), dtype=np.uint8)
    view = big[::2, 1::2]  # strided view, 45 x 80
    inputs, geo = P.preprocess(view, 64)
    inputs2, _ = P.preprocess(np.ascontiguousarray(view), 64)
    np.testing.assert_array_equal(inputs[0][1], inputs2[0][1])
    assert geo.base_size_wh == (128, 64)
    bad_images = (
        np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)
    )
    for bad in bad_images:
        with pytest.raises(ValueError):
            P.preprocess(bad, 64)
    with pytest.raises(ValueError):
        P.preprocess(big, 64, scales=())
    with pytest.raises(ValueError):
        P.normalize(big, out=np.empty((1, 3, 2, 2), np.float32))


def test_frame_geometry_maps_back(pipeline):
    meta, z = pipeline
    m = meta[0]
    _, geo = P.preprocess(z["pA_image"], m["input_size"], bgr=False)
    # Base-size map point (W/2, H/2) is the image point the warp centred: geometry.center.
    w, h = geo.base_size_wh
    got = geo.map_to_image(np.array([[w / 2.0, h / 2.0, 0.7]]))
    assert got.shape == (1, 3) and got[0, 2] == 0.7
    np.testing.assert_allclose(got[0, :2], geo.center, atol=1e-9)
    # On maps of half the size the same point is at (x + 0.5) / 2 - 0.5 (bilinear pixel centres).
    half = geo.map_to_image(np.array([[w / 4.0 - 0.25, h / 4.0 - 0.25]]), (w // 2, h // 2))
    np.testing.assert_allclose(half[0], geo.center, atol=1e-9)
