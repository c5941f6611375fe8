"""The CUDA kernels' arithmetic, compiled for the CPU (kernels/host_harness.cpp), against the
NumPy decode (the ground truth) and OpenCV: bit for bit.

This checks every decision the kernels make (top-k order, Munkres ties, mean-tag summation order,
adjust, scores, refine argmax) without a GPU. What it cannot check is the parallel execution on a
GPU: tests/kernels/test_gpu.py does that where a GPU exists.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from higherhrnet_trt.decode import DecodeConfig, parse

if not (shutil.which("g++") or shutil.which("c++")):
    pytest.skip("no C++ compiler to build the kernels' host harness", allow_module_level=True)

from higherhrnet_trt.kernels.host import decode_host, warp_host  # noqa: E402

MODES = {
    "raw": DecodeConfig(adjust=False, refine=False),
    "adjusted": DecodeConfig(adjust=True, refine=False),
    "refined": DecodeConfig(),
}


@pytest.fixture(scope="module")
def vectors(reference_dir):
    with np.load(reference_dir / "parser_vectors.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("mode", list(MODES))
def test_official_vectors_bit_exact(vectors, mode):
    cfg = MODES[mode]
    for case in range(20):
        hm, tg = vectors[f"case{case:02d}_heatmaps"][0], vectors[f"case{case:02d}_tags"][0]
        want, want_scores = parse(hm, tg, cfg)
        got, scores = decode_host(hm, tg, cfg)
        assert got.shape == want.shape, (case, mode)
        assert np.array_equal(got, want), (case, mode)
        assert np.array_equal(scores, want_scores), (case, mode)


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_bit_exact(seed):
    """Random maps, integer tags (many cost ties), both tag widths, COCO and CrowdPose orders."""
    rng = np.random.default_rng(seed)
    for t in range(12):
        J = 17 if t % 2 else 14
        H, W, T = int(rng.integers(8, 40)), int(rng.integers(8, 40)), int(rng.choice([1, 2]))
        hm = (rng.random((J, H, W)) ** 4).astype(np.float32)
        tg = rng.normal(scale=2.0, size=(J, H, W, T)).astype(np.float32)
        if t % 3 == 0:
            tg = np.round(tg).astype(np.float32)
        cfg = DecodeConfig(joint_order=tuple(rng.permutation(J).tolist()))
        want, want_scores = parse(hm, tg, cfg)
        got, scores = decode_host(hm, tg, cfg)
        assert got.shape == want.shape and np.array_equal(got, want), (seed, t)
        assert np.array_equal(scores, want_scores), (seed, t)


def _opencv_fixed_point() -> bool:
    """OpenCV up to 4.10 warps uint8 in fixed point (as the kernel and JetPack 6's OpenCV 4.x);
    OpenCV 4.11+ / 5.x compute positions and weights in float32."""
    import cv2

    major, minor = (int(v) for v in cv2.__version__.split(".")[:2])
    return (major, minor) <= (4, 10)


def test_warp_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    exact = _opencv_fixed_point()
    for t in range(12):
        h, w = int(rng.integers(20, 200)), int(rng.integers(20, 200))
        img = rng.integers(0, 256, (h, w, 3), np.uint8)
        if exact or t % 2 == 0:
            s, a = rng.uniform(0.3, 3.0), np.radians(rng.uniform(-30, 30))
            m = np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(-20, 20)],
                          [s * np.sin(a), s * np.cos(a), rng.uniform(-20, 20)]])
        else:  # integer shifts: sample positions exact in every OpenCV version
            m = np.array([[1.0, 0.0, float(rng.integers(-20, 20))], [0.0, 1.0, float(rng.integers(-20, 20))]])
        size = (int(rng.integers(16, 200)), int(rng.integers(16, 200)))
        want = cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
        got = warp_host(img, m, size)
        if exact or t % 2:
            assert np.array_equal(got, want), (t, cv2.__version__)
        else:  # float32 OpenCV differs at 1/32-pixel quantisation: a few levels on noise images
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 8, t


def test_gpu_wrapper_struct_layouts_match():
    import ctypes

    from higherhrnet_trt.kernels import decode_gpu
    from higherhrnet_trt.kernels.host import struct_sizes

    sizes = struct_sizes()
    assert sizes["DecodeParams"] == ctypes.sizeof(decode_gpu.DecodeParams)
    assert sizes["GroupWork"] == decode_gpu.GROUP_WORK_BYTES


def test_warp_normalize_equals_runtime_preprocess():
    """The fused pre-processing kernel = core.preprocess.normalize of the kernel's warp (bit for
    bit: table lookup, BGR -> RGB plane order, CHW), and = the whole runtime pre-processing where
    OpenCV warps in fixed point (<= 4.10; newer OpenCV: within its warp's level differences)."""
    cv2 = pytest.importorskip("cv2")
    from higherhrnet_trt.core import preprocess as pp
    from higherhrnet_trt.core.geometry import get_multi_scale_size
    from higherhrnet_trt.kernels.host import warp_normalize_host

    rng = np.random.default_rng(5)
    lut = pp.normalize_lut(tuple(pp.IMAGENET_MEAN), tuple(pp.IMAGENET_STD), True)[0]
    for t in range(4):
        h, w = int(rng.integers(30, 150)), int(rng.integers(30, 150))
        img = rng.integers(0, 256, (h, w, 3), np.uint8)
        size, center, scale = get_multi_scale_size((w, h), 64, 1.0, 1.0)
        m = pp.warp_matrix(center, scale, size)
        got = warp_normalize_host(img, m, size, lut)
        want = pp.normalize(warp_host(img, m, size), bgr=True)[0]
        assert got.shape == want.shape and np.array_equal(got, want), t
        runtime = pp.preprocess(img, 64)[0][0][1][0]
        if _opencv_fixed_point():
            assert np.array_equal(got, runtime), t
        else:  # a few grey levels where OpenCV's float32 warp rounds otherwise
            assert np.abs(got - runtime).max() <= 8 / 255 / min(pp.IMAGENET_STD) + 1e-6, (t, cv2.__version__)


@pytest.mark.parametrize("channels_last", [False, True])
def test_resize_equals_aggregate_numpy(channels_last):
    """The resize kernel = aggregate.resize_bilinear(backend="numpy") bit for bit: the stride-2
    upsample (2x), other ratios up and down, heatmaps (C, h, w) and tags (C, h, w, T)."""
    from higherhrnet_trt.decode.aggregate import resize_bilinear
    from higherhrnet_trt.kernels.host import resize_host

    rng = np.random.default_rng(7)
    sizes = [((16, 24), (32, 48)), ((13, 17), (40, 29)), ((40, 36), (15, 22)), ((9, 9), (64, 64))]
    for (h, w), (H, W) in sizes:
        shape = (3, h, w, 2) if channels_last else (3, h, w)
        x = rng.normal(size=shape).astype(np.float32)
        got = resize_host(x, (W, H), channels_last=channels_last)
        want = resize_bilinear(x, (W, H), channels_last=channels_last, backend="numpy")
        assert got.shape == want.shape and np.array_equal(got, want), ((h, w), (H, W))


def test_non_finite_tags_end_with_a_status_not_a_hang():
    """An inf tag makes the Munkres steps cycle (the NumPy decoder does not return on it); the
    kernels bound step 6 and report kUnsolvable (4). Run in a child process with a timeout so that
    a regression fails instead of hanging CI."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from higherhrnet_trt.kernels.host import decode_host\n"
        "rng = np.random.default_rng(0)\n"
        "hm = (rng.random((17, 24, 24)) ** 4).astype(np.float32)\n"
        "tg = rng.normal(scale=2.0, size=(17, 24, 24, 2)).astype(np.float32)\n"
        "for j in (3, 9):\n"
        "    tg[j].reshape(-1, 2)[np.argmax(hm[j]), 0] = np.inf\n"
        "try:\n"
        "    decode_host(hm, tg)\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "status 4" in out.stdout
