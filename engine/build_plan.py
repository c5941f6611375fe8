"""What an engine build will do, decided before TensorRT builds anything (see build.py).

The options are checked, the ONNX is summarised, the TensorRT flavour loaded, and from them the
precision plan (strongly typed, or TensorRT 10's FP16 flag), the optimisation profile and the
target (the GPU at hand, or TensorRT-RTX's compute capabilities) follow. Every mistake a user can
make here ends in a one-line UserError before the builder allocates anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.formats import ENGINE_SUFFIXES, SIZE_MULTIPLE
from higherhrnet_trt.core.gpu import GpuInfo, query_gpu
from higherhrnet_trt.core.metadata import ModelMeta

from .flavors import Flavor, load_flavor
from .onnx_info import OnnxSummary, summarize

Shape = Sequence[int]


# -- options ----------------------------------------------------------------------------------------
@dataclass
class BuildOptions:
    """build_engine's settings (meanings: its docstring), checked before anything loads."""

    backend: str = "auto"
    fp16: bool = False
    int8: bool = False
    min_shape: str | Shape | None = None
    opt_shape: str | Shape | None = None
    max_shape: str | Shape | None = None
    workspace: int | None = None  # MiB
    timing_cache: str | None = None
    dla_core: int | None = None
    gpu_fallback: bool = False
    version_compatible: bool = False
    optimization_level: int | None = None
    progress: bool = True
    sanitize: bool = True
    verbose: bool = False

    def build_args(self, onnx_path: str, engine_path: str) -> dict:
        """The arguments as the sidecar records them (shapes parsed: a bad one raises here), from
        which ``Sidecar.rebuild_command`` prints the exact command again."""
        return {
            "onnx_path": onnx_path, "engine_path": engine_path, "backend": self.backend,
            "fp16": self.fp16, "int8": self.int8,
            "min_shape": list(parse_shape(self.min_shape) or []) or None,
            "opt_shape": list(parse_shape(self.opt_shape) or []) or None,
            "max_shape": list(parse_shape(self.max_shape) or []) or None, "workspace": self.workspace,
            "timing_cache": self.timing_cache, "dla_core": self.dla_core,
            "gpu_fallback": self.gpu_fallback, "version_compatible": self.version_compatible,
            "optimization_level": self.optimization_level,
        }

    def check(self, engine_path: str) -> None:
        """The checks that need neither the ONNX nor TensorRT."""
        if not engine_path.endswith(ENGINE_SUFFIXES):
            raise UserError(f"engine path {engine_path!r} must end in {', '.join(ENGINE_SUFFIXES)} "
                            "(the runtime picks the backend from the extension)")
        if self.gpu_fallback and self.dla_core is None:
            raise UserError("--gpu-fallback only applies with --dla-core N")
        if self.optimization_level is not None and not 0 <= int(self.optimization_level) <= 5:
            raise UserError(f"--optimization-level must be 0..5, got {self.optimization_level}")
        if self.workspace is not None and int(self.workspace) <= 0:
            raise UserError(f"--workspace is in MiB and must be positive, got {self.workspace}")


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
    """Strongly typed unless TensorRT 10's FP16 flag is asked for an fp32 ONNX. See build.py's doc."""
    stem = os.path.splitext(onnx_path)[0]
    if fp16 and int8:
        raise UserError("choose one of --precision fp16 and --precision int8")
    prec = summary.precision
    mixed = prec == "int8" and summary.initializer_bytes.get("float16", 0) > 0
    label = "int8+fp16" if mixed else prec
    if int8 and prec not in ("int8", "fp8"):
        raise UserError(
            f"--precision int8 needs a Q/DQ ONNX ({onnx_path} is {prec}; this toolkit never uses TensorRT "
            f"calibrators): run 'higherhrnet-trt calibrate {onnx_path} --images DIR -o "
            f"{stem}.int8.onnx' on the fp32 ONNX and build that file without --precision int8"
        )
    if prec == "int8" and summary.has_meta and summary.meta().target == "cpu":
        raise UserError(f"{onnx_path} is an INT8 file for CPU runtimes (calibrate --target cpu: uint8 "
                        "activations TensorRT does not build): calibrate the fp32 ONNX again with "
                        "--target tensorrt (the default) for TensorRT")
    if prec != "fp32":
        notes = []
        if fp16 or int8:
            asked = "fp16" if fp16 else "int8"
            notes.append(f"--precision {asked} not needed: {onnx_path} is already {label}, "
                         "built strongly typed as written")
        return PrecisionPlan(True, [], label, notes)
    if fp16:
        if not flavor.has_precision_flags:
            raise UserError(
                f"--precision fp16 is a TensorRT 10 builder flag that {flavor.label} removed (precision "
                f"comes from the ONNX): run 'higherhrnet-trt convert {onnx_path} -o {stem}.fp16.onnx' and "
                "build that file without --precision fp16"
            )
        return PrecisionPlan(False, ["FP16"], "fp16 (builder flag, fp32 where faster)",
                             ["weakly typed FP16 build (TensorRT 10 flag); for a reproducible fp16 "
                              "engine that also builds on TensorRT 11, convert the ONNX instead"])
    return PrecisionPlan(True, [], "fp32")


# -- the plan ---------------------------------------------------------------------------------------
@dataclass
class BuildPlan:
    """Everything decided about one build before TensorRT runs. ``notes`` collects what the user
    should know (defaults taken, flags that change nothing); later build steps append to it."""

    onnx_path: str
    summary: OnnxSummary
    meta: ModelMeta
    flavor: Flavor
    precision: PrecisionPlan
    shapes: dict  # {input: {"min", "opt", "max"}}, {} for a static input
    gpu: GpuInfo | None  # the GPU built for; None when building ahead of time
    targets: list[str]  # ahead of time: compute capabilities built for ("8.6", ...)
    notes: list[str] = field(default_factory=list)


def _resolve_target(flavor: Flavor, notes: list[str]) -> tuple[GpuInfo | None, list[str]]:
    """(GPU at hand, []) for TensorRT, which builds for it; (None, compute capabilities) for
    TensorRT-RTX, which builds ahead of time (a note when this machine's GPU is not among them)."""
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
    return gpu, targets


def plan_build(onnx_path: str, opts: BuildOptions, log=None) -> BuildPlan:
    """Summarise the ONNX, load the flavour, plan precision, profile and target (in this order,
    so the first error a user meets is the same as before the steps were split). log: where the
    builder that --backend auto picked is said."""
    summary = summarize(onnx_path)
    meta = summary.meta()
    flavor = load_flavor(opts.backend)
    if log and opts.backend == "auto":
        why = "TensorRT is not installed, TensorRT-RTX is" if flavor.is_rtx else "TensorRT is installed"
        log(f"builder: {flavor.label} (--backend auto: {why}; --backend picks one)")
    precision = plan_precision(flavor, summary, opts.fp16, opts.int8, onnx_path)
    notes = list(precision.notes)
    shapes, shape_notes = resolve_profile(summary, meta.input_size, opts.min_shape, opts.opt_shape,
                                          opts.max_shape)
    notes += shape_notes
    gpu, targets = _resolve_target(flavor, notes)
    return BuildPlan(onnx_path, summary, meta, flavor, precision, shapes, gpu, targets, notes)


__all__ = ["BuildOptions", "BuildPlan", "ENGINE_SUFFIXES", "PrecisionPlan", "SIZE_MULTIPLE",
           "parse_shape", "plan_build", "plan_precision", "resolve_profile"]
