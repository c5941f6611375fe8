"""The compiled CPU decode (kernels/cpu_decode.cpp) against the NumPy decode, bit for bit.

The reference is decode.parse on maps projected by resize_bilinear(backend="numpy") (the exact
PyTorch coordinates); the compiled decode projects the maps itself. Checked: the 20 official parser
vectors (three modes), the official pipeline maps (pA), hypothesis fuzz (shapes, ratios, joint
orders, settings, special values), large scenes at W32-512 size, threads, and the no-compiler path.
The library is built once per machine into the cache; the first test of a session pays it.
"""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.decode import DecodeConfig, parse
from higherhrnet_trt.decode.aggregate import resize_bilinear
from higherhrnet_trt.kernels import cpu

MODES = {
    "raw": DecodeConfig(adjust=False, refine=False),
    "adjusted": DecodeConfig(adjust=True, refine=False),
    "refined": DecodeConfig(),
}


@pytest.fixture(scope="module", autouse=True)
def built():
    """Build (or find in the cache) the library once for the module; skip without a compiler."""
    if not cpu.available():
        pytest.skip(f"compiled CPU decode unavailable: {cpu.unavailable_reason()}")


def expected(heatmaps, tags, cfg, size_wh=None):
    """NumPy decode of (J, h, w) / (J, h, w, T) maps projected to size_wh (W, H)."""
    if size_wh is not None:
        heatmaps = resize_bilinear(heatmaps, size_wh, backend="numpy")
        tags = resize_bilinear(tags, size_wh, channels_last=True, backend="numpy")
    return parse(heatmaps, tags, cfg)


def assert_same_bits(got, want, what=""):
    (g, gs), (w, ws) = got, want
    assert g.shape == w.shape, what
    assert g.dtype == w.dtype == np.float32 and gs.dtype == ws.dtype == np.float32, what
    np.testing.assert_array_equal(g.view(np.uint32), w.view(np.uint32), err_msg=str(what))
    np.testing.assert_array_equal(gs.view(np.uint32), ws.view(np.uint32), err_msg=str(what))


