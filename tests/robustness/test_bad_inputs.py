"""Bad inputs a user can type or feed (issue 15): one test per defect found, each failing before its
fix. Every error must be one line that names the fix (``error: ...`` from the CLI, a UserError from
the API), never a traceback, a hang, a silent fallback or a wrong result.

Grouped by the issue's classes: 5 no silent wrong results, 6 one-line errors, 1 bounded resources.
No GPU is needed; tests that need torch (an export) or OpenCV skip without them.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import ModelMeta


@pytest.fixture
def image_dir(tmp_path):
    """A folder with one readable image."""
    cv2 = pytest.importorskip("cv2")
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "000000000001.jpg"), np.zeros((96, 128, 3), np.uint8))
    return folder

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def run_cli(capsys, *argv):
    """main(argv) -> (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def one_error_line(err: str, *needles: str) -> str:
    """The single 'error: ...' line of stderr; fails on a traceback or a missing needle."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------------------
# 5. No silent wrong results
# ------------------------------------------------------------------------------------------------


def _fake_engine(tmp_path, flavor="tensorrt", version="10.3.0.30", data=b"engine-bytes" * 100):
    """An engine file and a sidecar that records its size and sha256 (no TensorRT needed)."""
    import hashlib

    from higherhrnet_trt.engine.sidecar import Sidecar, write_sidecar

    engine = tmp_path / "m.engine"
    engine.write_bytes(data)
    s = Sidecar(
        engine="m.engine", builder={"flavor": flavor, "module": flavor, "version": version},
        gpu="Orin", compute_capability="8.7", precision="fp16", onnx_precision="fp16",
        strongly_typed=True, builder_flags=[], shapes={}, inputs=[], outputs=[],
        onnx={"path": "m.onnx", "sha256": "0" * 64},
        build_args={"onnx_path": "m.onnx", "engine_path": str(engine), "backend": "auto"},
        model=ModelMeta.for_dataset("coco").to_json(), engine_bytes=len(data),
        engine_sha256=hashlib.sha256(data).hexdigest(),
    )
    write_sidecar(str(engine), s)
    return engine


@pytest.mark.parametrize("damage, word", [
    (lambda b: b[: len(b) // 2], "bytes but its sidecar"),  # truncated to half
    (lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:], "sha256"),  # one flipped byte
])
def test_info_reports_a_damaged_engine(tmp_path, capsys, damage, word):
    engine = _fake_engine(tmp_path)
    engine.write_bytes(damage(engine.read_bytes()))
    rc, out, err = run_cli(capsys, "info", engine)
    assert rc == 1
    one_error_line(err, "DAMAGED", word, "rebuild")


def test_info_never_calls_an_unchecked_engine_compatible(tmp_path, capsys, monkeypatch):
    from higherhrnet_trt.engine import flavors

    engine = _fake_engine(tmp_path)
    rc, out, _ = run_cli(capsys, "info", engine)  # TensorRT absent here: not checked, still intact
    assert rc == 0 and "integrity: size and sha256 match" in out
    assert "compatible" not in out.split("integrity:")[1]
    # With the flavour present at the engine's version but no GPU: says so, never "compatible; ..."
    fake = type("trt", (), {"__version__": "10.3.0.30", "Builder": object})
    monkeypatch.setattr(flavors, "_import", lambda name: fake)
    monkeypatch.setattr("higherhrnet_trt.engine.info.query_gpu", lambda *a: None)
    rc, out, _ = run_cli(capsys, "info", engine)
    assert rc == 0 and "no CUDA GPU here" in out and "compatible;" not in out
    # Another version: incompatible is exit 1
    fake.__version__ = "10.7.0.23"
    rc, _, err = run_cli(capsys, "info", engine)
    assert rc == 1
    one_error_line(err, "10.3.0.30", "rebuild")


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n"])
def test_info_on_an_empty_or_bogus_onnx_fails(tmp_path, capsys, content):
    pytest.importorskip("onnx")
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    rc, out, err = run_cli(capsys, "info", path)
    assert rc == 1 and "opset" not in out
    one_error_line(err, "re-export")


def test_export_with_nan_weights_fails_its_check_and_writes_nothing(tiny_model, tmp_path):
    import copy

    import torch

    from higherhrnet_trt.export.onnx_export import export_onnx

    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    out = tmp_path / "nan.onnx"
    with pytest.raises(UserError, match="NaN"):
        export_onnx(model, str(out), input_size=128)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_export_nan_checkpoint_is_refused_before_export(tiny_model, tmp_path, capsys):
    import torch

    sd = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    first = next(k for k, v in sd.items() if v.is_floating_point())
    sd[first][...] = float("inf")
    ckpt = tmp_path / "bad.pth"
    torch.save(sd, ckpt)
    rc, _, err = run_cli(capsys, "export", "-c", ckpt, "--config", "tiny", "--input-size", "128",
                         "-o", tmp_path / "x.onnx")
    assert rc == 1 and not (tmp_path / "x.onnx").exists()
    one_error_line(err, "NaN or inf")


def test_export_batch_zero_is_refused_and_leaves_no_onnx(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "b0.onnx"
    with pytest.raises(SystemExit):
        main(["export", "--config", "tiny", "--batch", "0", "-o", str(out)])
    assert "expected a whole number from 1 to 256" in capsys.readouterr().err and not out.exists()
    from higherhrnet_trt.export.api import export

    with pytest.raises(UserError, match="batch must be 1 or more"):
        export(config="tiny", batch=0, output=str(out))
    assert not out.exists()


def test_run_fails_when_no_input_could_be_read(tiny_onnx, tmp_path, capsys):
    pytest.importorskip("cv2")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", bad, "--json", tmp_path / "p.json")
    assert rc == 1
    one_error_line(err, "no frame could be read", "bad.jpg")


@pytest.mark.parametrize("providers, message", [
    ("FooExecutionProvider", "no such ONNX Runtime execution provider"),
    ("cuda", "did you mean CUDAExecutionProvider"),
    ("CUDAExecutionProvider", "built without it"),
])
def test_unknown_or_unavailable_providers_do_not_fall_back_to_the_cpu(tiny_onnx, providers, message):
    import onnxruntime as ort

    from higherhrnet_trt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    if providers in ort.get_available_providers():
        pytest.skip(f"{providers} is available in this onnxruntime")
    with pytest.raises(UserError, match=message):
        OnnxRuntimeBackend(str(tiny_onnx), providers=[providers]).activate()


def test_providers_that_fail_to_start_are_an_error(tiny_onnx, monkeypatch):
    """ONNX Runtime drops a provider that cannot start (no driver) with only a log line."""
    import onnxruntime as ort

    from higherhrnet_trt.runtime.backends import onnxruntime_backend as mod

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    real = ort.InferenceSession

    def session(path, opts, providers):  # what ORT does when CUDA cannot start: CPU only
        return real(path, opts, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "InferenceSession", session)
    backend = mod.OnnxRuntimeBackend(str(tiny_onnx), providers=["CUDAExecutionProvider",
                                                                "CPUExecutionProvider"])
    with pytest.raises(UserError, match="could not start"):
        backend.activate()


@pytest.fixture(scope="module")
def other_weights_onnx(tmp_path_factory):
    """The tiny architecture with other (random) weights: same graph, unrelated network."""
    torch = pytest.importorskip("torch")
    from higherhrnet_trt.export.model import build_model
    from higherhrnet_trt.export.onnx_export import export_onnx

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("other") / "other.onnx"
    export_onnx(build_model("tiny"), str(path), input_size=128, flip=True)
    return path


def test_debug_precision_refuses_unrelated_networks(tiny_onnx, other_weights_onnx, tmp_path, capsys):
    pytest.importorskip("polygraphy")
    rc, out, err = run_cli(capsys, "debug-precision", tiny_onnx, "--variant", other_weights_onnx)
    assert rc == 1 and "tensors compared" not in out
    one_error_line(err, "other weights", "fp32 ONNX that")
    # A variant that records another fp32 source is refused on that record alone.
    import onnx

    from higherhrnet_trt.core.metadata import copy_metadata

    model = onnx.load(str(tiny_onnx))
    copy_metadata(model, model, derived_from={"sha256": "f" * 64, "precision": "fp32"})
    variant = tmp_path / "v.onnx"
    onnx.save(model, str(variant))
    rc, _, err = run_cli(capsys, "debug-precision", other_weights_onnx, "--variant", variant)
    assert rc == 1
    one_error_line(err, "was made from another fp32 file")


def test_debug_precision_accepts_the_same_network(tiny_onnx, capsys):
    pytest.importorskip("polygraphy")
    rc, out, _ = run_cli(capsys, "debug-precision", tiny_onnx, "--variant", tiny_onnx, "--num-inputs", "1")
    assert rc == 0 and "tensors compared" in out


def test_demo_reuses_an_export_by_content_not_by_file_time(tmp_path):
    from higherhrnet_trt.cli.demo import _needs_export, _write_record

    weights, onnx_path = tmp_path / "w.pth", tmp_path / "demo.onnx"
    weights.write_bytes(b"weights A")
    onnx_path.write_bytes(b"onnx from A")
    assert _needs_export(str(onnx_path), str(weights))  # no record: exported by someone else
    _write_record(str(onnx_path), str(weights))
    assert not _needs_export(str(onnx_path), str(weights))
    weights.write_bytes(b"weights B")  # other weights, made to look older than the ONNX
    os.utime(weights, (1, 1))
    assert _needs_export(str(onnx_path), str(weights))
    weights.write_bytes(b"weights A")
    os.utime(weights, (2**31, 2**31))  # the same weights, newer file time: no new export
    assert not _needs_export(str(onnx_path), str(weights))
    onnx_path.write_bytes(b"onnx edited")  # the ONNX itself changed
    assert _needs_export(str(onnx_path), str(weights))


def test_build_auto_says_which_builder_and_where_the_engine_runs(tiny_onnx, monkeypatch):
    from higherhrnet_trt.engine import build, build_plan, flavors

    fake = type("tensorrt_rtx", (), {"__version__": "1.7.1", "Builder": object,
                                     "ComputeCapability": type("CC", (), {"__members__": {
                                         "SM75": 0, "SM80": 1, "SM86": 2, "SM89": 3, "SM120": 4}})})
    monkeypatch.setattr(flavors, "_import", lambda name: fake if name == "tensorrt-rtx" else None)

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(build_plan, "plan_precision", stop)
    lines: list[str] = []
    with pytest.raises(Stop):
        build.build_engine(str(tiny_onnx), "x.engine", log=lines.append)
    assert lines and "builder: TensorRT-RTX 1.7.1" in lines[0] and "TensorRT is not installed" in lines[0]
    flavor = flavors.load_flavor("auto")
    text = flavors.runs_on(flavor, None, flavor.default_target_compute_capabilities)
    assert "NOT on Jetson Orin (8.7), Hopper (H100, H200) (9.0)" in text and "8.9 Ada" in text


def test_wrong_config_advice_never_names_the_given_config(tiny_model):
    """'use --config tiny' was printed when --config tiny had been given."""
    from higherhrnet_trt.core.errors import CheckpointError
    from higherhrnet_trt.export.checkpoint import check_compatible
    from higherhrnet_trt.export.model import build_model

    sd = dict(tiny_model.state_dict())
    sd.pop(next(iter(sd)))  # one key missing: still recognised as the tiny layout
    model = build_model("tiny")
    with pytest.raises(CheckpointError) as e:
        check_compatible(sd, model, model.cfg)
    assert "--config tiny" not in str(e.value)


def test_demo_weights_error_names_no_option_demo_lacks(tiny_model, tmp_path, capsys):
    import torch

    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_model.state_dict(), ckpt)
    rc, _, err = run_cli(capsys, "demo", "--weights", ckpt, "--save-dir", tmp_path / "d")
    assert rc == 1
    line = one_error_line(err, "not a demo-config checkpoint", "higherhrnet-trt export -c")
    assert "demo --config" not in line and not line.rstrip().endswith("--config tiny")


def test_info_json_sidecar_garbage_is_one_line(tmp_path, capsys):
    engine = _fake_engine(tmp_path)
    (tmp_path / "m.engine.json").write_text(json.dumps([1, 2]))
    rc, _, err = run_cli(capsys, "info", engine)
    assert rc == 1
    one_error_line(err, "not a valid engine sidecar")


# ------------------------------------------------------------------------------------------------
# 6. Every error is one line that names the fix
# ------------------------------------------------------------------------------------------------

#: Each command with an output under a regular file (a path no one can write, root included),
#: given before the expensive work: an export, a model load, a calibration pass, a build.
UNWRITABLE = [
    ("export", ["export", "--config", "tiny", "--input-size", "128", "-o", "{bad}/x.onnx"]),
    ("convert", ["convert", "{onnx}", "-o", "{bad}/x.fp16.onnx"]),
    ("calibrate", ["calibrate", "{onnx}", "--images", "{imgs}", "-o", "{bad}/x.int8.onnx"]),
    ("build", ["build", "{onnx}", "-o", "{bad}/x.engine"]),
    ("run --json", ["run", "{onnx}", "--source", "{imgs}", "--json", "{bad}/p.json"]),
    ("run --save-dir", ["run", "{onnx}", "--source", "{imgs}", "--save-dir", "{bad}"]),
    ("eval --json", ["eval", "{onnx}", "--ann", "{bad}", "--images", "{imgs}", "--json", "{bad}/r.json"]),
    ("bench --json", ["bench", "{onnx}", "--json", "{bad}/b.json"]),
    ("bench --plot", ["bench", "{onnx}", "--plot", "{bad}/b.png"]),
    ("demo --save-dir", ["demo", "--save-dir", "{bad}"]),
]


@pytest.mark.parametrize("name, argv", UNWRITABLE, ids=[u[0] for u in UNWRITABLE])
def test_unwritable_outputs_are_refused_before_any_work(tiny_onnx, tmp_path, capsys, monkeypatch, name, argv):
    import higherhrnet_trt.runtime.pipeline as pipeline

    cv2 = pytest.importorskip("cv2")
    bad = tmp_path / "a_file.txt"
    bad.write_text("x")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "000000000001.jpg"), np.zeros((64, 64, 3), np.uint8))
    monkeypatch.setattr(pipeline.Pipeline, "activate", lambda self: pytest.fail("the model loaded"))
    argv = [a.format(bad=bad, onnx=tiny_onnx, imgs=imgs) for a in argv]
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 1
    one_error_line(err, str(bad))


def test_check_writable_probes_the_folder(tmp_path):
    from higherhrnet_trt.core.files import check_writable

    check_writable(str(tmp_path / "new" / "sub" / "x.json"), "--json", "fix")  # folders made later
    assert os.listdir(tmp_path) == []  # the probe left nothing
    with pytest.raises(UserError, match="is a folder, not a file"):
        check_writable(str(tmp_path), "--json", "fix")


@pytest.fixture(scope="module")
def bare_onnx(tiny_onnx, tmp_path_factory):
    """The tiny ONNX with its higherhrnet_trt metadata removed: as another tool would export it."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    path = tmp_path_factory.mktemp("bare") / "bare.onnx"
    onnx.save(model, str(path))
    return path


def test_onnx_without_metadata_names_config_and_runs_with_it(tiny_onnx, bare_onnx, tmp_path, capsys):
    pytest.importorskip("cv2")
    import cv2

    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    rc, _, err = run_cli(capsys, "run", bare_onnx, "--source", tmp_path / "f.png")
    assert rc == 1
    one_error_line(err, "no higherhrnet_trt metadata", "--config NAME", "tiny", "w32_512")
    results = []
    for model, extra in ((tiny_onnx, []), (bare_onnx, ["--config", "tiny"])):
        out = tmp_path / f"{len(results)}.json"
        rc, _, _ = run_cli(capsys, "run", model, "--source", tmp_path / "f.png", "--json", out, *extra)
        assert rc == 0
        results.append(json.loads(out.read_text()))
    assert results[1] == results[0]  # the stated config gives the self-describing file's people


def test_config_that_contradicts_the_file_is_refused(tiny_onnx, capsys, image_dir):
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", image_dir, "--config", "w32_512")
    assert rc == 1
    one_error_line(err, "says it is config 'tiny'")


def test_huge_camera_index_is_one_line(tiny_onnx, capsys):
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--source", "99999999999999999999")
    assert rc == 1
    one_error_line(err, "no such camera", "ls /dev/video")


def test_interrupt_during_native_export_waits_for_the_step(capsys):
    import signal

    from higherhrnet_trt.core.errors import Terminated, deferred_interrupts

    # what the handlers were (SIG_IGN for SIGINT when started in the background): put back after
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    done = []
    with pytest.raises(KeyboardInterrupt) as e:
        with deferred_interrupts("the step"):
            os.kill(os.getpid(), signal.SIGINT)  # handled at once, in this thread
            done.append("the step finished")  # not cut through
    assert done and not isinstance(e.value, Terminated)
    assert "stopping after the step" in capsys.readouterr().err
    with pytest.raises(Terminated):
        with deferred_interrupts("the step"):
            os.kill(os.getpid(), signal.SIGTERM)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_tensorrt_backend_on_an_onnx_gives_the_build_command(tiny_onnx, capsys, image_dir):
    rc, _, err = run_cli(capsys, "run", tiny_onnx, "--backend", "tensorrt", "--source", image_dir)
    assert rc == 1
    line = one_error_line(err, "is an ONNX file", ".engine", "--backend onnxruntime")
    assert f"-o {tiny_onnx}" not in line


def test_engine_without_gpu_points_at_its_onnx(tmp_path, capsys, monkeypatch, image_dir):
    monkeypatch.setattr("higherhrnet_trt.runtime.backends.tensorrt_backend.query_gpu", lambda *a: None)
    engine = _fake_engine(tmp_path)
    rc, _, err = run_cli(capsys, "run", engine, "--source", image_dir)
    assert rc == 1
    one_error_line(err, "no NVIDIA driver or GPU", "run m.onnx with --backend onnxruntime")


def test_cuda_errors_are_the_projects_error_type():
    from higherhrnet_trt.core.cuda import check
    from higherhrnet_trt.core.errors import CudaError

    with pytest.raises(UserError, match="CUDA error in cuLaunchKernel"):
        check((700,), "cuLaunchKernel")
    assert issubclass(CudaError, RuntimeError)  # callers that caught RuntimeError still do


@pytest.mark.parametrize("module", ["kernels/compile.py", "kernels/decode_gpu.py",
                                    "kernels/preprocess_gpu.py", "kernels/host.py",
                                    "runtime/gpu_pipeline.py"])
def test_kernel_launchers_raise_no_bare_runtime_error(module):
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / module).read_text()
    assert "raise RuntimeError(" not in source


