"""One run, one table: a model at fp32 / fp16 / INT8 under ONNX Runtime and OpenVINO, against the
official-style pipeline (1.00x), end to end and per stage, people per frame, error against fp32.

    python -m higherhrnet_trt.benchmarks.w32_table --fp32 W.onnx [--fp16 W.fp16.onnx]
        [--int8 W.int8.onnx] [--config w32_512] [--frames 3] [--warmup 0] [--threads 2]
        [--backends onnxruntime,openvino] [--json out.json]

Make the files first: the fp32 file with this script's ``--export`` (the seeded random weights the
official-style pipeline is built from, so both run the same network; ``higherhrnet-trt export``
without a checkpoint draws the same ones at its default ``--seed 0``), then fp16 / INT8 with the CLI:

    python -m higherhrnet_trt.benchmarks.w32_table --export w32.onnx [--config w32_512]
    higherhrnet-trt convert w32.onnx -o w32.fp16.onnx
    higherhrnet-trt calibrate w32.onnx --images scenes/images --num-images 8 -o w32.int8.onnx

Cells run one after another, each with one pipeline loaded (the W32 sessions take a few GB each,
so they are not kept side by side); every cell sees the same generated scenes of the model's input
size. Stages as ``higherhrnet-trt bench`` names them: preprocess (frame -> input tensor), infer
(network with the flip test), decode (maps -> people in image pixels), end_to_end; host
``perf_counter``, ms, median over the frames. Error against fp32: the heatmaps (stride-2 maps the
decoder reads) of each cell on every frame against ONNX Runtime fp32 on the same frame, max and mean
absolute error; people agreement: frames where the cell found as many people as ORT fp32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from higherhrnet_trt.benchmarks.scenes import render_scene
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import IMAGENET_MEAN, IMAGENET_STD
from higherhrnet_trt.export.configs import get_config

from . import environment
from .bench import BenchSettings, StageRunner, _system_busy_s, _usage
from .compare import OfficialStyle, build_torch_model
from .environment import write_json

torch = lazy_import("torch")

STAGES = ("preprocess", "infer", "decode", "end_to_end")
OFFICIAL = "official-style (PyTorch eager fp32 + loop decode)"


@dataclass
class Cell:
    """One pipeline's per-frame results. times: stage -> ms per frame; people: found per frame;
    err_max / err_mean: heatmap abs error against ORT fp32 (None for the reference itself or when
    not comparable)."""

    name: str
    times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STAGES})
    people: list[int] = field(default_factory=list)
    err_max: float | None = None
    err_mean: float | None = None
    same_people: int | None = None
    other_cpu: float | None = None  # % of one core other processes used while this cell ran
    note: str = ""
    refused: str = ""  # the backend's one-line refusal when the cell could not run (no times)

    def median(self, stage: str) -> float:
        return float(statistics.median(self.times[stage]))


def _fmt_ms(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def format_table(cells: Sequence[Cell]) -> str:
    """Markdown table, the first cell as 1.00x: each stage as 'median ms (ratio x)' with ratio =
    first cell's median / this cell's median (> 1 = faster than the first)."""
    base = cells[0]
    head = ("| pipeline | preprocess ms | infer ms | decode ms | end-to-end ms | images/s | "
            "people per frame | heatmap err vs fp32 (max / mean) | people = fp32 |")
    lines = [head, "|" + "---|" * 9]
    for c in cells:
        if c.refused:
            lines.append(f"| {c.name} | refused: {c.refused} |" + " |" * 7)
            continue
        parts = [f"{_fmt_ms(c.median(k))} ({base.median(k) / c.median(k):.2f}x)" for k in STAGES]
        ips = 1e3 / c.median("end_to_end")
        err = "reference" if c.note == "reference" else \
            "n/a" if c.err_max is None else f"{c.err_max:.2e} / {c.err_mean:.2e}"
        same = "n/a" if c.same_people is None else f"{c.same_people}/{len(c.people)}"
        lines.append(f"| {c.name} | " + " | ".join(parts) + f" | {ips:.2f} | "
                     f"{', '.join(str(p) for p in c.people)} | {err} | {same} |")
    return "\n".join(lines)


def heatmap_error(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference of two heatmap arrays of one shape (fp16 outputs promoted)."""
    d = np.abs(got.astype(np.float32) - ref.astype(np.float32))
    return float(d.max()), float(d.mean())


