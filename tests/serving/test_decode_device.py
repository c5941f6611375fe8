"""Where the Triton pipeline model decodes (``--decode-device``, serving/decode_device.py).

The Python-backend model (serving/python_model.py) is run here without a Triton server: its
``triton_python_backend_utils`` is a stand-in whose BLS call runs the same ONNX file with ONNX
Runtime, and the model's config is the config.pbtxt ``triton-repo`` wrote, turned into the JSON
Triton hands to ``initialize``. The reference is a local ``Pipeline`` on the same frames (NumPy
decode) and ``decode.parse`` on the same maps.

Without a GPU (CI): ``auto`` decodes in NumPy and says why, ``cuda`` fails in one line. The tests
marked ``gpu`` skip here with a reason and run where an NVIDIA GPU, cuda-python and NVRTC are:

    HIGHERHRNET_TRT_REFERENCE=../shared/reference .venv/bin/python -m pytest -v -m gpu \\
        tests/serving/test_decode_device.py

(The Triton server's own start-up line, ``serve`` with the Python backend deciding, is checked in
tests/serving/test_serve.py.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file  # noqa: E402
from higherhrnet_trt.core.gpu import query_gpu  # noqa: E402
from higherhrnet_trt.decode import DecodeConfig, parse  # noqa: E402
from higherhrnet_trt.runtime import Pipeline  # noqa: E402
from higherhrnet_trt.runtime.backends import triton_protocol as proto  # noqa: E402
from higherhrnet_trt.serving.decode_device import choose_decoder  # noqa: E402
from higherhrnet_trt.serving.repository import write_repository  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRITON_PY = Path(os.environ.get("HIGHERHRNET_TRT_TRITON_PYTHON") or REPO / ".venv-triton" / "bin" / "python")
NO_GPU = pytest.mark.skipif(query_gpu() is not None, reason="a GPU is present: auto picks the CUDA "
                            "kernels here (the gpu tests check that)")


# --------------------------------------------------------------------------------------------------
# A stand-in for triton_python_backend_utils: what the pipeline model uses of it
# --------------------------------------------------------------------------------------------------


class _Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self._array = name, np.asarray(array)

    def as_numpy(self) -> np.ndarray:
        return self._array


class _Response:
    def __init__(self, output_tensors=(), error=None) -> None:
        self.output_tensors, self._error = list(output_tensors), error

    def has_error(self) -> bool:
        return self._error is not None

    def error(self):
        return self._error


def fake_pb_utils(network_path: Path, network_name: str) -> types.ModuleType:
    """triton_python_backend_utils whose BLS requests run ``network_path`` with ONNX Runtime."""
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    net = OnnxRuntimeBackend(str(network_path)).activate()
    pb = types.ModuleType("triton_python_backend_utils")
    pb.logged = []

    class InferenceRequest:
        def __init__(self, model_name, requested_output_names, inputs) -> None:
            assert model_name == network_name
            self.names, self.inputs = list(requested_output_names), list(inputs)

        def exec(self):
            out = net.infer({t.name: t.as_numpy() for t in self.inputs})
            return _Response([_Tensor(n, out[n]) for n in self.names])

    class TritonError:
        def __init__(self, message: str) -> None:
            self._message = message

        def message(self) -> str:
            return self._message

    class Logger:
        @staticmethod
        def log_info(message: str) -> None:
            pb.logged.append(message)

    pb.Tensor, pb.InferenceRequest, pb.InferenceResponse = _Tensor, InferenceRequest, _Response
    pb.TritonError, pb.Logger = TritonError, Logger
    pb.get_output_tensor_by_name = lambda r, n: next(t for t in r.output_tensors if t.name == n)
    pb.get_input_tensor_by_name = lambda r, n: next(t for t in r.inputs if t.name == n)
    pb.close = net.deactivate
    return pb


def config_json(config_path: Path) -> dict:
    """The config as Triton hands it to initialize(): Triton's ModelConfig protobuf (tritonclient
    ships it) as JSON. Without tritonclient (the GPU machine's image) the fields the model reads,
    from the text as repository.py writes it (JSON string literals; tests/serving/test_repository.py
    parses the same text with the protobuf)."""
    text = config_path.read_text()
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2 as mc
    except ImportError:
        string = r'("(?:[^"\\]|\\.)*")'
        params = re.findall(rf"key: {string}\n  value: {{ string_value: {string} }}", text)
        return {"name": json.loads(re.search(rf"^name: {string}", text, re.M)[1]),
                "max_batch_size": int(re.search(r"^max_batch_size: (\d+)", text, re.M)[1]),
                "parameters": {json.loads(k): {"string_value": json.loads(v)} for k, v in params}}
    config = text_format.Parse(text, mc.ModelConfig())
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


def triton_args(config_path: Path, instance: str = "demo_0_0") -> dict:
    """initialize()'s args as Triton gives them: the config as JSON, the instance's name and kind."""
    return {"model_config": json.dumps(config_json(config_path)), "model_instance_name": instance,
            "model_instance_kind": "CPU", "model_instance_device_id": "0"}


def load_model(demo_onnx: Path, repo: Path, monkeypatch, decode_device: str):
    """The pipeline model of a repository written with ``decode_device``, initialised as Triton would."""
    from higherhrnet_trt.serving.python_model import TritonPythonModel

    write_repository(str(demo_onnx), str(repo), name="demo", decode_device=decode_device)
    pb = fake_pb_utils(demo_onnx, "demo_network")
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    model = TritonPythonModel()
    try:
        model.initialize(triton_args(repo / "demo" / "config.pbtxt"))
    except BaseException:
        pb.close()
        raise
    return model, pb


def frames() -> list[np.ndarray]:
    """The demo sample (640 x 480: 384 x 256 maps), its left half (portrait: 256 x 384 maps, other
    people) and noise (300 x 200: the sample's map size)."""
    image = cv2.imread(package_file(SAMPLE_IMAGE))
    noise = np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)
    return [image, np.ascontiguousarray(image[:, :320]), noise]


def served_people(model, pb, batches: list[list[np.ndarray]]) -> list[tuple]:
    """execute() on one request per batch of same-size frames -> per frame (keypoints, scores, valid)."""
    requests = [_Response() for _ in batches]
    for r, b in zip(requests, batches):
        r.inputs = [_Tensor(proto.FRAMES, np.stack(b))]
    responses = model.execute(requests)
    out = []
    for response in responses:
        assert not response.has_error(), response.error().message()
        out += proto.tensors_to_people({t.name: t.as_numpy() for t in response.output_tensors})
    return out


def assert_people_of_a_local_pipeline(people, demo_onnx: Path, images: list[np.ndarray],
                                      decoder: str = "auto") -> None:
    """decoder: the local Pipeline's; "numpy" against the CUDA path, which gets the maps projected
    as the NumPy decoder does (OpenCV), where the compiled CPU decode projects them itself."""
    # person_thr=0: the served model returns every candidate (each client applies its threshold)
    with Pipeline(str(demo_onnx), person_thr=0, decoder=decoder) as local:
        want = [local.predict(f) for f in images]
    assert sum(len(p) for p in want) > 0  # people were compared, not nothing
    for (keypoints, scores, valid), p in zip(people, want):
        assert valid == p.valid
        np.testing.assert_array_equal(keypoints, p.keypoints)
        np.testing.assert_array_equal(scores, p.scores)


# --------------------------------------------------------------------------------------------------
# Without a GPU (what CI has)
# --------------------------------------------------------------------------------------------------


@NO_GPU
def test_auto_without_a_gpu_decodes_in_numpy_and_says_why(demo_onnx, tmp_path, monkeypatch):
    model, pb = load_model(demo_onnx, tmp_path / "repo", monkeypatch, "auto")
    try:
        choice = model.decode_choice
        assert (choice.setting, choice.device, choice.decoder) == ("auto", "cpu", None)
        assert pb.logged == ["higherhrnet-trt pipeline instance demo_0_0: decode: CPU (--decode-device "
                             "auto: the CUDA kernels cannot run here: no NVIDIA driver or CUDA GPU visible "
                             "to this process)"]
        images = frames()
        people = served_people(model, pb, [[f] for f in images])
        assert_people_of_a_local_pipeline(people, demo_onnx, images)
    finally:
        model.finalize()
        pb.close()


def test_auto_over_the_kernel_limits_decodes_in_numpy_and_says_why():
    """Settings the kernels do not take (here more than 32 people) are NumPy's under auto, with the
    reason, whatever the machine; cpu never tries the kernels."""
    choice = choose_decoder("auto", DecodeConfig(max_people=40), 17, 2)
    assert choice.device == "cpu" and choice.decoder is None
    assert "--max-people up to 32, not 40" in choice.reason and "CPU" in choice.describe()
    choice = choose_decoder("cpu", DecodeConfig(), 17, 2)
    assert (choice.device, choice.decoder) == ("cpu", None)
    assert choice.describe() == "decode: CPU (--decode-device cpu: CPU asked for)"
    with pytest.raises(UserError, match="choose one of auto, cpu, cuda"):
        choose_decoder("gpu", DecodeConfig(), 17, 2)


@NO_GPU
def test_cuda_without_a_gpu_fails_to_load_in_one_line(demo_onnx, tmp_path, monkeypatch):
    with pytest.raises(UserError) as e:
        load_model(demo_onnx, tmp_path / "repo", monkeypatch, "cuda")
    message = str(e.value)
    assert "\n" not in message and message.startswith("--decode-device cuda: the CUDA decode cannot run here")
    assert "no NVIDIA driver or CUDA GPU" in message  # the cause
    assert "pip install 'higherhrnet-trt[cuda]'" in message and "--decode-device auto" in message  # the fix


class HostGpuDecoder:
    """Stand-in for kernels.decode_gpu.GpuDecoder without a GPU: the kernels' own arithmetic
    compiled for the CPU (kernels/host.py, the C++ of decode.cu's device functions), same
    constructor and decode() contract. Records what was built and closed."""

    built: list[tuple[int, int, int, int]] = []
    closed: list[tuple[int, int, int, int]] = []

    def __init__(self, num_joints, height, width, tag_dim=2, cfg=None, max_batch=1, device=0) -> None:
        assert max_batch == 1 and device == 0
        self.shape, self.cfg = (num_joints, height, width, tag_dim), cfg
        HostGpuDecoder.built.append(self.shape)

    def decode(self, heatmaps, tags, batch=None, stream=None):
        from higherhrnet_trt.kernels.host import decode_host

        J, H, W, T = self.shape
        assert heatmaps.shape == (1, J, H, W) and tags.shape == (1, J, H, W, T)
        assert heatmaps.dtype == np.float32 and tags.dtype == np.float32
        return [decode_host(heatmaps[0], tags[0], self.cfg)]

    def close(self) -> None:
        HostGpuDecoder.closed.append(self.shape)


def test_the_cuda_decode_path_with_the_kernels_arithmetic_on_the_host(demo_onnx, tmp_path, monkeypatch):
    """Everything of --decode-device cuda but the GPU itself: the model builds one decoder per map
    size with the served settings, feeds it each frame's aggregated maps and maps its people back to
    the frame; the kernels' arithmetic (run on the CPU by kernels/host.py in place of the device)
    gives the people of a local Pipeline (NumPy decode). The GPU itself: the gpu tests below."""
    pytest.importorskip("higherhrnet_trt.kernels.host")
    from higherhrnet_trt.core import gpu
    from higherhrnet_trt.serving import decode_device

    def host_gpu(index: int = 0) -> gpu.GpuInfo:
        return gpu.GpuInfo(index, "host stand-in", "8.7")

    monkeypatch.setattr(decode_device, "query_gpu", host_gpu)
    monkeypatch.setattr(decode_device, "GpuDecoder", HostGpuDecoder)
    monkeypatch.setattr(HostGpuDecoder, "built", [])
    monkeypatch.setattr(HostGpuDecoder, "closed", [])
    model, pb = load_model(demo_onnx, tmp_path / "repo", monkeypatch, "cuda")
    try:
        choice = model.decode_choice
        assert choice.device == "cuda" and choice.reason == "GPU 0, host stand-in, compute 8.7"
        assert pb.logged == ["higherhrnet-trt pipeline instance demo_0_0: decode: CUDA kernels "
                             "(--decode-device cuda: GPU 0, host stand-in, compute 8.7)"]
        tags = [t for t in model.pipe.backend.outputs if t.name == "tags"][0]  # (N, J, h, w, T)
        probe = (17, 16, 16, tags.shape[4] if len(tags.shape) == 5 else 1)
        assert HostGpuDecoder.built == HostGpuDecoder.closed == [probe]  # the start-up probe
        images = frames()
        people = served_people(model, pb, [[images[0], images[0]], images[1:2], images[2:]])
        assert_people_of_a_local_pipeline(people, demo_onnx, [images[0], *images], decoder="numpy")
        sizes = [s[1:] for s in HostGpuDecoder.built[1:]]
        assert len(sizes) == len(set(sizes)) == len(choice.decoder.sizes) == 2  # one per map size
        assert choice.decoder.cfg.max_people == model.settings.max_people
    finally:
        model.finalize()
        pb.close()
    assert sorted(HostGpuDecoder.closed) == sorted(HostGpuDecoder.built)  # finalize frees them


@NO_GPU
@pytest.mark.skipif(not TRITON_PY.is_file(), reason=f"no PyTriton environment at {TRITON_PY}: "
                    "'make triton-setup' makes it ('make test' does)")
def test_serve_cuda_without_a_gpu_is_one_line_before_triton_starts(demo_onnx):
    """``serve --decode-device cuda`` checks in its own process (the Python backend's machine and
    Python) and stops before starting Triton."""
    r = subprocess.run([str(TRITON_PY.parent / "higherhrnet-trt"), "serve", str(demo_onnx),
                        "--decode-device", "cuda", "--http-port", "1", "--grpc-port", "2",
                        "--metrics-port", "3"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: --decode-device cuda: the CUDA decode cannot run here")
    assert r.stderr.count("\n") == 1 and "server files" not in r.stderr


# --------------------------------------------------------------------------------------------------
# On a GPU (skipped here with the reason; run with the command in the module docstring)
# --------------------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_cuda_decode_step_equals_the_numpy_decode(reference_dir):
    """The served model's decode step (CudaMapDecoder, the kernels through GpuDecoder) against
    decode.parse: the official parser vectors, then random maps of three sizes through a decoder
    that keeps two (the least recently used size is closed and rebuilt)."""
    pytest.importorskip("cuda.bindings", reason="cuda-python is not installed")
    from higherhrnet_trt.serving.decode_device import CudaMapDecoder

    with np.load(reference_dir / "parser_vectors.npz") as z:
        vectors = {k: z[k] for k in z.files}
    cfg = DecodeConfig()
    hm0, tg0 = vectors["case00_heatmaps"][0], vectors["case00_tags"][0]
    decoder = CudaMapDecoder(cfg, hm0.shape[0], tg0.shape[-1] if tg0.ndim == 4 else 1, max_sizes=2)
    try:
        for case in range(20):
            hm, tg = vectors[f"case{case:02d}_heatmaps"][0], vectors[f"case{case:02d}_tags"][0]
            want, want_scores = parse(hm, tg, cfg)
            got, scores = decoder(hm, tg)
            assert np.array_equal(got, want) and np.array_equal(scores, want_scores), case
        rng = np.random.default_rng(0)
        for h, w in [(64, 96), (128, 128), (96, 64), (64, 96)]:
            hm = (rng.random((17, h, w)) ** 6).astype(np.float32)
            tg = np.round(rng.normal(scale=2.0, size=(17, h, w, 2))).astype(np.float32)
            want, want_scores = parse(hm, tg, cfg)
            got, scores = decoder(hm, tg)
            assert np.array_equal(got, want) and np.array_equal(scores, want_scores), (h, w)
        assert decoder.sizes == [(96, 64, 2), (64, 96, 2)]  # at most two kept, most recent last
    finally:
        decoder.close()


@pytest.mark.gpu
@pytest.mark.parametrize("decode_device", ["auto", "cuda"])
def test_served_model_with_the_cuda_decode_equals_a_local_pipeline(demo_onnx, tmp_path, monkeypatch,
                                                                   decode_device):
    """The whole pipeline model with the kernels decoding (auto picks them on a GPU) gives the
    people of a local Pipeline (NumPy decode) on the same frames, in batches of frames of a size."""
    pytest.importorskip("cuda.bindings", reason="cuda-python is not installed")
    model, pb = load_model(demo_onnx, tmp_path / "repo", monkeypatch, decode_device)
    try:
        choice = model.decode_choice
        assert choice.device == "cuda" and choice.decoder is not None, choice.reason
        assert pb.logged[0].endswith(f"decode: CUDA kernels (--decode-device {decode_device}: "
                                     f"{choice.reason})") and "GPU 0" in choice.reason
        images = frames()
        people = served_people(model, pb, [[images[0], images[0][:, ::-1].copy()], images[1:2], images[2:]])
        assert_people_of_a_local_pipeline(people, demo_onnx, [images[0], images[0][:, ::-1].copy(),
                                                              *images[1:]], decoder="numpy")
        assert len(choice.decoder.sizes) == 2  # one decoder per map size (frames())
    finally:
        model.finalize()
        pb.close()
