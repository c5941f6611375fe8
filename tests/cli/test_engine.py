"""cli/engine.py, cli/precision.py: calibrate / build / info / debug-precision through ``higherhrnet-trt``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import warnings

import pytest

from higherhrnet_trt.cli import build_parser, main

COMMANDS = ("calibrate", "build", "info", "debug-precision")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_is_explained():
    subs = _subparsers()
    for name in COMMANDS:
        p = subs[name]
        assert p.description, name
        for action in p._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue  # old spellings, hidden (cli/flags.py)
            assert action.help and len(action.help) > 15, (name, action.dest)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"higherhrnet-trt {name}" in out


def test_cli_module_imports_nothing_heavy():
    code = ("import sys, higherhrnet_trt.cli.engine, higherhrnet_trt.cli as c; c.build_parser(); "
            "heavy = [m for m in ('tensorrt', 'tensorrt_rtx', 'onnx', 'onnxruntime', 'modelopt', "
            "'polygraphy', 'torch', 'cv2') if m in sys.modules]; print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_bad_shape_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["build", "m.onnx", "--opt-shape", "512x512"])
    assert e.value.code == 2 and "expected NxCxHxW" in capsys.readouterr().err


def test_info_onnx(tiny_onnx, capsys):
    assert main(["info", str(tiny_onnx)]) == 0
    out = capsys.readouterr().out
    assert "precision fp32" in out and "input  image: float32 1x3x128x128" in out
    assert "output tags: float32 1x17x64x64x2" in out and "coco 17 joints" in out


def test_info_unknown_file_is_one_line_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "model.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot tell what") and err.count("\n") == 1


@pytest.mark.tensorrt_rtx
def test_build_and_info_engine(tiny_onnx, tmp_path, capsys):
    engine = tmp_path / "cli.engine"
    assert main(["build", str(tiny_onnx), "-o", str(engine), "--backend", "tensorrt-rtx",
                 "--no-progress"]) == 0
    assert engine.is_file() and os.path.isfile(str(engine) + ".json")
    assert "wrote" in capsys.readouterr().out
    assert main(["info", str(engine)]) == 0
    out = capsys.readouterr().out
    assert "tensorrt-rtx" in out and "precision fp32" in out and "ahead-of-time" in out
    assert "unchanged" in out and f"rebuild: higherhrnet-trt build {tiny_onnx} -o {engine}" in out
    assert "this machine:" in out
    # A user error is one line on stderr and exit code 1.
    assert main(["build", str(tiny_onnx), "-o", str(engine), "--backend", "tensorrt-rtx",
                 "--precision", "fp16"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --precision fp16 is a TensorRT 10 builder flag") and err.count("\n") == 1


def test_calibrate_and_debug_precision(tiny_onnx, tmp_path, capsys):
    pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")
    pytest.importorskip("polygraphy")
    from tests.export.test_quantize import make_images

    images = make_images(tmp_path / "imgs", 10, seed=3)
    onnx_copy = tmp_path / "model.onnx"
    onnx_copy.write_bytes(tiny_onnx.read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["calibrate", str(onnx_copy), "--images", images, "--num-images", "8",
                     "--method", "max", "--holdout", "2", "--cache-dir", str(tmp_path / "cache"),
                     "--no-progress"])
    assert code == 0
    out, err = capsys.readouterr()
    assert "warning: calibrated on 8 images (asked for 8)" in err  # below the recommended 100
    int8 = tmp_path / "model.int8.onnx"
    assert int8.is_file() and "max calibration on 8 images" in out and "2 held-out images" in out
    assert f"next: higherhrnet-trt build {int8}" in out

    assert main(["debug-precision", str(onnx_copy), "--variant", str(int8), "--images", images,
                 "--num-inputs", "1", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "tensors compared on 1 images" in out and "graph optimisation 'disable'" in out
    assert "outputs:" in out and "heatmaps" in out and "largest jumps anywhere" in out
    assert "first layers whose error jumps" in out or "no layer's error exceeds" in out
