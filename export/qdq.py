"""INT8 Q/DQ graph: where ModelOpt places the quantizers, and writing our scales into them.

Placement (steps 1 and 3 of quantize.py's recipe): ModelOpt's ONNX PTQ (explicit Q/DQ,
per-channel weight scales, TensorRT's placement rules, concat groups sharing a scale, non-quantized
layers in ``high_precision``) on one calibration image decides *where* Q/DQ pairs go; placement
depends on the graph only. :func:`find_placement` reads that graph back: which fp32 activation
each quantizer measures, and which activations must share one scale. :func:`apply_scales` then
writes the scales calibrated by calib_ranges.py into the placed graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.core.lazy import lazy_import

from .quant_common import quiet

numpy_helper = lazy_import("onnx.numpy_helper")
onnx = lazy_import("onnx")

#: Symmetric int8 range ONNX Runtime and TensorRT use for activations: [-127, 127].
INT8_MAX = 127.0


@dataclass
class Placement:
    """Where ModelOpt put activation Q/DQ pairs: fp32 tensor -> scale initializers to set."""

    scales: dict[str, set[str]]  # fp32 activation tensor -> names of its Q and DQ scale initializers
    groups: list[set[str]]  # tensors that must share one scale (concat elimination)

    def group_of(self) -> dict[str, frozenset[str]]:
        out = {t: frozenset([t]) for t in self.scales}
        for g in self.groups:
            fg = frozenset(g)
            for t in g:
                out[t] = fg
        return out


def place_qdq(work_in: str, input_name: str, data: np.ndarray, high_precision: str, tmpdir: str,
              fp32_model):
    """ModelOpt's PTQ on one input batch ``data`` of ``work_in`` (a private copy: ModelOpt writes
    files next to its input). Returns (placed ONNX model, Placement)."""
    from modelopt.onnx.quantization import quantize as modelopt_quantize

    placed_path = os.path.join(tmpdir, "placed.onnx")
    with quiet():
        modelopt_quantize(
            work_in, quantize_mode="int8", calibration_data={input_name: data},
            calibration_method="max", calibration_eps=["cpu"], output_path=placed_path,
            high_precision_dtype=high_precision, log_level="CRITICAL",
        )
    placed = onnx.load_model(placed_path)
    return placed, find_placement(placed, fp32_model)


# -- reading the placed graph -----------------------------------------------------------------------
class _QdqGraph:
    """Lookups over a ModelOpt Q/DQ graph, and the way back to the fp32 graph's tensor names
    through the Casts its fp16 conversion adds."""

    def __init__(self, placed, fp32_model) -> None:
        self.nodes = list(placed.graph.node)
        self.inits = {i.name for i in placed.graph.initializer}
        self.producers = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.fp32_tensors = {i.name for i in fp32_model.graph.input}
        self.fp32_tensors |= {o for n in fp32_model.graph.node for o in n.output}
        self.q_source: dict[str, str] = {}  # Q output tensor -> fp32 activation

    def trace(self, name: str) -> str | None:
        """The fp32 tensor ``name`` is (through at most 16 Casts), or None."""
        seen = 0
        while name not in self.fp32_tensors and seen < 16:
            node = self.producers.get(name)
            if node is None or node.op_type != "Cast":
                return None
            name = node.input[0]
            seen += 1
        return name if name in self.fp32_tensors else None

    def is_cast_weight(self, x: str) -> bool:
        """A weight reached through Casts of an initializer."""
        node = self.producers.get(x)
        while node is not None and node.op_type == "Cast":
            x = node.input[0]
            node = self.producers.get(x)
        return x in self.inits

    def dq_source(self, tensor: str) -> str | None:
        """The fp32 activation whose DequantizeLinear (through Casts) produces ``tensor``."""
        node = self.producers.get(tensor)
        while node is not None and node.op_type == "Cast":
            node = self.producers.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear":
            return None
        return self.q_source.get(node.input[0])


def _activation_scales(g: _QdqGraph) -> dict[str, set[str]]:
    """fp32 activation -> its Q and DQ scale initializers (weights skipped); fills g.q_source."""
    scales: dict[str, set[str]] = {}
    for q in g.nodes:
        if q.op_type != "QuantizeLinear":
            continue
        x = q.input[0]
        producer = g.producers.get(x)
        if x in g.inits or (producer is not None and producer.op_type in ("Constant",)):
            continue  # weight
        src = g.trace(x)
        if src is None:
            # a weight reached through a Cast of an initializer is fine; anything else is not
            if g.is_cast_weight(x):
                continue
            raise RuntimeError(f"unexpected Q/DQ graph from ModelOpt: cannot trace {q.input[0]!r} "
                               "to the fp32 graph (unsupported nvidia-modelopt version?)")
        names = scales.setdefault(src, set())
        names.add(q.input[1])
        g.q_source[q.output[0]] = src
        for dq in g.consumers.get(q.output[0], []):
            if dq.op_type == "DequantizeLinear":
                names.add(dq.input[1])
    return scales


def _concat_groups(g: _QdqGraph, scales: Mapping[str, set[str]]) -> list[set[str]]:
    """Activations that must share one scale: the quantized inputs of each Concat (and its
    quantized output), overlapping groups merged."""
    groups: list[set[str]] = []
    for n in g.nodes:
        if n.op_type != "Concat":
            continue
        members = [g.dq_source(i) for i in n.input]
        if not members or any(m is None for m in members):
            continue
        group = set(members)
        out_src = g.trace(n.output[0])
        if out_src in scales:
            group.add(out_src)
        if len(group) > 1:
            groups.append(group)
    merged: list[set[str]] = []  # union of overlapping groups
    for grp in groups:
        for m in [m for m in merged if m & grp]:
            grp |= m
            merged.remove(m)
        merged.append(grp)
    return merged


def find_placement(placed, fp32_model) -> Placement:
    """Activation quantizers of a ModelOpt Q/DQ graph, traced back (through the Casts its fp16
    conversion adds) to tensor names of the fp32 graph, and its concat groups."""
    g = _QdqGraph(placed, fp32_model)
    scales = _activation_scales(g)
    return Placement(scales, _concat_groups(g, scales))


# -- writing the scales -----------------------------------------------------------------------------
def apply_scales(placed, placement: Placement, ranges: Mapping[str, float]) -> None:
    """Write scale = max|x| / 127 (float32 arithmetic, as ONNX Runtime) into every activation
    Q / DQ scale initializer, in the initializer's own dtype (fp16 with fp16 high precision)."""
    index = {init.name: k for k, init in enumerate(placed.graph.initializer)}
    for tensor, names in placement.scales.items():
        amax = np.float32(ranges[tensor])
        scale = np.float32(1.0) if amax == 0 else amax / np.float32(INT8_MAX)
        for name in names:
            if name not in index:
                raise RuntimeError(f"scale {name!r} is not an initializer (unsupported ModelOpt graph)")
            old = placed.graph.initializer[index[name]]
            arr = numpy_helper.to_array(old)
            new = numpy_helper.from_array(np.full(arr.shape, scale, dtype=arr.dtype), name)
            old.CopyFrom(new)
