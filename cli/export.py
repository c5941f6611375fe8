"""``higherhrnet-trt export`` and ``convert``: checkpoint -> ONNX (fp32 / fp16 / INT8 Q/DQ)."""

from __future__ import annotations

import sys

from higherhrnet_trt.cli.args import HelpFormatter as _Formatter
from higherhrnet_trt.cli.args import positive_int as _positive_int
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.precision import CalibrationOptions, PrecisionOptions
from higherhrnet_trt.export.configs import CONFIGS
from higherhrnet_trt.export.weights import add_cli_options

from .bounds import BATCH, input_size
from .flags import add_flags, options


def _size(text: str):
    """'512' -> 512, '384x640' -> (384, 640) (H x W); bounded by cli.bounds.input_size."""
    h, w = input_size(text)
    return (h, w) if "x" in text.lower().replace("*", "x") else h


def _config_help() -> str:
    return "architecture: " + "; ".join(f"{k} ({v.description})" for k, v in CONFIGS.items())


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="checkpoint -> ONNX (fp32, fp16 or INT8), optionally -> engine",
        description=(
            "Build HigherHRNet from a named config, load an official checkpoint (strict, key for "
            "key), and export ONNX with the flip test and stride-2 aggregation inside the graph. "
            "Every export is checked with ONNX Runtime against PyTorch; the max error is printed."
        ),
        formatter_class=_Formatter,
    )
    p.add_argument("--checkpoint", "-c", metavar="PTH|NAME",
                   help="official .pth/.pth.tar (plain, 'state_dict', 'module.'/'1.' prefixes, fp16) "
                        "or MMPose 0.x checkpoint, or a released weights name such as mmpose_w32_512 "
                        "(downloaded to the cache and sha256-checked first: 'higherhrnet-trt weights "
                        "list'); omit to export RANDOM weights (pipeline tests only)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="without --checkpoint: seed of the RANDOM weights, so two exports of a config "
                        "are the same file (pipeline tests only) (default: 0)")
    p.add_argument("--config", default=None,
                   help=_config_help() + " (default: the weights name's config, else w32_512)")
    p.add_argument("-o", "--output", metavar="ONNX",
                   help="output .onnx path (default: higherhrnet_<config>[_size][_precision].onnx)")
    p.add_argument("--input-size", type=_size, metavar="N|HxW",
                   help="static input size in pixels, multiples of 64 (default: the config's, 512/640)")
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic height and width (multiples of 64): one file for any image shape")
    p.add_argument("--dynamic-batch", action="store_true", help=(
        "dynamic batch dimension; with --dynamic, or with --input-size to fix the height and width"))
    p.add_argument("--batch", type=BATCH, default=1, help="static batch size")
    p.add_argument("--no-flip", dest="flip", action="store_false",
                   help="leave out the flip test (half the compute, ~1-2 AP lower)")
    p.add_argument("--raw-outputs", action="store_true",
                   help="export the two raw network outputs instead of the aggregated heatmaps/tags")
    add_flags(p, PrecisionOptions, precision=dict(
        help="precision written into the ONNX (strongly typed: engines build it as is)"))
    add_flags(p, CalibrationOptions, images=dict(
        help="calibration images for --precision int8 (as 'calibrate --images')"))
    p.add_argument("--engine", action="store_true",
                   help="also build a TensorRT engine from the written ONNX (default builder)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the ONNX Runtime vs PyTorch check (not recommended)")

    add_cli_options(p)
    p.set_defaults(func=run_export)

    c = sub.add_parser(
        "convert",
        help="existing fp32 ONNX -> fp16 ONNX",
        description="Convert an exported fp32 ONNX to a strongly typed fp16 ONNX (I/O stay fp32); "
                    "layers whose values exceed fp16's safe range (512) on the check inputs stay "
                    "fp32. Prints the ONNX Runtime error against fp32.",
        formatter_class=_Formatter,
    )
    c.add_argument("onnx", help="fp32 ONNX written by 'higherhrnet-trt export'")
    c.add_argument("-o", "--output", required=True, help="output fp16 .onnx path")
    c.add_argument("--method", choices=["ranges", "autocast"], default="ranges",
                   help="ranges: measure every tensor's range in-graph (one inference's memory per "
                        "check input; any network size); autocast: ModelOpt AutoCast's full "
                        "classifier, which keeps every intermediate tensor of every check input in "
                        "memory (small networks only: W32-512 grew past 23 GB)")
    c.add_argument("--images", metavar="DIR",
                   help="frames to measure ranges and the error on (default: random normal inputs)")
    c.add_argument("--num-check", type=_positive_int, default=8, metavar="N",
                   help="check inputs: N images from --images, or min(N, 4) random inputs")
    c.add_argument("--no-progress", action="store_true",
                   help="hide the progress bar (shown on terminals only anyway)")
    c.set_defaults(func=run_convert)


def run_export(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.export.api import export

    precision, calibration = options(args, PrecisionOptions), options(args, CalibrationOptions)
    if args.seed is not None and args.checkpoint:
        raise UserError("--seed sets RANDOM weights, which --checkpoint replaces: leave --seed out")
    if args.dynamic_batch and not args.dynamic and args.input_size is None:
        # Alone it fixed the input at the config's size without a word: several-source runs then
        # letterboxed every frame and found other people than the official sizing does.
        raise UserError("--dynamic-batch alone fixes the height and width at the config's input size "
                        "(every frame letterboxed into it): add --dynamic for any size, or give "
                        "--input-size HxW to fix the size on purpose")
    res = export(
        checkpoint=args.checkpoint, config=args.config, output=args.output,
        format="engine" if args.engine else "onnx", input_size=args.input_size, batch=args.batch,
        dynamic=args.dynamic, dynamic_batch=args.dynamic_batch, flip=args.flip,
        outputs="raw" if args.raw_outputs else "aggregated", half=precision.half,
        int8=precision.int8, images=calibration.images, num_images=calibration.num_images,
        method=calibration.method, target=calibration.target, check=args.check,
        seed=0 if args.seed is None else args.seed, cache_dir=args.cache_dir, weights_url=args.weights_url,
    )
    times = ", ".join(f"{k} {v:.1f}s" for k, v in res.timings.items())
    print(f"done: {res.engine or res.onnx} ({times})")
    return 0


def run_convert(args) -> int:
    import warnings

    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.export.fp16 import convert_fp16

    with warnings.catch_warnings():  # the report carries them: printed as plain lines below
        warnings.simplefilter("ignore", UserWarning)
        report = convert_fp16(args.onnx, args.output, images=args.images, num_check=args.num_check,
                              method=args.method, progress=not args.no_progress)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}")
    return 0
