"""The pipeline model run by Triton's Python backend: uint8 frames in, people out.

Triton loads ``REPO/NAME/1/model.py``, which imports :class:`TritonPythonModel` from here. Each
instance holds a local :class:`~higherhrnet_trt.runtime.pipeline.Pipeline` whose backend is the
network model on the same server, called through Triton's BLS (business logic scripting): the
pre-processing (warp, normalise), multi-scale aggregation and the decode (NumPy, or the CUDA
kernels where a GPU is usable: serving.decode_device, logged at start-up) run here, the network
runs wherever Triton runs NAME_network (TensorRT or ONNX Runtime on a GPU, or PyTriton's Python
model in ``higherhrnet-trt serve``). The results are a local Pipeline's by construction:
the same code with the same settings, only the network call crosses a process.

Everything this model needs (model metadata, decode settings and device, the network's name and
tensors) comes from its config.pbtxt ``parameters`` (serving.repository.pipeline_config).

``triton_python_backend_utils`` exists only inside Triton's Python backend stub: imported in
initialize().
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from ..core.metadata import ModelMeta
from ..runtime.backends import triton_protocol as proto
from ..runtime.backends.base import Backend, TensorSpec
from ..runtime.pipeline import Pipeline
from .decode_device import (
    DEFAULT_DECODE_DEVICE,
    PARAM_DECODE_DEVICE,
    CudaMapDecoder,
    choose_decoder,
    decode_config_of,
    tag_dim_of,
)

PARAM_NETWORK_IO = "higherhrnet_trt.network_io"
#: How each instance's start-up line in Triton's log begins (serve repeats these lines).
LOG_PREFIX = "higherhrnet-trt pipeline instance"


class _ServedPipeline(Pipeline):
    """Pipeline whose decode step is the CUDA kernels when ``map_decoder`` is set (else NumPy)."""

    map_decoder: CudaMapDecoder | None = None

    def decode_maps(self, heatmaps: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.map_decoder is None:
            return super().decode_maps(heatmaps, tags)
        return self.map_decoder(heatmaps, tags)


class BlsBackend(Backend):
    """The network model on the same Triton server, run through BLS (pb_utils.InferenceRequest).

    network: the network model's name; io: {"inputs": [...], "outputs": [...]} of
    {"name", "shape", "dtype"} (batch first); meta: the model's ModelMeta; pb_utils: the Python
    backend's utility module.
    """

    name = "triton-bls"

    def __init__(self, network: str, io: dict, meta: ModelMeta, pb_utils) -> None:
        super().__init__(network)
        self._io = io
        self._meta = meta
        self._pb = pb_utils

    def activate_impl(self) -> None:
        pass  # the network model is Triton's to load; BLS calls reach it once it is ready

    def deactivate_impl(self) -> None:
        pass

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        pb = self._pb
        names = [o.name for o in self.outputs]
        request = pb.InferenceRequest(
            model_name=self.path, requested_output_names=names,
            inputs=[pb.Tensor(k, np.ascontiguousarray(v)) for k, v in feeds.items()])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"network model {self.path!r}: {response.error().message()}")
        return {n: pb.get_output_tensor_by_name(response, n).as_numpy() for n in names}

    @staticmethod
    def _specs(items) -> list[TensorSpec]:
        return [TensorSpec(t["name"], tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"])) for t in items]

    @property
    def inputs(self) -> list[TensorSpec]:
        return self._specs(self._io["inputs"])

    @property
    def outputs(self) -> list[TensorSpec]:
        return self._specs(self._io["outputs"])

    @property
    def metadata(self) -> ModelMeta:
        return self._meta


def pipeline_from_parameters(params: Mapping[str, str], pb_utils, max_batch: int, device: int = 0):
    """A local Pipeline over the BLS network, configured from the pipeline model's parameters,
    decoding where ``higherhrnet_trt.decode_device`` says (serving.decode_device; GPU ``device``).
    Returns (activated pipeline, ServerSettings, DecodeChoice); UserError when the decode device
    asked for cannot run here (before the network is touched)."""
    meta = ModelMeta.from_json(json.loads(params[proto.PARAM_META]))
    settings = proto.ServerSettings.from_json(params[proto.PARAM_SETTINGS])
    cfg = decode_config_of(settings)
    io = json.loads(params[PARAM_NETWORK_IO])
    # Repositories written before the setting existed have no key: the default.
    choice = choose_decoder(params.get(PARAM_DECODE_DEVICE) or DEFAULT_DECODE_DEVICE, cfg, meta.num_joints,
                            tag_dim_of(io["outputs"][1]["shape"]), device)
    try:
        backend = BlsBackend(params[proto.PARAM_NETWORK], io, meta, pb_utils)
        pipe = _ServedPipeline(params[proto.PARAM_NETWORK], backend=backend, scales=settings.scales,
                               project2image=settings.project2image, decode=cfg, max_batch=max(1, max_batch),
                               person_thr=0.0)  # every candidate: each client applies its person_thr
        pipe.map_decoder = choice.decoder
        return pipe.activate(), settings, choice
    except BaseException:  # the decoder's device buffers go with the failed load
        if choice.decoder is not None:
            choice.decoder.close()
        raise


class TritonPythonModel:
    """Triton Python-backend model: execute() gets the requests the dynamic batcher gathered,
    predicts all their frames in one predict_batch (frames of a size share network batches) and
    answers each request with its people (triton_protocol)."""

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        # A KIND_GPU instance group gives each instance its GPU; KIND_CPU (what triton-repo writes)
        # decodes on GPU 0 of those visible (CUDA_VISIBLE_DEVICES).
        device = int(args.get("model_instance_device_id") or 0) \
            if str(args.get("model_instance_kind", "")).upper() == "GPU" else 0
        self.pipe, self.settings, self.decode_choice = pipeline_from_parameters(
            params, pb_utils, int(config.get("max_batch_size", 1) or 1), device)
        self.num_joints = self.pipe.meta.num_joints
        log_info(pb_utils, f"{LOG_PREFIX} {args.get('model_instance_name') or config.get('name', '')}: "
                           f"{self.decode_choice.describe()}")

    def execute(self, requests: list) -> list:
        pb = self._pb
        batches = [pb.get_input_tensor_by_name(r, proto.FRAMES).as_numpy() for r in requests]
        frames = [f for b in batches for f in b]
        try:
            poses = self.pipe.predict_batch(frames)
        except Exception as e:  # one bad batch answers its requests with the error, the model lives on
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return [pb.InferenceResponse(output_tensors=[], error=pb.TritonError(message))
                    for _ in requests]
        responses, start = [], 0
        for b in batches:
            tensors = proto.poses_to_tensors(poses[start:start + len(b)], self.settings.max_people,
                                             self.num_joints)
            start += len(b)
            responses.append(pb.InferenceResponse(
                output_tensors=[pb.Tensor(k, v) for k, v in tensors.items()]))
        return responses

    def finalize(self) -> None:
        self.pipe.deactivate()
        if self.decode_choice.decoder is not None:
            self.decode_choice.decoder.close()


def log_info(pb_utils, message: str) -> None:
    """One line in Triton's log (the Python backend's Logger, Triton 22.12 and later), else on
    stderr (which Triton passes on from the backend's stub)."""
    logger = getattr(pb_utils, "Logger", None)
    if logger is not None:
        logger.log_info(message)
    else:
        import sys

        print(message, file=sys.stderr, flush=True)
