"""The TensorRT steps of an engine build, in polygraphy's order (see build.py).

network_from_onnx -> create_config -> engine_bytes. Each step takes the objects it works on and
returns the ones it makes; whoever calls them owns those objects and releases them (build.py
drops them all when the build ends, failed or not). ``trt`` is the flavour's module (TensorRT or
TensorRT-RTX), passed in: nothing here imports TensorRT, polygraphy or onnx at module level.
"""

from __future__ import annotations

import os
import sys
import tempfile

from higherhrnet_trt.core.errors import UserError

from .build_plan import BuildOptions, BuildPlan


# -- logging and progress ---------------------------------------------------------------------------
def make_logger(trt, verbose: bool):
    """An ILogger that keeps errors (for the UserError message) and prints warnings when verbose."""

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            # The engine inspector's report of the built engine, which the builder logs (VERBOSE,
            # detailed profiling verbosity): layer precisions without deserializing (no GPU needed).
            self.layer_info: str | None = None

        def log(self, severity, msg):
            if severity == trt.ILogger.Severity.VERBOSE and str(msg).startswith("Layers:"):
                self.layer_info = str(msg)
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(str(msg))
                print(f"[{trt.__name__}] error: {msg}", file=sys.stderr)
            elif verbose and severity == trt.ILogger.Severity.WARNING:
                print(f"[{trt.__name__}] warning: {msg}", file=sys.stderr)
            elif verbose and severity == trt.ILogger.Severity.INFO:
                print(f"[{trt.__name__}] {msg}", file=sys.stderr)

    return _Logger()


def make_progress_monitor(trt):
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


# -- network from ONNX ------------------------------------------------------------------------------
def check_dla(builder, plan: BuildPlan, opts: BuildOptions) -> None:
    """--dla-core against what the builder reports, and against the precision (DLA: fp16 / int8)."""
    if opts.dla_core is None:
        return
    flavor, onnx_path = plan.flavor, plan.onnx_path
    cores = int(getattr(builder, "num_DLA_cores", 0) or 0)
    if cores == 0:
        raise UserError(f"--dla-core {opts.dla_core}: {flavor.label} reports no DLA on this machine "
                        "(DLA exists on Jetson AGX Orin / Orin NX with TensorRT 10)")
    if not 0 <= int(opts.dla_core) < cores:
        raise UserError(f"--dla-core {opts.dla_core}: this device has DLA cores 0..{cores - 1}")
    if plan.precision.label == "fp32":
        raise UserError(
            f"DLA runs fp16 and int8 only and {onnx_path} is fp32: build its fp16 ONNX "
            f"('higherhrnet-trt convert {onnx_path} -o {os.path.splitext(onnx_path)[0]}.fp16.onnx')"
            + (" or add --precision fp16" if flavor.has_precision_flags else "")
        )
    if plan.shapes:
        plan.notes.append("DLA does not run dynamic shapes: those layers need --gpu-fallback")


def sanitize_onnx(onnx_path: str, tmpdir: str) -> tuple[str, str | None]:
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


def _parse_error(parser, logger, plan: BuildPlan) -> UserError:
    """The parser's first error as one line: where (node, operator), what, and the fix."""
    errors = [parser.get_error(i) for i in range(parser.num_errors)]
    first = errors[0] if errors else None
    where = ""
    if first is not None:
        try:
            where = f" at node {first.node_name()} ({first.node_operator()})"
        except AttributeError:
            where = f" at node {first.node()}"
    return UserError(
        f"{plan.flavor.label} cannot parse {plan.onnx_path}{where}: "
        f"{first.desc() if first else '; '.join(logger.errors[:2]) or 'unknown error'} "
        "(re-export with 'higherhrnet-trt export'; ONNX opset "
        f"{plan.summary.opset})"
    )


