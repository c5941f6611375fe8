"""Checkpoint -> ONNX: the PyTorch HigherHRNet, checkpoint loading, ONNX export, FP16/INT8 variants.

Needs torch (``pip install higherhrnet-trt[export]``); the runtime never imports this package.
"""

from __future__ import annotations

import importlib

#: public name -> module (relative) that defines it
_EXPORTS = {
    "export": ".api",
    "build_model": ".model",
    "HigherHRNet": ".model",
    "get_config": ".configs",
    "CONFIGS": ".configs",
    "ModelConfig": ".configs",
    # A model in memory (the trainer, references/train.py): weights into it, it into ONNX.
    "load_checkpoint": ".checkpoint",
    "export_onnx": ".onnx_export",
}


def __getattr__(name: str):
    # Looked up on use: .model imports torch at load, and importing higherhrnet_trt.export must not.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(module, __name__), name)


__all__ = ["export", "build_model", "HigherHRNet", "get_config", "CONFIGS", "ModelConfig", "load_checkpoint",
           "export_onnx"]
