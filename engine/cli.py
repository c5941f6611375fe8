"""``higherhrnet-trt calibrate | build | info | debug-precision``.

Only argparse at module level: ``--help`` stays instant, and TensorRT, ModelOpt, polygraphy or
ONNX Runtime load only when the subcommand that needs them runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from higherhrnet_trt.core.cli_args import HelpFormatter as _Formatter
from higherhrnet_trt.core.cli_args import positive_int as _positive_int
from higherhrnet_trt.core.formats import ENGINE_SUFFIXES


def _shape(text: str) -> str:
    """Validate NxCxHxW early (argparse prints the message), keep the text for build_engine."""
    body = text.split(":", 1)[1] if ":" in text else text
    parts = body.lower().split("x")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected NxCxHxW, e.g. 1x3x512x512, got {text!r}")
    return text


def register(sub) -> None:
    fmt = _Formatter

    # -- calibrate ---------------------------------------------------------------------------------
    c = sub.add_parser(
        "calibrate",
        help="fp32 ONNX + your images -> INT8 Q/DQ ONNX (build it with 'build', no --int8)",
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
    c.add_argument("--images", required=True, metavar="DIR",
                   help="folder of calibration images (searched recursively): a few hundred frames "
                        "like the ones the robot will see; unreadable files are skipped and counted")
    c.add_argument("-o", "--output", metavar="ONNX",
                   help="output INT8 ONNX (default: MODEL.int8.onnx next to the input)")
    c.add_argument("--num-images", type=_positive_int, default=512,
                   help="images used for calibration (a seeded shuffle picks them); fewer warns")
    c.add_argument("--method", choices=["entropy", "max", "percentile"], default="entropy",
                   help="activation range: entropy (KL divergence, as TensorRT's calibrator), max "
                        "(largest |x|: no clipping, coarser steps), percentile (clip the top "
                        "100-P %% of |x|)")
    c.add_argument("--percentile", type=float, default=99.999, metavar="P",
                   help="share of |x| kept by --method percentile, in percent")
    c.add_argument("--holdout", type=int, default=10, metavar="N",
                   help="images kept out of calibration to measure the error (at most 1/5 of them)")
    c.add_argument("--high-precision", choices=["fp16", "fp32"], default="fp16",
                   help="dtype of the layers left unquantized: fp16 runs faster in TensorRT")
    c.add_argument("--input-size", type=_positive_int, metavar="N",
                   help="pre-processing size for a dynamic-shape ONNX (default: the model's); "
                        "static models letterbox frames into their fixed H x W")
    c.add_argument("--cache-dir", metavar="DIR",
                   help="where activation ranges are cached (default ~/.cache/higherhrnet_trt/"
                        "calibration, or $XDG_CACHE_HOME)")
    c.add_argument("--no-cache", dest="use_cache", action="store_false",
                   help="recompute the ranges even when cached (the cache is refreshed)")
    c.add_argument("--seed", type=int, default=0, help="seed of the image shuffle")
    c.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the calibration progress bar (shown on terminals only anyway)")
    c.set_defaults(func=run_calibrate)

    # -- build -------------------------------------------------------------------------------------
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
    prec = b.add_mutually_exclusive_group()
    prec.add_argument("--fp16", action="store_true",
                      help="TensorRT 10 only, fp32 ONNX only: let TensorRT pick fp16 kernels "
                           "(weak typing). Elsewhere build the fp16 ONNX from 'convert' instead")
    prec.add_argument("--int8", action="store_true",
                      help="accepted for a Q/DQ ONNX from 'calibrate' (changes nothing there); INT8 "
                           "is never calibrated by the builder")
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
    b.add_argument("--no-progress", dest="progress", action="store_false",
                   help="hide the build progress bar (shown on terminals only anyway)")
    b.add_argument("--show-warnings", action="store_true",
                   help="print TensorRT's warnings and info messages")
    b.set_defaults(func=run_build)

    # -- info --------------------------------------------------------------------------------------
    i = sub.add_parser(
        "info",
        help="what an ONNX or engine file is: metadata, inputs/outputs, precision",
        description=(
            "For an ONNX: opset, precision (fp32 / fp16 / int8 Q/DQ), inputs and outputs, op "
            "counts, weight sizes, model metadata. For an engine: its sidecar (builder, version, "
            "GPU, precision, shapes, source ONNX) checked against this machine, and a layer "
            "summary from TensorRT's engine inspector when the engine's runtime and a GPU are here."
        ),
        formatter_class=fmt,
    )
    i.add_argument("file", help="a .onnx or .engine/.plan/.trt file")
    i.add_argument("--layers", action="store_true",
                   help="engines: list every layer, not just the summary by type and precision")
    i.set_defaults(func=run_info)

    # -- debug-precision ---------------------------------------------------------------------------
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
    d.add_argument("--num-inputs", type=_positive_int, default=2,
                   help="inputs to run (every tensor of both models is kept per input: "
                        "memory grows with the network)")
    d.add_argument("--tolerance", type=float, default=1e-2,
                   help="relative error (max|err| / max|fp32|) above which a jump is reported")
    d.add_argument("--factor", type=float, default=2.0,
                   help="a layer 'jumps' when its error is at least this many times its inputs'")
    d.add_argument("--top", type=_positive_int, default=5, help="layers listed per table")
    d.add_argument("--graph-optimization", choices=["disable", "basic", "extended", "all"],
                   default="disable",
                   help="ONNX Runtime optimisation for both models; keep 'disable' for Q/DQ models "
                        "(ORT's CPU fusions can miscompute fp16 Q/DQ graphs)")
    d.add_argument("--all", dest="show_all", action="store_true",
                   help="print every compared tensor")
    d.set_defaults(func=run_debug_precision)


# -- handlers ---------------------------------------------------------------------------------------
def run_calibrate(args) -> int:
    import warnings

    from ..export.quantize import quantize_int8

    output = args.output or os.path.splitext(args.onnx)[0] + ".int8.onnx"
    # The report carries the warnings (too few images, unreadable files): print them as plain
    # lines instead of Python's "file:line: UserWarning" form.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = quantize_int8(
            args.onnx, output, images=args.images, num_images=args.num_images, method=args.method,
            percentile=args.percentile, holdout=args.holdout, high_precision=args.high_precision,
            input_size=args.input_size, cache_dir=args.cache_dir, use_cache=args.use_cache,
            seed=args.seed, progress=args.progress,
        )
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(report.summary())
    for note in report.notes:
        print(f"note: {note}")
    print(f"next: higherhrnet-trt build {output} -o {os.path.splitext(output)[0]}.engine")
    return 0


def run_build(args) -> int:
    from .build import build_engine

    output = args.output or os.path.splitext(args.onnx)[0] + ".engine"
    report = build_engine(
        args.onnx, output, backend=args.backend, fp16=args.fp16, int8=args.int8,
        min_shape=args.min_shape, opt_shape=args.opt_shape, max_shape=args.max_shape,
        workspace=args.workspace, timing_cache=args.timing_cache, dla_core=args.dla_core,
        gpu_fallback=args.gpu_fallback, version_compatible=args.version_compatible,
        optimization_level=args.optimization_level, progress=args.progress,
        sanitize=args.sanitize, verbose=args.show_warnings,
    )
    print(report.summary())
    return 0


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _meta_line(meta) -> str:
    return (f"{meta.model_name} (config {meta.config_name or '?'}), {meta.dataset} "
            f"{meta.num_joints} joints, input size {meta.input_size}, outputs {meta.outputs}, "
            f"flip {meta.flip}, precision {meta.precision}"
            + (", RANDOM WEIGHTS" if meta.random_weights else ""))


def _info_onnx(path: str) -> None:
    from .onnx_info import summarize

    s = summarize(path)
    print(f"{path}: ONNX opset {s.opset}, producer {s.producer or '?'}, precision {s.precision}")
    for kind, items in (("input", s.inputs), ("output", s.outputs)):
        for t in items:
            print(f"  {kind:6} {t.name}: {t.dtype} {t.shape_text()}")
    print("  ops: " + ", ".join(f"{k} {v}" for k, v in s.op_counts.items()))
    if s.initializer_bytes:
        print("  weights: " + ", ".join(f"{k} {_mib(v)}" for k, v in s.initializer_bytes.items()))
    if s.has_meta:
        print(f"  model: {_meta_line(s.meta())}")
    else:
        print("  model: no higherhrnet_trt metadata (not written by 'higherhrnet-trt export')")


def _layer_summary(sidecar, engine_path: str, show_all: bool) -> list[str]:
    """Engine inspector summary; needs the engine's TensorRT flavour and a GPU to deserialize."""
    import json
    from collections import Counter

    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.core.gpu import query_gpu

    from .flavors import load_flavor

    if query_gpu() is None:
        return ["layers: no CUDA GPU here; deserializing an engine (engine inspector) needs one"]
    try:
        flavor = load_flavor(sidecar.flavor)
    except UserError as e:
        return [f"layers: {e}"]
    trt = flavor.trt
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    if sidecar.version_compatible and hasattr(runtime, "engine_host_code_allowed"):
        runtime.engine_host_code_allowed = True
    with open(engine_path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    if engine is None:
        return [f"layers: {flavor.label} could not deserialize the engine"]
    inspector = engine.create_engine_inspector()
    info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    layers = info.get("Layers", []) if isinstance(info, dict) else []
    if layers and isinstance(layers[0], str):  # LAYER_NAMES_ONLY engines list names
        return [f"layers: {len(layers)} (built without detailed profiling verbosity)"]
    by_type: Counter = Counter()
    by_prec: Counter = Counter()
    lines = []
    for layer in layers:
        kind = str(layer.get("LayerType", "?"))
        outs = layer.get("Outputs", [])
        text = json.dumps(outs)
        prec = ("int8" if "Int8" in text or "INT8" in text else
                "fp16" if "Half" in text or "FP16" in text else
                "fp32" if "Float" in text or "FP32" in text else "other")
        by_type[kind] += 1
        by_prec[prec] += 1
        if show_all:
            lines.append(f"    {layer.get('Name', '?')} [{kind}] -> {prec}")
    head = [f"layers: {len(layers)}; by type: " + ", ".join(f"{k} {v}" for k, v in by_type.most_common()),
            "  output precision: " + ", ".join(f"{k} {v}" for k, v in by_prec.most_common())]
    return head + lines


def _info_engine(path: str, show_layers: bool) -> None:
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.core.gpu import query_gpu

    from .onnx_info import sha256_file
    from .sidecar import check_compatible, read_sidecar

    s = read_sidecar(path)
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    target = (f"ahead-of-time for compute capabilities {', '.join(s.target_compute_capabilities)}"
              if s.ahead_of_time else f"{s.gpu} (compute capability {s.compute_capability})")
    print(f"{path}: {s.flavor} {s.version} engine, {_mib(size)}, precision {s.precision}, "
          f"{'strongly typed' if s.strongly_typed else 'weakly typed ' + '+'.join(s.builder_flags)}")
    print(f"  target: {target}" + (f", DLA core {s.dla_core}" if s.dla_core is not None else "")
          + (", version compatible" if s.version_compatible else ""))
    print(f"  built {s.built_at} in {s.build_seconds:.1f}s")
    onnx_path = s.onnx.get("path", "")
    state = "not found here"
    if onnx_path and os.path.isfile(onnx_path):
        state = "unchanged" if sha256_file(onnx_path) == s.onnx.get("sha256") else \
            "CHANGED since the build: rebuild"
    print(f"  from {onnx_path} (sha256 {s.onnx.get('sha256', '')[:16]}..., {state})")
    for name, prof in s.shapes.items():
        print(f"  profile {name}: min {'x'.join(map(str, prof['min']))}, opt "
              f"{'x'.join(map(str, prof['opt']))}, max {'x'.join(map(str, prof['max']))}")
    for kind, items in (("input", s.inputs), ("output", s.outputs)):
        for t in items:
            print(f"  {kind:6} {t['name']}: {t['dtype']} {'x'.join(map(str, t['shape']))}")
    print(f"  model: {_meta_line(s.meta())}")
    for note in s.notes:
        print(f"  note: {note}")
    print(f"  rebuild: {s.rebuild_command(engine_path=path)}")

    from .flavors import MODULES, _import

    module = _import(s.flavor) if s.flavor in MODULES else None
    if module is None:
        print(f"  this machine: {s.flavor} is not installed, cannot check or inspect the engine")
        return
    try:
        warns = check_compatible(s, s.flavor, str(getattr(module, "__version__", "")), query_gpu(),
                                 engine_path=path)
        print("  this machine: compatible" + "".join(f"; {w}" for w in warns))
    except UserError as e:
        print(f"  this machine: NOT compatible: {e}")
        return
    for line in _layer_summary(s, path, show_layers):
        print(f"  {line}")


def run_info(args) -> int:
    from higherhrnet_trt.core.errors import UserError

    path = args.file
    if path.lower().endswith(".onnx"):
        _info_onnx(path)
    elif path.lower().endswith(ENGINE_SUFFIXES):
        _info_engine(path, args.layers)
    else:
        raise UserError(f"cannot tell what {path!r} is: expected .onnx or .engine/.plan/.trt")
    return 0


def run_debug_precision(args) -> int:
    from higherhrnet_trt.core.errors import UserError

    from ..export.quantize import InputMaker, list_images
    from .onnx_info import summarize
    from .precision_debug import compare_layers

    ref = summarize(args.onnx)
    var = summarize(args.variant)
    if ref.precision != "fp32":
        raise UserError(f"{args.onnx} is {ref.precision}: the reference must be the fp32 ONNX")
    maker = InputMaker(ref, ref.meta() if ref.has_meta else _fallback_meta(), None)
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


def _fallback_meta():
    from higherhrnet_trt.core.metadata import ModelMeta

    return ModelMeta()
