"""``higherhrnet-trt calibrate`` (fp32 ONNX + your images -> INT8 Q/DQ ONNX, export/quantize.py) and
``debug-precision`` (layer-by-layer error of an fp16 / INT8 ONNX against its fp32 ONNX).

Only argparse at module level: ModelOpt and ONNX Runtime load when the command runs.
"""

from __future__ import annotations

import os
import sys

from higherhrnet_trt.cli.args import HelpFormatter as _Formatter
from higherhrnet_trt.cli.args import positive_int as _positive_int
from higherhrnet_trt.cli.args import whole_number_at_least
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.core.precision import CalibrationOptions
from higherhrnet_trt.engine.onnx_info import summarize
from higherhrnet_trt.engine.related import check_related
from higherhrnet_trt.export.calib_taps import DEFAULT_SAMPLE
from higherhrnet_trt.export.precision_debug import compare_layers

from . import bounds
from .flags import add_flags, options

_whole_number = whole_number_at_least(0)
#: calibrate --percentile when --method percentile is given without it.
DEFAULT_PERCENTILE = 99.999


def register(sub) -> None:
    """Add ``calibrate`` and ``debug-precision`` to the CLI's subparsers."""
    _add_calibrate(sub, _Formatter)
    _add_debug_precision(sub, _Formatter)


def _add_calibrate(sub, fmt) -> None:
    c = sub.add_parser(
        "calibrate",
        help="fp32 ONNX + your images -> INT8 Q/DQ ONNX (build it with 'build' as it is)",
        description=(
            "Post-training INT8 quantization with NVIDIA ModelOpt: explicit Q/DQ pairs "
            "(per-channel weights), activation ranges calibrated on your images pre-processed "
            "exactly as the runtime does. The result builds on TensorRT 10, 11 and TensorRT-RTX "
            "(no calibrator needed). Ranges are cached: a re-run with the same model, images and "
            "settings skips the calibration pass. Prints the error against fp32 on held-out images."
        ),
        formatter_class=fmt,
    )
    c.add_argument("onnx", help="fp32 ONNX written by 'higherhrnet-trt export'")
    add_flags(c, CalibrationOptions, ["images"], images=dict(required=True))
    c.add_argument("-o", "--output", metavar="ONNX",
                   help="output INT8 ONNX (default: MODEL.int8.onnx next to the input)")
    add_flags(c, CalibrationOptions, ["num_images", "method", "target"])
    c.add_argument("--percentile", type=bounds.PERCENTILE, default=None, metavar="P",
                   help=f"share of |x| kept by --method percentile, in percent (default: "
                        f"{DEFAULT_PERCENTILE:g})")
    c.add_argument("--sample", type=_whole_number, default=DEFAULT_SAMPLE, metavar="N",
                   help="values per tensor and image the entropy and percentile histograms see (a "
                        "grid over rows and columns; each tensor's exact min and max are always "
                        "measured, in-graph): 1.2-1.3x the time of plain inference on W32-512. 0: "
                        "every value, fetched as ModelOpt calibrates: ranges equal to ModelOpt's "
                        "and ONNX Runtime's histograms exactly, about 2.6x plain inference")
    c.add_argument("--holdout", type=bounds.HOLDOUT, default=10, metavar="N",
                   help="images kept out of calibration to measure the error (at most 1/5 of them)")
    c.add_argument("--high-precision", choices=["fp16", "fp32"], default="fp16",
                   help="--target tensorrt: dtype of the layers left unquantized: fp16 runs faster in "
                        "TensorRT")
    c.add_argument("--input-size", type=bounds.input_side, metavar="N",
                   help="pre-processing size for a dynamic-shape ONNX (default: the model's); "
                        "static models letterbox frames into their fixed H x W")
    c.add_argument("--cache-dir", metavar="DIR",
                   help="where activation ranges are cached (default ~/.cache/higherhrnet_trt/"
                        "calibration, or $XDG_CACHE_HOME)")
    c.add_argument("--no-cache", dest="use_cache", action="store_false",
                   help="recompute the ranges even when cached (the cache is refreshed)")
    c.add_argument("--seed", type=int, default=0, help="seed of the image shuffle")
    c.add_argument("--no-progress", action="store_true",
                   help="hide the calibration progress bar (shown on terminals only anyway)")
    c.set_defaults(func=run_calibrate)


