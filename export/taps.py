"""Extra graph outputs ("taps") computed in-graph right after the tensors they read.

Both range passes of this package (fp16_ranges: max |x| of every tensor; calib_taps: INT8
calibration statistics) add small nodes that read an activation and make a small graph output.
Placed right after the node producing their tensor, and run with ONNX Runtime's priority-based
execution order, they let ONNX Runtime free each activation as soon as its usual consumers and its
taps ran: memory stays one inference's whatever the number of tapped tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from higherhrnet_trt.core.lazy import lazy_import

onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")


def insert_after_producers(model, taps: Mapping[str, Sequence]) -> None:
    """Insert each list of NodeProtos ``taps[tensor]`` right after the node producing ``tensor``
    (graph inputs and initializers: at the start), in place; graph order stays topological."""
    produced = {out for node in model.graph.node for out in node.output}
    nodes = [n for t, extra in taps.items() if t not in produced for n in extra]
    for node in model.graph.node:
        nodes.append(node)
        for out in node.output:
            nodes.extend(taps.get(out, ()))
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def add_outputs(model, names: Sequence[str]) -> None:
    """Declare ``names`` graph outputs (type and shape left to ONNX Runtime), in place."""
    have = {o.name for o in model.graph.output}
    for name in names:
        if name not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=name))


def producer_ops(model) -> dict[str, str]:
    """{tensor: op_type of the node producing it} (graph inputs and initializers are absent)."""
    return {out: node.op_type for node in model.graph.node for out in node.output}


def tensor_shapes(model, input_shapes: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Static shapes of the model's tensors for these input shapes (ONNX shape inference on a copy
    whose inputs are fixed to ``input_shapes``; dynamic models get concrete shapes). Tensors whose
    shape stays unknown or symbolic are absent."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for vi in copy.graph.input:
        if vi.name in input_shapes:
            dims = vi.type.tensor_type.shape.dim
            for d, n in zip(dims, input_shapes[vi.name]):
                d.Clear()
                d.dim_value = int(n)
    inferred = onnx.shape_inference.infer_shapes(copy)
    del copy
    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    return shapes


def tapped_session(model, path: str, optimise: bool, priority_order: bool):
    """Save ``model`` (a tapped ModelProto) to ``path`` and open it in an ONNX Runtime CPU session.

    optimise: ONNX Runtime's full graph optimisation (False: none, every tensor computed as
    written, as ModelOpt and AutoCast run their reference passes). priority_order: run each tap
    right after its tensor's producer, so activations are freed as usual (with the default order
    every tapped tensor stayed alive until the end: 5.7 GB instead of 0.7 GB on W32-512)."""
    onnx.save_model(model, path)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if not optimise:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if priority_order:
        opts.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
