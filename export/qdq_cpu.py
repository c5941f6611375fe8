"""INT8 Q/DQ graph for CPU runtimes (``calibrate --target cpu``): ONNX Runtime's own QDQ placement
with our calibrated ranges.

Why a second placement: the TensorRT placement (qdq.py, ModelOpt) quantizes the *inputs* of each
Conv and leaves its output in float (TensorRT fuses Conv + bias + ReLU + Add in int8 itself). ONNX
Runtime's CPU provider only turns a DequantizeLinear -> op -> QuantizeLinear pattern into an
integer kernel (QLinearConv, QLinearAdd, QLinearConcat, uint8 Resize), so on that graph only 4 of
the demo's 137 convolutions become QLinearConv: the rest run in fp32 behind a DequantizeLinear of
their weights at every frame, slower than the fp32 file (0.6x measured on the demo). ONNX Runtime's
quantizer puts a Q/DQ pair on every input and output of the ops it has integer kernels for, with
uint8 activations quantized asymmetrically (zero point where the tensor's minimum maps), which is
what lets the optimiser drop a ReLU into the preceding QuantizeLinear (its range starts at 0) and
fuse every Conv, Add, Concat and Resize of HigherHRNet into integer kernels.

The network's last convolutions and what follows them (:func:`output_tail`) are left out: the
stride-2 heatmaps and the outputs the decode reads are never rounded to uint8 or clipped to a
calibrated range (ONNX Runtime still runs the stride-4 final layer in int8, whose output also
feeds the quantized Concat before the deconvolution). Measured on the demo network
(benchmarks/RESULTS.md section 22d): AP on the real held-out set 0.320 with them quantized, 0.359
without (fp32 0.356); 0-4 % slower under ONNX Runtime, 10-20 % under OpenVINO.

Ranges: ours (calib_ranges.collect_ranges: streamed, cached, pre-processed as the runtime does),
handed to ONNX Runtime's QDQQuantizer as a MinMax TensorsData, so its biases (int32, scale = input
scale x weight scale) agree with the activation scales. A symmetric threshold t (entropy,
percentile) clips the tensor's measured [min, max] to [max(min, -t), min(max, t)]; "max" keeps
[min, max]. Weights: int8, symmetric, per output channel, in 7 bits ([-64, 64], ONNX Runtime's
``reduce_range``).

Why 7-bit weights: x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8 activations by
int8 weights with an instruction that adds pairs of products into int16 and saturates there (2 x
255 x 127 overflows; 2 x 255 x 64 does not); ONNX Runtime's and OpenVINO's documentation name it
and 7-bit weights as the workaround. Measured on a 2-core AMD EPYC VM with AVX2 only (ONNX Runtime
1.32), the demo network's file from the same 54 scenes against fp32 on 10 held-out ones: 8-bit
weights heatmaps rel 7.8e-01, cosine 0.961, same peak 54 %; 7-bit rel 1.7e-01, cosine 0.997, same
peak 68 % (OpenVINO on that CPU: its int8 probe 44 % wrong with 8-bit weights, exact with 7-bit).
A file is made once and run on whatever CPU the robot has, so every file gets 7 bits; on a VNNI CPU
the 8-bit file of an earlier session scored cosine 0.996 (benchmarks/RESULTS.md section 16).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.precision import CALIBRATION_TARGETS

base_quantizer = lazy_import("onnxruntime.quantization.base_quantizer")

#: ModelMeta.target values of INT8 files: which runtime the Q/DQ graph is laid out for.
TARGETS = CALIBRATION_TARGETS
#: Width of the int8 weights this module writes (ModelMeta.weight_bits; see the module docstring).
CPU_WEIGHT_BITS = 7


def _quantizable_ops() -> list[str]:
    """Op types ONNX Runtime's static quantizer quantizes by default (as quantize_static)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted(set(QLinearOpsRegistry) | set(QDQRegistry))


def shape_inferred(path: str):
    """The ONNX at ``path`` with shapes inferred (what ONNX Runtime's quantizer works on)."""
    from pathlib import Path

    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    return load_model_with_shape_infer(Path(path))


