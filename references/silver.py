"""Silver (teacher-labelled) real-people sets for the demo network, from pictures this machine has.

Run with a Python that has ``mediapipe==0.10.14`` (the teacher; Apache-2.0, its pose models ship
inside the wheel) and NumPy 1.x, in a venv of its own, never the product's::

    python3.11 -m venv /work/mpvenv && /work/mpvenv/bin/pip install mediapipe==0.10.14 "numpy<2" scikit-image
    /work/mpvenv/bin/python references/silver.py --out /work/data/silver

The labels are the teacher's guesses, not ground truth ("silver"): MediaPipe Pose (model_complexity
1, the only one that runs offline) on one person per call. Sources, all from Debian packages or
scikit-image (no downloads): OpenCV's ``vtest.avi`` (opencv-doc; a static camera, 795 frames of
pedestrians 50-150 px tall), ``messi5.jpg``, ``basketball1.png``, ``basketball2.png`` and
scikit-image's ``astronaut.png`` and ``camera.png``.

Split (by source, so no held-out person is ever seen in training): vtest frames below
``HOLDOUT_FRAME`` (the last 20 % are held out) and the photos not in ``HOLDOUT_PHOTOS`` train; the
rest is the held-out real set. Composites paste the training people, cut out with the teacher's
segmentation mask, onto backgrounds at many scales, several per image, overlapping.

Per person: HOG people boxes (vtest, photos) or the whole photo -> a square crop around the box,
upscaled to ``TEACHER_SIDE`` -> MediaPipe Pose -> the 17 COCO joints (MediaPipe indices in
``MP_TO_COCO``) with v = 2 where MediaPipe's visibility >= 0.5, v = 1 for 0.3-0.5, else unlabelled.
Kept when at least ``MIN_JOINTS`` joints are v = 2, the landmarks sit inside the box and span at
least half its height. Moving pixels that no kept person explains (vtest: difference to the median
frame) become ``iscrowd`` regions: left out of the training loss and ignored by the COCO evaluation.

Writes COCO keypoint files: OUT/{train,val,composite}/person_keypoints.json + images/, and
OUT/contact_{train,val}.jpg, sheets of drawn labels to look at. Image records may carry ``zoom``:
the network-input pixels per image pixel at which the trainer shows the image (augmentation
multiplies it), so vtest's small people are trained at the scale the runtime sees them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# A script for MediaPipe's own venv, where higherhrnet_trt is not installed (so no core.lazy):
# mediapipe, its teacher, is imported at load.
import cv2
import mediapipe as mp
import numpy as np

DATA = "/usr/share/doc/opencv-doc/examples/data"
HOLDOUT_FRAME = 636  # 795 frames: the last 20 % are held out
HOLDOUT_PHOTOS = ("messi5.jpg", "basketball1.png")
TRAIN_PHOTOS = ("basketball2.png", "astronaut.png", "camera.png")
#: COCO's 17 joints in MediaPipe Pose's 33 landmarks (nose, eyes, ears, shoulders ... ankles).
MP_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
COCO_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
            (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
TEACHER_SIDE = 256
MIN_JOINTS = 8
VTEST_ZOOM = 0.6  # network-input pixels per vtest pixel for training (768x576 -> 461x346)
#: Background pictures without people (opencv-doc) for the composites, besides vtest's empty scene.
BACKGROUNDS = ("home.jpg", "building.jpg", "aero1.jpg", "aero3.jpg", "fruits.jpg", "board.jpg",
               "graf1.png", "stuff.jpg", "leuvenA.jpg", "leuvenB.jpg", "box_in_scene.png", "baboon.jpg",
               "starry_night.jpg", "left01.jpg", "orange.jpg", "apple.jpg", "butterfly.jpg",
               "smarties.png", "rubberwhale1.png", "aloeL.jpg", "pic1.png", "pic3.png", "lena.jpg")


class Teacher:
    """MediaPipe Pose on one square crop at a time (one person per call)."""

    def __init__(self):
        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                           enable_segmentation=True, min_detection_confidence=0.3)

    def label(self, image: np.ndarray, box: tuple[float, float, float, float], pad: float = 1.4):
        """box: x, y, w, h in image pixels. Returns (keypoints (17, 3) x, y, v in image pixels with the
        corner origin, mask (H, W) bool of the person in the image) or None."""
        x, y, w, h = box
        side = max(w, h) * pad
        x0, y0 = x + w / 2 - side / 2, y + h / 2 - side / 2
        k = TEACHER_SIDE / side
        m = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], np.float32)
        crop = cv2.warpAffine(image, m, (TEACHER_SIDE, TEACHER_SIDE), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)
        r = self.pose.process(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        if r.pose_landmarks is None:
            return None
        lm = r.pose_landmarks.landmark
        kp = np.zeros((17, 3), np.float32)
        for j, i in enumerate(MP_TO_COCO):
            kp[j] = (x0 + lm[i].x * side, y0 + lm[i].y * side, lm[i].visibility)
        hh, ww = image.shape[:2]
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < ww) & (kp[:, 1] >= 0) & (kp[:, 1] < hh)
        v = np.where(kp[:, 2] >= 0.5, 2, np.where(kp[:, 2] >= 0.3, 1, 0)) * inside
        kp[:, 2] = v
        kp[v == 0, :2] = 0
        if (v == 2).sum() < MIN_JOINTS:
            return None
        pts = kp[v > 0, :2]
        cx, cy = pts.mean(0)
        span = pts[:, 1].max() - pts[:, 1].min()
        if not (x - 0.1 * w <= cx <= x + 1.1 * w and y - 0.1 * h <= cy <= y + 1.1 * h) or span < 0.5 * h:
            return None
        mask = np.zeros((hh, ww), bool)
        if r.segmentation_mask is not None:
            inv = cv2.invertAffineTransform(m)
            seg = cv2.warpAffine(r.segmentation_mask.astype(np.float32), inv, (ww, hh),
                                 flags=cv2.INTER_LINEAR, borderValue=0)
            mask = seg > 0.5
        return kp, mask


def oks(a: np.ndarray, b: np.ndarray, area: float) -> float:
    """COCO OKS of two (17, 3) keypoint sets over the joints both label."""
    sig = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89,
                    .89]) / 10
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    if not both.any():
        return 0.0
    d2 = ((a[:, :2] - b[:, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * max(area, 1.0) * (2 * sig) ** 2))[both].mean())


def person_record(kp: np.ndarray, mask: np.ndarray) -> dict:
    pts = kp[kp[:, 2] > 0, :2]
    if mask.any():
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = min(xs.min(), pts[:, 0].min()), min(ys.min(), pts[:, 1].min()), \
            max(xs.max() + 1, pts[:, 0].max()), max(ys.max() + 1, pts[:, 1].max())
        area = float(mask.sum())
    else:
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        area = float((x1 - x0) * (y1 - y0)) * 0.6
    return {"keypoints": [round(float(v), 2) for v in kp.ravel()], "num_keypoints": int((kp[:, 2] > 0).sum()),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)], "area": area, "iscrowd": 0,
            "category_id": 1}


def crowd_record(box) -> dict:
    x, y, w, h = (float(v) for v in box)
    return {"keypoints": [0] * 51, "num_keypoints": 0, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 1,
            "category_id": 1}


class HogPeople:
    def __init__(self):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def boxes(self, image: np.ndarray, upscale: float, min_score: float = 1.0):
        big = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        rects, scores = self.hog.detectMultiScale(big, winStride=(8, 8), padding=(16, 16), scale=1.05)
        out = [(tuple(r / upscale), float(s)) for r, s in zip(rects, np.ravel(scores)) if s >= min_score]
        return sorted(out, key=lambda t: -t[1])


def _hog_box_to_person(box):
    """HOG's 64x128 window holds a person of about 0.75 of its height: tighten it."""
    x, y, w, h = box
    return (x + 0.15 * w, y + 0.1 * h, 0.7 * w, 0.8 * h)


