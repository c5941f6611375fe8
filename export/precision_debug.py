"""Layer-by-layer comparison of two ONNX files of one network (fp32 vs its fp16 / INT8 variant).

Both files are run with ONNX Runtime through polygraphy with every tensor marked as an output;
tensors present in both (AutoCast and modelopt's Q/DQ insertion keep the names of the original
node outputs) are compared in the reference graph's topological order. The layers where the error
*jumps* (a node's output error well above the error already present in its inputs) are where
precision is lost; those are the candidates to keep in fp32 (convert_fp16's keep_fp32) or to
exclude from quantization.

Error measure per tensor: ``rel = max|variant - ref| / max|ref|`` over all inputs, plus cosine
similarity; both accumulate over inputs without keeping tensors, so memory stays at one run's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.graph_optimization import ort_optimization_level
from higherhrnet_trt.core.lazy import lazy_import

constants = lazy_import("polygraphy.constants")
onnx = lazy_import("onnx")


@dataclass
class TensorError:
    """Error of one tensor of the variant against the reference, accumulated over inputs."""

    name: str
    op_type: str  # producing node's op type in the reference graph
    node: str  # producing node's name
    max_abs: float = 0.0
    ref_max: float = 0.0
    cosine: float = 1.0
    input_rel: float = 0.0  # worst rel error among the node's compared inputs
    _dot: float = field(default=0.0, repr=False)
    _ref_sq: float = field(default=0.0, repr=False)
    _var_sq: float = field(default=0.0, repr=False)

    @property
    def rel(self) -> float:
        return self.max_abs / self.ref_max if self.ref_max > 0 else (0.0 if self.max_abs == 0 else np.inf)

    @property
    def jump(self) -> float:
        """How much this node multiplies the error it receives (>= 1 means it adds error)."""
        return self.rel / max(self.input_rel, 1e-6)

    def update(self, ref: np.ndarray, var: np.ndarray) -> None:
        r = np.asarray(ref, dtype=np.float64).ravel()
        v = np.asarray(var, dtype=np.float64).ravel()
        if r.size == 0:
            return
        self.max_abs = max(self.max_abs, float(np.max(np.abs(r - v))))
        self.ref_max = max(self.ref_max, float(np.max(np.abs(r))))
        self._dot += float(r @ v)
        self._ref_sq += float(r @ r)
        self._var_sq += float(v @ v)
        denom = np.sqrt(self._ref_sq * self._var_sq)
        self.cosine = float(self._dot / denom) if denom > 0 else float(self._ref_sq == self._var_sq)


@dataclass
class LayerComparison:
    reference: str
    variant: str
    graph_optimization: str
    num_inputs: int
    tensors: list[TensorError]  # reference topological order
    outputs: list[str]  # graph outputs of the reference

    def first_jumps(self, tolerance: float = 1e-2, factor: float = 2.0, limit: int = 5) -> list[TensorError]:
        """The first tensors (topological order) whose rel error exceeds ``tolerance`` and is at
        least ``factor`` times the error of their inputs: where precision is lost."""
        hits = [t for t in self.tensors if t.rel > tolerance and t.jump >= factor]
        return hits[:limit]

    def worst_jumps(self, limit: int = 5) -> list[TensorError]:
        return sorted(self.tensors, key=lambda t: t.jump, reverse=True)[:limit]

    def table(self, tensors: Iterable[TensorError] | None = None) -> str:
        """Fixed-width table: node (op), output tensor, rel error, input error, jump, cosine."""
        rows = list(self.tensors if tensors is None else tensors)
        labels = [f"{t.node} ({t.op_type})" for t in rows]
        nw = max([len(x) for x in labels] + [4])
        tw = max([len(t.name) for t in rows] + [6])
        lines = [f"{'node':<{nw}}  {'tensor':<{tw}} {'rel err':>9} {'in err':>9} {'jump':>7} "
                 f"{'cosine':>9}"]
        for label, t in zip(labels, rows):
            jump = f"{t.jump:7.1f}" if t.jump < 1e4 else "  >1e4 "
            lines.append(f"{label:<{nw}}  {t.name:<{tw}} {t.rel:9.2e} {t.input_rel:9.2e} {jump} "
                         f"{t.cosine:9.6f}")
        return "\n".join(lines)


def _runner(path: str, graph_optimization: str, name: str):
    """polygraphy ONNX Runtime runner over ``path`` with every tensor marked as an output."""
    from polygraphy.backend.onnx import BytesFromOnnx, ModifyOutputs, OnnxFromPath
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    model = ModifyOutputs(OnnxFromPath(path), outputs=constants.MARK_ALL)
    session = SessionFromOnnx(BytesFromOnnx(model), providers=["cpu"],
                              graph_optimization_level=ort_optimization_level(graph_optimization))
    return OnnxrtRunner(session, name=name)


def compare_layers(
    reference: str,
    variant: str,
    feeds: Iterable[Mapping[str, np.ndarray]],
    graph_optimization: str = "disable",
) -> LayerComparison:
    """Run both files on every feed and compare the tensors they share.

    graph_optimization: ONNX Runtime level for both. "disable" by default: with every tensor
    marked as output most fusions cannot apply anyway, and ORT's bias quantization pass (basic and
    above) miscomputes modelopt's fp16 Q/DQ graphs (the results would blame the wrong layers).
    """
    from polygraphy.logger import G_LOGGER

    ref_model = onnx.load_model(reference, load_external_data=False)
    producers = {}
    order: list[str] = []
    for node in ref_model.graph.node:
        for out in node.output:
            if out:
                producers[out] = node
                order.append(out)
    inputs_of = {out: [i for i in producers[out].input if i] for out in order}
    outputs = [o.name for o in ref_model.graph.output]
    del ref_model
    var_model = onnx.load_model(variant, load_external_data=False)
    half_inputs = {i.name for i in var_model.graph.input
                   if i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
    del var_model

    errors: dict[str, TensorError] = {}
    count = 0
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        ref_runner = _runner(reference, graph_optimization, "reference")
        var_runner = _runner(variant, graph_optimization, "variant")
        with ref_runner, var_runner:
            for feed in feeds:
                ref_out = ref_runner.infer(dict(feed))
                var_feed = {k: (v.astype(np.float16) if k in half_inputs else v)
                            for k, v in feed.items()}
                var_out = var_runner.infer(var_feed)
                count += 1
                for name in order:
                    if name not in ref_out or name not in var_out:
                        continue
                    r, v = np.asarray(ref_out[name]), np.asarray(var_out[name])
                    if r.shape != v.shape or not np.issubdtype(r.dtype, np.floating):
                        continue
                    node = producers[name]
                    err = errors.get(name)
                    if err is None:
                        err = errors[name] = TensorError(name, node.op_type, node.name)
                    err.update(r, v)
    if count == 0:
        raise UserError("no inputs to compare with")
    tensors = [errors[n] for n in order if n in errors]
    for t in tensors:
        ins = [errors[i].rel for i in inputs_of[t.name] if i in errors]
        t.input_rel = max(ins) if ins else 0.0
    return LayerComparison(reference, variant, graph_optimization, count, tensors, outputs)
