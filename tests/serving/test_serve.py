"""``serve`` + the triton client backend, against real Triton servers on 127.0.0.1.

The server is the Triton binary PyTriton ships (from .venv-triton, numpy < 2: ``make test`` makes
it); its Python backend loads the pipeline model of ``triton-repo``. The reference is a local
Pipeline on the same frames run with the server's libraries (a separate process, no Triton): the
warp is OpenCV's, and OpenCV 4.11 (numpy 1) and 5.0 (numpy 2) warps differ by up to a pixel on the
demo sample, so the client's environment cannot be the reference.

Every request loop is bounded in count and time; servers are stopped by the tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.http")
pytest.importorskip("tritonclient.grpc")
cv2 = pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks.triton_load import free_ports  # noqa: E402
from higherhrnet_trt.cli import main  # noqa: E402
from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file  # noqa: E402
from higherhrnet_trt.runtime import Pipeline  # noqa: E402
from higherhrnet_trt.serving.server import remove_leftovers  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TRITON_PY = Path(os.environ.get("HIGHERHRNET_TRT_TRITON_PYTHON") or REPO / ".venv-triton" / "bin" / "python")
START_TIMEOUT_S = 180  # a cold start on a loaded 2-core CI machine; ~5-10 s when idle

pytestmark = pytest.mark.skipif(not TRITON_PY.is_file(), reason=(
    f"no PyTriton environment at {TRITON_PY}: 'make triton-setup' makes it ('make test' does)"))


class Server:
    """``higherhrnet-trt serve`` from .venv-triton in its own process group (tritonserver and the
    Python backend's stubs are its children: killing the group kills the whole server)."""

    def __init__(self, model: Path, log: Path, ports: list[int] | None = None) -> None:
        self.model, self.log = model, log
        self.ports = ports or free_ports(3)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"triton://127.0.0.1:{self.ports[0]}/demo"

    def start(self) -> Server:
        cmd = [str(TRITON_PY.parent / "higherhrnet-trt"), "serve", str(self.model), "--name", "demo",
               "--http-port", str(self.ports[0]), "--grpc-port", str(self.ports[1]),
               "--metrics-port", str(self.ports[2]), "--max-batch", "4"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if "serving demo:" in self.log.read_text():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.25)
        self.stop()
        pytest.fail(f"serve did not come up: {self.log.read_text()[-2000:]}")

    @property
    def files(self) -> Path | None:
        """The folder the server writes everything to (it prints it first)."""
        for line in self.log.read_text().splitlines():
            if line.startswith("server files: "):
                return Path(line.split(": ", 1)[1].split(" (", 1)[0])
        return None

    def kill(self) -> None:
        """SIGKILL to the whole group, then remove the files a killed server cannot."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        if self.files is not None:
            remove_leftovers(str(self.files))

    def stop(self) -> int | None:
        """SIGTERM to serve alone (it stops Triton and its Python-backend processes and removes its
        files), SIGKILL to whatever of the group is left. Returns serve's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.poll()
        self.kill()
        return code


def frames() -> list[np.ndarray]:
    """The demo sample, a half-size and a mirrored copy (other sizes / people), and noise."""
    image = cv2.imread(package_file(SAMPLE_IMAGE))
    noise = np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8)
    return [image, cv2.resize(image, (320, 240)), np.ascontiguousarray(image[:, ::-1]), noise]


REFERENCE_SCRIPT = """
import sys, numpy as np
from higherhrnet_trt.runtime import Pipeline
data = np.load(sys.argv[2])
pipe = Pipeline(sys.argv[1])
out = {}
for i in range(len(data.files)):
    p = pipe.predict(data[f"f{i}"])
    out[f"k{i}"], out[f"s{i}"], out[f"b{i}"] = p.keypoints, p.scores, p.boxes
np.savez(sys.argv[3], **out)
"""


