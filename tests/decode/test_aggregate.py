"""Map resizing and multi-scale aggregation (decode/aggregate.py) against PyTorch.

The reference side is written here in torch, step by step as the official get_multi_stage_outputs,
aggregate_results and valid.py do them (PROJECT2IMAGE=True), from raw synthetic network outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.decode import aggregate as A

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

F = torch.nn.functional

J = 17
FLIP_INDEX = list(COCO.flip_index)


def _torch_resize(x: np.ndarray, size_wh) -> np.ndarray:
    return F.interpolate(
        torch.from_numpy(x), size=(size_wh[1], size_wh[0]), mode="bilinear", align_corners=False
    ).numpy()


# Up, down, identity, integer and non-integer ratios, one axis only, tiny maps.
SIZES = [
    ((24, 16), (48, 32)), ((24, 16), (96, 64)), ((48, 32), (24, 16)), ((48, 32), (12, 8)),
    ((24, 16), (37, 29)), ((37, 29), (24, 16)), ((40, 30), (301, 200)), ((300, 20), (77, 41)),
    ((24, 16), (24, 33)), ((5, 3), (64, 64)), ((24, 16), (24, 16)), ((1, 1), (3, 2)),
]


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("size_in,size_out", SIZES)
def test_resize_bilinear_matches_torch(size_in, size_out, backend):
    rng = np.random.default_rng(sum(size_in) * 1000 + sum(size_out))
    x = rng.standard_normal((2, 3, size_in[1], size_in[0])).astype(np.float32)
    got = A.resize_bilinear(x, size_out, backend=backend)
    ref = _torch_resize(x, size_out)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    # (C, h, w) input too.
    np.testing.assert_allclose(A.resize_bilinear(x[0], size_out, backend=backend), ref[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("size_in,size_out", [s for s in SIZES if A._is_power_of_two_ratio(s[0][0], s[1][0])
                                              and A._is_power_of_two_ratio(s[0][1], s[1][1])])
def test_resize_bilinear_cv2_backend_at_power_of_two_ratios(size_in, size_out):
    pytest.importorskip("cv2")
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((1, 4, size_in[1], size_in[0])) * 3).astype(np.float32)
    np.testing.assert_allclose(A.resize_bilinear(x, size_out, backend="cv2"), _torch_resize(x, size_out),
                               atol=1e-5, rtol=0)


def test_resize_bilinear_steep_maps_at_large_coordinates():
    """Non-integer ratio, far from the origin: sample positions must be PyTorch's float32 ones."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((1, 2, 300, 500)) * 4).astype(np.float32)
    for size in [(333, 201), (1001, 599)]:
        np.testing.assert_allclose(A.resize_bilinear(x, size), _torch_resize(x, size), atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_resize_tags_matches_torch(backend):
    rng = np.random.default_rng(2)
    tags = rng.standard_normal((1, 5, 16, 24, 2)).astype(np.float32)
    for size in [(48, 32), (96, 64), (37, 29), (12, 8)]:
        got = A.resize_tags(tags, size, backend=backend)
        ref = _torch_resize(np.ascontiguousarray(np.moveaxis(tags, -1, 1)).reshape(1, 10, 16, 24), size)
        ref = np.moveaxis(ref.reshape(1, 2, 5, size[1], size[0]), 1, -1)
        assert got.shape == (1, 5, size[1], size[0], 2)
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    t1 = tags[..., :1]  # T = 1 keeps its axis with every backend
    assert A.resize_tags(t1, (48, 32), backend=backend).shape == (1, 5, 32, 48, 1)


def test_resize_identity_and_errors():
    x = np.zeros((1, 2, 8, 8), np.float32)
    assert A.resize_bilinear(x, (8, 8)) is x
    with pytest.raises(ValueError):
        A.resize_bilinear(x, (0, 8))
    with pytest.raises(ValueError):
        A.resize_bilinear(x, (4, 4), backend="opencl")
    with pytest.raises(ValueError):
        A.resize_bilinear(np.zeros(5, np.float32), (4, 4))


# --------------------------------------------------------------------------------------------------
# Official flow in torch, from raw outputs
# --------------------------------------------------------------------------------------------------


def _raw_outputs(rng, input_wh, flip):
    """Synthetic raw network outputs for one scale: [(output0 (1, 2J, h/4, w/4), output1 (1, J, h/2, w/2))]
    for the image, and for the mirrored image when flip (as the network would return them, unflipped)."""
    w, h = input_wh
    outs = []
    for _ in range(2 if flip else 1):
        o0 = rng.random((1, 2 * J, h // 4, w // 4), dtype=np.float32)
        o0[:, J:] = rng.standard_normal((1, J, h // 4, w // 4)).astype(np.float32) * 2  # tags
        o1 = rng.random((1, J, h // 2, w // 2), dtype=np.float32)
        outs.append((o0, o1))
    return outs


def _official_torch(raw_per_scale, scales, flip, size_projected):
    """valid.py loop: get_multi_stage_outputs(PROJECT2IMAGE) + aggregate_results, then the division."""
    W, H = size_projected
    final, tags_list = None, []
    for s in sorted(scales, reverse=True):
        heatmaps, tags = [], []
        for k, (o0, o1) in enumerate(raw_per_scale[s]):
            mirrored = k == 1
            outs = [torch.from_numpy(o0), torch.from_numpy(o1)]
            hm_sum, n = 0, 0
            for i, out in enumerate(outs):
                if i == 0:  # every output but the last goes to the size of the last one
                    out = F.interpolate(out, size=outs[1].shape[2:], mode="bilinear", align_corners=False)
                if mirrored:
                    out = torch.flip(out, [3])
                hm = out[:, :J]
                hm_sum = hm_sum + (hm[:, FLIP_INDEX] if mirrored else hm)
                n += 1
                if i == 0:  # AE loss / WITH_AE only on output 0; tags = its channels after J
                    t = out[:, J:]
                    tags.append(t[:, FLIP_INDEX] if mirrored else t)
            heatmaps.append(hm_sum / n)
        heatmaps = [F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False) for x in heatmaps]
        tags = [F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False) for x in tags]
        if s == 1 or len(scales) == 1:
            tags_list += [torch.unsqueeze(t, dim=4) for t in tags]
        avg = (heatmaps[0] + heatmaps[1]) / 2.0 if flip else heatmaps[0]
        final = avg if final is None else final + avg
    final = final / float(len(scales))
    return final.numpy(), torch.cat(tags_list, dim=4).numpy()


def _graph_outputs(raw, flip, tag_stride):
    """What our ONNX graph gives for one scale (flip-averaged heatmaps at stride 2, stacked tags at
    stride 4 or 2), computed here in numpy from the same raw outputs."""
    hms, tgs = [], []
    for k, (o0, o1) in enumerate(raw):
        up = A.resize_bilinear(o0, (o1.shape[3], o1.shape[2]), backend="numpy")
        hm = (up[:, :J] + o1) / np.float32(2)
        tg = (up if tag_stride == 2 else o0)[:, J:]
        if k == 1:
            hm = hm[:, FLIP_INDEX, :, ::-1]
            tg = tg[:, FLIP_INDEX, :, ::-1]
        hms.append(hm)
        tgs.append(tg)
    heatmaps = (hms[0] + hms[1]) / np.float32(2) if flip else hms[0]
    return np.ascontiguousarray(heatmaps), np.ascontiguousarray(np.stack(tgs, axis=-1))


CASES = [
    # (base size (W, H), scales, flip) - like pipeline cases pA, pB, pC, plus a larger base
    ((128, 64), [1.0], True),
    ((128, 128), [0.5, 1.0, 2.0], False),
    ((64, 128), [1.0, 2.0], True),
    ((192, 128), [1.0], False),
]


@pytest.mark.parametrize("tag_stride", [4, 2])
@pytest.mark.parametrize("resolution", ["input", "heatmap"])
@pytest.mark.parametrize("base,scales,flip", CASES)
def test_aggregator_matches_official_flow(base, scales, flip, resolution, tag_stride):
    rng = np.random.default_rng(len(scales) * 10 + base[0] + int(flip))
    raw = {s: _raw_outputs(rng, (int(base[0] * s), int(base[1] * s)), flip) for s in scales}
    out_size = base if resolution == "input" else (base[0] // 2, base[1] // 2)
    ref_hm, ref_tags = _official_torch(raw, scales, flip, out_size)

    agg = A.MultiScaleAggregator(base, scales, resolution=resolution)
    assert agg.output_size_wh == out_size
    for s in sorted(scales, reverse=True):
        hm, tg = _graph_outputs(raw[s], flip, tag_stride)
        agg.add(s, hm, tg)
    got_hm, got_tags = agg.result()
    assert got_hm.shape == ref_hm.shape and got_tags.shape == ref_tags.shape
    assert got_hm.dtype == np.float32 and got_tags.dtype == np.float32
    np.testing.assert_allclose(got_hm, ref_hm, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_tags, ref_tags, atol=1e-5, rtol=0)

    # The aggregator can be reused for the next frame.
    agg.reset()
    for s in scales:
        agg.add(s, *_graph_outputs(raw[s], flip, tag_stride))
    np.testing.assert_allclose(agg.result()[0], ref_hm, atol=1e-5, rtol=0)


def test_tags_are_upsampled_in_two_steps():
    """The official stride-4 -> stride-2 -> base path differs from a single stride-4 -> base resize,
    so the two-step result is not an accident of the aggregator (see aggregate.py docstring)."""
    rng = np.random.default_rng(0)
    base = (128, 64)
    raw = {1.0: _raw_outputs(rng, base, True)}
    _, ref_tags = _official_torch(raw, [1.0], True, base)
    _, tags4 = _graph_outputs(raw[1.0], True, tag_stride=4)
    one_step = A.resize_tags(tags4, base)
    assert np.abs(one_step - ref_tags).max() > 0.05
    _, two_step = A.aggregate([(1.0, *_graph_outputs(raw[1.0], True, 4))], base)
    np.testing.assert_allclose(two_step, ref_tags, atol=1e-5, rtol=0)


def test_single_scale_other_than_one_keeps_its_tags():
    """Official: with one scale, its tags are kept whatever the scale (aggregate_results' condition)."""
    rng = np.random.default_rng(4)
    base = (64, 64)
    raw = {2.0: _raw_outputs(rng, (128, 128), False)}
    ref_hm, ref_tags = _official_torch(raw, [2.0], False, base)
    hm, tags = A.aggregate([(2.0, *_graph_outputs(raw[2.0], False, 4))], base)
    np.testing.assert_allclose(hm, ref_hm, atol=1e-5, rtol=0)
    np.testing.assert_allclose(tags, ref_tags, atol=1e-5, rtol=0)


def test_aggregator_does_not_alias_caller_buffers():
    base = (32, 32)
    hm = np.ones((1, J, 16, 16), np.float32)
    tg = np.ones((1, J, 16, 16, 2), np.float32)
    agg = A.MultiScaleAggregator(base, [1.0], resolution="heatmap")
    agg.add(1.0, hm, tg)
    hm[:] = 5.0  # a backend reusing its output buffer
    tg[:] = 5.0
    out_hm, out_tags = agg.result()
    assert out_hm.max() == 1.0 and out_tags.max() == 1.0


def test_aggregator_errors():
    with pytest.raises(ValueError):
        A.MultiScaleAggregator((64, 64), [0.5, 2.0])  # no scale 1: official would have no tags
    with pytest.raises(ValueError):
        A.MultiScaleAggregator((64, 64), [1.0], resolution="stride4")
    agg = A.MultiScaleAggregator((64, 64), [1.0, 2.0])
    hm = np.zeros((1, J, 32, 32), np.float32)
    tg = np.zeros((1, J, 16, 16, 2), np.float32)
    agg.add(1.0, hm, tg)
    with pytest.raises(ValueError):
        agg.add(1.0, hm, tg)  # twice
    with pytest.raises(ValueError):
        agg.result()  # 2.0 missing
    with pytest.raises(ValueError):
        agg.add(2.0, np.zeros((1, J - 1, 64, 64), np.float32), tg)  # joint count changed
    agg = A.MultiScaleAggregator((64, 64), [1.0])
    with pytest.raises(ValueError):
        agg.add(1.0, hm, np.zeros((1, J, 16, 16, 2, 1), np.float32))
