"""Whether this CPU's int8 instructions saturate full-range int8 weights (Linux /proc/cpuinfo).

x86 CPUs without VNNI multiply uint8 activations by int8 weights with an instruction that adds
pairs of products into int16 and saturates there (2 x 255 x 127 does not fit; 2 x 255 x 64 does);
VNNI (AVX512-VNNI, AVX-VNNI) and AMX sum into int32. ARM's dot-product instructions sum into int32
too. See export/qdq_cpu.py (why CPU-target INT8 files hold 7-bit weights).
"""

from __future__ import annotations

#: /proc/cpuinfo flags of x86 CPUs whose int8 multiply-add sums into int32.
INT32_SUM_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def read_cpuinfo() -> str:
    """The first 64 KB of /proc/cpuinfo ("" where it cannot be read: not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read(1 << 16)
    except OSError:
        return ""


def x86_flags(cpuinfo: str) -> set[str] | None:
    """The first "flags" line of a /proc/cpuinfo text as a set; None when it has none (not x86)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return None


def int8_weights_saturate(cpuinfo: str | None = None) -> bool:
    """True on an x86 CPU without VNNI or AMX (full-range int8 weights saturate in its int8
    kernels); False with them, on other CPUs, and when /proc/cpuinfo cannot be read.

    cpuinfo: the text to read instead of /proc/cpuinfo (tests)."""
    flags = x86_flags(read_cpuinfo() if cpuinfo is None else cpuinfo)
    return flags is not None and not any(f in flags for f in INT32_SUM_FLAGS)