@pytest.fixture(scope="module")
def reference(demo_onnx, tmp_path_factory):
    """Local Pipeline.predict of each frame in the server's environment (no Triton involved)."""
    d = tmp_path_factory.mktemp("ref")
    np.savez(d / "frames.npz", **{f"f{i}": f for i, f in enumerate(frames())})
    subprocess.run([str(TRITON_PY), "-c", REFERENCE_SCRIPT, str(demo_onnx), str(d / "frames.npz"),
                    str(d / "ref.npz")], check=True, timeout=300)
    r = np.load(d / "ref.npz")
    return [(r[f"k{i}"], r[f"s{i}"], r[f"b{i}"]) for i in range(len(frames()))]


@pytest.fixture(scope="module")
def server(demo_onnx, tmp_path_factory):
    s = Server(demo_onnx, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield s
    s.stop()


def assert_same_people(poses, reference) -> None:
    assert len(poses) == len(reference)
    for p, (k, s, b) in zip(poses, reference):
        assert p.valid and len(p) == len(s)
        np.testing.assert_array_equal(p.keypoints, k)  # float32 crosses the wire unchanged
        np.testing.assert_array_equal(p.scores, s)
        np.testing.assert_array_equal(p.boxes, b)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_people_equal_a_local_pipeline(server, reference, protocol):
    url = server.url if protocol == "http" else \
        f"triton+grpc://127.0.0.1:{server.ports[1]}/demo"
    with Pipeline(url) as pipe:
        assert pipe.backend.name == "triton" and pipe.meta.num_joints == 17
        poses = pipe.predict_batch(frames())
        assert [p.image_wh for p in poses] == [(f.shape[1], f.shape[0]) for f in frames()]
        assert_same_people(poses, reference)
        assert sum(len(s) for _, s, _ in reference) > 0  # the check compared people, not nothing


def test_serve_says_where_the_pipeline_decodes(server):
    """The Python backend's instance chose its decoder (auto: no GPU in CI, so NumPy, and why) and
    said so in Triton's log, which serve repeats before its 'serving' line."""
    from higherhrnet_trt.core.gpu import query_gpu

    lines = [ln for ln in server.log.read_text().splitlines() if ln.startswith("pipeline instance ")]
    assert len(lines) == 1, lines  # one instance (serve's default --pipeline-instances 1)
    if query_gpu() is None:
        assert lines[0] == ("pipeline instance demo_0_0: decode: CPU (--decode-device auto: the CUDA "
                            "kernels cannot run here: no NVIDIA driver or CUDA GPU visible to this process)")
    else:  # cuda-python and NVRTC in .venv-triton decide between the two
        assert lines[0].startswith("pipeline instance demo_0_0: decode: "), lines


def test_rgb_client_frames_are_converted(server, reference):
    rgb = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames()]
    with Pipeline(server.url, color_order="rgb") as pipe:
        assert_same_people(pipe.predict_batch(rgb), reference)


def test_concurrent_clients(server, reference):
    """4 clients at once, each with its own Pipeline, 2 rounds of the 4 frames (bounded)."""
    errors: list[BaseException] = []
    results: list[list] = []

    def client() -> None:
        try:
            with Pipeline(server.url) as pipe:
                for _ in range(2):
                    results.append(pipe.predict_batch(frames()))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, errors
    assert len(results) == 8
    for poses in results:
        assert_same_people(poses, reference)


