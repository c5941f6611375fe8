"""Triton model repositories for a HigherHRNet model: the network and the pipeline around it.

``write_repository`` lays out, for model NAME::

    REPO/
      NAME_network/            the network: onnxruntime_onnx (from an ONNX) or tensorrt_plan
        config.pbtxt             (from an engine), dynamic batching, instance groups
        1/model.onnx | model.plan
      NAME/                    the pipeline, Triton's Python backend: uint8 frames in, people out
        config.pbtxt             (serving.python_model: pre-processing, the network through BLS,
        1/model.py               multi-scale aggregation, decode in NumPy or with the CUDA
                                 kernels (serving.decode_device); see triton_protocol)

A client talks to NAME only (``Pipeline("triton://HOST:PORT/NAME")``). The pipeline model's
parameters carry the model metadata, the decode settings and device and the network's tensors, so
it needs no file of its own beside model.py; its Python environment needs
``pip install higherhrnet-trt[cv]`` (plus ``[cuda]`` and NVRTC for the CUDA decode).

The same config texts serve ``higherhrnet-trt serve`` (serving.server), where PyTriton provides
the network model instead of NAME_network/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError
from ..core.files import check_writable, name_output
from ..core.limits import QUEUE_DELAY_US_RANGE, check_scales
from ..core.metadata import ModelMeta
from ..decode import DecodeConfig
from ..engine.sidecar import read_sidecar
from ..runtime.backends import triton_protocol as proto
from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from .decode_device import DEFAULT_DECODE_DEVICE, PARAM_DECODE_DEVICE, check_decode_device, tag_dim_of
from .python_model import PARAM_NETWORK_IO

#: the network's model name beside the pipeline's
NETWORK_SUFFIX = "_network"
#: First line of every config.pbtxt written here (a protobuf text comment, which Triton ignores):
#: ``--force`` replaces only model folders that start with it.
OWN_MARKER = "# written by higherhrnet-trt triton-repo; --force may replace this model folder"

TRITON_DTYPES = {
    np.dtype(np.float32): "TYPE_FP32", np.dtype(np.float16): "TYPE_FP16",
    np.dtype(np.uint8): "TYPE_UINT8", np.dtype(np.int32): "TYPE_INT32",
    np.dtype(np.int64): "TYPE_INT64", np.dtype(bool): "TYPE_BOOL",
}


@dataclass(frozen=True)
class Tensor:
    """A model tensor as Triton sees it. shape: the full shape, batch first, -1 where dynamic."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": np.dtype(self.dtype).name}

    @classmethod
    def from_json(cls, d: dict) -> Tensor:
        return cls(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]))


@dataclass(frozen=True)
class NetworkInfo:
    """What the repository needs to know of a model file."""

    path: str
    platform: str  # Triton backend: "onnxruntime" | "tensorrt"
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    meta: ModelMeta

    @property
    def dynamic_batch(self) -> bool:
        return self.inputs[0].shape[0] < 0

    @property
    def file_name(self) -> str:
        return "model.plan" if self.platform == "tensorrt" else "model.onnx"


def inspect_model(path: str) -> NetworkInfo:
    """Inputs, outputs and metadata of an ONNX file (ONNX Runtime reads it) or of an engine (its
    sidecar: no TensorRT needed here). UserError for anything else."""
    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        with OnnxRuntimeBackend(path) as backend:
            ins = tuple(Tensor(s.name, s.shape, s.dtype) for s in backend.inputs)
            outs = tuple(Tensor(s.name, s.shape, s.dtype) for s in backend.outputs)
            return NetworkInfo(path, "onnxruntime", ins, outs, backend.metadata)
    if ext in (".engine", ".plan", ".trt"):
        sidecar = read_sidecar(path)
        if sidecar.flavor != "tensorrt":
            raise UserError(f"{path} is a {sidecar.flavor} engine; Triton's tensorrt_plan backend runs "
                            "TensorRT engines: build one with 'higherhrnet-trt build --backend tensorrt' "
                            "on the serving GPU, or give the ONNX file")

        def tensors(items) -> tuple[Tensor, ...]:
            return tuple(Tensor(t["name"], tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]))
                         for t in items)

        return NetworkInfo(path, "tensorrt", tensors(sidecar.inputs), tensors(sidecar.outputs),
                           sidecar.meta())
    raise UserError(f"{path}: expected an .onnx file or a TensorRT engine (.engine / .plan)")


