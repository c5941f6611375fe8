"""Everything that differs between TensorRT 10, TensorRT 11 and TensorRT-RTX, in one place.

Measured on these machines: the runtime API (deserialize_cuda_engine, num_io_tensors,
get_tensor_name/mode/dtype/shape, set_input_shape, set_tensor_address, execute_async_v3,
device_memory_size_v2) and the STRONGLY_TYPED network flag are the same in TensorRT 10.3, 10.16,
11.4 and TensorRT-RTX 1.7; only the module name differs. So the toolkit has one build path:
precision lives in the ONNX and every network is strongly typed. What does differ, and is asked
here rather than scattered through the code:

- TensorRT 10 still has the FP16 / INT8 builder flags (weak typing). We use them only as an
  optional extra for an fp32 ONNX (JetPack 6 ships TensorRT 10.3). TensorRT 11 and TensorRT-RTX
  removed them: precision must come from the ONNX (fp16 from AutoCast, INT8 from Q/DQ).
- TensorRT-RTX builds ahead of time on a CPU, for a set of compute capabilities named by its
  ``ComputeCapability`` enum (no SM87 = Jetson Orin, no SM90 = H100), and rejects optimisation
  profile shapes that are not multiples of 64.
- DLA exists only where the builder reports DLA cores (Jetson AGX Orin / Orin NX on TensorRT 10).

Nothing here imports TensorRT at module import time: :func:`load_flavor` does, when asked.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from higherhrnet_trt.core.errors import BackendUnavailable, UserError

from .jetson import check_jetson

#: Builder names as the CLI spells them -> Python module.
MODULES: dict[str, str] = {"tensorrt": "tensorrt", "tensorrt-rtx": "tensorrt_rtx"}
#: "auto" tries these in order: the full TensorRT first (JetPack's system install, or a desktop
#: install that builds for the GPU at hand), TensorRT-RTX second (ahead of time, even on a CPU).
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "tensorrt-rtx")

INSTALL_HINT = {
    "tensorrt": "TensorRT comes with JetPack on a Jetson (python3-libnvinfer) or from NVIDIA's "
                "TensorRT installer on a desktop; do not 'pip install tensorrt' over JetPack's",
    "tensorrt-rtx": "pip install tensorrt-rtx (builds ahead of time, no GPU needed to build)",
}


@dataclass(frozen=True)
class Flavor:
    """One importable TensorRT flavour: the module and what its API offers."""

    name: str  # "tensorrt" | "tensorrt-rtx"
    trt: ModuleType
    version: str

    # -- identity ---------------------------------------------------------------------------------
    @property
    def module_name(self) -> str:
        return MODULES[self.name]

    @property
    def is_rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            return 0

    @property
    def label(self) -> str:
        return f"{'TensorRT-RTX' if self.is_rtx else 'TensorRT'} {self.version}"

    # -- what the API has ---------------------------------------------------------------------------
    def builder_flag(self, name: str):
        """``BuilderFlag.<name>`` or None where this flavour removed it (FP16/INT8 in 11 and RTX)."""
        return getattr(self.trt.BuilderFlag, name, None)

    @property
    def has_precision_flags(self) -> bool:
        """TensorRT 10's weak-typing FP16 / INT8 builder flags (gone in TensorRT 11 and RTX)."""
        return self.builder_flag("FP16") is not None and self.builder_flag("INT8") is not None

    @property
    def has_progress_monitor(self) -> bool:
        return hasattr(self.trt, "IProgressMonitor")

    @property
    def ahead_of_time(self) -> bool:
        """The builder needs no GPU and targets compute capabilities, not the GPU at hand."""
        return self.is_rtx

    @property
    def has_timing_cache(self) -> bool:
        """TensorRT-RTX keeps the API but its timing-cache calls are no-ops (deprecated in 1.2)."""
        return not self.is_rtx

    @property
    def has_version_compatible(self) -> bool:
        """VERSION_COMPATIBLE engines embed the lean runtime. TensorRT-RTX lists the flag, but its
        pip package ships no libnvinfer_lean and the build fails (measured, 1.7.1)."""
        return not self.is_rtx and self.builder_flag("VERSION_COMPATIBLE") is not None

    @property
    def default_target_compute_capabilities(self) -> list[str]:
        """What an ahead-of-time build targets when none is set: the enum minus Turing (7.5),
        which TensorRT-RTX documents as needing an explicit target."""
        return [c for c in self.target_compute_capabilities if c != "7.5"]

    @property
    def profile_multiple(self) -> int:
        """Profile H and W must be multiples of this (TensorRT-RTX rejects others, measured)."""
        return 64 if self.is_rtx else 1

    @property
    def target_compute_capabilities(self) -> list[str]:
        """For ahead-of-time builders: "8.6", ... as the ComputeCapability enum names them."""
        enum = getattr(self.trt, "ComputeCapability", None)
        if enum is None:
            return []
        caps = []
        for member in getattr(enum, "__members__", {}):
            digits = member[2:] if member.startswith("SM") else ""
            if digits.isdigit() and len(digits) >= 2:
                caps.append(f"{digits[:-1]}.{digits[-1]}")
        return caps

    def network_flags(self, strongly_typed: bool) -> int:
        """create_network() flags. STRONGLY_TYPED exists in all flavours (ignored, on, in 11)."""
        if not strongly_typed:
            return 0
        return 1 << int(self.trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    def describe(self) -> dict:
        """What the sidecar records about the builder."""
        return {"flavor": self.name, "module": self.module_name, "version": self.version}


def _import(name: str) -> ModuleType | None:
    """Import a flavour's module, or None when missing or a stub without a builder."""
    try:
        module = importlib.import_module(MODULES[name])
    except ImportError:
        return None
    except Exception:  # a broken install (missing CUDA libraries) raises OSError and friends
        return None
    # PyPI's bare "tensorrt" placeholder and half-installed packages have no Builder.
    return module if hasattr(module, "Builder") else None


def load_flavor(backend: str = "auto") -> Flavor:
    """The TensorRT flavour to build or inspect with.

    backend: "auto" (TensorRT if importable, else TensorRT-RTX), "tensorrt" or "tensorrt-rtx".
    Raises BackendUnavailable with the install hint when the module is missing.
    """
    if backend == "auto":
        names = list(AUTO_ORDER)
    elif backend in MODULES:
        names = [backend]
    else:
        raise UserError(f"unknown builder backend {backend!r}: use auto, tensorrt or tensorrt-rtx")
    for name in names:
        module = _import(name)
        if module is not None:
            version = str(getattr(module, "__version__", "unknown"))
            if name == "tensorrt":  # JetPack's: older than 6.1 / TensorRT 10.3 is refused here

                check_jetson(version)
            return Flavor(name, module, version)
    if backend == "auto":
        raise BackendUnavailable(
            "neither TensorRT nor TensorRT-RTX is importable: "
            + "; ".join(f"{n}: {INSTALL_HINT[n]}" for n in AUTO_ORDER)
        )
    raise BackendUnavailable(f"{backend} is not importable here: {INSTALL_HINT[backend]}")


#: GPUs by compute capability, to say in words where an engine runs.
GPU_FAMILIES = {
    "7.2": "Jetson Xavier", "7.5": "Turing (RTX 20xx, T4)", "8.0": "A100",
    "8.6": "Ampere RTX (RTX 30xx, A-series)", "8.7": "Jetson Orin", "8.9": "Ada (RTX 40xx, L4, L40)",
    "9.0": "Hopper (H100, H200)", "10.0": "Blackwell (B200)", "12.0": "Blackwell RTX (RTX 50xx)",
}


def runs_on(flavor: Flavor, gpu, targets: Sequence[str]) -> str:
    """Where an engine of ``flavor`` built here runs, in words: the one GPU model for TensorRT;
    for TensorRT-RTX its targets, and the common GPUs that are not among them (Jetson Orin,
    Hopper), so an ahead-of-time engine is not carried to a machine it cannot run on."""
    if not flavor.ahead_of_time:
        family = GPU_FAMILIES.get(gpu.compute_capability, "")
        return (f"GPUs of compute capability {gpu.compute_capability} only ({gpu.name}"
                + (f", {family}" if family else "") + f"), with {flavor.label} exactly")
    on = [f"{c} {GPU_FAMILIES[c]}" if c in GPU_FAMILIES else c for c in targets] or ["its default targets"]
    off = [f"{GPU_FAMILIES[c]} ({c})" for c in ("8.7", "9.0", "7.2") if c not in targets]
    return (f"compute capabilities {', '.join(on)}, with {flavor.label}"
            + (f"; NOT on {', '.join(off)}: build there with --backend tensorrt" if off else ""))
