"""What an ONNX file is: precision (fp32 / fp16 / int8 Q/DQ), inputs and outputs, metadata, hash.

Shared by the builder (which picks the strongly typed path from the precision found here), the
quantizer and ``higherhrnet-trt info``. Needs only the ``onnx`` package.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import WEIGHTS_KEY, ModelMeta, initializer_array, weights_digest

onnx = lazy_import("onnx")

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclass
class TensorDesc:
    """An ONNX graph input or output: dims are ints, or names for dynamic axes."""

    name: str
    dims: list  # int | str
    dtype: str  # "float32", "float16", ...

    @property
    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) or d < 0 for d in self.dims)

    def shape_text(self) -> str:
        return "x".join(str(d) for d in self.dims)


@dataclass
class OnnxSummary:
    path: str
    precision: str  # "fp32" | "fp16" | "int8" | "fp8"
    opset: int
    producer: str
    inputs: list[TensorDesc]
    outputs: list[TensorDesc]
    op_counts: dict[str, int] = field(default_factory=dict)
    initializer_bytes: dict[str, int] = field(default_factory=dict)  # dtype -> bytes
    props: dict[str, str] = field(default_factory=dict)

    def meta(self) -> ModelMeta:
        """The embedded ModelMeta; UserError (one line) when the file has none."""
        try:
            return ModelMeta.from_props(self.props)
        except ValueError as e:
            raise UserError(f"{self.path}: {e}") from None

    @property
    def has_meta(self) -> bool:
        return any(k.startswith("higherhrnet_trt.") for k in self.props)


def _dtype_name(elem_type: int) -> str:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except Exception:  # exotic types (fp8, int4) have no plain numpy dtype
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def _desc(value_info) -> TensorDesc:
    t = value_info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return TensorDesc(value_info.name, dims, _dtype_name(t.elem_type))


def model_precision(model) -> str:
    """"int8" (Q/DQ with int8 zero points), "fp8", "fp16" (any float16 compute) or "fp32"."""
    inits = {i.name: i for i in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in QDQ_OPS]
    if qdq:
        for n in qdq:
            if len(n.input) > 2 and n.input[2] in inits:
                zp_type = inits[n.input[2]].data_type
                if zp_type in (onnx.TensorProto.FLOAT8E4M3FN, onnx.TensorProto.FLOAT8E5M2):
                    return "fp8"
        return "int8"
    f16 = onnx.TensorProto.FLOAT16
    if any(i.data_type == f16 for i in model.graph.initializer):
        return "fp16"
    for n in model.graph.node:
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == f16:
                    return "fp16"
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == f16:
                    return "fp16"
    if any(v.type.tensor_type.elem_type == f16 for v in list(model.graph.value_info)
           + list(model.graph.input) + list(model.graph.output)):
        return "fp16"
    return "fp32"


def summarize_model(model, path: str = "") -> OnnxSummary:
    """OnnxSummary of an in-memory ModelProto."""
    inits = {i.name for i in model.graph.initializer}
    nbytes: Counter = Counter()
    for i in model.graph.initializer:
        nbytes[_dtype_name(i.data_type)] += len(i.raw_data) if i.raw_data else 0
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxSummary(
        path=path,
        precision=model_precision(model),
        opset=int(opset),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=[_desc(v) for v in model.graph.input if v.name not in inits],
        outputs=[_desc(v) for v in model.graph.output],
        op_counts=dict(Counter(n.op_type for n in model.graph.node).most_common()),
        initializer_bytes=dict(nbytes),
        props={p.key: p.value for p in model.metadata_props},
    )


def load_model(path: str, weights: bool = True):
    """onnx.load with a one-line UserError for a missing or corrupt file."""
    if not os.path.isfile(path):
        raise UserError(f"ONNX file not found: {path}")
    if os.path.getsize(path) == 0:
        raise UserError(f"{path} is empty (0 bytes; an interrupted copy or download?): re-export it "
                        "with 'higherhrnet-trt export'")
    try:
        model = onnx.load_model(path, load_external_data=weights)
    except Exception as e:  # protobuf DecodeError and friends
        raise UserError(f"{path} is not a readable ONNX file ({type(e).__name__}): re-export it "
                        "with 'higherhrnet-trt export'") from e
    # Protobuf parses many byte strings (a truncated file, text) into a message without a graph:
    # an ONNX model has at least one node and one output.
    if not model.graph.node or not model.graph.output:
        raise UserError(f"{path} holds no ONNX graph (truncated or not an ONNX file): re-export it "
                        "with 'higherhrnet-trt export'")
    return model


def summarize(path: str) -> OnnxSummary:
    """OnnxSummary of an ONNX file (weights are read too: the precision lives in them)."""
    return summarize_model(load_model(path), path)


def check_weights(model, path: str) -> str:
    """UserError (one line) when a floating-point weight is NaN or inf, or when the weights'
    hash is not the one stamped at export. Returns "matches export", or "not recorded" for files
    written before the stamp or by other tools."""
    import numpy as np

    for init in model.graph.initializer:
        arr = initializer_array(init)
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise UserError(f"{path}: weight {init.name} has {bad} NaN/inf values (a diverged or "
                            "damaged checkpoint): export again from a good checkpoint")
    stamped = next((p.value for p in model.metadata_props if p.key == WEIGHTS_KEY), None)
    if stamped is None:
        return "not recorded"
    if weights_digest(model) != stamped:
        raise UserError(f"{path}: its weights are not the ones exported (sha256 differs from the "
                        "one recorded at export: a damaged copy or download?): copy or export it again")
    return "matches export"
