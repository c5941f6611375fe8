"""INT8 calibration (step 2 of quantize.py's recipe): activation ranges over the images, cached.

Every activation tensor that got a Q/DQ pair is measured over the calibration images with ONNX
Runtime. Ranges: "max" = max |x|, "entropy" = ONNX Runtime's KL-divergence threshold (ModelOpt's
settings: 128 bins, signed histogram), "percentile" = ONNX Runtime's symmetric percentile (2048
bins), with ONNX Runtime's histogram rules and thresholds reproduced by vectorised code
(calib_hist.py). Tensors of one concat group share one histogram, as ModelOpt groups them.

Two ways to measure (``sample``):
- default: in-graph taps (calib_taps.py) in the optimised graph: each tensor's exact min and max,
  and a grid sample of about ``sample`` values per tensor and image for the histograms (whose range
  the exact min and max set). About 1.2-1.3 times a plain inference on W32-512.
- ``sample=0``: every value fetched whole from an unoptimised session, as ModelOpt calibrates, so
  that "max" ranges equal ModelOpt's to the bit and histograms are ONNX Runtime's exactly. About
  2.6 times a plain inference.

The ranges are cached under a key of the ONNX, the image list (paths, sizes, mtimes) and every
setting, so a re-run skips this pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import atomic_open, sha256_file
from higherhrnet_trt.core.formats import cache_dir as _cache_dir
from higherhrnet_trt.core.lazy import lazy_import

from .calib_hist import StreamingHistograms
from .calib_taps import DEFAULT_SAMPLE, CalibrationTaps, TapValues
from .qdq import Placement
from .taps import tapped_session

onnx = lazy_import("onnx")

CACHE_FORMAT = 1


# -- collection -------------------------------------------------------------------------------------
def _augmented_session(onnx_in: str, tensors: Sequence[str], tmpdir: str):
    """An ONNX Runtime session of ``onnx_in`` with ``tensors`` added as outputs."""
    model = onnx.load_model(onnx_in)
    outputs = {o.name for o in model.graph.output}
    for t in tensors:
        if t not in outputs:
            model.graph.output.append(onnx.ValueInfoProto(name=t))
    # As ModelOpt calibrates: no graph optimisation, so every tensor is computed as written.
    return tapped_session(model, os.path.join(tmpdir, "augmented.onnx"), optimise=False,
                          priority_order=False)


def _histograms(method: str):
    """Streaming histograms for "entropy" / "percentile" (ModelOpt's settings: 128 signed bins for
    entropy, 2048 |x| bins for percentile); None for "max"."""
    if method == "max":
        return None
    return StreamingHistograms(method, 128 if method == "entropy" else 2048)


def _absmax(x: np.ndarray) -> float:
    """max |x| without the temporary |x| array."""
    return float(max(x.max(initial=0.0), -x.min(initial=0.0)))


def _exact_statistics(onnx_in: str, tensors: Sequence[str], tmpdir: str):
    """feed -> {tensor: TapValues(None, None, whole tensor)}: every value, unoptimised graph."""
    session = _augmented_session(onnx_in, tensors, tmpdir)

    def run(feed: Mapping[str, np.ndarray]) -> dict:
        return {t: TapValues(None, None, v) for t, v in zip(tensors, session.run(tensors, dict(feed)))}

    return run


def _statistics(onnx_in: str, tensors: Sequence[str], method: str, sample: int,
                first_feed: Mapping[str, np.ndarray], tmpdir: str):
    """The per-feed statistics function: exact (``sample`` 0) or in-graph taps (calib_taps)."""
    if sample == 0:
        return _exact_statistics(onnx_in, tensors, tmpdir)
    return CalibrationTaps(onnx_in, tensors, 0 if method == "max" else sample, first_feed, tmpdir).run


def _group_stats(values: Mapping, names: Sequence[str]):
    """(low, high, values) of a concat group's tensors (one histogram, as ModelOpt); low / high
    None where a member's are not known (exact pass: the histogram measures them)."""
    stats = [values[t] for t in names]
    known = all(s.low is not None for s in stats)
    low = min(s.low for s in stats) if known else None
    high = max(s.high for s in stats) if known else None
    if len(stats) == 1:  # not copied
        return low, high, stats[0].sample
    if stats[0].sample is None:
        return low, high, None
    return low, high, np.concatenate([np.asarray(s.sample, np.float32).ravel() for s in stats])


def _fold_extremes(groups: Mapping, lows: dict[str, float], highs: dict[str, float]) -> None:
    """Fold one feed's (low, high, values) per group into the running min / max."""
    for k, (low, high, whole) in groups.items():
        if low is None:  # exact pass: only the values are known
            low, high = float(np.min(whole)), float(np.max(whole))
        lows[k], highs[k] = min(lows[k], low), max(highs[k], high)