def network_from_onnx(builder, logger, plan: BuildPlan, sanitize: bool):
    """-> (network, parser), strongly typed as planned; sanitized first (not Q/DQ graphs). The
    parser owns the weights the network points to: keep it alive until the engine is built."""
    trt = plan.flavor.trt
    network = builder.create_network(plan.flavor.network_flags(plan.precision.strongly_typed))
    parser = trt.OnnxParser(network, logger)
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_build_") as tmpdir:
        parse_path = plan.onnx_path
        if sanitize and plan.summary.precision not in ("int8", "fp8"):
            parse_path, note = sanitize_onnx(plan.onnx_path, tmpdir)
            if note:
                plan.notes.append(note)
        if not parser.parse_from_file(parse_path):
            raise _parse_error(parser, logger, plan)
    return network, parser


# -- builder config ---------------------------------------------------------------------------------
def _set_dla(config, trt, opts: BuildOptions) -> None:
    if opts.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        if opts.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _add_profile(builder, config, shapes: dict) -> None:
    if shapes:
        profile = builder.create_optimization_profile()
        for name, s in shapes.items():
            profile.set_shape(name, tuple(s["min"]), tuple(s["opt"]), tuple(s["max"]))
        config.add_optimization_profile(profile)


def _load_timing_cache(config, plan: BuildPlan, path: str | None):
    """The timing cache read from ``path`` (empty when the file does not exist yet) and set on
    ``config``; None when not asked for or the flavour has none (with a note)."""
    if not path:
        return None
    if not plan.flavor.has_timing_cache:
        plan.notes.append(f"--timing-cache ignored: {plan.flavor.label} has no timing cache")
        return None
    blob = b""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            blob = f.read()
    cache = config.create_timing_cache(blob)
    config.set_timing_cache(cache, False)
    return cache


def create_config(builder, plan: BuildPlan, opts: BuildOptions):
    """-> (builder config, timing cache or None): precision flags, memory, effort, version
    compatibility, DLA, detailed profiling verbosity, the optimisation profile, the timing cache."""
    flavor, trt = plan.flavor, plan.flavor.trt
    config = builder.create_builder_config()
    for name in plan.precision.flags:
        config.set_flag(flavor.builder_flag(name))
    if opts.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace) << 20)
    if opts.optimization_level is not None:
        config.builder_optimization_level = int(opts.optimization_level)
    if opts.version_compatible:
        if not flavor.has_version_compatible:
            raise UserError(f"--version-compatible is not available with {flavor.label}: build "
                            "without it (and rebuild after upgrading), or use --backend tensorrt")
        config.set_flag(flavor.builder_flag("VERSION_COMPATIBLE"))
        plan.notes.append("version compatible: the runtime must set engine_host_code_allowed = True")
    _set_dla(config, trt, opts)
    if hasattr(trt, "ProfilingVerbosity"):
        # Layer names and parameters in the engine, for 'higherhrnet-trt info' (engine inspector).
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _add_profile(builder, config, plan.shapes)
    return config, _load_timing_cache(config, plan, opts.timing_cache)


# -- engine bytes -----------------------------------------------------------------------------------
def engine_bytes(builder, network, config, monitor, logger, plan: BuildPlan, engine_path: str):
    """-> the serialized engine (IHostMemory). Ctrl-C asks TensorRT to cancel through the progress
    monitor; a failed build is a UserError with TensorRT's last errors."""
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
        raise UserError(f"{plan.flavor.label} failed to build {engine_path}: {detail} (try --verbose; "
                        "for out-of-memory errors lower --max-shape or --workspace)")
    return serialized


def io_specs(trt, network) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs of the network as the sidecar records them: name, shape (-1 where
    dynamic), NumPy dtype name."""
    import numpy as np

    def spec(t) -> dict:
        try:
            dtype = np.dtype(trt.nptype(t.dtype)).name
        except Exception:
            dtype = str(t.dtype).split(".")[-1].lower()
        return {"name": t.name, "shape": [int(d) for d in t.shape], "dtype": dtype}

    return ([spec(network.get_input(i)) for i in range(network.num_inputs)],
            [spec(network.get_output(i)) for i in range(network.num_outputs)])