def tensors_to_calibrate(model) -> list[str]:
    """Float activations ONNX Runtime's quantizer wants a range for: every non-initializer float
    input and output of an op it quantizes (its calibrator's own selection), the
    :func:`output_tail` left out.

    model: a shape-inferred ModelProto (:func:`shape_inferred`)."""
    from onnx import TensorProto

    ops = set(_quantizable_ops())
    infos = {vi.name: vi for vi in itertools.chain(model.graph.value_info, model.graph.output,
                                                    model.graph.input)}
    inits = {i.name for i in model.graph.initializer}
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    in_float = set(output_tail(model))
    out: set[str] = set()
    for node in model.graph.node:
        if node.op_type not in ops or node.name in in_float:
            continue
        for name in itertools.chain(node.input, node.output):
            vi = infos.get(name)
            if (vi is not None and name not in inits and vi.type.HasField("tensor_type")
                    and vi.type.tensor_type.elem_type in floats):
                out.add(name)
    return sorted(out)


def output_tail(model) -> list[str]:
    """Names of the nodes between the network's last convolutions and its outputs, those
    convolutions included (on HigherHRNet: the two final 1x1 convolutions, then the flip test's
    averaging and the tags' stacking): quantize_cpu leaves them in float, so the heatmaps and tags
    the decode reads are never rounded to 8 bits (256 steps are coarser than the neighbour
    differences the sub-pixel step reads; unclipped uint8 ranges measured no better).
    Unnamed nodes in the tail are named here (ONNX Runtime's quantizer excludes nodes by name).

    model: a ModelProto (changed in place only to name such nodes)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    tail: dict[int, object] = {}
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or id(node) in tail:
            continue
        tail[id(node)] = node
        if node.op_type not in ("Conv", "ConvTranspose"):
            stack.extend(node.input)
    for i, node in enumerate(tail.values()):
        if not node.name:
            node.name = f"output_tail_{i}"
    return sorted(node.name for node in tail.values())


def clipped_range(low: float, high: float, threshold: float) -> tuple[float, float]:
    """[min, max] of a tensor clipped to a symmetric threshold [-t, t] (entropy / percentile)."""
    return max(low, -threshold), min(high, threshold)


def quantize_cpu(model, ranges: Mapping[str, tuple[float, float]]):
    """ONNX Runtime's QDQ quantization of ``model`` (shape-inferred, see :func:`shape_inferred`)
    with the (min, max) ``ranges`` of every tensor :func:`tensors_to_calibrate` names: uint8
    asymmetric activations, int8 per-channel weights in [-64, 64]; the :func:`output_tail` stays in
    float. Returns the quantized ModelProto."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    data = {t: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
            for t, (lo, hi) in ranges.items()}
    # per_channel True, reduce_range (7-bit weights, see the module docstring)
    quantizer = QDQQuantizer(model, True, CPU_WEIGHT_BITS == 7, QuantType.QInt8, QuantType.QUInt8,
                             TensorsData(CalibrationMethod.MinMax, data), [], output_tail(model),
                             _quantizable_ops(), {})
    quantizer.quantize_model()
    return quantizer.model.model


def check_onnxruntime_unpatched() -> None:
    """Refuse in one line where ModelOpt has changed onnxruntime.quantization in this process.

    ModelOpt, once it has calibrated here (a TensorRT-layout file), rewrites ORT's quantizer in
    place (modelopt.onnx.quantization.ort_patching: BaseQuantizer.adjust_tensor_ranges, the op
    registries): the CPU layout would then differ from ORT's own, or fail ("Quantization
    parameters are not specified for param cat"). A new process has ORT as it ships."""
    if base_quantizer.BaseQuantizer.adjust_tensor_ranges.__module__ != base_quantizer.__name__:
        raise UserError("target cpu: a TensorRT-layout calibration ran earlier in this process and "
                        "ModelOpt changed onnxruntime.quantization in place; calibrate for the CPU "
                        "in a new process (a separate 'higherhrnet-trt calibrate --target cpu')")