# ------------------------------------------------------------------------------------------------
# 1. Bounded resources
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scales, message", [
    ("100", "outside 0.25..4"),
    ("0.1", "outside 0.25..4"),
    ("4,2,1,0.5,0.25", "at most 4"),
])
def test_scales_are_bounded_before_any_work(tiny_onnx, capsys, scales, message):
    with pytest.raises(SystemExit) as e:
        main(["run", str(tiny_onnx), "--source", "x.jpg", "--scales", scales])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_pipeline_bounds_scales_too(tiny_onnx_dynamic):
    from higherhrnet_trt.runtime.pipeline import Pipeline

    with pytest.raises(UserError, match="outside 0.25..4"):
        Pipeline(str(tiny_onnx_dynamic), scales=(100,))


def test_an_elongated_frame_is_refused_before_any_work(tiny_onnx_dynamic, monkeypatch):
    """A 20x2000 strip took 8 GB and 42 s: its 128 px short side makes a 128x12800 input."""
    from higherhrnet_trt.core.limits import FrameTooLarge
    from higherhrnet_trt.runtime import pipeline

    monkeypatch.setattr(pipeline, "preprocess", lambda *a, **k: pytest.fail("pre-processing ran"))
    with pipeline.Pipeline(str(tiny_onnx_dynamic)) as pipe:
        with pytest.raises(FrameTooLarge, match="2000x20 pixels is 100.0 times longer"):
            pipe.predict(np.zeros((20, 2000, 3), np.uint8))


