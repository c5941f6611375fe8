"""``triton-repo``: each config.pbtxt parsed back with Triton's own ModelConfig protobuf
(tritonclient ships model_config_pb2) and checked against the model file: the ONNX graph as the
``onnx`` package reads it, its metadata_props, or an engine's sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")
onnx = pytest.importorskip("onnx")

from google.protobuf import text_format  # noqa: E402  (tritonclient[grpc] brings protobuf)
from tritonclient.grpc import model_config_pb2 as mc  # noqa: E402

from higherhrnet_trt.cli import main  # noqa: E402
from higherhrnet_trt.core.metadata import ModelMeta  # noqa: E402
from higherhrnet_trt.runtime.backends import triton_protocol as proto  # noqa: E402
from higherhrnet_trt.serving.repository import write_repository  # noqa: E402

ONNX_TO_TRITON = {1: mc.TYPE_FP32, 10: mc.TYPE_FP16, 2: mc.TYPE_UINT8, 6: mc.TYPE_INT32, 7: mc.TYPE_INT64}


def parse(path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def graph_tensors(values) -> dict[str, tuple[list[int], int]]:
    """name -> (dims with -1 for symbolic ones, Triton data type), straight from the ONNX graph."""
    out = {}
    for v in values:
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        out[v.name] = (dims, ONNX_TO_TRITON[t.elem_type])
    return out


def config_tensors(items) -> dict[str, tuple[list[int], int]]:
    return {t.name: (list(t.dims), t.data_type) for t in items}


def test_repository_from_onnx_matches_the_graph_and_metadata(demo_onnx, tmp_path):
    repo = tmp_path / "repo"
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--name", "pose", "--instances", "2",
                 "--max-people", "12"]) == 0
    model = onnx.load(str(demo_onnx), load_external_data=False)
    meta = ModelMeta.from_props({p.key: p.value for p in model.metadata_props})

    net = parse(repo / "pose_network" / "config.pbtxt")
    assert net.name == "pose_network" and net.backend == "onnxruntime"
    assert (repo / "pose_network" / "1" / "model.onnx").read_bytes() == demo_onnx.read_bytes()
    # The demo file has a fixed batch of 1: no Triton batching, dims keep the batch.
    assert net.max_batch_size == 0 and not net.HasField("dynamic_batching")
    assert config_tensors(net.input) == graph_tensors(model.graph.input)
    assert config_tensors(net.output) == graph_tensors(model.graph.output)
    assert [(g.count, g.kind) for g in net.instance_group] == [(2, mc.ModelInstanceGroup.KIND_GPU)]

    pipe = parse(repo / "pose" / "config.pbtxt")
    assert pipe.backend == "python" and pipe.max_batch_size == 8 and pipe.HasField("dynamic_batching")
    j = len(meta.joint_names)
    assert config_tensors(pipe.input) == {proto.FRAMES: ([-1, -1, 3], mc.TYPE_UINT8)}
    assert config_tensors(pipe.output) == {
        proto.KEYPOINTS: ([12, j, 3], mc.TYPE_FP32), proto.SCORES: ([12], mc.TYPE_FP32),
        proto.COUNT: ([1], mc.TYPE_INT32), proto.VALID: ([1], mc.TYPE_BOOL)}
    params = {k: v.string_value for k, v in pipe.parameters.items()}
    assert ModelMeta.from_json(json.loads(params[proto.PARAM_META])) == meta
    assert params[proto.PARAM_NETWORK] == "pose_network"
    settings = proto.ServerSettings.from_json(params[proto.PARAM_SETTINGS])
    assert settings.scales == (1.0,) and settings.project2image and settings.max_people == 12
    assert settings.decode["joint_order"] == list(meta.keypoints.joint_order)
    io = json.loads(params["higherhrnet_trt.network_io"])  # what the pipeline sends through BLS
    assert {t["name"]: t["shape"] for t in io["inputs"] + io["outputs"]} == {
        k: v[0] for k, v in {**graph_tensors(model.graph.input), **graph_tensors(model.graph.output)}.items()}
    assert "higherhrnet_trt.serving.python_model" in (repo / "pose" / "1" / "model.py").read_text()
    assert params["higherhrnet_trt.decode_device"] == "auto"  # the default: kernels where a GPU works


@pytest.mark.parametrize("device", ["cpu", "cuda", "auto"])
def test_the_decode_device_is_carried_in_the_pipeline_config(demo_onnx, tmp_path, device):
    """--decode-device as the pipeline model reads it back (cuda is written anywhere: the GPU is the
    serving machine's to have); the network's config does not depend on it."""
    repo = tmp_path / "repo"
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--decode-device", device]) == 0
    params = {k: v.string_value for k, v in parse(repo / "demo" / "config.pbtxt").parameters.items()}
    assert params["higherhrnet_trt.decode_device"] == device
    assert "higherhrnet_trt.decode_device" not in proto.ServerSettings.from_json(
        params[proto.PARAM_SETTINGS]).decode  # not a setting clients must match: same people


def test_cuda_decode_with_settings_the_kernels_do_not_take_is_one_line(demo_onnx, tmp_path, capsys):
    out = tmp_path / "repo"
    assert main(["triton-repo", str(demo_onnx), "-o", str(out), "--decode-device", "cuda",
                 "--max-people", "40"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --decode-device cuda: the CUDA decode kernels take --max-people up to 32")
    assert err.count("\n") == 1 and "--decode-device auto or cpu" in err
    assert not out.exists()


def test_dynamic_batch_onnx_gets_the_dynamic_batcher(demo_onnx, tmp_path):
    """A file whose batch dimension is symbolic: max_batch_size, dims without the batch. (The
    graph's batch is only renamed here: the config is what is checked, nothing runs it.)"""
    model = onnx.load(str(demo_onnx))
    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    path = tmp_path / "dyn.onnx"
    onnx.save(model, str(path))
    write_repository(str(path), str(tmp_path / "repo"), max_batch=4, gpu=False, queue_delay_us=500)
    net = parse(tmp_path / "repo" / "dyn_network" / "config.pbtxt")
    assert net.max_batch_size == 4 and net.dynamic_batching.max_queue_delay_microseconds == 500
    def unbatched(values):
        return {k: (d[1:], t) for k, (d, t) in graph_tensors(values).items()}

    assert config_tensors(net.input) == unbatched(model.graph.input)
    assert config_tensors(net.output) == unbatched(model.graph.output)
    assert net.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert parse(tmp_path / "repo" / "dyn" / "config.pbtxt").max_batch_size == 4


def test_engine_becomes_a_tensorrt_plan_with_the_sidecar_shapes(demo_onnx, tmp_path):
    from higherhrnet_trt.engine.sidecar import Sidecar, write_sidecar

    meta = ModelMeta.from_props({p.key: p.value for p in onnx.load(str(demo_onnx)).metadata_props})
    engine = tmp_path / "w.engine"
    engine.write_bytes(b"not a real engine: Triton would load it, this test only writes configs")
    j = len(meta.joint_names)
    write_sidecar(str(engine), Sidecar(
        engine="w.engine", builder={"flavor": "tensorrt", "version": "10.3.0"}, gpu="Orin",
        compute_capability="8.7", precision="fp16", onnx_precision="fp16", strongly_typed=True,
        builder_flags=[], shapes={}, onnx={}, build_args={}, model=meta.to_json(),
        inputs=[{"name": "image", "shape": [-1, 3, 512, 512], "dtype": "float16"}],
        outputs=[{"name": "heatmaps", "shape": [-1, j, 256, 256], "dtype": "float16"},
                 {"name": "tags", "shape": [-1, j, 256, 256, 2], "dtype": "float16"}]))
    write_repository(str(engine), str(tmp_path / "repo"), name="pose")
    net = parse(tmp_path / "repo" / "pose_network" / "config.pbtxt")
    assert net.backend == "tensorrt" and net.max_batch_size == 8
    assert (tmp_path / "repo" / "pose_network" / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert config_tensors(net.input) == {"image": ([3, 512, 512], mc.TYPE_FP16)}
    assert config_tensors(net.output) == {"heatmaps": ([j, 256, 256], mc.TYPE_FP16),
                                          "tags": ([j, 256, 256, 2], mc.TYPE_FP16)}


def test_existing_models_are_not_replaced_without_force(demo_onnx, tmp_path, capsys):
    repo = tmp_path / "repo"
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo)]) == 0
    config = repo / "demo" / "config.pbtxt"
    before = config.read_text()
    capsys.readouterr()
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--max-people", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--force" in err and err.count("\n") == 1
    assert config.read_text() == before
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--max-people", "5", "--force"]) == 0
    assert parse(config).output[1].dims == [5]


