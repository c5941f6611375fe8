"""The bench's JSON result: its layout constants, statistics, the records it is assembled from,
and its human-readable forms (text report, plot). Layout: bench.py's docstring and SCHEMA.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from higherhrnet_trt.core.files import atomic_path, sha256_file
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.engine.onnx_info import load_model
from higherhrnet_trt.engine.onnx_info import model_precision as onnx_prec
from higherhrnet_trt.engine.sidecar import read_sidecar

matplotlib = lazy_import("matplotlib")
plt = lazy_import("matplotlib.pyplot")

#: Version of the JSON layout written by :func:`run_bench`; bump on incompatible changes.
SCHEMA = "higherhrnet_trt.bench/1"
#: Stage keys in the order they run (end_to_end spans all).
STAGES = ("preprocess", "h2d", "inference", "d2h", "decode", "end_to_end")
#: Statistics of every applicable stage, milliseconds (count: samples).
STAT_KEYS = ("mean", "median", "p90", "p95", "p99", "min", "max", "std", "count")

STAGE_LABELS = {
    "preprocess": "preprocess", "h2d": "host-to-device", "inference": "inference",
    "d2h": "device-to-host", "decode": "decode", "end_to_end": "end-to-end",
}


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


def stats_ms(samples_ms: Sequence[float]) -> dict[str, float]:
    """Summary of latency samples (milliseconds) -> {mean, median, p90, p95, p99, min, max, std,
    count}. Percentiles use numpy's default linear interpolation between order statistics."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
    return {"mean": float(a.mean()), "median": float(p50), "p90": float(p90), "p95": float(p95),
            "p99": float(p99), "min": float(a.min()), "max": float(a.max()), "std": float(a.std()),
            "count": int(a.size)}


def not_applicable(reason: str) -> dict[str, Any]:
    """The record of a stage that does not exist on this backend."""
    return {"applicable": False, "reason": reason}


# --------------------------------------------------------------------------------------------------
# Model facts
# --------------------------------------------------------------------------------------------------


def model_precision(path: str, meta_precision: str) -> dict[str, str]:
    """Precision of a model file: read from the ONNX graph (engine/onnx_info.py), from an engine's
    sidecar, else the exporter's metadata. Returns {"precision", "source"}."""
    if path.lower().endswith(".onnx"):
        try:
            return {"precision": onnx_prec(load_model(path)), "source": "onnx graph (engine/onnx_info)"}
        except ImportError:
            pass
    else:
        try:
            return {"precision": read_sidecar(path).precision, "source": "engine sidecar"}
        except Exception:  # no sidecar: fall back to the metadata
            pass
    return {"precision": meta_precision, "source": "model metadata"}


def _sha256_prefix(path: str) -> str:
    return sha256_file(path)[:16]


def stage_records(samples: Mapping[str, list[float]], staged: bool, backend_name: str,
                  gpu_eps: str | None) -> dict[str, Any]:
    """One record per stage in STAGES: statistics, the clock, what it times; H2D / D2H as not
    applicable where nothing is copied apart from the network call (``gpu_eps``: the GPU
    execution providers of an ONNX Runtime backend, or None)."""
    if staged:
        copies = None
        infer_what = "GPU compute time: CUDA events around the network's enqueue on the backend stream"
    else:
        copies = ("inside inference: onnxruntime copies inputs/outputs within session.run on "
                  f"{gpu_eps}" if gpu_eps else
                  f"the {backend_name} backend computes on the CPU: inputs and outputs stay in host "
                  "memory, nothing is copied")
        infer_what = ("host wall time of backend.infer (perf_counter), copies included"
                      if gpu_eps else "host wall time of backend.infer (perf_counter): CPU compute")
    stages: dict[str, Any] = {}
    for name in STAGES:
        if name in ("h2d", "d2h") and not staged:
            stages[name] = not_applicable(copies)
            continue
        rec = {"applicable": True, "unit": "ms per batch", **stats_ms(samples[name])}
        rec["clock"] = "cuda_events" if staged and name in ("h2d", "inference", "d2h") else "perf_counter"
        rec["what"] = {
            "preprocess": "frame -> normalised input batch (official warp or letterbox), host",
            "h2d": "host -> device copy of the input batch (CUDA events)",
            "inference": infer_what,
            "d2h": "device -> host copy of the outputs (CUDA events)",
            "decode": "maps -> people (resize to input size, group, refine, map to frame), host",
            "end_to_end": "host wall time of one whole iteration: every stage above",
        }[name]
        stages[name] = rec
    return stages


