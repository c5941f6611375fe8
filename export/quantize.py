"""fp32 ONNX -> strongly typed fp16 ONNX (AutoCast) or INT8 Q/DQ ONNX (modelopt PTQ).

Precision lives in the ONNX (see engine/flavors.py): TensorRT 11 and TensorRT-RTX have no FP16 /
INT8 builder flags and no calibrators, so the files written here are what every flavour builds.

FP16 (:func:`convert_fp16`, in fp16.py): NVIDIA ModelOpt AutoCast converts the graph to fp16,
keeping fp32 where its rules demand (values beyond fp16 range measured on the check inputs) and,
when the measured output error is above ``tolerance``, the nodes where a layer-by-layer comparison
shows the error jump (a few rounds). Network inputs and outputs stay fp32 by default, so the
runtime feeds and reads the same arrays as for the fp32 file.

INT8 (:func:`quantize_int8`), in three steps:

1. Placement (qdq.py): ModelOpt's ONNX PTQ (explicit Q/DQ, per-channel weight scales, TensorRT's
   placement rules, concat groups sharing a scale, non-quantized layers in ``high_precision``) on
   one calibration image decides *where* Q/DQ pairs go. Placement depends on the graph only.
2. Calibration (cached, calib_ranges.py): every activation tensor that got a Q/DQ pair is
   collected over the calibration images, pre-processed exactly as the runtime pre-processes
   frames (calib_data.py), with a tqdm bar. Ranges: "max" = max |x|, "entropy" = ONNX Runtime's
   KL-divergence threshold (ModelOpt's settings: 128 bins, signed histogram), "percentile" = ONNX
   Runtime's symmetric percentile (2048 bins). Tensors of one concat group share one histogram, as
   ModelOpt groups them. By default the statistics are computed in-graph (each tensor's exact min
   and max, a grid sample of ``sample`` values per tensor and image for the histograms: 1.2-1.3
   times a plain inference); ``sample=0`` fetches every value as ModelOpt does (2.6 times). The
   ranges are cached under a key of the ONNX, the image list (paths, sizes, mtimes) and every
   setting, so a re-run skips this pass. Doing this step here instead of inside ModelOpt is what
   makes the cache, the progress bar, the speed and the percentile method possible; with "max" and
   ``sample=0`` the scales equal ModelOpt's own to the bit (tests/export/test_quantize.py checks it).
3. The activation scales (``max|x| / 127``, symmetric int8, as ONNX Runtime computes them) are
   written into the placed graph (qdq.py).

That is ``target="tensorrt"`` (the default). ``target="cpu"`` (ONNX Runtime, OpenVINO) replaces
steps 1 and 3 with ONNX Runtime's own QDQ quantizer (qdq_cpu.py): every tensor it wants a range for
is calibrated by the same step 2 (its [min, max] clipped to the method's threshold), and it writes
uint8 asymmetric activations, int8 per-channel weights and fp32 elsewhere, the graph ONNX Runtime
fuses into integer kernels at full graph optimisation. The file's metadata carries the target.

Static-shape models: the official pre-processing sizes the input after the image (short side =
input size, long side 64-aligned), which a fixed H x W network cannot take. Such models get the
same warp with the image *letterboxed* into H x W, as the runtime pipeline feeds them
(``core.preprocess.letterbox``): zoom so the whole image fits, centred, black (zero) border, i.e.
exactly the official transform whenever the official size equals H x W. Dynamic models get the
official pre-processing (``core.preprocess.preprocess``) unchanged.

Accuracy is reported against the fp32 ONNX under ONNX Runtime (CPU): fp32 with default graph
optimisation, the variant with graph optimisation *disabled*, because ORT's bias quantization pass
(level basic and above) miscomputes ModelOpt INT8 graphs with fp16 high precision: it rounds each
int32 bias through fp16, which overflows (cosine 0.89 measured on W32 when this was written; the
demo's tags error doubles, see runtime/backends/onnxruntime_backend.needed_level, which makes the
runtime run INT8 files that way too; TensorRT is unaffected). The report says which.

This module holds :func:`quantize_int8` and its steps; the rest is in the modules named above and
in quant_common.py (the report, the output comparison, saving).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import check_writable
from higherhrnet_trt.core.metadata import copy_metadata

from ..engine.related import derived_from_record
from . import calib_ranges  # collect_ranges is looked up at call time: tests wrap it
from .calib_data import InputMaker, list_images
from .calib_ranges import cache_entry, read_cache, write_cache
from .calib_taps import DEFAULT_SAMPLE
from .qdq import Placement, apply_scales, place_qdq
from .qdq_cpu import (
    CPU_WEIGHT_BITS,
    TARGETS,
    check_onnxruntime_unpatched,
    clipped_range,
    quantize_cpu,
    shape_inferred,
    tensors_to_calibrate,
)
from .quant_common import (
    QuantizeReport,
    check_fp32_input,
    check_onnx_output,
    compare_outputs,
    require_modelopt,
    save_onnx,
)

#: Fewer calibration images than this gives noisy activation ranges: warn.
RECOMMENDED_MIN_IMAGES = 100
METHODS = ("entropy", "max", "percentile")
#: ONNX Runtime graph optimisation an INT8 file of each target runs at (needed_level).
_RUN_LEVEL = {"tensorrt": "disable", "cpu": "all"}


# -- INT8 steps -------------------------------------------------------------------------------------
def _check_int8_args(method: str, percentile: float, high_precision: str, num_images: int,
                     sample: int = DEFAULT_SAMPLE, target: str = "tensorrt") -> None:
    if target not in TARGETS:
        raise UserError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    if method not in METHODS:
        raise UserError(f"calibration method must be one of {', '.join(METHODS)}, not {method!r}")
    if high_precision not in ("fp16", "fp32"):
        raise UserError(f"high_precision must be fp16 or fp32, not {high_precision!r}")
    if num_images < 1:
        raise UserError(f"num_images must be at least 1, got {num_images}")
    if method == "percentile" and not 50.0 < percentile <= 100.0:
        raise UserError(f"percentile must be in (50, 100], got {percentile}")
    if sample < 0:
        raise UserError(f"sample must be 0 (every value) or a positive count, got {sample}")


def _split_images(images, seed: int, holdout: int) -> tuple[list[str], list[str], list[str]]:
    """(all images, calibration images, held-out images): a seeded shuffle, the last ``holdout``
    (at most a fifth of the folder) held out to measure the error."""
    pool = list_images(images)
    order = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    n_hold = min(max(0, holdout), len(pool) // 5)
    hold_paths = order[len(order) - n_hold:] if n_hold else []
    return pool, order[: len(order) - n_hold], hold_paths


def _placement(work_in: str, maker: InputMaker, calib_paths: list[str], high_precision: str,
               tmp: str, src_model, onnx_in: str):
    """Step 1: ModelOpt places the Q/DQ pairs, run on the first readable image."""
    first_skips: list[str] = []
    first = next(iter(maker.feeds(calib_paths, first_skips, limit=maker.batch)), None)
    if first is None:
        raise UserError(f"none of the {len(calib_paths)} calibration images could be read "
                        f"({first_skips[0] if first_skips else 'no images'})")
    placed, placement = place_qdq(work_in, maker.name, first[maker.name], high_precision, tmp, src_model)
    if not placement.scales:
        raise UserError(f"ModelOpt placed no activation Q/DQ in {onnx_in}: nothing to calibrate")
    return placed, placement


def _calibrate(work_in: str, placement: Placement, maker: InputMaker, calib_paths: list[str],
               method: str, percentile: float, num_images: int, progress: bool, tmp: str,
               report: QuantizeReport, skipped: list[str],
               sample: int = DEFAULT_SAMPLE, target: str = "tensorrt") -> dict:
    """Step 2, the pass: ranges over up to ``num_images`` readable calibration images, with a
    progress bar; unreadable ones are appended to ``skipped``. Ranges: {tensor: max |x|
    threshold} for target "tensorrt", {tensor: [min, max]} (clipped to the threshold) for "cpu"."""
    from tqdm import tqdm

    wanted = min(num_images, len(calib_paths))
    with tqdm(total=wanted, desc=f"INT8 calibration ({method})", unit="img",
              disable=None if progress else True, leave=False) as bar:
        stats: dict = {}
        feeds = maker.feeds(calib_paths, skipped, limit=num_images, bar=bar, stats=stats)
        extremes: dict[str, tuple[float, float]] | None = {} if target == "cpu" else None
        ranges, _ = calib_ranges.collect_ranges(work_in, placement, method, percentile, feeds, tmp,
                                                sample, extremes=extremes)
        report.calibration_images = stats["used"]
    if target == "cpu":
        return {t: list(extremes[t] if method == "max" else clipped_range(*extremes[t], ranges[t]))
                for t in ranges}
    return ranges


def _cached_ranges(cache: tuple[dict, str, str], use_cache: bool, onnx_in: str, placement: Placement,
                   report: QuantizeReport, calibrate) -> tuple[dict[str, float], list[str]]:
    """Step 2: (ranges, unreadable images) from the cache entry ``cache`` (settings, key, path), or
    from ``calibrate(skipped)`` (the pass over the images), which is then written to the cache."""
    settings, key, cache_path = cache
    cached = read_cache(cache_path, key, placement) if use_cache else None
    if cached:
        report.cache_hit = True
        report.calibration_images = int(cached.get("images", 0))
        return ({t: cached["ranges"][t] for t in placement.scales},
                list(cached.get("skipped", [])))
    skipped: list[str] = []
    ranges = calibrate(skipped)
    write_cache(cache_path, {"key": key, "settings": settings, "onnx": os.path.abspath(onnx_in),
                             "images": report.calibration_images, "skipped": skipped, "ranges": ranges})
    return ranges, skipped


def _int8_notes(report: QuantizeReport, placement: Placement, maker: InputMaker,
                high_precision: str, method: str = "entropy", sample: int = DEFAULT_SAMPLE,
                target: str = "tensorrt") -> None:
    if target == "cpu":
        report.notes.append(f"target cpu (ONNX Runtime, OpenVINO): {len(placement.scales)} activations "
                            "quantized to uint8 by ONNX Runtime's placement, weights int8 in 7 bits "
                            "(CPUs without VNNI saturate 8-bit ones), the rest in fp32 (the last "
                            "convolutions and the outputs included); runs at "
                            "graph optimisation 'all'; TensorRT cannot build it (calibrate --target "
                            "tensorrt for TensorRT)")
    else:
        report.notes.append(f"target tensorrt: {len(placement.scales)} activation quantizers, "
                            f"{len(placement.groups)} concat groups sharing a scale; "
                            f"unquantized layers in {high_precision}")
    if sample and method != "max":
        report.notes.append(f"{method} histograms from a grid sample of about {sample} values per "
                            "tensor and image (exact min / max); --sample 0 reads every value")
    if maker.fixed_hw:
        report.notes.append(f"static input {maker.fixed_hw[0]}x{maker.fixed_hw[1]}: frames "
                            "letterboxed into it (see fixed_size_input)")
    if target == "tensorrt" and high_precision == "fp16":
        report.notes.append("fp16 Q/DQ graph: ONNX Runtime's bias quantization pass miscomputes it, so "
                            "run / eval / bench / Pipeline run INT8 files with ONNX Runtime graph "
                            "optimisation disabled (--graph-optimization auto); TensorRT is unaffected")


def _check_int8(report: QuantizeReport, maker: InputMaker, onnx_in: str, onnx_out: str,
                hold_paths: list[str], calib_paths: list[str]) -> list[str]:
    """Step 4: error against fp32 on held-out frames (or on calibration frames when none are held
    out). Returns the images it could not read."""
    check_skips: list[str] = []
    if hold_paths:
        feeds = list(maker.feeds(hold_paths, check_skips))
        report.checked_on = f"{sum(f[maker.name].shape[0] for f in feeds)} held-out images"
    else:
        feeds = []
    if not feeds:
        feeds = list(maker.feeds(calib_paths, check_skips, limit=max(1, min(4, len(calib_paths)))))
        report.checked_on = f"{len(feeds)} calibration images (none held out: too few images)"
    report.errors, _ = compare_outputs(onnx_in, onnx_out, feeds, report.graph_optimization)
    return check_skips


def _int8_warnings(report: QuantizeReport, num_images: int, n_hold: int, n_pool: int) -> None:
    """Unreadable images, and too few calibration images (saying when the holdout is why)."""
    used = report.calibration_images
    if report.skipped_images:
        report.warnings.append(f"{len(report.skipped_images)} unreadable images skipped (first: "
                               f"{report.skipped_images[0]})")
    if used < num_images or used < RECOMMENDED_MIN_IMAGES:
        report.warnings.append(
            f"calibrated on {used} images (asked for {num_images}"
            # Say so when the held-out images are what fell short, not the folder.
            + (f"; {n_hold} of the folder's {n_pool} held out to measure the error"
               if n_hold and used < num_images <= used + n_hold else "")
            + "): INT8 ranges from few images "
            f"are noisy; use at least {RECOMMENDED_MIN_IMAGES} (300-1000 recommended) frames like "
            "the ones the robot will see"
        )


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
    sample: int = DEFAULT_SAMPLE,
    target: str = "tensorrt",
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
    sample: values per tensor and image the entropy / percentile histograms see (a grid, with
        exact min and max measured in-graph; "max" reads no sample); 0: every value, as ModelOpt
        calibrates (about twice as slow).
    target: the runtime the Q/DQ graph is laid out for (qdq_cpu.TARGETS), written to the file's
        metadata: "tensorrt" (ModelOpt's placement, unquantized layers in ``high_precision``) or
        "cpu" (ONNX Runtime / OpenVINO: ONNX Runtime's placement, uint8 activations, fp32
        elsewhere, see qdq_cpu.py; ``high_precision`` does not apply).
    """
    t0 = time.perf_counter()
    check_onnx_output(onnx_in, onnx_out, "int8")
    _check_int8_args(method, percentile, high_precision, num_images, sample, target)
    if target == "tensorrt":
        require_modelopt("modelopt.onnx.quantization", "INT8 quantization")

    src_model, summary, meta = check_fp32_input(onnx_in)
    maker = InputMaker(summary, meta, input_size)
    pool, calib_paths, hold_paths = _split_images(images, seed, holdout)
    n_hold = len(hold_paths)
    settings, key, cache_path = cache_entry(onnx_in, pool, {
        "method": method, "percentile": percentile if method == "percentile" else None,
        "num_images": num_images, "holdout": n_hold, "seed": seed, "input": maker.describe(),
        "sample": sample, **({"target": target} if target != "tensorrt" else {})},
        cache_dir)
    # Before any calibration work: the ranges are always written to the cache (--no-cache
    # refreshes it), so a read-only or misplaced cache folder would fail only at the end.
    check_writable(os.path.dirname(cache_path), "the calibration cache folder",
                   "give a writable --cache-dir (or set XDG_CACHE_HOME)", folder=True)
    report = QuantizeReport(path=onnx_out, reference=onnx_in, precision="int8", checked_on="",
                            graph_optimization=_RUN_LEVEL[target], method=method,
                            cache_path=cache_path, target=target)
    with tempfile.TemporaryDirectory(prefix="higherhrnet_trt_int8_") as tmp:
        # ModelOpt writes intermediate files next to its input: give it a private copy.
        work_in = os.path.join(tmp, "model.onnx")
        shutil.copyfile(onnx_in, work_in)
        if target == "cpu":
            check_onnxruntime_unpatched()
            placed = shape_inferred(work_in)
            placement = Placement({t: set() for t in tensors_to_calibrate(placed)}, [])
        else:
            placed, placement = _placement(work_in, maker, calib_paths, high_precision, tmp,
                                           src_model, onnx_in)
        ranges, skipped = _cached_ranges(
            (settings, key, cache_path), use_cache, onnx_in, placement, report,
            lambda skipped: _calibrate(work_in, placement, maker, calib_paths, method, percentile,
                                       num_images, progress, tmp, report, skipped, sample, target))
        # 3. Scales into the graph, metadata back (the quantizers drop it).
        if target == "cpu":
            placed = quantize_cpu(placed, {t: (float(lo), float(hi)) for t, (lo, hi) in ranges.items()})
        else:
            apply_scales(placed, placement, ranges)
        copy_metadata(src_model, placed, precision="int8", target=target,
                      **({"weight_bits": CPU_WEIGHT_BITS} if target == "cpu" else {}),
                      derived_from=derived_from_record(onnx_in))
        save_onnx(placed, onnx_out)
    _int8_notes(report, placement, maker, high_precision, method, sample, target)
    check_skips = _check_int8(report, maker, onnx_in, onnx_out, hold_paths, calib_paths)
    report.skipped_images = skipped + [s for s in check_skips if s not in skipped]
    _int8_warnings(report, num_images, n_hold, len(pool))
    for w in report.warnings:
        warnings.warn(w, stacklevel=2)
    report.seconds = time.perf_counter() - t0
    if log:
        log(report.summary())
    return report


__all__ = ["METHODS", "RECOMMENDED_MIN_IMAGES", "quantize_int8"]
