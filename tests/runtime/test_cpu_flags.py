"""runtime/backends/cpu_flags.py on /proc/cpuinfo texts written by hand (flag lists shortened from
real machines: an AVX2-only AMD EPYC VM, an AVX512-VNNI one, an AMX Xeon, an Orin's ARM cores)."""

from higherhrnet_trt.runtime.backends.cpu_flags import int8_weights_saturate, x86_flags

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_1 sse4_2 avx avx2 fma\n"
AVX512_VNNI = "model name\t: AMD EPYC\nflags\t\t: avx avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
AVX512_NO_VNNI = "model name\t: Intel(R) Xeon(R)\nflags\t\t: avx avx2 avx512f avx512bw avx512dq\n"
AMX = "model name\t: Intel(R) Xeon(R) Platinum\nflags\t\t: avx2 avx512f amx_bf16 amx_tile amx_int8\n"
ARM = "processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes pmull crc32 atomics asimddp\n"


def test_x86_flags_reads_the_first_flags_line():
    assert x86_flags(AVX2_ONLY) == {"fpu", "sse4_1", "sse4_2", "avx", "avx2", "fma"}
    assert x86_flags(ARM) is None  # ARM's /proc/cpuinfo has "Features", no "flags"


def test_which_cpus_saturate_8_bit_weights():
    assert int8_weights_saturate(AVX2_ONLY) is True
    assert int8_weights_saturate(AVX512_NO_VNNI) is True  # AVX-512 without VNNI saturates as well
    assert int8_weights_saturate(AVX512_VNNI) is False
    assert int8_weights_saturate(AMX) is False
    assert int8_weights_saturate(ARM) is False
    assert int8_weights_saturate("") is False
