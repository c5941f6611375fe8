"""engine.build's steps on their own: option checks, the plan, and what a failed build leaves.

The full builds (sidecars, precisions, profiles) are in tests/engine/test_build.py; here each step is
called alone, and a failing build is checked for the partial work it must free: no TensorRT
object still referenced from the exception's traceback, no file written.
"""

from __future__ import annotations

import os
import traceback

import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.engine import build as build_mod
from higherhrnet_trt.engine.build_plan import BuildOptions, plan_build

rtx = pytest.mark.tensorrt_rtx


@pytest.mark.parametrize("opts, engine, message", [
    (BuildOptions(), "model.onnx", "must end in .engine, .plan, .trt"),
    (BuildOptions(gpu_fallback=True), "m.engine", "--gpu-fallback only applies with --dla-core N"),
    (BuildOptions(optimization_level=6), "m.plan", "--optimization-level must be 0..5, got 6"),
    (BuildOptions(workspace=0), "m.trt", "--workspace is in MiB and must be positive, got 0"),
])
def test_option_checks_need_no_onnx(opts, engine, message):
    with pytest.raises(UserError, match=message.replace(".", r"\.")):
        opts.check(engine)


def test_build_args_parse_the_shapes_for_the_rebuild_command():
    args = BuildOptions(opt_shape="image:1x3x256x320", workspace=64).build_args("m.onnx", "m.engine")
    assert args["opt_shape"] == [1, 3, 256, 320] and args["min_shape"] is None
    assert args["workspace"] == 64 and args["onnx_path"] == "m.onnx"
    with pytest.raises(UserError, match="not NxCxHxW"):
        BuildOptions(max_shape="1x3xHx64").build_args("m.onnx", "m.engine")


@rtx
def test_plan_of_a_dynamic_onnx(tiny_onnx_dynamic):
    plan = plan_build(str(tiny_onnx_dynamic), BuildOptions(backend="tensorrt-rtx"))
    # Default profile from the model's input size 128 (hand-computed: 64 .. 128 .. 256, batch 1).
    assert plan.shapes == {"image": {"min": [1, 3, 64, 64], "opt": [1, 3, 128, 128],
                                     "max": [1, 3, 256, 256]}}
    assert plan.precision.label == "fp32" and plan.precision.strongly_typed
    assert plan.gpu is None and "8.6" in plan.targets  # ahead of time
    assert any("default profile" in n for n in plan.notes)


def _trt_objects_in(tb, trt) -> list[str]:
    """Names of locals, in the traceback's frames, that hold a TensorRT builder, network, parser
    or config (directly, or in the build's object holder)."""
    kinds = tuple(getattr(trt, n) for n in ("Builder", "INetworkDefinition", "OnnxParser",
                                            "IBuilderConfig") if hasattr(trt, n))
    found = []
    for frame, _ in traceback.walk_tb(tb):
        for name, value in frame.f_locals.items():
            held = [value] + (list(vars(value).values()) if isinstance(value, build_mod._TrtObjects)
                              else [])
            if any(isinstance(v, kinds) for v in held):
                found.append(f"{frame.f_code.co_name}.{name}")
    return found


@rtx
def test_failed_build_frees_its_partial_work(tiny_onnx, tmp_path):
    """--version-compatible fails in the config step, after the builder parsed the network."""
    import tensorrt_rtx as trt

    engine = tmp_path / "vc.engine"
    with pytest.raises(UserError, match="--version-compatible is not available") as excinfo:
        build_mod.build_engine(str(tiny_onnx), str(engine), backend="tensorrt-rtx",
                               version_compatible=True, progress=False)
    assert _trt_objects_in(excinfo.tb, trt) == []
    assert os.listdir(tmp_path) == []


@rtx
def test_the_check_can_see_held_objects(tiny_onnx, tmp_path):
    """The check above is not vacuous: a step's frame that raised with a network in hand shows."""
    import tensorrt_rtx as trt

    from higherhrnet_trt.engine.build_steps import make_logger, network_from_onnx

    plan = plan_build(str(tiny_onnx), BuildOptions(backend="tensorrt-rtx"))
    logger = make_logger(trt, False)
    builder = trt.Builder(logger)
    network, parser = network_from_onnx(builder, logger, plan, sanitize=False)

    def failing_step(network):
        raise UserError("x")

    with pytest.raises(UserError) as excinfo:
        failing_step(network)
    assert "failing_step.network" in _trt_objects_in(excinfo.tb, trt)
