"""``serve``: the whole pipeline on this machine behind Triton's own front end, through PyTriton.

PyTriton (``nvidia-pytriton``) ships a Triton Inference Server binary with the Python backend. Two
models run in it:

- ``NAME_network``: the network, bound with PyTriton: Triton's dynamic batcher gathers the input
  tensors of concurrent requests (up to max_batch) and this process runs them with the local
  backend (ONNX Runtime, OpenVINO, TensorRT...);
- ``NAME``: the pipeline model of ``triton-repo`` (serving.python_model, loaded by the Triton
  binary's Python backend from a repository written here), which clients call with uint8 frames.

Triton serves HTTP, gRPC and Prometheus metrics, bound to 127.0.0.1 unless told otherwise.
PyTriton needs numpy < 2 (the Makefile's .venv-triton); clients need only tritonclient.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..core.errors import BackendUnavailable, UserError
from ..runtime.backends import create_backend
from ..runtime.backends import triton_protocol as proto
from ..runtime.backends.triton_backend import TritonBackend
from .decode_device import (
    DECODE_DEVICES,
    DEFAULT_DECODE_DEVICE,
    choose_decoder,
    decode_config_of,
    tag_dim_of,
)
from .python_model import LOG_PREFIX
from .repository import (
    NETWORK_SUFFIX,
    Tensor,
    _check_name,
    _stem,
    check_queue_delay,
    network_io,
    pipeline_config,
    resolve_settings,
    write_pipeline_model,
)


@dataclass(frozen=True)
class Endpoints:
    """Where a served model answers."""

    name: str
    host: str
    http_port: int
    grpc_port: int
    metrics_port: int
    #: each pipeline instance's decode line from Triton's log (DecodeChoice.describe)
    decode: tuple[str, ...] = ()

    @property
    def http_url(self) -> str:
        return f"triton://{_host(self.host)}:{self.http_port}/{self.name}"

    @property
    def grpc_url(self) -> str:
        return f"triton+grpc://{_host(self.host)}:{self.grpc_port}/{self.name}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_host(self.host)}:{self.metrics_port}/metrics"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _libpython_on_library_path() -> None:
    """The Python backend's stub links libpython: a Python built outside the system (pyenv)
    keeps it in its own lib folder, which the stub's loader must see."""
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR") or ""
    if libdir and os.path.isdir(libdir):
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
        if libdir not in paths:
            os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])


