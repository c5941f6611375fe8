"""OpenVINO backend: the same ONNX files (fp32, fp16, INT8 Q/DQ) on Intel CPUs, faster than ONNX Runtime.

OpenVINO reads the ONNX file directly (no IR conversion step): ``Core.read_model`` keeps the
file's ``metadata_props`` under ``rt_info["framework"]``, so the model stays self-describing.
An INT8 Q/DQ file runs its convolutions in int8 (OpenVINO folds the QuantizeLinear /
DequantizeLinear pairs into quantized kernels), where ONNX Runtime's CPU provider is slower than fp32.

Precision: on CPUs with bf16 support (AMX, AVX512-BF16) OpenVINO computes the fp32 parts of a
model in bf16 by default; ``inference_precision="f32"`` keeps fp32 and gives ONNX Runtime's results
to rounding. openvino is imported on activate() only: the runtime works without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ..errors import BackendUnavailable, UserError
from ..metadata import ModelMeta
from .base import Backend, TensorSpec

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


class OpenVINOBackend(Backend):
    """Runs an ONNX file with OpenVINO (CPU by default).

    device: an OpenVINO device name ("CPU", "GPU", "AUTO", ...).
    threads: inference threads (0 = OpenVINO's default, one per physical core).
    inference_precision: None (OpenVINO's default: bf16 on CPUs with AMX / AVX512-BF16, else f32),
        "f32" (results equal to ONNX Runtime's fp32 to rounding), "bf16" or "f16". Layers an INT8
        Q/DQ file quantizes run in int8 whatever the hint.
    """

    name = "openvino"

    def __init__(
        self,
        path: str,
        device: str = "CPU",
        threads: int = 0,
        inference_precision: str | None = None,
    ) -> None:
        super().__init__(path)
        if inference_precision is not None and inference_precision not in PRECISIONS:
            raise UserError(f"inference precision {inference_precision!r}: expected one of "
                            f"{', '.join(PRECISIONS)} (or none for OpenVINO's default)")
        self.device = device
        self.threads = int(threads)
        self.inference_precision = inference_precision
        #: the precision the compiled model really uses for its floating-point layers (after activate)
        self.effective_precision: str | None = None
        self._compiled = None
        self._request = None
        self._meta: ModelMeta | None = None

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
        if not os.path.isfile(self.path):  # the cheaper, likelier mistake first
            raise UserError(f"model file not found: {self.path}")
        ov = import_openvino()
        core = ov.Core()
        try:
            model = core.read_model(self.path)
        except Exception as e:  # OpenVINO raises RuntimeError with a multi-line text for bad files
            raise UserError(
                f"OpenVINO cannot load {self.path}: {_first_line(e)} (is it a complete ONNX file? "
                "re-export it with 'higherhrnet-trt export')"
            ) from e
        # Metadata first: a foreign ONNX file fails here with the same message as under ONNX Runtime.
        self._meta = ModelMeta.from_props(_metadata_props(model))
        try:
            self._compiled = core.compile_model(model, self.device, self._config())
        except Exception as e:
            raise UserError(
                f"OpenVINO cannot compile {self.path} for device {self.device!r}: {_first_line(e)} "
                f"(devices here: {', '.join(core.available_devices) or 'none'})"
            ) from e
        self.effective_precision = self._compiled_precision()
        self._request = self._compiled.create_infer_request()

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
