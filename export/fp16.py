"""fp32 ONNX -> strongly typed fp16 ONNX with NVIDIA ModelOpt AutoCast (:func:`convert_fp16`).

Two methods, both AutoCast's PrecisionConverter writing the graph, differing in how the nodes kept
fp32 are chosen:

- "ranges" (default, bounded): every tensor's max |x| is measured in-graph over the check inputs
  (fp16_ranges.py: scalar reductions, one inference's memory), the nodes whose values exceed
  fp16's safe range (512, AutoCast's default) stay fp32. Memory and time scale like one inference
  per check input: HRNet-W48 at 640 px converts in about 2 GB.
- "autocast": AutoCast's full NodeClassifier; its reference runner keeps every intermediate tensor
  of every check input (past 23 GB on W32-512: small networks only). When the measured output
  error is above ``tolerance``, the nodes where a layer-by-layer comparison shows the error jump
  are kept fp32 too (a few rounds; that comparison also keeps every tensor).

Network inputs and outputs stay fp32 by default, so the runtime feeds and reads the same arrays
as for the fp32 file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import atomic_path
from higherhrnet_trt.core.metadata import copy_metadata

from ..engine.related import derived_from_record
from .calib_data import InputMaker, list_images
from .fp16_ranges import DATA_MAX, convert_measured, measure_absmax
from .precision_debug import compare_layers
from .quant_common import (
    QuantizeReport,
    check_fp32_input,
    check_onnx_output,
    compare_outputs,
    quiet,
    require_modelopt,
    save_onnx,
)

METHODS = ("ranges", "autocast")

#: Ops that move or select values without arithmetic: running them in fp32 cannot reduce the error
#: they show (it comes from their inputs), so the fp16 search never keeps them in fp32.
_EXACT_IN_FP16 = {"Cast", "Concat", "Expand", "Flatten", "Gather", "Identity", "MaxPool", "Pad",
                  "Relu", "Reshape", "Shape", "Slice", "Split", "Squeeze", "Tile", "Transpose",
                  "Unsqueeze"}


def _fp32_candidates(tensors, taken: Sequence[str], count: int = 2) -> list[str]:
    """The first ``count`` arithmetic nodes of ``tensors`` not kept in fp32 yet."""
    return [t.node for t in tensors
            if t.node and t.node not in taken and t.op_type not in _EXACT_IN_FP16][:count]


def _check_feeds(maker: InputMaker, images, num_check: int, skipped: list[str]):
    """(feeds, "what they are") to measure on: ``num_check`` images, or seeded random inputs."""
    if images is not None:
        paths = list_images(images)[: max(1, num_check)]
        feeds = list(maker.feeds(paths, skipped))
        if not feeds:
            raise UserError(f"none of the {len(paths)} images could be read ({skipped[0]})")
        return feeds, f"{sum(f[maker.name].shape[0] for f in feeds)} images"
    feeds = maker.random_feeds(max(1, min(num_check, 4)))
    return feeds, f"{len(feeds)} random inputs"


def _autocast(onnx_in: str, src_model, work: str, data_dir: str, keep_io_fp32: bool,
              exclude: list[str]) -> None:
    """One AutoCast conversion of ``onnx_in`` to ``work``, nodes matching ``exclude`` kept fp32."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    with quiet():
        model = convert_to_mixed_precision(
            onnx_in, low_precision_type="fp16", keep_io_types=keep_io_fp32,
            nodes_to_exclude=exclude or None, calibration_data=data_dir, providers=["cpu"],
        )
    # The record debug-precision checks: which fp32 file this variant was made from.
    copy_metadata(src_model, model, precision="fp16", derived_from=derived_from_record(onnx_in))
    save_onnx(model, work)


def _convert_rounds(onnx_in: str, src_model, feeds, work: str, data_dir: str, keep_io_fp32: bool,
                    keep: list[str], tolerance: float, max_rounds: int, report: QuantizeReport):
    """Convert, measure, and while the error is above ``tolerance`` keep the nodes where it jumps
    in fp32 and convert again. Returns (errors, worst relative error, nodes kept by the search)."""
    auto: list[str] = []  # node names found by the layer comparison (matched literally)
    for round_ in range(max(0, max_rounds) + 1):
        _autocast(onnx_in, src_model, work, data_dir, keep_io_fp32,
                  keep + [f"^{re.escape(n)}$" for n in auto])
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
    return errors, worst, auto


