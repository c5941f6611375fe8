"""The pipeline model run by Triton's Python backend: uint8 frames in, people out.

Triton loads ``REPO/NAME/1/model.py``, which imports :class:`TritonPythonModel` from here. Each
instance holds a local :class:`~higherhrnet_trt.runtime.pipeline.Pipeline` whose backend is the
network model on the same server, called through Triton's BLS (business logic scripting): the
pre-processing (warp, normalise), multi-scale aggregation and the NumPy decode run here, the
network runs wherever Triton runs NAME_network (TensorRT or ONNX Runtime on a GPU, or PyTriton's
Python model in ``higherhrnet-trt serve``). The results are a local Pipeline's by construction:
the same code with the same settings, only the network call crosses a process.

Everything this model needs (model metadata, decode settings, the network's name and tensors)
comes from its config.pbtxt ``parameters`` (serving.repository.pipeline_config).

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

PARAM_NETWORK_IO = "higherhrnet_trt.network_io"


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


def pipeline_from_parameters(params: Mapping[str, str], pb_utils, max_batch: int):
    """A local Pipeline over the BLS network, configured from the pipeline model's parameters."""
    from ..decode import DecodeConfig
    from ..runtime.pipeline import Pipeline

    meta = ModelMeta.from_json(json.loads(params[proto.PARAM_META]))
    settings = proto.ServerSettings.from_json(params[proto.PARAM_SETTINGS])
    decode = dict(settings.decode)
    decode["joint_order"] = tuple(decode["joint_order"])
    backend = BlsBackend(params[proto.PARAM_NETWORK], json.loads(params[PARAM_NETWORK_IO]), meta, pb_utils)
    pipe = Pipeline(params[proto.PARAM_NETWORK], backend=backend, scales=settings.scales,
                    project2image=settings.project2image, decode=DecodeConfig(**decode),
                    max_batch=max(1, max_batch))
    return pipe.activate(), settings


class TritonPythonModel:
    """Triton Python-backend model: execute() gets the requests the dynamic batcher gathered,
    predicts all their frames in one predict_batch (frames of a size share network batches) and
    answers each request with its people (triton_protocol)."""

    def initialize(self, args: dict) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in (config.get("parameters") or {}).items()}
        self.pipe, self.settings = pipeline_from_parameters(params, pb_utils,
                                                            int(config.get("max_batch_size", 1) or 1))
        self.num_joints = self.pipe.meta.num_joints

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
