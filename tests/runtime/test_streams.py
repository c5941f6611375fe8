"""Network stream timeouts and the reconnect policy against fake servers (issue 15 item 3).

Before the fix an RTSP server that accepts the connection and never answers held ``run`` for
3 min 17 s (six opens of 30 s each: the first open was retried five times) and a closed port took
16.4 s. These tests check what reaches OpenCV (the timeout properties, how many opens) and that
the command ends with one error line; the only clock is a generous wall bound on a subprocess.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.runtime.streams import StreamPolicy, timeout_params

cv2 = pytest.importorskip("cv2")


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class CaptureSpy:
    """Wraps cv2.VideoCapture: records each call's arguments, then opens the real capture."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls: list[tuple] = []

    def __call__(self, *args):
        self.calls.append(args)
        return self.real(*args)


def run_cli(capsys, *argv):
    rc = main(list(map(str, argv)))
    return rc, capsys.readouterr().err


def test_silent_server_gets_the_timeouts_and_one_open(tiny_onnx, silent_server, capsys, monkeypatch):
    spy = CaptureSpy(cv2.VideoCapture)
    monkeypatch.setattr(cv2, "VideoCapture", spy)
    url = f"rtsp://127.0.0.1:{silent_server.port}/live"
    rc, err = run_cli(capsys, "run", tiny_onnx, "--source", url, "--stream-timeout", "1.5",
                      "--no-progress")
    assert rc == 1
    assert err.strip().splitlines()[-1].startswith(f"error: cannot open stream {url} (waited up to 1.5 s)")
    assert silent_server.accepted, "the fake server saw no connection: nothing was tested"
    assert len(spy.calls) == 1  # no retries of the first open (it was 6)
    [(spec, api, params)] = spy.calls
    assert spec == url and api == cv2.CAP_FFMPEG
    settings = dict(zip(params[::2], params[1::2]))
    assert settings == {cv2.CAP_PROP_OPEN_TIMEOUT_MSEC: 1500, cv2.CAP_PROP_READ_TIMEOUT_MSEC: 1500}


def test_closed_port_is_one_open_and_one_line(tiny_onnx, capsys, monkeypatch):
    spy = CaptureSpy(cv2.VideoCapture)
    monkeypatch.setattr(cv2, "VideoCapture", spy)
    rc, err = run_cli(capsys, "run", tiny_onnx, "--source", f"rtsp://127.0.0.1:{closed_port()}/x",
                      "--no-progress")
    assert rc == 1 and len(spy.calls) == 1
    assert "retrying" not in err
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1
    assert err.strip().splitlines()[-1].startswith("error: cannot open stream")


def test_wait_for_source_retries_the_first_open_with_backoff(tiny_onnx, capsys, monkeypatch):
    spy = CaptureSpy(cv2.VideoCapture)
    monkeypatch.setattr(cv2, "VideoCapture", spy)
    rc, err = run_cli(capsys, "run", tiny_onnx, "--source", f"rtsp://127.0.0.1:{closed_port()}/x",
                      "--wait-for-source", "--reconnect", "2", "--no-progress")
    assert rc == 1 and len(spy.calls) == 3  # the first open and 2 retries
    assert "retrying in 0.5 s (attempt 1/2)" in err and "retrying in 1.0 s (attempt 2/2)" in err


def test_silent_server_as_a_user_meets_it(tiny_onnx, silent_server):
    """The whole command in its own process with the default timeout (10 s): one error line. The
    60 s bound is a hang guard (before the fix this took 197 s), not a speed assertion."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "higherhrnet_trt.cli", "run", str(tiny_onnx), "--source",
         f"rtsp://127.0.0.1:{silent_server.port}/x", "--no-progress"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: cannot open stream") and "(waited up to 10 s)" in lines[-1]
    assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in proc.stderr


def test_policy_numbers_and_checks():
    p = StreamPolicy()
    assert p.timeout_s == 10.0 and [p.delay(k) for k in range(6)] == [0.5, 1, 2, 4, 8, 8]
    # the read that timed out, five 10 s opens and the waits 0.5 + 1 + 2 + 4 + 8
    assert p.worst_case_s() == pytest.approx(6 * 10 + 15.5)
    assert p.source_options()["timeout_s"] == 10.0
    with pytest.raises(UserError, match="timeout must be more than 0"):
        StreamPolicy(timeout_s=0)
    with pytest.raises(UserError, match="0 or more"):
        StreamPolicy(max_reconnects=-1)
    assert timeout_params(cv2, 0.25) == [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 250,
                                         cv2.CAP_PROP_READ_TIMEOUT_MSEC, 250]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_stream_timeout_option_is_checked(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "m.onnx", "--source", "rtsp://h/x", "--stream-timeout", value])
    assert e.value.code == 2 and "expected a number of seconds > 0" in capsys.readouterr().err


def test_help_documents_the_policy(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--stream-timeout", "--wait-for-source", "--reconnect", "(0.5, 1, 2, 4, 8 s)",
                  "its outputs hold every frame processed"):
        assert words in text
