"""Keypoint definitions of the datasets HigherHRNet is trained on: joint names, flip index, skeleton.

Shared by export (written into the ONNX metadata) and runtime (decode order, drawing, evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeypointSet:
    """One dataset's keypoint convention.

    joint_names: J names in network channel order.
    flip_index: channel j of a mirrored image holds joint flip_index[j].
    skeleton: 0-based (a, b) joint pairs to draw as limbs.
    joint_order: order in which the official parser assigns joints to people (0-based).
    sigmas: OKS sigmas per joint, as the dataset's evaluation uses them.
    """

    name: str
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    joint_order: tuple[int, ...]
    sigmas: tuple[float, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)


COCO = KeypointSet(
    name="coco",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    # Official parser: head and shoulders first, then hips, then limbs outward.
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

CROWDPOSE = KeypointSet(
    name="crowdpose",
    joint_names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    # The official parser has no CrowdPose order of its own: it takes the first 14 entries of the
    # COCO order, which for 14 joints is still a permutation of 0..13.
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
    sigmas=(
        0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
        0.079, 0.079,
    ),
)

KEYPOINT_SETS: dict[str, KeypointSet] = {k.name: k for k in (COCO, CROWDPOSE)}


def keypoint_set(name: str) -> KeypointSet:
    """Look up a keypoint set by name ('coco' or 'crowdpose')."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(KEYPOINT_SETS)}") from None
