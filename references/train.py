"""A minimal HigherHRNet trainer, for the demo model on generated scenes (training is not the product).

Official HigherHRNet checkpoints stay the real input of this toolkit. This module exists because
none can be downloaded on the project's machines: a narrow network trained for an hour on the CPU on
``benchmarks.scenes`` images gives an honest end-to-end AP for CI, a calibration set and a demo with
real skeletons. It follows the official recipe (Cheng et al., CVPR 2020; HRNet/HigherHRNet-Human-
Pose-Estimation), kept small:

- targets: gaussian heatmaps (sigma 2, peak at the integer part of the joint's output coordinate)
  at stride 4 and stride 2, a mask of the pixels that come from the image (the warp's border is
  left out of the loss, as officially), and per-person joint indices for associative embedding;
- losses: heatmap MSE under the mask at both resolutions (factor 1), associative-embedding pull and
  push ("exp" push) on the stride-4 tag maps only (factors 1e-3 each);
- Adam, linear warm-up then cosine decay over a step or wall-time budget;
- augmentation: random scale (0.75..1.5), rotation (+-30 deg), translation and horizontal flip with
  the joints' flip index.

Coordinates: annotations have the corner origin of COCO (pixel i spans [i, i + 1)). Like the official
code, one 2x3 matrix maps both the image (through cv2.warpAffine) and the joints, so the relation
between pixels and labels is the one the test-time pipeline uses.

CLI::

    python references/train.py --train DIR/person_keypoints.json \\
        --val VAL/person_keypoints.json --out /tmp/demo_train --minutes 70 \\
        --save export/assets/demo_w16_256.pth
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace

import numpy as np
import torch

from higherhrnet_trt.core.errors import CheckpointError
from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.export import CONFIGS, HigherHRNet, ModelConfig, export_onnx, load_checkpoint
from higherhrnet_trt.runtime import evaluate_model

# Siblings, imported as torchvision's references/ do: this script's folder is sys.path[0].
from train_data import (  # noqa: F401 (tests use them here)
    SceneDataset,
    _network_input,
    joint_indices,
    render_heatmaps,
    split_repeat,
)
from train_loss import ae_loss, compute_loss, heatmap_loss  # noqa: F401
from train_options import TrainOptions

F = lazy_import("torch.nn.functional")
cv2 = lazy_import("cv2")
nn = lazy_import("torch.nn")

#: The demo network (``configs.CONFIGS['demo']``).
DEMO_CONFIG = CONFIGS["demo"]




# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def lr_at(step: int, progress: float, opt: TrainOptions) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 as ``progress`` goes 0 -> 1."""
    warm = min(1.0, (step + 1) / max(opt.warmup_steps, 1))
    return opt.lr * warm * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def fg_weight_at(progress: float, opt: TrainOptions) -> float:
    """``opt.fg_weight``, falling linearly to 0 at ``progress == opt.fg_until`` (constant if 0)."""
    if opt.fg_until <= 0:
        return opt.fg_weight
    return opt.fg_weight * max(0.0, 1.0 - progress / opt.fg_until)


def train_step(model: HigherHRNet, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
               opt: TrainOptions) -> tuple[float, dict[str, float]]:
    """One optimisation step on a batch; returns the loss and its parts."""
    model.train()
    # channels_last: oneDNN's faster convolution layout on CPU (~15% a step for the demo network).
    outputs = model(batch["image"].contiguous(memory_format=torch.channels_last))
    loss, parts = compute_loss(outputs, batch, model.cfg.num_joints, opt)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), parts