def fill_errors(cells: Sequence[Cell], maps: dict[str, list[np.ndarray]], ref: str) -> None:
    """Set each cell's error and people agreement against the cell named ``ref`` (per-frame
    heatmaps in ``maps``; a cell without maps, or with other shapes, keeps n/a)."""
    ref_cell = next(c for c in cells if c.name == ref)
    ref_maps = maps[ref]
    for c in cells:
        if c.refused:
            continue
        c.same_people = sum(int(a == b) for a, b in zip(c.people, ref_cell.people))
        if c.name == ref:
            c.note = "reference"
            continue
        got = maps.get(c.name)
        if not got or any(g.shape != r.shape for g, r in zip(got, ref_maps)):
            continue
        errs = [heatmap_error(g, r) for g, r in zip(got, ref_maps)]
        c.err_max = max(e[0] for e in errs)
        c.err_mean = float(np.mean([e[1] for e in errs]))


def _time_ours(path: str, backend: str, options: dict[str, Any], frames: list[np.ndarray],
               warmup: int) -> tuple[Cell, list[np.ndarray]]:
    """runtime.Pipeline's stages (bench.StageRunner) on ``backend``: a Cell and the heatmaps
    (1, J, h, w) per frame."""
    settings = BenchSettings(model=path, backend=backend, progress=False, backend_options=options)
    runner = StageRunner(settings, frames=[frames[0]])
    cell, maps = Cell(""), []
    if hasattr(runner.backend, "runtime_precisions"):  # OpenVINO: what its convolutions really ran in
        convs = runner.backend.runtime_precisions().get("Convolution", {})
        cell.note = "convolutions " + ", ".join(f"{k}: {v}" for k, v in sorted(convs.items()))
    level = getattr(runner.backend, "graph_optimization_used", None)
    if level:  # ONNX Runtime: the level "auto" picked from the file (needed_level)
        cell.note = f"graph optimisation {level}"
    try:
        for frame in frames[:1] * warmup:
            runner.frames = [frame]
            runner.iteration()
        for frame in frames:
            runner.frames = [frame]
            t = runner.iteration()
            for k, key in zip(STAGES, ("preprocess", "inference", "decode", "end_to_end")):
                cell.times[k].append(t[key])
            cell.people.append(len(runner.last_poses[0]))
            maps.append(np.array(runner.pipe.model_maps(runner.last_outputs)[0], copy=True))
    finally:
        runner.close()
    return cell, maps


def _time_official(config: str, checkpoint: str | None, frames: list[np.ndarray],
                   warmup: int) -> tuple[Cell, list[np.ndarray]]:
    """compare.OfficialStyle on the same weights: a Cell and its averaged stride-2 heatmaps."""
    model = build_torch_model(config, checkpoint)
    off = OfficialStyle(model, model.cfg.input_size, keypoint_set(model.cfg.dataset).flip_index,
                        IMAGENET_MEAN, IMAGENET_STD)
    for frame in frames[:1] * warmup:
        off.run(frame)
    cell, maps = Cell(OFFICIAL), []
    for frame in frames:
        times, people, out = off.run_with_maps(frame)
        for k, name in zip(STAGES, ("preprocess", "network", "decode", "end_to_end")):
            cell.times[k].append(times[name])
        cell.people.append(people)
        maps.append(((out[0][0] + out[0][1]) / 2.0).numpy())
    return cell, maps


class OtherLoad:
    """CPU % of one core that other processes used between enter and exit (None: unknown), from
    /proc/stat's busy time minus this process's CPU time, as compare and bench report it."""

    percent: float | None = None

    def __enter__(self) -> OtherLoad:
        self._busy0, self._u0 = _system_busy_s(), _usage()
        return self

    def __exit__(self, *exc) -> None:
        busy1, u1 = _system_busy_s(), _usage()
        if self._busy0 is not None and busy1 is not None and u1[0] > self._u0[0]:
            ours = (u1[1] - self._u0[1]) + (u1[2] - self._u0[2])
            self.percent = max(0.0, 100.0 * ((busy1 - self._busy0) - ours) / (u1[0] - self._u0[0]))


