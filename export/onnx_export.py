"""Export HigherHRNet to ONNX with the official test-time tensor math inside the graph.

With ``outputs="aggregated"`` (default) the graph does what the official ``get_multi_stage_outputs``
does before any resizing to the image, so an engine runs it on the GPU:
- flip test as a batch of two (image, mirrored image); mirrored outputs are flipped back and their
  joints permuted by the flip index;
- stride-4 maps upsampled x2 (bilinear, align_corners=False) to stride 2, heatmaps averaged with the
  stride-2 heatmaps, then averaged over image / mirrored image.

Outputs: ``heatmaps`` (N, J, H/2, W/2) and ``tags`` (N, J, H/2, W/2, T), T = 2 with flip (image,
mirrored image) else 1. Tags are given at stride 2 on purpose: the official code upsamples the
stride-4 tag maps to stride 2 first and only then to the input size, and checked against the
official pipeline vectors a single stride-4 -> input upsample differs by up to 0.53 while the
two-step one matches to 1e-5. ``outputs="raw"`` exports the two network outputs unchanged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from higherhrnet_trt.core.errors import UserError, deferred_interrupts
from higherhrnet_trt.core.files import atomic_path
from higherhrnet_trt.core.formats import SIZE_MULTIPLE
from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import ModelMeta, write_metadata

from .configs import ModelConfig

onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")

INPUT_NAME = "image"
OPSET = 18  # torch's dynamo exporter: Resize has no opset-17 adapter; TensorRT 10.3 parses 18.


class AggregatedGraph(nn.Module):
    """HigherHRNet + the official test-time tensor math (see module docstring)."""

    def __init__(self, model: nn.Module, flip: bool = True, flip_index: list[int] | None = None):
        super().__init__()
        cfg: ModelConfig = model.cfg
        if cfg.num_deconvs != 1 or not cfg.with_ae_loss[0] or cfg.with_ae_loss[1]:
            raise UserError("aggregated export supports the official head (1 deconv, tags at stride 4)")
        self.model = model
        self.num_joints = cfg.num_joints
        self.flip = flip
        index = flip_index if flip_index is not None else keypoint_set(cfg.dataset).flip_index
        self.register_buffer("flip_index", torch.tensor(list(index), dtype=torch.long), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = image.shape[0]
        x = torch.cat([image, torch.flip(image, [3])], 0) if self.flip else image
        out4, out2 = self.model(x)
        up = F.interpolate(out4, scale_factor=2.0, mode="bilinear", align_corners=False)
        j = self.num_joints
        heatmaps = (up[:, :j] + out2[:, :j]) / 2.0
        tags = up[:, j:]
        if not self.flip:
            return heatmaps, tags.unsqueeze(4)
        heat_m = torch.flip(heatmaps[n:], [3]).index_select(1, self.flip_index)
        tags_m = torch.flip(tags[n:], [3]).index_select(1, self.flip_index)
        return (heatmaps[:n] + heat_m) / 2.0, torch.stack([tags[:n], tags_m], dim=4)


class RawGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out4, out2 = self.model(image)
        return out4, out2


def graph_meta(cfg: ModelConfig, outputs: str = "aggregated", flip: bool = True, dynamic: bool = False,
               random_weights: bool = False, meta: ModelMeta | None = None) -> ModelMeta:
    """The metadata of an AggregatedGraph / RawGraph of ``cfg``: what the ONNX file embeds, and what
    the PyTorch backend reports for the same graph run in PyTorch."""
    meta = meta or ModelMeta.for_dataset(cfg.dataset)
    meta.model_name = f"higherhrnet_{cfg.name}"
    meta.config_name = cfg.name
    meta.input_size = cfg.input_size
    meta.outputs = outputs
    meta.flip = flip
    meta.heatmap_stride = 2
    meta.tag_stride = 2 if outputs == "aggregated" else 4
    meta.tag_layout = ("N,J,H,W,T; T=2: image, mirrored image" if flip else "N,J,H,W,T; T=1") \
        if outputs == "aggregated" else "output0 channels J..2J-1 (stride 4)"
    meta.dynamic_shape = dynamic
    meta.random_weights = random_weights
    return meta


@dataclass
class ExportReport:
    path: str
    input_shape: tuple[int, ...]
    output_names: list[str]
    max_abs_error: dict[str, float] = field(default_factory=dict)
    rel_error: dict[str, float] = field(default_factory=dict)
    export_seconds: float = 0.0
    check_seconds: float = 0.0
    #: axes of the input that are dynamic (0: batch, 2: height, 3: width); input_shape is then
    #: only the shape traced and checked, not what the file takes
    dynamic_axes: tuple[int, ...] = ()

    def input_text(self) -> str:
        """The input as the file takes it: "1x3x512x512", or "1x3xheightxwidth, traced at ..."."""
        names = {0: "batch", 2: "height", 3: "width"}
        dims = "x".join(names[a] if a in self.dynamic_axes else str(n)
                        for a, n in enumerate(self.input_shape))
        if not self.dynamic_axes:
            return dims
        traced = "x".join(map(str, self.input_shape))
        return f"{dims}, traced at {traced}"

    def summary(self) -> str:
        errs = ", ".join(f"{k} max|err| {v:.2e} (rel {self.rel_error[k]:.1e})"
                         for k, v in self.max_abs_error.items())
        return (f"wrote {self.path} (input {self.input_text()}) in {self.export_seconds:.1f}s; "
                f"ONNX Runtime vs PyTorch: {errs or 'not checked'}")


def _hw(input_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise UserError(f"input size {h}x{w} must be a multiple of {SIZE_MULTIPLE} in both sides "
                        f"(the official sizing rounds to {SIZE_MULTIPLE}): use e.g. 512 or 640")
    return h, w


def export_onnx(
    model: nn.Module,
    path: str,
    input_size: int | tuple[int, int] | None = None,
    batch: int = 1,
    dynamic: bool = False,
    dynamic_batch: bool = False,
    flip: bool = True,
    outputs: str = "aggregated",
    meta: ModelMeta | None = None,
    check: bool = True,
    rtol: float = 1e-3,
    random_weights: bool = False,
) -> ExportReport:
    """Export ``model`` (a HigherHRNet in eval mode) to ``path``.

    input_size: H or (H, W) of the traced input, pixels, multiples of 64 (default: the config's).
    dynamic: H and W dynamic (multiples of 64). dynamic_batch: N dynamic.
    flip: run the flip test inside the graph (aggregated outputs only).
    outputs: "aggregated" (heatmaps + tags, see module docstring) or "raw" (output0, output1).
    check: run the file with ONNX Runtime on the traced input and compare with PyTorch; raises
        UserError when max|err| / max|ref| exceeds ``rtol`` for any output.
    """
    cfg: ModelConfig = model.cfg
    h, w = _hw(input_size or cfg.input_size)
    if int(batch) < 1:
        raise UserError(f"batch must be 1 or more, got {batch}")
    graph, out_names, flip = _graph(model.eval(), outputs, flip)
    meta = graph_meta(cfg, outputs, flip, bool(dynamic or dynamic_batch), random_weights, meta)
    meta.exporter = f"higherhrnet_trt 0.1.0, torch {torch.__version__}, opset {OPSET}"
    example, dyn = _example_input(batch, h, w, dynamic, dynamic_batch)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    t0 = time.perf_counter()
    program = _trace(graph, example, out_names, dyn)

    # Written under a temporary name and renamed only once checked: a failed check, an error or an
    # interrupt leaves no ONNX (and no torn one) under the name.
    with atomic_path(path) as tmp:
        _write_with_metadata(program.model_proto, tmp, meta, cfg)
        report = ExportReport(path, tuple(example.shape), out_names, export_seconds=time.perf_counter() - t0,
                              dynamic_axes=tuple(sorted(dyn["image"])) if dyn else ())
        if check:
            _check_against_torch(graph, example, tmp, report, rtol)
    return report


def _graph(model: nn.Module, outputs: str, flip: bool) -> tuple[nn.Module, list[str], bool]:
    """(graph to trace in eval mode, its output names, flip as applied: raw outputs have none)."""
    if outputs == "aggregated":
        graph: nn.Module = AggregatedGraph(model, flip=flip)
        out_names = ["heatmaps", "tags"]
    elif outputs == "raw":
        graph, flip = RawGraph(model), False
        out_names = ["output0", "output1"]
    else:
        raise UserError(f"outputs must be 'aggregated' or 'raw', not {outputs!r}")
    graph.eval()
    return graph, out_names, flip


def _example_input(batch: int, h: int, w: int, dynamic: bool, dynamic_batch: bool):
    """(seeded (N, 3, H, W) input to trace with, torch.export dynamic shapes or None). Dynamic
    axes are traced at sizes torch.export does not specialise into constants."""
    if dynamic_batch:
        batch = max(batch, 2)  # torch.export specialises a traced size of 1 into a constant
    if dynamic:
        h, w = max(h, 2 * SIZE_MULTIPLE), max(w, 2 * SIZE_MULTIPLE)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(batch, 3, h, w, generator=gen)
    dyn = None
    if dynamic or dynamic_batch:
        from torch.export import Dim

        dims = {}
        if dynamic_batch:
            dims[0] = Dim("batch", min=1, max=64)
        if dynamic:
            dims[2] = SIZE_MULTIPLE * Dim("h64", min=1, max=64)
            dims[3] = SIZE_MULTIPLE * Dim("w64", min=1, max=64)
        dyn = {"image": dims}
    return example, dyn


def _trace(graph: nn.Module, example, out_names: list[str], dyn):
    """torch.onnx's dynamo exporter, optimised (an ONNXProgram)."""
    import logging
    import warnings

    # torch.onnx logs a warning per missing torchvision op; none of them is used here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    # Ctrl-C inside torch.export's native code aborted the process (exit 134, no clean-up): the
    # interrupt waits for the export step to return, then stops the command as usual.
    with warnings.catch_warnings(), deferred_interrupts("the ONNX export step"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph, (example,), input_names=[INPUT_NAME], output_names=out_names,
            opset_version=OPSET, dynamo=True, dynamic_shapes=dyn, verbose=False,
        )
    program.optimize()
    return program


def _check_against_torch(graph: nn.Module, example, path: str, report: ExportReport, rtol: float) -> None:
    """ONNX Runtime on the written file vs PyTorch on the traced input, into ``report``; a
    UserError when any output's max|err| / max|ref| exceeds ``rtol`` or either side computes NaN /
    inf (NaN compares false with everything: ``max|err| nan`` must not pass)."""
    t1 = time.perf_counter()
    with torch.no_grad():
        expected = [t.numpy() for t in graph(example)]
    for name, ref in zip(report.output_names, expected):
        if not np.isfinite(ref).all():
            raise UserError(f"PyTorch computes NaN/inf in output {name!r} on the check input: the "
                            "weights hold NaN/inf or overflow (damaged checkpoint?); check it with "
                            "torch.load and export a good one")
    got = _run_onnxruntime(path, example.numpy())
    for name, ref, val in zip(report.output_names, expected, got):
        err = float(np.abs(ref - val).max())
        report.max_abs_error[name] = err
        report.rel_error[name] = err / max(float(np.abs(ref).max()), 1e-12)
    report.check_seconds = time.perf_counter() - t1
    bad = {k: v for k, v in report.rel_error.items() if not v <= rtol}  # NaN is bad too
    if bad:
        raise UserError(f"ONNX Runtime disagrees with PyTorch beyond {rtol:g} relative: {bad}; no ONNX "
                        "written (report it with the checkpoint and command)")


def _write_with_metadata(proto, path: str, meta: ModelMeta, cfg: ModelConfig) -> None:
    props = meta.to_props()
    props["higherhrnet_trt.model_config"] = cfg.to_json()
    write_metadata(proto, props)  # with the weights' hash, checked by 'info'
    proto.producer_name = "higherhrnet_trt"
    _name_dynamic_dims(proto)
    onnx.save_model(proto, path)  # export_onnx's temporary name, renamed once checked


def _name_dynamic_dims(proto) -> None:
    """Readable names for the dynamic dims: torch.export names them after its symbols ("64*h64" in
    the input, "32*s3" in the outputs, which 'info' showed as 1x17x32*s3x32*s58). The input gets
    batch / height / width; the outputs (N, J, H, W[, T] in every graph written here) get the
    input's name scaled by the ratio of the two factors ("height/2"), so 'info' says how the
    output size follows the input. The output symbols are torch's own (s3, not h64): matched by
    axis, not by symbol."""
    names = {0: "batch", 2: "height", 3: "width"}
    factors: dict[int, int] = {}  # input axis -> its factor ("64*h64": 64)
    for axis, dim in enumerate(proto.graph.input[0].type.tensor_type.shape.dim):
        if dim.dim_param and axis in names:
            parsed = _symbol(dim.dim_param)
            if parsed:
                factors[axis] = parsed[0]
            dim.dim_param = names[axis]
    for output in proto.graph.output:
        for axis, dim in enumerate(output.type.tensor_type.shape.dim):
            parsed = _symbol(dim.dim_param) if dim.dim_param else None
            if parsed and axis in factors:
                dim.dim_param = _scaled(names[axis], parsed[0], factors[axis])


def _symbol(param: str) -> tuple[int, str] | None:
    """(factor, symbol) of a torch.export dim "64*s3" or "s3"; None for anything else."""
    factor, _, symbol = param.rpartition("*")
    if not symbol.isidentifier() or (factor and not factor.isdigit()):
        return None
    return (int(factor) if factor else 1), symbol


def _scaled(name: str, factor: int, input_factor: int) -> str:
    """``name`` * factor / input_factor written simply: "height", "height/2", "height*3/4"."""
    if factor == input_factor:
        return name
    if input_factor % factor == 0:
        return f"{name}/{input_factor // factor}"
    if factor % input_factor == 0:
        return f"{name}*{factor // input_factor}"
    return f"{name}*{factor}/{input_factor}"


def _run_onnxruntime(path: str, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {INPUT_NAME: x})


def read_metadata(path: str) -> ModelMeta:
    """ModelMeta embedded in an exported ONNX file (reads the header only, not the weights)."""
    proto = onnx.load_model(path, load_external_data=False)
    return ModelMeta.from_props({p.key: p.value for p in proto.metadata_props})