def init_weights(model: torch.nn.Module, scheme: str = "official") -> None:
    """``scheme="kaiming"`` keeps PyTorch's default (Kaiming-uniform) convolutions and only resets BN,
    except the final 1x1 layers, which start at N(0, 0.001) with zero bias: the maps start near 0
    (a loss at the all-zero baseline) instead of at values of order 1 (a first loss ~70x larger that
    the first few hundred steps only undo), while the body keeps Kaiming's signal scale.

    ``"official"``: the official initialisation (no ImageNet pre-training here): conv and deconv weights
    N(0, 0.001), biases 0, BN scale 1 and shift 0. BN keeps the features' scale, and the final
    layers then start near 0, so the first heatmap losses are small rather than huge."""
    finals = {id(m) for m in getattr(model, "final_layers", [])}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and (scheme == "official" or id(m) in finals):
            nn.init.normal_(m.weight, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def half_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Plain state dict with floating tensors in fp16 (integer BN counters unchanged).

    ``export.checkpoint`` casts fp16 back to fp32 on load; ``load_state_dict`` does too.
    """
    return {k: (v.half() if v.is_floating_point() else v).clone() for k, v in model.state_dict().items()}


def evaluate(model: HigherHRNet, ann_file: str, images_dir: str | None, work_dir: str,
             max_images: int | None = None) -> dict[str, float]:
    """AP of ``model`` (fp32) through the product chain: ONNX export (flip test in the graph,
    dynamic size) -> ONNX Runtime -> runtime decode -> COCO OKS AP with pycocotools.

    Returns the COCO stats (AP, AP50, ..., ARL) as a dict.
    """
    images_dir = images_dir or os.path.join(os.path.dirname(os.path.abspath(ann_file)), "images")
    os.makedirs(work_dir, exist_ok=True)
    onnx_path = os.path.join(work_dir, f"{model.cfg.name}_fp32_dynamic.onnx")
    model.eval()
    export_onnx(model, onnx_path, input_size=model.cfg.input_size, dynamic=True, flip=True)
    keypoint_set(model.cfg.dataset)
    result = evaluate_model(onnx_path, ann_file, images_dir, max_images=max_images, threads=1)
    return dict(result.stats)


def diagnose(model: HigherHRNet, ann_file: str, images_dir: str | None = None, max_images: int = 20,
             threshold: float = 0.1, radius: int = 3) -> dict[str, float]:
    """Cheap training-progress numbers (seconds, where AP takes minutes): does the network find the
    joints, how many false peaks does it make, and do its tags separate people?

    Per image: the whole image at the network's input scale (no flip), heatmaps averaged at
    stride 2 as the runtime aggregates them, peaks = 5x5 local maxima above ``threshold`` (the
    official detection threshold). Returns
    ``recall``: share of labelled joints with a peak of their type within ``radius`` stride-2 pixels;
    ``false_peaks_per_image``: peaks near no labelled joint of their type;
    ``tag_std_within``: mean over people of the std of their joints' tags (stride-4 tag maps);
    ``tag_distance_between``: mean |difference| of the people's mean tags, over pairs in an image;
    ``pairs_within_tag_threshold``: share of those pairs whose mean tags differ by less than 1.
    The official parser joins a joint to a person when tags differ by less than 1: grouping works
    when the spread within a person is well below that and few pairs of people are within it.
    """
    images_dir = images_dir or os.path.join(os.path.dirname(os.path.abspath(ann_file)), "images")
    with open(ann_file, encoding="utf-8") as f:
        data = json.load(f)
    people = defaultdict(list)
    for a in data["annotations"]:
        people[a["image_id"]].append(np.asarray(a["keypoints"], np.float32).reshape(-1, 3))
    j = model.cfg.num_joints
    found = labelled = false_peaks = 0
    within: list[float] = []
    between: list[float] = []
    pair_distances: list[np.ndarray] = []
    records = sorted(data["images"], key=lambda r: r["id"])[:max_images]
    model.eval()
    for rec in records:
        path = os.path.join(images_dir, rec["file_name"])
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"cannot read {path}: regenerate the scenes (benchmarks.scenes) or fix --val")
        with torch.no_grad():
            out4, out2 = model(_network_input(bgr)[None])
        heat = (F.interpolate(out4[:, :j], size=out2.shape[2:], mode="bilinear", align_corners=False)
                + out2[:, :j]) / 2
        peaks = ((heat == F.max_pool2d(heat, 5, 1, 2)) & (heat > threshold))[0].numpy()
        tags = out4[0, j:2 * j].numpy()
        near = np.zeros_like(peaks)
        means = []
        for person in people.get(rec["id"], []):
            person_tags = []
            for k, (x, y, v) in enumerate(person):
                if v <= 0:
                    continue
                labelled += 1
                cx, cy = int(x / 2), int(y / 2)
                win = (k, slice(max(0, cy - radius), cy + radius + 1),
                       slice(max(0, cx - radius), cx + radius + 1))
                found += bool(peaks[win].any())
                near[win] = True
                ty, tx = min(int(y / 4), tags.shape[1] - 1), min(int(x / 4), tags.shape[2] - 1)
                person_tags.append(tags[k, ty, tx])
            if person_tags:
                means.append(float(np.mean(person_tags)))
                if len(person_tags) > 1:
                    within.append(float(np.std(person_tags)))
        false_peaks += int((peaks & ~near).sum())
        if len(means) > 1:
            m = np.asarray(means)
            pairs = np.abs(m[:, None] - m[None])[np.triu_indices(len(m), 1)]  # each pair once
            between.append(float(pairs.mean()))  # = the mean over ordered pairs (symmetric)
            pair_distances.append(pairs)
    return {"images": len(records), "recall": found / max(labelled, 1),
            "false_peaks_per_image": false_peaks / max(len(records), 1),
            "tag_std_within": float(np.mean(within)) if within else float("nan"),
            "tag_distance_between": float(np.mean(between)) if between else float("nan"),
            "pairs_within_tag_threshold": (float(np.mean(np.concatenate(pair_distances) < 1.0))
                                           if pair_distances else float("nan"))}


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _seed_worker(worker_id: int) -> None:
    # Forked workers inherit one copy of the dataset's generator: without this they would all
    # draw the same augmentation. info.seed differs per worker and per epoch (torch's seeded RNG).
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)


def _batches(dataset: SceneDataset, order: np.ndarray, batch_size: int, workers: int):
    """Full batches of ``dataset`` in ``order``: in this process, or from ``workers`` processes."""
    if workers <= 0:
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield _collate([dataset[int(i)] for i in order[start:start + batch_size]])
        return
    yield from torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=[int(i) for i in order], num_workers=workers,
        collate_fn=_collate, drop_last=True, worker_init_fn=_seed_worker,
        pin_memory=torch.cuda.is_available(), prefetch_factor=4)


def _start_or_resume(cfg: ModelConfig, opt: TrainOptions, ckpt_path: str | None, init: str,
                     init_from: str | None, device: str, log) -> tuple:
    """(model, optimizer, step, elapsed seconds, device) of a new run, or of the run saved at
    ``ckpt_path`` when that file exists (it takes precedence over ``init_from``)."""
    model = HigherHRNet(cfg)
    init_weights(model, init)
    if init_from:
        load_checkpoint(model, init_from)
        log(f"initialised from {init_from}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt.lr)
    step, elapsed0 = 0, 0.0
    if ckpt_path and os.path.isfile(ckpt_path):
        ck = torch.load(ckpt_path, weights_only=True, map_location=device)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        step, elapsed0 = int(ck["step"]), float(ck["elapsed"])
        log(f"resumed {ckpt_path} at step {step} ({elapsed0 / 60:.1f} min)")
    return model, optimizer, step, elapsed0, device


def train(
    train_ann: str | list[str],
    out_dir: str,
    cfg: ModelConfig = DEMO_CONFIG,
    options: TrainOptions | None = None,
    images_dir: str | None = None,
    minutes: float = 60.0,
    max_steps: int = 10**9,
    checkpoint_every_s: float = 300.0,
    resume: bool = True,
    seed: int = 0,
    init: str = "official",
    device: str = "cpu",
    workers: int = 0,
    init_from: str | None = None,
    log=print,
) -> tuple[HigherHRNet, dict]:
    """Train ``cfg`` on a COCO keypoint file until ``minutes`` of wall time or ``max_steps``.

    Checkpoints (model, optimizer, step, elapsed) go to ``out_dir/last.pth`` every
    ``checkpoint_every_s`` seconds and at the end; with ``resume`` an existing one is continued.
    Returns the model (eval mode, on the CPU) and a summary dict (steps, seconds, images seen, final
    losses).

    ``device``: "cpu", "cuda" or "auto" (CUDA when available). ``workers`` > 0 prepares batches in
    that many DataLoader processes (each with its own augmentation seed), which a GPU needs: one
    process makes ~150 crops/s.

    ``init_from``: start from these weights (a ``--save`` file or another run's ``last.pth``) with a
    fresh optimizer and schedule, e.g. a GPU run continuing a CPU run. A checkpoint in ``out_dir``
    (resume) takes precedence.
    """
    opt = options or TrainOptions(input_size=cfg.input_size)
    torch.manual_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "last.pth")
    model, optimizer, step, elapsed0, device = _start_or_resume(
        cfg, opt, ckpt_path if resume else None, init, init_from, device, log)
    dataset = SceneDataset(train_ann, images_dir, opt, augment=True, dataset=cfg.dataset, seed=seed + step)
    budget = minutes * 60.0
    t0 = time.perf_counter()
    last_ckpt = t0
    window: dict[str, list[float]] = defaultdict(list)
    history: list[dict] = []

    def save() -> None:
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "elapsed": elapsed0 + time.perf_counter() - t0}, tmp)
        os.replace(tmp, ckpt_path)  # never a half-written checkpoint

    order_rng = np.random.default_rng(seed + 7919 * step)
    done = False
    while not done:
        perm = order_rng.permutation(len(dataset))
        for batch in _batches(dataset, perm, opt.batch_size, workers):
            elapsed = elapsed0 + time.perf_counter() - t0
            if elapsed >= budget or step >= max_steps:
                done = True
                break
            progress = max(elapsed / budget, step / max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, progress, opt)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            step_opt = replace(opt, fg_weight=fg_weight_at(progress, opt)) if opt.fg_until > 0 else opt
            loss, parts = train_step(model, optimizer, batch, step_opt)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {step}")
            step += 1
            window["loss"].append(loss)
            for k, v in parts.items():
                window[k].append(v)
            if step % 25 == 0:
                means = {k: float(np.mean(v)) for k, v in window.items()}
                history.append({"step": step, "minutes": elapsed / 60, **means})
                log(f"step {step} {elapsed / 60:.1f} min lr {optimizer.param_groups[0]['lr']:.2e} "
                    f"fg {step_opt.fg_weight:.2f} "
                    + " ".join(f"{k} {v:.3e}" for k, v in means.items()))
                window.clear()
            if time.perf_counter() - last_ckpt >= checkpoint_every_s:
                save()
                last_ckpt = time.perf_counter()
    save()
    seconds = elapsed0 + time.perf_counter() - t0
    summary = {"steps": step, "seconds": seconds, "images_seen": step * opt.batch_size,
               "batch_size": opt.batch_size, "train_images": len(dataset),
               "final": history[-1] if history else {}}
    with open(os.path.join(out_dir, "history.json"), "w", encoding="utf-8") as f:
        json.dump({"summary": summary, "history": history}, f, indent=1)
    return model.cpu().eval(), summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python references/train.py",
                                 description="Train the demo HigherHRNet on generated scenes (CPU).")
    ap.add_argument("--train", required=True, nargs="+", metavar="JSON[@N]",
                    help="COCO keypoints JSON files (images in each one's images/ folder); FILE@N counts "
                         "that file's images N times (to balance sources). Image records may carry "
                         "'zoom' (input pixels per image pixel; default: the longer side fills the input); "
                         "iscrowd regions are left out of the loss")
    ap.add_argument("--val", help="held-out COCO keypoints JSON: AP measured at the end (fp32 ONNX)")
    ap.add_argument("--out", default="/tmp/demo_train", help="checkpoints, logs, ONNX for evaluation")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-time budget (sets the LR decay)")
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--fg-weight", type=float, default=0.0,
                    help="extra heatmap-loss weight on gaussian pixels (0: official MSE; see TrainOptions)")
    ap.add_argument("--fg-until", type=float, default=0.0,
                    help="fraction of the budget over which --fg-weight falls linearly to 0 (0: constant)")
    ap.add_argument("--ae-factor", type=float, default=1e-3,
                    help="weight of the associative-embedding push and pull losses (official 1e-3; raise it "
                         "with --fg-weight, which scales the heatmap loss up, to keep the tags learning)")
    ap.add_argument("--push-factor", type=float, help="weight of the push loss alone (default: --ae-factor)")
    ap.add_argument("--pull-factor", type=float, help="weight of the pull loss alone (default: --ae-factor)")
    ap.add_argument("--push-loss", choices=("exp", "max"), default="exp",
                    help="push between people: exp(-d^2) (official) or max(0, margin - |d|)")
    ap.add_argument("--push-margin", type=float, default=1.0,
                    help="with --push-loss max: tag distance between people below which they are pushed "
                         "(official 1; the decoder joins tags closer than 1)")
    ap.add_argument("--sigma", type=float, default=2.0,
                    help="gaussian sigma of the heatmap targets, output pixels")
    ap.add_argument("--rotation", type=float, default=30.0, help="augmentation: max rotation, degrees")
    ap.add_argument("--scale", type=float, nargs=2, default=(0.75, 1.5), metavar=("MIN", "MAX"),
                    help="augmentation: random zoom range")
    ap.add_argument("--crop", type=int, help="train on random CROP x CROP windows (default: whole image)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (leave cores to others)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                    help="where to train (auto: CUDA when available); weights are saved for the CPU")
    ap.add_argument("--workers", type=int, default=0,
                    help="DataLoader processes preparing batches (0: in this process; ~8 on a GPU machine)")
    ap.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--save", help="write the fp16 state dict here at the end")
    ap.add_argument("--eval-only", action="store_true", help="evaluate out/last.pth on --val, no training")
    ap.add_argument("--diagnose", type=int, metavar="N",
                    help="instead of AP, print joint recall, false peaks and tag separation on the first N "
                         "--val scenes (seconds; see diagnose())")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=("official", "kaiming"), default="official",
                    help="weight initialisation of a fresh run (see init_weights)")
    ap.add_argument("--init-from", metavar="PTH",
                    help="start from these weights (--save file or a run's last.pth), new optimizer and "
                         "schedule; ignored when --out already holds last.pth (that run resumes)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.init_from and not os.path.isfile(args.init_from):
        ap.error(f"--init-from: no such file {args.init_from}")
    if args.diagnose and not args.val:
        ap.error("--diagnose measures on the --val scenes: pass --val VAL/person_keypoints.json")
    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, flush=True)

    opt = TrainOptions(input_size=DEMO_CONFIG.input_size, crop_size=args.crop, batch_size=args.batch,
                       lr=args.lr, fg_weight=args.fg_weight, fg_until=args.fg_until,
                       push_factor=args.ae_factor if args.push_factor is None else args.push_factor,
                       pull_factor=args.ae_factor if args.pull_factor is None else args.pull_factor,
                       push_loss=args.push_loss, push_margin=args.push_margin, sigma=args.sigma,
                       max_rotation=args.rotation,
                       scale_range=tuple(args.scale))
    if args.eval_only:
        last = os.path.join(args.out, "last.pth")
        if not os.path.isfile(last):
            ap.error(f"--eval-only: no checkpoint {last}; point --out at a training run's folder")
        model = HigherHRNet(DEMO_CONFIG)
        model.load_state_dict(torch.load(last, weights_only=True, map_location="cpu")["model"])
        model.eval()
    else:
        log(f"config: {DEMO_CONFIG.to_json()}")
        if args.init_from:  # a wrong checkpoint is a one-line usage error before any work

            try:
                load_checkpoint(HigherHRNet(DEMO_CONFIG), args.init_from)
            except CheckpointError as e:
                cause = str(e).split(" [keys:")[0].split(": use --config")[0]
                ap.error(f"--init-from: {cause}; this trainer trains the demo config: pass demo-config "
                         "weights (a --save file or a run's last.pth)")
        model, summary = train(args.train, args.out, DEMO_CONFIG, opt, minutes=args.minutes,
                               max_steps=args.max_steps, checkpoint_every_s=args.checkpoint_every,
                               seed=args.seed, init=args.init, device=args.device, workers=args.workers,
                               init_from=args.init_from, log=log)
        log(f"trained {summary['steps']} steps ({summary['images_seen']} images) in "
            f"{summary['seconds'] / 60:.1f} min; last losses {summary['final']}")
    if args.save:
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        torch.save(half_state_dict(model), args.save)
        log(f"wrote {args.save} ({os.path.getsize(args.save) / 1e6:.2f} MB, fp16)")
    if args.val and args.diagnose:
        d = diagnose(model, args.val, max_images=args.diagnose)
        log(f"{d['images']} scenes: joints found {d['recall']:.1%}, false peaks per image "
            f"{d['false_peaks_per_image']:.1f}, tag std within a person {d['tag_std_within']:.3f}, "
            f"tag distance between people {d['tag_distance_between']:.3f}, pairs of people within the tag "
            f"threshold {d['pairs_within_tag_threshold']:.1%}")
    elif args.val:
        t = time.perf_counter()
        stats = evaluate(model, args.val, None, args.out)
        log(f"fp32 AP on {args.val}: " + " ".join(f"{k} {v:.4f}" for k, v in stats.items())
            + f" ({time.perf_counter() - t:.0f}s)")
        with open(os.path.join(args.out, "eval.json"), "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
