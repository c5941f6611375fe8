"""Memory soak: run the whole pipeline on many frames and report host and device memory over time.

A robot runs for hours: a few bytes leaked per frame is an out-of-memory kill by the afternoon. This
loop runs ``Pipeline.predict`` (pre-processing, backend, decode) ``--frames`` times (10,000 by
default) on a fixed set of frames, samples the process's resident memory (/proc/self/statm) and the
GPU's used memory (cudaMemGetInfo, when there is a GPU) every ``--every`` frames, and reports the
growth after warm-up: first sample after ``--warmup`` frames to the last, plus the least-squares
slope per 1,000 frames, and the same over the second half of the samples alone: allocators and
caches can keep settling past the warm-up (measured on the CPU, ONNX Runtime, 8 generated scenes:
+10.6 MiB in frames 200-300, then +0.5 MiB over 900 frames in shrinking steps), and a leak shows
as a second-half slope that does not fall. It prints numbers; it asserts nothing.

    python -m higherhrnet_trt.benchmarks.soak MODEL [--backend B] [--frames 10000] [--json soak.json]

Frames: the bundled sample (runtime/assets/sample.jpg) and its mirror, alternated, unless
``--images DIR`` is given: varying people counts exercise the decoder's variable-size paths.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file

from ..core.errors import Terminated, interrupt_exit_code, interrupt_word, sigterm_as_interrupt
from ..runtime.gpu_pipeline import GpuPipeline
from ..runtime.pipeline import Pipeline
from ..runtime.sources import import_cv2
from .environment import import_cudart, write_json


def host_rss_mib() -> float:
    """Current resident set size of this process (not the peak), MiB. Linux /proc; psutil elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def device_used_mib() -> float | None:
    """Used memory of GPU 0 (all processes), MiB; None without a GPU or cuda-python."""
    cudart = import_cudart()
    if cudart is None:
        return None
    try:
        err, free, total = cudart.cudaMemGetInfo()
    except Exception:  # no driver, no device
        return None
    return (total - free) / 2**20 if int(err) == 0 else None


def growth(frames: list[int], values: list[float]) -> dict[str, float]:
    """First -> last change and the least-squares slope per 1,000 frames of a sampled series, MiB."""
    x, y = np.asarray(frames, np.float64), np.asarray(values, np.float64)
    slope = float(np.polyfit(x, y, 1)[0]) * 1000 if len(x) >= 2 and np.ptp(x) > 0 else 0.0
    return {"start_mib": round(float(y[0]), 2), "end_mib": round(float(y[-1]), 2),
            "max_mib": round(float(y.max()), 2), "growth_mib": round(float(y[-1] - y[0]), 2),
            "slope_mib_per_1000_frames": round(slope, 3)}


def load_frames(images_dir: str | None) -> list[np.ndarray]:
    cv2 = import_cv2()
    if images_dir:
        names = sorted(n for n in os.listdir(images_dir) if n.lower().endswith((".jpg", ".jpeg", ".png")))
        frames = [cv2.imread(os.path.join(images_dir, n), cv2.IMREAD_COLOR) for n in names[:64]]
        frames = [f for f in frames if f is not None]
        if not frames:
            raise UserError(f"no readable .jpg/.png images in {images_dir}")
        return frames

    frame = cv2.imread(package_file(SAMPLE_IMAGE), cv2.IMREAD_COLOR)
    return [frame, np.ascontiguousarray(frame[:, ::-1])]