def _convert_by_ranges(onnx_in: str, src_model, feeds, out: str, keep_io_fp32: bool,
                       keep: list[str], tmp: str, progress: bool, report: QuantizeReport):
    """Method "ranges": measure max |x| in-graph over ``feeds``, keep fp32 where beyond fp16's
    safe range (and ``keep``), convert, write ``out``. Returns the nodes kept for their ranges."""
    from tqdm import tqdm

    with tqdm(total=len(feeds), desc="fp16: measuring ranges", unit="input",
              disable=None if progress else True, leave=False) as bar:
        absmax, _ = measure_absmax(onnx_in, feeds, tmp, bar)
    model, rule = convert_measured(onnx_in, absmax, keep_io_fp32, keep)
    copy_metadata(src_model, model, precision="fp16")
    save_onnx(model, out)
    del model
    kept = list(dict.fromkeys(node for node, _, _ in rule.kept))
    if rule.kept:
        node, tensor, value = max(rule.kept, key=lambda k: k[2] if k[2] == k[2] else np.inf)
        report.notes.append(f"{len(kept)} nodes kept fp32 for values beyond {DATA_MAX:g} (largest: "
                            f"{tensor} of {node}, |x| = {value:.4g})")
    report.notes.append(f"ranges measured on {len(feeds)} inputs; largest |x| anywhere "
                        f"{max(absmax.values(), default=0.0):.4g}")
    return kept


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
    method: str = "ranges",
    progress: bool = False,
    log=None,
) -> QuantizeReport:
    """Write a strongly typed fp16 ONNX of ``onnx_in`` and report its error against fp32.

    keep_io_fp32: network inputs and outputs stay float32 (the runtime feeds the same arrays).
    images: frames to measure on (pre-processed as the runtime does); default: seeded random
        normal inputs (at most 4). The same inputs drive the range rule (values beyond fp16 stay fp32).
    tolerance: max |err| / max |fp32| allowed per output. Above it, method "autocast" keeps the
        nodes where the error jumps (layer-by-layer comparison) fp32 and converts again, up to
        ``max_rounds`` times; method "ranges" warns (run 'debug-precision', pass ``keep_fp32``).
    keep_fp32: node names (regular expressions) to keep fp32 from the start.
    method: "ranges" (bounded memory, any network size) or "autocast" (see module docstring).
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise UserError(f"fp16 method must be one of {', '.join(METHODS)}, not {method!r}")
    check_onnx_output(onnx_in, onnx_out, "fp16")
    require_modelopt("modelopt.onnx.autocast", "fp16 conversion")
    src_model, summary, meta = check_fp32_input(onnx_in)
    maker = InputMaker(summary, meta, input_size)
    skipped: list[str] = []
    feeds, checked_on = _check_feeds(maker, images, num_check, skipped)

    report = QuantizeReport(path=onnx_out, reference=onnx_in, precision="fp16",
                            checked_on=checked_on, graph_optimization="disable", method=method)
    report.skipped_images = skipped
    keep = list(keep_fp32)  # user patterns (regular expressions)
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_fp16_") as tmp:
        work = os.path.join(tmp, "candidate.onnx")
        if method == "ranges":
            del src_model.graph.initializer[:]  # only its metadata is needed from here on
            auto = _convert_by_ranges(onnx_in, src_model, feeds, work, keep_io_fp32, keep, tmp,
                                      progress, report)
            errors, _ = compare_outputs(onnx_in, work, feeds, "disable")
            worst = max(e.rel for e in errors.values())
        else:
            data_dir = os.path.join(tmp, "data")
            os.makedirs(data_dir)
            for i, feed in enumerate(feeds):
                np.savez(os.path.join(data_dir, f"{i:04d}.npz"), **feed)
            errors, worst, auto = _convert_rounds(onnx_in, src_model, feeds, work, data_dir,
                                                  keep_io_fp32, keep, tolerance, max_rounds, report)
        with atomic_path(onnx_out) as out_tmp:
            shutil.copyfile(work, out_tmp)
    report.errors = errors
    report.kept_fp32 = keep + auto
    if worst > tolerance:
        report.warnings.append(f"fp16 output error {worst:.1e} still above {tolerance:g} with "
                               f"{len(report.kept_fp32)} nodes kept fp32: check with "
                               f"'higherhrnet-trt debug-precision {onnx_in} --variant {onnx_out}'"
                               + (" and keep the layers it names with keep_fp32" if method == "ranges"
                                  else ""))
        warnings.warn(report.warnings[-1], stacklevel=2)
    report.seconds = time.perf_counter() - t0
    if log:
        log(report.summary())
    return report
