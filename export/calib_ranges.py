"""INT8 calibration (step 2 of quantize.py's recipe): activation ranges over the images, cached.

Every activation tensor that got a Q/DQ pair is collected over the calibration images with ONNX
Runtime (graph optimisation off, as ModelOpt calibrates, so every tensor is computed as written).
Ranges: "max" = max |x|, "entropy" = ONNX Runtime's KL-divergence threshold (ModelOpt's settings:
128 bins, signed histogram), "percentile" = ONNX Runtime's symmetric percentile (2048 bins), with
ONNX Runtime's histograms and thresholds reproduced by vectorised code (calib_hist.py).
Tensors of one concat group share one histogram, as ModelOpt groups them.

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
from higherhrnet_trt.core.files import atomic_open
from higherhrnet_trt.core.formats import cache_dir as _cache_dir

from .qdq import Placement

CACHE_FORMAT = 1


# -- collection -------------------------------------------------------------------------------------
def _augmented_session(onnx_in: str, tensors: Sequence[str], tmpdir: str):
    """An ONNX Runtime session of ``onnx_in`` with ``tensors`` added as outputs."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_model(onnx_in)
    outputs = {o.name for o in model.graph.output}
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
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def _histograms(method: str):
    """Streaming histograms for "entropy" / "percentile" (ModelOpt's settings: 128 signed bins for
    entropy, 2048 |x| bins for percentile); None for "max"."""
    from .calib_hist import StreamingHistograms

    if method == "max":
        return None
    return StreamingHistograms(method, 128 if method == "entropy" else 2048)


def _absmax(x: np.ndarray) -> float:
    """max |x| without the temporary |x| array."""
    return float(max(x.max(initial=0.0), -x.min(initial=0.0)))


def collect_ranges(onnx_in: str, placement: Placement, method: str, percentile: float,
                   feeds: Iterable[Mapping[str, np.ndarray]], tmpdir: str) -> tuple[dict[str, float], int]:
    """max |x| threshold per activation tensor over ``feeds``. Returns (ranges, feeds seen).

    Streams: each feed's tensors are folded into a max or a small histogram per concat group
    (calib_hist.py, ONNX Runtime's definitions, vectorised) and dropped, so memory is one
    inference's outputs whatever the number of images."""
    tensors = sorted(placement.scales)
    session = _augmented_session(onnx_in, tensors, tmpdir)
    group_of = placement.group_of()
    keys = sorted({min(g) for g in group_of.values()})  # one histogram per group
    members = {min(g): sorted(g) for g in group_of.values()}
    absmax: dict[str, float] = dict.fromkeys(keys, 0.0)
    hists = _histograms(method)
    count = 0
    for feed in feeds:
        values = dict(zip(tensors, session.run(tensors, dict(feed))))
        count += 1
        if hists is None:
            for k in keys:
                absmax[k] = max(absmax[k], *(_absmax(values[t]) for t in members[k]))
        else:  # a group's tensors share one histogram (as ModelOpt); a single one is not copied
            hists.add_batch({k: values[members[k][0]] if len(members[k]) == 1 else
                             np.concatenate([np.asarray(values[t], np.float32).ravel()
                                             for t in members[k]]) for k in keys})
        del values
    if count == 0:
        raise UserError("no calibration image could be read")
    if hists is not None:
        absmax.update(hists.thresholds(num_quantized_bins=128, percentile=percentile))
    return {t: absmax[min(group_of[t])] for t in tensors}, count


# -- cache ------------------------------------------------------------------------------------------
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


def cache_entry(onnx_in: str, pool: Sequence[str], settings: dict,
                cache_dir: str | None) -> tuple[dict, str, str]:
    """(settings completed with the library versions and cache format, key, cache file path).
    The key covers the ONNX's sha256, every setting and every image (path, size, mtime)."""
    from ..engine.onnx_info import sha256_file

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
