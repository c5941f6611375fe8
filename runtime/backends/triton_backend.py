"""Triton client backend: the whole pipeline runs on a Triton Inference Server, people come back.

``Pipeline("triton://HOST:PORT/MODEL")`` (HTTP) or ``Pipeline("triton+grpc://HOST:PORT/MODEL")``
(gRPC; ``--backend triton`` on the command line) sends uint8 frames to a pipeline model served by
``higherhrnet-trt serve`` or written by ``higherhrnet-trt triton-repo`` and gets the people back
(see triton_protocol for the tensors). The server's model config carries the model metadata and the
decode settings, so ``pipe.meta`` / ``pipe.keypoints`` work as with a local file, and a client
asking for other scales or decode settings than the server's is refused in one line instead of
silently getting the server's.

Failures are one line and bounded in time: every request has a network timeout; a server that is
down, killed mid-request or restarting gives a UserError naming the URL. The connection is made
again on the next call, so a restarted server is picked up without restarting the client.

tritonclient is imported on activate(); one client per thread (the HTTP client is gevent-based and
must stay in the thread that made it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import numpy as np

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.core.metadata import ModelMeta

from . import triton_protocol as proto
from .base import Backend, TensorSpec

SCHEMES = {"triton": "http", "triton+http": "http", "triton+grpc": "grpc"}


def parse_url(url: str) -> tuple[str, str, str]:
    """'triton://HOST:PORT/MODEL' -> (protocol 'http' | 'grpc', 'HOST:PORT', MODEL).

    'HOST:PORT/MODEL' without a scheme is taken as HTTP (``--backend triton``). The port defaults
    to Triton's (8000 HTTP, 8001 gRPC)."""
    text = str(url) if "://" in str(url) else f"triton://{url}"
    parts = urlsplit(text)
    protocol = SCHEMES.get(parts.scheme.lower())
    model = parts.path.strip("/")
    if protocol is None or not parts.hostname or not model or "/" in model:
        raise UserError(f"{url!r} is not a Triton model URL: expected triton://HOST:PORT/MODEL "
                        "(HTTP) or triton+grpc://HOST:PORT/MODEL, e.g. triton://127.0.0.1:8000/demo")
    try:
        port = parts.port
    except ValueError:
        raise UserError(f"{url!r}: the port must be a number, e.g. triton://127.0.0.1:8000/demo") from None
    port = port or (proto.DEFAULT_GRPC_PORT if protocol == "grpc" else proto.DEFAULT_HTTP_PORT)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return protocol, f"{host}:{port}", model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class TritonBackend(Backend):
    """Frames -> people through a Triton server (see module docstring).

    path: triton://HOST:PORT/MODEL, triton+grpc://HOST:PORT/MODEL or HOST:PORT/MODEL.
    timeout_s: longest wait for one request's answer, seconds (a frame on a busy CPU server takes
        tens of ms; the bound is for a server that stopped answering).
    connect_timeout_s: longest wait for a connection, seconds.
    """

    name = "triton"
    serves_people = True

    def __init__(self, path: str, timeout_s: float = 30.0, connect_timeout_s: float = 5.0) -> None:
        super().__init__(path)
        self.protocol, self.address, self.model = parse_url(path)
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = float(connect_timeout_s)
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()
        self._meta: ModelMeta | None = None
        self.settings: proto.ServerSettings | None = None
        self.max_batch = 1
        self.num_joints = 0

    # -- connection ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        scheme = "triton+grpc" if self.protocol == "grpc" else "triton"
        return f"{scheme}://{self.address}/{self.model}"

    def _module(self):
        try:
            if self.protocol == "grpc":
                import tritonclient.grpc as module
            else:
                import tritonclient.http as module
        except ImportError as e:
            raise BackendUnavailable(f"the triton backend needs tritonclient ({e.name} is missing): "
                                     "pip install 'higherhrnet-trt[triton]'") from e
        return module

    def _client(self):
        """This thread's client, made on first use (and again after a failed request)."""
        client = getattr(self._local, "client", None)
        if client is None:
            module = self._module()
            if self.protocol == "grpc":
                client = module.InferenceServerClient(self.address)
            else:
                client = module.InferenceServerClient(
                    self.address, connection_timeout=self.connect_timeout_s,
                    network_timeout=self.timeout_s)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _drop_client(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            try:
                client.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass

    def _call(self, what: str, fn):
        """Run fn(client); any failure of the round trip -> one UserError naming the server."""
        try:
            return fn(self._client())
        except UserError:
            raise
        except Exception as e:  # refused, reset, timed out, or the server's own error reply
            self._drop_client()  # the next call connects anew: a restarted server is picked up
            raise UserError(
                f"Triton server {self.address} ({what} of model {self.model!r}): {_first_line(e)} "
                "(is 'higherhrnet-trt serve' running there? check HOST:PORT and the model name)"
            ) from e

    def _timeout_kw(self) -> dict:
        return {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}

    # -- lifecycle -------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        self._module()  # a missing tritonclient is said before any connection attempt
        ready = self._call("readiness check",
                           lambda c: c.is_model_ready(self.model, **self._timeout_kw()))
        if not ready:
            raise UserError(f"Triton server {self.address} answers but model {self.model!r} is not "
                            "ready (wrong name, or still loading; 'higherhrnet-trt serve' prints the URL)")
        config = self._call("config", lambda c: self._config_dict(c))
        params = {k: (v.get("string_value", "") if isinstance(v, dict) else v)
                  for k, v in (config.get("parameters") or {}).items()}
        if proto.PARAM_META not in params or proto.PARAM_SETTINGS not in params:
            raise UserError(f"{self.url} is not a higherhrnet-trt pipeline model (its config has no "
                            f"{proto.PARAM_META} parameter); serve one with 'higherhrnet-trt serve' or "
                            "'higherhrnet-trt triton-repo'")
        import json

        self._meta = ModelMeta.from_json(json.loads(params[proto.PARAM_META]))
        self.settings = proto.ServerSettings.from_json(params[proto.PARAM_SETTINGS])
        self.max_batch = max(1, int(config.get("max_batch_size", 1) or 1))
        self.num_joints = self._meta.num_joints

    def _config_dict(self, client) -> dict:
        if self.protocol == "grpc":
            return client.get_model_config(self.model, as_json=True,
                                           client_timeout=self.timeout_s)["config"]
        return client.get_model_config(self.model)

    def deactivate_impl(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # closing a dead connection: nothing left to release
                pass
        self._local = threading.local()

    # -- inference -------------------------------------------------------------------------------
    def check_settings(self, scales: Sequence[float], project2image: bool, decode) -> None:
        """UserError when the caller's settings differ from what the server decodes with."""
        from dataclasses import asdict

        d = asdict(decode)
        d["joint_order"] = list(d["joint_order"])
        mine = proto.ServerSettings(tuple(float(s) for s in scales), bool(project2image), d)
        diff = mine.differences(self.settings)
        if diff:
            raise UserError(f"{self.url} decodes with other settings than asked for (asked vs served: "
                            f"{'; '.join(diff)}): ask for the server's, or serve with yours "
                            "('higherhrnet-trt serve --help')")

    def infer_frames(self, frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """(H, W, 3) uint8 BGR frames -> per frame (keypoints (P, J, 3), scores (P,), valid), in order.
        Frames of one size go together, up to the server's max batch size per request."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(f.shape, []).append(i)
        out: list = [None] * len(frames)
        for idx in groups.values():
            for start in range(0, len(idx), self.max_batch):
                chunk = idx[start:start + self.max_batch]
                batch = np.stack([frames[i] for i in chunk])
                people = proto.tensors_to_people(self.infer({proto.FRAMES: batch}))
                for i, p in zip(chunk, people):
                    out[i] = p
        return out

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(feeds[proto.FRAMES], dtype=np.uint8)
        module = self._module()

        def request(client):
            inp = module.InferInput(proto.FRAMES, list(batch.shape), "UINT8")
            inp.set_data_from_numpy(batch)
            outs = [module.InferRequestedOutput(n) for n in proto.OUTPUTS]
            result = client.infer(self.model, [inp], outputs=outs, **self._timeout_kw())
            return {n: result.as_numpy(n) for n in proto.OUTPUTS}

        return self._call("inference", request)

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec(proto.FRAMES, (-1, -1, -1, 3), np.dtype(np.uint8))]

    @property
    def outputs(self) -> list[TensorSpec]:
        m, j = self.settings.max_people, self.num_joints
        return [TensorSpec(proto.KEYPOINTS, (-1, m, j, 3), np.dtype(np.float32)),
                TensorSpec(proto.SCORES, (-1, m), np.dtype(np.float32)),
                TensorSpec(proto.COUNT, (-1, 1), np.dtype(np.int32)),
                TensorSpec(proto.VALID, (-1, 1), np.dtype(bool))]

    @property
    def metadata(self) -> ModelMeta:
        return self._meta
