"""benchmarks.bench_result: the records run_bench assembles, from hand-made samples (values worked
out by hand; the end-to-end runs are in tests/bench/test_bench.py)."""

from __future__ import annotations

import math

from higherhrnet_trt.benchmarks.bench_result import host_record, latency_records, stage_records

SAMPLES = {k: [1.0, 2.0, 3.0] for k in ("preprocess", "h2d", "inference", "d2h", "decode",
                                        "end_to_end", "host_latency", "enqueue")}


def test_cpu_backend_has_no_copies_and_no_gpu_clock():
    stages = stage_records(SAMPLES, staged=False, backend_name="openvino", gpu_eps=None)
    assert not stages["h2d"]["applicable"]
    assert "openvino backend computes on the CPU" in stages["d2h"]["reason"]
    assert stages["preprocess"]["median"] == 2.0 and stages["preprocess"]["count"] == 3
    assert stages["inference"]["clock"] == "perf_counter" and "CPU compute" in stages["inference"]["what"]
    lat = latency_records(stages, SAMPLES, staged=False, gpu_eps=None)
    assert list(lat) == ["gpu_compute", "host_latency", "end_to_end", "enqueue"]
    assert lat["gpu_compute"] == {"applicable": False, "reason": "no GPU: the network runs on the CPU"}
    assert not lat["enqueue"]["applicable"] and lat["host_latency"]["mean"] == 2.0


def test_ort_on_a_gpu_copies_inside_inference():
    stages = stage_records(SAMPLES, staged=False, backend_name="onnxruntime", gpu_eps="CUDAExecutionProvider")
    reason = stages["h2d"]["reason"]
    assert reason.startswith("inside inference") and "CUDAExecutionProvider" in reason
    lat = latency_records(stages, SAMPLES, staged=False, gpu_eps="CUDAExecutionProvider")
    assert "does not expose its CUDA stream" in lat["gpu_compute"]["reason"]


def test_staged_backend_times_copies_with_cuda_events():
    stages = stage_records(SAMPLES, staged=True, backend_name="tensorrt", gpu_eps=None)
    assert [stages[k]["clock"] for k in ("preprocess", "h2d", "inference", "d2h", "decode")] == [
        "perf_counter", "cuda_events", "cuda_events", "cuda_events", "perf_counter"]
    lat = latency_records(stages, SAMPLES, staged=True, gpu_eps=None)
    assert lat["gpu_compute"]["median"] == 2.0 and lat["enqueue"]["max"] == 3.0


def test_host_record_cpu_shares():
    # 2 s of wall time, 1 s user + 0.5 s system here, 4 busy CPU seconds on the whole machine.
    h = host_record((10.0, 1.0, 1.0), (12.0, 2.0, 1.5), busy0=100.0, busy1=104.0, peak_rss_mib=5.0)
    assert h["cpu_percent"] == 75.0 and h["other_processes_cpu_percent"] == 125.0
    assert h["cpu_user_s"] == 1.0 and h["cpu_system_s"] == 0.5 and h["peak_rss_mib"] == 5.0
    assert host_record((1.0, 0, 0), (3.0, 0, 0), None, 7.0, 1.0)["other_processes_cpu_percent"] is None
    assert math.isnan(host_record((1.0, 0, 0), (1.0, 0, 0), None, None, 1.0)["cpu_percent"])