@pytest.fixture(scope="module")
def vectors(reference_dir):
    with np.load(reference_dir / "parser_vectors.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("mode", list(MODES))
def test_official_vectors(vectors, mode):
    cfg = MODES[mode]
    for case in range(20):
        hm, tg = vectors[f"case{case:02d}_heatmaps"][0], vectors[f"case{case:02d}_tags"][0]
        assert_same_bits(cpu.decode(hm, tg, cfg, threads=1), parse(hm, tg, cfg), (case, mode))


def test_official_pipeline_maps(reference_dir):
    """pA's final maps (the official flow's, 128 x 64, T = 2) as they are and projected x2."""
    with np.load(reference_dir / "pipeline_vectors.npz") as z:
        hm, tg = z["pA_final_heatmaps"][0], z["pA_tags"][0]
    cfg = DecodeConfig(detection_threshold=float(np.quantile(hm.max(axis=(1, 2)), 0.5)) * 0.5)
    for size in (None, (256, 128), (200, 90)):
        assert_same_bits(cpu.decode(hm, tg, cfg, size_wh=size), expected(hm, tg, cfg, size), size)


def test_large_scenes():
    """W32-512 sized: 17 x 256 x 256 network maps projected to 512 x 512, T = 2, 1 and 30 people."""
    from higherhrnet_trt.benchmarks.decode_speed import synthetic_scene

    cfg = DecodeConfig()
    for seed, people in ((0, 1), (1, 30)):
        hm, tg = synthetic_scene(seed, size=(256, 256), people=people, sigma=2.0)
        want = expected(hm, tg, cfg, (512, 512))
        assert len(want[0]) >= people // 2
        assert_same_bits(cpu.decode(hm, tg, cfg, size_wh=(512, 512)), want, people)


def test_large_random_maps():
    """Many peaks and tied costs: rough random maps, integer tags, a 3 / 2 projection."""
    rng = np.random.default_rng(5)
    hm = (rng.random((17, 120, 160)) ** 6).astype(np.float32)
    tg = np.round(rng.normal(scale=2.0, size=(17, 120, 160, 2))).astype(np.float32)
    cfg = DecodeConfig(joint_order=tuple(rng.permutation(17).tolist()))
    assert_same_bits(cpu.decode(hm, tg, cfg, size_wh=(240, 180)), expected(hm, tg, cfg, (240, 180)))


def test_threads_and_batches_agree():
    rng = np.random.default_rng(2)
    hm = (rng.random((3, 17, 40, 48)) ** 4).astype(np.float32)
    tg = rng.normal(size=(3, 17, 40, 48, 2)).astype(np.float32)
    cfg = DecodeConfig()
    one = cpu.decode_batch(hm, tg, cfg, size_wh=(96, 80), threads=1)
    many = cpu.decode_batch(hm, tg, cfg, size_wh=(96, 80), threads=3)
    for n in range(3):
        want = expected(hm[n], tg[n], cfg, (96, 80))
        assert_same_bits(one[n], want, n)
        assert_same_bits(many[n], want, n)


def test_fuzz():
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    special = st.sampled_from([0.0, 1.0, 0.1, -1.0, 1e30, -1e30, np.nan, np.inf])

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.integers(1, 6), st.integers(1, 30), st.integers(1, 30), st.integers(1, 2),
           st.sampled_from(["random", "empty", "saturated", "peaks", "integer", "special"]),
           st.integers(0, 2**31), st.sampled_from([None, 1.0, 2.0, 1.5, 0.5, 0.7]),
           st.integers(1, 40), st.booleans(), st.booleans(), st.integers(0, 3), special,
           st.sampled_from([0.1, 0.0, -0.5, 0.5]))
    def check(j, h, w, t, kind, seed, ratio, max_people, adjust, refine, pad, value, threshold):
        rng = np.random.default_rng(seed)
        hm = (rng.random((j, h, w)) ** 3).astype(np.float32)
        tg = rng.normal(scale=2.0, size=(j, h, w, t)).astype(np.float32)
        if kind == "empty":
            hm[:] = 0.0
        elif kind == "saturated":
            hm[:] = 1.0
        elif kind == "peaks":
            hm[:] = 0.0
            hm[:, ::3, ::3] = 0.9
        elif kind == "integer":
            tg = np.round(tg)
        elif kind == "special":
            hm.flat[rng.integers(0, hm.size, max(1, hm.size // 7))] = value
        size = None if ratio is None else (max(1, round(w * ratio)), max(1, round(h * ratio)))
        cfg = DecodeConfig(joint_order=tuple(rng.permutation(j).tolist()), max_people=max_people,
                           adjust=adjust, refine=refine, nms_padding=pad, nms_kernel=2 * pad + 1,
                           detection_threshold=threshold)
        with np.errstate(all="ignore"):
            try:
                want = expected(hm, tg, cfg, size)
            except Exception as exc:  # NaN maps may be refused: then the compiled path refuses too
                with pytest.raises(type(exc)):
                    cpu.decode(hm, tg, cfg, size_wh=size)
                return
            assert_same_bits(cpu.decode(hm, tg, cfg, size_wh=size, threads=2), want, (kind, size))

    check()


def test_no_compiler_is_one_line_and_numpy(monkeypatch):
    saved = dict(cpu._state)
    monkeypatch.setenv("CXX", "/nonexistent/g++")
    cpu._state.clear()
    try:
        assert not cpu.available()
        reason = cpu.unavailable_reason()
        assert reason and "\n" not in reason and "g++" in reason
        rng = np.random.default_rng(0)
        hm = rng.random((17, 20, 24), dtype=np.float32)
        tg = rng.normal(size=(17, 20, 24, 2)).astype(np.float32)
        assert_same_bits(cpu.decode(hm, tg, DecodeConfig(), size_wh=(48, 40)),
                         expected(hm, tg, DecodeConfig(), (48, 40)))
    finally:
        cpu._state.clear()
        cpu._state.update(saved)
