"""What fp16 conversion (fp16.py) and INT8 quantization (quantize.py) share: the report, the error
against fp32 under ONNX Runtime, and the checks and file handling around ModelOpt.

Accuracy is reported against the fp32 ONNX under ONNX Runtime (CPU): fp32 with default graph
optimisation, the variant with graph optimisation *disabled*, because ORT's bias quantization pass
(level basic and above) miscomputes ModelOpt INT8 graphs with fp16 high precision: it rounds each
int32 bias through fp16, which overflows (cosine 0.89 measured on W32 when this was written; the
demo's tags error doubles, see runtime/backends/onnxruntime_backend.needed_level, which makes the
runtime run INT8 files that way too; TensorRT is unaffected). The report says which.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import Output, atomic_path, check_outputs
from higherhrnet_trt.core.graph_optimization import ort_optimization_level
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import WEIGHTS_KEY, stamp_weights

from ..engine.onnx_info import check_weights, load_model, summarize_model

onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")


# -- reports ----------------------------------------------------------------------------------------
@dataclass
class OutputError:
    """Error of one model output against fp32, over all check inputs."""

    max_abs: float = 0.0
    mean_abs: float = 0.0
    ref_max: float = 0.0
    cosine: float = 1.0
    #: for (N, J, H, W) maps: share of (image, joint) whose peak location is the same as fp32's
    peak_agreement: float | None = None

    @property
    def rel(self) -> float:
        """max |err| / max |fp32|: the error relative to the output's scale."""
        return self.max_abs / self.ref_max if self.ref_max > 0 else float(self.max_abs > 0)


@dataclass
class QuantizeReport:
    """What convert_fp16 / quantize_int8 wrote and how far it is from fp32."""

    path: str
    reference: str
    precision: str  # "fp16" | "int8"
    checked_on: str  # e.g. "10 held-out images", "4 random inputs"
    graph_optimization: str  # ORT level used for the variant when measuring the errors
    errors: dict[str, OutputError] = field(default_factory=dict)
    seconds: float = 0.0
    kept_fp32: list[str] = field(default_factory=list)  # fp16: nodes kept in fp32 for accuracy
    method: str = ""  # int8: entropy | max | percentile; fp16: ranges | autocast
    calibration_images: int = 0
    skipped_images: list[str] = field(default_factory=list)  # unreadable, with the reason
    cache_path: str = ""
    cache_hit: bool = False
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target: str = ""  # int8: the runtime the Q/DQ graph is for, "tensorrt" | "cpu"

    def summary(self) -> str:
        errs = ", ".join(
            f"{k} rel {v.rel:.1e} cos {v.cosine:.5f}"
            + (f" peaks {100 * v.peak_agreement:.1f}%" if v.peak_agreement is not None else "")
            for k, v in self.errors.items()
        )
        what = f"{self.precision} for {self.target}" if self.target else self.precision
        parts = [f"wrote {self.path} ({what}) in {self.seconds:.1f}s"]
        if self.precision == "int8":
            parts.append(f"{self.method} calibration on {self.calibration_images} images"
                         + (" (cached ranges)" if self.cache_hit else "")
                         + (f", {len(self.skipped_images)} unreadable skipped" if self.skipped_images
                            else ""))
        if self.precision == "fp16" and self.method:
            parts.append(f"method {self.method}")
        if self.kept_fp32:
            parts.append(f"{len(self.kept_fp32)} nodes kept fp32")
        parts.append(f"vs fp32 on {self.checked_on} (ONNX Runtime CPU, variant graph optimisation "
                     f"'{self.graph_optimization}'): {errs}")
        return "; ".join(parts)