def test_metrics_count_both_models(server):
    """Prometheus metrics: the pipeline (the Python-backend model in the Triton binary) and the
    network it calls through BLS both executed."""
    with Pipeline(server.url) as pipe:
        pipe.predict(frames()[3])
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.ports[2]}/metrics", timeout=10).read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("nv_inference_request_success{"):
            model = line.split('model="')[1].split('"')[0]
            counts[model] = float(line.rsplit(" ", 1)[1])
    assert counts.get("demo", 0) >= 1 and counts.get("demo_network", 0) >= 1, counts


def test_run_cli_against_the_server(server, reference, tmp_path):
    out = tmp_path / "people.json"
    assert main(["run", server.url, "--source", package_file(SAMPLE_IMAGE), "--json", str(out),
                 "--no-progress"]) == 0
    people = json.loads(out.read_text())
    assert len(people) == len(reference[0][1])
    np.testing.assert_allclose(sorted(p["score"] for p in people), sorted(reference[0][1].tolist()),
                               atol=1e-6)  # the JSON keeps 6 decimals


def test_other_settings_than_the_server_are_refused(server):
    with pytest.raises(UserError, match=r"scales \[1.0\] vs \[2.0\]|scales"):
        Pipeline(server.url, scales=(2, 1, 0.5)).activate()
    with pytest.raises(UserError, match="max_people"):
        Pipeline(server.url, decode={"max_people": 5}).activate()


def test_wrong_model_or_no_server_is_one_line(server):
    with pytest.raises(UserError, match="not ready"):
        Pipeline(f"triton://127.0.0.1:{server.ports[0]}/nope").activate()
    port = free_ports(1)[0]
    with pytest.raises(UserError, match=f"127.0.0.1:{port}") as e:
        Pipeline(f"triton://127.0.0.1:{port}/demo").activate()
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="not a Triton model URL"):
        Pipeline("triton://127.0.0.1:8000/")


def test_killed_server_is_a_clear_error_and_a_restart_is_picked_up(demo_onnx, reference, tmp_path):
    s = Server(demo_onnx, tmp_path / "a.log").start()
    frame = frames()[0]
    pipe = Pipeline(s.url, timeout_s=10).activate()
    outcome: dict = {}
    first = threading.Event()
    restarted = None

    def client() -> None:
        try:
            for _ in range(1000):  # bounded; the kill ends it long before
                pipe.predict(frame)
                first.set()
            outcome["error"] = None
        except BaseException as e:
            outcome["error"] = e
        first.set()

    try:
        t = threading.Thread(target=client)
        t.start()
        assert first.wait(120), "no answer before the kill"
        s.kill()
        t.join(60)  # the client's timeout is 10 s: it must have given up long before
        assert not t.is_alive(), "the client hung on a killed server"
        err = outcome["error"]
        assert isinstance(err, UserError) and f"127.0.0.1:{s.ports[0]}" in str(err), err
        assert "\n" not in str(err)
        with pytest.raises(UserError):  # still down: the same clear error, no hang
            pipe.predict(frame)
        restarted = Server(demo_onnx, tmp_path / "b.log", s.ports).start()  # same ports, new process
        assert_same_people([pipe.predict(frame)], reference[:1])  # the same client carries on
        pipe.deactivate()
        files = restarted.files
        assert files is not None and files.is_dir()
        assert restarted.stop() == 143  # SIGTERM: stopped cleanly, as the CLI reports it
        assert not files.exists()  # repository, PyTriton workspace, log: gone
        assert not [c for c in Path("/tmp").glob("folder??????/config.pbtxt") if str(files) in c.read_text()]
    finally:
        pipe.deactivate()
        s.stop()
        if restarted is not None:
            restarted.stop()


def test_load_benchmark_counts_what_it_sent(server):
    """benchmarks.triton_load's loop against the server: every frame sent is answered and counted
    by Triton's own metrics for the network model."""
    from higherhrnet_trt.benchmarks.triton_load import network_counters, run_load

    metrics = f"http://127.0.0.1:{server.ports[2]}/metrics"
    before = network_counters(metrics, "demo_network")
    row = run_load(server.url, frames()[1], clients=2, requests=2)
    after = network_counters(metrics, "demo_network")
    assert row["errors"] == [] and row["frames"] == 4 and row["p50_ms"] <= row["p99_ms"]
    assert after[0] - before[0] == 4  # inferences: one network input per frame (single scale)
    assert 1 <= after[1] - before[1] <= 4  # executions: batches of them
