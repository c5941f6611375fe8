"""Official-style pipeline against ours, in one process, on the same inputs.

    python -m higherhrnet_trt.benchmarks.compare --config tiny|demo|w32_512 [--checkpoint PTH]
        [--precisions fp32,fp16,int8] [--fp16 F.onnx] [--int8 F.onnx] [--images 4] [--warmup 2]
        [--iters 10] [--threads N] [--json out.json] [--bar bar.png] [--curve curve.png]

Pipelines, each timed per image in three stages plus end to end (host ``perf_counter``, ms):

- **official-style**: what HRNet/HigherHRNet's ``tools/valid.py`` does on a CPU: official warp,
  torch ToTensor / Normalize, the PyTorch eager FP32 network (export/model.py) run twice (image,
  mirrored image) with the official stride-2 aggregation in torch, maps resized to the input size
  in torch, then the per-joint loop decoder (benchmarks/loop_decode.py) and the official mapping
  back to image pixels.
- **ours**: ``runtime.Pipeline``'s stages on the ONNX Runtime backend (flip test and stride-2
  aggregation inside the ONNX graph, NumPy resize, vectorised decoder), for every precision
  available: fp32 always (exported here from the same torch weights), fp16 / int8 when given
  (``--fp16`` / ``--int8``) or producible here (``export/quantize.py``: fp16 via ModelOpt AutoCast,
  int8 calibrated on generated scenes).

Stages: ``preprocess`` (frame -> input tensor), ``network`` (input -> stride-2 maps, flip test
included), ``decode`` (resize to the input size, grouping, refinement, image pixels), ``end_to_end``.
Inputs are generated multi-person scenes (benchmarks/scenes.py) of exactly the model's input size,
so the official input size equals the exported static size and both pipelines see identical
tensors. Pipelines are interleaved image by image, so load from other processes spreads evenly.

Also: decode latency against the number of people (1 to 30) on generated maps
(``decode_speed.synthetic_scene`` at the input size), vectorised vs loop decoder.

Memory: producing the fp16 variant of W32-512 here (ModelOpt AutoCast with its reference runs)
took more than 23 GB of host memory and was OOM-killed on a 24 GB machine; on such machines run
W32 with ``--precisions fp32`` or pass ready-made ``--fp16`` / ``--int8`` files. tiny and demo are
fine.

With random weights (no --checkpoint) the network times are real but the people found are noise,
and decode times then depend on that noise: the people curve is the controlled decode measurement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from higherhrnet_trt.benchmarks.scenes import generate_dataset, render_scene
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.geometry import FrameGeometry
from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import IMAGENET_MEAN, IMAGENET_STD
from higherhrnet_trt.core.preprocess import resize_align
from higherhrnet_trt.decode import DecodeConfig, parse
from higherhrnet_trt.export.checkpoint import load_checkpoint
from higherhrnet_trt.export.configs import CONFIGS, get_config
from higherhrnet_trt.export.fp16 import convert_fp16
from higherhrnet_trt.export.quantize import quantize_int8

from . import environment
from .bench import BenchSettings, StageRunner, _system_busy_s, _usage, stats_ms

# The output forms (and the stage names they share) keep their old import path (noqa: F401).
from .compare_report import PIPE_STAGES, format_table, plot_bars, plot_curve  # noqa: F401
from .decode_speed import _median_time, synthetic_scene
from .environment import write_json
from .loop_decode import loop_parse

cv2 = lazy_import("cv2")
torch = lazy_import("torch")

OFFICIAL = "official-style (PyTorch eager fp32 + loop decode)"


@dataclass
class PipelineTimes:
    """Per-image stage times (ms) of one pipeline and what it found."""

    name: str
    precision: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in PIPE_STAGES})
    people: list[int] = field(default_factory=list)
    model: str = ""

    def add(self, times: dict[str, float], people: int) -> None:
        for k in PIPE_STAGES:
            self.samples[k].append(times[k])
        self.people.append(people)

    def median(self, stage: str) -> float:
        return float(statistics.median(self.samples[stage]))

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "precision": self.precision, "model": self.model,
                "stages_ms": {k: stats_ms(v) for k, v in self.samples.items()},
                "images_per_s": 1e3 / float(np.mean(self.samples["end_to_end"])),
                "mean_people_found": float(np.mean(self.people))}


# --------------------------------------------------------------------------------------------------
# Official-style pipeline (torch)
# --------------------------------------------------------------------------------------------------


class OfficialStyle:
    """tools/valid.py on one image at scale 1, flip test, PROJECT2IMAGE, in PyTorch eager fp32."""

    def __init__(self, model, input_size: int, flip_index: Sequence[int], mean, std) -> None:
        self.torch = torch
        self.model = model.eval()
        self.input_size = int(input_size)
        self.flip_index = torch.tensor(list(flip_index), dtype=torch.long)
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.num_joints = model.cfg.num_joints

    def preprocess(self, image_bgr: np.ndarray):
        """BGR frame -> ((1, 3, h, w) tensor, FrameGeometry), as the official transforms."""
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)  # the official dataset reads RGB
        resized, center, scale = resize_align(rgb, self.input_size, 1.0, 1.0)
        x = self.torch.from_numpy(resized).permute(2, 0, 1).float().div(255.0)  # ToTensor
        x = ((x - self.mean) / self.std).unsqueeze(0)  # Normalize
        geometry = FrameGeometry(image_wh=(image_bgr.shape[1], image_bgr.shape[0]),
                                 base_size_wh=(resized.shape[1], resized.shape[0]),
                                 center=center, scale=scale)
        return x, geometry

    def network(self, x):
        """Official get_multi_stage_outputs (flip test: a second forward pass on the mirror image):
        -> heatmaps (1, J, h/2, w/2), tags list of (1, J, h/2, w/2)."""
        torch, F = self.torch, self.torch.nn.functional
        j = self.num_joints
        heatmaps, tags = [], []
        with torch.no_grad():
            for flipped in (False, True):
                inp = torch.flip(x, [3]) if flipped else x
                out4, out2 = self.model(inp)
                up = F.interpolate(out4, size=(out2.size(2), out2.size(3)), mode="bilinear",
                                   align_corners=False)
                h = (up[:, :j] + out2[:, :j]) / 2.0
                t = up[:, j:]
                if flipped:
                    h = torch.flip(h, [3])[:, self.flip_index]
                    t = torch.flip(t, [3])[:, self.flip_index]
                heatmaps.append(h)
                tags.append(t)
        return heatmaps, tags

    def decode(self, maps, geometry) -> np.ndarray:
        """Official aggregate_results (PROJECT2IMAGE) + loop decoder + get_final_preds."""
        torch, F = self.torch, self.torch.nn.functional
        heatmaps, tags = maps
        size = (geometry.base_size_wh[1], geometry.base_size_wh[0])
        with torch.no_grad():
            hs = [F.interpolate(h, size=size, mode="bilinear", align_corners=False) for h in heatmaps]
            ts = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in tags]
            final_h = (hs[0] + hs[1]) / 2.0
            final_t = torch.stack(ts, dim=4)
        grouped, _scores = loop_parse(final_h[0].numpy(), final_t[0].numpy())
        if grouped.shape[0] == 0:
            return grouped[:, :, :3]
        return geometry.map_to_image(np.ascontiguousarray(grouped[:, :, :3]))

    def run(self, image_bgr: np.ndarray) -> tuple[dict[str, float], int]:
        """({stage: milliseconds}, people found) for one frame."""
        times, people, _ = self.run_with_maps(image_bgr)
        return times, people

    def run_with_maps(self, image_bgr: np.ndarray):
        """:meth:`run`, plus the network's outputs (as ``network`` returns them)."""
        pc = time.perf_counter
        t0 = pc()
        x, geometry = self.preprocess(image_bgr)
        t1 = pc()
        maps = self.network(x)
        t2 = pc()
        people = self.decode(maps, geometry)
        t3 = pc()
        return ({"preprocess": (t1 - t0) * 1e3, "network": (t2 - t1) * 1e3, "decode": (t3 - t2) * 1e3,
                 "end_to_end": (t3 - t0) * 1e3}, int(people.shape[0]), maps)


