"""fp32 ONNX -> strongly typed fp16 ONNX (AutoCast) or INT8 Q/DQ ONNX (modelopt PTQ).

Precision lives in the ONNX (see engine/flavors.py): TensorRT 11 and TensorRT-RTX have no FP16 /
INT8 builder flags and no calibrators, so the files written here are what every flavour builds.

FP16 (:func:`convert_fp16`): NVIDIA ModelOpt AutoCast converts the graph to fp16, keeping fp32
where its rules demand (values beyond fp16 range measured on the check inputs) and, when the
measured output error is above ``tolerance``, the nodes where a layer-by-layer comparison shows the
error jump (a few rounds). Network inputs and outputs stay fp32 by default, so the runtime feeds
and reads the same arrays as for the fp32 file.

INT8 (:func:`quantize_int8`), in three steps:

1. Placement: ModelOpt's ONNX PTQ (explicit Q/DQ, per-channel weight scales, TensorRT's placement
   rules, concat groups sharing a scale, non-quantized layers in ``high_precision``) on one
   calibration image decides *where* Q/DQ pairs go. Placement depends on the graph only.
2. Calibration (cached): every activation tensor that got a Q/DQ pair is collected over the
   calibration images, pre-processed exactly as the runtime pre-processes frames, with a tqdm bar.
   Ranges: "max" = max |x|, "entropy" = ONNX Runtime's KL-divergence threshold (ModelOpt's
   settings: 128 bins, signed histogram), "percentile" = ONNX Runtime's symmetric percentile
   (2048 bins). Tensors of one concat group share one histogram, as ModelOpt groups them. The
   ranges are cached under a key of the ONNX, the image list (paths, sizes, mtimes) and every
   setting, so a re-run skips this pass. Doing this step here instead of inside ModelOpt is what
   makes the cache, the progress bar and the percentile method possible; with "max" the scales
   equal ModelOpt's own to the bit (tests/test_quantize.py checks it).
3. The activation scales (``max|x| / 127``, symmetric int8, as ONNX Runtime computes them) are
   written into the placed graph.

Static-shape models: the official pre-processing sizes the input after the image (short side =
input size, long side 64-aligned), which a fixed H x W network cannot take. Such models get the
same warp with the image *letterboxed* into H x W, as the runtime pipeline feeds them
(``core.preprocess.letterbox``): zoom so the whole image fits, centred, black (zero) border, i.e.
exactly the official transform whenever the official size equals H x W. Dynamic models get the
official pre-processing (``core.preprocess.preprocess``) unchanged.

Accuracy is reported against the fp32 ONNX under ONNX Runtime (CPU): fp32 with default graph
optimisation, the variant with graph optimisation *disabled*, because ORT's CPU fusions are known
to miscompute ModelOpt INT8 graphs with fp16 high precision (cosine 0.89 measured on W32; TensorRT
is unaffected). The report says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import Output, atomic_open, atomic_path, check_outputs
from higherhrnet_trt.core.formats import IMAGE_EXTENSIONS
from higherhrnet_trt.core.formats import cache_dir as _cache_dir
from higherhrnet_trt.core.metadata import ModelMeta

#: Fewer calibration images than this gives noisy activation ranges: warn.
RECOMMENDED_MIN_IMAGES = 100
METHODS = ("entropy", "max", "percentile")
#: Ops that move or select values without arithmetic: running them in fp32 cannot reduce the error
#: they show (it comes from their inputs), so the fp16 search never keeps them in fp32.
_EXACT_IN_FP16 = {"Cast", "Concat", "Expand", "Flatten", "Gather", "Identity", "MaxPool", "Pad",
                  "Relu", "Reshape", "Shape", "Slice", "Split", "Squeeze", "Tile", "Transpose",
                  "Unsqueeze"}
CACHE_FORMAT = 1
#: Symmetric int8 range ONNX Runtime and TensorRT use for activations: [-127, 127].
INT8_MAX = 127.0


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
    method: str = ""  # int8: entropy | max | percentile
    calibration_images: int = 0
    skipped_images: list[str] = field(default_factory=list)  # unreadable, with the reason
    cache_path: str = ""
    cache_hit: bool = False
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        errs = ", ".join(
            f"{k} rel {v.rel:.1e} cos {v.cosine:.5f}"
            + (f" peaks {100 * v.peak_agreement:.1f}%" if v.peak_agreement is not None else "")
            for k, v in self.errors.items()
        )
        parts = [f"wrote {self.path} ({self.precision}) in {self.seconds:.1f}s"]
        if self.precision == "int8":
            parts.append(f"{self.method} calibration on {self.calibration_images} images"
                         + (" (cached ranges)" if self.cache_hit else "")
                         + (f", {len(self.skipped_images)} unreadable skipped" if self.skipped_images
                            else ""))
        if self.kept_fp32:
            parts.append(f"{len(self.kept_fp32)} nodes kept fp32")
        parts.append(f"vs fp32 on {self.checked_on} (ONNX Runtime CPU, variant graph optimisation "
                     f"'{self.graph_optimization}'): {errs}")
        return "; ".join(parts)


# -- images -> model inputs -------------------------------------------------------------------------
def list_images(images: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Image files of a folder (recursively, sorted), or a list of files as given."""
    if isinstance(images, (str, os.PathLike)):
        path = os.fspath(images)
        if os.path.isdir(path):
            found = []
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files)
                          if f.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
            return found
        if os.path.isfile(path):
            return [path]
        raise UserError(f"calibration images not found: {path} (pass a folder of your own frames)")
    paths = [os.fspath(p) for p in images]
    if not paths:
        raise UserError("no calibration images given")
    return paths


