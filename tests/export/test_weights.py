"""Released weights by name (export/weights.py, 'higherhrnet-trt weights'), against a local server.

A web server on 127.0.0.1 (http.server in a thread, Range requests, a mode that cuts the connection
mid-file, one that ignores Range) serves a generated checkpoint: a random ``tiny`` network saved in
MMPose's layout. Its sha256 is computed here from the served bytes; the registry entries pointing
at it are injected through $HIGHERHRNET_TRT_WEIGHTS_REGISTRY. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import os
import re
import socket
import threading

import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.export import weights as w


class Server:
    """Serves ``files`` (name -> bytes) on 127.0.0.1 and records each GET's path and Range header.

    cut_after: the next GET sends only this many body bytes of the announced length, then closes
    the connection. ignore_range: answer Range requests with the whole file (200).
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None
        self.ignore_range = False
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    n, server.cut_after = server.cut_after, None
                    self.wfile.write(body[:n])
                    self.connection.shutdown(socket.SHUT_RDWR)  # mid-file, as a dropped link
                    self.close_connection = True
                    return
                self.wfile.write(body)

        return Handler


@pytest.fixture(scope="module")
def checkpoint_bytes() -> bytes:
    """A random tiny network in MMPose 0.x's layout (backbone./keypoint_head. keys, meta)."""
    torch = pytest.importorskip("torch")
    from higherhrnet_trt.export.model import build_model

    torch.manual_seed(1234)
    sd = build_model("tiny").state_dict()
    head = ("final_layers", "deconv_layers")
    obj = {"state_dict": {("keypoint_head." if k.startswith(head) else "backbone.") + k: v
                          for k, v in sd.items()},
           "meta": {"epoch": 300, "mmcv_version": "1.1.1", "config": "tiny"}}
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture
def served(checkpoint_bytes, tmp_path, monkeypatch):
    """(server, file name, sha256 of the served bytes) with registry entries that point at it."""
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    name = f"tiny_coco-{digest[:8]}_20260101.pth"  # MMPose's naming: 8 hex digits of the sha256
    server = Server({name: checkpoint_bytes})
    base = dict(file=name, config="tiny", input_size=128, ap=None, ap_source="", licence="test only",
                url=f"{server.url}/{name}")
    wrong = ("f" if digest[0] != "f" else "e") + digest[1:8]
    entries = [dict(base, name="test_tiny", sha256=digest[:8]),
               dict(base, name="test_tiny_full", sha256=digest),
               dict(base, name="test_tiny_wrong", sha256=wrong),
               dict(base, name="test_manual", file="manual.pth", url="", manual="a drawer", sha256="")]
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(entries))
    monkeypatch.setenv(w.ENV_REGISTRY, str(registry))
    monkeypatch.setenv(w.ENV_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(w.ENV_URL, raising=False)
    yield server, name, digest
    server.close()


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_download_checks_and_caches(served, tmp_path):
    server, name, digest = served
    path = w.download("test_tiny", progress=False, log=lambda m: None)
    assert path == str(tmp_path / "cache" / "test_tiny" / name)
    assert _sha(path) == digest
    assert server.requests == [(f"/{name}", None)]
    assert _files(tmp_path / "cache" / "test_tiny") == [name]  # no partial left
    assert w.download("test_tiny", progress=False, log=lambda m: None) == path
    assert len(server.requests) == 1  # the cached file is used, not fetched again


def test_resume_after_the_server_cuts_the_connection(served, tmp_path):
    server, name, digest = served
    cut = len(server.files[name]) // 3
    server.cut_after = cut
    said = []
    path = w.download("test_tiny_full", progress=False, log=said.append)
    assert len(server.requests) == 2
    assert server.requests[0][1] is None and server.requests[1][1] == f"bytes={cut}-"
    assert _sha(path) == digest
    assert any("connection cut" in m for m in said)


def test_resume_in_a_later_run(served, tmp_path):
    """Out of retries, the partial file stays; the next run asks only for the rest."""
    server, name, digest = served
    cut = len(server.files[name]) // 2
    server.cut_after = cut
    with pytest.raises(UserError, match="run the same command again to resume"):
        w.download("test_tiny", progress=False, retries=0, log=lambda m: None)
    folder = tmp_path / "cache" / "test_tiny"
    assert _files(folder) == [name + ".part"] and os.path.getsize(folder / (name + ".part")) == cut
    path = w.download("test_tiny", progress=False, log=lambda m: None)
    assert server.requests[-1][1] == f"bytes={cut}-"
    assert _sha(path) == digest and _files(folder) == [name]


def test_server_that_ignores_range_restarts_the_file(served, tmp_path):
    server, name, digest = served
    server.ignore_range = True
    folder = tmp_path / "cache" / "test_tiny"
    folder.mkdir(parents=True)
    (folder / (name + ".part")).write_bytes(b"\0" * 100)  # not the file's first bytes
    path = w.download("test_tiny", progress=False, log=lambda m: None)
    assert server.requests[0][1] == "bytes=100-"
    assert _sha(path) == digest


def test_wrong_hash_is_refused_and_the_partial_removed(served, tmp_path):
    server, name, digest = served
    with pytest.raises(UserError, match=r"sha256 .* not the published .*removed it") as e:
        w.download("test_tiny_wrong", progress=False, log=lambda m: None)
    assert "\n" not in str(e.value)
    assert _files(tmp_path / "cache" / "test_tiny_wrong") == []


def test_damaged_cached_file_is_refused(served, tmp_path):
    path = w.download("test_tiny", progress=False, log=lambda m: None)
    with open(path, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xfe")
    with pytest.raises(UserError, match="damaged or another file"):
        w.download("test_tiny", progress=False, log=lambda m: None)


def test_no_network_is_one_line_naming_file_url_and_place(served, tmp_path, capsys):
    server, name, digest = served
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{s.getsockname()[1]}/mirror"
    s.close()  # nothing listens there now
    code = main(["weights", "download", "test_tiny", "--weights-url", closed, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    dest = str(tmp_path / "cache" / "test_tiny" / name)
    assert f"{closed}/{name}" in err[0] and dest in err[0] and w.ENV_URL in err[0]


def test_mirror_folder_and_env_url(served, tmp_path, monkeypatch):
    server, name, digest = served
    mirror = tmp_path / "usb"
    mirror.mkdir()
    (mirror / name).write_bytes(server.files[name])
    path = w.download("test_tiny", cache_dir=str(tmp_path / "a"), weights_url=str(mirror), progress=False,
                      log=lambda m: None)
    assert _sha(path) == digest and server.requests == []
    server.files["mirror/" + name] = server.files[name]
    monkeypatch.setenv(w.ENV_URL, server.url + "/mirror/")
    path = w.download("test_tiny", cache_dir=str(tmp_path / "b"), progress=False, log=lambda m: None)
    assert _sha(path) == digest and server.requests == [(f"/mirror/{name}", None)]
    # A mirror also serves what no script can fetch from its origin; one that lacks it says so.
    with pytest.raises(UserError, match=r"HTTP 404 .*put it at .*test_manual/manual.pth"):
        w.download("test_manual", cache_dir=str(tmp_path / "b"), progress=False, log=lambda m: None)


def test_manual_entry_names_where_to_put_the_file(served, tmp_path):
    dest = tmp_path / "cache" / "test_manual" / "manual.pth"
    with pytest.raises(UserError, match=f"cannot be downloaded by a script: get manual.pth from a drawer and "
                                        f"put it at {re.escape(str(dest))}"):
        w.download("test_manual", progress=False)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"placed by hand")
    said = []
    assert w.resolve("test_manual", log=said.append) == (str(dest), w.get("test_manual"))
    assert "used unverified" in said[0]


def test_unknown_name_and_paths(served, tmp_path):
    with pytest.raises(UserError, match="unknown weights name 'nosuch'.*mmpose_w32_512"):
        w.resolve("nosuch")
    assert w.resolve(str(tmp_path / "x.pth")) == (str(tmp_path / "x.pth"), None)  # a path: the loader says


def test_bad_registry_file_is_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "r.json"
    bad.write_text('[{"name": "x", "colour": "red"}]')
    monkeypatch.setenv(w.ENV_REGISTRY, str(bad))
    with pytest.raises(UserError, match="unknown field.*colour"):
        w.registry()


def _initializers(path) -> dict:
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def test_export_from_the_name(served, tmp_path, capsys):
    """'export --checkpoint NAME' takes the config from the name and gives the same ONNX weights
    as exporting the served file by its path."""
    import numpy as np

    pytest.importorskip("onnx")
    server, name, digest = served
    local = tmp_path / name
    local.write_bytes(server.files[name])
    by_name, by_path = tmp_path / "name.onnx", tmp_path / "path.onnx"
    fast = ["--input-size", "128", "--no-flip", "--no-check"]
    assert main(["export", "--checkpoint", "test_tiny", *fast, "-o", str(by_name)]) == 0
    assert main(["export", "--checkpoint", str(local), "--config", "tiny", *fast, "-o", str(by_path)]) == 0
    err = capsys.readouterr().err
    assert "RANDOM" not in err
    a, b = _initializers(by_name), _initializers(by_path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)

    from higherhrnet_trt.export import export

    res = export("test_tiny", output=str(tmp_path / "api.onnx"), input_size=128, flip=False, check=False,
                 log=lambda m: None)
    c = _initializers(res.onnx)
    assert not res.random_weights and all(np.array_equal(a[k], c[k]) for k in a)
    assert len(server.requests) == 1  # downloaded once, then from the cache


def test_demo_from_the_name(served, tmp_path, capsys):
    pytest.importorskip("cv2")
    from higherhrnet_trt.export.onnx_export import read_metadata

    out = tmp_path / "demo"
    assert main(["demo", "--weights", "test_tiny", "--save-dir", str(out)]) == 0
    assert "RANDOM" not in capsys.readouterr().err
    assert read_metadata(str(out / "demo.onnx")).config_name == "tiny"


def test_list_shows_every_name_with_its_facts(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    # Published numbers and files, as the MMPose model zoo and the HigherHRNet README give them.
    for name, config, ap, file in [
        ("mmpose_w32_512", "w32_512", "0.677", "higher_hrnet32_coco_512x512-8ae85183_20200713.pth"),
        ("mmpose_w32_640", "w32_640", "0.686", "higher_hrnet32_coco_640x640-a22fe938_20200712.pth"),
        ("mmpose_w48_512", "w48_512", "0.686", "higher_hrnet48_coco_512x512-60fedcbc_20200712.pth"),
        ("official_w32_512", "w32_512", "0.671", "pose_higher_hrnet_w32_512.pth"),
        ("official_w32_640", "w32_640", "0.685", "pose_higher_hrnet_w32_640.pth"),
        ("official_w48_640", "w48_640", "0.699", "pose_higher_hrnet_w48_640.pth"),
    ]:
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert config in row and ap in row, row
        assert f"{name}: {file}" in out
    assert out.count("Apache-2.0") >= 3 and "MIT" in out
    assert "https://download.openmmlab.com/mmpose/bottom_up/higher_hrnet32_coco_512x512-8ae85183" in out
    assert "put it at " in out and "official_crowdpose_w32_512" in out
    assert "UDP" in out and "not listed" in out

    assert main(["weights", "list", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)}
    w48 = entries["mmpose_w48_512"]
    assert w48["sha256"] == "60fedcbc" and w48["input_size"] == 512 and w48["config"] == "w48_512"
    assert entries["official_w48_640"]["downloadable"] is False


def test_configs_of_the_names_exist():
    from higherhrnet_trt.export.configs import get_config

    for entry in w.REGISTRY.values():
        cfg = get_config(entry.config)
        assert cfg.input_size == entry.input_size, entry.name
        assert cfg.width == (48 if "w48" in entry.name else 32), entry.name


def _parser_actions(argv: list[str]):
    """The options of a (sub)command's parser, found through --help's parser tree."""
    from higherhrnet_trt.cli.main import build_parser

    parser = build_parser()
    for word in argv:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("argv", [["weights", "list"], ["weights", "download"], ["export"], ["demo"]])
def test_help_explains_every_option(argv, capsys):
    parser = _parser_actions(argv)
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:  # an old spelling, kept hidden with a deprecation line
            continue
        assert action.help, f"{' '.join(argv)} {action.option_strings or action.dest}: no help"
        for opt in action.option_strings:
            assert opt in out
    if argv != ["weights", "list"]:
        assert "--cache-dir" in out and "--weights-url" in out
