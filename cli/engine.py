"""``higherhrnet-trt build | info`` (``calibrate`` and ``debug-precision``: export/precision_cli.py).

Only argparse at module level: ``--help`` stays instant, and TensorRT, ModelOpt, polygraphy or
ONNX Runtime load only when the subcommand that needs them runs.
"""

from __future__ import annotations

import argparse
import os

from higherhrnet_trt.cli.args import HelpFormatter as _Formatter
from higherhrnet_trt.cli.args import positive_int as _positive_int
from higherhrnet_trt.core.precision import PrecisionOptions

from .flags import add_flags, options


def _shape(text: str) -> str:
    """Validate NxCxHxW early (argparse prints the message), keep the text for build_engine."""
    body = text.split(":", 1)[1] if ":" in text else text
    parts = body.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected NxCxHxW, e.g. 1x3x512x512, got {text!r}")
    return text


def register(sub) -> None:
    """Add ``build`` and ``info`` to the CLI's subparsers."""
    _add_build(sub, _Formatter)
    _add_info(sub, _Formatter)


def _add_build(sub, fmt) -> None:
    b = sub.add_parser(
        "build",
        help="ONNX -> TensorRT / TensorRT-RTX engine (+ JSON sidecar)",
        description=(
            "Build an engine from an exported ONNX, strongly typed: the precision is the ONNX's "
            "(fp32, fp16 from 'convert' or 'export --precision fp16', INT8 from 'calibrate'). "
            "Writes ENGINE.json next to the engine: builder and version, GPU and compute "
            "capability (or ahead-of-time for TensorRT-RTX), precision, shapes, ONNX sha256 and "
            "the model metadata the runtime needs."
        ),
        formatter_class=fmt,
    )
    b.add_argument("onnx", help="ONNX written by 'higherhrnet-trt export' / 'convert' / 'calibrate'")
    b.add_argument("-o", "--output", metavar="ENGINE",
                   help="engine path ending in .engine/.plan/.trt (default: MODEL.engine)")
    b.add_argument("--backend", choices=["auto", "tensorrt", "tensorrt-rtx"], default="auto",
                   help="builder: tensorrt builds for this machine's GPU (on a Jetson: JetPack's "
                        "TensorRT 10.3); tensorrt-rtx builds ahead of time on any machine, for "
                        "RTX-class GPUs (not Jetson Orin, not H100); auto = tensorrt if installed")
    add_flags(b, PrecisionOptions, precision=dict(help=(
        "fp32: as the ONNX says (fp16 / INT8 files from 'convert' / 'calibrate' build as they are); "
        "fp16: TensorRT 10 only, fp32 ONNX only: let TensorRT pick fp16 kernels (weak typing), "
        "elsewhere build the fp16 ONNX from 'convert' instead; int8: accepted for a Q/DQ ONNX from "
        "'calibrate' (changes nothing there); INT8 is never calibrated by the builder")))
    b.add_argument("--min-shape", type=_shape, metavar="NxCxHxW",
                   help="smallest input of a dynamic-shape ONNX (H, W multiples of 64)")
    b.add_argument("--opt-shape", type=_shape, metavar="NxCxHxW",
                   help="input size TensorRT tunes for (your camera's, after pre-processing)")
    b.add_argument("--max-shape", type=_shape, metavar="NxCxHxW",
                   help="largest input; the default profile of a dynamic ONNX spans S/2..2S for "
                        "input size S, batch 1")
    b.add_argument("--workspace", type=_positive_int, metavar="MIB",
                   help="builder scratch memory limit in MiB (lower it on a busy Jetson)")
    b.add_argument("--timing-cache", metavar="FILE",
                   help="read and update this timing cache: rebuilds of similar models go faster "
                        "(TensorRT only)")
    b.add_argument("--dla-core", type=int, metavar="N",
                   help="run on Jetson DLA core N (0 or 1 on AGX Orin); DLA runs fp16/int8 only")
    b.add_argument("--gpu-fallback", action="store_true",
                   help="with --dla-core: layers the DLA cannot run go to the GPU")
    b.add_argument("--version-compatible", action="store_true",
                   help="engine also runs on later TensorRT releases of the same major version "
                        "(slightly slower; the runtime must allow host code)")
    b.add_argument("--optimization-level", type=int, choices=range(6), metavar="0-5",
                   help="builder effort: higher searches longer for faster kernels (TensorRT's "
                        "default: 3)")
    b.add_argument("--no-sanitize", dest="sanitize", action="store_false",
                   help="skip polygraphy constant folding before parsing")
    b.add_argument("--no-progress", action="store_true",
                   help="hide the build progress bar (shown on terminals only anyway)")
    b.add_argument("--show-warnings", action="store_true",
                   help="print TensorRT's warnings and info messages")
    b.set_defaults(func=run_build)


def _add_info(sub, fmt) -> None:
    i = sub.add_parser(
        "info",
        help="what an ONNX or engine file is: metadata, inputs/outputs, precision",
        description=(
            "For an ONNX: opset, precision (fp32 / fp16 / int8 Q/DQ), inputs and outputs, op "
            "counts, weight sizes, model metadata. For an engine: its sidecar (builder, version, "
            "GPU, precision, shapes, source ONNX) checked against this machine, and a layer "
            "summary from TensorRT's engine inspector when the engine's runtime and a GPU are here "
            "(without a GPU: from the inspector report the builder logged, ENGINE.layers.txt; "
            "convolutions counted by Int8 inputs / weights / outputs). "
            "Exit status 0: the file is whole and nothing known stops it running here (what "
            "cannot be checked here, e.g. without a GPU, is said so); 1: damaged (empty or "
            "unreadable ONNX; an engine whose size or sha256 differs from its sidecar's) or "
            "incompatible with this machine (TensorRT flavour, version or GPU)."
        ),
        formatter_class=fmt,
    )
    i.add_argument("file", help="a .onnx or .engine/.plan/.trt file")
    i.add_argument("--layers", action="store_true",
                   help="engines: list every layer, not just the summary by type and precision")
    i.set_defaults(func=run_info)


def run_build(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.engine.build import build_engine

    precision = options(args, PrecisionOptions)
    output = args.output or os.path.splitext(args.onnx)[0] + ".engine"
    report = build_engine(
        args.onnx, output, backend=args.backend, fp16=precision.half, int8=precision.int8,
        min_shape=args.min_shape, opt_shape=args.opt_shape, max_shape=args.max_shape,
        workspace=args.workspace, timing_cache=args.timing_cache, dla_core=args.dla_core,
        gpu_fallback=args.gpu_fallback, version_compatible=args.version_compatible,
        optimization_level=args.optimization_level, progress=not args.no_progress,
        sanitize=args.sanitize, verbose=args.show_warnings,
    )
    print(report.summary())
    return 0


def run_info(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.engine.info import info

    return info(args.file, args.layers)

