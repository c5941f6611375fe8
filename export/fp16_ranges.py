"""Bounded fp16 conversion: measure every tensor's range in-graph, keep fp32 only where fp16 can't.

ModelOpt AutoCast's range rule runs the fp32 model with *every* intermediate tensor as an output
and keeps all of them for all check inputs (its ReferenceRunner): about 2.8 GB of tensors per
input on HRNet-W32 at 512 px, which grew past 23 GB. Here each float tensor ``x`` gets two extra
graph outputs, ``ReduceMax(x)`` and ``ReduceMin(x)`` (scalars), so one ONNX Runtime run per input
measures max |x| of every tensor while ONNX Runtime frees the tensors as usual: memory is one
inference's, time about one inference per input.

The nodes whose inputs or outputs exceed ``data_max`` (AutoCast's default, 512: fp16's spacing is
0.5 there) on any input, or whose weights exceed fp16's range, stay fp32 (AutoCast's own rules, fed
with our measurements through its ``custom_rule`` hook); AutoCast's PrecisionConverter casts the
rest (``convert_to_mixed_precision`` with ``data_max=inf``, which skips its reference runner).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np

from higherhrnet_trt.core.lazy import lazy_import

from .quant_common import quiet
from .taps import insert_after_producers, tapped_session

helper = lazy_import("onnx.helper")
onnx = lazy_import("onnx")

#: AutoCast's default: activations beyond this stay fp32 (fp16's spacing is 0.5 at 512).
DATA_MAX = 512.0
_FLOAT = 1  # onnx.TensorProto.FLOAT


def _float_tensors(model) -> list[str]:
    """Names of the float32 tensors produced by nodes (after ONNX type inference), graph order."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
             + list(inferred.graph.input)}
    del inferred
    seen, names = set(), []
    for node in model.graph.node:
        for out in node.output:
            if out and out not in seen and types.get(out) == _FLOAT:
                seen.add(out)
                names.append(out)
    return names


def add_range_outputs(model, tensors: list[str]) -> dict[str, tuple[str, str]]:
    """Add ReduceMax / ReduceMin (all axes, scalar) of each of ``tensors`` as graph outputs of
    ``model`` (in place), each placed right after the node making its tensor (taps.py): ONNX
    Runtime runs nodes in this order, so every tensor is reduced (and can be freed) as soon as it
    exists. Returns {tensor: (max output, min output)}."""
    produced = {out for node in model.graph.node for out in node.output}
    outs, taps = {}, {}
    for i, t in enumerate(dict.fromkeys(tensors)):
        if t not in produced:
            continue
        hi, lo = f"__range_max_{i}", f"__range_min_{i}"
        taps[t] = [helper.make_node("ReduceMax", [t], [hi], name=f"__range_max_n{i}", keepdims=0),
                   helper.make_node("ReduceMin", [t], [lo], name=f"__range_min_n{i}", keepdims=0)]
        for name in (hi, lo):
            model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, []))
        outs[t] = (hi, lo)
    insert_after_producers(model, taps)
    return outs


def measure_absmax(onnx_path: str, feeds: Iterable[Mapping[str, np.ndarray]], tmpdir: str,
                   bar=None) -> tuple[dict[str, float], int]:
    """max |x| of every float tensor of ``onnx_path`` over ``feeds`` (graph inputs included).

    One ONNX Runtime run per feed with scalar range outputs (see module docstring): memory stays
    one inference's whatever the network. Returns ({tensor: max |x|}, number of feeds).
    """
    model = onnx.load_model(onnx_path)
    tensors = _float_tensors(model)
    outs = add_range_outputs(model, tensors)
    # No graph optimisation: every tensor is computed as written (as AutoCast's reference runner).
    session = tapped_session(model, os.path.join(tmpdir, "ranges.onnx"), optimise=False,
                             priority_order=True)
    del model
    fetch = [n for t in tensors for n in outs[t]]
    absmax: dict[str, float] = dict.fromkeys(tensors, 0.0)
    count = 0
    for feed in feeds:
        values = session.run(fetch, dict(feed))
        for k, t in enumerate(tensors):
            hi, lo = float(values[2 * k]), float(values[2 * k + 1])
            absmax[t] = max(absmax[t], abs(hi), abs(lo))
        for name, arr in feed.items():
            absmax[name] = max(absmax.get(name, 0.0), float(np.abs(arr).max(initial=0.0)))
        count += 1
        if bar is not None:
            bar.update(1)
    return absmax, count


def measured_range_rule(absmax: Mapping[str, float], data_max: float = DATA_MAX):
    """An AutoCast ``custom_rule``: keep a node fp32 when any of its inputs or outputs had
    |x| > ``data_max`` (or NaN / inf) on the measured inputs. ``rule.kept`` lists those nodes."""
    from modelopt.onnx.autocast.nodeclassifier import NodeRuleBase

    class MeasuredRangeRule(NodeRuleBase):
        def __init__(self):
            self.kept: list[tuple[str, str, float]] = []  # (node, tensor, max |x|)

        def _check_inner(self, node):
            for name in list(node.input) + list(node.output):
                v = absmax.get(name)
                if v is not None and not v <= data_max:  # NaN and inf too
                    self.kept.append((node.name, name, v))
                    return True
            return False

    return MeasuredRangeRule()


def convert_measured(onnx_in: str, absmax: Mapping[str, float], keep_io_fp32: bool,
                     exclude: list[str], data_max: float = DATA_MAX):
    """fp32 ONNX file -> strongly typed fp16 ModelProto, fp32 kept where ``absmax`` needs it and
    for nodes matching ``exclude`` (regular expressions). Returns (model, rule with .kept)."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    rule = measured_range_rule(absmax, data_max)
    with quiet():
        model = convert_to_mixed_precision(
            onnx_in, low_precision_type="fp16", keep_io_types=keep_io_fp32,
            nodes_to_exclude=exclude or None, data_max=np.inf, custom_rule=rule,
            calibration_data=None, providers=["cpu"],
        )
    return model, rule
