"""OpenVINO backend: the same ONNX files (fp32, fp16, INT8 Q/DQ) on x86 CPUs.

Faster than ONNX Runtime where OpenVINO has kernels ONNX Runtime lacks: bf16 on AVX512-BF16 / AMX
CPUs (W32-512 fp32 file 2.0x, benchmarks/RESULTS.md section 10); on an AVX2-only CPU both ran it
at the same speed in f32 and OpenVINO's int8 was 1.1x ONNX Runtime's (section 22).

OpenVINO reads the ONNX file directly (no IR conversion step): ``Core.read_model`` keeps the
file's ``metadata_props`` under ``rt_info["framework"]``, so the model stays self-describing.
An INT8 Q/DQ file runs its convolutions in int8 (OpenVINO folds the QuantizeLinear /
DequantizeLinear pairs into quantized kernels), the TensorRT layout's too, which ONNX Runtime's CPU
provider runs slower than fp32.

INT8 files and an OpenVINO bug: a symmetric int8 QuantizeLinear right after a batch-axis Concat (our
flip test concatenates the image and its mirror that way before the first convolution) comes out
~30 % wrong (max error) on OpenVINO's CPU plugin (seen with 2026.4.1), while the same quantizer
written as uint8 with zero point 128 (the same numbers) is exact. ``unsigned_after_concat`` rewrites
those quantizers so on loading; the file itself stays int8 (TensorRT takes only symmetric int8).

Precision: on CPUs with bf16 support (AMX, AVX512-BF16) OpenVINO computes the fp32 parts of a
model in bf16 by default; ``inference_precision="f32"`` keeps fp32 and gives ONNX Runtime's results
to rounding. openvino is imported on activate() only: the runtime works without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.core.metadata import ModelMeta

from .base import Backend, TensorSpec
from .cpu_flags import read_cpuinfo
from .foreign import model_meta
from .openvino_probe import SEVEN_BIT_LIMIT

log = logging.getLogger("higherhrnet_trt")

INSTALL_HINT = "pip install 'higherhrnet-trt[openvino]'"

#: Values of OpenVINO's ``INFERENCE_PRECISION_HINT`` this backend accepts (None: the device's default).
PRECISIONS = ("f32", "bf16", "f16")


def import_openvino():
    """The ``openvino`` module, or BackendUnavailable with the install command."""
    try:
        import openvino
    except ImportError:
        raise BackendUnavailable(f"openvino is not installed: {INSTALL_HINT}") from None
    return openvino


def _first_line(err: Exception) -> str:
    """OpenVINO errors span many lines (source file, check text): keep the first that says something."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def _spec(port) -> TensorSpec:
    """A compiled model's input / output port -> TensorSpec (dynamic dimensions as -1)."""
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    return TensorSpec(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype()))


def _metadata_props(model) -> dict[str, str]:
    """The ONNX file's metadata_props as OpenVINO keeps them (rt_info "framework"); {} when absent."""
    rt_info = model.get_rt_info()
    if "framework" not in rt_info:
        return {}
    framework = rt_info["framework"]
    if not isinstance(framework, Mapping):  # an OVAny wrapping the map in some releases
        framework = framework.astype(dict)
    return {str(k): v.astype(str) if hasattr(v, "astype") else str(v) for k, v in framework.items()}


def _skip_converts(output):
    """The first producer above ``output`` that is not a Convert (precision casts of fp16 files)."""
    node = output.get_node()
    while node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    return node


def _is_batch_concat(node) -> bool:
    """A Concat on axis 0. Only that one needs the rewrite: after a channel Concat (HigherHRNet's
    deconvolution input) OpenVINO's int8 result is right, and the uint8 form would cost the int8
    deconvolution."""
    if node.get_type_name() != "Concat":
        return False
    axis = node.get_attributes().get("axis")
    rank = node.get_output_partial_shape(0).rank
    return axis == 0 or (rank.is_static and axis == -rank.get_length())


def _int8_chain(fq) -> list | None:
    """For a FakeQuantize that OpenVINO's ONNX reader made of a symmetric int8 QuantizeLinear /
    DequantizeLinear pair (FakeQuantize to [-128, 127] -> Convert i8 -> Convert float -> Subtract
    zero point -> Multiply scale), the (Convert float, Subtract) pairs after it; None otherwise."""
    limits = [fq.input_value(k).get_node() for k in (3, 4)]
    users = [u.get_node() for u in fq.output(0).get_target_inputs()]
    if (fq.get_attributes().get("levels") != 256 or any(n.get_type_name() != "Constant" for n in limits)
            or np.any(limits[0].get_data() != -128) or np.any(limits[1].get_data() != 127)
            or len(users) != 1 or users[0].get_type_name() != "Convert"
            or users[0].get_attributes().get("destination_type") != "i8"):
        return None
    chains = []
    for use in users[0].output(0).get_target_inputs():
        to_float = use.get_node()
        subtracts = [u.get_node() for u in to_float.output(0).get_target_inputs()]
        if (to_float.get_type_name() != "Convert" or len(subtracts) != 1
                or subtracts[0].get_type_name() != "Subtract"):
            return None
        chains.append((to_float, subtracts[0]))
    return chains


