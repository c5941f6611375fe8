"""engine.build_steps.create_config on the TensorRT 10 path, with a recording stand-in for TensorRT.

The real builds in tests/engine/test_build.py run TensorRT-RTX on a CPU; the options only TensorRT 10/11
has (timing cache, version compatibility, DLA, the FP16 flag) need a GPU with TensorRT and are
marked there. Here each option is checked to reach the builder config as TensorRT's Python API
names it (calls written out by hand below), and the timing cache to round-trip through its file.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from higherhrnet_trt.engine.build import save_timing_cache
from higherhrnet_trt.engine.build_plan import BuildOptions, BuildPlan, PrecisionPlan
from higherhrnet_trt.engine.build_steps import create_config
from higherhrnet_trt.engine.flavors import Flavor

TRT = SimpleNamespace(
    BuilderFlag=SimpleNamespace(FP16="FP16", INT8="INT8", VERSION_COMPATIBLE="VERSION_COMPATIBLE",
                                GPU_FALLBACK="GPU_FALLBACK"),
    MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
    DeviceType=SimpleNamespace(DLA="DLA"),
    ProfilingVerbosity=SimpleNamespace(DETAILED="DETAILED"),
)


class _Recorder:
    """Records every method call as (name, args); attribute writes land in __dict__."""

    def __init__(self, returns=None):
        self.calls: list[tuple] = []
        self._returns = returns or {}

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def method(*args):
            self.calls.append((name, *args))
            return self._returns.get(name)
        return method


def _plan(shapes) -> BuildPlan:
    flavor = Flavor("tensorrt", TRT, "10.3.0")
    return BuildPlan("m.onnx", None, None, flavor, PrecisionPlan(False, ["FP16"], "fp16"), shapes,
                     None, [], [])


def test_every_option_reaches_the_config(tmp_path):
    cache_file = tmp_path / "timing.cache"
    cache_file.write_bytes(b"old tactics")
    timing_cache = object()
    config = _Recorder({"create_timing_cache": timing_cache})
    profile = _Recorder()
    builder = _Recorder({"create_builder_config": config, "create_optimization_profile": profile})
    shapes = {"image": {"min": [1, 3, 64, 64], "opt": [1, 3, 128, 128], "max": [2, 3, 256, 256]}}
    plan = _plan(shapes)
    opts = BuildOptions(workspace=512, optimization_level=4, version_compatible=True, dla_core=1,
                        gpu_fallback=True, timing_cache=str(cache_file))
    got, cache = create_config(builder, plan, opts)
    assert got is config and cache is timing_cache
    assert config.calls == [
        ("set_flag", "FP16"),
        ("set_memory_pool_limit", "WORKSPACE", 512 * 2**20),
        ("set_flag", "VERSION_COMPATIBLE"),
        ("set_flag", "GPU_FALLBACK"),
        ("add_optimization_profile", profile),
        ("create_timing_cache", b"old tactics"),
        ("set_timing_cache", timing_cache, False),
    ]
    assert config.builder_optimization_level == 4
    assert (config.default_device_type, config.DLA_core) == ("DLA", 1)
    assert config.profiling_verbosity == "DETAILED"
    assert profile.calls == [("set_shape", "image", (1, 3, 64, 64), (1, 3, 128, 128), (2, 3, 256, 256))]
    assert plan.notes == ["version compatible: the runtime must set engine_host_code_allowed = True"]


def test_defaults_set_nothing_but_profiling_and_a_new_cache_starts_empty(tmp_path):
    config = _Recorder()
    builder = _Recorder({"create_builder_config": config})
    plan = _plan({})
    plan.precision.flags.clear()
    create_config(builder, plan, BuildOptions(timing_cache=str(tmp_path / "new.cache")))
    assert config.calls == [("create_timing_cache", b""), ("set_timing_cache", None, False)]
    assert config.profiling_verbosity == "DETAILED" and "DLA_core" not in vars(config)


def test_timing_cache_written_back_whole(tmp_path):
    serialized = SimpleNamespace(serialize=lambda: b"new tactics")
    config = _Recorder({"get_timing_cache": serialized})
    path = tmp_path / "sub" / "timing.cache"
    save_timing_cache(config, str(path))
    assert path.read_bytes() == b"new tactics" and os.listdir(path.parent) == ["timing.cache"]
