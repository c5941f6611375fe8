"""PyTorch backend: a HigherHRNet checkpoint run in PyTorch, for GPUs without TensorRT (and CPUs).

The graph is ``export.onnx_export.AggregatedGraph``, the very module the ONNX export traces, so the
outputs (heatmaps (N, J, H/2, W/2), tags (N, J, H/2, W/2, T)) and the metadata are those of the
ONNX file a checkpoint would export to: the pipeline, the NumPy decode and the CUDA kernels take
them unchanged.

On CUDA it runs in FP16 by default (``half``), optionally through ``torch.compile`` and CUDA graphs
(``cuda_graph``: one capture per input shape, replayed on later frames of that shape; the input is
copied into the captured buffer, so the per-frame path allocates nothing). Device tensors can go in
without a host round trip through :meth:`TorchBackend.infer_device` (a torch tensor, or anything with
``__cuda_array_interface__`` / DLPack: CuPy, pycuda ``GPUArray``, ...).

torch is imported on ``activate()``; a machine without it pays nothing until this backend is chosen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.core.metadata import ModelMeta

from ...export.checkpoint import check_compatible, describe_state_dict, read_state_dict
from ...export.configs import get_config
from .base import Backend, TensorSpec

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps", "tags")


def _import_torch():
    try:
        import torch
    except ImportError as e:
        raise BackendUnavailable("the torch backend needs PyTorch: pip install 'higherhrnet-trt[export]' "
                                 "(on Jetson: NVIDIA's JetPack torch wheel)") from e
    return torch


def as_torch_tensor(array: Any, torch=None):
    """A torch view (no copy) of a device or host array: torch tensors pass through; objects with
    ``__dlpack__`` (CuPy, NumPy >= 1.22) or ``__cuda_array_interface__`` (pycuda GPUArray, Numba)
    are wrapped; NumPy arrays become CPU tensors sharing their memory."""
    torch = torch or _import_torch()
    if isinstance(array, torch.Tensor):
        return array
    if isinstance(array, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array))
    if hasattr(array, "__cuda_array_interface__"):
        # torch.as_tensor reads __cuda_array_interface__ without copying (pycuda, Numba, CuPy).
        return torch.as_tensor(array, device="cuda")
    if hasattr(array, "__dlpack__"):
        return torch.from_dlpack(array)
    raise UserError(f"cannot use a {type(array).__name__} as an input tensor: pass a torch tensor, a NumPy "
                    "array, or an object with __cuda_array_interface__ / __dlpack__ (CuPy, pycuda)")


class TorchBackend(Backend):
    """Runs a HigherHRNet checkpoint (.pth / .pth.tar, official or MMPose 0.x) with PyTorch.

    config: a name from ``export.configs.CONFIGS``; "auto" picks the one whose widths and joints fit
        the checkpoint (an error names the candidates when several do).
    device: "cuda", "cuda:N" or "cpu"; "auto" = CUDA when torch sees a GPU, else CPU.
    half: FP16 weights and activations (default: on CUDA yes, on CPU no). Outputs are float32.
    flip: run the flip test, as exported ONNX files do by default.
    compile: wrap the graph in ``torch.compile`` (first frames of each shape are slow).
    cuda_graph: capture one CUDA graph per input shape and replay it (CUDA only; static shapes).
    """

    name = "torch"
    options = ("config", "device")

    def __init__(self, path: str, config: str = "auto", device: str = "auto", half: bool | None = None,
                 flip: bool = True, compile: bool = False, cuda_graph: bool = False) -> None:
        super().__init__(path)
        self.config = config
        self.device_name = device
        self.half = half
        self.flip = flip
        self.compile = compile
        self.cuda_graph = cuda_graph
        self._torch = None
        self._graph_module = None
        self._device = None
        self._dtype = None
        self._meta: ModelMeta | None = None
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, tuple[Any, Any]]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    def _resolve_config(self, sd: Mapping) -> str:
        if self.config != "auto":
            return self.config
        candidates = describe_state_dict(sd)["matching_configs"]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise UserError(f"{self.path}: no known config fits this checkpoint; pass config=NAME "
                            "(--config NAME)")
        # Same weights, several input sizes (w32_512 / w32_640): the size only changes the default
        # letterbox, not the weights; say which one was taken rather than guess silently.
        raise UserError(f"{self.path}: several configs fit this checkpoint ({', '.join(candidates)}); "
                        "pass config=NAME (--config NAME)")

    def activate_impl(self) -> None:
        if not os.path.isfile(self.path):
            raise UserError(f"checkpoint not found: {self.path}")
        torch = _import_torch()
        # Here, not at the top: it imports torch at load (nn.Module classes); torch is an extra.
        from ...export.model import HigherHRNet
        from ...export.onnx_export import AggregatedGraph, graph_meta

        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch sees no CUDA GPU (CPU-only build, or no NVIDIA driver); "
                                     "use device='cpu' or --backend onnxruntime")
        self._device = torch.device(device)
        half = self.half if self.half is not None else self._device.type == "cuda"
        self._dtype = torch.float16 if half else torch.float32

        sd = read_state_dict(self.path)
        cfg = get_config(self._resolve_config(sd))
        model = HigherHRNet(cfg)
        check_compatible(sd, model, cfg)
        model.load_state_dict(sd, strict=True)
        graph = AggregatedGraph(model, flip=self.flip).eval().to(self._device, self._dtype)
        if self.compile:
            graph = torch.compile(graph, mode="max-autotune-no-cudagraphs")
        self._graph_module = graph
        self._torch = torch
        self._meta = graph_meta(cfg, "aggregated", self.flip, dynamic=True)
        self._meta.precision = "fp16" if half else "fp32"
        self._meta.exporter = f"higherhrnet_trt torch backend, torch {torch.__version__}"

    def deactivate_impl(self) -> None:
        self._graphs.clear()
        self._graph_module = None
        if self._torch is not None and self._device is not None and self._device.type == "cuda":
            self._torch.cuda.empty_cache()

    # -- inference -----------------------------------------------------------------------------------
    def _run(self, x):
        """x: (N, 3, H, W) tensor on the device, model dtype -> (heatmaps, tags) float32 tensors."""
        torch = self._torch
        with torch.inference_mode():
            if self.cuda_graph and self._device.type == "cuda":
                heatmaps, tags = self._replay(x)
            else:
                heatmaps, tags = self._graph_module(x)
            return heatmaps.float(), tags.float()

    def _replay(self, x):
        """CUDA-graph path: capture once per shape (after warm-up on a side stream), then copy the
        input into the captured buffer and replay."""
        torch = self._torch
        key = tuple(x.shape)
        if key not in self._graphs:
            static_in = x.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # cuDNN autotuning and lazy allocations happen outside the capture
                    self._graph_module(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._graph_module(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        host = torch.from_numpy(np.ascontiguousarray(feeds[INPUT_NAME]))
        if self._device.type == "cuda":
            host = host.pin_memory()
        x = host.to(self._device, self._dtype, non_blocking=True)
        heatmaps, tags = self._run(x)
        return {"heatmaps": heatmaps.cpu().numpy(), "tags": tags.cpu().numpy()}

    def infer_device(self, image: Any) -> tuple[Any, Any]:
        """Run on an input already on the device, without a host copy.

        image: (N, 3, H, W) float, pre-processed (normalised RGB), as a torch tensor or any
            ``__cuda_array_interface__`` / DLPack array (CuPy, pycuda GPUArray). Returns
            (heatmaps, tags) as float32 torch tensors on the device; ``torch.utils.dlpack`` or
            ``cupy.from_dlpack`` hands them on without copies.
        """
        if not self.is_active:
            raise RuntimeError("torch backend used before activate()")
        x = as_torch_tensor(image, self._torch)
        if x.ndim != 4 or x.shape[1] != 3:
            raise UserError(f"input must be (N, 3, H, W), got {tuple(x.shape)}")
        return self._run(x.to(self._device, self._dtype))

    # -- description ---------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec(INPUT_NAME, (-1, 3, -1, -1), np.dtype(np.float32))]

    @property
    def outputs(self) -> list[TensorSpec]:
        t = 2 if self.flip else 1
        return [TensorSpec("heatmaps", (-1, self._meta.num_joints, -1, -1), np.dtype(np.float32)),
                TensorSpec("tags", (-1, self._meta.num_joints, -1, -1, t), np.dtype(np.float32))]

    @property
    def metadata(self) -> ModelMeta:
        return self._meta

    @property
    def device(self) -> str:
        """The torch device the model runs on (valid once active)."""
        return str(self._device)
