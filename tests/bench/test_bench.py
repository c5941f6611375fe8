"""``higherhrnet-trt bench``: a short CPU smoke that checks the JSON schema (no timed assertions)."""

from __future__ import annotations

import json
import math

import pytest

from higherhrnet_trt.benchmarks.bench import SCHEMA, STAGES, STAT_KEYS, stats_ms
from higherhrnet_trt.cli import main

pytest.importorskip("cv2")


def _check_stats(rec: dict) -> None:
    assert rec["applicable"] is True
    for key in STAT_KEYS:
        assert isinstance(rec[key], (int, float)) and math.isfinite(rec[key]), key
    assert rec["min"] <= rec["median"] <= rec["max"]
    assert rec["median"] <= rec["p90"] <= rec["p99"] <= rec["max"]
    assert rec["clock"] in ("perf_counter", "cuda_events") and rec["what"]


def test_bench_cpu_json_schema(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "bench.json"
    png = tmp_path / "bench.png"
    rc = main(["bench", str(tiny_onnx), "--warmup", "1", "--iters", "3", "--threads", "1",
               "--no-progress", "--json", str(out), "--plot", str(png)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "end-to-end" in printed and "GPU compute" in printed and "images/s" in printed
    r = json.loads(out.read_text())
    assert r["schema"] == SCHEMA
    assert set(r["stages"]) == set(STAGES)
    for name in ("preprocess", "inference", "decode", "end_to_end"):
        _check_stats(r["stages"][name])
        assert r["stages"][name]["count"] == 3
    # CPU onnxruntime: copies do not exist; reported as not applicable, never as zero.
    for name in ("h2d", "d2h"):
        assert r["stages"][name]["applicable"] is False and r["stages"][name]["reason"]
        assert "mean" not in r["stages"][name]
    lat = r["latency"]
    assert set(lat) == {"gpu_compute", "host_latency", "end_to_end", "enqueue"}
    if r["environment"]["gpu"] is None:
        assert lat["gpu_compute"]["applicable"] is False
        assert r["gpu_memory"]["applicable"] is False
    _check_stats(lat["host_latency"])
    assert r["throughput"]["images_per_s"] > 0 and r["throughput"]["images"] == 3
    assert r["host"]["peak_rss_mib"] > 0 and r["host"]["cpu_percent"] >= 0
    other = r["host"]["other_processes_cpu_percent"]
    assert other is None or other >= 0
    assert r["model"]["precision"] == "fp32" and r["model"]["inputs"][0]["shape"] == [1, 3, 128, 128]
    assert r["settings"]["fed_input_shape"] == [1, 3, 128, 128]
    assert r["settings"]["clock"] == "perf_counter" and r["settings"]["backend"] == "onnxruntime"
    env = r["environment"]
    assert env["cpu"]["model"] and env["cpu"]["logical_cores"] >= 1
    assert env["backend"]["name"] == "onnxruntime" and env["onnxruntime"]
    assert env["backend"]["graph_optimization"] == "all"  # what "auto" picks for an fp32 file
    assert "jetson" in env and "tensorrt" in env
    assert len(r["samples_ms"]["end_to_end"]) == 3
    assert png.stat().st_size > 1000


def test_bench_decoder_numpy_is_what_runs_and_is_said(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", str(tiny_onnx), "--warmup", "0", "--iters", "1", "--threads", "1",
               "--no-progress", "--decoder", "numpy", "--json", str(out)])
    assert rc == 0
    assert "numpy decode" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["decoder"] == "numpy"


def test_bench_cuda_graph_on_cpu_backend_is_one_line_error(tiny_onnx, capsys):
    rc = main(["bench", str(tiny_onnx), "--warmup", "0", "--iters", "1", "--cuda-graph", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --cuda-graph") and len(err.splitlines()) == 1


def test_bench_fixed_batch_mismatch(tiny_onnx, capsys):
    assert main(["bench", str(tiny_onnx), "--batch", "2", "--iters", "1", "--no-progress"]) == 1
    assert "fixed batch of 1" in capsys.readouterr().err


def test_bench_help_every_option_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    for opt in ("--batch", "--input-size", "--warmup", "--iters", "--cuda-graph", "--json", "--plot"):
        assert opt in text
    from higherhrnet_trt.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for action in sub.choices["bench"]._actions:
        assert action.help, action.dest


def test_stats_ms():
    s = stats_ms([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0
    assert s["count"] == 4 and 3.0 < s["p90"] < s["p99"] <= 4.0


def test_bench_staged_gpu_path_bookkeeping(tiny_onnx, monkeypatch):
    """The GPU path's bookkeeping with test doubles: a backend with the StagedBackend methods (ORT
    underneath) and host-clock events instead of CUDA events. The real CUDA-event path needs a GPU."""
    import time

    from higherhrnet_trt.benchmarks import bench
    from higherhrnet_trt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    class FakeEvents:
        def __init__(self, stream, count: int = 4) -> None:
            assert stream == "stream-0"
            self.t = [0.0] * count

        def record(self, i: int) -> None:
            self.t[i] = time.perf_counter()

        def elapsed_ms(self, i: int, j: int) -> float:
            return (self.t[j] - self.t[i]) * 1e3

        def close(self) -> None:
            pass

    class Staged(OnnxRuntimeBackend):
        cuda_stream = "stream-0"
        graph = False

        def copy_inputs_async(self, feeds):
            self._feeds = dict(feeds)

        def execute_async(self):
            self._out = self.infer(self._feeds)

        def copy_outputs_async(self):
            pass

        def synchronize(self):
            pass

        def host_outputs(self):
            return self._out

        def enable_cuda_graph(self):
            Staged.graph = True

    monkeypatch.setattr(bench, "CudaEvents", FakeEvents)
    s = bench.BenchSettings(model=str(tiny_onnx), backend=Staged(str(tiny_onnx)), warmup=0, iters=2,
                            cuda_graph=True, progress=False)
    r = bench.run_bench(s)
    assert Staged.graph
    assert r["settings"]["clock"] == "cuda_events" and r["settings"]["cuda_graph"] is True
    for name in ("h2d", "inference", "d2h"):
        assert r["stages"][name]["applicable"] and r["stages"][name]["clock"] == "cuda_events"
    assert r["latency"]["gpu_compute"]["applicable"] and "GPU compute" in r["latency"]["gpu_compute"]["what"]
    assert r["latency"]["host_latency"]["clock"] == "cuda_events"
    assert r["latency"]["enqueue"]["applicable"] and r["latency"]["enqueue"]["count"] == 2
    assert "GPU compute" in bench.format_report(r)