def _add_debug_precision(sub, fmt) -> None:
    d = sub.add_parser(
        "debug-precision",
        help="layer-by-layer error of an fp16/INT8 ONNX against its fp32 ONNX",
        description=(
            "Runs both files with ONNX Runtime through polygraphy with every tensor marked as an "
            "output, compares the tensors they share in graph order, and names the first layers "
            "whose error jumps (well above the error of their inputs): the layers to keep in fp32 "
            "or out of quantization."
        ),
        formatter_class=fmt,
    )
    d.add_argument("onnx", help="reference fp32 ONNX")
    d.add_argument("--variant", required=True, metavar="ONNX",
                   help="fp16 or INT8 ONNX of the same network")
    d.add_argument("--images", metavar="DIR",
                   help="images to compare on, pre-processed as the runtime does (default: random "
                        "normal inputs)")
    d.add_argument("--num-inputs", type=bounds.NUM_INPUTS, default=2,
                   help="inputs to run (every tensor of both models is kept per input: "
                        "memory grows with the network)")
    d.add_argument("--tolerance", type=bounds.TOLERANCE, default=1e-2,
                   help="relative error (max|err| / max|fp32|) above which a jump is reported")
    d.add_argument("--factor", type=bounds.FACTOR, default=2.0,
                   help="a layer 'jumps' when its error is at least this many times its inputs'")
    d.add_argument("--top", type=_positive_int, default=5, help="layers listed per table")
    d.add_argument("--graph-optimization", choices=["disable", "basic", "extended", "all"],
                   default="disable",
                   help="ONNX Runtime optimisation for both models; keep 'disable' for Q/DQ models "
                        "(ORT's bias quantization pass, basic and above, miscomputes fp16 Q/DQ graphs)")
    d.add_argument("--all", dest="show_all", action="store_true",
                   help="print every compared tensor")
    d.set_defaults(func=run_debug_precision)


# -- handlers ---------------------------------------------------------------------------------------


def run_calibrate(args) -> int:
    import warnings

    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.export.quantize import quantize_int8

    calibration = options(args, CalibrationOptions)
    if args.percentile is not None and calibration.method != "percentile":
        raise UserError(f"--percentile applies to --method percentile only (this run uses "
                        f"--method {calibration.method}): add --method percentile or leave "
                        "--percentile out")
    percentile = DEFAULT_PERCENTILE if args.percentile is None else args.percentile
    output = args.output or os.path.splitext(args.onnx)[0] + ".int8.onnx"
    # The report carries the warnings (too few images, unreadable files): print them as plain
    # lines instead of Python's "file:line: UserWarning" form.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = quantize_int8(
            args.onnx, output, images=calibration.images, num_images=calibration.num_images,
            method=calibration.method,
            percentile=percentile, holdout=args.holdout, high_precision=args.high_precision,
            input_size=args.input_size, cache_dir=args.cache_dir, use_cache=args.use_cache,
            seed=args.seed, progress=not args.no_progress, sample=args.sample, target=calibration.target,
        )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}")
    if calibration.target == "cpu":
        print(f"next: higherhrnet-trt run {output} --source IMAGE_OR_VIDEO")
    else:
        print(f"next: higherhrnet-trt build {output} -o {os.path.splitext(output)[0]}.engine")
    return 0


def run_debug_precision(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.export.calib_data import InputMaker, list_images

    ref = summarize(args.onnx)
    var = summarize(args.variant)
    if ref.precision != "fp32":
        raise UserError(f"{args.onnx} is {ref.precision}: the reference must be the fp32 ONNX")
    check_related(args.onnx, args.variant, ref, var)  # two unrelated networks: one line, no tables
    maker = InputMaker(ref, ref.meta() if ref.has_meta else ModelMeta(), None)
    if args.images:
        skipped: list[str] = []
        feeds = list(maker.feeds(list_images(args.images), skipped, limit=args.num_inputs))
        if not feeds:
            raise UserError(f"no readable image under {args.images}")
        what = f"{len(feeds)} images"
    else:
        feeds = maker.random_feeds(args.num_inputs)
        what = f"{len(feeds)} random inputs"
    result = compare_layers(args.onnx, args.variant, feeds, args.graph_optimization)
    print(f"{args.variant} ({var.precision}) vs {args.onnx}: {len(result.tensors)} tensors compared "
          f"on {what} (ONNX Runtime CPU, graph optimisation '{args.graph_optimization}')")
    outs = [t for t in result.tensors if t.name in result.outputs]
    if outs:
        print("outputs:\n" + result.table(outs))
    first = result.first_jumps(args.tolerance, args.factor, args.top)
    if first:
        print(f"\nfirst layers whose error jumps (rel > {args.tolerance:g} and >= {args.factor:g}x "
              f"their inputs'):\n" + result.table(first))
    else:
        print(f"\nno layer's error exceeds {args.tolerance:g} while jumping {args.factor:g}x over its "
              "inputs")
    print("\nlargest jumps anywhere:\n" + result.table(result.worst_jumps(args.top)))
    if args.show_all:
        print("\nall tensors:\n" + result.table())
    return 0
