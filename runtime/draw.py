"""Skeleton drawing: one colour per person, limbs from the dataset's skeleton (COCO 17, CrowdPose 14).

Works on anything with a ``keypoints`` (P, J, 3) array [x, y, score] in image pixels (a Poses) or
on that array itself. Joints at or below ``kpt_thr`` are not drawn, nor the limbs that touch them.
"""

from __future__ import annotations

import numpy as np

from higherhrnet_trt.core.keypoints import KeypointSet, keypoint_set

from .sources import import_cv2

#: BGR colours, far apart in hue and bright enough on dark and light scenes; person i gets
#: PALETTE[i % len(PALETTE)], so a person keeps its colour as long as its rank does (tracked
#: people: as long as their track ID, see draw_poses).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 215, 255), (255, 128, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (255, 255, 0),
    (0, 128, 255), (128, 0, 255), (0, 255, 170), (255, 0, 128), (128, 255, 0), (255, 170, 170),
    (0, 170, 255), (170, 255, 255), (255, 85, 0), (85, 0, 170),
)


def person_color(i: int) -> tuple[int, int, int]:
    """BGR colour of the i-th person."""
    return PALETTE[i % len(PALETTE)]


#: Tracked people without an ID (weak, or on a tentative track) are drawn grey.
UNTRACKED = (160, 160, 160)


def _colors(poses, count: int) -> list[tuple[int, int, int]]:
    """BGR colour of each person: by track ID when the poses carry IDs, else by rank."""
    ids = getattr(poses, "track_ids", None)
    if ids is None:
        return [person_color(p) for p in range(count)]
    return [person_color(int(i) - 1) if i > 0 else UNTRACKED for i in ids]


def _line_sizes(image: np.ndarray) -> tuple[int, int]:
    """(limb thickness, joint radius) in pixels: 2 / 3 px at 640 px, growing with the image."""
    short = min(image.shape[:2])
    thickness = max(1, int(round(short / 320)))
    return thickness, thickness + 1


def draw_poses(
    image: np.ndarray,
    poses,
    keypoints: KeypointSet | str = "coco",
    kpt_thr: float = 0.1,
    boxes: bool = False,
    inplace: bool = False,
    person_thr: float = 0.0,
) -> np.ndarray:
    """Draw people onto a BGR image.

    image: (H, W, 3) uint8 BGR. poses: a Poses (uses .keypoints, and .boxes when ``boxes``) or a
        (P, J, 3) array [x, y, score] in image pixels.
    keypoints: the KeypointSet (or its name) whose skeleton links the joints; J must match.
    kpt_thr: joints with score <= this are left out (and their limbs).
    boxes: also draw each person's box (xyxy) with its score.
    Tracked poses (``poses.track_ids`` set, runtime/track.py) are coloured by ID, and each
    tracked person's ID is written at the top-left corner of its box ("#7", "#7 0.83" with boxes).
    inplace: draw into ``image`` itself (saves a copy per video frame); else a copy is returned.
    person_thr: people whose score (``poses.scores``) is below this are not drawn. The decoder
        keeps weak candidates (they cost COCO AP nothing), which would bury the real people.
    Returns the annotated image.
    """
    cv2 = import_cv2()
    kp = keypoint_set(keypoints) if isinstance(keypoints, str) else keypoints
    kpts = np.asarray(getattr(poses, "keypoints", poses), dtype=np.float32)
    if kpts.size == 0:
        return image if inplace else image.copy()
    if kpts.ndim != 3 or kpts.shape[2] < 3:
        raise ValueError(f"keypoints must be (P, J, 3), got {kpts.shape}")
    if kpts.shape[1] != kp.num_joints:
        raise ValueError(f"{kpts.shape[1]} joints per person, but the {kp.name} skeleton has "
                         f"{kp.num_joints}")
    out = image if inplace else image.copy()
    person_scores = getattr(poses, "scores", None)
    shown = (np.ones(kpts.shape[0], bool) if person_scores is None or person_thr <= 0
             else np.asarray(person_scores, np.float32) >= person_thr)
    thickness, radius = _line_sizes(out)
    colors = _colors(poses, kpts.shape[0])
    # Visible = above threshold and finite; coordinates clipped so cv2's int conversion is safe on
    # wild values (a joint far off-image still draws its limb towards the border).
    visible = (kpts[:, :, 2] > kpt_thr) & np.isfinite(kpts[:, :, :3]).all(axis=2)
    limit = 4 * max(out.shape[:2])
    pts = np.clip(np.nan_to_num(kpts[:, :, :2]), -limit, limit).round().astype(np.int32)
    for p in np.flatnonzero(shown):
        color = colors[p]
        for a, b in kp.skeleton:
            if visible[p, a] and visible[p, b]:
                cv2.line(out, tuple(map(int, pts[p, a])), tuple(map(int, pts[p, b])), color,
                         thickness, cv2.LINE_AA)
        for j in np.flatnonzero(visible[p]):
            cv2.circle(out, tuple(map(int, pts[p, j])), radius, color, -1, cv2.LINE_AA)
            # A thin dark ring keeps joints visible on a background of the person's own colour.
            cv2.circle(out, tuple(map(int, pts[p, j])), radius, (32, 32, 32), 1, cv2.LINE_AA)
    ids = getattr(poses, "track_ids", None)
    if (boxes or ids is not None) and hasattr(poses, "boxes"):
        for p, box in enumerate(np.asarray(poses.boxes, dtype=np.float32)):
            if not np.isfinite(box).all() or not shown[p]:
                continue
            x0, y0, x1, y1 = np.clip(box, -limit, limit).round().astype(int)
            words = [f"#{int(ids[p])}"] if ids is not None and ids[p] > 0 else []
            if boxes:
                cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), colors[p], thickness)
                if person_scores is not None:
                    words.append(f"{float(person_scores[p]):.2f}")
            if words:
                draw_label(out, " ".join(words), (int(x0), int(y0)), colors[p])
    return out


def draw_label(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int] = (8, 8),
    color: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Write ``text`` on a dark box whose top-left corner is ``origin`` (pixels), in place."""
    cv2 = import_cv2()
    scale = max(0.4, min(image.shape[:2]) / 900)
    thick = max(1, int(round(scale * 1.5)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x = int(np.clip(origin[0], 0, max(0, image.shape[1] - tw - 4)))
    y = int(np.clip(origin[1], 0, max(0, image.shape[0] - th - base - 4)))
    cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 4), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick,
                cv2.LINE_AA)
    return image


def draw_fps(image: np.ndarray, fps: float, extra: str = "") -> np.ndarray:
    """Frames-per-second overlay in the top-left corner (in place); ``extra`` is appended."""
    text = f"{fps:.1f} FPS" + (f"  {extra}" if extra else "")
    return draw_label(image, text, (8, 8), (0, 255, 0))
