"""Checkpoint -> ONNX: the PyTorch HigherHRNet, checkpoint loading, ONNX export, FP16/INT8 variants.

Needs torch (``pip install higherhrnet-trt[export]``); the runtime never imports this package.
"""

from __future__ import annotations


def __getattr__(name: str):
    # Lazy: importing higherhrnet_trt.export must not pull torch until something is used.
    if name == "export":
        from .api import export

        return export
    if name in ("build_model", "HigherHRNet"):
        from . import model

        return getattr(model, name)
    if name in ("get_config", "CONFIGS"):
        from . import configs

        return getattr(configs, name)
    raise AttributeError(name)


__all__ = ["export", "build_model", "HigherHRNet", "get_config", "CONFIGS"]
