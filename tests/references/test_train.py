"""references/train.py: targets, losses and steps of the demo-model trainer (CPU, tiny network)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks.scenes import generate_dataset  # noqa: E402
from higherhrnet_trt.export.configs import get_config  # noqa: E402
from higherhrnet_trt.export.model import HigherHRNet  # noqa: E402

import train as T  # noqa: E402  (references/, on sys.path through conftest.py)


@pytest.fixture(autouse=True)
def _one_thread():
    # The test machines are shared: one thread, restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("train_scenes")
    return generate_dataset(str(out), 2, seed=7, size=(128, 128), people=(2, 3), height_range=(0.5, 0.9))


def _batch(ann: str, augment: bool, seed: int = 0, **opt) -> tuple[T.SceneDataset, dict]:
    ds = T.SceneDataset(ann, options=T.TrainOptions(input_size=128, **opt), augment=augment, seed=seed)
    return ds, T._collate([ds[0], ds[1]])


def test_heatmap_target_official_placement():
    joints = np.array([[[10.7, 5.2, 2], [3.0, 3.0, 0], [40.0, 1.0, 1]]], np.float32)  # (P=1, J=3, 3)
    hm = T.render_heatmaps(joints, res=32, sigma=2.0)
    assert hm.shape == (3, 32, 32)
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (5, 10)  # peak at the integer part
    assert hm[0, 5, 10] == 1.0 and math.isclose(hm[0, 5, 12], math.exp(-4 / 8), rel_tol=1e-6)
    assert hm[1].max() == 0  # v = 0
    assert hm[2].max() == 0  # outside the map


def test_joint_indices_flat_index():
    joints = np.array([[[1.5, 2.5, 2], [0, 0, 0], [3.9, 0.2, 1]],
                       [[5.0, 6.0, 1], [100, 1, 2], [0.1, 0.1, 2]]], np.float32)
    idx = T.joint_indices(joints, res=8, max_people=4)
    assert idx.shape == (4, 3, 2)
    # Person 0: joint 0 at (1, 2), joint 2 at (3, 0); packed from slot 0 as officially.
    assert idx[0, 0].tolist() == [0 * 64 + 2 * 8 + 1, 1]
    assert idx[0, 1].tolist() == [2 * 64 + 0 * 8 + 3, 1]
    assert idx[0, 2].tolist() == [0, 0]
    assert idx[1, :, 1].tolist() == [1, 1, 0]  # joint 1 lies outside the map
    assert idx[2:].sum() == 0


def _ae_loss_loop(tags: torch.Tensor, joints: torch.Tensor, loss_type: str = "exp", margin: float = 1.0):
    """The official per-image, per-person loop (AELoss.singleTagLoss: 'exp', or 'max' whose margin
    is 1 officially), restated plainly."""
    pushes, pulls = [], []
    for b in range(tags.shape[0]):
        flat = tags[b].reshape(-1)
        means, pull = [], 0.0
        for person in joints[b]:
            vals = [flat[int(i)] for i, v in person if v > 0]
            if not vals:
                continue
            vals = torch.stack(vals)
            means.append(vals.mean())
            pull = pull + ((vals - means[-1]) ** 2).mean()
        n = len(means)
        if n == 0:
            pushes.append(torch.tensor(0.0)), pulls.append(torch.tensor(0.0))
            continue
        m = torch.stack(means)
        d = m[:, None] - m[None]
        if loss_type == "exp":
            push = torch.exp(-(d ** 2)).sum() - n
        else:
            push = torch.clamp(margin - d.abs(), min=0).sum() - n * margin
        pushes.append(push / ((n - 1) * n) * 0.5 if n > 1 else torch.tensor(0.0))
        pulls.append(pull / n)
    return torch.stack(pushes), torch.stack(pulls)


def test_ae_loss_matches_official_loop():
    gen = torch.Generator().manual_seed(0)
    tags = torch.randn(3, 4, 8, 8, generator=gen)
    joints = torch.zeros(3, 5, 4, 2, dtype=torch.int64)
    rng = np.random.default_rng(0)
    for b, people in enumerate((3, 1, 0)):  # several people, one person, nobody
        for p in range(people):
            for slot in range(rng.integers(1, 5)):
                joints[b, p, slot] = torch.tensor([rng.integers(0, 4 * 64), 1])
    push, pull = T.ae_loss(tags, joints)
    ref_push, ref_pull = _ae_loss_loop(tags, joints)
    torch.testing.assert_close(push, ref_push.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pull, ref_pull.float(), rtol=1e-5, atol=1e-6)
    assert push[1] == 0 and push[2] == 0 and pull[2] == 0


@pytest.mark.parametrize("margin", [1.0, 2.5])
def test_max_push_loss_matches_official_loop(margin):
    gen = torch.Generator().manual_seed(1)
    tags = torch.randn(2, 4, 8, 8, generator=gen)
    joints = torch.zeros(2, 4, 4, 2, dtype=torch.int64)
    rng = np.random.default_rng(1)
    for b, people in enumerate((4, 2)):
        for p in range(people):
            for slot in range(rng.integers(1, 5)):
                joints[b, p, slot] = torch.tensor([rng.integers(0, 4 * 64), 1])
    push, pull = T.ae_loss(tags, joints, "max", margin)
    ref_push, ref_pull = _ae_loss_loop(tags, joints, "max", margin)
    torch.testing.assert_close(push, ref_push.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pull, ref_pull.float(), rtol=1e-5, atol=1e-6)
    # Hand-computed: two people with mean tags 0 and 0.5 and margin 2 push with (2 - 0.5) / 2.
    two = torch.zeros(1, 1, 2, 2)
    two[0, 0, 1, 1] = 0.5
    idx = torch.tensor([[[[0, 1]], [[3, 1]]]])
    assert T.ae_loss(two, idx, "max", 2.0)[0].item() == pytest.approx(0.75)


def test_dataset_item_shapes_and_mask(tiny_data):
    ds, batch = _batch(tiny_data, augment=True, seed=1)
    assert batch["image"].shape == (2, 3, 128, 128)
    assert batch["heatmaps_4"].shape == (2, 17, 32, 32) and batch["heatmaps_2"].shape == (2, 17, 64, 64)
    assert batch["mask_4"].shape == (2, 32, 32) and batch["joints"].shape == (2, 30, 17, 2)
    assert batch["heatmaps_2"].max() == 1.0
    assert (batch["joints"][..., 1] > 0).sum() > 0
    # Without augmentation a 128 image fills the 128 input: every pixel counts in the loss.
    _, plain = _batch(tiny_data, augment=False)
    assert plain["mask_2"].min() == 1.0


def test_crops_keep_the_pixel_scale(tiny_data):
    """crop_size: a window of the scaled image, targets at the crop's strides."""
    fixed = dict(scale_range=(1.0, 1.0), max_rotation=0.0, max_translate=0.0, flip=0.0)
    _, full = _batch(tiny_data, augment=True, **fixed)
    _, crop = _batch(tiny_data, augment=True, crop_size=64, **fixed)
    assert crop["image"].shape == (2, 3, 64, 64) and crop["heatmaps_2"].shape == (2, 17, 32, 32)
    assert crop["heatmaps_4"].shape == (2, 17, 16, 16) and crop["mask_4"].shape == (2, 16, 16)
    # The crop is a pixel-for-pixel window of the full input (no rescaling): find it there.
    img, win = full["image"][0], crop["image"][0]
    found = any(torch.equal(img[:, y:y + 64, x:x + 64], win) for y in range(65) for x in range(65))
    assert found