class Ours:
    """runtime.Pipeline's stages on the ONNX Runtime backend (bench.StageRunner, batch 1)."""

    def __init__(self, path: str, threads: int, first_frame: np.ndarray) -> None:
        settings = BenchSettings(model=path, backend="onnxruntime", progress=False,
                                 backend_options={"threads": threads} if threads else {})
        self.runner = StageRunner(settings, frames=[first_frame])

    def run(self, image_bgr: np.ndarray) -> tuple[dict[str, float], int]:
        self.runner.frames = [image_bgr]
        t = self.runner.iteration()
        return ({"preprocess": t["preprocess"], "network": t["inference"], "decode": t["decode"],
                 "end_to_end": t["end_to_end"]}, len(self.runner.last_poses[0]))

    def close(self) -> None:
        self.runner.close()


# --------------------------------------------------------------------------------------------------
# Model variants
# --------------------------------------------------------------------------------------------------


def build_torch_model(config: str, checkpoint: str | None, seed: int = 0):
    """HigherHRNet of a config in eval mode: the checkpoint's weights, else seeded random ones."""
    # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
    from higherhrnet_trt.export.model import build_model

    torch.manual_seed(seed)
    model = build_model(get_config(config))
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model.eval()


def write_scenes(folder: str, count: int, size: int, seed: int) -> str:
    """Generated scenes of size x size for calibration / evaluation; returns the annotation file."""
    return generate_dataset(folder, count, seed=seed, size=(size, size))