def read_image(path: str) -> tuple[np.ndarray | None, str]:
    """(BGR uint8 image, "") or (None, reason). imdecode of the bytes also reads non-ASCII paths."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        return None, f"cannot read ({e.strerror or e})"
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        return None, "not a decodable image"
    return image, ""


def fixed_size_input(image_bgr: np.ndarray, size_hw: tuple[int, int], mean, std) -> np.ndarray:
    """Letterbox a frame into a static network input, (1, 3, H, W) float32, exactly as the runtime
    does for static-shape models (``core.preprocess.letterbox``): the official warp with the region
    chosen so the whole frame fits H x W, centred, black (0) border. Equal to the official
    pre-processing whenever the official size of the frame is H x W.
    """
    from higherhrnet_trt.core.preprocess import letterbox

    x, _ = letterbox(image_bgr, (int(size_hw[1]), int(size_hw[0])), mean, std, bgr=True)
    return x


class InputMaker:
    """Frames -> feeds for one ONNX file: the runtime's pre-processing, batched as the input needs.

    Static H, W: :func:`fixed_size_input` (letterbox). Dynamic: ``core.preprocess.preprocess``
    at ``input_size`` (default: the model's), scale 1. A static batch N groups N frames per feed.
    """

    def __init__(self, summary, meta: ModelMeta, input_size: int | None = None):
        if len(summary.inputs) != 1:
            raise UserError(f"expected one image input, got {[i.name for i in summary.inputs]}")
        inp = summary.inputs[0]
        if len(inp.dims) != 4:
            raise UserError(f"input {inp.name} is {inp.shape_text()}, expected N x 3 x H x W")
        self.name = inp.name
        n, _, h, w = inp.dims
        self.batch = n if isinstance(n, int) and n > 0 else 1
        self.fixed_hw = (h, w) if all(isinstance(d, int) and d > 0 for d in (h, w)) else None
        self.input_size = int(input_size or meta.input_size)
        self.mean, self.std = tuple(meta.mean), tuple(meta.std)

    def describe(self) -> dict:
        return {"input": self.name, "batch": self.batch, "fixed_hw": self.fixed_hw,
                "input_size": None if self.fixed_hw else self.input_size,
                "mean": list(self.mean), "std": list(self.std),
                "preprocess": "letterbox-warp" if self.fixed_hw else "official"}

    def tensor(self, image_bgr: np.ndarray) -> np.ndarray:
        if self.fixed_hw:
            return fixed_size_input(image_bgr, self.fixed_hw, self.mean, self.std)
        from higherhrnet_trt.core.preprocess import preprocess

        inputs, _ = preprocess(image_bgr, self.input_size, (1.0,), self.mean, self.std)
        return inputs[0][1]

    def feeds(self, paths: Iterable[str], skipped: list[str], limit: int | None = None,
              bar=None, stats: dict | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Feeds from readable images of ``paths`` (unreadable ones appended to ``skipped`` as
        "path: reason"), at most ``limit`` images; ``stats["used"]`` counts the images used.
        Dynamic models: one image per feed (shapes follow each image)."""
        batch: list[np.ndarray] = []
        used = 0
        stats = stats if stats is not None else {}
        stats.setdefault("used", 0)
        for path in paths:
            if limit is not None and used >= limit:
                break
            image, why = read_image(path)
            if image is None:
                skipped.append(f"{path}: {why}")
                if bar is not None:
                    bar.set_postfix(skipped=len(skipped))
                continue
            batch.append(self.tensor(image))
            used += 1
            stats["used"] += 1
            if bar is not None:
                bar.update(1)
            if len(batch) == self.batch:
                yield {self.name: np.concatenate(batch, 0)}
                batch = []
        if batch:  # pad a last partial static batch by repeating its frames
            while len(batch) < self.batch:
                batch.append(batch[len(batch) % max(1, len(batch))])
            yield {self.name: np.concatenate(batch, 0)}

    def random_feeds(self, count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
        """Standard-normal inputs (the scale of ImageNet-normalised pixels) of the model's size."""
        rng = np.random.default_rng(seed)
        h, w = self.fixed_hw or (self.input_size, self.input_size)
        return [{self.name: rng.standard_normal((self.batch, 3, h, w)).astype(np.float32)}
                for _ in range(count)]


# -- ONNX Runtime comparison ------------------------------------------------------------------------
def _session(path: str, graph_optimization: str):
    import onnxruntime as ort

    from .precision_debug import ort_optimization_level

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
def _quiet(level: int = logging.CRITICAL):
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


def _require(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{what} needs NVIDIA ModelOpt: pip install nvidia-modelopt lief "
                        f"onnx-graphsurgeon onnxslim (not the [onnx] extra, which pulls "
                        f"onnxruntime-gpu) -- missing: {e.name}") from e


def _check_fp32_input(onnx_in: str):
    from ..engine.onnx_info import load_model, summarize_model

    model = load_model(onnx_in)
    summary = summarize_model(model, onnx_in)
    if summary.precision != "fp32":
        raise UserError(f"{onnx_in} is already {summary.precision}: convert or quantize the fp32 "
                        "ONNX written by 'higherhrnet-trt export'")
    return model, summary, summary.meta()


def _save(model, path: str) -> None:
    """Save under a temporary name, then rename: an interrupted save leaves no torn ONNX."""
    import onnx

    with atomic_path(path) as tmp:
        onnx.save_model(model, tmp)


def _check_output(onnx_in: str, onnx_out: str, kind: str) -> None:
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


# -- FP16 ------------------------------------------------------------------------------------------
def _fp32_candidates(tensors, taken: Sequence[str], count: int = 2) -> list[str]:
    """The first ``count`` arithmetic nodes of ``tensors`` not kept in fp32 yet."""
    return [t.node for t in tensors
            if t.node and t.node not in taken and t.op_type not in _EXACT_IN_FP16][:count]


def convert_fp16(
    onnx_in: str,
    onnx_out: str,
    keep_io_fp32: bool = True,
    images: str | Sequence[str] | None = None,
    num_check: int = 8,
    tolerance: float = 1e-2,
    keep_fp32: Sequence[str] = (),
    max_rounds: int = 3,
    input_size: int | None = None,
    log=None,
) -> QuantizeReport:
    """Write a strongly typed fp16 ONNX of ``onnx_in`` and report its error against fp32.

    keep_io_fp32: network inputs and outputs stay float32 (the runtime feeds the same arrays).
    images: frames to measure on (pre-processed as the runtime does); default: seeded random
        normal inputs. The same inputs drive AutoCast's range rule (values beyond fp16 stay fp32).
    tolerance: max |err| / max |fp32| allowed per output; above it, the nodes where the error
        jumps (layer-by-layer comparison) are kept fp32 and the conversion redone, up to
        ``max_rounds`` times. The report lists them and the final error either way.
    keep_fp32: node names (regular expressions) to keep fp32 from the start.
    """
    t0 = time.perf_counter()
    _check_output(onnx_in, onnx_out, "fp16")
    _require("modelopt.onnx.autocast", "fp16 conversion")
    from modelopt.onnx.autocast import convert_to_mixed_precision

    from ..engine.onnx_info import copy_metadata
    from .precision_debug import compare_layers

    src_model, summary, meta = _check_fp32_input(onnx_in)
    maker = InputMaker(summary, meta, input_size)
    skipped: list[str] = []
    if images is not None:
        paths = list_images(images)[: max(1, num_check)]
        feeds = list(maker.feeds(paths, skipped))
        if not feeds:
            raise UserError(f"none of the {len(paths)} images could be read ({skipped[0]})")
        checked_on = f"{sum(f[maker.name].shape[0] for f in feeds)} images"
    else:
        feeds = maker.random_feeds(max(1, min(num_check, 4)))
        checked_on = f"{len(feeds)} random inputs"

    report = QuantizeReport(path=onnx_out, reference=onnx_in, precision="fp16",
                            checked_on=checked_on, graph_optimization="disable")
    report.skipped_images = skipped
    keep = list(keep_fp32)  # user patterns (regular expressions)
    auto: list[str] = []  # node names found by the layer comparison (matched literally)
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_fp16_") as tmp:
        data_dir = os.path.join(tmp, "data")
        os.makedirs(data_dir)
        for i, feed in enumerate(feeds):
            np.savez(os.path.join(data_dir, f"{i:04d}.npz"), **feed)
        work = os.path.join(tmp, "candidate.onnx")
        for round_ in range(max(0, max_rounds) + 1):
            with _quiet():
                model = convert_to_mixed_precision(
                    onnx_in, low_precision_type="fp16", keep_io_types=keep_io_fp32,
                    nodes_to_exclude=keep + [f"^{re.escape(n)}$" for n in auto] or None,
                    calibration_data=data_dir, providers=["cpu"],
                )
            copy_metadata(src_model, model, precision="fp16")
            _save(model, work)
            errors, _ = compare_outputs(onnx_in, work, feeds, "disable")
            worst = max(e.rel for e in errors.values())
            if worst <= tolerance or round_ == max_rounds:
                break
            layers = compare_layers(onnx_in, work, feeds, "disable")
            fresh = _fp32_candidates(layers.first_jumps(tolerance / 10, limit=len(layers.tensors)), auto)
            if not fresh:
                fresh = _fp32_candidates(layers.worst_jumps(len(layers.tensors)), auto)
            if not fresh:
                break
            auto += fresh
            report.notes.append(f"round {round_ + 1}: output error {worst:.1e} > {tolerance:g}; "
                                f"keeping fp32: {', '.join(fresh)}")
        with atomic_path(onnx_out) as out_tmp:
            shutil.copyfile(work, out_tmp)
    report.errors = errors
    report.kept_fp32 = keep + auto
    if worst > tolerance:
        report.warnings.append(f"fp16 output error {worst:.1e} still above {tolerance:g} after "
                               f"keeping {len(auto)} nodes fp32: check with 'higherhrnet-trt "
                               f"debug-precision {onnx_in} --variant {onnx_out}'")
        warnings.warn(report.warnings[-1], stacklevel=2)
    report.seconds = time.perf_counter() - t0
    if log:
        log(report.summary())
    return report


# -- INT8 ------------------------------------------------------------------------------------------
@dataclass
class _Placement:
    """Where ModelOpt put activation Q/DQ pairs: fp32 tensor -> scale initializers to set."""

    scales: dict[str, set[str]]  # fp32 activation tensor -> names of its Q and DQ scale initializers
    groups: list[set[str]]  # tensors that must share one scale (concat elimination)

    def group_of(self) -> dict[str, frozenset[str]]:
        out = {t: frozenset([t]) for t in self.scales}
        for g in self.groups:
            fg = frozenset(g)
            for t in g:
                out[t] = fg
        return out


def _find_placement(placed, fp32_model) -> _Placement:
    """Activation quantizers of a ModelOpt Q/DQ graph, traced back (through the Casts its fp16
    conversion adds) to tensor names of the fp32 graph, and its concat groups."""
    inits = {i.name for i in placed.graph.initializer}
    producers = {o: n for n in placed.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in placed.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    fp32_tensors = {i.name for i in fp32_model.graph.input}
    fp32_tensors |= {o for n in fp32_model.graph.node for o in n.output}

    def trace(name: str) -> str | None:
        seen = 0
        while name not in fp32_tensors and seen < 16:
            node = producers.get(name)
            if node is None or node.op_type != "Cast":
                return None
            name = node.input[0]
            seen += 1
        return name if name in fp32_tensors else None

    scales: dict[str, set[str]] = {}
    q_source: dict[str, str] = {}  # Q output tensor -> fp32 activation
    for q in placed.graph.node:
        if q.op_type != "QuantizeLinear":
            continue
        x = q.input[0]
        producer = producers.get(x)
        if x in inits or (producer is not None and producer.op_type in ("Constant",)):
            continue  # weight
        src = trace(x)
        if src is None:
            # a weight reached through a Cast of an initializer is fine; anything else is not
            node = producers.get(x)
            while node is not None and node.op_type == "Cast":
                x = node.input[0]
                node = producers.get(x)
            if x in inits:
                continue
            raise RuntimeError(f"unexpected Q/DQ graph from ModelOpt: cannot trace {q.input[0]!r} "
                               "to the fp32 graph (unsupported nvidia-modelopt version?)")
        names = scales.setdefault(src, set())
        names.add(q.input[1])
        q_source[q.output[0]] = src
        for dq in consumers.get(q.output[0], []):
            if dq.op_type == "DequantizeLinear":
                names.add(dq.input[1])

    def dq_source(tensor: str) -> str | None:
        node = producers.get(tensor)
        while node is not None and node.op_type == "Cast":
            node = producers.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear":
            return None
        return q_source.get(node.input[0])

    groups: list[set[str]] = []
    for n in placed.graph.node:
        if n.op_type != "Concat":
            continue
        members = [dq_source(i) for i in n.input]
        if not members or any(m is None for m in members):
            continue
        group = set(members)
        out_src = trace(n.output[0])
        if out_src in scales:
            group.add(out_src)
        if len(group) > 1:
            groups.append(group)
    merged: list[set[str]] = []  # union of overlapping groups
    for g in groups:
        for m in [m for m in merged if m & g]:
            g |= m
            merged.remove(m)
        merged.append(g)
    return _Placement(scales, merged)


def _collect_ranges(onnx_in: str, placement: _Placement, method: str, percentile: float,
                    feeds: Iterable[Mapping[str, np.ndarray]], tmpdir: str) -> tuple[dict[str, float], int]:
    """max |x| threshold per activation tensor over ``feeds``. Returns (ranges, feeds seen)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_model(onnx_in)
    outputs = {o.name for o in model.graph.output}
    tensors = sorted(placement.scales)
    for t in tensors:
        if t not in outputs:
            model.graph.output.append(onnx.ValueInfoProto(name=t))
    path = os.path.join(tmpdir, "augmented.onnx")
    onnx.save_model(model, path)
    del model
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # As ModelOpt calibrates: no graph optimisation, so every tensor is computed as written.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    group_of = placement.group_of()
    keys = sorted({min(g) for g in group_of.values()})  # one histogram per group
    members = {min(g): sorted(g) for g in group_of.values()}
    absmax: dict[str, float] = dict.fromkeys(keys, 0.0)
    collector = None
    if method != "max":
        from onnxruntime.quantization.calibrate import HistogramCollector

        if method == "entropy":  # ModelOpt's EntropyCalibrater settings
            collector = HistogramCollector("entropy", symmetric=False, num_bins=128,
                                           num_quantized_bins=128, percentile=99.999, scenario="same")
        else:
            collector = HistogramCollector("percentile", symmetric=True, num_bins=2048,
                                           num_quantized_bins=128, percentile=percentile,
                                           scenario="same")
    count = 0
    for feed in feeds:
        values = dict(zip(tensors, session.run(tensors, dict(feed))))
        count += 1
        if collector is None:
            for k in keys:
                absmax[k] = max(absmax[k], *(float(np.abs(values[t]).max(initial=0.0))
                                             for t in members[k]))
        else:
            batch = {k: [np.concatenate([np.asarray(values[t], np.float32).ravel() for t in members[k]])]
                     for k in keys}
            with _quiet():
                collector.collect(batch)
        del values
    if count == 0:
        raise UserError("no calibration image could be read")
    if collector is not None:
        with _quiet():
            result = collector.compute_collection_result()
        for k in keys:
            lo, hi = result[k][0], result[k][1]
            absmax[k] = float(max(abs(float(lo)), abs(float(hi))))
    return {t: absmax[min(group_of[t])] for t in tensors}, count


def _apply_scales(placed, placement: _Placement, ranges: Mapping[str, float]) -> None:
    """Write scale = max|x| / 127 (float32 arithmetic, as ONNX Runtime) into every activation
    Q / DQ scale initializer, in the initializer's own dtype (fp16 with fp16 high precision)."""
    from onnx import numpy_helper

    index = {init.name: k for k, init in enumerate(placed.graph.initializer)}
    for tensor, names in placement.scales.items():
        amax = np.float32(ranges[tensor])
        scale = np.float32(1.0) if amax == 0 else amax / np.float32(INT8_MAX)
        for name in names:
            if name not in index:
                raise RuntimeError(f"scale {name!r} is not an initializer (unsupported ModelOpt graph)")
            old = placed.graph.initializer[index[name]]
            arr = numpy_helper.to_array(old)
            new = numpy_helper.from_array(np.full(arr.shape, scale, dtype=arr.dtype), name)
            old.CopyFrom(new)


def _cache_key(onnx_sha: str, paths: Sequence[str], settings: dict) -> str:
    h = hashlib.sha256()
    h.update(onnx_sha.encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{os.path.abspath(p)}|missing\n".encode())
    return h.hexdigest()[:32]


def default_cache_dir() -> str:
    """Where calibration ranges are cached: $XDG_CACHE_HOME/higherhrnet_trt/calibration."""
    return _cache_dir("calibration")


def _modelopt_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for pkg in ("nvidia-modelopt", "onnxruntime"):
        try:
            parts.append(f"{pkg}=={version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg}==?")
    return ",".join(parts)


def quantize_int8(
    onnx_in: str,
    onnx_out: str,
    images: str | Sequence[str],
    num_images: int = 512,
    method: str = "entropy",
    percentile: float = 99.999,
    holdout: int = 10,
    high_precision: str = "fp16",
    input_size: int | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
    seed: int = 0,
    progress: bool = True,
    log=None,
) -> QuantizeReport:
    """Write an INT8 Q/DQ ONNX of ``onnx_in`` calibrated on ``images`` (see module docstring).

    images: a folder (searched recursively) or a list of image files: frames like the ones the
        robot will see; a few hundred. Unreadable files are skipped and counted.
    num_images: calibration images used (a seeded shuffle picks them); fewer available warns.
    method: "entropy" (default, as TensorRT's legacy calibrator), "max" or "percentile".
    percentile: for method "percentile", the share of |x| kept, in percent.
    holdout: images kept out of calibration to measure the error (at most a fifth of the folder).
    high_precision: dtype of the layers left unquantized, "fp16" (fast in TensorRT) or "fp32".
    input_size: pre-processing size for dynamic-shape models (default: the model's input size).
    cache_dir: where activation ranges are cached (default ~/.cache/higherhrnet_trt/calibration);
        use_cache=False recomputes (and refreshes the cache).
    """
    t0 = time.perf_counter()
    _check_output(onnx_in, onnx_out, "int8")
    if method not in METHODS:
        raise UserError(f"calibration method must be one of {', '.join(METHODS)}, not {method!r}")
    if high_precision not in ("fp16", "fp32"):
        raise UserError(f"high_precision must be fp16 or fp32, not {high_precision!r}")
    if num_images < 1:
        raise UserError(f"num_images must be at least 1, got {num_images}")
    if method == "percentile" and not 50.0 < percentile <= 100.0:
        raise UserError(f"percentile must be in (50, 100], got {percentile}")
    _require("modelopt.onnx.quantization", "INT8 quantization")
    import onnx
    from modelopt.onnx.quantization import quantize as modelopt_quantize

    from ..engine.onnx_info import copy_metadata, sha256_file

    src_model, summary, meta = _check_fp32_input(onnx_in)
    maker = InputMaker(summary, meta, input_size)
    pool = list_images(images)
    order = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    n_hold = min(max(0, holdout), len(pool) // 5)
    hold_paths = order[len(order) - n_hold:] if n_hold else []
    calib_paths = order[: len(order) - n_hold]

    settings = {"method": method, "percentile": percentile if method == "percentile" else None,
                "num_images": num_images, "holdout": n_hold, "seed": seed,
                "input": maker.describe(), "versions": _modelopt_versions(), "format": CACHE_FORMAT}
    key = _cache_key(sha256_file(onnx_in), pool, settings)
    cache_dir = cache_dir or default_cache_dir()
    cache_path = os.path.join(cache_dir, f"int8_ranges_{key}.json")
    report = QuantizeReport(path=onnx_out, reference=onnx_in, precision="int8", checked_on="",
                            graph_optimization="disable", method=method, cache_path=cache_path)

    cached = None
    if use_cache and os.path.isfile(cache_path):
        try:
            with open(cache_path, encoding="utf-8") as f:
                cached = json.load(f)
        except (OSError, ValueError):
            cached = None

    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_int8_") as tmp:
        # ModelOpt writes intermediate files next to its input: give it a private copy.
        work_in = os.path.join(tmp, "model.onnx")
        shutil.copyfile(onnx_in, work_in)

        # 1. Placement on one readable image.
        first_skips: list[str] = []
        first = next(iter(maker.feeds(calib_paths, first_skips, limit=maker.batch)), None)
        if first is None:
            raise UserError(f"none of the {len(calib_paths)} calibration images could be read "
                            f"({first_skips[0] if first_skips else 'no images'})")
        placed_path = os.path.join(tmp, "placed.onnx")
        with _quiet():
            modelopt_quantize(
                work_in, quantize_mode="int8", calibration_data={maker.name: first[maker.name]},
                calibration_method="max", calibration_eps=["cpu"], output_path=placed_path,
                high_precision_dtype=high_precision, log_level="CRITICAL",
            )
        placed = onnx.load_model(placed_path)
        placement = _find_placement(placed, src_model)
        if not placement.scales:
            raise UserError(f"ModelOpt placed no activation Q/DQ in {onnx_in}: nothing to calibrate")

        # 2. Ranges: from the cache, or one pass over the calibration images.
        ranges = None
        if cached and cached.get("key") == key and set(placement.scales) <= set(cached.get("ranges", {})):
            ranges = {t: float(cached["ranges"][t]) for t in placement.scales}
            report.cache_hit = True
            report.calibration_images = int(cached.get("images", 0))
            skipped = list(cached.get("skipped", []))
        if ranges is None:
            from tqdm import tqdm

            target = min(num_images, len(calib_paths))
            with tqdm(total=target, desc=f"INT8 calibration ({method})", unit="img",
                      disable=None if progress else True, leave=False) as bar:
                stats: dict = {}
                feeds = maker.feeds(calib_paths, skipped, limit=num_images, bar=bar, stats=stats)
                ranges, _ = _collect_ranges(work_in, placement, method, percentile, feeds, tmp)
                report.calibration_images = stats["used"]
            # Complete or absent: an interrupted write never leaves a torn cache entry.
            with atomic_open(cache_path) as f:
                json.dump({"key": key, "settings": settings, "onnx": os.path.abspath(onnx_in),
                           "images": report.calibration_images, "skipped": skipped,
                           "ranges": ranges}, f, indent=1)

        # 3. Scales into the placed graph, metadata back (ModelOpt drops it).
        _apply_scales(placed, placement, ranges)
        copy_metadata(src_model, placed, precision="int8")
        _save(placed, onnx_out)

    report.notes.append(f"{len(placement.scales)} activation quantizers, "
                        f"{len(placement.groups)} concat groups sharing a scale; "
                        f"unquantized layers in {high_precision}")
    if maker.fixed_hw:
        report.notes.append(f"static input {maker.fixed_hw[0]}x{maker.fixed_hw[1]}: frames "
                            "letterboxed into it (see fixed_size_input)")
    if high_precision == "fp16":
        report.notes.append("fp16 Q/DQ graph: under ONNX Runtime CPU run it with graph optimisation "
                            "disabled (its fusions can miscompute it); TensorRT is unaffected")

    # 4. Error against fp32 on held-out frames (or on calibration frames when none are held out).
    check_skips: list[str] = []
    if hold_paths:
        feeds = list(maker.feeds(hold_paths, check_skips))
        report.checked_on = f"{sum(f[maker.name].shape[0] for f in feeds)} held-out images"
    else:
        feeds = []
    if not feeds:
        feeds = list(maker.feeds(calib_paths, check_skips, limit=max(1, min(4, len(calib_paths)))))
        report.checked_on = f"{len(feeds)} calibration images (none held out: too few images)"
    report.errors, _ = compare_outputs(onnx_in, onnx_out, feeds, "disable")
    report.skipped_images = skipped + [s for s in check_skips if s not in skipped]
    used = report.calibration_images
    if report.skipped_images:
        report.warnings.append(f"{len(report.skipped_images)} unreadable images skipped (first: "
                               f"{report.skipped_images[0]})")
    if used < num_images or used < RECOMMENDED_MIN_IMAGES:
        report.warnings.append(
            f"calibrated on {used} images (asked for {num_images}"
            # Say so when the held-out images are what fell short, not the folder.
            + (f"; {n_hold} of the folder's {len(pool)} held out to measure the error"
               if n_hold and used < num_images <= used + n_hold else "")
            + "): INT8 ranges from few images "
            f"are noisy; use at least {RECOMMENDED_MIN_IMAGES} (300-1000 recommended) frames like "
            "the ones the robot will see"
        )
    for w in report.warnings:
        warnings.warn(w, stacklevel=2)
    report.seconds = time.perf_counter() - t0
    if log:
        log(report.summary())
    return report


__all__ = ["QuantizeReport", "OutputError", "convert_fp16", "quantize_int8", "compare_outputs",
           "fixed_size_input", "InputMaker", "list_images", "default_cache_dir"]
