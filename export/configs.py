"""Named HigherHRNet configurations (the official experiment files, as plain data).

A config fixes the architecture (widths, blocks, deconv head) and the dataset's joints; the same
W32 weights serve input 512 and 640, so ``input_size`` is only the default export/test size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from higherhrnet_trt.core.errors import UserError


@dataclass(frozen=True)
class StageConfig:
    """One HRNet stage: ``num_modules`` high-resolution modules over ``len(num_channels)`` branches."""

    num_modules: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: str = "BASIC"

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes the network and its outputs.

    num_joints: J heatmap channels (17 COCO, 14 CrowdPose).
    tag_per_joint: one tag map per joint (True in every official config).
    deconv_*: the 1/2-stride head: per deconv, output channels, kernel, whether the stride-4
        prediction is concatenated to its input, and how many BasicBlocks follow it.
    with_ae_loss: per output, whether it carries tag maps (official: stride 4 only).
    """

    name: str
    dataset: str = "coco"
    num_joints: int = 17
    input_size: int = 512
    stem_inplanes: int = 64
    #: layer1, the stride-4 Bottleneck stack before stage 2: block count and planes (output
    #: 4 x planes channels). Official: 4 blocks of 64 (256 channels), most of a narrow network's
    #: compute at 1/4 resolution.
    layer1_blocks: int = 4
    layer1_planes: int = 64
    stage2: StageConfig = StageConfig(1, (4, 4), (32, 64))
    stage3: StageConfig = StageConfig(4, (4, 4, 4), (32, 64, 128))
    stage4: StageConfig = StageConfig(3, (4, 4, 4, 4), (32, 64, 128, 256))
    final_conv_kernel: int = 1
    tag_per_joint: bool = True
    deconv_channels: tuple[int, ...] = (32,)
    deconv_kernels: tuple[int, ...] = (4,)
    deconv_cat_output: tuple[bool, ...] = (True,)
    deconv_num_basic_blocks: int = 4
    with_ae_loss: tuple[bool, ...] = (True, False)
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def width(self) -> int:
        """HRNet width: channels of the highest-resolution branch (32 for W32)."""
        return self.stage2.num_channels[0]

    @property
    def num_deconvs(self) -> int:
        return len(self.deconv_channels)

    @property
    def tag_dim(self) -> int:
        return self.num_joints if self.tag_per_joint else 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _w(width: int) -> dict:
    """Stage widths of HRNet-W{width}: width x (1, 2, 4, 8)."""
    c = (width, 2 * width, 4 * width, 8 * width)
    return dict(
        stage2=StageConfig(1, (4, 4), c[:2]),
        stage3=StageConfig(4, (4, 4, 4), c[:3]),
        stage4=StageConfig(3, (4, 4, 4, 4), c),
        deconv_channels=(width,),
    )


CONFIGS: dict[str, ModelConfig] = {
    "w32_512": ModelConfig(
        "w32_512", input_size=512, description="COCO, HRNet-W32, input 512 (67.1 AP val2017)", **_w(32)
    ),
    "w32_640": ModelConfig(
        "w32_640", input_size=640, description="COCO, HRNet-W32, input 640 (68.5 AP val2017)", **_w(32)
    ),
    "w48_640": ModelConfig(
        "w48_640", input_size=640, description="COCO, HRNet-W48, input 640 (69.9 AP val2017)", **_w(48)
    ),
    # MMPose's W48 release (higher_hrnet48_coco_512x512): the official W48 architecture, trained
    # and tested at 512 (the official W48 release is 640).
    "w48_512": ModelConfig(
        "w48_512", input_size=512, description="COCO, HRNet-W48, input 512 (MMPose's W48; 68.6 AP val2017)",
        **_w(48),
    ),
    "crowdpose_w32_512": ModelConfig(
        "crowdpose_w32_512", dataset="crowdpose", num_joints=14, input_size=512,
        description="CrowdPose, HRNet-W32, input 512", **_w(32),
    ),
    # The demo network: HRNet-W16 with fewer blocks and modules than W32 (stage modules 1/3/2, two
    # BasicBlocks per branch, two blocks in the deconv head) and a lighter stem (32 channels, layer1
    # two Bottlenecks of 32 planes: the official 4 x 64 took half of a training step's time on the
    # CPU). 2.7 M parameters: 5.8 MB in fp16. Weights in export/assets/: see MODEL_CARD.md there.
    "demo": ModelConfig(
        "demo",
        input_size=256,
        stem_inplanes=32,
        layer1_blocks=2,
        layer1_planes=32,
        stage2=StageConfig(1, (2, 2), (16, 32)),
        stage3=StageConfig(3, (2, 2, 2), (16, 32, 64)),
        stage4=StageConfig(2, (2, 2, 2, 2), (16, 32, 64, 128)),
        deconv_channels=(16,),
        deconv_num_basic_blocks=2,
        description="demo: HRNet-W16 (narrow), input 256, trained on generated scenes (not COCO)",
    ),
    # The narrow network of ../shared/reference/tiny_official_arch.json: for tests and pipelines.
    "tiny": ModelConfig(
        "tiny",
        input_size=128,
        stage2=StageConfig(1, (1, 1), (8, 16)),
        stage3=StageConfig(1, (1, 1, 1), (8, 16, 32)),
        stage4=StageConfig(2, (1, 1, 1, 1), (8, 16, 32, 64)),
        deconv_channels=(8,),
        deconv_num_basic_blocks=2,
        description="tiny test network (widths 8/16/32/64); same structure, not trained",
    ),
}


def get_config(name: str, **overrides) -> ModelConfig:
    """A named config, optionally with fields replaced (e.g. ``input_size=640``)."""
    if name not in CONFIGS:
        raise UserError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}")
    cfg = CONFIGS[name]
    return replace(cfg, **overrides) if overrides else cfg


def config_from_json(text: str) -> ModelConfig:
    """Inverse of ModelConfig.to_json (stored in ONNX metadata)."""
    d = json.loads(text)
    for key in ("stage2", "stage3", "stage4"):
        s = d[key]
        d[key] = StageConfig(s["num_modules"], tuple(s["num_blocks"]), tuple(s["num_channels"]), s["block"])
    for key in ("deconv_channels", "deconv_kernels", "deconv_cat_output", "with_ae_loss"):
        d[key] = tuple(d[key])
    return ModelConfig(**d)
