"""Settings of the grouping decoder, with the official COCO test values as defaults."""

from __future__ import annotations

from dataclasses import dataclass

from higherhrnet_trt.core.keypoints import COCO, KeypointSet


@dataclass(frozen=True)
class DecodeConfig:
    """Parameters of the official ``HeatmapParser`` (lib/core/group.py, TEST.* and DATASET.*).

    joint_order: 0-based joint indices in the order joints are assigned to people; must be a
        permutation of range(J).
    max_people: k of the per-joint top-k, and the most people the matching considers as columns.
    detection_threshold: a peak is a detection when float64(value) > this (strict).
    tag_threshold: a match is kept only when the L2 tag distance (float64) is < this (strict).
    use_detection_val: cost = round(distance) * 100 - value (else cost = distance).
    ignore_too_much: skip a joint entirely once max_people people exist.
    nms_kernel / nms_padding: max-pool window and padding of the peak NMS (stride 1); the
        window must keep the map size: nms_kernel == 2 * nms_padding + 1.
    adjust: quarter-pixel shift towards the higher neighbour, and the +0.5 pixel-centre offset.
    refine: fill each person's missing joints by a tag-guided search over the whole map.
    """

    joint_order: tuple[int, ...] = COCO.joint_order
    max_people: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    use_detection_val: bool = True
    ignore_too_much: bool = False
    nms_kernel: int = 5
    nms_padding: int = 2
    adjust: bool = True
    refine: bool = True

    @classmethod
    def for_keypoints(cls, kp: KeypointSet, **overrides) -> DecodeConfig:
        """Config for a dataset's keypoints (its joint order); other fields from ``overrides``."""
        overrides.setdefault("joint_order", tuple(kp.joint_order))
        return cls(**overrides)

    def check(self, num_joints: int) -> None:
        """Raise ValueError when this config cannot decode maps with ``num_joints`` joints."""
        if sorted(self.joint_order) != list(range(num_joints)):
            raise ValueError(
                f"joint_order {self.joint_order} is not a permutation of 0..{num_joints - 1} "
                f"(the maps have {num_joints} joints); use DecodeConfig.for_keypoints"
            )
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")
        if self.nms_kernel != 2 * self.nms_padding + 1:
            raise ValueError(
                f"nms_kernel {self.nms_kernel} with nms_padding {self.nms_padding} changes the map "
                "size; the official NMS needs nms_kernel == 2 * nms_padding + 1"
            )
