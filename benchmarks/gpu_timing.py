"""GPU stage timing for the bench (bench.py): the StagedBackend protocol, CUDA events, device memory.

Written against the documented cuda-python API (``cudaEventCreate / Record / Synchronize /
ElapsedTime``, ``cudaMemGetInfo``), imported lazily: a CPU machine never loads it.
"""

from __future__ import annotations

import os
from typing import Any

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.gpu import query_gpu

from .environment import _run, import_cudart


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