def unsigned_after_concat(model, ops) -> int:
    """Rewrite each symmetric int8 quantizer fed by a batch Concat as uint8 with zero point 128: the same
    numbers (q_u8 = q_i8 + 128, and 128 more subtracted on dequantizing), but the form OpenVINO's CPU
    plugin computes correctly (see the module docstring). ops: an openvino opset module. Returns
    how many quantizers were rewritten."""
    rewritten = 0
    for fq in model.get_ordered_ops():
        if fq.get_type_name() != "FakeQuantize":
            continue
        if not _is_batch_concat(_skip_converts(fq.input_value(0))):
            continue
        chains = _int8_chain(fq)
        if chains is None:
            continue
        fq.input(3).replace_source_output(ops.constant(np.float32(0)).output(0))
        fq.input(4).replace_source_output(ops.constant(np.float32(255)).output(0))
        to_u8 = ops.convert(fq.output(0), "u8")
        for to_float, subtract in chains:
            to_float.input(0).replace_source_output(to_u8.output(0))
            zero_point = subtract.input_value(1)
            shift = ops.constant(np.array(128, zero_point.get_element_type().to_dtype()))
            subtract.input(1).replace_source_output(ops.add(zero_point, shift).output(0))
        rewritten += 1
    if rewritten:
        model.validate_nodes_and_infer_types()
    return rewritten


def _has_quantizers(model) -> bool:
    """Whether the model (as OpenVINO read it) holds Q/DQ pairs, which it reads as FakeQuantize."""
    return any(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def weight_bits(model, meta: ModelMeta | None) -> int:
    """7 for a ``calibrate --target cpu`` file whose int8 constants (its quantized weights and
    their zero points) all lie in [-64, 64], else 8: which probe (openvino_probe) tells whether
    this CPU's int8 kernels compute the file right. TensorRT-layout files are 8: ModelOpt keeps
    their weights in float behind a full-range quantizer, so no int8 constant shows their width."""
    if meta is None or meta.target != "cpu":
        return 8
    widest = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8":
            data = op.get_data()
            if data.size:
                widest = max(widest, int(np.abs(data.astype(np.int16)).max()))
    return 7 if 0 < widest <= SEVEN_BIT_LIMIT else 8


def cpu_name() -> str:
    """The CPU's model name and whether it has AMX-INT8 (from /proc/cpuinfo; "this CPU" elsewhere)."""
    info = read_cpuinfo()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
                "this CPU")
    return f"{name}, AMX-INT8" if " amx_int8" in info else name


def _opset():
    """OpenVINO's opset module for building nodes (``openvino.opset13``; older: under runtime)."""
    try:
        from openvino import opset13
    except ImportError:
        from openvino.runtime import opset13
    return opset13


