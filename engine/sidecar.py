"""The JSON sidecar written next to every engine (``model.engine`` -> ``model.engine.json``).

An engine file is opaque and tied to the TensorRT flavour and version that built it and, for
TensorRT (not RTX), to the GPU's compute capability. The sidecar says all of that, plus the
precision, the optimisation profile, the ONNX it came from (sha256) and the model metadata copied
from the ONNX, so the runtime can pre-process and decode without the ONNX at hand, and a mismatch
is explained before TensorRT fails with an opaque deserialisation error.

:func:`check_compatible` is what a runtime calls before deserialising: it raises a UserError that
names the mismatch and gives the exact command that rebuilds the engine for this machine.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field, fields

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import atomic_open, sha256_file
from higherhrnet_trt.core.gpu import GpuInfo
from higherhrnet_trt.core.metadata import ModelMeta

SIDECAR_FORMAT = 1
AHEAD_OF_TIME = "ahead-of-time"


def sidecar_path(engine_path: str) -> str:
    """``model.engine`` -> ``model.engine.json`` (appended, so it never collides with the ONNX)."""
    return str(engine_path) + ".json"


@dataclass
class Sidecar:
    """Everything known about an engine at build time. See module docstring."""

    engine: str  # file name of the engine, relative to the sidecar
    builder: dict  # {"flavor": "tensorrt" | "tensorrt-rtx", "module": ..., "version": "10.3.0"}
    gpu: str  # GPU name, or "ahead-of-time" (TensorRT-RTX)
    compute_capability: str  # "8.7", or "ahead-of-time"
    precision: str  # what the engine computes in: "fp32" | "fp16" | "int8" (+ fp16) ...
    onnx_precision: str  # precision written in the ONNX
    strongly_typed: bool
    builder_flags: list[str]  # precision flags used (TensorRT 10 only), e.g. ["FP16"]
    shapes: dict  # input name -> {"min": [...], "opt": [...], "max": [...]}
    inputs: list[dict]  # [{"name", "shape", "dtype"}], shape -1 where dynamic
    outputs: list[dict]
    onnx: dict  # {"path": ..., "sha256": ...}
    build_args: dict  # the build_engine() arguments, to print the exact rebuild command
    model: dict  # ModelMeta.to_json() of the ONNX
    target_compute_capabilities: list[str] = field(default_factory=list)  # RTX: what it can target
    version_compatible: bool = False
    dla_core: int | None = None
    engine_bytes: int = 0
    engine_sha256: str = ""
    build_seconds: float = 0.0
    built_at: str = ""
    notes: list[str] = field(default_factory=list)
    format_version: int = SIDECAR_FORMAT

    @property
    def flavor(self) -> str:
        return self.builder.get("flavor", "")

    @property
    def version(self) -> str:
        return self.builder.get("version", "")

    @property
    def ahead_of_time(self) -> bool:
        return self.compute_capability == AHEAD_OF_TIME

    def meta(self) -> ModelMeta:
        return ModelMeta.from_json(self.model)

    def rebuild_command(self, backend: str | None = None, engine_path: str | None = None) -> str:
        """The build command that made this engine; ``backend`` swaps the builder."""
        args = dict(self.build_args)
        if backend:
            args["backend"] = backend
        if engine_path:
            args["engine_path"] = engine_path
        return build_command(args)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Sidecar:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def build_command(args: dict) -> str:
    """``higherhrnet-trt build ...`` for build_engine() keyword arguments (defaults left out)."""
    parts = ["higherhrnet-trt", "build", str(args["onnx_path"]), "-o", str(args["engine_path"])]
    if args.get("backend", "auto") != "auto":
        parts += ["--backend", args["backend"]]
    for precision in ("fp16", "int8"):
        if args.get(precision):
            parts += ["--precision", precision]
    for flag in ("gpu_fallback", "version_compatible"):
        if args.get(flag):
            parts.append("--" + flag.replace("_", "-"))
    for key in ("min_shape", "opt_shape", "max_shape"):
        if args.get(key):
            parts += ["--" + key.replace("_", "-"), "x".join(str(d) for d in args[key])]
    for key in ("workspace", "timing_cache", "dla_core", "optimization_level"):
        if args.get(key) is not None:
            parts += ["--" + key.replace("_", "-"), str(args[key])]
    return " ".join(shlex.quote(p) for p in parts)


def write_sidecar(engine_path: str, sidecar: Sidecar) -> str:
    path = sidecar_path(engine_path)
    with atomic_open(path) as f:  # a full disk leaves no torn or temporary sidecar
        json.dump(sidecar.to_json(), f, indent=2)
        f.write("\n")
    return path


def read_sidecar(engine_path: str) -> Sidecar:
    """The sidecar of ``engine_path``; UserError when it is missing or unreadable."""
    path = sidecar_path(engine_path)
    if not os.path.isfile(path):
        raise UserError(
            f"{path} not found: engines need the JSON sidecar written by 'higherhrnet-trt build' "
            f"(it holds the model metadata); rebuild the engine with 'higherhrnet-trt build "
            f"MODEL.onnx -o {engine_path}'"
        )
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        return Sidecar.from_json(data)
    except (OSError, ValueError, TypeError) as e:
        raise UserError(f"{path} is not a valid engine sidecar ({e}); rebuild the engine with "
                        f"'higherhrnet-trt build MODEL.onnx -o {engine_path}'") from e


def _version_tuple(version: str, n: int = 3) -> tuple[int, ...]:
    out = []
    for part in version.split(".")[:n]:
        digits = "".join(c for c in part if c.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def check_compatible(
    sidecar: Sidecar,
    flavor: str,
    version: str,
    gpu: GpuInfo | None,
    engine_path: str | None = None,
) -> list[str]:
    """Can this runtime (``flavor`` at ``version``, on ``gpu``) run the engine? Returns warnings.

    Raises UserError naming the mismatch and the exact rebuild command when it cannot:
    another flavour; another TensorRT version (same major and newer runtime suffice for
    version-compatible engines; otherwise major.minor.patch must match); for TensorRT another
    compute capability; for TensorRT-RTX a GPU its ComputeCapability enum does not cover.
    A different GPU name with the same compute capability only warns (it runs, maybe slower).
    """
    engine_path = engine_path or sidecar.engine
    warnings: list[str] = []

    def fail(why: str, backend: str | None = None) -> None:
        cmd = sidecar.rebuild_command(backend=backend, engine_path=engine_path)
        raise UserError(f"{engine_path}: {why}; rebuild it on this machine: {cmd}")

    if sidecar.flavor != flavor:
        fail(f"built by {sidecar.flavor} {sidecar.version} but the runtime is {flavor} {version}",
             backend=flavor)
    built, here = _version_tuple(sidecar.version), _version_tuple(version)
    if sidecar.version_compatible:
        if built[:1] != here[:1] or here < built:
            fail(f"version-compatible engine from {flavor} {sidecar.version} needs the same major "
                 f"version, at least as new; this runtime is {version}")
    elif built != here:
        fail(f"built with {flavor} {sidecar.version}, this runtime is {version} (engines are "
             "tied to the exact TensorRT version unless built with --version-compatible)")

    if gpu is None:
        warnings.append("no CUDA GPU found: cannot check the engine's compute capability")
        return warnings
    if sidecar.ahead_of_time:
        targets = sidecar.target_compute_capabilities
        if targets and gpu.compute_capability not in targets:
            fail(f"TensorRT-RTX {sidecar.version} targets compute capabilities "
                 f"{', '.join(targets)}; this {gpu.name} is {gpu.compute_capability}",
                 backend="tensorrt")
        return warnings
    if gpu.compute_capability != sidecar.compute_capability:
        fail(f"built for compute capability {sidecar.compute_capability} ({sidecar.gpu}), this "
             f"GPU is {gpu.name} ({gpu.compute_capability})")
    if gpu.name != sidecar.gpu:
        warnings.append(f"built on {sidecar.gpu}, running on {gpu.name} (same compute "
                        f"capability {gpu.compute_capability}): it runs, but rebuild for best speed")
    return warnings


def check_engine_file(engine_path: str, sidecar: Sidecar, full: bool = True) -> None:
    """The engine next to the sidecar is the one it describes: its size, and with ``full`` its
    sha256 (a truncated, rebuilt or corrupted engine with a stale sidecar). UserError otherwise.

    A corrupted engine must be caught here: TensorRT may deserialise flipped bytes into an engine
    that computes garbage, or abort the process.
    """
    if not os.path.isfile(engine_path):
        raise UserError(f"engine file not found: {engine_path}")
    fix = f"rebuild it: {sidecar.rebuild_command(engine_path=engine_path)}"
    size = os.path.getsize(engine_path)
    if sidecar.engine_bytes and size != sidecar.engine_bytes:
        raise UserError(
            f"{engine_path} is DAMAGED: {size} bytes but its sidecar describes a "
            f"{sidecar.engine_bytes}-byte engine (stale sidecar or truncated file); {fix}"
        )
    if full and sidecar.engine_sha256:
        digest = sha256_file(engine_path)
        if digest != sidecar.engine_sha256:
            raise UserError(
                f"{engine_path} is DAMAGED: its sha256 {digest[:16]}... is not the "
                f"{sidecar.engine_sha256[:16]}... its sidecar recorded at build time (corrupted "
                f"copy or stale sidecar); {fix}"
            )
