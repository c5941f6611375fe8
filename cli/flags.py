"""Every flag group, defined once, each mapped to a typed options object of the runtime
(runtime/options.py): a flag's destination is the option's field name (``--kpt-thr`` ->
``DecodeOptions.kpt_thr``; tests/project/test_layout.py checks it), so ``options(args, DecodeOptions)``
builds the object the Python API takes too.

A new option: one field in its options class, one ``Flag`` in its group here (its spelling is the
field name with dashes). An old spelling kept for a release: ``aliases``, hidden from ``--help``,
printing one deprecation line when used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.limits import check_scales
from higherhrnet_trt.core.precision import (
    CALIBRATION_METHODS,
    CALIBRATION_TARGETS,
    PRECISIONS,
    CalibrationOptions,
    PrecisionOptions,
)
from higherhrnet_trt.runtime.options import (
    DECODERS,
    DEFAULT_KPT_THR,
    DEFAULT_PERSON_THR,
    DecodeOptions,
    ModelOptions,
    OutputOptions,
    SourceOptions,
    flag,
    options_from,
)
from higherhrnet_trt.runtime.streams import DEFAULT_TIMEOUT_S

from .args import fraction, positive_int, seconds
from .bounds import THREADS, nonempty_list, torch_device


def scales(text: str) -> tuple[float, ...]:
    """argparse type: '1' -> (1.0,), '2,1,0.5' -> (2.0, 1.0, 0.5); count and range checked."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers such as 1 or 2,1,0.5, got {text!r}")
    try:  # count and range, before the model loads (core/limits.py)
        check_scales(sorted(set(values)))
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return values


@dataclass(frozen=True)
class Flag:
    """One option's flag: ``name`` is the options field (and, with dashes, the flag).

    short: other current spellings ('-s'); aliases: old spellings, hidden, deprecated; switches:
    old on/off spellings that stored a value (``--fp16`` = ``--precision fp16``), spelling -> value;
    positional: a positional argument (no dashes); kwargs: argparse's (type, default, help, ...).
    """

    name: str
    kwargs: dict[str, Any]
    short: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    positional: bool = False
    switches: tuple[tuple[str, Any], ...] = ()


def _flags(*items: Flag) -> dict[str, Flag]:
    return {f.name: f for f in items}