def make_variants(
    model, work_dir: str, precisions: Sequence[str], given: dict[str, str | None],
    random_weights: bool, calib_images: int = 16, log: Callable[[str], None] = print,
) -> tuple[dict[str, str], list[str]]:
    """ONNX files per precision: fp32 exported from ``model`` (static, the config's input size, flip
    test); fp16 / int8 from ``given`` or produced from the fp32 file. Returns ({precision: path},
    notes on what was skipped and why)."""
    # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
    from higherhrnet_trt.export.onnx_export import export_onnx

    notes: list[str] = []
    size = model.cfg.input_size
    paths: dict[str, str] = {}
    fp32 = given.get("fp32") or os.path.join(work_dir, f"{model.cfg.name}_{size}_fp32.onnx")
    if not given.get("fp32"):
        export_onnx(model, fp32, input_size=size, flip=True, random_weights=random_weights)
    paths["fp32"] = fp32
    for prec in ("fp16", "int8"):
        if given.get(prec):
            paths[prec] = given[prec]
            continue
        if prec not in precisions:
            continue
        out = os.path.join(work_dir, f"{model.cfg.name}_{size}_{prec}.onnx")
        t0 = time.perf_counter()
        try:
            import warnings

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _quantize(prec, fp32, out, work_dir, size, calib_images)
            notes.extend(f"{prec}: {w.message}" for w in caught)
        except Exception as e:  # ModelOpt missing or failing: say so, keep the other rows
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            notes.append(f"{prec}: not produced ({type(e).__name__}: {first})")
            continue
        log(f"made {prec} ONNX in {time.perf_counter() - t0:.1f}s: {out}")
        paths[prec] = out
    return paths, notes