class OpenVINOBackend(Backend):
    """Runs an ONNX file with OpenVINO (CPU by default).

    device: an OpenVINO device name ("CPU", "GPU", "AUTO", ...).
    threads: inference threads (0 = OpenVINO's default, one per physical core).
    inference_precision: None (OpenVINO's default: bf16 on CPUs with AMX / AVX512-BF16, else f32),
        "f32" (results equal to ONNX Runtime's fp32 to rounding), "bf16" or "f16". Layers an INT8
        Q/DQ file quantizes run in int8 whatever the hint.
    config: for an ONNX without higherhrnet_trt metadata (exported by other tools): its config
        name, as for ONNX Runtime (backends/foreign.py).
    """

    name = "openvino"
    options = ("threads", "inference_precision", "config")

    def __init__(
        self,
        path: str,
        device: str = "CPU",
        threads: int = 0,
        inference_precision: str | None = None,
        check_int8: bool = True,
        config: str | None = None,
    ) -> None:
        super().__init__(path)
        self.config = config
        if inference_precision is not None and inference_precision not in PRECISIONS:
            raise UserError(f"inference precision {inference_precision!r}: expected one of "
                            f"{', '.join(PRECISIONS)} (or none for OpenVINO's default)")
        self.device = device
        self.threads = int(threads)
        self.inference_precision = inference_precision
        #: run the INT8 probe (openvino_probe) before loading a file with int8 quantizers
        self.check_int8 = check_int8
        #: the ONNX file's bytes when made by from_bytes (the path is then only a name for messages)
        self._model_bytes: bytes | None = None
        #: the precision the compiled model really uses for its floating-point layers (after activate)
        self.effective_precision: str | None = None
        #: int8 quantizers after a Concat rewritten as uint8 on loading (see unsigned_after_concat)
        self.rewritten_quantizers = 0
        self._compiled = None
        self._request = None
        self._meta: ModelMeta | None = None

    @classmethod
    def from_bytes(cls, model_bytes: bytes, name: str = "<in-memory model>", **options) -> OpenVINOBackend:
        """A backend over an ONNX file held in memory (``name`` stands for its path in messages)."""
        backend = cls(name, **options)
        backend._model_bytes = bytes(model_bytes)
        return backend

    def _config(self) -> dict[str, object]:
        """compile_model properties. LATENCY: the Pipeline sends one request at a time, so one
        stream with every thread beats THROUGHPUT's several streams of fewer threads."""
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        if self.inference_precision:
            config["INFERENCE_PRECISION_HINT"] = self.inference_precision
        return config

    def activate_impl(self) -> None:
        if self._model_bytes is None and not os.path.isfile(self.path):  # the likelier mistake first
            raise UserError(f"model file not found: {self.path}")
        ov = import_openvino()
        core = ov.Core()
        try:
            model = core.read_model(self.path if self._model_bytes is None else self._model_bytes)
        except Exception as e:  # OpenVINO raises RuntimeError with a multi-line text for bad files
            raise UserError(
                f"OpenVINO cannot load {self.path}: {_first_line(e)} (is it a complete ONNX file? "
                "re-export it with 'higherhrnet-trt export')"
            ) from e
        # Metadata first, read as ONNX Runtime's backend reads it: a foreign ONNX file is one line
        # naming --config (from_props alone raised a bare ValueError), or runs with the stated config.
        ranks = [o.get_partial_shape().rank.get_length() for o in model.outputs]
        self._meta = model_meta(_metadata_props(model), self.config, self.path, ranks)
        if self.check_int8 and _has_quantizers(model):
            self._refuse_wrong_int8(weight_bits(model, self._meta))
        self._work_around_concat_quantizers(model)
        try:
            self._compiled = core.compile_model(model, self.device, self._config())
        except Exception as e:
            raise UserError(
                f"OpenVINO cannot compile {self.path} for device {self.device!r}: {_first_line(e)} "
                f"(devices here: {', '.join(core.available_devices) or 'none'})"
            ) from e
        self.effective_precision = self._compiled_precision()
        self._request = self._compiled.create_infer_request()

    def _refuse_wrong_int8(self, bits: int) -> None:
        """One line instead of wrong people where OpenVINO's int8 kernels fail the probe of the
        file's weight width (``bits``, 8 or 7) here."""
        from .openvino_probe import MAX_RELATIVE_ERROR, int8_probe_error  # the probe builds a backend

        error = int8_probe_error(self.device, bits)
        if error > MAX_RELATIVE_ERROR:
            fix = ("make a file for the CPU with 'higherhrnet-trt calibrate --target cpu' (7-bit "
                   "weights), run this one with --backend onnxruntime" if bits == 8 else
                   "run this INT8 file with --backend onnxruntime")
            raise UserError(
                f"OpenVINO's int8 kernels compute {bits}-bit weights wrongly on this CPU "
                f"({cpu_name()}: probe error {error:.0%}, see runtime/backends/openvino_probe.py): "
                f"{fix}, or the fp16/fp32 file with OpenVINO")

    def _work_around_concat_quantizers(self, model) -> None:
        """unsigned_after_concat on INT8 files; should the graph API differ in another OpenVINO
        release, run unchanged and say that INT8 results may be off."""
        try:
            self.rewritten_quantizers = unsigned_after_concat(model, _opset())
        except Exception as e:
            log.warning("openvino: could not rewrite the int8 quantizers after Concat (%s); this "
                        "INT8 file's results may be off under OpenVINO", _first_line(e))
            return
        if self.rewritten_quantizers:
            log.debug("openvino: %d int8 quantizer(s) after Concat rewritten as uint8",
                      self.rewritten_quantizers)

    def _compiled_precision(self) -> str | None:
        """What the compiled model computes its floating-point layers in ("f32", "bf16", ...); the
        hint asked for when the device does not report it."""
        try:
            return self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        except Exception:  # not every device (or AUTO) exposes the property
            return self.inference_precision

    def deactivate_impl(self) -> None:
        self._request = None
        self._compiled = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # share_outputs=False: the arrays are copies, valid after the next call reuses the request.
        result = self._request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()},
                                     share_outputs=False)
        return {port.get_any_name(): result[port] for port in self._compiled.outputs}

    def runtime_precisions(self) -> dict[str, dict[str, int]]:
        """What the compiled model really runs: layer type -> {precision: count}, read from
        OpenVINO's execution graph, e.g. {"Convolution": {"u8": 63, "bf16": 16}, ...}. It shows
        whether an INT8 file's convolutions run in int8 (u8 / i8) and what the hint did elsewhere."""
        if not self.is_active:
            raise RuntimeError("openvino backend: runtime_precisions() before activate()")
        counts: dict[str, dict[str, int]] = {}
        for op in self._compiled.get_runtime_model().get_ordered_ops():
            rt_info = op.get_rt_info()
            kind = rt_info["layerType"].astype(str)
            precision = rt_info["runtimePrecision"].astype(str)
            counts.setdefault(kind, {})
            counts[kind][precision] = counts[kind].get(precision, 0) + 1
        return counts

    @property
    def inputs(self) -> list[TensorSpec]:
        return [_spec(p) for p in self._compiled.inputs]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [_spec(p) for p in self._compiled.outputs]

    @property
    def metadata(self) -> ModelMeta:
        return self._meta
