"""Are two ONNX files one network (fp32 and its fp16 / INT8 variant)? For ``debug-precision``.

A layer-by-layer comparison of two unrelated networks prints tables that look like a precision
problem; this refuses them first, in one line. Evidence, cheapest first:

1. the record ``convert`` and ``calibrate`` leave in the variant (``higherhrnet_trt.derived_from``:
   the sha256 of the fp32 file it was made from), when present: it must be this reference;
2. the same inputs and outputs (names, shapes) and the same model metadata (config, joints, input
   size, flip test, output layout);
3. the same graph: most tensor names of the reference appear in the variant (AutoCast and
   ModelOpt keep the original node output names);
4. the same weights: float weights that share a name agree to fp16 rounding (variants without the
   record of 1 made from other weights of the same architecture).
"""

from __future__ import annotations

import json

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import sha256_file
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import PREFIX

from .onnx_info import load_model

numpy_helper = lazy_import("onnx.numpy_helper")

#: metadata_props key (with PREFIX) under which convert / calibrate record their fp32 source.
DERIVED_FROM = "derived_from"
#: Metadata fields two variants of one network share.
SAME_META = ("model_name", "config_name", "dataset", "joint_names", "input_size", "flip", "outputs")


def derived_from_record(onnx_in: str) -> dict:
    """The record a variant keeps of its fp32 source (for core.metadata.copy_metadata overrides)."""
    return {"sha256": sha256_file(onnx_in), "precision": "fp32"}


def _io(summary) -> list[tuple]:
    return [(t.name, tuple(t.dims)) for t in summary.inputs + summary.outputs]


def _weights_differ(ref_model, var_model) -> tuple[int, int]:
    """(float weights sharing a name and size, how many of them differ beyond fp16 rounding)."""
    floats = (1, 10)  # FLOAT, FLOAT16
    ref = {i.name: i for i in ref_model.graph.initializer if i.data_type in floats}
    shared = differ = 0
    for init in var_model.graph.initializer:
        other = ref.get(init.name)
        if other is None or init.data_type not in floats or np.prod(init.dims) < 16:
            continue
        a = numpy_helper.to_array(other).astype(np.float32)
        b = numpy_helper.to_array(init).astype(np.float32)
        if a.shape != b.shape:
            continue
        shared += 1
        if not np.allclose(a, b, rtol=2e-3, atol=1e-4 * max(float(np.abs(a).max()), 1e-6)):
            differ += 1
    return shared, differ


def check_related(ref_path: str, var_path: str, ref, var) -> None:
    """UserError (one line) unless ``var_path`` is a variant of the network in ``ref_path``.

    ref, var: their onnx_info.OnnxSummary. Loads both graphs (weights included) once.
    """
    fix = f"pass the fp32 ONNX that {var_path} was converted or calibrated from"
    record = var.props.get(PREFIX + DERIVED_FROM)
    if record:
        try:
            sha = json.loads(record).get("sha256", "")
        except (ValueError, AttributeError):
            sha = ""
        if sha and sha != sha256_file(ref_path):
            raise UserError(f"{var_path} was made from another fp32 file (sha256 {sha[:16]}...), not "
                            f"{ref_path}: {fix}")
    if _io(ref) != _io(var):
        raise UserError(f"{ref_path} and {var_path} are different networks (inputs/outputs "
                        f"{_io(ref)} vs {_io(var)}): {fix}")
    if ref.has_meta and var.has_meta:
        a, b = ref.meta(), var.meta()
        diff = [k for k in SAME_META if getattr(a, k) != getattr(b, k)]
        if diff:
            raise UserError(f"{ref_path} and {var_path} are different networks ({', '.join(diff)} "
                            f"differ: {getattr(a, diff[0])!r} vs {getattr(b, diff[0])!r}): {fix}")
    if record:
        return  # the record names this very reference: graph and weights are its own
    ref_model, var_model = load_model(ref_path), load_model(var_path)
    names = {o for n in ref_model.graph.node for o in n.output if o}
    shared = names & {o for n in var_model.graph.node for o in n.output if o}
    if len(shared) < 0.5 * len(names):
        raise UserError(f"{ref_path} and {var_path} share {len(shared)} of {len(names)} tensor names: "
                        f"different graphs, nothing to compare layer by layer; {fix}")
    compared, differ = _weights_differ(ref_model, var_model)
    if compared and differ > compared // 2:
        raise UserError(f"{ref_path} and {var_path} have the same architecture but other weights "
                        f"({differ} of {compared} weight tensors differ beyond fp16 rounding): {fix}")
