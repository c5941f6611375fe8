"""benchmarks.soak: memory series arithmetic and a short real loop (CPU, ONNX Runtime)."""

from __future__ import annotations

import json

import pytest

from higherhrnet_trt.benchmarks import soak

pytest.importorskip("cv2")


def test_growth_first_to_last_and_slope():
    g = soak.growth([0, 1000, 2000], [100.0, 101.0, 102.0])
    assert g["growth_mib"] == 2.0 and g["slope_mib_per_1000_frames"] == pytest.approx(1.0)
    assert g["start_mib"] == 100.0 and g["end_mib"] == 102.0 and g["max_mib"] == 102.0
    assert soak.growth([5], [7.0])["slope_mib_per_1000_frames"] == 0.0


def test_soak_runs_the_pipeline_and_reports_both_halves(tiny_onnx, tmp_path, capsys):
    out = tmp_path / "soak.json"
    assert soak.main([str(tiny_onnx), "--frames", "4", "--warmup", "1", "--every", "1", "--threads", "1",
                      "--no-progress", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["frames"] == 4 and res["backend"] == "onnxruntime" and res["people_total"] > 0
    assert [s[0] for s in res["samples"]] == [1, 2, 3, 4]
    assert res["host"]["start_mib"] > 0 and res["host_second_half"]["start_mib"] == res["samples"][2][1]
    if soak.device_used_mib() is None:  # no GPU here: no device series, not zeros
        assert res["device"] is None and res["device_second_half"] is None
    printed = capsys.readouterr().out
    assert "host RSS" in printed and "second half: host slope" in printed


def test_gpu_pipeline_takes_no_backend_options(capsys):
    with pytest.raises(SystemExit) as e:
        soak.main(["model.pth", "--gpu-pipeline", "--threads", "2"])
    assert e.value.code == 2 and "drop --backend" in capsys.readouterr().err


@pytest.mark.gpu
def test_soak_of_the_gpu_pipeline_on_a_checkpoint(tiny_model, tmp_path):
    """The all-GPU runtime's memory series (what a lent GPU without TensorRT can run)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU (CPU-only build)")
    pth = tmp_path / "tiny.pth"
    torch.save(tiny_model.state_dict(), pth)
    res = soak.soak(str(pth), frames=40, warmup=10, every=10, progress=False, gpu_pipeline=True,
                    config="tiny")
    assert res["backend"] == "gpu pipeline, torch" and res["frames"] == 40
    assert res["device"] is not None and len(res["samples"]) == 4


@pytest.mark.parametrize("stop, code", [("sigterm", 143), ("ctrl-c", 130)])
def test_a_stopped_soak_writes_what_it_measured(tiny_onnx, tmp_path, capsys, monkeypatch, stop, code):
    """SIGTERM (here raised as the handler of sigterm_as_interrupt raises it) after 3 frames: the
    JSON covers those 3 frames, says why it stopped, and the exit status is the signal's."""
    from higherhrnet_trt.core.errors import Terminated
    from higherhrnet_trt.runtime.pipeline import Pipeline

    real = Pipeline.predict
    calls = []

    def predict(self, frame):
        calls.append(1)
        if len(calls) == 4:
            raise Terminated() if stop == "sigterm" else KeyboardInterrupt()
        return real(self, frame)

    monkeypatch.setattr(Pipeline, "predict", predict)
    out = tmp_path / "soak.json"
    assert soak.main([str(tiny_onnx), "--frames", "1000", "--warmup", "1", "--every", "1",
                      "--threads", "1", "--no-progress", "--json", str(out)]) == code
    res = json.loads(out.read_text())
    assert res["frames"] == 3 and [s[0] for s in res["samples"]] == [1, 2, 3]
    assert res["interrupted"] == ("terminated (SIGTERM)" if stop == "sigterm" else "interrupted")
    assert "after 3 of 1000 frames" in capsys.readouterr().err