def test_flip_mirrors_image_and_targets(tiny_data):
    """Flip only (no scale / rotation / shift): the image is mirrored and each joint's heatmap is
    the mirrored heatmap of its flip partner (corner-origin x -> w - x)."""
    fixed = dict(scale_range=(1.0, 1.0), max_rotation=0.0, max_translate=0.0)
    _, plain = _batch(tiny_data, augment=True, flip=0.0, **fixed)
    _, flipped = _batch(tiny_data, augment=True, flip=1.0, **fixed)
    torch.testing.assert_close(flipped["image"], torch.flip(plain["image"], [3]))
    flip_index = list(T.keypoint_set("coco").flip_index)
    expect = torch.flip(plain["heatmaps_2"], [3])[:, flip_index]
    # Equal up to joints whose scaled x is an exact integer (the peak then moves by one pixel).
    close = (expect - flipped["heatmaps_2"]).abs().amax(dim=(2, 3)) < 1e-6
    assert close.float().mean() > 0.9


def test_one_step_and_loss_decreases_on_fixed_batch(tiny_data):
    torch.manual_seed(0)
    cfg = get_config("tiny")
    model = HigherHRNet(cfg)
    T.init_weights(model)
    opt = T.TrainOptions(input_size=128, lr=2e-3, warmup_steps=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr)
    _, batch = _batch(tiny_data, augment=False)
    losses = []
    for _ in range(6):
        loss, parts = T.train_step(model, optimizer, batch, opt)
        assert math.isfinite(loss) and all(math.isfinite(v) for v in parts.values())
        losses.append(loss)
    assert losses[-1] < losses[0]


