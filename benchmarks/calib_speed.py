"""INT8 calibration pass vs plain fp32 inference: time ratio and peak memory, one run.

Times, on the same images: N plain fp32 inferences (ONNX Runtime CPU, default graph optimisation,
pre-processed inputs) and the calibration pass of ``calibrate`` for each method and each
``--samples`` setting (reading and pre-processing the images, the ONNX Runtime session with its
taps or extra outputs, the streaming histograms and the thresholds; the session's creation
included). ``--samples 65536,0`` times the default in-graph pass and the exact one (every value).
Each image's plain inference runs right before the pass reads it, timed apart and subtracted from
the pass's time, so both see the same load on a shared machine. Prints wall and CPU seconds
(this process, all threads: less sensitive to other people's jobs) and both ratios calibration /
inference per method, and the process's peak resident memory (``ru_maxrss``: the whole run,
placement by ModelOpt included).

    python -m higherhrnet_trt.benchmarks.calib_speed w32_512.onnx --num-images 100 --samples 65536,0
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.export import quantize as q
from higherhrnet_trt.export.calib_data import InputMaker, list_images
from higherhrnet_trt.export.calib_taps import DEFAULT_SAMPLE
from higherhrnet_trt.export.quant_common import QuantizeReport, check_fp32_input

cv2 = lazy_import("cv2")
ort = lazy_import("onnxruntime")


def _synthetic_images(folder: str, count: int, seed: int = 0) -> str:
    """``count`` 640x480 frames of blurred shapes and noise (no dataset on this machine)."""
    import numpy as np

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = np.empty((480, 640, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        for _ in range(12):
            color = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(0, 640)), int(rng.integers(0, 480))),
                       int(rng.integers(10, 80)), color, -1)
        img = cv2.GaussianBlur(img, (5, 5), 0)
        cv2.imwrite(os.path.join(folder, f"frame_{i:04d}.jpg"), img)
    return folder


def _clock() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    return time.perf_counter(), time.process_time()


class _Interleaved:
    """The pass's InputMaker, except that each feed it yields is first run through a plain fp32
    session, timed apart: plain inference and calibration alternate image by image, so both see
    the same load on a shared machine (timing them one after the other, the load drifted by 1.7x
    between the two halves of a run)."""

    def __init__(self, maker, onnx: str):
        self._maker = maker
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # Idle while the pass runs: its threads must not spin on the cores the pass uses.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
        self.wall = self.cpu = 0.0
        self.count = 0

    def __getattr__(self, name):
        return getattr(self._maker, name)

    def warm_up(self, feed) -> None:
        self._session.run(None, feed)

    def feeds(self, *args, **kwargs):
        for feed in self._maker.feeds(*args, **kwargs):
            w0, c0 = _clock()
            self._session.run(None, feed)
            w1, c1 = _clock()
            self.wall += w1 - w0
            self.cpu += c1 - c0
            self.count += 1
            yield feed


def _time_method(onnx: str, work: str, feeds, placement, maker, paths, method: str, sample: int,
                 tmp: str, log) -> dict:
    """One method's calibration pass with a plain inference of each image interleaved (timed
    apart and subtracted); prints and returns both times and both ratios."""
    plain = _Interleaved(maker, onnx)
    plain.warm_up(feeds[0])  # not timed, as the pass's own session creation is
    report = QuantizeReport(path="", reference=onnx, precision="int8", checked_on="",
                            graph_optimization="disable")
    w0, c0 = _clock()
    q._calibrate(work, placement, plain, paths, method, 99.999, len(paths), True, tmp, report, [],
                 sample)
    w1, c1 = _clock()
    wall, cpu = w1 - w0 - plain.wall, c1 - c0 - plain.cpu
    log(f"{method:<10} sample={sample:<6}: {report.calibration_images} images: calibration "
        f"{wall:.1f}s wall / {cpu:.1f}s CPU, {plain.count} plain fp32 inferences (ORT default "
        f"optimisation, interleaved) {plain.wall:.1f}s / {plain.cpu:.1f}s; ratio calibration / "
        f"inference: wall {wall / plain.wall:.2f}x, CPU {cpu / plain.cpu:.2f}x")
    return {"wall": wall, "cpu": cpu, "plain_wall": plain.wall, "plain_cpu": plain.cpu}


def run(onnx: str, images: str, num_images: int, methods: list[str], samples: list[int] | None = None,
        log=print) -> dict:
    samples = samples if samples is not None else [DEFAULT_SAMPLE]

    src_model, summary, meta = check_fp32_input(onnx)
    maker = InputMaker(summary, meta)
    paths = list_images(images)[:num_images]
    first = list(maker.feeds(paths[:1], []))  # warms each plain session up
    result = {"images": len(paths), "methods": {}}
    with tempfile.TemporaryDirectory(prefix="calib_speed_") as tmp:
        work = os.path.join(tmp, "model.onnx")  # ModelOpt writes files next to its input
        shutil.copyfile(onnx, work)
        t0 = time.perf_counter()
        _, placement = q._placement(work, maker, paths, "fp16", tmp, src_model, onnx)
        log(f"placement (ModelOpt, one image, once per model): {time.perf_counter() - t0:.1f}s; "
            f"{len(placement.scales)} activation quantizers")
        for sample in samples:
            for method in methods:
                key = f"{method} sample={sample}"
                result["methods"][key] = _time_method(onnx, work, first, placement, maker, paths,
                                                      method, sample, tmp, log)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    log(f"peak resident memory of this process: {result['peak_rss_gb']:.2f} GB")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", help="fp32 ONNX written by 'higherhrnet-trt export'")
    p.add_argument("--images", help="calibration images (default: synthetic frames)")
    p.add_argument("--num-images", type=int, default=100)
    p.add_argument("--methods", default="entropy,max,percentile")
    p.add_argument("--samples", default=None,
                   help="comma-separated 'calibrate --sample' values to time (default: the default; "
                        "0: every value, as ModelOpt)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="calib_images_") as tmp:
        images = args.images or _synthetic_images(tmp, args.num_images)
        samples = [int(v) for v in args.samples.split(",")] if args.samples else None
        run(args.onnx, images, args.num_images, args.methods.split(","), samples)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
