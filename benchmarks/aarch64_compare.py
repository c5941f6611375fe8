"""The compiled CPU decode against the NumPy decode on this machine, bit for bit (issue 25 item 1).

    python -m higherhrnet_trt.benchmarks.aarch64_compare [--library SO] [--reference DIR] [--random N]
    python -m higherhrnet_trt.benchmarks.aarch64_compare --print-flags
    python -m higherhrnet_trt.benchmarks.aarch64_compare --build-with CXX

Made for the aarch64 check (benchmarks/aarch64_check.sh runs it under qemu-aarch64 with Debian's
arm64 Python and NumPy, on a library cross-compiled with kernels/cpu.py's flags), it runs on any
machine with NumPy only: a Jetson, or x86-64 for the digests to compare with.

The cases are those of tests/kernels/test_cpu.py, compared the same way: ``cpu.decode`` /
``cpu.decode_batch`` against ``cpu.reference_decode`` (decode.parse on the maps projected by
resize_bilinear(backend="numpy")), people and scores bit for bit (float32 bits, shapes, dtypes):

- parser: the 20 official parser vectors in three modes (raw, adjusted, refined), one thread;
- pipeline: the official pipeline maps (pA) as they are and projected to 256 x 128 and 200 x 90;
- scenes: W32-512 sized synthetic scenes (17 x 256 x 256 maps projected to 512 x 512, T = 2) with
  1 and 30 people (``decode_speed.synthetic_scene``);
- random: rough random maps with integer tags (3 / 2 projection), a batch of 3 on 1 and 3 threads,
  and ``--random`` seeded cases drawn as test_cpu's fuzz draws them (shapes, ratios, joint orders,
  settings; empty, saturated, peaked, integer-tag and NaN / inf maps) on 2 threads.

Each group prints its cases, how many the compiled code decoded itself (the rest took the NumPy
fallback, as NaN / inf maps must), mismatches, and sha256 digests of its inputs and outputs: two
machines printing the same digests decode the same people bit for bit. ``--library`` loads a
prebuilt library instead of letting kernels/cpu.py build one (it has no option for that: the check
swaps ``cpu.build_library``). Exit status 1 on any mismatch or when the library does not load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.decode import DecodeConfig
from higherhrnet_trt.kernels import cpu

MODES = {
    "raw": DecodeConfig(adjust=False, refine=False),
    "adjusted": DecodeConfig(adjust=True, refine=False),
    "refined": DecodeConfig(),
}
KINDS = ("random", "empty", "saturated", "peaks", "integer", "special")
SPECIAL = (0.0, 1.0, 0.1, -1.0, 1e30, -1e30, np.nan, np.inf)
RATIOS = (None, 1.0, 2.0, 1.5, 0.5, 0.7)
THRESHOLDS = (0.1, 0.0, -0.5, 0.5)
#: As tests/conftest.py: $HIGHERHRNET_TRT_REFERENCE, else ../shared/reference beside the repository.
REFERENCE = Path(os.environ.get("HIGHERHRNET_TRT_REFERENCE")
                 or Path(__file__).resolve().parents[2] / "shared" / "reference")


class Group:
    """One group's counts and digests; the compiled decode's NumPy fallbacks are counted by
    wrapping ``cpu.reference_decode``, which decode_batch calls for each image it hands back."""

    def __init__(self, name: str):
        self.name, self.cases, self.fallbacks, self.mismatches = name, 0, 0, []
        self.inputs, self.outputs = hashlib.sha256(), hashlib.sha256()
        self.start = time.perf_counter()

    def add_input(self, *arrays) -> None:
        for a in arrays:
            self.inputs.update(np.ascontiguousarray(a).tobytes())

    def compare(self, got, want, what) -> None:
        self.cases += 1
        (g, gs), (w, ws) = got, want
        same = (g.shape == w.shape and gs.shape == ws.shape and g.dtype == w.dtype == np.float32
                and gs.dtype == ws.dtype == np.float32
                and np.array_equal(g.view(np.uint32), w.view(np.uint32))
                and np.array_equal(gs.view(np.uint32), ws.view(np.uint32)))
        if not same:
            self.mismatches.append(what)
        self.outputs.update(repr((g.shape, gs.shape)).encode() + g.tobytes() + gs.tobytes())

    def line(self) -> str:
        compiled = self.cases - self.fallbacks
        return (f"{self.name}: {self.cases} cases, compiled {compiled}, NumPy fallback {self.fallbacks}, "
                f"mismatches {len(self.mismatches)}, inputs sha256 {self.inputs.hexdigest()[:16]}, "
                f"outputs sha256 {self.outputs.hexdigest()[:16]}, {time.perf_counter() - self.start:.1f} s")


_numpy_reference = cpu.reference_decode
_current: list[Group] = []


def _counting_reference(heatmaps, tags, cfg, size_wh):
    _current[0].fallbacks += 1
    return _numpy_reference(heatmaps, tags, cfg, size_wh)


def want(hm: np.ndarray, tg: np.ndarray, cfg: DecodeConfig, size=None):
    """The NumPy decode (decode.parse on the exact NumPy projection) of (J, h, w) / (J, h, w, T)."""
    tg = tg[..., None] if tg.ndim == 3 else tg
    return _numpy_reference(hm, tg, cfg, size or (hm.shape[2], hm.shape[1]))


def parser_vectors(g: Group, reference: Path) -> None:
    with np.load(reference / "parser_vectors.npz") as z:
        vectors = {k: z[k] for k in z.files}
    for mode, cfg in MODES.items():
        for case in range(20):
            hm, tg = vectors[f"case{case:02d}_heatmaps"][0], vectors[f"case{case:02d}_tags"][0]
            g.add_input(hm, tg)
            g.compare(cpu.decode(hm, tg, cfg, threads=1), want(hm, tg, cfg), (mode, case))


def pipeline_maps(g: Group, reference: Path) -> None:
    with np.load(reference / "pipeline_vectors.npz") as z:
        hm, tg = z["pA_final_heatmaps"][0], z["pA_tags"][0]
    g.add_input(hm, tg)
    cfg = DecodeConfig(detection_threshold=float(np.quantile(hm.max(axis=(1, 2)), 0.5)) * 0.5)
    for size in (None, (256, 128), (200, 90)):
        g.compare(cpu.decode(hm, tg, cfg, size_wh=size), want(hm, tg, cfg, size), size)


def scenes(g: Group) -> None:
    # Here, not at the top: only this group needs decode_speed (and the loop decoder it loads); the
    # other groups run on a bare aarch64 Python + NumPy without it.
    from higherhrnet_trt.benchmarks.decode_speed import synthetic_scene

    cfg = DecodeConfig()
    for seed, people in ((0, 1), (1, 30)):
        hm, tg = synthetic_scene(seed, size=(256, 256), people=people, sigma=2.0)
        g.add_input(hm, tg)
        g.compare(cpu.decode(hm, tg, cfg, size_wh=(512, 512)), want(hm, tg, cfg, (512, 512)), people)


def random_cases(g: Group, count: int) -> None:
    rng = np.random.default_rng(5)
    hm = (rng.random((17, 120, 160)) ** 6).astype(np.float32)
    tg = np.round(rng.normal(scale=2.0, size=(17, 120, 160, 2))).astype(np.float32)
    cfg = DecodeConfig(joint_order=tuple(rng.permutation(17).tolist()))
    g.add_input(hm, tg)
    g.compare(cpu.decode(hm, tg, cfg, size_wh=(240, 180)), want(hm, tg, cfg, (240, 180)), "rough")

    rng = np.random.default_rng(2)
    hm = (rng.random((3, 17, 40, 48)) ** 4).astype(np.float32)
    tg = rng.normal(size=(3, 17, 40, 48, 2)).astype(np.float32)
    g.add_input(hm, tg)
    for threads in (1, 3):
        got = cpu.decode_batch(hm, tg, DecodeConfig(), size_wh=(96, 80), threads=threads)
        for n in range(3):
            g.compare(got[n], want(hm[n], tg[n], DecodeConfig(), (96, 80)), ("batch", threads, n))

    for seed in range(count):
        r = np.random.default_rng(1000 + seed)
        j, h, w, t = (int(r.integers(lo, hi)) for lo, hi in ((1, 7), (1, 31), (1, 31), (1, 3)))
        kind, ratio = KINDS[r.integers(len(KINDS))], RATIOS[r.integers(len(RATIOS))]
        pad = int(r.integers(0, 4))
        hm = (r.random((j, h, w)) ** 3).astype(np.float32)
        tg = r.normal(scale=2.0, size=(j, h, w, t)).astype(np.float32)
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
            hm.flat[r.integers(0, hm.size, max(1, hm.size // 7))] = SPECIAL[r.integers(len(SPECIAL))]
        size = None if ratio is None else (max(1, round(w * ratio)), max(1, round(h * ratio)))
        cfg = DecodeConfig(joint_order=tuple(r.permutation(j).tolist()), max_people=int(r.integers(1, 41)),
                           adjust=bool(r.integers(2)), refine=bool(r.integers(2)), nms_padding=pad,
                           nms_kernel=2 * pad + 1,
                           detection_threshold=THRESHOLDS[r.integers(len(THRESHOLDS))])
        g.add_input(hm, tg)
        with np.errstate(all="ignore"):
            try:
                expected = want(hm, tg, cfg, size)
            except Exception as exc:  # NaN maps may be refused: then the compiled path must refuse too
                g.cases += 1
                try:
                    cpu.decode(hm, tg, cfg, size_wh=size, threads=2)
                    raised = None
                except Exception as other:
                    raised = type(other)
                if raised is not type(exc):
                    g.mismatches.append((seed, kind, f"NumPy raised {type(exc).__name__}, compiled {raised}"))
                g.outputs.update(type(exc).__name__.encode())
                continue
            g.compare(cpu.decode(hm, tg, cfg, size_wh=size, threads=2), expected, (seed, kind, size))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--library", help="a prebuilt cpu_decode library to load "
                   "(default: kernels/cpu.py builds one)")
    p.add_argument("--reference", type=Path, default=REFERENCE,
                   help="the official reference folder (parser_vectors.npz, pipeline_vectors.npz); "
                   "default $HIGHERHRNET_TRT_REFERENCE, else ../shared/reference next to the repository")
    p.add_argument("--random", type=int, default=300, help="seeded random cases (default 300)")
    p.add_argument("--print-flags", action="store_true",
                   help="print the flags kernels/cpu.py compiles with on this machine, then exit")
    p.add_argument("--build-with", metavar="CXX", help="let kernels/cpu.py build the library with CXX "
                   "(into its cache), print its path, then exit")
    args = p.parse_args(argv)
    if args.print_flags:
        print(shlex.join((*cpu.BASE_FLAGS, *cpu._arch_flags())))
        return 0
    if args.build_with:
        print(cpu.build_library(args.build_with))
        return 0
    if args.library:
        path = str(Path(args.library).resolve())
        cpu.build_library = lambda cxx=None: path
    print(f"machine {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}",
          flush=True)
    if not cpu.available():
        print(f"FAIL: the compiled decode does not load: {cpu.unavailable_reason()}")
        return 1
    cpu.reference_decode = _counting_reference
    groups = []
    steps = [("random", lambda g: random_cases(g, args.random)), ("scenes", scenes)]
    if (args.reference / "parser_vectors.npz").is_file():
        steps[:0] = [("parser", lambda g: parser_vectors(g, args.reference)),
                     ("pipeline", lambda g: pipeline_maps(g, args.reference))]
    else:
        print(f"official vectors NOT RUN: no parser_vectors.npz in {args.reference}")
    for name, step in steps:
        g = Group(name)
        _current[:] = [g]
        step(g)
        groups.append(g)
        print(g.line(), flush=True)
        for what in g.mismatches[:10]:
            print(f"  mismatch: {what}")
    bad = sum(len(g.mismatches) for g in groups)
    cases = sum(g.cases for g in groups)
    print(f"{'FAIL' if bad else 'OK'}: {cases} cases, {bad} mismatches between the compiled and the NumPy "
          "decode")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