def test_input_pixels_are_bounded():
    from higherhrnet_trt.core.limits import MAX_INPUT_PIXELS, FrameTooLarge, check_frame_size, input_sizes

    # The official multi-scale test of w32_640 on a 16:9 frame stays allowed...
    check_frame_size((1920, 1080), 640, (2, 1, 0.5))
    assert max(w * h for w, h in input_sizes((1920, 1080), 640, (2, 1, 0.5))) <= MAX_INPUT_PIXELS
    # ... scale 4 of it does not (640 x 4 by ceil64(640 * 16/9) x 4): one line with the fix.
    with pytest.raises(FrameTooLarge, match=r"2560x4608 network input at scale 4 .*smaller --scales"):
        check_frame_size((1080, 1920), 640, (4, 1))


def test_run_skips_and_counts_frames_beyond_the_limits(tiny_onnx_dynamic, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.zeros((96, 128, 3), np.uint8))
    cv2.imwrite(str(src / "b.png"), np.zeros((20, 2000, 3), np.uint8))
    rc, _, err = run_cli(capsys, "run", tiny_onnx_dynamic, "--source", src, "--json", tmp_path / "p.json")
    assert rc == 0 and "done: 1 frames" in err
    assert "skipped 1 frames too large for the network input limits (first: b.png)" in err
    rc, _, err = run_cli(capsys, "run", tiny_onnx_dynamic, "--source", src / "b.png")
    assert rc == 1
    one_error_line(err, "too large for the network input limits")
