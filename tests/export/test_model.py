"""The PyTorch HigherHRNet matches the official model: keys, shapes, parameter counts, outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from higherhrnet_trt.export.configs import config_from_json, get_config  # noqa: E402
from higherhrnet_trt.export.model import build_model  # noqa: E402

MANIFESTS = {
    "w32_512": "state_dict_w32_512.json",
    "w32_640": "state_dict_w32_512.json",  # same keys and shapes as W32-512 (reference README)
    "w48_640": "state_dict_w48_640.json",
    "w48_512": "state_dict_w48_640.json",  # MMPose's W48 at 512: the official W48 architecture
    "crowdpose_w32_512": "state_dict_crowdpose_w32_512.json",
}


@pytest.mark.parametrize("config", list(MANIFESTS))
def test_state_dict_equals_official_manifest(config, reference_dir):
    manifest = json.loads((reference_dir / MANIFESTS[config]).read_text())
    model = build_model(config)
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert ours == manifest["state_dict"]  # same keys, same order, same shapes
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]


@pytest.mark.parametrize("config", ["w32_512", "crowdpose_w32_512"])
def test_output_shapes_follow_manifest(config, reference_dir):
    manifest = json.loads((reference_dir / MANIFESTS[config]).read_text())
    model = build_model(config)
    s = manifest["input_size"] // 4  # a quarter-size input keeps the test fast
    with torch.no_grad():
        out = model(torch.zeros(1, 3, s, s))
    expected = [[1, c, h // 4, w // 4] for _, c, h, w in manifest["outputs"]]
    assert [list(o.shape) for o in out] == expected


def test_tiny_network_reproduces_official_outputs(tiny_model, reference_dir):
    io = np.load(reference_dir / "tiny_official_io.npz")
    with torch.no_grad():
        out0, out1 = tiny_model(torch.from_numpy(io["input"]))
    assert np.abs(out0.numpy() - io["output0"]).max() < 1e-4
    assert np.abs(out1.numpy() - io["output1"]).max() < 1e-4


def test_tiny_config_matches_reference_arch(reference_dir):
    arch = json.loads((reference_dir / "tiny_official_arch.json").read_text())
    cfg = get_config("tiny")
    for stage in ("stage2", "stage3", "stage4"):
        ours = getattr(cfg, stage)
        assert ours.num_modules == arch[stage]["num_modules"]
        assert list(ours.num_channels) == arch[stage]["num_channels"]
        assert list(ours.num_blocks) == arch[stage]["num_blocks"]
    assert list(cfg.deconv_channels) == arch["deconv"]["num_channels"]
    assert cfg.deconv_num_basic_blocks == arch["deconv"]["num_basic_blocks"]


def test_config_json_round_trip():
    cfg = get_config("w48_640")
    assert config_from_json(cfg.to_json()) == cfg