def latency_records(stages: Mapping[str, Any], samples: Mapping[str, list[float]], staged: bool,
                    gpu_eps: str | None) -> dict[str, Any]:
    """trtexec's clocks: GPU compute, host latency (H2D + compute + D2H), end to end, enqueue."""
    if staged:
        gpu_compute = dict(stages["inference"], what="GPU compute time (trtexec 'GPU Compute Time')")
        host_latency = {"applicable": True, "unit": "ms per batch", "clock": "cuda_events",
                        **stats_ms(samples["host_latency"]),
                        "what": "H2D + GPU compute + D2H (trtexec 'Latency')"}
        enqueue = {"applicable": True, "unit": "ms per batch", "clock": "perf_counter",
                   **stats_ms(samples["enqueue"]), "what": "host time to enqueue the network"}
    else:
        why = ("no GPU timing: the backend does not expose its CUDA stream (StagedBackend)"
               if gpu_eps else "no GPU: the network runs on the CPU")
        gpu_compute = not_applicable(why)
        host_latency = {"applicable": True, "unit": "ms per batch", "clock": "perf_counter",
                        **stats_ms(samples["host_latency"]),
                        "what": "host wall time of the network call (on a CPU backend = inference)"}
        enqueue = not_applicable("synchronous backend: no separate enqueue")
    return {"gpu_compute": gpu_compute, "host_latency": host_latency,
            "end_to_end": dict(stages["end_to_end"]), "enqueue": enqueue}


def host_record(start: tuple[float, float, float], end: tuple[float, float, float],
                busy0: float | None, busy1: float | None, peak_rss_mib: float) -> dict[str, Any]:
    """CPU use of this process and of everything else over the timed loop, from (wall, user,
    system) seconds at its start and end and the machine's busy CPU seconds (None: unknown)."""
    wall = end[0] - start[0]
    cpu_s = (end[1] - start[1]) + (end[2] - start[2])
    other = None
    if busy0 is not None and busy1 is not None and wall > 0:
        other = max(0.0, 100.0 * ((busy1 - busy0) - cpu_s) / wall)
    return {
        "cpu_percent": 100.0 * cpu_s / wall if wall > 0 else math.nan,
        "cpu_percent_note": "user + system CPU time of this process / wall time over the timed "
                            "loop; 100 = one core busy",
        "cpu_user_s": end[1] - start[1], "cpu_system_s": end[2] - start[2],
        "other_processes_cpu_percent": other,
        "other_processes_note": "CPU used by everything else during the timed loop (/proc/stat "
                                "minus this process); 100 = one core busy. Above ~20 the "
                                "timings are not those of a quiet machine",
        "peak_rss_mib": peak_rss_mib,
        "peak_rss_note": "peak resident memory of the whole process since it started "
                         "(getrusage ru_maxrss)",
    }


def engine_record(model: str) -> dict[str, Any] | None:
    """What an engine's sidecar says about its build; None for an ONNX."""
    if model.lower().endswith(".onnx"):
        return None
    try:
        sc = read_sidecar(model)
        return {"builder": sc.builder, "gpu": sc.gpu, "compute_capability": sc.compute_capability,
                "precision": sc.precision, "onnx_precision": sc.onnx_precision,
                "shapes": sc.shapes, "built_at": sc.built_at}
    except Exception as e:  # no / unreadable sidecar: say so in the JSON
        return {"error": f"{type(e).__name__}: {e}"}


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def _fmt_row(label: str, rec: Mapping[str, Any]) -> str:
    if not rec.get("applicable", True):
        return f"  {label:<15} n/a  ({rec['reason']})"
    vals = " ".join(f"{rec[k]:9.3f}" for k in ("mean", "median", "p90", "p99", "min", "max"))
    return f"  {label:<15}{vals}   {rec['clock']}"


