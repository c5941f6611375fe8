"""TensorRT / TensorRT-RTX engines behind the Backend interface, with cuda-python for memory.

activate(): the sidecar is read and checked first (engine built for this TensorRT flavour and
version, and this GPU's compute capability; otherwise one line with the exact rebuild command),
then the engine is deserialised, device buffers are allocated once at the profile's largest
shapes, output host buffers are pinned, and a CUDA stream is created. infer(): inputs are copied
host -> device on the stream, ``execute_async_v3`` runs, outputs come back device -> host, one
synchronisation. Nothing is allocated per call.

The API used (Runtime, deserialize_cuda_engine, num_io_tensors, get_tensor_name/mode/dtype/shape,
get_tensor_profile_shape, set_input_shape, set_tensor_address, execute_async_v3) is the same in
TensorRT 10.x, 11.x and TensorRT-RTX 1.x; only the module name differs (engine.flavors).
Version-compatible engines also run on ``tensorrt_lean`` where only the lean runtime is installed.

cuda-python: ``cuda.bindings.runtime`` (cuda-python >= 12.6) or ``cuda.cudart`` (older 12.x, e.g.
some JetPack images). Imported lazily: a machine without them pays nothing until it asks for an
engine.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Mapping

import numpy as np

from higherhrnet_trt.core.cuda import check as _check
from higherhrnet_trt.core.errors import BackendUnavailable, CudaError, UserError
from higherhrnet_trt.core.gpu import query_gpu
from higherhrnet_trt.core.lazy import import_cudart
from higherhrnet_trt.core.metadata import ModelMeta

from ...engine.flavors import INSTALL_HINT, MODULES
from ...engine.jetson import check_jetson
from ...engine.sidecar import check_compatible, check_engine_file, read_sidecar
from .base import Backend, TensorSpec

log = logging.getLogger("higherhrnet_trt")


def _runtime_module(flavor_name: str, version_compatible: bool):
    """The TensorRT module to deserialise with: the builder's flavour, or the lean runtime for a
    version-compatible engine when the full library is absent."""
    import importlib

    candidates = [MODULES[flavor_name]]
    if version_compatible and flavor_name == "tensorrt":
        candidates.append("tensorrt_lean")
    for name in candidates:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        except Exception:  # a broken install (missing CUDA libraries)
            continue
        if hasattr(module, "Runtime"):
            if flavor_name == "tensorrt":  # JetPack older than 6.1 / TensorRT 10.3: one line

                check_jetson(str(getattr(module, "__version__", "")) or None)
            return module
    raise BackendUnavailable(f"this engine needs {flavor_name}, which is not importable here: "
                             f"{INSTALL_HINT[flavor_name]}")


class TensorRTBackend(Backend):
    """Runs a serialized engine written by ``higherhrnet-trt build`` (its ``.json`` sidecar beside it).

    flavor: "auto" (the one the sidecar names), "tensorrt" or "tensorrt-rtx".
    device: CUDA device index.
    """

    name = "tensorrt"
    default_flavor = "auto"

    def __init__(self, path: str, flavor: str | None = None, device: int = 0) -> None:
        super().__init__(path)
        self.flavor = flavor or self.default_flavor
        self.device = device
        self.warnings: list[str] = []
        self._meta: ModelMeta | None = None
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        self._cudart = None
        self._runtime = self._engine = self._context = self._stream = None
        self._device_ptrs: dict[str, int] = {}
        self._host_ptrs: list[int] = []
        self._host: dict[str, np.ndarray] = {}  # pinned, flat, max size
        self._dtypes: dict[str, np.dtype] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._keep: list[np.ndarray] = []
        self._graph = self._graph_exec = None

    # -- lifecycle -------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        if self.path.lower().endswith(".onnx"):  # not "rebuild with build -o model.onnx"
            stem = os.path.splitext(self.path)[0]
            raise UserError(f"{self.path} is an ONNX file and the {self.name} backend runs engines: build "
                            f"one with 'higherhrnet-trt build {self.path} -o {stem}.engine' and run "
                            "that, or run the ONNX with --backend onnxruntime")
        if not os.path.isfile(self.path):
            raise UserError(f"engine file not found: {self.path}")
        sidecar = read_sidecar(self.path)
        check_engine_file(self.path, sidecar)
        flavor = sidecar.flavor if self.flavor == "auto" else self.flavor
        gpu = query_gpu(self.device)
        if gpu is None:  # an engine cannot run on the CPU: point at the ONNX it was built from
            onnx_path = sidecar.onnx.get("path") or "the ONNX it was built from"
            raise BackendUnavailable(f"{self.path} is a TensorRT engine and this machine has no NVIDIA "
                                     f"driver or GPU: run it where the GPU is, or run {onnx_path} "
                                     "with --backend onnxruntime here")
        trt = _runtime_module(flavor, sidecar.version_compatible)
        version = str(getattr(trt, "__version__", "unknown"))
        self.warnings = check_compatible(sidecar, flavor, version, gpu, self.path)
        for w in self.warnings:
            log.warning(w)
        self._meta = sidecar.meta()

        cudart = self._cudart = import_cudart()
        _check(cudart.cudaSetDevice(self.device), "cudaSetDevice")
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        if sidecar.version_compatible and hasattr(self._runtime, "engine_host_code_allowed"):
            self._runtime.engine_host_code_allowed = True  # the lean runtime embedded in the engine
        with open(self.path, "rb") as f:
            self._engine = self._runtime.deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise UserError(f"{self.path}: TensorRT could not deserialize the engine (corrupt, or built "
                            f"by another version/GPU); rebuild it: {sidecar.rebuild_command()}")
        self._context = self._engine.create_execution_context()
        self._stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._allocate(trt)

    def _allocate(self, trt) -> None:
        """Device buffers for every I/O tensor at its largest shape; pinned host buffers for outputs."""
        engine, context, cudart = self._engine, self._context, self._cudart
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in inputs:
            shape = tuple(engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                _, _, max_shape = engine.get_tensor_profile_shape(name, 0)
                context.set_input_shape(name, tuple(max_shape))
            self._inputs.append(TensorSpec(name, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            self._dtypes[name] = dtype
            max_shape = tuple(context.get_tensor_shape(name))
            nbytes = max(int(np.prod(max_shape)) * dtype.itemsize, 1)
            self._device_ptrs[name] = int(_check(cudart.cudaMalloc(nbytes), "cudaMalloc"))
            context.set_tensor_address(name, self._device_ptrs[name])
            if name not in inputs:
                self._outputs.append(TensorSpec(name, tuple(engine.get_tensor_shape(name)), dtype))
                ptr = int(_check(cudart.cudaMallocHost(nbytes), "cudaMallocHost"))
                self._host_ptrs.append(ptr)
                count = nbytes // dtype.itemsize
                buf = (ctypes.c_byte * nbytes).from_address(ptr)
                self._host[name] = np.frombuffer(buf, dtype=dtype, count=count)

    def deactivate_impl(self) -> None:
        cudart = self._cudart
        if cudart is not None:
            if self._stream is not None:
                cudart.cudaStreamSynchronize(self._stream)
            if self._graph_exec is not None:
                cudart.cudaGraphExecDestroy(self._graph_exec)
                cudart.cudaGraphDestroy(self._graph)
            for ptr in self._device_ptrs.values():
                cudart.cudaFree(ptr)
            for ptr in self._host_ptrs:
                cudart.cudaFreeHost(ptr)
            if self._stream is not None:
                cudart.cudaStreamDestroy(self._stream)
        self._device_ptrs.clear()
        self._host_ptrs.clear()
        self._host.clear()
        self._inputs, self._outputs = [], []
        self._context = self._engine = self._runtime = self._stream = None
        self._graph = self._graph_exec = None

    # -- inference ---------------------------------------------------------------------------------
    # The stages are public (benchmarks.bench.StagedBackend) so the bench can time H2D, GPU compute
    # and D2H apart with CUDA events; infer_impl() is the four of them in a row.
    @property
    def cuda_stream(self):
        return self._stream

    def copy_inputs_async(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Host -> device copies of the inputs on the stream (sets the input shapes too)."""
        cudart, context = self._cudart, self._context
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._keep = []  # host arrays must outlive the async copies
        for name, arr in feeds.items():
            arr = np.ascontiguousarray(arr, dtype=self._dtypes[name])
            self._keep.append(arr)
            current = tuple(context.get_tensor_shape(name))
            if current != arr.shape and not context.set_input_shape(name, arr.shape):
                raise UserError(f"input {name!r} of shape {arr.shape} is outside the engine's "
                                "optimisation profile; rebuild with --min-shape/--max-shape covering it")
            _check(cudart.cudaMemcpyAsync(self._device_ptrs[name], arr.ctypes.data, arr.nbytes, h2d,
                                          self._stream), "cudaMemcpyAsync H2D")

    def execute_async(self) -> None:
        """Enqueue the network (or replay its CUDA graph) on the stream."""
        if self._graph_exec is not None:
            _check(self._cudart.cudaGraphLaunch(self._graph_exec, self._stream), "cudaGraphLaunch")
        elif not self._context.execute_async_v3(self._stream):
            raise CudaError("TensorRT execute_async_v3 failed (see the TensorRT log above)")

    def copy_outputs_async(self) -> None:
        """Device -> pinned host copies of the outputs (their current shapes) on the stream."""
        cudart, context = self._cudart, self._context
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._shapes = {}
        for spec in self._outputs:
            shape = tuple(context.get_tensor_shape(spec.name))
            self._shapes[spec.name] = shape
            host = self._host[spec.name]
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, self._device_ptrs[spec.name],
                                          int(np.prod(shape)) * host.itemsize, d2h, self._stream),
                   "cudaMemcpyAsync D2H")

    def synchronize(self) -> None:
        _check(self._cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        self._keep = []

    def host_outputs(self) -> dict[str, np.ndarray]:
        """Views of the pinned buffers (valid until the next call): copy what you keep."""
        return {name: self._host[name][: int(np.prod(s))].reshape(s) for name, s in self._shapes.items()}

    def enable_cuda_graph(self) -> None:
        """Capture execute_async once (current input shapes) and replay it from now on: saves the
        per-launch CPU cost of TensorRT's enqueue. Shapes must not change afterwards."""
        cudart = self._cudart
        if not self._context.execute_async_v3(self._stream):  # TensorRT needs one run before capture
            raise CudaError("TensorRT execute_async_v3 failed before graph capture")
        self.synchronize()
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        _check(cudart.cudaStreamBeginCapture(self._stream, mode), "cudaStreamBeginCapture")
        self._context.execute_async_v3(self._stream)
        graph = _check(cudart.cudaStreamEndCapture(self._stream), "cudaStreamEndCapture")
        self._graph = graph
        self._graph_exec = _check(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    @property
    def device_memory_bytes(self) -> int:
        """Activation memory TensorRT needs (engine weights not included)."""
        engine = self._engine
        size = getattr(engine, "device_memory_size_v2", None)
        return int(size if size is not None else engine.device_memory_size)

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.copy_inputs_async(feeds)
        self.execute_async()
        self.copy_outputs_async()
        self.synchronize()
        return {name: arr.copy() for name, arr in self.host_outputs().items()}

    # -- description -------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    @property
    def metadata(self) -> ModelMeta:
        if self._meta is None:
            raise RuntimeError("metadata is known once the backend is active")
        return self._meta


class TensorRTRTXBackend(TensorRTBackend):
    """An engine built by TensorRT-RTX (``build --backend tensorrt-rtx``)."""

    name = "tensorrt-rtx"
    default_flavor = "tensorrt-rtx"
