"""Does OpenVINO compute our INT8 files right on this CPU? A probe run once per process.

OpenVINO's CPU plugin picks its int8 kernels by instruction set. On CPUs without VNNI (AVX2 and
AVX-512 without VNNI) the u8 x s8 multiply-add it uses sums pairs of products into int16 and
saturates: 2 x 255 x 127 does not fit. OpenVINO's documentation names this ("Saturation (overflow)
issue") and the workaround: 7-bit weights, |w| <= 64, whose pair sums (<= 32640) always fit. Measured
with this probe on a 2-core AMD EPYC VM with AVX2 only (OpenVINO 2026.4.1): 8-bit weights 44 % wrong
(max error), 7-bit weights exact (6e-8). The same 44 % was measured earlier on a CPU listed with
AMX-INT8, and a whole INT8 demo file 32 % wrong there, while ONNX Runtime stayed within 4 %. Rather
than return wrong people on such a machine, the backend runs the probe for the weights a file holds
(8-bit: TensorRT-layout files; 7-bit: ``calibrate --target cpu``) before it loads an INT8 file, and
refuses in one line when the probe's answer is wrong.

The probe (``runtime/assets/openvino_int8_probe.onnx``, 1 KB; ``openvino_int8_probe_w7.onnx`` with
7-bit weights): y = Conv(DQ(Q(Concat(x, -x) on the batch axis)), DQ(int8 weights)), symmetric int8
as modelopt writes it: x (1, 3, 32, 32) float32, y (2, 8, 32, 32). Its reference is computed here
in NumPy, independently of any backend.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from higherhrnet_trt.core.metadata import ModelMeta

#: The probe file per weight width: 8-bit weights in [-127, 127], 7-bit in [-64, 64].
PROBE_ASSETS = {8: "openvino_int8_probe.onnx", 7: "openvino_int8_probe_w7.onnx"}
#: Largest |int8 weight| whose u8 x s8 pair sums fit int16 (2 x 255 x 64 = 32640 <= 32767).
SEVEN_BIT_LIMIT = 64
#: The probe's quantisation: activation scale (zero point 0, int8) and per-channel weight scale.
ACTIVATION_SCALE = 0.0175
WEIGHT_SCALE = 0.002
#: Largest relative error (max |got - reference| / max |reference|) accepted: fp32 rounding of an
#: exact int8 computation is ~1e-7; the failure this guards against is ~0.4.
MAX_RELATIVE_ERROR = 1e-4


def probe_arrays(weight_bits: int = 8) -> dict[str, np.ndarray]:
    """The probe's constants: int8 weights (8, 3, 3, 3) of ``weight_bits`` (8 or 7), scales and
    zero points."""
    rng = np.random.default_rng(0)
    limit = 127 if weight_bits == 8 else SEVEN_BIT_LIMIT
    return {"w": rng.integers(-limit, limit + 1, (8, 3, 3, 3)).astype(np.int8),
            "w_scale": np.full(8, WEIGHT_SCALE, np.float32), "w_zero": np.zeros(8, np.int8),
            "scale": np.array(ACTIVATION_SCALE, np.float32), "zero": np.array(0, np.int8)}


def probe_input() -> np.ndarray:
    """x: (1, 3, 32, 32) float32 in [-2.2, 2.2], about the int8 range of the activation scale."""
    return np.random.default_rng(1).uniform(-2.2, 2.2, (1, 3, 32, 32)).astype(np.float32)


def reference_output(x: np.ndarray, weight_bits: int = 8) -> np.ndarray:
    """The probe's exact answer in NumPy: (2, 8, 32, 32) float32, the convolution in float64 of
    the quantised values (ONNX QuantizeLinear: round half to even, saturate to [-128, 127])."""
    arrays = probe_arrays(weight_bits)
    both = np.concatenate([x, -x]).astype(np.float64)
    quantised = np.clip(np.rint(both / np.float64(arrays["scale"])), -128, 127) * float(arrays["scale"])
    weights = arrays["w"].astype(np.float64) * arrays["w_scale"].astype(np.float64)[:, None, None, None]
    padded = np.pad(quantised, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))  # N, C, H, W, 3, 3
    return np.einsum("nchwij,ocij->nohw", windows, weights).astype(np.float32)


def probe_onnx_bytes(weight_bits: int = 8) -> bytes:
    """The committed probe file's bytes (8- or 7-bit weights)."""
    asset = PROBE_ASSETS[weight_bits]
    return resources.files("higherhrnet_trt.runtime.assets").joinpath(asset).read_bytes()


def relative_error(got: np.ndarray, reference: np.ndarray) -> float:
    """max |got - reference| / max |reference| (inf when the shapes differ)."""
    if got.shape != reference.shape:
        return float("inf")
    return float(np.abs(got.astype(np.float64) - reference).max() / np.abs(reference).max())


@functools.cache
def int8_probe_error(device: str, weight_bits: int = 8) -> float:
    """The probe's relative error on OpenVINO ``device`` with this backend's loading (the Concat
    rewrite included) for int8 weights of ``weight_bits`` (8 or 7), once per process, device and
    width."""
    from .openvino_backend import OpenVINOBackend  # the probe runs through the backend's own loading

    x = probe_input()
    with OpenVINOBackend.from_bytes(probe_onnx_bytes(weight_bits), device=device,
                                    inference_precision="f32", check_int8=False) as backend:
        got = backend.infer({"x": x})["y"]
    return relative_error(got, reference_output(x, weight_bits))


def write_probe(path: str, weight_bits: int = 8) -> None:
    """Write the probe ONNX file (how the committed assets were made; needs the onnx package)."""
    import onnx  # only for regenerating the asset, never at run time
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Neg", ["x"], ["mirror"]),
        helper.make_node("Concat", ["x", "mirror"], ["both"], axis=0),
        helper.make_node("QuantizeLinear", ["both", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["dq"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["w_dq"], axis=0),
        helper.make_node("Conv", ["dq", "w_dq"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    ]
    graph = helper.make_graph(nodes, "openvino_int8_probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in probe_arrays(weight_bits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, ModelMeta().to_props())
    onnx.save(model, path)
