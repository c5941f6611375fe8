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

import os
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError, interrupt_exit_code
from higherhrnet_trt.core.image_io import read_image
from higherhrnet_trt.core.preprocess import letterbox
from higherhrnet_trt.runtime.pipeline import Pipeline

from . import environment

# The result's layout, records and report forms (bench_result.py) and the GPU timing
# (gpu_timing.py) keep their old import path, higherhrnet_trt.benchmarks.bench (noqa: F401).
from .bench_result import (  # noqa: F401
    SCHEMA,
    STAGE_LABELS,
    STAGES,
    STAT_KEYS,
    _sha256_prefix,
    engine_record,
    format_report,
    host_record,
    latency_records,
    model_precision,
    not_applicable,
    plot,
    stage_records,
    stats_ms,
)

# CudaEvents is looked up here, at call time, by StageRunner: tests swap it for host-clock events.
from .gpu_timing import CudaEvents, StagedBackend, gpu_memory, is_staged  # noqa: F401

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
    decoder: str = "auto"  # runtime/options.DECODERS: "auto", "cpu" (compiled) or "numpy"
    progress: bool = True
    backend_options: dict[str, Any] = field(default_factory=dict)


def default_image() -> str:
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime",
                        "assets", "sample.jpg")


def _load_frame(path: str | None) -> np.ndarray:
    return read_image(path or default_image())


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
        self.s = s
        self.last_outputs: Mapping[str, np.ndarray] | None = None  # of the latest iteration()
        self.last_poses: list | None = None
        # person_thr 0: every candidate, as the official-style loop it is compared with keeps them.
        self.pipe = Pipeline(s.model, backend=s.backend, project2image=s.project2image, person_thr=0.0,
                             max_batch=max(1, s.batch), decoder=s.decoder, **s.backend_options)
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
        # Kept for callers that also look at what the iteration produced (compare, w32_table).
        self.last_outputs = outputs
        self.last_poses = self.decode(outputs, geometries)
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


@dataclass
class _Measured:
    """What the timed loop measured and what was read from the runner before it closed."""

    samples: dict[str, list[float]]  # stage -> ms per iteration
    stopped_by: int | None  # 130 / 143 when Ctrl-C / SIGTERM stopped the loop
    start: tuple[float, float, float]  # (wall, user CPU, system CPU) s at the loop's start
    end: tuple[float, float, float]
    busy0: float | None  # machine's busy CPU seconds at the start (/proc/stat), None: unknown
    busy1: float | None
    gpu_mem: dict[str, Any] | None
    meta: Any  # the model's ModelMeta
    fed_shape: list[int]
    backend: Any
    env: dict[str, Any]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    staged: bool
    decoder: str  # the decoder that ran: "cpu" (compiled) or "numpy"


def _check_settings(s: BenchSettings) -> None:
    if s.batch < 1 or s.iters < 1 or s.warmup < 0:
        raise UserError("--batch and --iters must be >= 1, --warmup >= 0")
    if not os.path.isfile(s.model):
        raise UserError(f"model file not found: {s.model}")


def _tensor_specs(tensors) -> list[dict[str, Any]]:
    return [{"name": t.name, "shape": list(t.shape), "dtype": str(np.dtype(t.dtype))} for t in tensors]


def _measure(runner: StageRunner, s: BenchSettings) -> _Measured:
    """Warm-up, the timed loop (with the machine's CPU use around it), then the facts the result
    needs from the runner while it is still open."""
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
    backend = runner.backend
    return _Measured(
        samples=samples, stopped_by=stopped_by, start=start, end=end, busy0=busy0, busy1=busy1,
        gpu_mem=gpu_memory(backend), meta=runner.pipe.meta,
        fed_shape=list(runner.preprocess()[0].shape), backend=backend,
        env=environment.collect(backend.name, backend), inputs=_tensor_specs(backend.inputs),
        outputs=_tensor_specs(backend.outputs), staged=runner.staged,
        decoder=runner.pipe.active_decoder,
    )


def _result(s: BenchSettings, m: _Measured) -> dict[str, Any]:
    """The JSON-able result (layout: module docstring, SCHEMA) from what was measured."""
    iters = len(m.samples["end_to_end"])  # s.iters unless Ctrl-C / SIGTERM stopped the loop
    wall = m.end[0] - m.start[0]
    images = s.batch * iters
    gpu_eps = _gpu_backend_note(m.backend)
    stages = stage_records(m.samples, m.staged, m.backend.name, gpu_eps)
    meta = m.meta
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {
            "path": os.path.abspath(s.model), "sha256_16": _sha256_prefix(s.model),
            "config": meta.config_name, "dataset": meta.dataset, "flip_test": meta.flip,
            "random_weights": meta.random_weights, "outputs_layout": meta.outputs,
            **model_precision(s.model, meta.precision), "inputs": m.inputs, "outputs": m.outputs,
            "engine": engine_record(s.model),
        },
        "settings": {
            "backend": m.backend.name, "batch": s.batch, "fed_input_shape": m.fed_shape,
            "input_size": list(s.input_size) if s.input_size else None,
            "warmup_iters": s.warmup, "timed_iters": iters, "cuda_graph": s.cuda_graph,
            "image": os.path.abspath(s.image or default_image()),
            "project2image": s.project2image, "decoder": m.decoder,
            "clock": "cuda_events" if m.staged else "perf_counter",
            "backend_options": {k: (list(v) if isinstance(v, (list, tuple)) else v)
                                for k, v in s.backend_options.items()},
        },
        "environment": m.env,
        "stages": stages,
        "latency": latency_records(stages, m.samples, m.staged, gpu_eps),
        "throughput": {
            "images_per_s": images / wall, "batches_per_s": iters / wall, "images": images,
            "wall_s": wall,
            "what": "images of the timed loop / its host wall time (end to end, one stream, "
                    "no overlap between iterations)",
        },
        "host": host_record(m.start, m.end, m.busy0, m.busy1, _peak_rss_mib()),
        "gpu_memory": m.gpu_mem if m.gpu_mem is not None else not_applicable("no GPU on this machine"),
        "samples_ms": {k: [round(v, 4) for v in m.samples[k]] for k in ("end_to_end", "inference")},
    }
    if m.stopped_by is not None:
        result["interrupted"] = {
            "signal": "SIGTERM" if m.stopped_by == 143 else "SIGINT", "exit_status": m.stopped_by,
            "timed_iters_done": iters, "timed_iters_asked": s.iters,
            "what": "the timed loop was stopped early: every statistic covers the iterations done",
        }
    return result


def run_bench(s: BenchSettings) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-able result (layout: module docstring, SCHEMA)."""
    _check_settings(s)
    runner = StageRunner(s)
    try:
        measured = _measure(runner, s)
    finally:
        runner.close()
    return _result(s, measured)


def _timed_loop(runner: StageRunner, iters: int, bar) -> tuple[dict[str, list[float]], int | None]:
    """Run the timed iterations: (stage -> samples, None), or after Ctrl-C / SIGTERM the samples
    of the iterations that completed and the exit status (130 / 143), so that what was measured
    is still reported and written. Stopped before any iteration completed: the interrupt goes on
    (there is nothing to report)."""
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