def collect_ranges(onnx_in: str, placement: Placement, method: str, percentile: float,
                   feeds: Iterable[Mapping[str, np.ndarray]], tmpdir: str,
                   sample: int = DEFAULT_SAMPLE,
                   extremes: dict[str, tuple[float, float]] | None = None) -> tuple[dict[str, float], int]:
    """max |x| threshold per activation tensor over ``feeds``. Returns (ranges, feeds seen).
    ``extremes``, when given, is filled with each tensor's (min, max) over the feeds (of its
    concat group): what an asymmetric (uint8) quantizer needs beside the threshold.

    sample: values per tensor and image the entropy / percentile histograms see, on a grid, with
    each tensor's exact min and max computed in-graph (calib_taps); 0: every value, fetched whole
    from an unoptimised session (ModelOpt's own pass, to the bit; 2 times slower on W32-512).
    Streams: each feed's statistics are folded into a max or a small histogram per concat group
    (calib_hist.py, ONNX Runtime's definitions, vectorised) and dropped, so memory is one
    inference's outputs whatever the number of images."""
    tensors = sorted(placement.scales)
    group_of = placement.group_of()
    members = {min(g): sorted(g) for g in group_of.values()}  # one histogram per group
    absmax: dict[str, float] = dict.fromkeys(members, 0.0)
    lows: dict[str, float] = dict.fromkeys(members, 0.0)  # 0 in the range, as both quantizers do
    highs: dict[str, float] = dict.fromkeys(members, 0.0)
    hists = _histograms(method)
    stats, count = None, 0
    for feed in feeds:
        stats = stats or _statistics(onnx_in, tensors, method, sample, feed, tmpdir)
        values = stats(feed)
        count += 1
        groups = {k: _group_stats(values, names) for k, names in members.items()}
        del values
        if extremes is not None:
            _fold_extremes(groups, lows, highs)
        if hists is None:
            for k, (low, high, whole) in groups.items():
                seen = _absmax(whole) if low is None else max(abs(low), abs(high))
                absmax[k] = max(absmax[k], seen)
        else:
            hists.add_batch({k: g[2] for k, g in groups.items()},
                            limits={k: g[:2] for k, g in groups.items() if g[0] is not None})
        del groups
    if count == 0:
        raise UserError("no calibration image could be read")
    if hists is not None:
        absmax.update(hists.thresholds(num_quantized_bins=128, percentile=percentile))
    if extremes is not None:
        extremes.update({t: (lows[min(group_of[t])], highs[min(group_of[t])]) for t in tensors})
    return {t: absmax[min(group_of[t])] for t in tensors}, count


# -- cache ------------------------------------------------------------------------------------------
def _cache_key(onnx_sha: str, paths: Sequence[str], settings: dict) -> str:
    h = hashlib.sha256()
    h.update(onnx_sha.encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    for p in paths:
        # fsencode, not encode(): a file name that is not UTF-8 comes as surrogate escapes, and
        # gives its own bytes back (the same key as before for every UTF-8 name)
        name = os.fsencode(os.path.abspath(p))
        try:
            st = os.stat(p)
            h.update(name + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(name + b"|missing\n")
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


def cache_entry(onnx_in: str, pool: Sequence[str], settings: dict,
                cache_dir: str | None) -> tuple[dict, str, str]:
    """(settings completed with the library versions and cache format, key, cache file path).
    The key covers the ONNX's sha256, every setting and every image (path, size, mtime)."""
    settings = {**settings, "versions": _modelopt_versions(), "format": CACHE_FORMAT}
    key = _cache_key(sha256_file(onnx_in), pool, settings)
    cache_dir = cache_dir or default_cache_dir()
    return settings, key, os.path.join(cache_dir, f"int8_ranges_{key}.json")


def read_cache(cache_path: str, key: str, placement: Placement) -> dict | None:
    """The cached entry when it exists, is readable, has this key and a range for every
    quantized tensor; else None (the pass runs)."""
    if not os.path.isfile(cache_path):
        return None
    try:
        with open(cache_path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, ValueError):
        return None
    if cached and cached.get("key") == key and set(placement.scales) <= set(cached.get("ranges", {})):
        return cached
    return None


def write_cache(cache_path: str, entry: dict) -> None:
    """Complete or absent: an interrupted write never leaves a torn cache entry."""
    with atomic_open(cache_path) as f:
        json.dump(entry, f, indent=1)
