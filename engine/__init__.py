"""ONNX -> TensorRT / TensorRT-RTX engine with a JSON sidecar; engine inspection and checks.

    from higherhrnet_trt.engine import build_engine, read_sidecar, check_compatible
    build_engine("model.fp16.onnx", "model.engine")          # strongly typed, precision from the ONNX
    sidecar = read_sidecar("model.engine")                   # model.engine.json

Everything that differs between TensorRT 10, 11 and TensorRT-RTX is in ``flavors``. Nothing here
imports TensorRT until a function that needs it runs.
"""

from __future__ import annotations

_LAZY = {
    "build_engine": ("build", "build_engine"),
    "BuildReport": ("build", "BuildReport"),
    "load_flavor": ("flavors", "load_flavor"),
    "Flavor": ("flavors", "Flavor"),
    "read_sidecar": ("sidecar", "read_sidecar"),
    "check_compatible": ("sidecar", "check_compatible"),
    "check_engine_file": ("sidecar", "check_engine_file"),
    "sidecar_path": ("sidecar", "sidecar_path"),
    "Sidecar": ("sidecar", "Sidecar"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        target = module if module.startswith("higherhrnet_trt.") else f"{__name__}.{module}"
        return getattr(importlib.import_module(target), attr)
    raise AttributeError(name)


__all__ = list(_LAZY)