# --------------------------------------------------------------------------------------------------
# config.pbtxt texts
# --------------------------------------------------------------------------------------------------


def _tensor_text(t: Tensor, batched: bool) -> str:
    dims = t.shape[1:] if batched else t.shape
    return (f'  {{\n    name: "{t.name}"\n    data_type: {TRITON_DTYPES[np.dtype(t.dtype)]}\n'
            f"    dims: [ {', '.join(str(int(d)) for d in dims)} ]\n  }}")


def _tensors_text(key: str, tensors: Sequence[Tensor], batched: bool) -> str:
    return f"{key} [\n" + ",\n".join(_tensor_text(t, batched) for t in tensors) + "\n]\n"


def _string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid protobuf text string


def network_config(name: str, info: NetworkInfo, max_batch: int, instances: int, gpu: bool,
                   queue_delay_us: int) -> str:
    """config.pbtxt of the network model. A dynamic-batch model gets Triton's dynamic batcher up to
    max_batch; a fixed-batch one max_batch_size 0 (its dims keep the batch)."""
    batched = info.dynamic_batch
    lines = [OWN_MARKER,
             f'name: "{name}"',
             f'backend: "{info.platform}"',
             f"max_batch_size: {max_batch if batched else 0}"]
    text = "\n".join(lines) + "\n"
    text += _tensors_text("input", info.inputs, batched)
    text += _tensors_text("output", info.outputs, batched)
    text += (f"instance_group [\n  {{\n    count: {instances}\n    kind: {'KIND_GPU' if gpu else 'KIND_CPU'}"
             "\n  }\n]\n")
    if batched:
        text += f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}\n"
    return text


def network_io(inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> dict:
    """The network's tensors as the pipeline model sends / gets them through BLS (batch first)."""
    return {"inputs": [t.to_json() for t in inputs], "outputs": [t.to_json() for t in outputs]}


def pipeline_config(name: str, network: str, meta: ModelMeta, settings: proto.ServerSettings,
                    network_tensors: dict, max_batch: int, instances: int,
                    queue_delay_us: int, decode_device: str = DEFAULT_DECODE_DEVICE) -> str:
    """config.pbtxt of the Python-backend pipeline model: frames in, fixed-shape people out.
    decode_device: where it decodes (serving.decode_device: auto, cpu or cuda), checked here."""
    decode_device = check_decode_device(decode_device, settings.max_people, meta.num_joints,
                                        tag_dim_of(network_tensors["outputs"][1]["shape"]))
    j, m = meta.num_joints, settings.max_people
    frames = Tensor(proto.FRAMES, (-1, -1, -1, 3), np.dtype(np.uint8))
    outputs = [Tensor(proto.KEYPOINTS, (-1, m, j, 3), np.dtype(np.float32)),
               Tensor(proto.SCORES, (-1, m), np.dtype(np.float32)),
               Tensor(proto.COUNT, (-1, 1), np.dtype(np.int32)),
               Tensor(proto.VALID, (-1, 1), np.dtype(bool))]
    params = {
        proto.PARAM_META: json.dumps(meta.to_json(), sort_keys=True),
        proto.PARAM_SETTINGS: settings.to_json(),
        proto.PARAM_NETWORK: network,
        PARAM_NETWORK_IO: json.dumps(network_tensors),
        PARAM_DECODE_DEVICE: decode_device,
    }
    text = f'{OWN_MARKER}\nname: "{name}"\nbackend: "python"\nmax_batch_size: {max_batch}\n'
    text += _tensors_text("input", [frames], True)
    text += _tensors_text("output", outputs, True)
    text += f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]\n"
    text += f"dynamic_batching {{\n  max_queue_delay_microseconds: {queue_delay_us}\n}}\n"
    for key, value in params.items():
        text += f"parameters {{\n  key: {_string(key)}\n  value: {{ string_value: {_string(value)} }}\n}}\n"
    return text