def _quantize(prec: str, fp32: str, out: str, work_dir: str, size: int, calib_images: int) -> None:
    """fp16 (AutoCast) or int8 (calibrated on generated scenes of the input size) of ``fp32``."""
    if prec == "fp16":
        convert_fp16(fp32, out)
    else:
        calib = os.path.join(work_dir, "calib")
        # quantize_int8 holds a fifth of the folder out to measure the error.
        write_scenes(calib, calib_images + calib_images // 4, size, seed=1)
        quantize_int8(fp32, out, images=os.path.join(calib, "images"), num_images=calib_images,
                      progress=False, cache_dir=os.path.join(work_dir, "cache"))


# --------------------------------------------------------------------------------------------------
# Decode latency vs people
# --------------------------------------------------------------------------------------------------


def decode_curve(size: int, people: Sequence[int], repeat: int = 3, repeat_loop: int = 1,
                 progress: bool = False) -> list[dict[str, Any]]:
    """Median decode time (ms) of the vectorised and the loop decoder on generated maps of
    (J, size, size) with T = 2, for each requested number of people (seed = that number)."""
    cfg = DecodeConfig()
    rows = []
    for n in people:
        h, t = synthetic_scene(seed=int(n), size=(size, size), people=int(n))
        found = int(parse(h, t, cfg)[0].shape[0])
        fast = _median_time(lambda h=h, t=t: parse(h, t, cfg), repeat) * 1e3
        loop = _median_time(lambda h=h, t=t: loop_parse(h, t, cfg), repeat_loop) * 1e3
        rows.append({"people": int(n), "people_found": found, "vectorised_ms": fast, "loop_ms": loop,
                     "speedup": loop / fast})
        if progress:
            print(f"  decode, {n:2d} people ({found} found): loop {loop:8.1f} ms, vectorised "
                  f"{fast:7.2f} ms", file=sys.stderr)
    return rows


# --------------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------------


def _pipelines(model, paths: dict[str, str], frames: list[np.ndarray], threads: int):
    """[(PipelineTimes, pipeline)]: official-style first (the speed-up reference), then ours per
    precision."""
    size = model.cfg.input_size
    official = OfficialStyle(model, size, keypoint_set(model.cfg.dataset).flip_index,
                             IMAGENET_MEAN, IMAGENET_STD)
    runners: list[tuple[PipelineTimes, Any]] = [(PipelineTimes(OFFICIAL, "fp32", model="torch"),
                                                 official)]
    for prec, path in paths.items():
        runners.append((PipelineTimes(f"ours: onnxruntime {prec}", prec, model=path),
                        Ours(path, threads, frames[0])))
    return runners


def _run_rounds(runners, frames: list[np.ndarray], warmup: int, iters: int,
                say: Callable[[str], None]) -> float | None:
    """Warm-up, then ``iters`` timed rounds, pipelines interleaved image by image (same load for
    all); ours are closed at the end. Returns the CPU % other processes used meanwhile (None:
    unknown)."""
    try:
        for _times, pipe in runners:  # warm-up, each pipeline on every image
            for _ in range(warmup):
                for frame in frames:
                    pipe.run(frame)
        busy0, u0 = _system_busy_s(), _usage()
        for it in range(iters):
            for frame in frames:
                for times, pipe in runners:  # interleaved: same load for all
                    times.add(*pipe.run(frame))
            say(f"  round {it + 1}/{iters}")
        busy1, u1 = _system_busy_s(), _usage()
        other = None
        if busy0 is not None and busy1 is not None and u1[0] > u0[0]:
            ours = (u1[1] - u0[1]) + (u1[2] - u0[2])
            other = max(0.0, 100.0 * ((busy1 - busy0) - ours) / (u1[0] - u0[0]))
        return other
    finally:
        for _, pipe in runners:
            if isinstance(pipe, Ours):
                pipe.close()


def _rows(runners) -> list[dict[str, Any]]:
    """Each pipeline's summary with its speed-up over the official-style one (the first)."""
    base = runners[0][0]
    rows = []
    for times, _ in runners:
        rec = times.summary()
        rec["speedup_vs_official"] = {k: base.median(k) / times.median(k) for k in PIPE_STAGES}
        rows.append(rec)
    return rows


def run_compare(
    config: str = "tiny", checkpoint: str | None = None, precisions: Sequence[str] = ("fp32", "fp16", "int8"),
    given: dict[str, str | None] | None = None, images: int = 4, warmup: int = 2, iters: int = 10,
    threads: int = 0, people: Sequence[int] = tuple(range(1, 31)), decode_repeat: int = 3,
    work_dir: str | None = None, seed: int = 0, progress: bool = True,
) -> dict[str, Any]:
    """Build, run and time every pipeline; returns the JSON-able result."""
    threads = threads or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    model = build_torch_model(config, checkpoint, seed)
    size = model.cfg.input_size
    say = (lambda m: print(m, file=sys.stderr)) if progress else (lambda m: None)
    own_tmp = None
    if work_dir is None:
        own_tmp = tempfile.TemporaryDirectory(prefix="higherhrnet_compare_")
        work_dir = own_tmp.name
    os.makedirs(work_dir, exist_ok=True)
    try:
        paths, notes = make_variants(model, work_dir, precisions, dict(given or {}),
                                     random_weights=checkpoint is None, log=say)
        frames = [render_scene(np.random.default_rng([seed, i]), (size, size))[0] for i in range(images)]
        runners = _pipelines(model, paths, frames, threads)
        other = _run_rounds(runners, frames, warmup, iters, say)
        say(f"decode latency vs people at {size}x{size}: {list(people)}")
        curve = decode_curve(size, people, repeat=decode_repeat, progress=progress) if people else []
    finally:
        if own_tmp is not None:
            own_tmp.cleanup()
    return {
        "schema": "higherhrnet_trt.compare/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config, "input_size": size, "checkpoint": checkpoint,
        "random_weights": checkpoint is None, "images": images, "warmup": warmup, "iters": iters,
        "threads": threads, "other_processes_cpu_percent": other,
        "clock": "perf_counter (host), ms per image, medians in the table",
        "environment": environment.collect("onnxruntime"),
        "pipelines": _rows(runners), "decode_vs_people": curve, "notes": notes,
        "ratio_definition": "official-style median / this pipeline's median (> 1 = faster than "
                            "official-style)",
    }


def _people(text: str) -> list[int]:
    """'1-30' -> 1..30; '1,5,10' -> [1, 5, 10]; '' or 'none' -> []."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    if any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("people counts must be >= 1")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.compare",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="w32_512", choices=sorted(CONFIGS),
                    help="network config (export/configs.py)")
    ap.add_argument("--checkpoint", help="weights (.pth); default: seeded random weights")
    ap.add_argument("--precisions", default="fp32,fp16,int8",
                    help="our ONNX variants to run (fp32 always runs; fp16 / int8 are produced "
                         "with ModelOpt unless given with --fp16 / --int8; producing them for W32 "
                         "needs more than 24 GB of RAM)")
    ap.add_argument("--fp16", help="an fp16 ONNX of the same weights to use instead of producing one")
    ap.add_argument("--int8", help="an INT8 Q/DQ ONNX of the same weights to use instead")
    ap.add_argument("--images", type=int, default=4, help="generated scenes (input size, square)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed passes over the images per pipeline")
    ap.add_argument("--iters", type=int, default=10, help="timed rounds over the images")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for torch and onnxruntime alike (0 = one per core)")
    ap.add_argument("--people", type=_people, default=list(range(1, 31)), metavar="LIST",
                    help="people counts of the decode curve, e.g. 1-30 or 1,5,10; 'none' skips it "
                         "(default 1-30)")
    ap.add_argument("--decode-repeat", type=int, default=3,
                    help="runs of the vectorised decoder per point (median); the loop decoder runs once")
    ap.add_argument("--work-dir", help="keep the ONNX files and calibration scenes here")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--bar", help="bar chart PNG of the stage medians")
    ap.add_argument("--curve", help="decode latency vs people PNG")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    try:
        r = run_compare(args.config, args.checkpoint, precisions,
                        {"fp16": args.fp16, "int8": args.int8}, args.images, args.warmup, args.iters,
                        args.threads, args.people, args.decode_repeat, args.work_dir,
                        progress=not args.quiet)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(r))
    if args.json:
        write_json(args.json, r)
    if args.bar:
        print(f"wrote {plot_bars(r, args.bar)}")
    if args.curve and r["decode_vs_people"]:
        print(f"wrote {plot_curve(r, args.curve)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