def run_table(files: dict[str, str], config: str, checkpoint: str | None, backends: Sequence[str],
              frames_n: int, warmup: int, threads: int, seed: int = 0,
              say=lambda m: print(m, file=sys.stderr)) -> tuple[list[Cell], dict[str, Any]]:
    """Every cell in this process, one after another; returns the cells (official first) and the
    run's context (environment, load)."""
    torch.set_num_threads(threads)
    size = get_config(config).input_size
    frames = [render_scene(np.random.default_rng([seed, i]), (size, size))[0] for i in range(frames_n)]
    load0 = os.getloadavg()
    cells, maps = [], {}
    say("official-style ...")
    with OtherLoad() as other:
        cell, maps[OFFICIAL] = _time_official(config, checkpoint, frames, warmup)
    cell.other_cpu = other.percent
    cells.append(cell)
    for backend in backends:
        options: dict[str, Any] = {"threads": threads}
        for prec, path in files.items():
            name = f"ours: {backend} {prec}"
            say(f"{name} ...")
            cell_options = dict(options)
            t0 = time.perf_counter()
            try:
                with OtherLoad() as other:
                    cell, maps[name] = _time_ours(path, backend, cell_options, frames, warmup)
            except UserError as e:  # e.g. OpenVINO's int8 probe failing on this CPU: keep the table
                say(f"{name}: refused: {e}")
                cells.append(Cell(name, refused=str(e)))
                continue
            cell.other_cpu = other.percent
            cell.name = name
            cell.note = "; ".join(n for n in (f"cell wall {time.perf_counter() - t0:.0f} s incl. "
                                              f"load", f"options {cell_options}", cell.note) if n)
            cells.append(cell)
    fill_errors(cells, maps, ref="ours: onnxruntime fp32" if "onnxruntime" in backends else cells[1].name)
    context = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "config": config,
               "checkpoint": checkpoint, "random_weights": checkpoint is None, "files": files,
               "frames": frames_n, "warmup": warmup, "threads": threads,
               "loadavg_start": load0, "loadavg_end": os.getloadavg(),
               "environment": environment.collect("onnxruntime")}
    return cells, context


def export_fp32(config: str, checkpoint: str | None, path: str) -> str:
    """The fp32 ONNX (static, input size of the config, flip test in the graph) of the weights
    ``_time_official`` runs: the checkpoint's, else compare.build_torch_model's seeded random ones."""
    # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
    from higherhrnet_trt.export.onnx_export import export_onnx

    model = build_torch_model(config, checkpoint)
    export_onnx(model, path, input_size=model.cfg.input_size, flip=True,
                random_weights=checkpoint is None)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.w32_table",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--export", metavar="ONNX",
                    help="only write the fp32 ONNX of the weights the official-style pipeline uses, "
                         "then exit (make fp16 / INT8 from it with convert / calibrate)")
    ap.add_argument("--fp32", help="fp32 ONNX written by --export")
    ap.add_argument("--fp16", help="fp16 ONNX from 'higherhrnet-trt convert' (row skipped if absent)")
    ap.add_argument("--int8", help="INT8 Q/DQ ONNX from 'higherhrnet-trt calibrate' (skipped if absent)")
    ap.add_argument("--config", default="w32_512", help="config the files were exported with")
    ap.add_argument("--checkpoint", help="weights the files were exported with (default: seeded "
                                         "random weights, as export without --checkpoint)")
    ap.add_argument("--backends", default="onnxruntime,openvino", help="comma-separated backends")
    ap.add_argument("--frames", type=int, default=3, help="timed generated scenes per cell")
    ap.add_argument("--warmup", type=int, default=0, help="untimed runs of the first frame per cell")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch and every backend")
    ap.add_argument("--json", help="write cells and context here")
    args = ap.parse_args(argv)
    if args.export:
        print(f"wrote {export_fp32(args.config, args.checkpoint, args.export)}")
        return 0
    if not args.fp32:
        ap.error("--fp32 is required (write it with --export first)")
    files = {p: f for p, f in (("fp32", args.fp32), ("fp16", args.fp16), ("int8", args.int8)) if f}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    try:
        cells, context = run_table(files, args.config, args.checkpoint, backends, args.frames,
                                   args.warmup, args.threads)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    la0, la1 = context["loadavg_start"], context["loadavg_end"]
    print(f"{context['created']}  {args.config}, random weights: {context['random_weights']}, "
          f"{args.frames} frames/cell, warm-up {args.warmup}, {args.threads} threads, load average "
          f"(1/5/15 min) start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, end "
          f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}")
    print(format_table(cells))
    for c in cells:
        load = "unknown" if c.other_cpu is None else f"{c.other_cpu:.0f} % of a core"
        note = "" if c.note in ("", "reference") else f"; {c.note}"
        print(f"  {c.name}: other processes {load}{note}")
    if args.json:
        write_json(args.json, {"context": context, "cells": [vars(c) for c in cells]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