def soak(model: str, backend: str = "auto", frames: int = 10_000, warmup: int = 200, every: int = 250,
         images_dir: str | None = None, progress: bool = True, gpu_pipeline: bool = False,
         **backend_options: Any) -> dict[str, Any]:
    """Run the loop; ``gpu_pipeline`` runs ``runtime.gpu_pipeline.GpuPipeline`` (GPU pre-processing
    and decode, CUDA graph; an engine or a .pth checkpoint) instead of ``Pipeline``.

    Returns {"frames", "seconds", "fps", "host": growth, "device": growth | None,
    "host_second_half": growth, "device_second_half": growth | None,
    "samples": [[frame, host_mib, device_mib], ...], "people_total", "interrupted"}. Ctrl-C or
    SIGTERM (under core.errors.sigterm_as_interrupt) ends the loop early: the result covers the
    frames done (a last sample taken then), and "interrupted" names the signal (else None)."""
    images = load_frames(images_dir)
    samples: list[tuple[int, float, float | None]] = []
    people = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, unit="frame", desc="soak", file=sys.stderr)
    if gpu_pipeline:
        opened = GpuPipeline(model, cuda_graph=True, **backend_options)
    else:
        opened = Pipeline(model, backend=backend, **backend_options)
    interrupted = None
    done = 0
    with opened as pipe:
        t0 = time.perf_counter()
        try:
            for i in range(frames):
                people += len(pipe.predict(images[i % len(images)]))
                done = i + 1
                if done >= warmup and (done - warmup) % every == 0 or done == frames:
                    samples.append((done, host_rss_mib(), device_used_mib()))
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt as e:  # keep what was measured, as the CLI commands do
            interrupted = e
            if done and (not samples or samples[-1][0] != done):
                samples.append((done, host_rss_mib(), device_used_mib()))
        seconds = time.perf_counter() - t0
        backend_name = ("gpu pipeline, " if gpu_pipeline else "") + pipe.backend.name
    if bar is not None:
        bar.close()
    if not samples:  # stopped before the first frame: nothing measured
        raise interrupted if interrupted is not None else RuntimeError("no frames ran")
    xs = [s[0] for s in samples]
    dev = [s[2] for s in samples]
    has_dev = bool(dev) and all(d is not None for d in dev)
    half = len(samples) // 2
    return {
        "model": os.path.basename(model), "backend": backend_name, "frames": done, "warmup": warmup,
        "seconds": round(seconds, 1), "fps": round(done / max(seconds, 1e-9), 1),
        "people_total": people,
        "interrupted": None if interrupted is None else interrupt_word(interrupted),
        "host": growth(xs, [s[1] for s in samples]),
        "device": growth(xs, dev) if has_dev else None,
        "host_second_half": growth(xs[half:], [s[1] for s in samples[half:]]),
        "device_second_half": growth(xs[half:], dev[half:]) if has_dev else None,
        "samples": [[x, round(h, 2), None if d is None else round(d, 2)] for x, h, d in samples],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.soak",
                                 description="Host and GPU memory over a long run of the whole pipeline.")
    ap.add_argument("model", help="model file (.onnx, .engine, .pth) as for 'higherhrnet-trt run'")
    ap.add_argument("--backend", default="auto", help="auto (from the extension) or a backend name")
    ap.add_argument("--frames", type=int, default=10_000, help="frames to run (default 10000)")
    ap.add_argument("--warmup", type=int, default=200,
                    help="frames before the first sample (allocators and caches settle)")
    ap.add_argument("--every", type=int, default=250, help="sample memory every N frames")
    ap.add_argument("--images", help="folder of frames to cycle through (default: the bundled sample)")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime CPU threads (0: its default)")
    ap.add_argument("--json", help="write the result here")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--gpu-pipeline", action="store_true",
                    help="run the all-GPU pipeline (GPU pre-processing + decode kernels, CUDA graph; an "
                         "engine or a .pth checkpoint) instead of the host pipeline")
    args = ap.parse_args(argv)
    if args.gpu_pipeline and (args.backend != "auto" or args.threads):
        ap.error("--gpu-pipeline picks its network from the file (engine or .pth): "
                 "drop --backend / --threads")

    opts = {"threads": args.threads} if args.threads else {}
    with sigterm_as_interrupt():  # SIGTERM (timeout, systemd) stops the loop like Ctrl-C
        res = soak(args.model, args.backend, args.frames, args.warmup, args.every, args.images,
                   progress=not args.no_progress, gpu_pipeline=args.gpu_pipeline, **opts)
    stopped = None
    if res["interrupted"] is not None:
        stopped = Terminated() if res["interrupted"] == interrupt_word(Terminated()) else KeyboardInterrupt()
        print(f"{res['interrupted']} after {res['frames']} of {args.frames} frames: the numbers "
              "below cover those", file=sys.stderr)
    h = res["host"]
    print(f"{res['frames']} frames ({res['backend']}, {res['fps']} fps, {res['people_total']} people): "
          f"host RSS {h['start_mib']:.1f} -> {h['end_mib']:.1f} MiB (growth {h['growth_mib']:+.2f}, slope "
          f"{h['slope_mib_per_1000_frames']:+.3f} MiB / 1000 frames)")
    d, h2, d2 = res["device"], res["host_second_half"], res["device_second_half"]
    print("GPU used: " + ("n/a (no GPU)" if d is None else
                          f"{d['start_mib']:.1f} -> {d['end_mib']:.1f} MiB (growth {d['growth_mib']:+.2f}, "
                          f"slope {d['slope_mib_per_1000_frames']:+.3f} MiB / 1000 frames)"))
    print(f"second half: host slope {h2['slope_mib_per_1000_frames']:+.3f} MiB / 1000 frames"
          + ("" if d2 is None else f", GPU slope {d2['slope_mib_per_1000_frames']:+.3f} MiB / 1000 frames"))
    if args.json:
        write_json(args.json, res)
    return 0 if stopped is None else interrupt_exit_code(stopped)


if __name__ == "__main__":
    sys.exit(main())
