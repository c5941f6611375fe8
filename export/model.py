"""HigherHRNet in PyTorch, with module names that match the official checkpoints key for key.

Architecture (Cheng et al., "HigherHRNet", CVPR 2020): an HRNet backbone keeps a stride-4 branch
alive through four stages while adding 1/8, 1/16 and 1/32 branches and fusing them repeatedly; a
1x1 conv on the stride-4 features predicts J heatmaps + J tag maps; a deconvolution head
(transposed conv on [features, stride-4 prediction], then BasicBlocks) predicts J heatmaps at
stride 2. The attribute names below (conv1, layer1, transition1, stage2, ..., final_layers,
deconv_layers) are the official ones so that ``load_state_dict(strict=True)`` takes released
checkpoints unchanged; ``None`` entries in transitions and fuse layers keep the official indices.

Input: (N, 3, H, W) float32, ImageNet-normalised RGB, H and W multiples of 32 (64 for flip/test
alignment). Output: ``[ (N, J + tag_dim, H/4, W/4), (N, J, H/2, W/2) ]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .configs import ModelConfig, StageConfig, get_config

BN_MOMENTUM = 0.1


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _stack(block: type, inplanes: int, planes: int, count: int) -> nn.Sequential:
    """``count`` blocks; the first projects with a 1x1 conv when the width changes."""
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, 1, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(inplanes, planes, 1, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, count)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then every output branch sums all inputs resampled to its resolution.

    Lower-resolution inputs are brought up by 1x1 conv + BN + nearest upsampling; higher ones down
    by a chain of stride-2 3x3 convs (ReLU between them, not after the last).
    """

    def __init__(
        self, block: type, num_blocks, in_channels: list[int], num_channels, multi_scale_output: bool
    ):
        super().__init__()
        n = len(num_channels)
        self.branches = nn.ModuleList(
            _stack(block, in_channels[i], num_channels[i], num_blocks[i]) for i in range(n)
        )
        self.out_channels = [c * block.expansion for c in num_channels]
        num_outputs = n if multi_scale_output else 1
        self.fuse_layers = self._make_fuse_layers(self.out_channels, num_outputs) if n > 1 else None
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _make_fuse_layers(ch: list[int], num_outputs: int) -> nn.ModuleList:
        fuse = []
        for i in range(num_outputs):
            row: list[nn.Module | None] = []
            for j in range(len(ch)):
                if j > i:
                    row.append(nn.Sequential(
                        nn.Conv2d(ch[j], ch[i], 1, 1, 0, bias=False),
                        nn.BatchNorm2d(ch[i]),
                        nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                    ))
                elif j == i:
                    row.append(None)
                else:
                    steps = [_conv_bn(ch[j], ch[j], 3, 2, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(ch[j], ch[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        return nn.ModuleList(fuse)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            # Summed in branch order 0..n-1, as the official module does: the same float
            # rounding, hence bit-identical outputs.
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if j == i else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def _transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt branch widths between stages; a new branch comes from the last one by stride-2 convs."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], c, 3, 1, relu=True) if pre[i] != c else None)
        else:
            steps = [
                _conv_bn(pre[-1], c if k == i - len(pre) else pre[-1], 3, 2, relu=True)
                for k in range(i + 1 - len(pre))
            ]
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HigherHRNet(nn.Module):
    """HigherHRNet for bottom-up pose estimation.

    forward(x: (N, 3, H, W)) -> [stride-4 (N, J + tag_dim, H/4, W/4), stride-2 (N, J, H/2, W/2)]
    (one more stride-halving output per extra deconv).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        stem = cfg.stem_inplanes
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _stack(Bottleneck, stem, cfg.layer1_planes, cfg.layer1_blocks)

        channels = [cfg.layer1_planes * Bottleneck.expansion]
        for idx, stage in ((1, cfg.stage2), (2, cfg.stage3), (3, cfg.stage4)):
            cur = [c * BLOCKS[stage.block].expansion for c in stage.num_channels]
            setattr(self, f"transition{idx}", _transition(channels, cur))
            module, channels = self._make_stage(stage, cur, multi_scale_output=idx < 3)
            setattr(self, f"stage{idx + 1}", module)

        out0 = cfg.num_joints + (cfg.tag_dim if cfg.with_ae_loss[0] else 0)
        k = cfg.final_conv_kernel
        finals = [nn.Conv2d(channels[0], out0, k, 1, 1 if k == 3 else 0)]
        deconvs = []
        cin, prev_out = channels[0], out0
        for i, cout in enumerate(cfg.deconv_channels):
            if cfg.deconv_cat_output[i]:
                cin += prev_out
            kernel = cfg.deconv_kernels[i]
            padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]
            layers = [nn.Sequential(
                nn.ConvTranspose2d(cin, cout, kernel, 2, padding, output_padding, bias=False),
                nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            )]
            # Each BasicBlock sits in its own Sequential: that is where the official keys put it.
            layers += [nn.Sequential(BasicBlock(cout, cout)) for _ in range(cfg.deconv_num_basic_blocks)]
            deconvs.append(nn.Sequential(*layers))
            prev_out = cfg.num_joints + (cfg.tag_dim if cfg.with_ae_loss[i + 1] else 0)
            finals.append(nn.Conv2d(cout, prev_out, k, 1, 1 if k == 3 else 0))
            cin = cout
        self.final_layers = nn.ModuleList(finals)
        self.deconv_layers = nn.ModuleList(deconvs)

    @staticmethod
    def _make_stage(stage: StageConfig, in_channels: list[int], multi_scale_output: bool):
        block = BLOCKS[stage.block]
        modules = []
        for m in range(stage.num_modules):
            last = m == stage.num_modules - 1
            module = HighResolutionModule(
                block, stage.num_blocks, in_channels, stage.num_channels,
                multi_scale_output=multi_scale_output or not last,
            )
            modules.append(module)
            in_channels = module.out_channels
        return nn.Sequential(*modules), in_channels

    @staticmethod
    def _next_inputs(transition: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        return [
            (ys[i] if t is None else t(ys[i])) if i < len(ys) else t(ys[-1])
            for i, t in enumerate(transition)
        ]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._next_inputs(self.transition1, [x]))
        ys = self.stage3(self._next_inputs(self.transition2, ys))
        ys = self.stage4(self._next_inputs(self.transition3, ys))

        x = ys[0]
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cfg.deconv_cat_output[i]:
                x = torch.cat((x, y), 1)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs


def build_model(config: ModelConfig | str, **overrides) -> HigherHRNet:
    """A HigherHRNet for a config (or config name), in eval mode, random weights."""
    cfg = get_config(config, **overrides) if isinstance(config, str) else config
    return HigherHRNet(cfg).eval()
