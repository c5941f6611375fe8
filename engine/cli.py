"""``higherhrnet-trt build | info`` (``calibrate`` and ``debug-precision``: export/precision_cli.py).

Only argparse at module level: ``--help`` stays instant, and TensorRT, ModelOpt, polygraphy or
ONNX Runtime load only when the subcommand that needs them runs.
"""

from __future__ import annotations

import argparse
import os

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


def _add_info(sub, fmt) -> None:
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