def label_image(image: np.ndarray, teacher: Teacher, hog: HogPeople, upscale: float, whole: bool,
                motion: np.ndarray | None = None):
    """People of one image: list of (keypoints (17, 3), mask) and crowd boxes."""
    people: list[tuple[np.ndarray, np.ndarray]] = []
    candidates = []
    if whole:
        h, w = image.shape[:2]
        candidates.append((0.0, 0.0, float(w), float(h)))
    candidates += [_hog_box_to_person(b) for b, _ in hog.boxes(image, upscale)]
    for box in candidates:
        if motion is not None:
            x, y, w, h = (int(round(v)) for v in box)
            if motion[max(y, 0):y + h, max(x, 0):x + w].mean() < 0.15:
                continue  # HOG fires on static clutter; vtest's people move
        got = teacher.label(image, box, pad=1.0 if box[2] >= image.shape[1] - 1 else 1.4)
        if got is None:
            continue
        kp, mask = got
        area = person_record(kp, mask)["area"]
        if any(oks(kp, q, area) > 0.5 for q, _ in people):
            continue
        people.append((kp, mask))
    crowds = []
    if motion is not None:
        explained = np.zeros(motion.shape, np.uint8)
        for kp, mask in people:
            explained |= mask.astype(np.uint8)
            pts = kp[kp[:, 2] > 0, :2].astype(np.int32)
            cv2.fillConvexPoly(explained, cv2.convexHull(pts), 1)
        explained = cv2.dilate(explained, np.ones((9, 9), np.uint8))
        left = (motion & (explained == 0)).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(left)
        crowds = [tuple(s[:4]) for s in stats[1:] if s[4] >= 120]
    return people, crowds