def test_demo_config_fits_and_half_weights_load(tmp_path):
    from higherhrnet_trt.export.checkpoint import load_checkpoint

    model = HigherHRNet(T.DEMO_CONFIG)
    n = sum(p.numel() for p in model.parameters())
    assert 2 * n <= 10e6, "fp16 demo weights must stay under 10 MB"
    sd = T.half_state_dict(model)
    assert all(v.dtype == torch.float16 for k, v in sd.items() if v.is_floating_point())
    path = tmp_path / "demo.pth"
    torch.save(sd, path)
    fresh = HigherHRNet(T.DEMO_CONFIG)
    load_checkpoint(fresh, str(path))
    torch.testing.assert_close(fresh.final_layers[0].weight, model.final_layers[0].weight.half().float())


def test_lr_schedule():
    opt = T.TrainOptions(lr=1e-3, warmup_steps=10)
    assert T.lr_at(0, 0.0, opt) == pytest.approx(1e-4)
    assert T.lr_at(100, 0.0, opt) == pytest.approx(1e-3)
    assert T.lr_at(100, 0.5, opt) == pytest.approx(5e-4)
    assert T.lr_at(100, 1.0, opt) == pytest.approx(0.0, abs=1e-12)


def test_foreground_weight_scales_the_error_at_peaks_only():
    gt = torch.zeros(1, 1, 8, 8)
    gt[0, 0, 4, 4] = 1.0
    mask = torch.ones(1, 8, 8)
    pred = torch.zeros(1, 1, 8, 8)
    plain = T.heatmap_loss(pred, gt, mask).item()
    assert plain == pytest.approx(1 / 64)
    assert T.heatmap_loss(pred, gt, mask, fg_weight=10).item() == pytest.approx(11 / 64)
    # Background errors weigh the same with or without it.
    off = torch.zeros(1, 1, 8, 8)
    off[0, 0, 0, 0] = 0.5
    background = T.heatmap_loss(off, torch.zeros_like(gt), mask, fg_weight=10).item()
    assert background == pytest.approx(0.25 / 64)


def test_kaiming_init_starts_the_maps_near_zero():
    torch.manual_seed(0)
    model = HigherHRNet(get_config("tiny"))
    T.init_weights(model, "kaiming")
    for layer in model.final_layers:
        assert float(layer.weight.std()) < 0.002 and float(layer.bias.abs().max()) == 0.0
    # The body keeps PyTorch's default (Kaiming-uniform) scale.
    assert float(model.conv1.weight.std()) > 0.01
    with torch.no_grad():
        out4, out2 = model.eval()(torch.randn(1, 3, 128, 128))
    assert float(out2.abs().max()) < 0.1


