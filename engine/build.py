"""ONNX -> TensorRT / TensorRT-RTX engine, plus its JSON sidecar.

One path for every flavour (see flavors.py): the ONNX carries the precision (fp32, fp16 from
AutoCast, INT8 as explicit Q/DQ) and the network is built strongly typed, so TensorRT 10.3 on a
Jetson, TensorRT 11 and TensorRT-RTX build the same thing. TensorRT 10's FP16 builder flag stays
available as an extra for an fp32 ONNX (weak typing: TensorRT picks fp16 or fp32 per layer). INT8
always comes from a Q/DQ ONNX (``higherhrnet-trt calibrate``), never from a calibrator: those are
gone in TensorRT 11 and RTX, and a Q/DQ file keeps the calibration reproducible and inspectable.

Heavy modules (TensorRT, polygraphy, onnx) load inside the functions.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.formats import ENGINE_SUFFIXES, SIZE_MULTIPLE
from higherhrnet_trt.core.gpu import query_gpu

from .flavors import Flavor, load_flavor
from .onnx_info import OnnxSummary, sha256_file, summarize
from .sidecar import AHEAD_OF_TIME, Sidecar, build_command, write_sidecar

Shape = Sequence[int]


@dataclass
class BuildReport:
    """What build_engine did."""

    engine_path: str
    sidecar_path: str
    flavor: str  # "TensorRT 10.3.0" / "TensorRT-RTX 1.7.1.116"
    precision: str
    shapes: dict
    seconds: float
    engine_bytes: int
    target: str  # GPU name (compute capability) or "ahead-of-time"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        shapes = "; ".join(
            f"{k} min {'x'.join(map(str, v['min']))} opt {'x'.join(map(str, v['opt']))} "
            f"max {'x'.join(map(str, v['max']))}" for k, v in self.shapes.items()
        ) or "static"
        return (f"wrote {self.engine_path} ({self.engine_bytes / 2**20:.1f} MiB, {self.precision}, "
                f"{self.flavor}, {self.target}, shapes: {shapes}) in {self.seconds:.1f}s; "
                f"sidecar {self.sidecar_path}")


# -- shapes -----------------------------------------------------------------------------------------
def parse_shape(value: str | Shape | None) -> tuple[int, ...] | None:
    """"1x3x512x512", "image:1x3x512x512" (polygraphy / trtexec style) or a sequence of ints."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.split(":", 1)[1] if ":" in value else value
        try:
            dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x") if d)
        except ValueError:
            raise UserError(f"shape {value!r} is not NxCxHxW, e.g. 1x3x512x512") from None
    else:
        dims = tuple(int(d) for d in value)
    if not dims or any(d <= 0 for d in dims):
        raise UserError(f"shape {value!r} must have positive dimensions, e.g. 1x3x512x512")
    return dims


