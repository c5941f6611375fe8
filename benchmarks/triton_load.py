"""Load benchmark of ``higherhrnet-trt serve``: throughput and latency against concurrent clients.

For each server max batch size (``--max-batch 1,8``) a server is started on 127.0.0.1 from the
PyTriton environment (``--server-python``, default .venv-triton), then for each client count
(``--clients 1,2,4,8``) that many threads, each with its own ``Pipeline("triton://...")``, send
``--requests`` frames each (the bundled 640x480 sample) one at a time, as cameras would. Printed per
cell: frames/s over the cell's wall time, p50 / p99 of the per-frame round trip (client clock,
frame sent to people back), and the network model's mean executed batch from Triton's metrics (how
much the dynamic batcher gathered), and the machine's 1-minute load average after the cell
(other work on a shared machine slows every cell). ``--url`` measures a server already running
instead (its own max batch). Loops are bounded by ``--requests``; it prints numbers and asserts nothing.

    python -m higherhrnet_trt.benchmarks.triton_load MODEL.onnx [--clients 1,2,4,8]
        [--max-batch 1,8] [--requests 16] [--json load.json]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.lazy import lazy_import

from ..core.files import SAMPLE_IMAGE, package_file
from ..runtime import Pipeline
from .environment import collect, write_json

cv2 = lazy_import("cv2")

DEFAULT_SERVER_PYTHON = os.path.join(".venv-triton", "bin", "python")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_server(model: str, python: str, max_batch: int, log_path: str,
                 timeout_s: float = 180.0) -> tuple[subprocess.Popen, list[int]]:
    """``higherhrnet-trt serve`` in its own process group; returns (process, [http, grpc, metrics])."""
    ports = free_ports(3)
    exe = os.path.join(os.path.dirname(python), "higherhrnet-trt")
    cmd = [exe, "serve", model, "--name", "bench", "--max-batch", str(max_batch),
           "--http-port", str(ports[0]), "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"),
                            start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            if "serving bench:" in f.read():
                return proc, ports
        time.sleep(0.25)
    stop_server(proc)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        raise SystemExit(f"error: the server did not start: {f.read()[-1500:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM to serve (it stops Triton and removes its files), then SIGKILL to any straggler of
    its process group (a Python-backend stub can outlive a hurried stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


def network_counters(metrics_url: str, model: str) -> tuple[float, float]:
    """(inferences, executions) of ``model`` from Triton's Prometheus text."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        for key in ("nv_inference_count", "nv_inference_exec_count"):
            if line.startswith(key + "{") and f'model="{model}"' in line:
                values[key] = float(line.rsplit(" ", 1)[1])
    return values.get("nv_inference_count", 0.0), values.get("nv_inference_exec_count", 0.0)


def run_load(url: str, frame: np.ndarray, clients: int, requests: int) -> dict[str, Any]:
    """``clients`` threads x ``requests`` frames each, one at a time per client. Returns frames,
    seconds, fps, p50_ms, p99_ms, errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        try:
            pipe = Pipeline(url).activate()
        except Exception as e:  # counted and printed, the other clients go on
            errors.append(str(e))
            start.wait()
            return
        start.wait()
        try:
            for _ in range(requests):
                t0 = time.perf_counter()
                pipe.predict(frame)
                with lock:
                    latencies.append(time.perf_counter() - t0)
        except Exception as e:
            errors.append(str(e))
        finally:
            pipe.deactivate()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    ms = np.array(latencies) * 1000.0
    return {"clients": clients, "frames": len(latencies), "seconds": seconds,
            "fps": len(latencies) / seconds if seconds > 0 else 0.0,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
            "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None, "errors": errors}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def measure(url: str, metrics_url: str | None, frame: np.ndarray, clients: list[int], requests: int,
            max_batch: int | None, network: str) -> list[dict]:
    with Pipeline(url) as pipe:  # warm-up: first-call allocations out of the timed cells
        for _ in range(2):
            pipe.predict(frame)
    rows = []
    for n in clients:
        before = network_counters(metrics_url, network) if metrics_url else (0.0, 0.0)
        row = run_load(url, frame, n, requests)
        if metrics_url:
            after = network_counters(metrics_url, network)
            execs = after[1] - before[1]
            row["network_mean_batch"] = (after[0] - before[0]) / execs if execs else None
        row["max_batch"] = max_batch
        row["loadavg_1min_after"] = os.getloadavg()[0]  # other work on a shared machine shows here
        rows.append(row)
        print(_row_text(row), flush=True)
    return rows


def _row_text(r: dict) -> str:
    batch = "n/a" if r.get("network_mean_batch") is None else f"{r['network_mean_batch']:.2f}"
    p50 = "n/a" if r["p50_ms"] is None else f"{r['p50_ms']:.0f}"
    p99 = "n/a" if r["p99_ms"] is None else f"{r['p99_ms']:.0f}"
    errors = f" ({len(r['errors'])} errors: {r['errors'][0]})" if r["errors"] else ""
    return (f"| {r['max_batch'] or '?'} | {r['clients']} | {r['frames']} | {r['fps']:.2f} | {p50} | {p99} "
            f"| {batch} | {r['loadavg_1min_after']:.1f} |{errors}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.triton_load",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="exported .onnx to serve (not with --url)")
    p.add_argument("--url", help="measure a running server instead: triton://HOST:PORT/NAME")
    p.add_argument("--metrics", help="with --url: its metrics URL (http://HOST:8002/metrics)")
    p.add_argument("--clients", type=_ints, default=[1, 2, 4, 8], help="client counts (default 1,2,4,8)")
    p.add_argument("--max-batch", type=_ints, default=[1, 8], help="server max batch sizes (default 1,8)")
    p.add_argument("--requests", type=int, default=16, help="frames each client sends per cell (default 16)")
    p.add_argument("--server-python", default=DEFAULT_SERVER_PYTHON,
                   help=f"Python of the PyTriton environment (default {DEFAULT_SERVER_PYTHON})")
    p.add_argument("--json", help="write the rows and the environment here")
    args = p.parse_args(argv)
    if bool(args.model) == bool(args.url):
        p.error("give MODEL (a server is started) or --url (a running server), not both")

    frame = cv2.imread(package_file(SAMPLE_IMAGE))
    print(f"frame {frame.shape[1]}x{frame.shape[0]}, {args.requests} frames per client per cell\n"
          "| max batch | clients | frames | frames/s | p50 ms | p99 ms | network mean batch | load 1 min |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    rows: list[dict] = []
    if args.url:
        rows += measure(args.url, args.metrics, frame, args.clients, args.requests, None,
                        args.url.rstrip("/").rsplit("/", 1)[1] + "_network")
    else:
        with tempfile.TemporaryDirectory(prefix="triton-load-") as tmp:
            for mb in args.max_batch:
                proc, ports = start_server(args.model, args.server_python, mb, os.path.join(tmp, "serve.log"))
                try:
                    rows += measure(f"triton://127.0.0.1:{ports[0]}/bench",
                                    f"http://127.0.0.1:{ports[2]}/metrics", frame, args.clients,
                                    args.requests, mb, "bench_network")
                finally:
                    stop_server(proc)
    if args.json:
        write_json(args.json, {"rows": rows, "environment": collect("triton"),
                               "command": " ".join(sys.argv)})
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
