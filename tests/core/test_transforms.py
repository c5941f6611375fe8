"""Official test-time geometry (core/geometry.py) against the recorded official outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from higherhrnet_trt.core import geometry as T

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


@pytest.fixture(scope="module")
def sizing(reference_dir) -> list[dict]:
    entries = json.loads((reference_dir / "sizing_vectors.json").read_text())
    assert len(entries) == 120
    return entries


@pytest.fixture(scope="module")
def parser_vectors(reference_dir):
    with np.load(reference_dir / "parser_vectors.npz") as z:
        return {k: z[k] for k in z.files}


def test_sizing_vectors_sizes_centers_scales(sizing):
    """Every size, center and scale equals the official float numbers exactly (they feed the warp)."""
    checked = 0
    for e in sizing:
        image_wh = tuple(e["image_wh"])
        min_scale = min(e["scale_factor"])
        size, center, scale = T.get_multi_scale_size(image_wh, e["input_size"], 1.0, min_scale)
        assert list(size) == e["base_size_wh"], e
        assert center.dtype == np.float64 and scale.dtype == np.float64
        assert center.tolist() == e["center"] and scale.tolist() == e["scale"], e
        assert [p["s"] for p in e["per_scale"]] == sorted(e["scale_factor"], reverse=True)
        for p in e["per_scale"]:
            size, center, scale = T.get_multi_scale_size(image_wh, e["input_size"], p["s"], min_scale)
            assert list(size) == p["size_wh"], (e["image_wh"], e["input_size"], p)
            assert center.tolist() == p["center"] and scale.tolist() == p["scale"], (e, p)
            checked += 1
    assert checked == 270


def test_sizing_vectors_warp_and_inverse_matrices(sizing):
    worst = 0.0
    for e in sizing:
        for p in e["per_scale"]:
            m = T.get_affine_transform(p["center"], p["scale"], p["size_wh"])
            assert m.shape == (2, 3) and m.dtype == np.float64
            worst = max(worst, float(np.abs(m - np.array(p["warp_affine"])).max()))
        # get_final_preds on maps of the base size, with the scale-1 geometry.
        inv = T.get_affine_transform(e["center"], e["scale"], e["base_size_wh"], inv=True)
        worst = max(worst, float(np.abs(inv - np.array(e["final_preds_inverse_affine"])).max()))
    # Same float32 points as the official code, a closed-form float64 solve instead of OpenCV's LU:
    # rounding-level differences only (preprocess.warp_matrix is bit-exact, see test_preprocess).
    assert worst < 1e-9


def test_affine_inverse_round_trip(sizing):
    for e in sizing[::7]:
        fwd = T.get_affine_transform(e["center"], e["scale"], e["base_size_wh"])
        inv = T.get_affine_transform(e["center"], e["scale"], e["base_size_wh"], inv=True)
        pts = np.array([[0.0, 0.0, 1.0], [e["image_wh"][0], e["image_wh"][1], 1.0], [3.5, 7.25, 1.0]])
        there = pts @ fwd.T
        back = np.c_[there, np.ones(3)] @ inv.T
        np.testing.assert_allclose(back, pts[:, :2], atol=1e-9)
        # Rotation 0: a pure zoom (same on both axes, up to the float32 rounding of the official
        # points) and shift.
        assert fwd[0, 1] == pytest.approx(0.0, abs=1e-12) and fwd[1, 0] == pytest.approx(0.0, abs=1e-12)
        assert fwd[0, 0] == pytest.approx(fwd[1, 1], rel=1e-6)


def test_integer_scale_sets_are_64_aligned():
    for wh in [(640, 480), (333, 1000), (33, 17), (1920, 1080)]:
        for input_size in (512, 640):
            for scales in ([1.0], [0.5, 1.0, 2.0], [1.0, 2.0]):
                base, _, _ = T.get_multi_scale_size(wh, input_size, 1.0, min(scales))
                for s in scales:
                    size, _, _ = T.get_multi_scale_size(wh, input_size, s, min(scales))
                    assert size[0] % 32 == 0 and size[1] % 32 == 0
                    assert size[0] * base[1] == size[1] * base[0]  # same aspect at every scale
                # The shorter image side gets input_size at scale 1 (when min scale * input is 64-aligned).
                assert min(base) == input_size


def test_parser_cases_final_preds(parser_vectors):
    """map_to_image reproduces the official get_final_preds for all 20 parser cases."""
    for i in range(20):
        k = f"case{i:02d}"
        grouped = parser_vectors[f"{k}_grouped_refined"]
        hm = parser_vectors[f"{k}_heatmaps"]
        before = grouped.copy()
        out = T.map_to_image(
            grouped, parser_vectors[f"{k}_center"], parser_vectors[f"{k}_scale"], (hm.shape[3], hm.shape[2])
        )
        ref = parser_vectors[f"{k}_final_preds"]
        assert out.shape == ref.shape and out.dtype == ref.dtype
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0, err_msg=k)
        np.testing.assert_array_equal(out[..., 2:], grouped[..., 2:])  # other columns untouched
        np.testing.assert_array_equal(grouped, before)  # input not modified


def test_map_to_image_shapes_and_dtypes():
    center, scale = np.array([320.0, 240.0]), np.array([3.3, 2.4])
    xy = np.array([[0.0, 0.0], [703.0, 511.0]])
    out = T.map_to_image(xy, center, scale, (704, 512))
    assert out.dtype == np.float64
    # 704 px cover 660 image px: zoom 16/15, image x = -10 + 0.9375 * x.
    np.testing.assert_allclose(out, [[-10.0, 0.0], [-10.0 + 0.9375 * 703, 0.9375 * 511]], atol=1e-9)
    batch = np.zeros((2, 3, 17, 4), dtype=np.float32)
    assert T.map_to_image(batch, center, scale, (704, 512)).shape == batch.shape
    with pytest.raises(ValueError):
        T.map_to_image(np.zeros((3, 1)), center, scale, (704, 512))


def test_map_to_image_from_half_resolution_matches_bilinear_projection():
    """Coordinates on maps at base size / 2 land where bilinear projection to the base size puts them.

    A map holding its own x coordinate, upsampled 2x with align_corners=False semantics, holds at base
    pixel X the half-resolution coordinate of that pixel; mapping X at base size and that coordinate
    at half size with base_size_wh must give the same image point.
    """
    from higherhrnet_trt.decode.aggregate import resize_bilinear

    center, scale = np.array([40.0, 23.0]), np.array([0.45, 0.225])
    base = (128, 64)
    half = (64, 32)
    ramp_x = np.broadcast_to(np.arange(half[0], dtype=np.float32), (half[1], half[0]))
    ramp_y = np.broadcast_to(np.arange(half[1], dtype=np.float32)[:, None], (half[1], half[0]))
    up_x = resize_bilinear(np.ascontiguousarray(ramp_x), base, backend="numpy")
    up_y = resize_bilinear(np.ascontiguousarray(ramp_y), base, backend="numpy")
    # Interior pixels (borders clamp).
    ys, xs = np.mgrid[2 : base[1] - 2, 2 : base[0] - 2]
    base_pts = np.stack([xs, ys], axis=-1).astype(np.float64)
    half_pts = np.stack([up_x[ys, xs], up_y[ys, xs]], axis=-1).astype(np.float64)
    a = T.map_to_image(base_pts, center, scale, base)
    b = T.map_to_image(half_pts, center, scale, half, base_size_wh=base)
    np.testing.assert_allclose(a, b, atol=1e-6)
    # Without base_size_wh the official formula at half size is off by the half-pixel shift.
    c = T.map_to_image(half_pts, center, scale, half)
    assert np.abs(c - a).max() > 0.1
    # Same size given twice: the official mapping unchanged.
    np.testing.assert_array_equal(T.map_to_image(base_pts, center, scale, base, base_size_wh=base), a)