def _round64(x: float) -> int:
    return max(SIZE_MULTIPLE, int(-(-x // SIZE_MULTIPLE)) * SIZE_MULTIPLE)


def resolve_profile(
    summary: OnnxSummary,
    input_size: int,
    min_shape: Shape | None,
    opt_shape: Shape | None,
    max_shape: Shape | None,
    multiple: int = SIZE_MULTIPLE,
) -> tuple[dict, list[str]]:
    """Optimisation profile for the image input: {name: {"min", "opt", "max"}} ({} when static).

    Dynamic ONNX without shapes gets defaults from the model's input size S: H and W from
    S/2 to 2S (opt S x S), batch 1. Given shapes are checked against the ONNX: rank, fixed
    dimensions, min <= opt <= max, and H, W multiples of 64 (the network needs it; TensorRT-RTX
    also rejects other profile shapes).
    """
    notes: list[str] = []
    if len(summary.inputs) != 1:
        raise UserError(f"expected one image input, the ONNX has {[i.name for i in summary.inputs]}")
    inp = summary.inputs[0]
    given = {"min": parse_shape(min_shape), "opt": parse_shape(opt_shape), "max": parse_shape(max_shape)}
    static = not inp.is_dynamic
    if static:
        for key, shape in given.items():
            if shape is not None and list(shape) != list(inp.dims):
                raise UserError(
                    f"--{key}-shape {'x'.join(map(str, shape))} but {summary.path} has a static input "
                    f"{inp.shape_text()}: re-export with --dynamic (and --dynamic-batch) for other shapes"
                )
        return {}, notes
    if all(v is None for v in given.values()):
        s = int(input_size)
        n_fixed = inp.dims[0] if isinstance(inp.dims[0], int) and inp.dims[0] > 0 else 1
        default = {"min": _round64(s / 2), "opt": _round64(s), "max": _round64(2 * s)}
        for key, hw in default.items():
            dims = []
            for axis, d in enumerate(inp.dims):
                if isinstance(d, int) and d > 0:
                    dims.append(d)
                else:
                    dims.append(hw if axis >= 2 else n_fixed)
            given[key] = tuple(dims)
        notes.append(
            f"dynamic input {inp.name} {inp.shape_text()}: default profile min "
            f"{'x'.join(map(str, given['min']))}, opt {'x'.join(map(str, given['opt']))}, max "
            f"{'x'.join(map(str, given['max']))} (pass --min-shape/--opt-shape/--max-shape to change)"
        )
    else:
        _check_shapes({k: v for k, v in given.items() if v is not None}, inp, multiple)
        if given["opt"] is None:
            given["opt"] = given["max"] or given["min"]
        given["min"] = given["min"] or given["opt"]
        given["max"] = given["max"] or given["opt"]
    _check_shapes(given, inp, multiple)
    for axis in range(len(inp.dims)):
        if not given["min"][axis] <= given["opt"][axis] <= given["max"][axis]:
            raise UserError(f"profile needs min <= opt <= max on every axis, got min "
                            f"{'x'.join(map(str, given['min']))}, opt {'x'.join(map(str, given['opt']))}, "
                            f"max {'x'.join(map(str, given['max']))}")
    return {inp.name: {k: list(v) for k, v in given.items()}}, notes


def _check_shapes(given: dict, inp, multiple: int) -> None:
    """Rank, fixed axes and 64-multiples of the given profile shapes, named by their flag."""
    for key, shape in given.items():
        if len(shape) != len(inp.dims):
            raise UserError(f"--{key}-shape {'x'.join(map(str, shape))} has {len(shape)} dimensions; "
                            f"input {inp.name} is {inp.shape_text()}")
        for axis, (d, want) in enumerate(zip(shape, inp.dims)):
            if isinstance(want, int) and want > 0 and d != want:
                raise UserError(f"--{key}-shape {'x'.join(map(str, shape))}: axis {axis} is fixed to "
                                f"{want} in the ONNX ({inp.shape_text()})")
        for axis in (2, 3):
            if len(shape) > axis and shape[axis] % multiple:
                raise UserError(f"--{key}-shape {'x'.join(map(str, shape))}: height and width must be "
                                f"multiples of {multiple} (e.g. 512x512, 512x704)")


# -- precision --------------------------------------------------------------------------------------
@dataclass
class PrecisionPlan:
    strongly_typed: bool
    flags: list[str]  # BuilderFlag names to set
    label: str  # what the engine computes in, for the sidecar
    notes: list[str] = field(default_factory=list)


def plan_precision(flavor: Flavor, summary: OnnxSummary, fp16: bool, int8: bool,
                   onnx_path: str) -> PrecisionPlan:
    """Strongly typed unless TensorRT 10's FP16 flag is asked for an fp32 ONNX. See module doc."""
    stem = os.path.splitext(onnx_path)[0]
    if fp16 and int8:
        raise UserError("choose one of --fp16 and --int8")
    prec = summary.precision
    mixed = prec == "int8" and summary.initializer_bytes.get("float16", 0) > 0
    label = "int8+fp16" if mixed else prec
    if int8 and prec not in ("int8", "fp8"):
        raise UserError(
            f"--int8 needs a Q/DQ ONNX ({onnx_path} is {prec}; this toolkit never uses TensorRT "
            f"calibrators): run 'higherhrnet-trt calibrate {onnx_path} --images DIR -o "
            f"{stem}.int8.onnx' on the fp32 ONNX and build that file without --int8"
        )
    if prec != "fp32":
        notes = []
        if fp16 or int8:
            notes.append(f"--{'fp16' if fp16 else 'int8'} not needed: {onnx_path} is already {label}, "
                         "built strongly typed as written")
        return PrecisionPlan(True, [], label, notes)
    if fp16:
        if not flavor.has_precision_flags:
            raise UserError(
                f"--fp16 is a TensorRT 10 builder flag that {flavor.label} removed (precision comes "
                f"from the ONNX): run 'higherhrnet-trt convert {onnx_path} -o {stem}.fp16.onnx' and "
                "build that file without --fp16"
            )
        return PrecisionPlan(False, ["FP16"], "fp16 (builder flag, fp32 where faster)",
                             ["weakly typed FP16 build (TensorRT 10 flag); for a reproducible fp16 "
                              "engine that also builds on TensorRT 11, convert the ONNX instead"])
    return PrecisionPlan(True, [], "fp32")


# -- TensorRT glue ----------------------------------------------------------------------------------
def _make_logger(trt, verbose: bool):
    """An ILogger that keeps errors (for the UserError message) and prints warnings when verbose."""

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(str(msg))
                print(f"[{trt.__name__}] error: {msg}", file=sys.stderr)
            elif verbose and severity == trt.ILogger.Severity.WARNING:
                print(f"[{trt.__name__}] warning: {msg}", file=sys.stderr)
            elif verbose and severity == trt.ILogger.Severity.INFO:
                print(f"[{trt.__name__}] {msg}", file=sys.stderr)

    return _Logger()


def _make_progress_monitor(trt):
    """IProgressMonitor driving a tqdm bar over the top-level build phase; the bar's text shows
    the innermost phase. A large network on a Jetson builds for minutes: show it is alive."""
    from tqdm import tqdm

    class _Progress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.bar = None
            self.root = None
            self.interrupted = False

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None and self.bar is None:
                self.root = phase_name
                self.bar = tqdm(total=int(num_steps), desc=phase_name, unit="phase", leave=False,
                                disable=None, dynamic_ncols=True)
            elif self.bar is not None:
                self.bar.set_postfix_str(str(phase_name)[:40], refresh=False)

        def step_complete(self, phase_name, step):
            if phase_name == self.root and self.bar is not None:
                self.bar.update(1)
            return not self.interrupted  # False asks TensorRT to cancel the build

        def phase_finish(self, phase_name):
            if phase_name == self.root and self.bar is not None:
                self.bar.close()
                self.bar = None

    return _Progress()


def _sanitize(onnx_path: str, tmpdir: str) -> tuple[str, str | None]:
    """Constant-fold with polygraphy (graph surgeon + ONNX Runtime) into a temp file.

    Our exporter's graphs come out of torch's optimizer already folded (measured: 0 nodes folded
    on the tiny network), but ONNX files from other exporters or edited by hand often carry constant
    subgraphs that TensorRT's parser handles worse. Shapes are not folded: on a dynamic graph that
    runs symbolic shape inference, 17 s for the tiny network, for nothing. Returns (path to build,
    note). Never used on Q/DQ graphs: folding would turn the weight Q -> DQ pairs into plain float
    weights and lose the explicit quantization.
    """
    try:
        import onnx
        from polygraphy.backend.onnx import fold_constants
    except ImportError:
        return onnx_path, "polygraphy not installed: constant folding skipped (pip install polygraphy)"
    from polygraphy.logger import G_LOGGER

    model = onnx.load_model(onnx_path)
    before = len(model.graph.node)
    try:
        with G_LOGGER.verbosity(G_LOGGER.ERROR):
            folded = fold_constants(model, fold_shapes=False, error_ok=True)
    except Exception as e:  # folding is an optimisation: never fail the build for it
        return onnx_path, f"constant folding skipped ({type(e).__name__}: {e})"
    after = len(folded.graph.node)
    if after == before:
        return onnx_path, None
    out = os.path.join(tmpdir, "folded.onnx")
    onnx.save_model(folded, out)
    return out, f"polygraphy constant folding: {before} -> {after} nodes"


def _io_specs(trt, network) -> tuple[list[dict], list[dict]]:
    import numpy as np

    def spec(t) -> dict:
        try:
            dtype = np.dtype(trt.nptype(t.dtype)).name
        except Exception:
            dtype = str(t.dtype).split(".")[-1].lower()
        return {"name": t.name, "shape": [int(d) for d in t.shape], "dtype": dtype}

    return ([spec(network.get_input(i)) for i in range(network.num_inputs)],
            [spec(network.get_output(i)) for i in range(network.num_outputs)])


# -- the build ---------------------------------------------------------------------------------------
def build_engine(
    onnx_path: str,
    engine_path: str,
    backend: str = "auto",
    fp16: bool = False,
    int8: bool = False,
    min_shape: str | Shape | None = None,
    opt_shape: str | Shape | None = None,
    max_shape: str | Shape | None = None,
    workspace: int | None = None,
    timing_cache: str | None = None,
    dla_core: int | None = None,
    gpu_fallback: bool = False,
    version_compatible: bool = False,
    optimization_level: int | None = None,
    progress: bool = True,
    sanitize: bool = True,
    verbose: bool = False,
    log=print,
) -> BuildReport:
    """Build ``engine_path`` from ``onnx_path`` and write ``engine_path + ".json"``.

    backend: "auto" (TensorRT if importable, else TensorRT-RTX), "tensorrt", "tensorrt-rtx".
    fp16: TensorRT 10 only, fp32 ONNX only (weak typing); elsewhere convert the ONNX instead.
    int8: accepted only for a Q/DQ ONNX (where it changes nothing); INT8 is never calibrated here.
    min_shape / opt_shape / max_shape: optimisation profile of a dynamic ONNX, "NxCxHxW"
        (default: H, W from S/2 to 2S, opt S, batch 1; S = the model's input size).
    workspace: builder workspace limit, MiB (default: TensorRT's, all device memory).
    timing_cache: file to read and update (TensorRT only; no-op in TensorRT-RTX).
    dla_core / gpu_fallback: build for a Jetson DLA core; layers DLA cannot run go to the GPU with
        gpu_fallback. DLA runs fp16 / int8 only.
    version_compatible: engine runs on later TensorRT versions of the same major version (the
        runtime must allow host code: ``runtime.engine_host_code_allowed = True``).
    optimization_level: 0-5 (TensorRT's default 3): higher searches longer for faster kernels.
    progress: tqdm bar over the build phases (IProgressMonitor) on a terminal.
    sanitize: polygraphy constant folding first (skipped for Q/DQ graphs).
    """
    t0 = time.perf_counter()
    onnx_path, engine_path = str(onnx_path), str(engine_path)
    build_args = {
        "onnx_path": onnx_path, "engine_path": engine_path, "backend": backend, "fp16": fp16,
        "int8": int8, "min_shape": list(parse_shape(min_shape) or []) or None,
        "opt_shape": list(parse_shape(opt_shape) or []) or None,
        "max_shape": list(parse_shape(max_shape) or []) or None, "workspace": workspace,
        "timing_cache": timing_cache, "dla_core": dla_core, "gpu_fallback": gpu_fallback,
        "version_compatible": version_compatible, "optimization_level": optimization_level,
    }
    if not engine_path.endswith(ENGINE_SUFFIXES):
        raise UserError(f"engine path {engine_path!r} must end in {', '.join(ENGINE_SUFFIXES)} "
                        "(the runtime picks the backend from the extension)")
    if gpu_fallback and dla_core is None:
        raise UserError("--gpu-fallback only applies with --dla-core N")
    if optimization_level is not None and not 0 <= int(optimization_level) <= 5:
        raise UserError(f"--optimization-level must be 0..5, got {optimization_level}")
    if workspace is not None and int(workspace) <= 0:
        raise UserError(f"--workspace is in MiB and must be positive, got {workspace}")

    summary = summarize(onnx_path)
    meta = summary.meta()
    flavor = load_flavor(backend)
    trt = flavor.trt
    plan = plan_precision(flavor, summary, fp16, int8, onnx_path)
    notes = list(plan.notes)
    shapes, shape_notes = resolve_profile(summary, meta.input_size, min_shape, opt_shape, max_shape)
    notes += shape_notes

    gpu = None if flavor.ahead_of_time else query_gpu()
    if not flavor.ahead_of_time and gpu is None:
        raise UserError(
            f"{flavor.label} builds for the GPU it runs on and no CUDA GPU was found: build on the "
            "target (the Jetson itself), or use --backend tensorrt-rtx to build ahead of time on a CPU"
        )
    targets = flavor.default_target_compute_capabilities if flavor.ahead_of_time else []
    if flavor.ahead_of_time:
        local = query_gpu()
        if local is not None and targets and local.compute_capability not in targets:
            notes.append(f"this {local.name} (compute capability {local.compute_capability}) is not "
                         f"a TensorRT-RTX target ({', '.join(targets)}): use --backend tensorrt here")

    logger = _make_logger(trt, verbose)
    builder = trt.Builder(logger)
    if dla_core is not None:
        cores = int(getattr(builder, "num_DLA_cores", 0) or 0)
        if cores == 0:
            raise UserError(f"--dla-core {dla_core}: {flavor.label} reports no DLA on this machine "
                            "(DLA exists on Jetson AGX Orin / Orin NX with TensorRT 10)")
        if not 0 <= int(dla_core) < cores:
            raise UserError(f"--dla-core {dla_core}: this device has DLA cores 0..{cores - 1}")
        if plan.label == "fp32":
            raise UserError(
                f"DLA runs fp16 and int8 only and {onnx_path} is fp32: build its fp16 ONNX "
                f"('higherhrnet-trt convert {onnx_path} -o {os.path.splitext(onnx_path)[0]}.fp16.onnx')"
                + (" or add --fp16" if flavor.has_precision_flags else "")
            )
        if shapes:
            notes.append("DLA does not run dynamic shapes: those layers need --gpu-fallback")

    network = builder.create_network(flavor.network_flags(plan.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_build_") as tmpdir:
        parse_path = onnx_path
        if sanitize and summary.precision not in ("int8", "fp8"):
            parse_path, note = _sanitize(onnx_path, tmpdir)
            if note:
                notes.append(note)
        if not parser.parse_from_file(parse_path):
            errors = [parser.get_error(i) for i in range(parser.num_errors)]
            first = errors[0] if errors else None
            where = ""
            if first is not None:
                try:
                    where = f" at node {first.node_name()} ({first.node_operator()})"
                except AttributeError:
                    where = f" at node {first.node()}"
            raise UserError(
                f"{flavor.label} cannot parse {onnx_path}{where}: "
                f"{first.desc() if first else '; '.join(logger.errors[:2]) or 'unknown error'} "
                "(re-export with 'higherhrnet-trt export'; ONNX opset "
                f"{summary.opset})"
            )

    config = builder.create_builder_config()
    for name in plan.flags:
        config.set_flag(flavor.builder_flag(name))
    if workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace) << 20)
    if optimization_level is not None:
        config.builder_optimization_level = int(optimization_level)
    if version_compatible:
        if not flavor.has_version_compatible:
            raise UserError(f"--version-compatible is not available with {flavor.label}: build "
                            "without it (and rebuild after upgrading), or use --backend tensorrt")
        config.set_flag(flavor.builder_flag("VERSION_COMPATIBLE"))
        notes.append("version compatible: the runtime must set engine_host_code_allowed = True")
    if dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        if gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if hasattr(trt, "ProfilingVerbosity"):
        # Layer names and parameters in the engine, for 'higherhrnet-trt info' (engine inspector).
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if shapes:
        profile = builder.create_optimization_profile()
        for name, s in shapes.items():
            profile.set_shape(name, tuple(s["min"]), tuple(s["opt"]), tuple(s["max"]))
        config.add_optimization_profile(profile)
    cache = None
    if timing_cache:
        if flavor.has_timing_cache:
            blob = b""
            if os.path.isfile(timing_cache):
                with open(timing_cache, "rb") as f:
                    blob = f.read()
            cache = config.create_timing_cache(blob)
            config.set_timing_cache(cache, False)
        else:
            notes.append(f"--timing-cache ignored: {flavor.label} has no timing cache")
    monitor = None
    if progress and flavor.has_progress_monitor:
        monitor = _make_progress_monitor(trt)
        config.progress_monitor = monitor

    try:
        serialized = builder.build_serialized_network(network, config)
    except KeyboardInterrupt:
        if monitor is not None:
            monitor.interrupted = True
        raise
    finally:
        if monitor is not None and monitor.bar is not None:
            monitor.bar.close()
    if serialized is None:
        detail = "; ".join(logger.errors[-3:]) or "see the messages above"
        raise UserError(f"{flavor.label} failed to build {engine_path}: {detail} (try --verbose; "
                        "for out-of-memory errors lower --max-shape or --workspace)")

    os.makedirs(os.path.dirname(os.path.abspath(engine_path)), exist_ok=True)
    tmp = engine_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(memoryview(serialized))
    os.replace(tmp, engine_path)
    if cache is not None:
        with open(timing_cache, "wb") as f:
            f.write(memoryview(config.get_timing_cache().serialize()))

    inputs, outputs = _io_specs(trt, network)
    meta_json = meta.to_json()
    seconds = time.perf_counter() - t0
    sidecar = Sidecar(
        engine=os.path.basename(engine_path),
        builder=flavor.describe(),
        gpu=gpu.name if gpu else AHEAD_OF_TIME,
        compute_capability=gpu.compute_capability if gpu else AHEAD_OF_TIME,
        precision=plan.label,
        onnx_precision=summary.precision,
        strongly_typed=plan.strongly_typed,
        builder_flags=list(plan.flags),
        shapes=shapes,
        inputs=inputs,
        outputs=outputs,
        onnx={"path": onnx_path, "sha256": sha256_file(onnx_path)},
        build_args=build_args,
        model=meta_json,
        target_compute_capabilities=targets,
        version_compatible=bool(version_compatible),
        dla_core=dla_core,
        engine_bytes=os.path.getsize(engine_path),
        engine_sha256=sha256_file(engine_path),
        build_seconds=round(seconds, 3),
        built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        notes=notes,
    )
    side = write_sidecar(engine_path, sidecar)
    report = BuildReport(
        engine_path=engine_path, sidecar_path=side, flavor=flavor.label, precision=plan.label,
        shapes=shapes, seconds=seconds, engine_bytes=sidecar.engine_bytes,
        target=f"{gpu.name} (sm {gpu.compute_capability})" if gpu
        else f"ahead-of-time for compute capabilities {', '.join(targets) or 'default'}",
        notes=notes,
    )
    if log:
        for note in notes:
            log(f"note: {note}")
    return report


__all__ = ["BuildReport", "build_engine", "build_command", "parse_shape", "plan_precision",
           "resolve_profile"]