def format_report(r: Mapping[str, Any]) -> str:
    """Human-readable summary of a run_bench result (trtexec-style: which clock is which)."""
    s, env = r["settings"], r["environment"]
    cpu = env["cpu"]
    gpu = env["gpu"]
    lines = [
        f"model: {os.path.basename(r['model']['path'])} ({r['model']['config'] or '?'}, "
        f"{r['model']['precision']}, input {'x'.join(str(d) for d in s['fed_input_shape'])}"
        f"{', RANDOM weights' if r['model']['random_weights'] else ''})",
        f"backend: {env.get('backend', {}).get('library') or s['backend']}  |  batch {s['batch']}, "
        f"{s['warmup_iters']} warm-up + {s['timed_iters']} timed iterations"
        + (f", {s['decoder']} decode" if s.get("decoder") else ""),
        f"machine: {cpu['model']}, {cpu['usable_cores']} cores usable, load avg {cpu['loadavg_1_5_15']}"
        + (f"; GPU {gpu['name']} (driver {gpu['driver']})" if gpu else "; no GPU"),
        "",
        f"  {'stage (ms/batch)':<15}{'mean':>9} {'median':>9} {'p90':>9} {'p99':>9} {'min':>9} "
        f"{'max':>9}   clock",
    ]
    for name in STAGES:
        lines.append(_fmt_row(STAGE_LABELS[name], r["stages"][name]))
    lat = r["latency"]
    lines += [
        "",
        _fmt_row("GPU compute", lat["gpu_compute"]),
        _fmt_row("host latency", lat["host_latency"]) + "  (H2D + compute + D2H)",
        _fmt_row("end-to-end", lat["end_to_end"]) + "  (preprocess .. decode)",
        "",
        f"throughput: {r['throughput']['images_per_s']:.2f} images/s (end to end, host wall clock)",
        f"host CPU: {r['host']['cpu_percent']:.0f} % of one core; "
        f"peak RSS {r['host']['peak_rss_mib']:.0f} MiB",
    ]
    stopped = r.get("interrupted")
    if stopped:
        lines.append(f"{stopped['signal']}: stopped after {stopped['timed_iters_done']} of "
                     f"{stopped['timed_iters_asked']} timed iterations; the numbers cover those")
    other = r["host"].get("other_processes_cpu_percent")
    if other is not None:
        busy = other >= 20.0
        lines.append(f"other processes: {other:.0f} % of one core during the timed loop"
                     + (" -- WARNING: not a quiet machine; timings are inflated" if busy else ""))
    gm = r["gpu_memory"]
    if gm.get("applicable", True):
        lines.append("GPU memory: " + ", ".join(f"{k} {v}" for k, v in gm.items()))
    else:
        lines.append(f"GPU memory: n/a ({gm['reason']})")
    return "\n".join(lines)


def plot(r: Mapping[str, Any], path: str) -> str:
    """Per-stage medians with p90 / p99 marks and the end-to-end time of every timed iteration."""
    matplotlib.use("Agg")

    names = [n for n in STAGES if r["stages"][n].get("applicable")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    med = [r["stages"][n]["median"] for n in names]
    x = np.arange(len(names))
    ax1.bar(x, med, color="#4c72b0", label="median")
    ax1.scatter(x, [r["stages"][n]["p90"] for n in names], marker="_", s=400, color="k", label="p90")
    ax1.scatter(x, [r["stages"][n]["p99"] for n in names], marker="_", s=400, color="r", label="p99")
    ax1.set_xticks(x, [STAGE_LABELS[n] for n in names], rotation=20)
    ax1.set_ylabel("ms per batch")
    na = [STAGE_LABELS[n] for n in STAGES if not r["stages"][n].get("applicable")]
    ax1.set_title("stages" + (f" (n/a: {', '.join(na)})" if na else ""))
    ax1.legend()
    e2e = r["samples_ms"]["end_to_end"]
    ax2.plot(np.arange(len(e2e)), e2e, lw=0.8, label="end-to-end")
    ax2.plot(np.arange(len(e2e)), r["samples_ms"]["inference"], lw=0.8, label="inference")
    ax2.set_xlabel("timed iteration")
    ax2.set_ylabel("ms")
    ax2.set_title(f"{r['throughput']['images_per_s']:.1f} images/s, batch {r['settings']['batch']}")
    ax2.legend()
    cpu = r["environment"]["cpu"]
    fig.suptitle(f"{os.path.basename(r['model']['path'])} ({r['model']['precision']}) on "
                 f"{r['settings']['backend']}; {cpu['model']} x{cpu['usable_cores']}", fontsize=10)
    fig.tight_layout()

    with atomic_path(path) as tmp:  # the temporary name keeps the extension: same format
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
