"""ONNX Runtime backend: the default that works on any machine (CPU execution provider)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.core.files import shown_path
from higherhrnet_trt.core.graph_optimization import GRAPH_OPTIMIZATION, ort_optimization_level
from higherhrnet_trt.core.metadata import ModelMeta

from .base import Backend, TensorSpec
from .cpu_flags import int8_weights_saturate
from .foreign import model_meta

log = logging.getLogger("higherhrnet_trt")

#: --graph-optimization values: "auto" (the level the file needs, see :func:`needed_level`) or
#: one of ONNX Runtime's levels.
GRAPH_OPTIMIZATION_LEVELS = ("auto", *GRAPH_OPTIMIZATION)

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
    return TensorSpec(arg.name, shape, np.dtype(_ORT_DTYPES.get(arg.type, np.float32)))


def _check_providers(ort, providers: Sequence[str]) -> None:
    """UserError for an execution provider this onnxruntime does not know or was not built with:
    ONNX Runtime itself only warns and runs on the CPU."""
    if not providers:
        raise UserError("--providers is empty: name at least one, e.g. CPUExecutionProvider")
    available = ort.get_available_providers()
    known = set(ort.get_all_providers())
    for p in providers:
        if p in available:
            continue
        if p not in known:
            close = [k for k in sorted(known) if k.lower().startswith(p.lower()[:4])]
            raise UserError(f"--providers {p}: no such ONNX Runtime execution provider"
                            + (f" (did you mean {close[0]}?)" if close else "")
                            + f"; this onnxruntime has: {', '.join(available)}")
        raise UserError(f"--providers {p}: this onnxruntime was built without it (it has "
                        f"{', '.join(available)}): install the onnxruntime package that has it, e.g. "
                        "pip install onnxruntime-gpu for CUDAExecutionProvider, or use those listed")


def needed_level(meta: ModelMeta | None) -> str:
    """The graph optimisation level "auto" picks from a file's metadata: "disable" for INT8 Q/DQ
    files laid out for TensorRT (precision "int8", target "tensorrt" or none), "all" otherwise
    (INT8 files of ``calibrate --target cpu`` included: their fp32 Q/DQ graph is what ONNX
    Runtime fuses into its integer kernels at that level).

    Why: ONNX Runtime's level-1 WeightBiasQuantization pass (basic and above) turns each quantized
    Conv's float bias into int32 (bias / (input scale x weight scale)) and rounds it through the
    graph's float type; in a Q/DQ graph whose unquantized layers are fp16 (calibrate's default)
    values above fp16's 65504 become infinite. Measured on the demo INT8 file (ORT 1.32, 40
    scenes): 123 of its 6003 biases overflow, and the tags' mean |error| against fp32 doubles
    (0.051 -> 0.102, cosine 0.99903 -> 0.99684); the heatmaps' barely moves (3.06e-3 -> 3.05e-3).
    tests/runtime/test_backend_onnxruntime_int8.py checks it. INT8 files
    with fp32 layers (--high-precision fp32) give the same results at "all" (still slower than
    fp32: ONNX Runtime fuses almost none of TensorRT's placement, see export/qdq_cpu.py); "auto"
    cannot tell them apart from the metadata and disables for both.
    """
    tensorrt_int8 = meta is not None and meta.precision == "int8" and meta.target != "cpu"
    return "disable" if tensorrt_int8 else "all"


def pairing_note(meta: ModelMeta | None, path: str) -> str | None:
    """One line for an INT8 file laid out for TensorRT run here (slower than its fp32 file under
    ONNX Runtime), else None."""
    if meta is None or meta.precision != "int8" or meta.target == "cpu":
        return None
    return (f"{os.path.basename(path)} is an INT8 file for TensorRT: ONNX Runtime runs it slower than "
            "fp32; for the CPU make one with 'higherhrnet-trt calibrate --target cpu'")


def saturation_note(meta: ModelMeta | None, path: str, saturates: bool) -> str | None:
    """One line for a CPU-target INT8 file with 8-bit weights (no ``weight_bits`` 7 in its
    metadata) on a CPU whose int8 kernels saturate them (``saturates``: cpu_flags), else None.
    Measured on an AVX2-only CPU: the demo's AP 0.022 below fp32 with such a file, 0.005 with
    7-bit weights (benchmarks/RESULTS.md section 22b)."""
    if (not saturates or meta is None or meta.precision != "int8" or meta.target != "cpu"
            or meta.weight_bits == 7):
        return None
    return (f"{os.path.basename(path)} has 8-bit int8 weights, which this CPU (x86 without VNNI) "
            "saturates in ONNX Runtime's int8 kernels: its people are less accurate; calibrate "
            "it again with 'higherhrnet-trt calibrate --target cpu' (7-bit weights)")


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file with ONNX Runtime.

    providers: ONNX Runtime execution providers in priority order (default: CPU only).
    threads: intra-op threads (0 = ONNX Runtime's default, one per core).
    graph_optimization: "auto" (default: :func:`needed_level`, "disable" for INT8 Q/DQ files laid
        out for TensorRT, "all" otherwise), "all", "extended", "basic" or "disable". After activate(),
        ``graph_optimization_used`` is the level the session runs at.
    config: for an ONNX without higherhrnet_trt metadata (exported by other tools): its config
        name (export/configs.py); see backends/foreign.py.
    """

    name = "onnxruntime"
    options = ("providers", "threads", "graph_optimization", "config")

    def __init__(
        self,
        path: str,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 0,
        graph_optimization: str = "auto",
        config: str | None = None,
    ) -> None:
        super().__init__(path)
        self.config = config
        self.providers = list(providers)
        self.threads = threads
        if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise UserError(f"--graph-optimization {graph_optimization}: expected one of "
                            f"{', '.join(GRAPH_OPTIMIZATION_LEVELS)}")
        self.graph_optimization = graph_optimization
        self.graph_optimization_used: str | None = None
        self._session = None
        self._meta: ModelMeta | None = None

    def activate_impl(self) -> None:
        if not os.path.isfile(self.path):  # the cheaper, likelier mistake first
            raise UserError(f"model file not found: {self.path}")
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable(
                "onnxruntime is not installed: pip install onnxruntime"
            ) from e
        _check_providers(ort, self.providers)
        level = "all" if self.graph_optimization == "auto" else self.graph_optimization
        self._session = self._open(ort, level)
        # ONNX Runtime falls back to the CPU with only a log line when a provider fails to start
        # (CUDA libraries missing, no GPU): a run on the CPU the user did not ask for.
        failed = [p for p in self.providers if p not in self._session.get_providers()]
        if failed:
            raise UserError(f"--providers {','.join(failed)} could not start on this machine (ONNX "
                            f"Runtime would run on {', '.join(self._session.get_providers())}): check "
                            "the GPU, driver and CUDA/TensorRT libraries, or leave --providers out for "
                            "the CPU")

        props = self._session.get_modelmeta().custom_metadata_map
        ranks = [len(o.shape) for o in self._session.get_outputs()]
        self._meta = model_meta(props, self.config, self.path, ranks)
        if self.graph_optimization == "auto" and needed_level(self._meta) != level:
            # The metadata comes from a session: open the file again at the level it needs (INT8
            # files only; 0.4 s for W32-512's, measured on this project's 2-core CI machine).
            level = needed_level(self._meta)
            self._session = None  # one session in memory at a time
            self._session = self._open(ort, level)
        self.graph_optimization_used = level
        cpu_int8 = self._meta is not None and self._meta.precision == "int8" and self._meta.target == "cpu"
        for note in (pairing_note(self._meta, self.path),
                     saturation_note(self._meta, self.path, cpu_int8 and int8_weights_saturate())):
            if note:
                log.warning(note)

    def _open(self, ort, level: str):
        """An InferenceSession of the file at graph optimisation ``level``; one-line UserError for
        a file ONNX Runtime cannot load."""
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        opts.graph_optimization_level = ort_optimization_level(level)
        model = self.path
        try:
            self.path.encode("utf-8")
        except UnicodeEncodeError:
            # A file name that is not UTF-8 (surrogate escapes): ORT cannot take it as a path, so
            # it gets the bytes (HigherHRNet ONNX files keep their weights inside, no external data).
            with open(self.path, "rb") as f:
                model = f.read()
        try:
            return ort.InferenceSession(model, opts, providers=self.providers)
        except Exception as e:  # ORT raises its own exception types for corrupt files
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(
                f"ONNX Runtime cannot load {shown_path(self.path)}: {first} (is it a complete ONNX "
                "file? re-export it with 'higherhrnet-trt export')"
            ) from e

    def deactivate_impl(self) -> None:
        self._session = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self._session.get_outputs()]
        values = self._session.run(names, {k: np.ascontiguousarray(v) for k, v in feeds.items()})
        return dict(zip(names, values))

    @property
    def inputs(self) -> list[TensorSpec]:
        return [_spec(a) for a in self._session.get_inputs()]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [_spec(a) for a in self._session.get_outputs()]

    @property
    def metadata(self) -> ModelMeta:
        return self._meta
