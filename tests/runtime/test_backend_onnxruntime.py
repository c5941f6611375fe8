"""ONNX Runtime backend: the interface contract and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.runtime.backends import create_backend

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def test_infer_returns_named_outputs(tiny_onnx):
    with create_backend(str(tiny_onnx)) as backend:
        assert backend.name == "onnxruntime"
        out = backend.infer({"image": np.zeros((1, 3, 128, 128), np.float32)})
    assert set(out) == {"heatmaps", "tags"}
    assert out["heatmaps"].shape == (1, 17, 64, 64) and out["tags"].shape == (1, 17, 64, 64, 2)
    assert not backend.is_active


def test_wrong_input_shape_is_one_line(tiny_onnx):
    with create_backend(str(tiny_onnx)) as backend:
        with pytest.raises(UserError, match="re-export with --dynamic"):
            backend.infer({"image": np.zeros((1, 3, 64, 64), np.float32)})
        with pytest.raises(UserError, match="model inputs are"):
            backend.infer({"input": np.zeros((1, 3, 128, 128), np.float32)})


def test_missing_and_corrupt_files(tmp_path, tiny_onnx):
    with pytest.raises(UserError, match="not found"):
        create_backend(str(tmp_path / "none.onnx")).activate()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tiny_onnx.read_bytes()[:5000])
    with pytest.raises(UserError, match="cannot load"):
        create_backend(str(cut)).activate()
    with pytest.raises(UserError, match="expected a .onnx, .engine or .pth"):
        create_backend(str(tmp_path / "model.bin"))
    with pytest.raises(UserError, match="unknown backend"):
        create_backend(str(tiny_onnx), backend="nope")


def test_foreign_onnx_without_metadata(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    # One line naming the option that exists (--config) and its values, not a ValueError.
    with pytest.raises(UserError, match="no higherhrnet_trt metadata.*--config NAME.*tiny"):
        create_backend(str(path)).activate()


def test_graph_optimization_option(tiny_onnx):
    """--graph-optimization reaches the backend; its session runs at the level asked for, and
    "auto" runs an fp32 file at "all" (INT8 files: tests/runtime/test_backend_onnxruntime_int8.py)."""
    from higherhrnet_trt.cli import build_parser
    from higherhrnet_trt.cli.flags import options
    from higherhrnet_trt.runtime.options import ModelOptions

    def backend_options(*argv):
        args = build_parser().parse_args(["run", str(tiny_onnx), "-s", "x", *argv])
        return options(args, ModelOptions).backend_options()

    assert backend_options() == {}
    opts = backend_options("--graph-optimization", "basic")
    assert opts == {"graph_optimization": "basic"}
    with create_backend(str(tiny_onnx), **opts) as backend:
        assert backend.graph_optimization_used == "basic"
    with create_backend(str(tiny_onnx)) as backend:
        assert backend.graph_optimization_used == "all"
    with pytest.raises(UserError, match="expected one of auto, all"):
        create_backend(str(tiny_onnx), graph_optimization="none")


def test_stated_config_must_fit_the_graph(tiny_onnx, tmp_path):
    """An ONNX without our metadata run with a --config of another width is refused in one line
    (W16 run as W32 would decode at the wrong input size and never say so)."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    path = tmp_path / "nometa.onnx"
    onnx.save(model, str(path))
    with create_backend(str(path), config="tiny") as backend:
        assert backend.metadata.config_name == "tiny"
    # tiny's first final layer takes 8 channels (export/configs.py: stage4 widths 8, 16, ...).
    with pytest.raises(UserError, match=r"not a w32_512 network \(its final layer takes 8 channels, "
                                        r"w32_512's takes 32\).*it fits tiny"):
        create_backend(str(path), config="w32_512").activate()
