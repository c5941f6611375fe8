"""Checkpoint loading: every accepted layout loads; every wrong file fails with one clear line."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from higherhrnet_trt.core.errors import CheckpointError  # noqa: E402
from higherhrnet_trt.export.checkpoint import load_checkpoint, read_state_dict  # noqa: E402
from higherhrnet_trt.export.model import build_model  # noqa: E402


def manifest_checkpoint(reference_dir, name: str, path) -> str:
    """A checkpoint file with the official keys and shapes of a manifest.

    Values are one scalar broadcast to each shape (zero strides), so a W48 file costs bytes, not
    255 MB, yet torch.load gives tensors of the official shapes.
    """
    manifest = json.loads((reference_dir / name).read_text())
    sd = {}
    for key, shape in manifest["state_dict"]:
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(0)
        else:
            sd[key] = torch.full((1,), 0.5).expand(shape) if shape else torch.tensor(0.5)
    torch.save(sd, path)
    return str(path)


def test_official_w32_layout_loads_strict(reference_dir, tmp_path):
    path = manifest_checkpoint(reference_dir, "state_dict_w32_512.json", tmp_path / "w32.pth")
    info = load_checkpoint(build_model("w32_512"), path)
    assert info["width"] == 32 and info["num_joints"] == 17
    assert "w32_512" in info["matching_configs"]


def test_w48_checkpoint_into_w32_names_the_config(reference_dir, tmp_path):
    path = manifest_checkpoint(reference_dir, "state_dict_w48_640.json", tmp_path / "w48.pth")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(build_model("w32_512"), path)
    msg = str(e.value)
    assert "W48" in msg and "W32" in msg and "--config w48_640" in msg
    assert "\n" not in msg


def test_crowdpose_checkpoint_into_coco_config(reference_dir, tmp_path):
    path = manifest_checkpoint(reference_dir, "state_dict_crowdpose_w32_512.json", tmp_path / "cp.pth")
    with pytest.raises(CheckpointError, match=r"CrowdPose checkpoint \(14 joints\).*crowdpose_w32_512"):
        load_checkpoint(build_model("w32_512"), path)


def test_coco_checkpoint_into_crowdpose_config(reference_dir, tmp_path):
    path = manifest_checkpoint(reference_dir, "state_dict_w32_512.json", tmp_path / "coco.pth")
    with pytest.raises(CheckpointError, match=r"COCO checkpoint \(17 joints\)"):
        load_checkpoint(build_model("crowdpose_w32_512"), path)


def _tiny_sd(tiny_model):
    return {k: v.clone() for k, v in tiny_model.state_dict().items()}


@pytest.mark.parametrize("layout", ["plain", "state_dict+module", "fp16_wrapped", "mmpose", "pth_tar"])
def test_accepted_layouts(layout, tiny_model, tmp_path):
    sd = _tiny_sd(tiny_model)
    if layout == "state_dict+module":
        obj = {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 140}
    elif layout == "fp16_wrapped":
        # FP16 training saves Sequential(tofp16(), model, tofp32()): '1.' prefix, half floats.
        obj = {"1." + k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
    elif layout == "mmpose":
        head = ("final_layers", "deconv_layers")
        obj = {"state_dict": {("keypoint_head." if k.startswith(head) else "backbone.") + k: v
                              for k, v in sd.items()}, "meta": {"epoch": 300}}
    elif layout == "pth_tar":
        obj = {"epoch": 1, "model": "pose_higher_hrnet", "state_dict": sd, "best_state_dict": sd,
               "perf": 0.67}
    else:
        obj = sd
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    model = build_model("tiny")
    load_checkpoint(model, str(path))
    for k, v in model.state_dict().items():
        expected = sd[k].half().float() if layout == "fp16_wrapped" and v.is_floating_point() else sd[k]
        assert torch.equal(v, expected), k
        assert v.dtype == sd[k].dtype


def test_truncated_file(tiny_model, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(tiny_model.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_state_dict(str(path))


def test_text_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_state_dict(str(path))


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(str(tmp_path / "nope.pth"))
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(str(tmp_path / "empty.pth"))


class CustomObject:
    """Stands for anything a training script may pickle beside the weights."""


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": CustomObject()}, path)
    with pytest.raises(CheckpointError, match="Python objects besides tensors"):
        read_state_dict(str(path))


def test_tensorless_dict(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        read_state_dict(str(path))
