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
    options = ("--checkpoint", "--config", "--input-size", "--dynamic", "--no-flip", "--precision",
               "--images", "--seed")
    for opt in options:
        assert opt in out


def test_export_random_weights_warns_loudly(tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--config", "tiny", "--input-size", "128", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "RANDOM weights" in captured.err
    assert "max|err|" in captured.out and "done:" in captured.out
    assert read_metadata(str(out)).random_weights is True


def _weights(path) -> dict:
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def test_random_export_is_reproducible(tmp_path, capsys):
    """Two exports without a checkpoint give the same weights (seed 0 by default), another --seed
    other weights; the torch RNG drawn in between does not matter."""
    import numpy as np
    import torch

    args = ["export", "--config", "tiny", "--input-size", "128", "--no-check"]
    assert main([*args, "-o", str(tmp_path / "a.onnx")]) == 0
    torch.rand(1000)  # the caller's generator state must not leak into the weights
    assert main([*args, "-o", str(tmp_path / "b.onnx")]) == 0
    a, b = _weights(tmp_path / "a.onnx"), _weights(tmp_path / "b.onnx")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert main([*args, "-o", str(tmp_path / "c.onnx"), "--seed", "1"]) == 0
    assert "RANDOM weights (seed 1)" in capsys.readouterr().err
    c = _weights(tmp_path / "c.onnx")
    # Convolution weights all differ with another seed (biases, BN-folded to 0, may not).
    convs = [k for k in a if a[k].ndim == 4]
    assert len(convs) > 10 and not any(np.array_equal(a[k], c[k]) for k in convs)


def test_seed_with_checkpoint_is_one_line(tmp_path, capsys):
    code = main(["export", "--config", "tiny", "--seed", "3", "--checkpoint", str(tmp_path / "x.pth"),
                 "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and "leave --seed out" in err


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
