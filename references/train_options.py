"""Every option of a demo-network training run (references/train.py), with its default."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainOptions:
    """Hyper-parameters. Sizes in pixels of the network input; sigma in output pixels."""

    input_size: int = 256
    #: Train on random crop_size x crop_size windows of the input_size-scaled image (None: the whole
    #: image, as officially). Same pixel scale as full inputs, 4x fewer pixels a step at half size:
    #: more optimisation steps per CPU second, which is what a from-scratch CPU run is short of.
    crop_size: int | None = None
    sigma: float = 2.0
    max_people: int = 30
    scale_range: tuple[float, float] = (0.75, 1.5)
    max_rotation: float = 30.0
    max_translate: float = 40.0
    flip: float = 0.5
    batch_size: int = 8
    lr: float = 1.5e-3
    warmup_steps: int = 200
    heatmap_factor: float = 1.0
    #: Extra weight of the heatmap error at gaussian pixels: weight 1 + fg_weight * target. 0 is the
    #: official loss. From scratch (no ImageNet backbone) on a CPU budget, the plain MSE first drives
    #: every map to 0 (~0.02 total loss) and stays there for thousands of steps: weighting the peaks
    #: makes predicting nothing expensive, so peaks appear within the first few hundred steps.
    fg_weight: float = 0.0
    #: Fraction of the budget over which fg_weight falls linearly to 0 (0: constant). The weighted
    #: loss's optimum at an uncertain pixel is biased up (a 5 % chance of a peak gives 0.37, not
    #: 0.05, at fg_weight 10): hundreds of false peaks above the detection threshold. Once peaks
    #: exist, the plain MSE calibrates them.
    fg_until: float = 0.0
    push_factor: float = 1e-3
    pull_factor: float = 1e-3
    #: "exp" (official default): exp(-d^2) per pair of people, strongest near d = 0.7, flat beyond
    #: 1.5 and with zero gradient at d = 0 (all tags start near 0). "max" (the official
    #: alternative, with a margin): max(0, push_margin - |d|), the same pull on every pair closer
    #: than the margin. The decoder joins tags closer than 1, so a margin of 2 or more leaves room
    #: for a person's own spread.
    push_loss: str = "exp"
    push_margin: float = 1.0
    extra: dict = field(default_factory=dict)
