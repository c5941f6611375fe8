"""engine.sidecar and engine.flavors: compatibility rules and rebuild commands (no TensorRT needed
except where marked)."""

from __future__ import annotations

import json

import pytest

from higherhrnet_trt.core.errors import BackendUnavailable, UserError
from higherhrnet_trt.core.gpu import GpuInfo, query_gpu
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.engine import flavors
from higherhrnet_trt.engine.sidecar import (
    AHEAD_OF_TIME,
    Sidecar,
    build_command,
    check_compatible,
    check_engine_file,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

ORIN = GpuInfo(0, "Orin", "8.7")
RTX4090 = GpuInfo(0, "NVIDIA GeForce RTX 4090", "8.9")


def _sidecar(**kw) -> Sidecar:
    base = dict(
        engine="m.engine", builder={"flavor": "tensorrt", "module": "tensorrt", "version": "10.3.0.30"},
        gpu="Orin", compute_capability="8.7", precision="fp16", onnx_precision="fp16",
        strongly_typed=True, builder_flags=[], shapes={}, inputs=[], outputs=[],
        onnx={"path": "m.onnx", "sha256": "0" * 64},
        build_args={"onnx_path": "m.onnx", "engine_path": "m.engine", "backend": "auto",
                    "min_shape": None, "opt_shape": None, "max_shape": None, "workspace": 1024},
        model=ModelMeta.for_dataset("coco").to_json(),
    )
    base.update(kw)
    return Sidecar(**base)


def test_build_command_lists_only_non_defaults():
    cmd = build_command({"onnx_path": "a b.onnx", "engine_path": "x.engine", "backend": "tensorrt",
                         "fp16": True, "int8": False, "min_shape": [1, 3, 256, 256],
                         "opt_shape": None, "max_shape": [1, 3, 1024, 1024], "workspace": 2048,
                         "timing_cache": None, "dla_core": 0, "gpu_fallback": True,
                         "version_compatible": False, "optimization_level": None})
    assert cmd == ("higherhrnet-trt build 'a b.onnx' -o x.engine --backend tensorrt --precision fp16 "
                   "--gpu-fallback --min-shape 1x3x256x256 --max-shape 1x3x1024x1024 "
                   "--workspace 2048 --dla-core 0")


def test_same_machine_is_compatible():
    assert check_compatible(_sidecar(), "tensorrt", "10.3.0.30", ORIN) == []


def test_other_flavor_gives_rebuild_command_for_this_runtime():
    s = _sidecar(builder={"flavor": "tensorrt-rtx", "module": "tensorrt_rtx", "version": "1.7.1.116"},
                 gpu=AHEAD_OF_TIME, compute_capability=AHEAD_OF_TIME)
    with pytest.raises(UserError) as e:
        check_compatible(s, "tensorrt", "10.3.0.30", ORIN, engine_path="/data/m.engine")
    msg = str(e.value)
    assert "built by tensorrt-rtx 1.7.1.116" in msg
    assert msg.endswith("higherhrnet-trt build m.onnx -o /data/m.engine --backend tensorrt "
                        "--workspace 1024")
    assert "\n" not in msg


def test_other_version_needs_rebuild_unless_version_compatible():
    with pytest.raises(UserError, match=r"built with tensorrt 10\.3\.0\.30, this runtime is 10\.7\.0"):
        check_compatible(_sidecar(), "tensorrt", "10.7.0.23", ORIN)
    # build number alone does not matter
    assert check_compatible(_sidecar(), "tensorrt", "10.3.0.26", ORIN) == []
    vc = _sidecar(version_compatible=True)
    assert check_compatible(vc, "tensorrt", "10.7.0.23", ORIN) == []
    with pytest.raises(UserError, match="same major"):
        check_compatible(vc, "tensorrt", "11.0.0", ORIN)
    with pytest.raises(UserError, match="at least as new"):
        check_compatible(vc, "tensorrt", "10.1.0", ORIN)


def test_gpu_rules():
    with pytest.raises(UserError, match=r"compute capability 8\.7 \(Orin\), this GPU is .*4090 \(8\.9\)"):
        check_compatible(_sidecar(), "tensorrt", "10.3.0.30", RTX4090)
    warns = check_compatible(_sidecar(), "tensorrt", "10.3.0.30", GpuInfo(0, "Orin NX", "8.7"))
    assert len(warns) == 1 and "rebuild for best speed" in warns[0]
    warns = check_compatible(_sidecar(), "tensorrt", "10.3.0.30", None)
    assert warns and "no CUDA GPU" in warns[0]


def test_rtx_engine_on_a_gpu_it_does_not_target():
    s = _sidecar(builder={"flavor": "tensorrt-rtx", "module": "tensorrt_rtx", "version": "1.7.1.116"},
                 gpu=AHEAD_OF_TIME, compute_capability=AHEAD_OF_TIME,
                 target_compute_capabilities=["8.0", "8.6", "8.9", "12.0"])
    assert check_compatible(s, "tensorrt-rtx", "1.7.1.116", RTX4090) == []
    with pytest.raises(UserError, match=r"capabilities .* this Orin is 8\.7.*--backend tensorrt"):
        check_compatible(s, "tensorrt-rtx", "1.7.1.116", ORIN)


def test_write_read_roundtrip_and_errors(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"x" * 10)
    s = _sidecar(engine_bytes=10)
    path = write_sidecar(str(engine), s)
    assert path == sidecar_path(str(engine)) == str(engine) + ".json"
    back = read_sidecar(str(engine))
    assert back == s and back.meta() == ModelMeta.for_dataset("coco")
    check_engine_file(str(engine), back)
    engine.write_bytes(b"x" * 11)
    with pytest.raises(UserError, match="stale sidecar or truncated"):
        check_engine_file(str(engine), back)
    with open(path, "w") as f:
        f.write("{not json")
    with pytest.raises(UserError, match="not a valid engine sidecar"):
        read_sidecar(str(engine))
    with pytest.raises(UserError, match="sidecar written by 'higherhrnet-trt build'"):
        read_sidecar(str(tmp_path / "other.engine"))
    # unknown keys from a newer toolkit are ignored
    with open(path, "w") as f:
        json.dump({**s.to_json(), "future_field": 1}, f)
    assert read_sidecar(str(engine)) == s


def test_load_flavor_errors():
    with pytest.raises(UserError, match="unknown builder backend"):
        flavors.load_flavor("onnxruntime")


@pytest.mark.skipif(flavors._import("tensorrt") is not None, reason="tensorrt is installed here")
def test_missing_tensorrt_says_how_to_get_it():
    with pytest.raises(BackendUnavailable, match="JetPack"):
        flavors.load_flavor("tensorrt")


@pytest.mark.tensorrt_rtx
def test_rtx_flavor_facts():
    f = flavors.load_flavor("tensorrt-rtx")
    assert f.is_rtx and f.ahead_of_time and not f.has_precision_flags
    assert f.has_progress_monitor and not f.has_timing_cache and f.profile_multiple == 64
    caps = f.target_compute_capabilities
    assert "8.6" in caps and "8.9" in caps and "8.7" not in caps and "9.0" not in caps  # measured
    assert "7.5" not in f.default_target_compute_capabilities
    assert f.network_flags(True) != 0 and f.network_flags(False) == 0


@pytest.mark.tensorrt
def test_tensorrt_flavor_facts():
    f = flavors.load_flavor("tensorrt")
    assert not f.is_rtx and not f.ahead_of_time and f.has_timing_cache
    # TensorRT 10 keeps the weak-typing precision flags; 11 removed them.
    assert f.has_precision_flags == (f.major == 10)
    assert f.network_flags(True) != 0


def test_query_gpu_without_driver_is_none_or_info():
    gpu = query_gpu()
    assert gpu is None or (gpu.name and gpu.compute_capability.count(".") == 1)
