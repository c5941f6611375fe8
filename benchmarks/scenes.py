"""Procedurally generated multi-person scenes with COCO keypoint annotations (NumPy + OpenCV only).

Why: no trained HigherHRNet weights can be downloaded on the project's machines, yet the chain
export -> FP16/INT8 -> engine -> decode must be shown to keep accuracy. A small network trained on
these scenes gives an honest end-to-end AP, a calibration set and a demo that draws real skeletons.
These images are *not* photographs: numbers measured on them say nothing about COCO accuracy.

What a scene holds:

- 1 to 4 articulated figures (``DEFAULT_PEOPLE``) with the 17 COCO joints: a 3-D stick skeleton
  (pelvis, spine, head, shoulder/elbow/wrist, hip/knee/ankle) posed within rough human joint
  limits, turned to any heading, orthographically projected and drawn as tapered limbs, a torso,
  a head with a face or hair, hands and feet, in painter's order (far parts first). Left and
  right are told apart the way they are on people: by which way the face and body turn, and by
  near-side limbs being drawn over far-side ones and slightly brighter.
- clothes and skin in varied colors, with plain, striped or noisy textures;
- backgrounds of gradients, smooth noise or stripes under random clutter (boxes, discs, sticks);
- people at varying sizes (0.4x to 1.0x the image height by default, log-uniform; the API and CLI
  take any range), truncated by the image border and occluded by each other (in about two thirds
  of the default scenes two people's boxes overlap) and by up to one foreground object.

Annotations follow COCO ``person_keypoints_*.json``: keypoints (x, y, v) in pixels with the origin at
the top-left *corner* of the image (pixel i spans [i, i + 1)), v = 2 visible, 1 occluded (by another
person or object, or a face point on the far side of the head), 0 not labelled (outside the image,
or a face point well behind the head; x = y = 0 then); ``bbox`` and ``area`` are those of the
person's visible pixels, ``iscrowd`` 0, ``num_keypoints`` = count of v > 0.

Determinism: image ``i`` of seed ``s`` depends only on (s, i) (``np.random.default_rng([s, i])``),
so a dataset of 10 images is the first 10 of a dataset of 1000 with the same seed.

CLI: ``python -m higherhrnet_trt.benchmarks.scenes --out DIR --num N --seed S [--width W --height H]``
writes ``DIR/images/000000.jpg ...`` and ``DIR/person_keypoints.json``; ``--sample PATH`` writes the
bundled demo image ``runtime/assets/sample.jpg`` again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.keypoints import COCO

from .scene_figure import (
    Figure,
    sample_figure,
)
from .scene_paint import Canvas, background, draw_occluders, draw_person, import_cv2, joint_labels

#: The scene distribution every generated set uses unless told otherwise: training, the held-out
#: and CI sets of the demo model's card, calibration scenes. (min, max) people per image, standing
#: height as a fraction of the image height (log-uniform), foreground objects. Chosen so a narrow
#: network trains to a useful AP on a 2-core CPU (export/assets/MODEL_CARD.md): several people at
#: different scales, often overlapping, few occluders.
DEFAULT_PEOPLE = (1, 4)
DEFAULT_HEIGHT_RANGE = (0.4, 1.0)
DEFAULT_OCCLUDERS = (0, 1)
#: Headings (degrees about the vertical; 0 faces the camera, +-90 is a profile, 180 the back):
#: people face the camera or turn up to sideways. Back views are left out of the default: there
#: the figures' left and right are told apart only by the hair, and a network trained for two CPU
#: hours swapped whole people's sides (29 % of people without a visible nose, 12 % with one).
DEFAULT_HEADINGS = (-90.0, 90.0)


# --------------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------------


def render_scene(
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
    people: tuple[int, int] = DEFAULT_PEOPLE,
    height_range: tuple[float, float] = DEFAULT_HEIGHT_RANGE,
    occluders: tuple[int, int] = DEFAULT_OCCLUDERS,
    headings: tuple[float, float] = DEFAULT_HEADINGS,
) -> tuple[np.ndarray, list[dict]]:
    """One scene.

    size: (W, H) pixels. people: (min, max) number of figures drawn (some may end up invisible and
    unannotated). height_range: standing height of a figure as a fraction of H, log-uniform.
    occluders: (min, max) foreground objects. headings: (min, max) degrees, see sample_figure.
    Returns the image (H, W, 3) uint8 BGR and annotations without ids: dicts with ``keypoints``
    (51 floats, COCO layout, corner-origin pixels), ``num_keypoints``, ``bbox`` [x, y, w, h],
    ``area`` (visible pixels), ``iscrowd`` 0, ``category_id`` 1.
    """
    # One function on purpose: the order of its random draws defines every generated dataset.
    cv2 = import_cv2()
    w, h = int(size[0]), int(size[1])
    canvas = Canvas(background(rng, w, h))
    n = int(rng.integers(people[0], people[1] + 1))
    lo, hi = np.log(height_range[0]), np.log(height_range[1])
    heights = np.exp(rng.uniform(lo, hi, n)) * h
    # Larger people are nearer the camera: draw them last (with some shuffling between similar ones).
    order = np.argsort(heights + rng.normal(0, 0.15 * h, n))
    placed: list[tuple[int, np.ndarray, Figure]] = []
    for rank, k in enumerate(order):
        pid = rank + 1
        fig = sample_figure(rng, headings)
        hp = float(heights[k])
        # Pelvis anywhere that leaves part of the figure in view (truncation happens at the borders).
        # Usually the body's height is in view (or, for people taller than the image, the image is
        # inside the body's height); otherwise anywhere down to half below the bottom edge.
        if rng.random() < 0.75:
            a, b = 0.45 * hp, h - 0.5 * hp
            cy = rng.uniform(min(a, b), max(a, b))
        else:
            cy = rng.uniform(0.0, h + 0.3 * hp)
        center = np.array([rng.uniform(-0.05 * w, 1.05 * w), cy])
        joints = draw_person(canvas, fig, pid, center, hp, rng)
        placed.append((pid, joints, fig))
    draw_occluders(canvas, rng, int(rng.integers(occluders[0], occluders[1] + 1)))

    anns = []
    for pid, joints, fig in placed:
        mask = canvas.ids == pid
        area = int(mask.sum())
        if area == 0:
            continue
        ys, xs = np.nonzero(mask)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        kps = joint_labels(canvas, fig, pid, joints)
        anns.append({
            "keypoints": [float(v) for v in kps.reshape(-1)],
            "num_keypoints": int((kps[:, 2] > 0).sum()),
            "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)],
            "area": float(area),
            "iscrowd": 0,
            "category_id": 1,
        })

    img = canvas.image
    # Camera effects: contrast / brightness, a little blur and sensor noise.
    img = img * rng.uniform(0.75, 1.2) + rng.uniform(-25, 25)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    img = img + rng.normal(0, rng.uniform(0, 6), img.shape)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), anns


def categories() -> list[dict]:
    """The COCO person category with keypoint names and the 1-based skeleton, as COCO writes it."""
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO.joint_names),
        "skeleton": [[a + 1, b + 1] for a, b in COCO.skeleton],
    }]


def _write_scene(job: tuple) -> list[dict]:
    """Render and write scene ``i`` of ``seed``; returns its annotations (a worker's unit of work)."""
    img_dir, i, seed, size, people, height_range, occluders, headings, jpeg_quality = job
    rng = np.random.default_rng([int(seed), i])
    img, anns = render_scene(rng, size, people, height_range, occluders, headings)
    path = os.path.join(img_dir, f"{i:06d}.jpg")
    cv2 = import_cv2()
    if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
        raise OSError(f"cannot write {path}")
    return anns


def generate_dataset(
    out_dir: str,
    num_images: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    people: tuple[int, int] = DEFAULT_PEOPLE,
    height_range: tuple[float, float] = DEFAULT_HEIGHT_RANGE,
    occluders: tuple[int, int] = DEFAULT_OCCLUDERS,
    headings: tuple[float, float] = DEFAULT_HEADINGS,
    jpeg_quality: int = 92,
    progress: bool = False,
    workers: int = 0,
) -> str:
    """Write ``num_images`` scenes to ``out_dir/images/NNNNNN.jpg`` and their annotations to
    ``out_dir/person_keypoints.json``; returns the annotation path.

    size: (W, H) pixels. Other arguments as in :func:`render_scene`. Image ``i`` (id i + 1) depends
    only on (seed, i), so ``workers`` > 0 (processes rendering in parallel) writes the same files.
    """
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    jobs = [(img_dir, i, seed, tuple(size), tuple(people), tuple(height_range), tuple(occluders),
             tuple(headings), jpeg_quality)
            for i in range(num_images)]
    images, annotations = [], []
    t0 = time.perf_counter()
    pool = multiprocessing.Pool(workers) if workers > 0 else None
    try:
        results = pool.imap(_write_scene, jobs, chunksize=8) if pool else map(_write_scene, jobs)
        for i, anns in enumerate(results):
            image_id = i + 1
            images.append({"id": image_id, "file_name": f"{i:06d}.jpg", "width": int(size[0]),
                           "height": int(size[1])})
            for a in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
            if progress and (i + 1) % 200 == 0:
                print(f"{i + 1}/{num_images} images, {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
    ann_path = os.path.join(out_dir, "person_keypoints.json")
    data = {
        "info": {"description": "higherhrnet_trt generated scenes (synthetic figures, not COCO)",
                 "seed": int(seed), "size": [int(size[0]), int(size[1])], "people": list(people),
                 "height_range": list(height_range), "occluders": list(occluders),
                 "headings": list(headings)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories(),
    }
    with open(ann_path, "w", encoding="utf-8") as f:
        json.dump(data, f)
    return ann_path


#: The recipe of runtime/assets/sample.jpg (the README demo image): 4 people at different scales,
#: one truncated by the border, within the default distribution (which the demo network is trained on).
SAMPLE_RECIPE = dict(seed=(2024, 15), size=(640, 480), people=(4, 4), height_range=(0.4, 0.95),
                     occluders=(0, 1), jpeg_quality=85)


def write_sample(path: str) -> list[dict]:
    """Write the bundled demo image (``SAMPLE_RECIPE``) to ``path``; returns its annotations."""
    cv2 = import_cv2()
    r = SAMPLE_RECIPE
    img, anns = render_scene(np.random.default_rng(list(r["seed"])), r["size"], r["people"],
                             r["height_range"], r["occluders"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, r["jpeg_quality"]]):
        raise OSError(f"cannot write {path}")
    return anns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m higherhrnet_trt.benchmarks.scenes",
        description="Generate multi-person scenes with COCO keypoint annotations (synthetic figures).",
    )
    ap.add_argument("--out", help="output folder (images/ and person_keypoints.json)")
    ap.add_argument("--sample", metavar="JPG", help="only write the bundled demo image (SAMPLE_RECIPE) there")
    ap.add_argument("--num", type=int, default=100, help="number of images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--min-people", type=int, default=DEFAULT_PEOPLE[0], help="fewest figures per image")
    ap.add_argument("--max-people", type=int, default=DEFAULT_PEOPLE[1], help="most figures per image")
    ap.add_argument("--heights", type=float, nargs=2, default=DEFAULT_HEIGHT_RANGE, metavar=("MIN", "MAX"),
                    help="standing height of a figure as a fraction of the image height (log-uniform)")
    ap.add_argument("--occluders", type=int, nargs=2, default=DEFAULT_OCCLUDERS, metavar=("MIN", "MAX"),
                    help="foreground objects per image")
    ap.add_argument("--headings", type=float, nargs=2, default=DEFAULT_HEADINGS, metavar=("MIN", "MAX"),
                    help="figure headings in degrees (0 faces the camera, 180 shows the back; 0 360: any)")
    ap.add_argument("--quality", type=int, default=92, help="JPEG quality")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes rendering in parallel (0: this one); the files are the same")
    args = ap.parse_args(argv)
    if args.sample:
        anns = write_sample(args.sample)
        print(f"wrote {args.sample} ({len(anns)} people)")
        return 0
    if not args.out:
        ap.error("--out is required (or --sample)")
    if args.workers < 0:
        ap.error("--workers must be 0 (this process) or more")
    if args.num < 1 or args.min_people < 0 or args.max_people < max(args.min_people, 1):
        ap.error("need --num >= 1 and 0 <= --min-people <= --max-people, --max-people >= 1")
    if not 0 < args.heights[0] <= args.heights[1]:
        ap.error("--heights MIN MAX: need 0 < MIN <= MAX (fractions of the image height)")
    if not 0 <= args.occluders[0] <= args.occluders[1]:
        ap.error("--occluders MIN MAX: need 0 <= MIN <= MAX")
    if not args.headings[0] <= args.headings[1]:
        ap.error("--headings MIN MAX: need MIN <= MAX (degrees; 0 faces the camera)")
    t0 = time.perf_counter()
    path = generate_dataset(args.out, args.num, args.seed, (args.width, args.height),
                            (args.min_people, args.max_people), tuple(args.heights), tuple(args.occluders),
                            tuple(args.headings), jpeg_quality=args.quality,
                            progress=True, workers=args.workers)
    print(f"wrote {args.num} images and {path} in {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
