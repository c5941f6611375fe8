"""Per-stage latency, throughput and memory of one model on one backend (``higherhrnet-trt bench``).

One iteration processes one batch of ``batch`` frames exactly as ``runtime.Pipeline`` does, with
each stage timed on its own:

==============  ==============================================================================
preprocess      frame -> normalised (N, 3, H, W) input (official warp, or letterbox for a fixed
                input size), host
h2d             host -> device copy of the input (GPU backends only)
inference       the network: GPU compute time on a GPU backend, host wall time of
                ``backend.infer`` on a CPU backend
d2h             device -> host copy of the outputs (GPU backends only)
decode          maps -> people: resize to the input size, grouping, refinement, back to frame
                pixels, host
end_to_end      host wall time of the whole iteration (all of the above)
==============  ==============================================================================

Clocks, as trtexec names them:

- **GPU compute time**: CUDA events recorded on the backend's stream around the enqueue of the
  network alone (no copies). Only on a backend that exposes its stream (see
  :class:`StagedBackend`); it needs cuda-python.
- **host latency**: H2D + compute + D2H of one batch. On the GPU from the CUDA events; on a CPU
  backend it is the inference stage itself (nothing is copied).
- **end-to-end latency**: host ``time.perf_counter`` around one whole iteration, pre-processing
  and decoding included: what an application sees per batch.

Stages that do not exist on a backend (H2D / D2H on the ONNX Runtime CPU provider, where inputs
and outputs stay in host memory) are recorded as ``{"applicable": false, "reason": ...}``, never
as zero. Statistics are per batch, in milliseconds: mean, median, p90, p95, p99 (numpy's linear
interpolation), min, max, std. Throughput = images processed / host wall time of the timed loop.

GPU backends opt into per-stage timing with the :class:`StagedBackend` methods; a backend without
them (ONNX Runtime with the CUDA provider: copies happen inside ``session.run``) is timed like a
CPU one, its H2D / D2H marked as "inside inference". The GPU paths are written against the
documented cuda-python API (``cudaEventCreate / Record / Synchronize / ElapsedTime``,
``cudaMemGetInfo``) and imported lazily.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError

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
# GPU timing (lazy cuda-python)
# --------------------------------------------------------------------------------------------------


class StagedBackend:
    """What a GPU backend implements (duck-typed) so the bench can time H2D / compute / D2H apart.

    cuda_stream: the ``cudaStream_t`` (int or cuda-python handle) the backend enqueues on.
    copy_inputs_async(feeds): host -> device copies of the inputs, enqueued on cuda_stream.
    execute_async(): enqueue the network (``execute_async_v3``, or a CUDA graph launch).
    copy_outputs_async(): device -> host copies into the backend's host buffers.
    synchronize(): wait for cuda_stream.
    host_outputs() -> {name: array}: the outputs copied back (valid after synchronize()).
    Optional: enable_cuda_graph() (capture execute_async once, replay it), device_memory_bytes.

    Documentation only: the bench checks these names with hasattr, so backends need not inherit.
    """

    REQUIRED = ("cuda_stream", "copy_inputs_async", "execute_async", "copy_outputs_async",
                "synchronize", "host_outputs")


def is_staged(backend: Any) -> bool:
    return all(hasattr(backend, name) for name in StagedBackend.REQUIRED)


class CudaEvents:
    """CUDA events on one stream through cuda-python (``cuda.bindings.runtime``).

    record(i) records event i on the stream; elapsed_ms(i, j) is the GPU time between events i
    and j after synchronize(). Events are created once (``cudaEventDefault``: timing enabled) and
    reused every iteration.
    """

    def __init__(self, stream: Any, count: int = 4) -> None:
        from .environment import import_cudart

        self.cudart = import_cudart()
        if self.cudart is None:
            raise UserError("GPU stage timing needs cuda-python (pip install 'cuda-python>=12'); "
                            "without it only host times would be measured")
        self.stream = stream
        self.events = [self._check(self.cudart.cudaEventCreate())[0] for _ in range(count)]

    def _check(self, result: tuple) -> tuple:
        err, *values = result
        if int(err) != 0:
            raise UserError(f"CUDA error {err} in the bench's event timing")
        return tuple(values)

    def record(self, i: int) -> None:
        self._check(self.cudart.cudaEventRecord(self.events[i], self.stream))

    def synchronize(self, i: int) -> None:
        self._check(self.cudart.cudaEventSynchronize(self.events[i]))

    def elapsed_ms(self, i: int, j: int) -> float:
        return float(self._check(self.cudart.cudaEventElapsedTime(self.events[i], self.events[j]))[0])

    def close(self) -> None:
        for ev in self.events:
            self.cudart.cudaEventDestroy(ev)
        self.events = []


def gpu_memory(backend: Any = None) -> dict[str, Any] | None:
    """Device memory: this process's use (NVML / nvidia-smi), the device's used / total
    (cudaMemGetInfo), and the backend's own allocation when it reports one; None without a GPU.
    All in MiB."""
    from higherhrnet_trt.core.gpu import query_gpu

    from .environment import _run, import_cudart

    if query_gpu(0) is None:
        return None
    out: dict[str, Any] = {}
    if getattr(backend, "device_memory_bytes", None):
        out["backend_allocation_mib"] = round(backend.device_memory_bytes / 2**20, 1)
    cudart = import_cudart()
    if cudart is not None:
        try:
            err, free, total = cudart.cudaMemGetInfo()
            if int(err) == 0:
                out["device_used_mib"] = round((total - free) / 2**20, 1)
                out["device_total_mib"] = round(total / 2**20, 1)
        except Exception:  # no context / no libcudart: leave it out
            pass
    smi = _run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"])
    if smi:
        for line in smi.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0] == str(os.getpid()):
                out["process_used_mib"] = float(parts[1])
    return out or {"note": "GPU present but no memory query worked (no cuda-python, no nvidia-smi)"}


# --------------------------------------------------------------------------------------------------
# Model facts
# --------------------------------------------------------------------------------------------------


def model_precision(path: str, meta_precision: str) -> dict[str, str]:
    """Precision of a model file: read from the ONNX graph (engine/onnx_info.py), from an engine's
    sidecar, else the exporter's metadata. Returns {"precision", "source"}."""
    if path.lower().endswith(".onnx"):
        try:
            from higherhrnet_trt.engine.onnx_info import load_model
            from higherhrnet_trt.engine.onnx_info import model_precision as onnx_prec

            return {"precision": onnx_prec(load_model(path)), "source": "onnx graph (engine/onnx_info)"}
        except ImportError:
            pass
    else:
        try:
            from higherhrnet_trt.engine.sidecar import read_sidecar

            return {"precision": read_sidecar(path).precision, "source": "engine sidecar"}
        except Exception:  # no sidecar: fall back to the metadata
            pass
    return {"precision": meta_precision, "source": "model metadata"}


