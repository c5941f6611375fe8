"""One entry point from checkpoint to deployable file, in the spirit of ultralytics' ``export``.

    from higherhrnet_trt.export import export
    export("pose_higher_hrnet_w32_512.pth", config="w32_512", half=True)          # fp16 ONNX
    export("w32.pth", config="w32_512", int8=True, images="calib_images/")          # INT8 Q/DQ ONNX
    export("w32.pth", config="w32_512", format="engine", half=True)               # + TensorRT engine
    export("mmpose_w32_512", half=True)   # a released name: downloaded, verified, its config (export.weights)
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import Output, check_outputs
from higherhrnet_trt.core.lazy import lazy_import

from ..engine.build import build_engine
from .calib_data import list_images
from .checkpoint import load_checkpoint
from .configs import get_config
from .fp16 import convert_fp16
from .quantize import quantize_int8
from .weights import resolve

torch = lazy_import("torch")

RANDOM_WEIGHTS_BANNER = (
    "WARNING: no --checkpoint given: exporting RANDOM weights (seed {seed}). The file is fine for "
    "testing pipelines and timing, but its results mean nothing."
)


@dataclass
class ExportResult:
    """Files written, with what was measured along the way."""

    onnx: str
    fp32_onnx: str
    engine: str | None = None
    random_weights: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_output(config: str, precision: str, dynamic: bool, input_size) -> str:
    size = "dynamic" if dynamic else (f"{input_size}" if input_size else "")
    parts = ["higherhrnet", config] + ([size] if size else []) + ([precision] if precision != "fp32" else [])
    return "_".join(parts) + ".onnx"


def export(
    checkpoint: str | None = None,
    config: str | None = None,
    output: str | None = None,
    format: str = "onnx",
    input_size: int | tuple[int, int] | None = None,
    batch: int = 1,
    dynamic: bool = False,
    dynamic_batch: bool = False,
    flip: bool = True,
    outputs: str = "aggregated",
    half: bool = False,
    int8: bool = False,
    images: str | None = None,
    num_images: int = 512,
    method: str = "entropy",
    target: str = "tensorrt",
    check: bool = True,
    seed: int = 0,
    cache_dir: str | None = None,
    weights_url: str | None = None,
    log=print,
) -> ExportResult:
    """Checkpoint -> ONNX (fp32, then fp16 or INT8 Q/DQ if asked) -> optionally a TensorRT engine.

    checkpoint: official .pth/.pth.tar (or MMPose 0.x), or a released weights name
        ('higherhrnet-trt weights list': downloaded to the cache and sha256-checked first); None
        exports random weights (loud warning).
    config: a name from export.configs.CONFIGS (w32_512, w32_640, w48_640, w48_512, crowdpose_w32_512,
        tiny); default: the weights name's config, else w32_512.
    format: "onnx" or "engine" (builds with engine.build_engine after the ONNX).
    input_size: traced H or (H, W), multiples of 64; default the config's input size.
    half / int8: precision of the written ONNX (precision lives in the ONNX: strongly typed builds).
    images / num_images / method / target: int8 calibration, named as core.precision's
        CalibrationOptions fields and calibrate's flags: a folder of calibration images
        (pre-processed exactly as the runtime does), how many of them, the range method.
        target: the runtime the Q/DQ graph is laid out for, "tensorrt" or "cpu" (ONNX Runtime /
        OpenVINO; no engine can be built from it), see quantize.quantize_int8.
    seed: without a checkpoint, the seed of the random weights: the same seed and config give the
        same weights (pipeline tests only; a checkpoint's weights replace them).
    cache_dir / weights_url: where names are cached and an optional mirror to fetch them from
        (export.weights; defaults from $HIGHERHRNET_TRT_WEIGHTS_DIR / $HIGHERHRNET_TRT_WEIGHTS_URL).
    """
    # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
    from .onnx_export import export_onnx

    precision = _check_request(format, half, int8, images, batch)
    if int8 and target == "cpu" and format == "engine":
        raise UserError("an INT8 file for the CPU (target cpu) builds no TensorRT engine: leave out "
                        "format='engine' (--engine), or use target tensorrt")
    if int8:
        list_images(images)  # an empty or missing folder is refused before minutes of export
    checkpoint, entry = _resolve_checkpoint(checkpoint, cache_dir, weights_url)
    config = config or (entry.config if entry else "w32_512")
    cfg = get_config(config)
    output = _output_path(output, config, precision, dynamic, input_size, checkpoint)
    result = ExportResult(onnx=output, fp32_onnx=output)
    model = _load_model(cfg, checkpoint, result, log, seed)

    fp32_path = output if precision == "fp32" else output[: -len(".onnx")] + ".fp32.onnx"
    result.fp32_onnx = fp32_path
    t1 = time.perf_counter()
    report = export_onnx(
        model, fp32_path, input_size=input_size, batch=batch, dynamic=dynamic,
        dynamic_batch=dynamic_batch, flip=flip, outputs=outputs, check=check,
        random_weights=result.random_weights,
    )
    result.timings["onnx"] = time.perf_counter() - t1
    log(report.summary())
    if precision != "fp32":
        _convert(precision, fp32_path, output, images, num_images, method, result, log,
                 target)
    if format == "engine":
        _build(output, result, log)
    return result


def _resolve_checkpoint(checkpoint: str | None, cache_dir: str | None, weights_url: str | None):
    """(file path, weights entry or None): a released name becomes its verified cached file."""
    if not checkpoint:
        return checkpoint, None

    return resolve(checkpoint, cache_dir=cache_dir, weights_url=weights_url)


def _check_request(format: str, half: bool, int8: bool, images: str | None, batch: int = 1) -> str:
    """The ONNX precision asked for ("fp32", "fp16", "int8"), or a UserError naming the fix."""
    if half and int8:
        raise UserError("choose one of half (fp16) and int8, not both")
    if int8 and not images:
        raise UserError("int8 needs calibration images: pass images=DIR (--images DIR), ~500 of your own "
                        "frames")
    if format not in ("onnx", "engine"):
        raise UserError(f"format must be 'onnx' or 'engine', not {format!r}")
    if int(batch) < 1:
        raise UserError(f"batch must be 1 or more, got {batch}")
    return "fp16" if half else "int8" if int8 else "fp32"


def _output_path(output: str | None, config: str, precision: str, dynamic: bool, input_size,
                 checkpoint: str | None) -> str:
    """The ONNX to write (default from the settings), checked before any work: .onnx, and not
    the checkpoint itself."""
    output = output or default_output(config, precision, dynamic, input_size)
    if not output.endswith(".onnx"):
        raise UserError(f"output {output!r} must end in .onnx (the engine name is derived from it)")

    # Before the checkpoint loads: not onto the checkpoint, and somewhere writable.
    check_outputs([Output("the output", output, "choose another -o")],
                  [("the checkpoint", checkpoint)] if checkpoint else [])
    return output


def _load_model(cfg, checkpoint: str | None, result: ExportResult, log, seed: int = 0):
    """The network of ``cfg`` with the checkpoint's weights, or random ones drawn from ``seed``
    (with the banner)."""
    # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
    from .model import build_model

    t0 = time.perf_counter()
    # Its own generator state, so the same seed gives the same random weights and the caller's
    # torch RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build_model(cfg)
    if checkpoint:
        info = load_checkpoint(model, checkpoint)
        log(f"loaded {checkpoint} (W{info.get('width')}, {info.get('num_joints')} joints) "
            f"in {time.perf_counter() - t0:.1f}s")
    else:
        result.random_weights = True
        print(RANDOM_WEIGHTS_BANNER.format(seed=seed), file=sys.stderr)
    result.timings["load"] = time.perf_counter() - t0
    return model


def _convert(precision: str, fp32_path: str, output: str, images: str | None, num_images: int,
             method: str, result: ExportResult, log, target: str = "tensorrt") -> None:
    """The fp32 ONNX -> fp16 (AutoCast) or INT8 Q/DQ (calibrated on ``images``) ONNX at ``output``."""
    t2 = time.perf_counter()
    if precision == "fp16":
        q = convert_fp16(fp32_path, output)
    else:
        q = quantize_int8(
            fp32_path, output, images=images, num_images=num_images, method=method,
            target=target,
        )
    result.timings[precision] = time.perf_counter() - t2
    summary = getattr(q, "summary", None)
    log(summary() if callable(summary) else f"wrote {output} ({precision})")


def _build(output: str, result: ExportResult, log) -> None:
    """The TensorRT engine of the written ONNX, next to it (``MODEL.engine``)."""
    engine_path = os.path.splitext(output)[0] + ".engine"
    t3 = time.perf_counter()
    build_engine(output, engine_path)
    result.engine = engine_path
    result.timings["engine"] = time.perf_counter() - t3
    log(f"wrote {engine_path} in {result.timings['engine']:.1f}s")