def vtest_frames():
    cap = cv2.VideoCapture(os.path.join(DATA, "vtest.avi"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    return frames


def motion_masks(frames: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    bg = np.median(np.stack(frames[::8]), 0).astype(np.uint8)
    masks = []
    for f in frames:
        m = (cv2.absdiff(f, bg).max(2) > 30).astype(np.uint8)
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        masks.append(cv2.dilate(m, np.ones((5, 5), np.uint8)).astype(bool))
    return bg, masks


def photo(name: str) -> np.ndarray:
    if name in ("astronaut.png", "camera.png"):
        from skimage import data as skdata

        im = getattr(skdata, name.split(".")[0])()
        return cv2.cvtColor(im, cv2.COLOR_GRAY2BGR if im.ndim == 2 else cv2.COLOR_RGB2BGR)
    im = cv2.imread(os.path.join(DATA, name), cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(f"{name} not found in {DATA}: apt-get install opencv-doc")
    return im


class CocoWriter:
    def __init__(self, out: str):
        self.out = out
        os.makedirs(os.path.join(out, "images"), exist_ok=True)
        self.images, self.anns = [], []

    def add(self, image: np.ndarray, name: str, records: list[dict], **extra) -> None:
        iid = len(self.images) + 1
        cv2.imwrite(os.path.join(self.out, "images", name), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        self.images.append({"id": iid, "file_name": name, "width": image.shape[1], "height": image.shape[0],
                            **extra})
        for r in records:
            self.anns.append({"id": len(self.anns) + 1, "image_id": iid, **r})

    def close(self, note: str) -> None:
        cats = [{"id": 1, "name": "person", "supercategory": "person",
                 "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                               "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                               "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                               "right_ankle"],
                 "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}]
        with open(os.path.join(self.out, "person_keypoints.json"), "w", encoding="utf-8") as f:
            json.dump({"info": {"description": note}, "images": self.images, "annotations": self.anns,
                       "categories": cats}, f)


def draw(image: np.ndarray, records: list[dict]) -> np.ndarray:
    vis = image.copy()
    for r in records:
        x, y, w, h = (int(v) for v in r["bbox"])
        if r["iscrowd"]:
            cv2.rectangle(vis, (x, y), (x + w, y + h), (0, 0, 255), 1)
            continue
        kp = np.asarray(r["keypoints"]).reshape(17, 3)
        for a, b in SKELETON:
            if kp[a, 2] > 0 and kp[b, 2] > 0:
                cv2.line(vis, tuple(kp[a, :2].astype(int)), tuple(kp[b, :2].astype(int)), (0, 255, 255), 1)
        for j in range(17):
            if kp[j, 2] > 0:
                left = j in (1, 3, 5, 7, 9, 11, 13, 15)
                c = (0, 255, 0) if left else (255, 0, 255) if j else (255, 255, 255)
                cv2.circle(vis, tuple(kp[j, :2].astype(int)), 2, c, -1)
    return vis


def contact_sheet(tiles: list[np.ndarray], path: str, width: int = 1600) -> None:
    tile_w = width // 4
    rows = []
    for i in range(0, len(tiles), 4):
        row = [cv2.resize(t, (tile_w, int(t.shape[0] * tile_w / t.shape[1]))) for t in tiles[i:i + 4]]
        hmax = max(t.shape[0] for t in row)
        row = [cv2.copyMakeBorder(t, 0, hmax - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in row]
        row += [np.zeros((hmax, tile_w, 3), np.uint8)] * (4 - len(row))
        rows.append(np.concatenate(row, 1))
    cv2.imwrite(path, np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 85])


def cutout(image: np.ndarray, kp: np.ndarray, mask: np.ndarray):
    """(BGR crop, alpha (h, w) float32, keypoints in crop pixels) of one labelled person, or None."""
    if mask.sum() < 200:
        return None
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    pts = kp[kp[:, 2] > 0, :2]
    if (pts[:, 0] < x0 - 3).any() or (pts[:, 0] > x1 + 3).any() or (pts[:, 1] < y0 - 3).any() \
            or (pts[:, 1] > y1 + 3).any():
        return None  # joints outside the mask: a cut person would lose them
    alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (3, 3), 0)
    k = kp.copy()
    k[k[:, 2] > 0, 0] -= x0
    k[k[:, 2] > 0, 1] -= y0
    return image[y0:y1, x0:x1].copy(), alpha, k


def composite(rng: np.random.Generator, backgrounds: list[np.ndarray], cutouts: list, size: int = 512):
    """One image of 2-7 pasted people (later ones in front) on a random background crop."""
    bg = backgrounds[rng.integers(len(backgrounds))]
    s = rng.uniform(size / min(bg.shape[:2]), 2.0 * size / min(bg.shape[:2]))
    big = cv2.resize(bg, None, fx=s, fy=s)
    oy, ox = rng.integers(0, big.shape[0] - size + 1), rng.integers(0, big.shape[1] - size + 1)
    canvas = big[oy:oy + size, ox:ox + size].astype(np.float32)
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
    people = []
    for _ in range(rng.integers(2, 8)):
        crop, alpha, kp = cutouts[rng.integers(len(cutouts))]
        height = np.exp(rng.uniform(np.log(50), np.log(0.9 * size)))
        k = height / crop.shape[0]
        if crop.shape[1] * k > size * 0.9:
            continue
        c = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_LINEAR).astype(np.float32)
        a = cv2.resize(alpha, (c.shape[1], c.shape[0]))
        kk = kp.copy()
        kk[kk[:, 2] > 0, :2] *= k
        if rng.random() < 0.5:
            c, a = c[:, ::-1], a[:, ::-1]
            vis = kk[:, 2] > 0
            kk[vis, 0] = c.shape[1] - kk[vis, 0]
            kk = kk[list(COCO_FLIP)]
        c = np.clip(c * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25), 0, 255)
        x = int(rng.integers(-c.shape[1] // 3, size - 2 * c.shape[1] // 3))
        y = int(rng.integers(-c.shape[0] // 4, size - 3 * c.shape[0] // 4))
        xs0, ys0, xs1, ys1 = max(x, 0), max(y, 0), min(x + c.shape[1], size), min(y + c.shape[0], size)
        if xs1 - xs0 < 8 or ys1 - ys0 < 8:
            continue
        sub_a = a[ys0 - y:ys1 - y, xs0 - x:xs1 - x, None]
        pasted = c[ys0 - y:ys1 - y, xs0 - x:xs1 - x]
        canvas[ys0:ys1, xs0:xs1] = canvas[ys0:ys1, xs0:xs1] * (1 - sub_a) + pasted * sub_a
        full = np.zeros((size, size), bool)
        full[ys0:ys1, xs0:xs1] = a[ys0 - y:ys1 - y, xs0 - x:xs1 - x] > 0.5
        kk[kk[:, 2] > 0, 0] += x
        kk[kk[:, 2] > 0, 1] += y
        for p in people:  # the new person hides what is behind
            pk, pm = p
            pm &= ~full
            for j in range(17):
                if pk[j, 2] > 0 and full[min(int(pk[j, 1]), size - 1), min(int(pk[j, 0]), size - 1)]:
                    pk[j, 2] = 1
        inside = (kk[:, 0] >= 0) & (kk[:, 0] < size) & (kk[:, 1] >= 0) & (kk[:, 1] < size)
        kk[~inside] = 0
        people.append((kk, full))
    records = [person_record(kp, m) for kp, m in people if (kp[:, 2] > 0).sum() >= 4 and m.sum() > 30]
    image = canvas.astype(np.uint8)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    return image, records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (train/, val/, composite/, contact sheets)")
    ap.add_argument("--frame-step", type=int, default=2, help="label every Nth vtest frame")
    ap.add_argument("--composites", type=int, default=2000, help="composite images to write")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    teacher, hog = Teacher(), HogPeople()
    train, val = CocoWriter(os.path.join(args.out, "train")), CocoWriter(os.path.join(args.out, "val"))
    cutouts, sheets = [], {"train": [], "val": []}
    frames = vtest_frames()
    if not frames:
        print(f"vtest.avi not found in {DATA}: apt-get install opencv-doc", file=sys.stderr)
        return 1
    bg, motion = motion_masks(frames)
    counts = {"train": [0, 0], "val": [0, 0]}
    for i in range(0, len(frames), args.frame_step):
        split = "val" if i >= HOLDOUT_FRAME else "train"
        people, crowds = label_image(frames[i], teacher, hog, upscale=1.5, whole=False, motion=motion[i])
        records = [person_record(kp, m) for kp, m in people] + [crowd_record(b) for b in crowds]
        w = val if split == "val" else train
        w.add(frames[i], f"vtest_{i:04d}.jpg", records, **({} if split == "val" else {"zoom": VTEST_ZOOM}))
        counts[split][0] += len(people)
        counts[split][1] += len(crowds)
        if split == "train":
            cutouts += [c for c in (cutout(frames[i], kp, m) for kp, m in people) if c is not None]
        if i % 40 == 0 or (split == "val" and i % 20 == 0):
            sheets[split].append(draw(frames[i], records))
        if i % 50 == 0:
            print(f"frame {i}: {len(people)} people, {len(crowds)} unexplained regions "
                  f"({time.time() - t0:.0f}s)", flush=True)
    for name in TRAIN_PHOTOS + HOLDOUT_PHOTOS:
        split = "val" if name in HOLDOUT_PHOTOS else "train"
        im = photo(name)
        people, _ = label_image(im, teacher, hog, upscale=2.0, whole=True)
        records = [person_record(kp, m) for kp, m in people]
        (val if split == "val" else train).add(im, os.path.splitext(name)[0] + ".jpg", records)
        counts[split][0] += len(people)
        sheets[split].append(draw(im, records))
        if split == "train":
            cutouts += [c for c in (cutout(im, kp, m) for kp, m in people) if c is not None]
        print(f"{name}: {len(people)} people", flush=True)
    note = ("SILVER labels: MediaPipe Pose 0.10.14 (model_complexity 1) predictions, not ground truth; "
            "iscrowd boxes are moving pixels no labelled person explains")
    train.close(note)
    val.close(note)
    for split, tiles in sheets.items():
        contact_sheet(tiles, os.path.join(args.out, f"contact_{split}.jpg"))
    print(f"train: {len(train.images)} images, {counts['train'][0]} people, "
          f"{counts['train'][1]} ignored regions;"
          f" val: {len(val.images)} images, {counts['val'][0]} people, {counts['val'][1]} ignored regions;"
          f" {len(cutouts)} cut-outs ({time.time() - t0:.0f}s)", flush=True)
    backgrounds = [bg] * 6 + [im for im in (cv2.imread(os.path.join(DATA, n)) for n in BACKGROUNDS)
                              if im is not None]
    comp = CocoWriter(os.path.join(args.out, "composite"))
    rng = np.random.default_rng(args.seed)
    tiles = []
    for n in range(args.composites):
        image, records = composite(rng, backgrounds, cutouts)
        comp.add(image, f"comp_{n:05d}.jpg", records)
        if n < 8:
            tiles.append(draw(image, records))
    comp.close(note + "; composites of the training people cut out with MediaPipe's segmentation mask")
    contact_sheet(tiles, os.path.join(args.out, "contact_composite.jpg"))
    print(f"composite: {args.composites} images ({time.time() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
