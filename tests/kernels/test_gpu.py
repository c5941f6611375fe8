"""The decode kernels on a real GPU against the NumPy decode (ground truth). Marked ``gpu``: they
skip on machines without an NVIDIA driver and GPU (CI), and run where the device tool lends one:

    python -m pytest tests/kernels/test_gpu.py -m gpu -v -s
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from higherhrnet_trt.decode import DecodeConfig, parse

pytestmark = pytest.mark.gpu
pytest.importorskip("cuda.bindings", reason="cuda-python is not installed")


def _decoder(hm, tg, **kw):
    from higherhrnet_trt.kernels.decode_gpu import GpuDecoder

    J, H, W = hm.shape
    T = tg.shape[-1] if tg.ndim == 4 else 1
    return GpuDecoder(J, H, W, T, **kw)


@pytest.fixture(scope="module")
def vectors(reference_dir):
    with np.load(reference_dir / "parser_vectors.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("refine", [False, True])
def test_official_vectors(vectors, refine):
    cfg = DecodeConfig(refine=refine)
    for case in range(20):
        hm, tg = vectors[f"case{case:02d}_heatmaps"][0], vectors[f"case{case:02d}_tags"][0]
        want, want_scores = parse(hm, tg, cfg)
        with _decoder(hm, tg, cfg=cfg) as dec:
            (got, scores), = dec.decode(hm[None], tg[None])
        assert got.shape == want.shape and np.array_equal(got, want), case
        assert np.array_equal(scores, want_scores), case


def test_fuzz_batch_and_timing():
    rng = np.random.default_rng(0)
    J, H, W, T, N = 17, 128, 128, 2, 4
    hm = (rng.random((N, J, H, W)) ** 6).astype(np.float32)
    tg = np.round(rng.normal(scale=2.0, size=(N, J, H, W, T))).astype(np.float32)
    want = [parse(hm[i], tg[i]) for i in range(N)]
    with _decoder(hm[0], tg[0], max_batch=N) as dec:
        got = dec.decode(hm, tg)
        t0 = time.perf_counter()
        for _ in range(10):
            dec.decode(hm, tg)
        gpu_ms = (time.perf_counter() - t0) / 10 / N * 1e3
    t0 = time.perf_counter()
    for i in range(N):
        parse(hm[i], tg[i])
    cpu_ms = (time.perf_counter() - t0) / N * 1e3
    print(f"\ndecode per image at {H}x{W}: GPU {gpu_ms:.2f} ms (incl. H2D), NumPy {cpu_ms:.2f} ms")
    for (a, sa), (b, sb) in zip(want, got):
        assert a.shape == b.shape and np.array_equal(a, b) and np.array_equal(sa, sb)


def test_device_arrays_without_copies():
    cupy = pytest.importorskip("cupy")
    rng = np.random.default_rng(1)
    hm = (rng.random((1, 17, 64, 64)) ** 6).astype(np.float32)
    tg = rng.normal(size=(1, 17, 64, 64, 2)).astype(np.float32)
    want = parse(hm[0], tg[0])
    with _decoder(hm[0], tg[0]) as dec:
        stream = cupy.cuda.Stream()
        (got, scores), = dec.decode(cupy.asarray(hm), cupy.asarray(tg), stream=stream)
    assert np.array_equal(got, want[0]) and np.array_equal(scores, want[1])


def test_pycuda_interop():
    pycuda_driver = pytest.importorskip("pycuda.driver", reason="pycuda is not installed (source build)")
    import pycuda.autoprimaryctx  # noqa: F401
    import pycuda.gpuarray as gpuarray

    rng = np.random.default_rng(2)
    hm = (rng.random((1, 17, 64, 64)) ** 6).astype(np.float32)
    tg = rng.normal(size=(1, 17, 64, 64, 2)).astype(np.float32)
    want = parse(hm[0], tg[0])
    with _decoder(hm[0], tg[0]) as dec:
        (got, _), = dec.decode(gpuarray.to_gpu(hm), gpuarray.to_gpu(tg), stream=pycuda_driver.Stream())
    assert np.array_equal(got, want[0])


def test_no_device_memory_growth():
    from cuda.bindings import driver

    rng = np.random.default_rng(3)
    hm = (rng.random((1, 17, 128, 128)) ** 6).astype(np.float32)
    tg = rng.normal(size=(1, 17, 128, 128, 2)).astype(np.float32)
    with _decoder(hm[0], tg[0]) as dec:
        dec.decode(hm, tg)
        free0 = driver.cuMemGetInfo()[1]
        for _ in range(1000):
            dec.decode(hm, tg)
        free1 = driver.cuMemGetInfo()[1]
    assert free1 == free0, (free0, free1)


def test_preprocess_kernel_against_host_and_runtime():
    """GPU pre-processing = the kernel's arithmetic on the host (bit for bit) and = the runtime's
    pre-processing (bit for bit where OpenCV warps in fixed point, else within a few levels)."""
    from higherhrnet_trt.core import preprocess as pp
    from higherhrnet_trt.kernels.host import warp_normalize_host
    from higherhrnet_trt.kernels.preprocess_gpu import GpuPreprocessor

    rng = np.random.default_rng(4)
    lut = pp.normalize_lut(tuple(pp.IMAGENET_MEAN), tuple(pp.IMAGENET_STD), True)[0]
    with GpuPreprocessor(128) as pre:
        for h, w in [(97, 203), (240, 320), (480, 360)]:
            img = rng.integers(0, 256, (h, w, 3), np.uint8)
            ptr, geometry = pre(img)
            (iw, ih), forward, _ = pre.plan((w, h))
            got = pre.download(ptr, (3, ih, iw))
            assert np.array_equal(got, warp_normalize_host(img, forward, (iw, ih), lut)), (h, w)
            want = pp.preprocess(img, 128)[0][0][1][0]
            assert np.abs(got - want).max() <= 8 / 255 / min(pp.IMAGENET_STD) + 1e-6, (h, w)
            assert geometry.base_size_wh == (iw, ih)


def test_preprocess_device_frame_with_pitch():
    cupy = pytest.importorskip("cupy")
    from higherhrnet_trt.core import preprocess as pp
    from higherhrnet_trt.kernels.host import warp_normalize_host
    from higherhrnet_trt.kernels.preprocess_gpu import GpuPreprocessor

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (120, 200, 3), np.uint8)
    padded = cupy.zeros((120, 256, 3), cupy.uint8)
    padded[:, :200] = cupy.asarray(img)
    lut = pp.normalize_lut(tuple(pp.IMAGENET_MEAN), tuple(pp.IMAGENET_STD), True)[0]
    with GpuPreprocessor(128) as pre:
        stream = cupy.cuda.Stream()
        ptr, _ = pre(padded[:, :200], stream=stream)  # row pitch 768 bytes
        (iw, ih), forward, _ = pre.plan((200, 120))
        got = pre.download(ptr, (3, ih, iw), stream=stream)
    assert np.array_equal(got, warp_normalize_host(img, forward, (iw, ih), lut))


@pytest.mark.parametrize("inner", [1, 2])
def test_resize_kernel_against_aggregate(inner):
    from higherhrnet_trt.decode.aggregate import resize_bilinear
    from higherhrnet_trt.kernels.preprocess_gpu import GpuResizer

    rng = np.random.default_rng(6)
    for (h, w), (H, W) in [((64, 64), (128, 128)), ((37, 53), (90, 61))]:
        shape = (17, h, w) if inner == 1 else (17, h, w, inner)
        x = rng.normal(size=shape).astype(np.float32)
        want = resize_bilinear(x, (W, H), channels_last=inner > 1, backend="numpy")
        with GpuResizer((h, w), (H, W)) as rs:
            src = rs.upload(x)
            dst = rs.alloc(want.nbytes)
            rs(src, dst, planes=17, inner=inner)
            got = rs.download(dst, want.shape)
        assert np.array_equal(got, want), ((h, w), (H, W))
