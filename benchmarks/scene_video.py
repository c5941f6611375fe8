"""Generated videos of people walking across the frame, with ground-truth identities (MOT-style).

The scenes of benchmarks/scenes.py, in time: 2 to 4 figures walk left or right at constant speed
(half each way, on nearby lines, so they cross and overlap each other), some entering or leaving
through the side borders and some starting late, in front of a still background with up to one
still foreground object that hides them for a while. A figure keeps its clothes, colours and
build in every frame and swings between two poses of one heading (a rough walk). Camera noise
changes per frame.

Ground truth per frame: each person whose visible pixels number at least ``MIN_VISIBLE`` and who
has at least 3 visible joints in the image, with a constant ID (1, 2, ... per video), the box of
its visible pixels and its COCO keypoints (corner-origin pixels, v as in scenes.py).

Written per video, in the MOTChallenge layout:
``DIR/vNNN/img1/000001.jpg ...``, ``DIR/vNNN/gt/gt.txt`` (frame, id, x, y, w, h, 1, 1, visibility,
1-based frames), ``DIR/vNNN/gt/keypoints.json`` ({"frames": [[{"id", "keypoints" (51), "area"}]]},
per frame, for keypoint-similarity matching) and ``DIR/vNNN/seqinfo.ini``.

Video ``v`` of seed ``s`` depends only on (s, v). CLI:
``python -m higherhrnet_trt.benchmarks.scene_video --out DIR --num 20 --seed 100``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.core.errors import script_exit

from .scene_figure import Figure, _unit, sample_figure
from .scene_paint import Canvas, background, draw_occluders, draw_person, import_cv2, joint_labels

#: Least visible pixels of a person counted in the ground truth.
MIN_VISIBLE = 150
DEFAULT_SIZE = (384, 256)
DEFAULT_FRAMES = 60


@dataclass
class Walker:
    """One person of a video: two poses of one heading it swings between, its path and look."""

    pose_a: Figure
    pose_b: Figure
    height_px: float
    start: np.ndarray  # (2,) pelvis, pixels, at frame ``first``
    velocity: np.ndarray  # (2,) pixels / frame
    first: int  # first frame (0-based) it is drawn in
    look_seed: tuple  # seeds the rng of draw_person: the same clothes every frame
    period: float  # frames per walking cycle

    def figure(self, t: int) -> Figure:
        """The pose at frame t: a smooth swing between pose_a and pose_b."""
        w = 0.5 - 0.5 * np.cos(2 * np.pi * (t - self.first) / self.period)
        a, b = self.pose_a, self.pose_b
        return Figure(
            joints=(1 - w) * a.joints + w * b.joints, head=(1 - w) * a.head + w * b.head,
            head_r=a.head_r, face_dir=_unit((1 - w) * a.face_dir + w * b.face_dir),
            extra={k: (1 - w) * a.extra[k] + w * b.extra[k] for k in a.extra}, radii=a.radii,
        )

    def centre(self, t: int) -> np.ndarray:
        return self.start + self.velocity * (t - self.first)


def plan_video(seed: int, index: int, size=DEFAULT_SIZE, frames: int = DEFAULT_FRAMES) -> dict:
    """The random choices of one video: background, walkers, occluders (nothing drawn yet)."""
    rng = np.random.default_rng([int(seed), int(index)])
    w, h = size
    n = int(rng.integers(2, 5))
    base_y = rng.uniform(0.45, 0.65) * h
    walkers = []
    for k in range(n):
        direction = 1.0 if k % 2 == 0 else -1.0
        hp = float(rng.uniform(0.45, 0.75) * h)
        speed = rng.uniform(1.5, 4.0)
        heading = direction * rng.uniform(25, 80)
        pose_rng = np.random.default_rng([int(seed), int(index), k, 1])
        pose_a = sample_figure(pose_rng, (heading, heading))
        pose_b = sample_figure(pose_rng, (heading, heading))
        first = int(rng.integers(0, frames // 3)) if rng.random() < 0.3 else 0
        if rng.random() < 0.4:  # enters through the side border it walks away from
            x0 = -0.15 * w if direction > 0 else 1.15 * w
        else:
            x0 = rng.uniform(0.05, 0.45) * w if direction > 0 else rng.uniform(0.55, 0.95) * w
        y0 = base_y + rng.uniform(-0.12, 0.12) * h
        walkers.append(Walker(pose_a, pose_b, hp, np.array([x0, y0]),
                              np.array([direction * speed, rng.uniform(-0.2, 0.2)]), first,
                              (int(seed), int(index), k, 2), float(rng.uniform(16, 30))))
    # Nearer people (taller) are drawn last.
    walkers.sort(key=lambda wk: wk.height_px)
    return {"walkers": walkers, "occluders": int(rng.integers(0, 2)),
            "background_seed": (int(seed), int(index), 100), "noise_seed": (int(seed), int(index), 101),
            "size": (int(w), int(h)), "frames": int(frames)}


def render_frame(plan: dict, t: int, bg: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Frame t of a planned video: (H, W, 3) uint8 BGR and its ground truth (see module)."""
    w, h = plan["size"]
    canvas = Canvas(bg.copy())
    drawn = []
    for pid, wk in enumerate(plan["walkers"], start=1):
        if t < wk.first:
            continue
        fig = wk.figure(t)
        joints = draw_person(canvas, fig, pid, wk.centre(t), wk.height_px,
                             np.random.default_rng(list(wk.look_seed)))
        drawn.append((pid, joints, fig))
    draw_occluders(canvas, np.random.default_rng([*plan["background_seed"], 1]), plan["occluders"])
    truth = []
    for pid, joints, fig in drawn:
        mask = canvas.ids == pid
        area = int(mask.sum())
        if area < MIN_VISIBLE:
            continue
        kps = joint_labels(canvas, fig, pid, joints)
        if (kps[:, 2] == 2).sum() < 3:
            continue
        ys, xs = np.nonzero(mask)
        truth.append({"id": pid, "keypoints": [float(v) for v in kps.reshape(-1)], "area": float(area),
                      "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                               float(ys.max() - ys.min() + 1)]})
    rng = np.random.default_rng([*plan["noise_seed"], t])
    img = canvas.image + rng.normal(0, 3.0, canvas.image.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), truth


def write_video(out_dir: str, seed: int, index: int, size=DEFAULT_SIZE, frames: int = DEFAULT_FRAMES) -> str:
    """Render video ``index`` of ``seed`` into ``out_dir/vNNN`` (MOT layout, see module); returns
    that folder."""
    cv2 = import_cv2()
    plan = plan_video(seed, index, size, frames)
    folder = os.path.join(out_dir, f"v{index:03d}")
    os.makedirs(os.path.join(folder, "img1"), exist_ok=True)
    os.makedirs(os.path.join(folder, "gt"), exist_ok=True)
    w, h = plan["size"]
    bg = background(np.random.default_rng(list(plan["background_seed"])), w, h)
    lines, per_frame = [], []
    for t in range(frames):
        img, truth = render_frame(plan, t, bg)
        path = os.path.join(folder, "img1", f"{t + 1:06d}.jpg")
        if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"cannot write {path}")
        for p in truth:
            x, y, bw, bh = p["bbox"]
            lines.append(f"{t + 1},{p['id']},{x:.0f},{y:.0f},{bw:.0f},{bh:.0f},1,1,1\n")
        per_frame.append(truth)
    with open(os.path.join(folder, "gt", "gt.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    with open(os.path.join(folder, "gt", "keypoints.json"), "w", encoding="utf-8") as f:
        json.dump({"seed": int(seed), "index": int(index), "frames": per_frame}, f)
    with open(os.path.join(folder, "seqinfo.ini"), "w", encoding="utf-8") as f:
        f.write(f"[Sequence]\nname=v{index:03d}\nimDir=img1\nframeRate=30\nseqLength={frames}\n"
                f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="generated walking videos with ground-truth IDs (MOT layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=int, default=20)
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES)
    args = p.parse_args(argv)
    for v in range(args.num):
        print(write_video(args.out, args.seed, v, frames=args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