#: The flag groups: options class -> its flags, by field name.
GROUPS: dict[type, dict[str, Flag]] = {
    ModelOptions: _flags(
        Flag("model", dict(metavar="MODEL", help=(
            "model exported by 'higherhrnet-trt export' (.onnx; engines with a TensorRT backend); its "
            "embedded metadata sets dataset, input size and flip test. A checkpoint (.pth) runs with "
            "the torch backend; triton://HOST:PORT/NAME is a model served by a Triton server")),
            positional=True),
        Flag("backend", dict(default="auto", help=(
            "auto (from the file extension: .onnx onnxruntime, .engine tensorrt, .pth torch), "
            "onnxruntime, openvino (Intel CPUs), tensorrt, tensorrt-rtx, torch, triton (MODEL is then "
            "a served model: triton://HOST:PORT/NAME, see 'higherhrnet-trt serve'), or another "
            "registered backend"))),
        Flag("providers", dict(type=nonempty_list("execution provider names"), metavar="EP[,EP...]", help=(
            "onnxruntime only: execution providers in priority order, e.g. "
            "CUDAExecutionProvider,CPUExecutionProvider (default: CPU)"))),
        Flag("threads", dict(type=THREADS, default=0, help=(
            "onnxruntime / openvino only: CPU threads (0 = the library's default)"))),
        Flag("graph_optimization", dict(choices=("auto", "all", "extended", "basic", "disable"),
                                        default=None, help=(
            "onnxruntime only: its graph optimisation level (default auto: 'disable' for INT8 files "
            "from 'calibrate', whose fp16 layers ONNX Runtime's bias quantization pass miscomputes; "
            "'all' otherwise)"))),
        Flag("inference_precision", dict(choices=("f32", "bf16", "f16"), default=None, help=(
            "openvino only: its precision hint for the layers the file keeps in floating point "
            "(default: OpenVINO's, bf16 on CPUs with AMX / AVX512-BF16, else f32); f32 gives "
            "onnxruntime's fp32 results"))),
        Flag("config", dict(default=None, help=(
            "torch: the checkpoint's config (w32_512, w48_640, ...; default: the one that fits its "
            "shapes); onnxruntime: the config of an ONNX exported by other tools, without "
            "higherhrnet_trt metadata (files from 'export' describe themselves)"))),
        Flag("device", dict(type=torch_device, default=None, help=(
            "torch only: cuda, cuda:N or cpu (default: cuda when a GPU is visible; FP16 there)"))),
    ),
    DecodeOptions: _flags(
        Flag("scales", dict(type=scales, default="1", metavar="S[,S...]", help=(
            "test scales, e.g. 2,1,0.5 (official multi-scale; needs a --dynamic model); at most 4, "
            "each 0.25..4. Memory: each scale's network input may have at most 3 Mpx and a side "
            "ratio of 8:1 (frames beyond are skipped and counted); a frame took at most 1.5 KB of "
            "memory per input pixel, near the limits up to 1.5 GB with the demo network and 3.7 GB "
            "with W32-512 (benchmarks/frame_memory; W48 not measured)"))),
        Flag("heatmap_resolution", dict(action="store_true", help=(
            "decode maps at half the input resolution: faster, not the official results"))),
        Flag("det_thr", dict(type=fraction, default=0.1, help=(
            "decoder: heatmap peaks above this become joint candidates"))),
        Flag("max_people", dict(type=positive_int, default=30, help=(
            "most people kept per frame (best scores)"))),
        Flag("kpt_thr", dict(type=fraction, default=DEFAULT_KPT_THR, help=(
            "joints scored above this are drawn and span the person's box")),
            aliases=("--kpt-threshold",)),
        Flag("person_thr", dict(type=fraction, default=DEFAULT_PERSON_THR, help=(
            "people scored below this (mean joint score) are left out of everything: printed, "
            "drawn, written (--json), published; 0 keeps every candidate (0.15: the demo network's "
            "precision 0.80 / recall 0.69 on generated scenes, benchmarks/RESULTS.md)")),
            aliases=("--score-threshold",)),
        Flag("track", dict(action="store_true", help=(
            "person IDs across frames (each source tracked on its own): the same 'track_id' on the "
            "same person in the JSON (-1: not tracked), drawn people coloured by ID with the ID at "
            "their box; IDs are never reused"))),
        Flag("decoder", dict(choices=DECODERS, default="auto", help=(
            "decoder of the maps: cpu (compiled on first use with the system C++ compiler), numpy "
            "(the reference), auto (cpu where it builds, else numpy; the same people either way)"))),
    ),
    SourceOptions: _flags(
        Flag("source", dict(required=True, metavar="SRC", action="append", help=(
            "image, folder of images, glob ('a/*.png'), video file, camera index (0) or /dev/videoN, "
            "rtsp:// or http:// URL, or a GStreamer pipeline ending in appsink ('gst:' prefix "
            "optional). Repeat for several sources: each round takes one frame of every source and "
            "predicts them as one batch (one engine call with a --dynamic-batch model); outputs go "
            "to DIR/source0, DIR/source1, ... and JSON records carry 'source' (its index)")),
            short=("-s",)),
        Flag("max_frames", dict(type=positive_int, metavar="N", help=(
            "stop after N frames (of each source)"))),
        Flag("reconnect", dict(type=int, default=5, metavar="N", help=(
            "live sources: after frames stop, reopen attempts (0.5 s, 1 s, 2 s ... up to 8 s apart; "
            "the count restarts after every good frame) before the run stops with an error, its "
            "outputs kept"))),
        Flag("stream_timeout", dict(type=seconds, default=DEFAULT_TIMEOUT_S, metavar="S", help=(
            "network streams and GStreamer pipelines: the longest one open or one read may take "
            "before it counts as failed"))),
        Flag("wait_for_source", dict(action="store_true", help=(
            "network streams: retry the first open like a reconnect (a camera still booting); "
            "without it a stream that does not open is an error at once"))),
        Flag("every_frame", dict(action="store_true", help=(
            "live sources: process every frame in turn (a recorded stream served live); by default "
            "a model slower than the camera gets its newest frame and the frames in between are "
            "dropped and counted (JSON records carry frame_index and capture_time). Files always "
            "process every frame"))),
    ),
    PrecisionOptions: _flags(
        Flag("precision", dict(choices=PRECISIONS, default="fp32", help=(
            "the model's precision: fp32; fp16; int8 (a Q/DQ ONNX from INT8 calibration)")),
            switches=(("--fp16", "fp16"), ("--int8", "int8"))),
    ),
    CalibrationOptions: _flags(
        Flag("images", dict(metavar="DIR", help=(
            "folder of calibration images (searched recursively): a few hundred frames like the ones "
            "the robot will see; unreadable files are skipped and counted")), aliases=("--data",)),
        Flag("num_images", dict(type=positive_int, default=512, metavar="N", help=(
            "images used for calibration (a seeded shuffle picks them); fewer warns")),
            aliases=("--num-calib-images",)),
        Flag("method", dict(choices=CALIBRATION_METHODS, default="entropy", help=(
            "activation range: entropy (KL divergence, as TensorRT's calibrator), max (largest |x|: "
            "no clipping, coarser steps), percentile (clip the top 100-P %% of |x|)")),
            aliases=("--calib-method",)),
        Flag("target", dict(choices=CALIBRATION_TARGETS, default="tensorrt", help=(
            "runtime the INT8 Q/DQ graph is laid out for (written to the file): tensorrt (ModelOpt's "
            "placement; ONNX Runtime runs it slower than fp32) or cpu (ONNX Runtime / OpenVINO: ONNX "
            "Runtime's placement, uint8 activations, fp32 elsewhere; TensorRT cannot build it)"))),
    ),
    OutputOptions: _flags(
        Flag("save_dir", dict(metavar="DIR", help=(
            "write annotated images or video (<source>.mp4) here. Images keep their names; a glob "
            "spanning folders keeps each image's sub-folder below the folder they share ('a/x.jpg' "
            "and 'b/x.jpg' -> DIR/a/x.jpg, DIR/b/x.jpg), so no two results share a file"))),
        Flag("show", dict(action="store_true", help="live window (needs a display); q or Esc quits")),
        Flag("json", dict(metavar="FILE", help=(
            "write COCO keypoint results to FILE.json: image_id, category_id 1, keypoints [x, y, v] "
            "in pixels, score (image_id = the number of COCO-style names when every image has a "
            "distinct one, else the frame index)"))),
        Flag("boxes", dict(action="store_true", help="also draw each person's box and score")),
        Flag("no_progress", dict(action="store_true", help="no progress bar")),
    ),
}


