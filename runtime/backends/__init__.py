"""Inference backends behind one interface (see base.Backend). Heavy libraries load lazily."""

from __future__ import annotations

import importlib
import os

from higherhrnet_trt.core.errors import UserError

from .base import Backend, TensorSpec

#: backend name -> "module:Class", imported only when that backend is asked for.
BACKENDS: dict[str, str] = {
    "onnxruntime": "higherhrnet_trt.runtime.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "openvino": "higherhrnet_trt.runtime.backends.openvino_backend:OpenVINOBackend",
    "tensorrt": "higherhrnet_trt.runtime.backends.tensorrt_backend:TensorRTBackend",
    "tensorrt-rtx": "higherhrnet_trt.runtime.backends.tensorrt_backend:TensorRTRTXBackend",
    "torch": "higherhrnet_trt.runtime.backends.torch_backend:TorchBackend",
    "triton": "higherhrnet_trt.runtime.backends.triton_backend:TritonBackend",
}


def register_backend(name: str, target: str) -> None:
    """Make a backend available to create_backend(); target is "module:Class"."""
    BACKENDS[name] = target


def default_backend_for(path: str) -> str:
    """The backend a model file implies: .onnx -> onnxruntime, engines -> tensorrt, checkpoints
    (.pth, .pth.tar, .pt) -> torch; triton://HOST:PORT/MODEL URLs -> triton."""
    if is_remote(path):
        return "triton"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        return "onnxruntime"
    if ext in (".engine", ".plan", ".trt"):
        return "tensorrt"
    if ext in (".pth", ".pt") or path.lower().endswith(".pth.tar"):
        return "torch"
    raise UserError(f"cannot tell the backend from {path!r}: expected a .onnx, .engine or .pth file")


def is_remote(path: str) -> bool:
    """True for a model served elsewhere (triton://, triton+grpc:// URLs), not a local file."""
    return str(path).lower().startswith(("triton://", "triton+http://", "triton+grpc://"))


def create_backend(path: str, backend: str = "auto", **options) -> Backend:
    """Construct (not activate) the backend for a model file.

    backend: "auto" (from the file extension) or a name in BACKENDS.
    options: passed to the backend's constructor (e.g. providers=..., threads=...; OpenVINO:
        device=..., threads=..., inference_precision=...).
    """
    name = default_backend_for(path) if backend == "auto" else backend
    return backend_class(name)(path, **options)


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (its module imports only NumPy and our own code: the
    heavy library loads in ``activate``). Its ``options`` say which ModelOptions it takes."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}")
    module_name, cls_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


__all__ = ["Backend", "TensorSpec", "BACKENDS", "backend_class", "create_backend", "register_backend",
           "is_remote"]