def _sha256_prefix(path: str) -> str:
    from higherhrnet_trt.engine.onnx_info import sha256_file

    return sha256_file(path)[:16]


# --------------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------------


@dataclass
class BenchSettings:
    """What to run. input_size: (H, W) for a model with a dynamic input (frames letterboxed into
    it), None = the model's fixed size, or for a dynamic one the official size of the frame.
    image: a frame file; None = the bundled sample (640 x 480, 5 people).
    backend: a registered backend name, "auto", or a ready Backend object (as Pipeline takes)."""

    model: str
    backend: Any = "auto"
    batch: int = 1
    input_size: tuple[int, int] | None = None
    warmup: int = 50
    iters: int = 500
    cuda_graph: bool = False
    image: str | None = None
    project2image: bool = True
    progress: bool = True
    backend_options: dict[str, Any] = field(default_factory=dict)


def default_image() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime",
                        "assets", "sample.jpg")


def _load_frame(path: str | None) -> np.ndarray:
    from higherhrnet_trt.runtime.sources import import_cv2

    cv2 = import_cv2()
    path = path or default_image()
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise UserError(f"cannot read image {path}")
    return frame


def _usage() -> tuple[float, float, float]:
    """(wall, user CPU, system CPU) seconds of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), ru.ru_utime, ru.ru_stime


def _system_busy_s() -> float | None:
    """CPU seconds all processes spent busy since boot, summed over cores (/proc/stat; None
    elsewhere). Busy = user + nice + system + irq + softirq + steal."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    busy = ticks[0] + ticks[1] + ticks[2] + sum(ticks[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib() -> float:
    """Peak resident set size of this process since it started (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StageRunner:
    """Holds an activated Pipeline and runs one timed iteration at a time."""

    def __init__(self, s: BenchSettings, frames: Sequence[np.ndarray] | None = None) -> None:
        """frames: the batch's (H, W, 3) uint8 BGR frames; default ``s.batch`` copies of s.image.
        Callers may replace ``self.frames`` between iterations (same count)."""
        from higherhrnet_trt.runtime.pipeline import Pipeline

        self.s = s
        self.pipe = Pipeline(s.model, backend=s.backend, project2image=s.project2image,
                             max_batch=max(1, s.batch), **s.backend_options)
        self.pipe.activate()
        self.backend = self.pipe.backend
        self.spec = self.backend.inputs[0]
        self.staged = is_staged(self.backend)
        self.events: CudaEvents | None = None
        if frames is None:
            frame = _load_frame(s.image)
            frames = [frame.copy() for _ in range(s.batch)]
        self.frames = list(frames)
        self._check_shapes()
        if s.cuda_graph and not hasattr(self.backend, "enable_cuda_graph"):
            raise UserError(f"--cuda-graph: the {self.backend.name} backend cannot capture CUDA "
                            "graphs (TensorRT engine backends can); run without --cuda-graph")
        if self.staged:
            self.events = CudaEvents(self.backend.cuda_stream)
        if s.cuda_graph:
            # One plain iteration first: it sets the input shapes the graph is captured with.
            self.iteration()
            self.backend.enable_cuda_graph()

    def _check_shapes(self) -> None:
        n, _, h, w = self.spec.shape
        if n > 0 and n != self.s.batch:
            raise UserError(f"{self.s.model} has a fixed batch of {n}; use --batch {n} or export with "
                            "--dynamic-batch")
        if self.s.input_size is not None and h > 0 and (h, w) != tuple(self.s.input_size):
            raise UserError(f"{self.s.model} has a fixed input of {h}x{w} (HxW); --input-size "
                            f"{self.s.input_size[0]}x{self.s.input_size[1]} needs a model exported "
                            "with --dynamic")

    def preprocess(self) -> tuple[np.ndarray, list]:
        """-> batch (N, 3, H, W) of the model's input dtype, geometries of the frames."""
        from higherhrnet_trt.core.preprocess import letterbox

        tensors, geometries = [], []
        meta = self.pipe.meta
        for frame in self.frames:
            if self.s.input_size is not None:
                h, w = self.s.input_size
                x, geometry = letterbox(frame, (w, h), meta.mean, meta.std, bgr=self.pipe.bgr)
            else:
                # The runtime's own path: official size (dynamic model) or letterbox (fixed size).
                inputs, geometry = self.pipe.prepare(frame)
                x = inputs[0][1]
            tensors.append(x)
            geometries.append(geometry)
        batch = np.concatenate(tensors, axis=0) if len(tensors) > 1 else tensors[0]
        if batch.dtype != self.spec.dtype:
            batch = batch.astype(self.spec.dtype)
        return np.ascontiguousarray(batch), geometries

    def decode(self, outputs: Mapping[str, np.ndarray], geometries: list) -> list:
        heatmaps, tags = self.pipe.model_maps(outputs)
        scale = self.pipe.scales[0]
        return [self.pipe.postprocess(i, self.frames[i], g,
                                       {(i, scale): (heatmaps[i:i + 1], tags[i:i + 1])})
                for i, g in enumerate(geometries)]

    def iteration(self) -> dict[str, float]:
        """One batch; returns stage -> milliseconds (GPU stages from CUDA events when staged)."""
        pc = time.perf_counter
        t0 = pc()
        batch, geometries = self.preprocess()
        t1 = pc()
        feeds = {self.spec.name: batch}
        times: dict[str, float] = {"preprocess": (t1 - t0) * 1e3}
        if self.staged:
            ev, be = self.events, self.backend
            ev.record(0)
            be.copy_inputs_async(feeds)
            ev.record(1)
            q0 = pc()
            be.execute_async()
            times["enqueue"] = (pc() - q0) * 1e3
            ev.record(2)
            be.copy_outputs_async()
            ev.record(3)
            be.synchronize()
            outputs = be.host_outputs()
            t2 = pc()
            times["h2d"] = ev.elapsed_ms(0, 1)
            times["inference"] = ev.elapsed_ms(1, 2)
            times["d2h"] = ev.elapsed_ms(2, 3)
            times["host_latency"] = ev.elapsed_ms(0, 3)
            times["host_wall_infer"] = (t2 - t1) * 1e3
        else:
            outputs = self.backend.infer(feeds)
            t2 = pc()
            times["inference"] = (t2 - t1) * 1e3
            times["host_latency"] = times["inference"]
        self.decode(outputs, geometries)
        t3 = pc()
        times["decode"] = (t3 - t2) * 1e3
        times["end_to_end"] = (t3 - t0) * 1e3
        return times

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
        self.pipe.deactivate()