# -- ONNX Runtime comparison ------------------------------------------------------------------------
def _session(path: str, graph_optimization: str):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort_optimization_level(graph_optimization)
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def compare_outputs(
    reference: str,
    variant: str,
    feeds: Iterable[Mapping[str, np.ndarray]],
    variant_graph_optimization: str = "disable",
) -> tuple[dict[str, OutputError], int]:
    """Per-output error of ``variant`` against ``reference`` (ORT CPU, reference at default
    optimisation). Returns ({output: OutputError}, number of feeds)."""
    ref = _session(reference, "all")
    var = _session(variant, variant_graph_optimization)
    half = {i.name for i in var.get_inputs() if i.type == "tensor(float16)"}
    names = [o.name for o in ref.get_outputs()]
    acc: dict[str, dict] = {n: {"max": 0.0, "sum": 0.0, "n": 0, "rmax": 0.0, "dot": 0.0, "rr": 0.0,
                                "vv": 0.0, "peak_same": 0, "peak_n": 0} for n in names}
    count = 0
    for feed in feeds:
        r_out = ref.run(names, dict(feed))
        v_out = var.run(names, {k: (v.astype(np.float16) if k in half else v) for k, v in feed.items()})
        count += 1
        for name, r, v in zip(names, r_out, v_out):
            r = np.asarray(r, dtype=np.float64)
            v = np.asarray(v, dtype=np.float64)
            a = acc[name]
            d = np.abs(r - v)
            a["max"] = max(a["max"], float(d.max()))
            a["sum"] += float(d.sum())
            a["n"] += d.size
            a["rmax"] = max(a["rmax"], float(np.abs(r).max()))
            a["dot"] += float(r.ravel() @ v.ravel())
            a["rr"] += float(r.ravel() @ r.ravel())
            a["vv"] += float(v.ravel() @ v.ravel())
            if r.ndim == 4:  # (N, J, H, W) maps: does each joint peak at the same place?
                rf = r.reshape(r.shape[0] * r.shape[1], -1)
                vf = v.reshape(rf.shape[0], -1)
                a["peak_same"] += int((rf.argmax(1) == vf.argmax(1)).sum())
                a["peak_n"] += rf.shape[0]
    out = {}
    for name, a in acc.items():
        denom = np.sqrt(a["rr"] * a["vv"])
        out[name] = OutputError(
            max_abs=a["max"], mean_abs=a["sum"] / max(a["n"], 1), ref_max=a["rmax"],
            cosine=float(a["dot"] / denom) if denom > 0 else 1.0,
            peak_agreement=a["peak_same"] / a["peak_n"] if a["peak_n"] else None,
        )
    return out, count


# -- helpers ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet(level: int = logging.CRITICAL):
    """Silence ModelOpt's loggers, ONNX Runtime calibration prints and tqdm bars of libraries."""
    loggers = [logging.getLogger(n) for n in ("modelopt", "modelopt.onnx", "modelopt.onnx.autocast")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for lg, lvl in zip(loggers, old):
            lg.setLevel(lvl)


def require_modelopt(module: str, what: str):
    """Import a ModelOpt module, or a UserError naming what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{what} needs NVIDIA ModelOpt: pip install nvidia-modelopt lief "
                        f"onnx-graphsurgeon onnxslim (not the [onnx] extra, which pulls "
                        f"onnxruntime-gpu) -- missing: {e.name}") from e


def check_fp32_input(onnx_in: str):
    """(model, OnnxSummary, ModelMeta) of an fp32 ONNX; a UserError for an fp16 / int8 one, or
    for NaN/inf weights or weights that are not the exported ones (engine.onnx_info.check_weights):
    converting them would pass the damage on under a new hash."""
    model = load_model(onnx_in)
    summary = summarize_model(model, onnx_in)
    if summary.precision != "fp32":
        raise UserError(f"{onnx_in} is already {summary.precision}: convert or quantize the fp32 "
                        "ONNX written by 'higherhrnet-trt export'")
    check_weights(model, onnx_in)
    return model, summary, summary.meta()


def save_onnx(model, path: str) -> None:
    """Save under a temporary name, then rename: an interrupted save leaves no torn ONNX."""
    if any(p.key == WEIGHTS_KEY for p in model.metadata_props):
        stamp_weights(model)  # the weights as saved, whatever changed since copy_metadata
    with atomic_path(path) as tmp:
        onnx.save_model(model, tmp)


def check_onnx_output(onnx_in: str, onnx_out: str, kind: str) -> None:
    """Before any work: the output is an .onnx file (what these functions write) and not the
    input they read from start to end. kind: "int8" or "fp16", for the suggested name."""
    stem = os.path.splitext(onnx_out)[0]
    if not onnx_out.lower().endswith(".onnx"):
        build = (f"; build the engine from it with 'higherhrnet-trt build {stem}.{kind}.onnx -o "
                 f"{onnx_out}'" if onnx_out.lower().endswith((".engine", ".plan", ".trt")) else "")
        raise UserError(f"the {kind} output {onnx_out} must end in .onnx (an ONNX is written, not "
                        f"an engine): write {stem}.{kind}.onnx{build}")
    suggestion = os.path.splitext(onnx_in)[0] + f".{kind}.onnx"
    check_outputs([Output(f"the {kind} output", onnx_out, f"write it to another file, e.g. "
                          f"{suggestion}")], [("the fp32 input", onnx_in)])