def test_foreground_weight_decays_to_the_official_loss():
    opt = T.TrainOptions(fg_weight=10.0, fg_until=0.6)
    assert T.fg_weight_at(0.0, opt) == pytest.approx(10.0)
    assert T.fg_weight_at(0.3, opt) == pytest.approx(5.0)
    assert T.fg_weight_at(0.6, opt) == 0.0 and T.fg_weight_at(0.9, opt) == 0.0
    assert T.fg_weight_at(0.9, T.TrainOptions(fg_weight=10.0)) == 10.0  # fg_until 0: constant


def test_worker_batches_draw_their_own_augmentation(tiny_data):
    ds = T.SceneDataset(tiny_data, options=T.TrainOptions(input_size=128), augment=True, seed=0)
    # The same image in both batches: two workers, so any difference is the augmentation's.
    order = np.array([0, 0])
    batches = list(T._batches(ds, order, batch_size=1, workers=2))
    assert len(batches) == 2
    assert not torch.equal(batches[0]["image"], batches[1]["image"])
    assert list(T._batches(ds, np.array([0, 1, 0]), batch_size=2, workers=0))[0]["image"].shape[0] == 2


def test_train_runs_checkpoints_and_resumes(tiny_data, tmp_path):
    cfg = get_config("tiny")
    opt = T.TrainOptions(input_size=128, batch_size=2, warmup_steps=1)
    model, summary = T.train(tiny_data, str(tmp_path), cfg, opt, max_steps=1, device="auto", workers=1,
                             log=lambda *_: None)
    assert summary["steps"] == 1 and (tmp_path / "last.pth").is_file()
    assert next(model.parameters()).device.type == "cpu" and not model.training
    logs = []
    _, summary = T.train(tiny_data, str(tmp_path), cfg, opt, max_steps=2, log=logs.append)
    assert summary["steps"] == 2 and "resumed" in logs[0]


def test_init_from_starts_a_fresh_run_from_other_weights(tiny_data, tmp_path):
    """--init-from: another run's last.pth (or an fp16 --save file) seeds the weights; the new run
    counts its own steps from 0."""
    cfg = get_config("tiny")
    opt = T.TrainOptions(input_size=128, batch_size=2, warmup_steps=1)
    first, _ = T.train(tiny_data, str(tmp_path / "a"), cfg, opt, max_steps=1, log=lambda *_: None)
    half = tmp_path / "a.pth"
    torch.save(T.half_state_dict(first), half)
    for source in (tmp_path / "a" / "last.pth", half):
        logs = []
        _, summary = T.train(tiny_data, str(tmp_path / f"b_{source.name}"), cfg, opt, max_steps=0,
                             init_from=str(source), log=logs.append)
        assert summary["steps"] == 0 and any("initialised from" in line for line in logs)
    model, _ = T.train(tiny_data, str(tmp_path / "c"), cfg, opt, max_steps=0, init_from=str(half),
                       log=lambda *_: None)
    for k, v in first.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(model.state_dict()[k], v.half().float())


