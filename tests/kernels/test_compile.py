"""CI compiles every CUDA kernel with NVRTC for every target architecture (no GPU needed).

NVRTC 13 in this process for the desktop and Orin targets; NVRTC 12 (JetPack 6's CUDA) in a child
process (cuda-python keeps the first libnvrtc it loads) for Xavier's sm_72, Orin's sm_87 and sm_90.
The disk cache is bypassed: a pass means the compiler ran.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("cuda.bindings", reason="cuda-python is not installed (pip install cuda-python)")

from higherhrnet_trt.kernels import compile as kc  # noqa: E402


def _nvrtc_or_skip(major: int) -> str:
    path = kc.nvrtc_library_path(major)
    if path is None:
        pytest.skip(f"NVRTC {major} is not installed (pip install "
                    + ("nvidia-cuda-nvrtc-cu12)" if major == 12 else "nvidia-cuda-nvrtc)"))
    return path


def test_every_kernel_compiles_with_nvrtc13_for_every_target():
    _nvrtc_or_skip(13)
    kc.preload_nvrtc(13)
    assert kc.nvrtc_version()[0] == 13
    supported = set(kc.supported_archs())
    assert set(kc.TARGET_ARCHS) <= supported, sorted(set(kc.TARGET_ARCHS) - supported)
    results = kc.compile_all(use_cache=False)
    assert {(c.kernel, c.arch) for c in results} == {(k, a) for k in kc.KERNELS for a in kc.TARGET_ARCHS}
    for c in results:
        assert c.ptx.startswith(b"//") and b".target " + c.arch.encode() in c.ptx, (c.kernel, c.arch)
        assert c.cubin[:4] == b"\x7fELF", (c.kernel, c.arch)
    decode = next(c for c in results if c.kernel == "decode.cu")
    for entry in (b"hhr_nms_topk", b"hhr_group", b"hhr_refine"):
        assert b".entry " + entry in decode.ptx


def test_jetpack6_targets_compile_with_nvrtc12():
    _nvrtc_or_skip(12)
    code = (
        "from higherhrnet_trt.kernels import compile as kc\n"
        "kc.preload_nvrtc(12)\n"
        "assert kc.nvrtc_version()[0] == 12, kc.nvrtc_version()\n"
        "for c in kc.compile_all(('sm_72', 'sm_87', 'sm_90'), use_cache=False):\n"
        "    assert c.cubin[:4] == b'\\x7fELF'\n"
        "    print(c.kernel, c.arch, c.nvrtc_version)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(12,") == 3 * len(kc.KERNELS)


def test_compile_error_names_the_kernel_and_the_log(monkeypatch):
    _nvrtc_or_skip(13)
    sources = kc.read_sources()
    sources["resize.cu"] = sources["resize.cu"] + b"\nthis is not CUDA;\n"
    monkeypatch.setattr(kc, "read_sources", lambda: sources)
    expected = r"(?s)resize\.cu does not compile for sm_87.*error: expected a declaration"
    with pytest.raises(RuntimeError, match=expected):
        kc.compile_kernel("resize.cu", "sm_87", use_cache=False)


def test_nvcc_ahead_of_time_build(tmp_path):
    """The nvcc path (python -m higherhrnet_trt.kernels.compile --nvcc --arch sm_87 -o DIR): every
    kernel to CUBIN and PTX for Jetson Orin."""
    import shutil

    if shutil.which("nvcc") is None:
        pytest.skip("nvcc (CUDA toolkit) is not installed")
    assert kc.main(["--nvcc", "--arch", "sm_87", "-o", str(tmp_path)]) == 0
    for kernel in kc.KERNELS:
        stem = tmp_path / f"{kernel[:-3]}_sm_87"
        assert (stem.with_suffix(".cubin")).read_bytes()[:4] == b"\x7fELF", kernel
        assert b".target sm_87" in (stem.with_suffix(".ptx")).read_bytes(), kernel
    ptx = (tmp_path / "decode_sm_87.ptx").read_bytes()
    for entry in (b"hhr_nms_topk", b"hhr_group", b"hhr_refine"):
        assert b".entry " + entry in ptx


def test_cuda_fp16_header_is_on_the_include_path(monkeypatch):
    """cuda_fp16.h (fp16 engine outputs) comes from the nvidia-cuda-runtime wheel or CUDA_HOME:
    kernels.compile passes those include folders to NVRTC."""
    _nvrtc_or_skip(13)
    if not kc.cuda_include_dirs():
        pytest.skip("no cuda_fp16.h found (pip install nvidia-cuda-runtime)")
    sources = kc.read_sources()
    sources["resize.cu"] = (b"#include <cuda_fp16.h>\n" + sources["resize.cu"]
                            + b"\nextern \"C\" __global__ void half_probe(const __half* a, float* b)"
                              b" { b[threadIdx.x] = __half2float(a[threadIdx.x]); }\n")
    monkeypatch.setattr(kc, "read_sources", lambda: sources)
    c = kc.compile_kernel("resize.cu", "sm_87", use_cache=False)
    assert b".entry half_probe" in c.ptx
