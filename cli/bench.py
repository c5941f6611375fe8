"""``higherhrnet-trt bench``: per-stage latency, throughput and memory of a model on a backend.

Nothing heavy is imported at module level (``higherhrnet-trt --help`` must stay instant); the
work is in benchmarks/bench.py, with the model options of cli/flags.py.
"""

from __future__ import annotations

import argparse
import os

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import Output, check_outputs, require_suffix
from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions

from .args import HelpFormatter, paragraphs, setup_logging, whole_number_at_least
from .bounds import BATCH, input_size
from .flags import add_flags, options

_input_size = input_size  # (H, W), multiples of 64, bounded (cli.bounds)

#: What --plot can write (matplotlib picks the format from the extension).
PLOT_SUFFIXES = (".png", ".svg", ".pdf", ".jpg")


def _plot_file(text: str) -> str:
    """argparse type: a file name ending in one of PLOT_SUFFIXES."""
    if not text.lower().endswith(PLOT_SUFFIXES):
        raise argparse.ArgumentTypeError(f"expected a file ending in {', '.join(PLOT_SUFFIXES)} "
                                         f"(matplotlib picks the format from it), got {text!r}")
    return text

_count = whole_number_at_least


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="per-stage latency, throughput, CPU and memory of a model on a backend (JSON, plot)",
        description=paragraphs(
            "Time the runtime's stages separately on one frame repeated into a batch: preprocess, "
            "host-to-device, inference, device-to-host, decode, end to end. Prints mean, median, p90, "
            "p99, min and max per stage (ms per batch), throughput (images/s), host CPU use and peak "
            "memory (and GPU memory on a GPU), and writes them with the environment (CPU, GPU, "
            "driver, CUDA, backend and TensorRT versions, precision, shapes, Jetson power mode and "
            "clock lock) to --json.",
            "Clocks as trtexec names them: 'GPU compute' is CUDA-event time of the network alone "
            "(GPU backends that expose their stream); 'host latency' is H2D + compute + D2H; "
            "'end-to-end' is host wall time of a whole iteration, pre-processing and decoding "
            "included. Stages a backend does not have (copies on the CPU) are reported as n/a, "
            "never as zero.",
            "Ctrl-C or SIGTERM during the timed loop stops it: the report, --json and --plot "
            "cover the iterations done (the JSON says so under 'interrupted'; exit status 130 / "
            "143). Outputs are renamed into place when complete and may not overwrite the model "
            "or --image.",
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  higherhrnet-trt bench w32.onnx --warmup 10 --iters 100 --json cpu.json --plot cpu.png\n"
            "  higherhrnet-trt bench w32_fp16.engine --batch 4 --cuda-graph --json gpu.json\n"
            "  higherhrnet-trt bench w32_dynamic.onnx --input-size 512x768 --threads 2"
        ),
    )
    add_flags(p, ModelOptions)
    add_flags(p, DecodeOptions, ["heatmap_resolution", "decoder"])
    p.add_argument("--batch", type=BATCH, default=1,
                   help="frames per iteration (a fixed-batch model needs its own batch size)")
    p.add_argument("--input-size", type=_input_size, metavar="H[xW]",
                   help="letterbox frames into this input (models exported with --dynamic); default: "
                        "the model's fixed size, or the official size of the frame")
    p.add_argument("--warmup", type=_count(0), default=50, help="untimed iterations first")
    p.add_argument("--iters", type=_count(1), default=500, help="timed iterations")
    p.add_argument("--cuda-graph", action="store_true",
                   help="capture the network in a CUDA graph and replay it (TensorRT backends)")
    p.add_argument("--image", metavar="FILE",
                   help="frame to run (default: the bundled 640x480 sample with 5 people)")
    p.add_argument("--json", metavar="FILE", help="write the full results (and the environment) here")
    p.add_argument("--plot", type=_plot_file, metavar="PNG",
                   help="draw per-stage latencies and the per-iteration times here (.png, .svg, .pdf "
                        "or .jpg; needs matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_bench_cli)


def run_bench_cli(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.benchmarks.bench import BenchSettings, format_report, plot, run_bench

    setup_logging()
    model = options(args, ModelOptions)
    if not os.path.isfile(model.model):  # a local file: a served model's speed is triton_load's
        raise UserError(f"model file not found: {model.model}")
    _check_outputs(args)
    decode = options(args, DecodeOptions)
    settings = BenchSettings(
        model=model.model, backend=model.backend, batch=args.batch, input_size=args.input_size,
        warmup=args.warmup, iters=args.iters, cuda_graph=args.cuda_graph, image=args.image,
        project2image=not decode.heatmap_resolution, decoder=decode.decoder, progress=not args.no_progress,
        backend_options=model.backend_options(),
    )
    result = run_bench(settings)
    print(format_report(result))
    stopped = result.get("interrupted")
    if args.json:
        from higherhrnet_trt.benchmarks.environment import write_json  # its GPU probes are slow

        write_json(args.json, result)
    if args.plot:
        try:
            plot(result, args.plot)
        except ImportError as e:
            raise UserError("--plot needs matplotlib: pip install matplotlib") from e
        print(f"wrote {args.plot}")
    return stopped["exit_status"] if stopped else 0


def _check_outputs(args) -> None:
    """--json names a .json file; neither it nor --plot is the model, --image or the other
    (checked before the model loads)."""

    if args.json:
        require_suffix(args.json, (".json",), "--json", "the results are JSON (e.g. --json "
                       "bench.json)")
    check_outputs([Output("--json", args.json, "give --json another file name"),
                   Output("--plot", args.plot, "give --plot another file name")],
                  [("the model", args.model), ("--image", args.image)])