@pytest.mark.parametrize("bad", ["model.txt", "missing.onnx"])
def test_bad_model_is_one_line(tmp_path, capsys, bad):
    path = tmp_path / bad
    if bad.endswith(".txt"):
        path.write_text("x")
    assert main(["triton-repo", str(path), "-o", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_people_tensors_round_trip():
    """poses_to_tensors (server) and tensors_to_people (client) against hand-made people."""
    from higherhrnet_trt.runtime.pipeline import Poses

    kp = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    a = Poses(kp, np.array([0.9, 0.5], np.float32), np.zeros((2, 4), np.float32))
    b = Poses.empty(3, valid=False)
    t = proto.poses_to_tensors([a, b], max_people=4, num_joints=3)
    assert t[proto.KEYPOINTS].shape == (2, 4, 3, 3) and t[proto.COUNT].tolist() == [[2], [0]]
    assert t[proto.VALID].tolist() == [[True], [False]]
    (k0, s0, v0), (k1, s1, v1) = proto.tensors_to_people(t)
    np.testing.assert_array_equal(k0, kp)
    np.testing.assert_array_equal(s0, np.array([0.9, 0.5], np.float32))
    assert v0 and not v1 and k1.shape == (0, 3, 3) and s1.shape == (0,)


def test_force_never_deletes_a_folder_holding_the_input_model(demo_onnx, tmp_path, capsys):
    """triton-repo r/demo/1/model.onnx -o r --name demo --force once removed r/demo, input included."""
    repo = tmp_path / "r"
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--name", "demo"]) == 0
    model = repo / "demo_network" / "1" / "model.onnx"
    before = model.read_bytes()
    capsys.readouterr()
    assert main(["triton-repo", str(model), "-o", str(repo), "--name", "demo", "--force"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "input" in err
    assert model.read_bytes() == before


def test_force_replaces_only_folders_it_wrote(demo_onnx, tmp_path, capsys):
    repo = tmp_path / "r"
    foreign = repo / "demo"
    (foreign / "1").mkdir(parents=True)
    (foreign / "config.pbtxt").write_text('name: "demo"\nbackend: "python"\n')
    (foreign / "1" / "keep.txt").write_text("user data")
    assert main(["triton-repo", str(demo_onnx), "-o", str(repo), "--force"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not written by triton-repo" in err
    assert (foreign / "1" / "keep.txt").read_text() == "user data"
    assert not (repo / "demo_network").exists()


def test_config_starts_with_the_marker_and_still_parses(demo_onnx, tmp_path):
    from higherhrnet_trt.serving.repository import OWN_MARKER

    repo = tmp_path / "r"
    write_repository(str(demo_onnx), str(repo))
    for folder in ("demo", "demo_network"):
        text = (repo / folder / "config.pbtxt").read_text()
        assert text.splitlines()[0] == OWN_MARKER
        assert parse(repo / folder / "config.pbtxt").name == folder
    assert sorted(p.name for p in repo.iterdir()) == ["demo", "demo_network"]  # no staging left


def test_a_failed_forced_write_leaves_the_old_repository(demo_onnx, tmp_path, monkeypatch):
    from higherhrnet_trt.serving import repository

    repo = tmp_path / "r"
    write_repository(str(demo_onnx), str(repo), max_batch=4)
    before = (repo / "demo" / "config.pbtxt").read_text()

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(repository, "write_pipeline_model", full_disk)
    with pytest.raises(OSError):
        write_repository(str(demo_onnx), str(repo), max_batch=2, force=True)
    assert (repo / "demo" / "config.pbtxt").read_text() == before
    assert (repo / "demo_network" / "1" / "model.onnx").read_bytes() == demo_onnx.read_bytes()
    assert sorted(p.name for p in repo.iterdir()) == ["demo", "demo_network"]


@pytest.mark.parametrize("argv, needle", [
    (["--queue-delay-us", "-1"], "from 0 to 1000000"),
    (["--queue-delay-us", "1e9"], "from 0 to 1000000"),
    (["--name", ""], "empty"),
    (["--name", "a/b"], "letters, digits"),
])
def test_bad_served_model_options_are_one_line(demo_onnx, tmp_path, capsys, argv, needle):
    repo = tmp_path / "r"
    with pytest.raises(SystemExit) as exit_:
        code = main(["triton-repo", str(demo_onnx), "-o", str(repo), *argv])
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert exit_.value.code in (1, 2) and needle in err, err
    assert "Traceback" not in err and not repo.exists()


def test_output_that_is_a_file_is_one_line(demo_onnx, tmp_path, capsys):
    out = tmp_path / "r"
    out.write_text("not a folder")
    assert main(["triton-repo", str(demo_onnx), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "is a file" in err
    assert out.read_text() == "not a folder"