def network_function(backend, batch_size: int) -> Callable:
    """PyTriton infer function: batches of the network input -> its outputs, by the model's own
    batch size (1 for a fixed-batch model: Triton's batches are split)."""
    from pytriton.decorators import batch

    name = backend.input_name
    dtype = backend.inputs[0].dtype

    @batch
    def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        x = inputs[name].astype(dtype, copy=False)
        step = batch_size if batch_size > 0 else len(x)
        parts = [backend.infer({name: x[i:i + step]}) for i in range(0, len(x), step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    return infer


def serve(model: str, name: str = "", host: str = "127.0.0.1", http_port: int = proto.DEFAULT_HTTP_PORT,
          grpc_port: int = proto.DEFAULT_GRPC_PORT, metrics_port: int = proto.DEFAULT_METRICS_PORT,
          max_batch: int = 8, queue_delay_us: int = 2000, pipeline_instances: int = 1,
          scales: Sequence[float] = (1.0,), project2image: bool = True, decode: dict | None = None,
          decode_device: str = DEFAULT_DECODE_DEVICE, backend: str = "auto", log_file: str | None = None,
          on_ready: Callable[[Endpoints], None] | None = None, **backend_options) -> None:
    """Serve ``model`` until Ctrl-C / SIGTERM (a KeyboardInterrupt, re-raised after the server
    stopped) or until the Triton server dies (UserError naming its log).

    name: the pipeline model's name (default: the model file's stem); the network is NAME_network.
    max_batch / queue_delay_us: Triton's dynamic batching of both models (microseconds).
    pipeline_instances: Python-backend instances of the pipeline (processes decoding in parallel).
    scales / project2image / decode: what the pipeline decodes with, as Pipeline's arguments.
    decode_device: where the pipeline decodes (serving.decode_device): auto, cpu or cuda (checked
        in this process before Triton starts: same machine, same Python as the Python backend).
    backend / backend_options: the local backend that runs the network (as Pipeline's).
    log_file: Triton's log (default: a file in the temporary repository, named on failure).
    on_ready: called once both models are loaded and the endpoints answer (Endpoints.decode: what
        each pipeline instance decodes with, from Triton's log).
    """
    name = name or _stem(model)
    _check_name(name)
    if max_batch < 1 or pipeline_instances < 1:
        raise UserError("--max-batch and --pipeline-instances must be 1 or more")
    queue_delay_us = check_queue_delay(queue_delay_us)
    check_ports_free(host, {"--http-port": http_port, "--grpc-port": grpc_port,
                            "--metrics-port": metrics_port})
    if str(decode_device).strip().lower() not in DECODE_DEVICES:
        raise UserError(f"--decode-device {decode_device!r}: choose one of {', '.join(DECODE_DEVICES)}")
    try:
        from pytriton.model_config import DynamicBatcher, ModelConfig
        from pytriton.model_config import Tensor as PyTritonTensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as e:
        raise BackendUnavailable(
            f"serve needs PyTriton ({e.name} is missing): pip install 'higherhrnet-trt[triton-server]' "
            "in an environment with numpy < 2 (make .venv-triton)") from e
    net = create_backend(model, backend, **backend_options).activate()
    try:
        spec = net.inputs[0]
        if spec.shape[0] > 1:
            raise UserError(f"{model} has a fixed batch of {spec.shape[0]}; serve a model exported with "
                            "batch 1 or --dynamic-batch")
        meta = net.metadata
        settings = resolve_settings(meta, scales, project2image, decode)
        network = name + NETWORK_SUFFIX
        ins = [Tensor(s.name, (-1, *s.shape[1:]), np.dtype(np.float32)) for s in net.inputs]
        outs = [Tensor(s.name, (-1, *s.shape[1:]), np.dtype(s.dtype)) for s in net.outputs]
        if str(decode_device).strip().lower() == "cuda":  # one line now, not a model that never loads
            choice = choose_decoder("cuda", decode_config_of(settings), meta.num_joints,
                                    tag_dim_of(outs[1].shape))
            choice.decoder.close()
        # Everything the server writes (repository, PyTriton's workspace with its copy of the Triton
        # binary, the log) goes to one folder, removed on exit and named on stderr, so whoever
        # SIGKILLs a server can remove what it left (remove_leftovers).
        with tempfile.TemporaryDirectory(prefix="higherhrnet-triton-", ignore_cleanup_errors=True) as work:
            print(f"server files: {work} (removed on exit)", file=sys.stderr, flush=True)
            repo = os.path.join(work, "repo")
            write_pipeline_model(repo, name, pipeline_config(
                name, network, meta, settings, network_io(ins, outs), max_batch, pipeline_instances,
                queue_delay_us, decode_device))
            log_file = log_file or os.path.join(work, "triton.log")
            log_start = os.path.getsize(log_file) if os.path.isfile(log_file) else 0  # a --log-file reused
            _libpython_on_library_path()
            config = TritonConfig(
                model_repository=repo, http_address=host, grpc_address=host, metrics_address=host,
                http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                exit_timeout_secs=2, log_file=log_file)
            endpoints = Endpoints(name, host, http_port, grpc_port, metrics_port)
            triton = Triton(config=config, workspace=os.path.join(work, "pytriton"))
            try:
                triton.bind(
                    network, network_function(net, spec.shape[0]),
                    inputs=[PyTritonTensor(name=t.name, dtype=t.dtype, shape=t.shape[1:]) for t in ins],
                    outputs=[PyTritonTensor(name=t.name, dtype=t.dtype, shape=t.shape[1:]) for t in outs],
                    config=ModelConfig(max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=queue_delay_us)),
                    strict=True)
                try:
                    triton.run()  # starts tritonserver, loads the network model and waits for it
                except Exception as e:
                    raise UserError(
                        f"Triton did not start on {host} (ports {http_port}, {grpc_port}, {metrics_port} "
                        "free? choose others with --http-port / --grpc-port / --metrics-port): "
                        f"{_first_line(e)}; log: {_tail(log_file)}") from e
                _wait_until_ready(endpoints, log_file)
                endpoints = replace(endpoints, decode=decode_lines(log_file, log_start))
                if on_ready:
                    on_ready(endpoints)
                while triton.is_alive():
                    time.sleep(0.5)
                raise UserError(f"the Triton server stopped by itself; its log: {_tail(log_file)}")
            finally:
                triton.stop()
                remove_leftovers(work)
    finally:
        net.deactivate()


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """UserError (one line) when two of ``ports`` (flag -> TCP port) are equal or one is already
    bound on ``host``: Triton itself says so only after PyTriton's two-minute start-up timeout."""
    seen: dict[int, str] = {}
    for flag, port in ports.items():
        if port in seen:
            raise UserError(f"{seen[port]} and {flag} are both {port}: give each endpoint its own port")
        seen[port] = flag
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Triton binds
                sock.bind((host, port))
        except OSError as exc:
            raise UserError(f"{host}:{port} ({flag}) cannot be used: {exc.strerror or exc}; choose "
                            f"another {flag} or stop what listens there") from None


def remove_leftovers(work: str) -> None:
    """Remove what a server whose files are in ``work`` left in /tmp: tritonserver writes each
    model loaded with an inline config (PyTriton's network model) to a /tmp/folderXXXXXX of its
    own (the path is fixed in Triton) and removes it only when the model unloads cleanly."""
    import glob
    import shutil

    marker = os.path.join(work, "pytriton")
    for config in glob.glob("/tmp/folder??????/config.pbtxt"):
        try:
            with open(config, encoding="utf-8", errors="replace") as f:
                ours = f'string_value: "{marker}"' in f.read()
        except OSError:
            continue
        if ours:
            shutil.rmtree(os.path.dirname(config), ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def _wait_until_ready(endpoints: Endpoints, log_file: str, timeout_s: float = 60.0) -> None:
    """Wait until the whole ensemble answers: a black frame through the pipeline model, over
    HTTP and gRPC, each returning people.

    A model reported ready is not yet a request that succeeds: the pipeline model's BLS call to
    the network model, or the gRPC endpoint, can still answer "not ready" for a moment after the
    HTTP readiness check; a user's first request must not be the one that finds out.
    """
    frame = np.zeros((64, 64, 3), np.uint8)
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    for url in (endpoints.http_url, endpoints.grpc_url):
        while True:
            try:
                with TritonBackend(url, timeout_s=max(1.0, deadline - time.monotonic()),
                                   connect_timeout_s=2.0) as client:
                    client.infer_frames([frame])
                break
            except Exception as e:  # not answering yet, or answering "not ready"
                last = _first_line(e)
            if time.monotonic() > deadline:
                raise UserError(f"the pipeline model {endpoints.name!r} did not answer a request in "
                                f"{timeout_s:.0f} s ({last}; is higherhrnet-trt installed in this "
                                f"Python?); Triton's log: {_tail(log_file)}")
            time.sleep(0.2)


def decode_lines(log_file: str, start: int = 0) -> tuple[str, ...]:
    """What each pipeline instance decodes with: the text after ``LOG_PREFIX`` of the instances'
    start-up lines in Triton's log (serving.python_model.log_info), from byte ``start`` on."""
    try:
        with open(log_file, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
            lines = [ln for ln in text.splitlines() if LOG_PREFIX in ln]
    except OSError:
        return ()
    return tuple(ln.split(LOG_PREFIX, 1)[1].strip().strip('"').strip() for ln in lines)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return f"{path} (not written)"
    errors = [ln for ln in text if ln.startswith("E")] or text
    return f"{path}: " + " | ".join(errors[-lines:])


def print_ready(endpoints: Endpoints, file=sys.stderr) -> None:
    """The lines ``serve`` prints once it answers: what each pipeline instance decodes with, then
    the endpoints (tests wait for the 'serving NAME:' line)."""
    for line in endpoints.decode or ("decode: not reported (see Triton's log)",):
        print(f"pipeline instance {line}", file=file, flush=True)
    print(f"serving {endpoints.name}: {endpoints.http_url} (HTTP), {endpoints.grpc_url} (gRPC), "
          f"metrics {endpoints.metrics_url}; Ctrl-C stops", file=file, flush=True)