def resolve_settings(meta: ModelMeta, scales: Sequence[float] = (1.0,), project2image: bool = True,
                     decode: dict | None = None) -> proto.ServerSettings:
    """The settings a local Pipeline with these arguments decodes with (validated as it would)."""
    from dataclasses import asdict

    cfg = DecodeConfig.for_keypoints(meta.keypoints, **dict(decode or {}))
    try:
        cfg.check(meta.num_joints)
    except ValueError as e:
        raise UserError(f"decode settings do not fit this model: {e}") from None
    d = asdict(cfg)
    d["joint_order"] = list(d["joint_order"])
    return proto.ServerSettings(check_scales(scales), bool(project2image), d)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def model_py_source() -> str:
    """model.py of the pipeline model: a two-line shim, the code lives in the installed package."""
    return ('"""higherhrnet-trt pipeline model (Triton Python backend): uint8 frames in, people out.\n\n'
            "Needs higherhrnet-trt in the Python environment of the Python backend:\n"
            "    pip install 'higherhrnet-trt[cv]'\n"
            '"""\n\nfrom higherhrnet_trt.serving.python_model import TritonPythonModel  # noqa: F401\n')


def write_pipeline_model(repo: str, name: str, config_text: str) -> str:
    """REPO/NAME/config.pbtxt + 1/model.py; returns the model folder."""
    folder = os.path.join(repo, name)
    os.makedirs(os.path.join(folder, "1"), exist_ok=True)
    with open(os.path.join(folder, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config_text)
    with open(os.path.join(folder, "1", "model.py"), "w", encoding="utf-8") as f:
        f.write(model_py_source())
    return folder


def check_replaceable(folder: str, inputs: Sequence[str]) -> None:
    """UserError unless ``--force`` may remove ``folder``: a model folder this module wrote (its
    config.pbtxt starts with OWN_MARKER) that holds none of ``inputs`` (the files being read)."""
    real = os.path.realpath(folder)
    for path in inputs:
        inside = os.path.realpath(path)
        if inside == real or inside.startswith(real.rstrip(os.sep) + os.sep):
            raise UserError(f"{folder} holds the input {path}: --force would delete it; copy the "
                            "model elsewhere first, or choose another --name or -o")
    if not os.path.isdir(folder):
        raise UserError(f"{folder} exists and is not a model folder: --force replaces only model "
                        "folders written by triton-repo; remove it yourself or choose another --name")
    try:
        with open(os.path.join(folder, "config.pbtxt"), encoding="utf-8") as f:
            first = f.readline().rstrip("\n")
    except (OSError, UnicodeDecodeError):
        first = ""
    if first != OWN_MARKER:
        raise UserError(f"{folder} was not written by triton-repo (its config.pbtxt does not start "
                        "with our marker): --force replaces only those; remove it yourself or "
                        "choose another --name or -o")


def check_queue_delay(queue_delay_us: int) -> int:
    """The queue delay as an int, UserError outside core.limits.QUEUE_DELAY_US_RANGE."""
    lo, hi = QUEUE_DELAY_US_RANGE
    if not lo <= int(queue_delay_us) <= hi:
        raise UserError(f"queue_delay_us {queue_delay_us}: expected a whole number from {lo} to {hi} "
                        "microseconds")
    return int(queue_delay_us)


def _write_network_model(folder: str, model: str, file_name: str, config_text: str) -> None:
    os.makedirs(os.path.join(folder, "1"), exist_ok=True)
    shutil.copyfile(model, os.path.join(folder, "1", file_name))
    with open(os.path.join(folder, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config_text)


def _swap_in(staged: dict[str, str]) -> None:
    """Move each staged folder onto its target: the old one aside first, removed once every new
    one is in place (a failure half-way puts the old ones back)."""
    import secrets

    moved: list[tuple[str, str | None]] = []  # (target, its old folder set aside or None)
    try:
        for target, new in staged.items():
            old = None
            if os.path.lexists(target):
                old = os.path.join(os.path.dirname(target),
                                   f".{os.path.basename(target)}.{secrets.token_hex(3)}.old")
                os.rename(target, old)
            moved.append((target, old))
            os.rename(new, target)
    except BaseException:
        for target, old in reversed(moved):
            if old is not None:
                shutil.rmtree(target, ignore_errors=True)
                os.rename(old, target)
        raise
    for _, old in moved:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_repository(model: str, repo: str, name: str = "", max_batch: int = 8, instances: int = 1,
                     pipeline_instances: int = 2, gpu: bool = True, queue_delay_us: int = 2000,
                     scales: Sequence[float] = (1.0,), project2image: bool = True,
                     decode: dict | None = None, decode_device: str = DEFAULT_DECODE_DEVICE,
                     force: bool = False) -> list[str]:
    """Write the network and pipeline models of ``model`` into ``repo`` (see module docstring).

    name: the pipeline model's name (default: the model file's stem); the network is NAME_network.
    max_batch: Triton's max_batch_size for both (the network's only if its batch is dynamic).
    instances / pipeline_instances: instance counts (network on the GPU unless gpu=False).
    queue_delay_us: the dynamic batchers' max queue delay, microseconds (core.limits.QUEUE_DELAY_US_RANGE).
    scales / project2image / decode: what the pipeline decodes with (as Pipeline's arguments).
    decode_device: where it decodes: auto (the CUDA kernels where the server's Python backend can
        run them, else NumPy), cpu (NumPy) or cuda (the kernels, else the model fails to load).
    force: replace existing model folders of these names, only those written here (OWN_MARKER)
        that hold no input (:func:`check_replaceable`). Both folders are written beside their
        targets first and swapped in at the end: a failure leaves the repository as it was.
    Returns the folders written.
    """
    if os.path.exists(repo) and not os.path.isdir(repo):
        raise UserError(f"-o {repo} is a file, not a folder: give the repository folder")
    queue_delay_us = check_queue_delay(queue_delay_us)
    name = name or _stem(model)
    _check_name(name)
    info = inspect_model(model)
    network = name + NETWORK_SUFFIX
    if max_batch < 1 or instances < 1 or pipeline_instances < 1:
        raise UserError("--max-batch, --instances and --pipeline-instances must be 1 or more")
    targets = [os.path.join(repo, network), os.path.join(repo, name)]
    existing = [t for t in targets if os.path.lexists(t)]
    if existing and not force:
        raise UserError(f"{', '.join(existing)} already exist: choose another --name or -o, or pass "
                        "--force to replace them")
    for t in existing:
        check_replaceable(t, [model])
    settings = resolve_settings(info.meta, scales, project2image, decode)
    net_text = network_config(network, info, max_batch, instances, gpu, queue_delay_us)
    pipe_text = pipeline_config(name, network, info.meta, settings, network_io(info.inputs, info.outputs),
                                max_batch, pipeline_instances, queue_delay_us, decode_device)

    check_writable(repo, "-o", "give a writable repository folder", folder=True)
    created = not os.path.isdir(repo)
    os.makedirs(repo, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=repo)
    try:
        _write_network_model(os.path.join(stage, network), model, info.file_name, net_text)
        write_pipeline_model(stage, name, pipe_text)
        _swap_in({t: os.path.join(stage, os.path.basename(t)) for t in targets})
    except OSError as e:  # a full disk: named in the CLI's one line, the staging folder removed
        name_output(e, repo)
        shutil.rmtree(stage, ignore_errors=True)
        if created:  # a repository folder made here and left empty is removed too
            with contextlib.suppress(OSError):
                os.rmdir(repo)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return targets


def _stem(path: str) -> str:
    import re

    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "higherhrnet"


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UserError(f"model name {name!r}: use letters, digits, '_', '-' and '.' only (it is a "
                        "folder of the repository and part of the URL)")
