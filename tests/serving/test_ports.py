"""``serve`` refuses a used or repeated port at once, in one line, before PyTriton starts Triton
(whose own error comes only after a two-minute start-up timeout). The port is made busy here by a
listening socket, so the operating system is the reference."""

from __future__ import annotations

import socket

import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import package_file
from higherhrnet_trt.serving.server import check_ports_free

pytestmark = pytest.mark.runtime

DEMO_ONNX = package_file(("runtime", "assets", "demo_w16_256.fp16.onnx"))


@pytest.fixture
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_listening_port_is_refused(busy_port):
    with pytest.raises(UserError, match=rf"127.0.0.1:{busy_port} \(--http-port\) cannot be used"):
        check_ports_free("127.0.0.1", {"--http-port": busy_port})


def test_the_same_port_twice_is_refused():
    with pytest.raises(UserError, match="--http-port and --grpc-port are both 8000"):
        check_ports_free("127.0.0.1", {"--http-port": 8000, "--grpc-port": 8000})


def test_free_ports_pass():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    check_ports_free("127.0.0.1", {"--http-port": port})


def test_serve_on_a_used_port_is_one_line_before_any_work(busy_port, capsys):
    """In this environment PyTriton is not installed: the port is refused before serve needs it."""
    code = main(["serve", str(DEMO_ONNX), "--http-port", str(busy_port)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "cannot be used" in err[0] and "--http-port" in err[0]
