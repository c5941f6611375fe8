"""ONNX -> TensorRT / TensorRT-RTX engine, plus its JSON sidecar.

One path for every flavour (see flavors.py): the ONNX carries the precision (fp32, fp16 from
AutoCast, INT8 as explicit Q/DQ) and the network is built strongly typed, so TensorRT 10.3 on a
Jetson, TensorRT 11 and TensorRT-RTX build the same thing. TensorRT 10's FP16 builder flag stays
available as an extra for an fp32 ONNX (weak typing: TensorRT picks fp16 or fp32 per layer). INT8
always comes from a Q/DQ ONNX (``higherhrnet-trt calibrate``), never from a calibrator: those are
gone in TensorRT 11 and RTX, and a Q/DQ file keeps the calibration reproducible and inspectable.

:func:`build_engine` is a row of small steps, in polygraphy's order (its loaders
NetworkFromOnnxPath, CreateConfig, EngineBytesFromNetwork, SaveEngine):

1. plan (build_plan.py): options checked, ONNX summarised, flavour loaded, precision, profile and
   target decided; every user mistake is a one-line UserError before TensorRT allocates anything;
2. network from ONNX, builder config, engine bytes (build_steps.py);
3. engine file and timing cache written atomically, then the sidecar.

The TensorRT objects of one build (builder, network, parser, config, serialized engine) are held
in one place and released when the build ends, failed or not, so a failed build on a Jetson does
not keep the builder's memory while its error propagates; a stopped write leaves no partial file.
Heavy modules (TensorRT, polygraphy, onnx) load inside the functions.
"""

from __future__ import annotations

import datetime
import os
import time
import traceback
from dataclasses import dataclass, field, fields
from typing import Any

from higherhrnet_trt.core.files import Output, atomic_open, check_outputs, sha256_file

from .build_plan import (
    ENGINE_SUFFIXES,
    SIZE_MULTIPLE,
    BuildOptions,
    BuildPlan,
    PrecisionPlan,
    Shape,
    parse_shape,
    plan_build,
    plan_precision,
    resolve_profile,
)
from .build_steps import check_dla, create_config, engine_bytes, io_specs, make_logger, network_from_onnx

# Looked up here, at call time, under this name: tests wrap it to watch the build's phases.
from .build_steps import make_progress_monitor as _make_progress_monitor
from .flavors import runs_on
from .layers import layers_path
from .sidecar import AHEAD_OF_TIME, Sidecar, build_command, write_sidecar


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
    runs_on: str = ""  # which GPUs the engine runs on, in words (flavors.runs_on)

    def summary(self) -> str:
        shapes = "; ".join(
            f"{k} min {'x'.join(map(str, v['min']))} opt {'x'.join(map(str, v['opt']))} "
            f"max {'x'.join(map(str, v['max']))}" for k, v in self.shapes.items()
        ) or "static"
        return (f"wrote {self.engine_path} ({self.engine_bytes / 2**20:.1f} MiB, {self.precision}, "
                f"{self.flavor}, {self.target}, shapes: {shapes}) in {self.seconds:.1f}s; "
                f"sidecar {self.sidecar_path}" + (f"\nruns on: {self.runs_on}" if self.runs_on else ""))


# -- the TensorRT objects of one build --------------------------------------------------------------
@dataclass
class _TrtObjects:
    """Everything TensorRT allocated for one build, in creation order. ``release`` drops them in
    reverse order (TensorRT frees an object when its last Python reference goes)."""

    logger: Any = None
    builder: Any = None
    network: Any = None
    parser: Any = None  # owns the weights the network points to: lives as long as the network
    config: Any = None
    timing_cache: Any = None
    monitor: Any = None
    serialized: Any = None  # IHostMemory: the whole engine, in host memory

    def release(self) -> None:
        for f in reversed(fields(self)):
            setattr(self, f.name, None)


def _run_tensorrt(plan: BuildPlan, opts: BuildOptions, engine_path: str, trt_objs: _TrtObjects):
    """Network from ONNX, builder config, engine bytes; engine (and timing cache) written.
    Returns the network's (inputs, outputs) for the sidecar."""
    trt = plan.flavor.trt
    o = trt_objs
    o.logger = make_logger(trt, opts.verbose)
    o.builder = trt.Builder(o.logger)
    check_dla(o.builder, plan, opts)
    o.network, o.parser = network_from_onnx(o.builder, o.logger, plan, opts.sanitize)
    o.config, o.timing_cache = create_config(o.builder, plan, opts)
    if opts.progress and plan.flavor.has_progress_monitor:
        o.monitor = _make_progress_monitor(trt)
        o.config.progress_monitor = o.monitor
    o.serialized = engine_bytes(o.builder, o.network, o.config, o.monitor, o.logger, plan, engine_path)
    save_engine(o.serialized, engine_path)
    save_layer_info(o.logger.layer_info, engine_path)
    if o.timing_cache is not None:
        save_timing_cache(o.config, opts.timing_cache)
    return io_specs(trt, o.network)