def test_diagnose_reports_recall_false_peaks_and_tags(tiny_data):
    torch.manual_seed(0)
    model = HigherHRNet(get_config("tiny"))
    T.init_weights(model, "kaiming")
    d = T.diagnose(model, tiny_data, max_images=2)
    assert d["images"] == 2 and 0.0 <= d["recall"] <= 1.0 and d["false_peaks_per_image"] >= 0
    assert d["tag_std_within"] >= 0 and d["tag_distance_between"] >= 0  # 2-3 people an image
    assert 0.0 <= d["pairs_within_tag_threshold"] <= 1.0
    # A threshold above every value finds nothing.
    none = T.diagnose(model, tiny_data, max_images=2, threshold=1e9)
    assert none["recall"] == 0.0 and none["false_peaks_per_image"] == 0.0


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        T.main(["--train", "x.json", "--val", "v.json", "--out", str(tmp_path), "--eval-only",
                "--diagnose", "2"])
    assert e.value.code == 2 and "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        T.main(["--train", "x.json", "--out", str(tmp_path), "--diagnose", "2"])
    assert "pass --val" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        T.main(["--train", "x.json", "--out", str(tmp_path), "--init-from", str(tmp_path / "none.pth")])
    assert "--init-from: no such file" in capsys.readouterr().err


def test_cli_wrong_init_checkpoint_is_one_line(tmp_path, capsys):
    wrong = tmp_path / "tiny.pth"
    torch.save(HigherHRNet(get_config("tiny")).state_dict(), wrong)
    with pytest.raises(SystemExit) as e:
        T.main(["--train", "x.json", "--out", str(tmp_path / "o"), "--init-from", str(wrong)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--init-from:" in err and "[keys:" not in err


def _silver_file(tmp_path, name: str, zoom: float | None) -> str:
    """A 512x512 grey image with one person (left shoulder at x 200, y 120) and one crowd box
    (x 320..384, y 64..128), in COCO format."""
    import json

    import cv2

    folder = tmp_path / name
    (folder / "images").mkdir(parents=True)
    cv2.imwrite(str(folder / "images" / "a.png"), np.full((512, 512, 3), 128, np.uint8))
    kp = [0.0] * 51
    kp[5 * 3:5 * 3 + 3] = [200.0, 120.0, 2]
    rec = {"id": 7, "file_name": "a.png", "width": 512, "height": 512, **({"zoom": zoom} if zoom else {})}
    anns = [{"id": 1, "image_id": 7, "keypoints": kp, "num_keypoints": 1, "iscrowd": 0},
            {"id": 2, "image_id": 7, "keypoints": [0] * 51, "num_keypoints": 0, "iscrowd": 1,
             "bbox": [320, 64, 64, 64]}]
    path = folder / "person_keypoints.json"
    path.write_text(json.dumps({"images": [rec], "annotations": anns}))
    return str(path)


def test_dataset_zoom_ignore_regions_and_repeats(tmp_path):
    """An image record's zoom sets the input scale; crowd boxes are left out of the loss mask; FILE@N
    counts a file's images N times. Expected values worked out by hand for a 256 input."""
    whole = _silver_file(tmp_path, "whole", None)  # 512 -> 256: scale 0.5
    ds = T.SceneDataset([whole, whole + "@3"], options=T.TrainOptions(input_size=256), augment=False)
    assert len(ds) == 4
    item = ds[0]
    # Crowd box x 320..384, y 64..128 at scale 0.5 / stride 4 -> mask_4 columns 40..47, rows 8..15.
    mask = item["mask_4"].numpy()
    assert (mask[8:16, 40:48] == 0).all() and mask.sum() == 64 * 64 - 64
    # Left shoulder (200, 120) * 0.5 / 2 = (50, 30) on the stride-2 map.
    heat = item["heatmaps_2"][5].numpy()
    assert np.unravel_index(heat.argmax(), heat.shape) == (30, 50)
    # zoom 0.25 (a 128 px view of the 512 image, centred in the 256 input: offset 64).
    zoomed = T.SceneDataset(_silver_file(tmp_path, "zoomed", 0.25), options=T.TrainOptions(input_size=256),
                            augment=False)[0]
    heat = zoomed["heatmaps_2"][5].numpy()
    assert np.unravel_index(heat.argmax(), heat.shape) == ((64 + 30) // 2, (64 + 50) // 2)
    assert T.split_repeat("a.json@3") == ("a.json", 3) and T.split_repeat("a@b.json") == ("a@b.json", 1)
