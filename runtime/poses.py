"""What a frame's people look like to the caller, and the steps that make them from decoded maps.

Shared by the CPU ``Pipeline`` and the ``GpuPipeline`` (runtime/gpu_pipeline.py): both decode to
(grouped, scores) and then take the same path here: map back to frame pixels, best first, boxes,
cap at max_people. The frame checks and the decode-settings resolution are here for the same reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.geometry import FrameGeometry
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.decode import DecodeConfig, parse


@dataclass(frozen=True)
class Poses:
    """The people found in one frame, best score first, at most the decoder's max_people.

    keypoints: (P, J, 3) float32 [x, y, score]: x, y in original frame pixels (x right, y down,
        pixel centres at integer + 0.5 as in the official results), score = the joint's heatmap
        value (~0..1; joints filled in by refinement can be low).
    scores: (P,) float32 person scores (official: mean joint value over all J joints).
    boxes: (P, 4) float32 [x0, y0, x1, y1] frame pixels: min / max of the joints scored above the
        pipeline's ``kpt_thr`` (of all joints when none is).
    image_wh: (W, H) of the frame, pixels.
    valid: False when the frame was skipped (the network returned NaN or inf); then P = 0.
    track_ids: (P,) int64 person IDs across frames (runtime/track.py: > 0, the same on the same
        person; -1 for a person not tracked), or None when the pipeline does not track.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    image_wh: tuple[int, int] = (0, 0)
    valid: bool = True
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, num_joints: int, image_wh: tuple[int, int] = (0, 0), valid: bool = True) -> Poses:
        return cls(
            keypoints=np.zeros((0, num_joints, 3), np.float32),
            scores=np.zeros((0,), np.float32),
            boxes=np.zeros((0, 4), np.float32),
            image_wh=tuple(image_wh),
            valid=valid,
        )

    def select(self, min_score: float) -> Poses:
        """The people whose person score is >= min_score."""
        return self.take(self.scores >= min_score)

    def take(self, index) -> Poses:
        """The people at ``index`` (a (P,) bool mask, an index array or a slice), track IDs kept."""
        ids = None if self.track_ids is None else self.track_ids[index]
        return Poses(self.keypoints[index], self.scores[index], self.boxes[index], self.image_wh,
                     self.valid, ids)

    def with_track_ids(self, track_ids: np.ndarray) -> Poses:
        """The same people with these track IDs, (P,) ints."""
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if ids.shape[0] != len(self):
            raise ValueError(f"{ids.shape[0]} track ids for {len(self)} people")
        return dataclasses.replace(self, track_ids=ids)


def boxes_from_keypoints(keypoints: np.ndarray, kpt_thr: float = 0.1) -> np.ndarray:
    """(P, J, 3) [x, y, score] -> (P, 4) float32 xyxy over joints with score > kpt_thr.

    A person none of whose joints passes the threshold gets the box of all its joints (decoded
    people always have joints; refinement places the missing ones).
    """
    kpts = np.asarray(keypoints, dtype=np.float32)
    if kpts.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    good = kpts[:, :, 2] > kpt_thr
    good[~good.any(axis=1)] = True
    x, y = kpts[:, :, 0], kpts[:, :, 1]
    big = np.float32(np.inf)
    return np.stack([
        np.where(good, x, big).min(axis=1), np.where(good, y, big).min(axis=1),
        np.where(good, x, -big).max(axis=1), np.where(good, y, -big).max(axis=1),
    ], axis=1).astype(np.float32)


def maps_to_poses(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    geometry: FrameGeometry,
    cfg: DecodeConfig,
    kpt_thr: float = 0.1,
    heatmap_size_wh: Sequence[int] | None = None,
) -> Poses:
    """Final maps of one frame -> people in frame pixels (official parse + get_final_preds).

    heatmaps: (J, H, W) float32 aggregated heatmaps; tags: (J, H, W, T) float32.
    geometry: the frame's FrameGeometry (center / scale of scale 1, base size).
    heatmap_size_wh: (W, H) of the maps when they are not at the base size (maps aggregated at
        heatmap resolution); None = base size, the official PROJECT2IMAGE flow.
    kpt_thr: joints above it span the person's box.
    """
    grouped, scores = parse(heatmaps, tags, cfg)
    return people_from_grouped(grouped, scores, geometry, heatmaps.shape[0], kpt_thr, heatmap_size_wh)


def people_from_grouped(grouped: np.ndarray, scores: np.ndarray, geometry: FrameGeometry,
                        num_joints: int, kpt_thr: float = 0.1,
                        heatmap_size_wh: Sequence[int] | None = None) -> Poses:
    """Decoded people -> Poses in frame pixels, best score first.

    grouped: (P, J, >=3) [x, y, score, ...] in pixels of maps of ``heatmap_size_wh`` (None: the
        geometry's base size); scores: (P,) person scores.
    """
    if grouped.shape[0] == 0:
        return Poses.empty(num_joints, geometry.image_wh)
    coords = geometry.map_to_image(np.ascontiguousarray(grouped[:, :, :3]), heatmap_size_wh)
    keypoints = np.asarray(coords, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    # Best first, stable so equal scores keep the decoder's order.
    order = np.argsort(-scores, kind="stable")
    keypoints, scores = keypoints[order], scores[order]
    return Poses(keypoints, scores, boxes_from_keypoints(keypoints, kpt_thr), tuple(geometry.image_wh))


def cap_people(poses: Poses, limit: int) -> Poses:
    """The best ``limit`` people of a best-first Poses.

    The official grouping can open more people than max_people (one per unmatched joint
    candidate); COCO evaluation looks at the best 20 per image only, so capping never changes AP.
    """
    if len(poses) <= limit:
        return poses
    return poses.take(slice(0, limit))


def is_bgr(color_order: str) -> bool:
    """"bgr" (cv2 frames) -> True, "rgb" (e.g. ROS rgb8 images) -> False; else a UserError."""
    if color_order not in ("bgr", "rgb"):
        raise UserError(f"color_order must be 'bgr' or 'rgb', got {color_order!r}")
    return color_order == "bgr"


def decode_config_for(meta: ModelMeta, arg: DecodeConfig | Mapping[str, Any] | None,
                      model_path: str = "model") -> DecodeConfig:
    """The decode settings for a model: ``arg`` as given, or the official ones for the model's
    keypoint set with ``arg``'s overrides. UserError when they do not fit the model."""
    try:
        kp = meta.keypoints  # read from the file's metadata, checked there
    except ValueError as e:
        raise UserError(f"{model_path}: {e}") from None
    if meta.num_joints and meta.num_joints != kp.num_joints:
        raise UserError(f"{model_path}: metadata names {meta.num_joints} joints but dataset "
                        f"{meta.dataset!r} has {kp.num_joints}; re-export the model")
    if isinstance(arg, DecodeConfig):
        cfg = arg
    else:
        try:
            cfg = DecodeConfig.for_keypoints(kp, **dict(arg or {}))
        except TypeError as e:
            raise UserError(f"unknown decode setting: {e}") from None
    try:
        cfg.check(kp.num_joints)
    except ValueError as e:
        raise UserError(f"decode settings do not fit this model: {e}") from None
    return cfg