# -- files ------------------------------------------------------------------------------------------
def save_engine(serialized, engine_path: str) -> None:
    """Write the serialized engine under a temporary name, then rename: never a torn engine."""
    with atomic_open(engine_path, "wb") as f:
        f.write(memoryview(serialized))


def save_layer_info(text: str | None, engine_path: str) -> None:
    """The builder's layer information next to the engine (ENGINE.layers.txt, for 'info --layers'
    without a GPU); a stale one from an earlier build of the same path is removed."""
    path = layers_path(engine_path)
    if text is None:
        if os.path.isfile(path):
            os.remove(path)
        return
    with atomic_open(path, "w") as f:
        f.write(text)


def save_timing_cache(config, path: str) -> None:
    """The config's timing cache (read at the start, updated by this build) back to ``path``."""
    with atomic_open(path, "wb") as f:
        f.write(memoryview(config.get_timing_cache().serialize()))


def _write_build_sidecar(engine_path: str, plan: BuildPlan, opts: BuildOptions, build_args: dict,
                         io: tuple[list[dict], list[dict]], seconds: float) -> tuple[Sidecar, str]:
    """Everything known about the engine, next to it as ENGINE.json. Returns (sidecar, its path)."""
    gpu = plan.gpu
    sidecar = Sidecar(
        engine=os.path.basename(engine_path),
        builder=plan.flavor.describe(),
        gpu=gpu.name if gpu else AHEAD_OF_TIME,
        compute_capability=gpu.compute_capability if gpu else AHEAD_OF_TIME,
        precision=plan.precision.label,
        onnx_precision=plan.summary.precision,
        strongly_typed=plan.precision.strongly_typed,
        builder_flags=list(plan.precision.flags),
        shapes=plan.shapes,
        inputs=io[0],
        outputs=io[1],
        onnx={"path": plan.onnx_path, "sha256": sha256_file(plan.onnx_path)},
        build_args=build_args,
        model=plan.meta.to_json(),
        target_compute_capabilities=plan.targets,
        version_compatible=bool(opts.version_compatible),
        dla_core=opts.dla_core,
        engine_bytes=os.path.getsize(engine_path),
        engine_sha256=sha256_file(engine_path),
        build_seconds=round(seconds, 3),
        built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        notes=plan.notes,
    )
    return sidecar, write_sidecar(engine_path, sidecar)


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
    opts = BuildOptions(backend, fp16, int8, min_shape, opt_shape, max_shape, workspace, timing_cache,
                        dla_core, gpu_fallback, version_compatible, optimization_level, progress,
                        sanitize, verbose)
    build_args = opts.build_args(onnx_path, engine_path)
    opts.check(engine_path)
    # Before any work: a writable engine path that is not the ONNX itself.
    check_outputs([Output("the engine", engine_path, "choose another -o")], [("the ONNX", onnx_path)])
    plan = plan_build(onnx_path, opts, log)
    trt_objs = _TrtObjects()
    try:
        io = _run_tensorrt(plan, opts, engine_path, trt_objs)
    except BaseException as e:
        # The finished steps' frames in the traceback still hold the builder, network and config:
        # clear their locals so the memory goes now, not when the caller drops the exception.
        traceback.clear_frames(e.__traceback__)
        raise
    finally:
        trt_objs.release()
    seconds = time.perf_counter() - t0
    sidecar, side = _write_build_sidecar(engine_path, plan, opts, build_args, io, seconds)
    gpu, targets = plan.gpu, plan.targets
    report = BuildReport(
        engine_path=engine_path, sidecar_path=side, flavor=plan.flavor.label,
        precision=plan.precision.label, shapes=plan.shapes, seconds=seconds,
        engine_bytes=sidecar.engine_bytes,
        target=f"{gpu.name} (sm {gpu.compute_capability})" if gpu
        else f"ahead-of-time for compute capabilities {', '.join(targets) or 'default'}",
        notes=plan.notes, runs_on=runs_on(plan.flavor, gpu, targets),
    )
    if log:
        for note in plan.notes:
            log(f"note: {note}")
    return report


__all__ = ["BuildOptions", "BuildPlan", "BuildReport", "ENGINE_SUFFIXES", "PrecisionPlan",
           "SIZE_MULTIPLE", "build_command", "build_engine", "parse_shape", "plan_precision",
           "resolve_profile", "save_engine", "save_timing_cache"]