def _gpu_backend_note(backend: Any) -> str | None:
    providers = [p for p in getattr(backend, "providers", []) if p != "CPUExecutionProvider"]
    return ", ".join(providers) if providers else None


def run_bench(s: BenchSettings) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result (layout: module docstring, SCHEMA)."""
    from . import environment

    if s.batch < 1 or s.iters < 1 or s.warmup < 0:
        raise UserError("--batch and --iters must be >= 1, --warmup >= 0")
    if not os.path.isfile(s.model):
        raise UserError(f"model file not found: {s.model}")
    runner = StageRunner(s)
    try:
        from tqdm import tqdm

        bar = tqdm(total=s.warmup + s.iters, desc="warm-up", unit="it", disable=not s.progress,
                   dynamic_ncols=True, leave=False)
        for _ in range(s.warmup):
            runner.iteration()
            bar.update()
        bar.set_description("timed")
        busy0 = _system_busy_s()
        start = _usage()
        samples, stopped_by = _timed_loop(runner, s.iters, bar)
        end = _usage()
        busy1 = _system_busy_s()
        bar.close()
        gpu_mem = gpu_memory(runner.backend)
        meta = runner.pipe.meta
        fed_shape = list(runner.preprocess()[0].shape)
        backend = runner.backend
        env = environment.collect(backend.name, backend)
        inputs = [{"name": t.name, "shape": list(t.shape), "dtype": str(np.dtype(t.dtype))}
                  for t in backend.inputs]
        outputs = [{"name": t.name, "shape": list(t.shape), "dtype": str(np.dtype(t.dtype))}
                   for t in backend.outputs]
        staged = runner.staged
    finally:
        runner.close()

    iters = len(samples["end_to_end"])  # s.iters unless Ctrl-C / SIGTERM stopped the loop
    wall = end[0] - start[0]
    cpu_s = (end[1] - start[1]) + (end[2] - start[2])
    images = s.batch * iters
    other = None
    if busy0 is not None and busy1 is not None and wall > 0:
        other = max(0.0, 100.0 * ((busy1 - busy0) - cpu_s) / wall)
    gpu_eps = _gpu_backend_note(backend)
    if staged:
        copies = None
        infer_what = "GPU compute time: CUDA events around the network's enqueue on the backend stream"
        clock = "cuda_events"
    else:
        copies = ("inside inference: onnxruntime copies inputs/outputs within session.run on "
                  f"{gpu_eps}" if gpu_eps else
                  f"the {backend.name} backend computes on the CPU: inputs and outputs stay in host "
                  "memory, nothing is copied")
        infer_what = ("host wall time of backend.infer (perf_counter), copies included"
                      if gpu_eps else "host wall time of backend.infer (perf_counter): CPU compute")
        clock = "perf_counter"

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

    prec = model_precision(s.model, meta.precision)
    engine_info = None
    if not s.model.lower().endswith(".onnx"):
        try:
            from higherhrnet_trt.engine.sidecar import read_sidecar

            sc = read_sidecar(s.model)
            engine_info = {"builder": sc.builder, "gpu": sc.gpu, "compute_capability": sc.compute_capability,
                           "precision": sc.precision, "onnx_precision": sc.onnx_precision,
                           "shapes": sc.shapes, "built_at": sc.built_at}
        except Exception as e:  # no / unreadable sidecar: say so in the JSON
            engine_info = {"error": f"{type(e).__name__}: {e}"}
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "path": os.path.abspath(s.model), "sha256_16": _sha256_prefix(s.model),
            "config": meta.config_name, "dataset": meta.dataset, "flip_test": meta.flip,
            "random_weights": meta.random_weights, "outputs_layout": meta.outputs,
            **prec, "inputs": inputs, "outputs": outputs, "engine": engine_info,
        },
        "settings": {
            "backend": backend.name, "batch": s.batch, "fed_input_shape": fed_shape,
            "input_size": list(s.input_size) if s.input_size else None,
            "warmup_iters": s.warmup, "timed_iters": iters, "cuda_graph": s.cuda_graph,
            "image": os.path.abspath(s.image or default_image()),
            "project2image": s.project2image, "clock": clock,
            "backend_options": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                                for k, v in s.backend_options.items()},
        },
        "environment": env,
        "stages": stages,
        "latency": {"gpu_compute": gpu_compute, "host_latency": host_latency,
                    "end_to_end": dict(stages["end_to_end"]), "enqueue": enqueue},
        "throughput": {
            "images_per_s": images / wall, "batches_per_s": iters / wall, "images": images,
            "wall_s": wall,
            "what": "images of the timed loop / its host wall time (end to end, one stream, "
                    "no overlap between iterations)",
        },
        "host": {
            "cpu_percent": 100.0 * cpu_s / wall if wall > 0 else math.nan,
            "cpu_percent_note": "user + system CPU time of this process / wall time over the timed "
                                "loop; 100 = one core busy",
            "cpu_user_s": end[1] - start[1], "cpu_system_s": end[2] - start[2],
            "other_processes_cpu_percent": other,
            "other_processes_note": "CPU used by everything else during the timed loop (/proc/stat "
                                    "minus this process); 100 = one core busy. Above ~20 the "
                                    "timings are not those of a quiet machine",
            "peak_rss_mib": _peak_rss_mib(),
            "peak_rss_note": "peak resident memory of the whole process since it started "
                             "(getrusage ru_maxrss)",
        },
        "gpu_memory": gpu_mem if gpu_mem is not None else not_applicable("no GPU on this machine"),
        "samples_ms": {k: [round(v, 4) for v in samples[k]] for k in ("end_to_end", "inference")},
    }
    if stopped_by is not None:
        result["interrupted"] = {
            "signal": "SIGTERM" if stopped_by == 143 else "SIGINT", "exit_status": stopped_by,
            "timed_iters_done": iters, "timed_iters_asked": s.iters,
            "what": "the timed loop was stopped early: every statistic covers the iterations done",
        }
    return result


def _timed_loop(runner: StageRunner, iters: int, bar) -> tuple[dict[str, list[float]], int | None]:
    """Run the timed iterations: (stage -> samples, None), or after Ctrl-C / SIGTERM the samples
    of the iterations that completed and the exit status (130 / 143), so that what was measured
    is still reported and written. Stopped before any iteration completed: the interrupt goes on
    (there is nothing to report)."""
    from higherhrnet_trt.core.errors import interrupt_exit_code

    samples: dict[str, list[float]] = {}
    try:
        for _ in range(iters):
            for k, v in runner.iteration().items():
                samples.setdefault(k, []).append(v)
            bar.update()
    except KeyboardInterrupt as e:
        done = min((len(v) for v in samples.values()), default=0)
        if done == 0:
            raise
        # The signal may land between two stages' appends: keep whole iterations only.
        return {k: v[:done] for k, v in samples.items()}, interrupt_exit_code(e)
    return samples, None


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
        f"{s['warmup_iters']} warm-up + {s['timed_iters']} timed iterations",
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    from higherhrnet_trt.core.files import atomic_path

    with atomic_path(path) as tmp:  # the temporary name keeps the extension: same format
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
