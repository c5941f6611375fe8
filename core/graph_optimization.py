"""ONNX Runtime's graph optimisation levels by name: one table for the runtime's ONNX Runtime
backend, the quantizer's output comparison and the precision debugger."""

from __future__ import annotations

from .errors import UserError
from .lazy import lazy_import

ort = lazy_import("onnxruntime", "pip install onnxruntime")

#: The level names, highest first (``--graph-optimization`` adds "auto").
GRAPH_OPTIMIZATION = ("all", "extended", "basic", "disable")


def ort_optimization_level(name: str):
    """ONNX Runtime's GraphOptimizationLevel called ``name`` (one of GRAPH_OPTIMIZATION)."""
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    if name not in levels:
        raise UserError(f"graph optimisation must be one of {', '.join(levels)}, not {name!r}")
    return levels[name]
