"""The HigherHRNet training losses (focal-free MSE heatmap loss with foreground weight, associative
embedding pull / push), for references/train.py."""

from __future__ import annotations

import torch

from train_options import TrainOptions

# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def heatmap_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor,
                 fg_weight: float = 0.0) -> torch.Tensor:
    """Official HeatmapLoss: per-image mean of the masked squared error. (B, J, H, W) -> (B,).

    ``fg_weight`` > 0 weights each pixel by ``1 + fg_weight * gt`` (see TrainOptions.fg_weight).
    """
    weight = mask[:, None] if fg_weight == 0 else mask[:, None] * (1 + fg_weight * gt)
    return ((pred - gt) ** 2 * weight).mean(dim=(1, 2, 3))


def ae_loss(tags: torch.Tensor, joints: torch.Tensor, push_loss: str = "exp",
            margin: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Official associative-embedding loss, vectorised over people. Returns (push, pull), each (B,).

    tags: (B, J, H, W) tag maps (one per joint). joints: (B, M, J, 2) int64 [flat index into
    (J, H, W), valid] as :func:`joint_indices` makes them.
    pull: mean over people of the mean squared deviation of a person's joint tags from their mean.
    push: over ordered pairs of distinct people, mean of exp(-(t_p - t_q)^2) ("exp") or of
    max(0, margin - |t_p - t_q|) ("max"; the official "max" is margin 1), halved; 0 below two.
    """
    b = tags.shape[0]
    flat = tags.reshape(b, -1)
    idx, valid = joints[..., 0], joints[..., 1].to(flat.dtype)  # (B, M, J)
    t = torch.gather(flat, 1, idx.reshape(b, -1)).reshape(idx.shape) * valid
    count = valid.sum(-1)  # (B, M)
    present = (count > 0).to(flat.dtype)
    mean = t.sum(-1) / count.clamp(min=1)
    pull_p = (((t - mean[..., None]) ** 2) * valid).sum(-1) / count.clamp(min=1)
    num = present.sum(-1)  # (B,)
    pull = (pull_p * present).sum(-1) / num.clamp(min=1)
    diff = mean[:, :, None] - mean[:, None, :]
    pair = present[:, :, None] * present[:, None, :]
    if push_loss == "exp":
        push = (torch.exp(-(diff**2)) * pair).sum((1, 2)) - num
    elif push_loss == "max":
        push = (torch.clamp(margin - diff.abs(), min=0) * pair).sum((1, 2)) - num * margin
    else:
        raise ValueError(f"push_loss must be 'exp' or 'max', not {push_loss!r}")
    push = torch.where(num > 1, push / ((num - 1) * num).clamp(min=1) * 0.5, torch.zeros_like(push))
    return push, pull


def compute_loss(outputs: list[torch.Tensor], batch: dict[str, torch.Tensor], num_joints: int,
                 opt: TrainOptions) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss (scalar) and its parts: heatmaps at stride 4 and 2, tags at stride 4."""
    out4, out2 = outputs
    hm4 = heatmap_loss(out4[:, :num_joints], batch["heatmaps_4"], batch["mask_4"], opt.fg_weight).mean()
    hm2 = heatmap_loss(out2[:, :num_joints], batch["heatmaps_2"], batch["mask_2"], opt.fg_weight).mean()
    push, pull = ae_loss(out4[:, num_joints:], batch["joints"], opt.push_loss, opt.push_margin)
    push, pull = push.mean() * opt.push_factor, pull.mean() * opt.pull_factor
    total = opt.heatmap_factor * (hm4 + hm2) + push + pull
    parts = {"hm4": hm4.item(), "hm2": hm2.item(), "push": push.item(), "pull": pull.item()}
    return total, parts
