"""The export command end to end, through main() as a user would call it."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from higherhrnet_trt.cli import main  # noqa: E402
from higherhrnet_trt.export.onnx_export import read_metadata  # noqa: E402


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "export" in capsys.readouterr().out


def test_export_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    options = ("--checkpoint", "--config", "--input-size", "--dynamic", "--no-flip", "--precision", "--data")
    for opt in options:
        assert opt in out


def test_export_random_weights_warns_loudly(tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--config", "tiny", "--input-size", "128", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err
    assert "max|err|" in captured.out and "done:" in captured.out
    assert read_metadata(str(out)).random_weights is True


def test_export_bad_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    code = main(["export", "--config", "tiny", "--checkpoint", str(bad), "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a PyTorch checkpoint" in err


def test_unknown_config(capsys):
    assert main(["export", "--config", "w64"]) == 1
    assert "unknown config 'w64'" in capsys.readouterr().err