class _Deprecated(argparse.Action):
    """An old spelling of a flag: stores into the current flag's destination, says so once."""

    def __init__(self, option_strings, dest, current: str = "", **kwargs) -> None:
        self.current = current
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"warning: {option_string} is deprecated and goes in the next release: use {self.current}",
              file=sys.stderr)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_flags(parser, cls: type, only: Iterable[str] | None = None, title: str | None = None,
              **changes: dict[str, Any]):
    """Add the flags of ``cls``'s group to ``parser`` (in an argument group when ``title``).

    only: the fields to add (default: all, in the group's order). changes: field name -> argparse
    keywords that differ for this command (a default, the help, nargs), never the destination.
    Returns the group (or the parser)."""
    group = GROUPS[cls]
    names = list(group) if only is None else list(only)
    target = parser.add_argument_group(title) if title else parser
    for name in names:
        f = group[name]
        kwargs = {**f.kwargs, **changes.get(name, {})}
        if f.positional:
            target.add_argument(name, **kwargs)
            continue
        target.add_argument(flag(name), *f.short, dest=name, **kwargs)
        for old in f.aliases:
            keep = {k: v for k, v in kwargs.items() if k in ("type", "choices", "nargs", "metavar")}
            target.add_argument(old, dest=name, action=_Deprecated, current=flag(name),
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS, **keep)
        for old, value in f.switches:
            target.add_argument(old, dest=name, action=_Deprecated, current=f"{flag(name)} {value}",
                                nargs=0, const=value, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return target


def options(args: argparse.Namespace, cls: type, **overrides: Any):
    """The ``cls`` options from parsed arguments (destinations are field names); fields the
    command has no flag for keep their defaults, ``overrides`` win."""
    return options_from(cls, args, **overrides)


def mismatched_names() -> list[str]:
    """Flags whose destination is not a field of their options class (empty when all match)."""
    bad = []
    for cls, group in GROUPS.items():
        names = {f.name for f in fields(cls)}
        bad += [f"{flag(n)} -> {cls.__name__}" for n in group if n not in names]
    return bad
