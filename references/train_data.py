"""Training targets (heatmaps, joint indices for the tag loss) and the scene dataset with its
augmentation, for references/train.py."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from higherhrnet_trt.core.keypoints import keypoint_set
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import IMAGENET_MEAN, IMAGENET_STD
from higherhrnet_trt.core.preprocess import normalize

from train_options import TrainOptions

cv2 = lazy_import("cv2")

# --------------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------------


def gaussian_patch(sigma: float) -> np.ndarray:
    """(6 sigma + 3)^2 float32 gaussian with its peak 1 at the centre index 3 sigma + 1."""
    size = int(6 * sigma + 3)
    x = np.arange(size, dtype=np.float32)
    c = 3 * sigma + 1
    return np.exp(-((x[None] - c) ** 2 + (x[:, None] - c) ** 2) / (2 * sigma**2)).astype(np.float32)


def render_heatmaps(joints: np.ndarray, res: int, sigma: float = 2.0) -> np.ndarray:
    """Official ``HeatmapGenerator``: (J, res, res) float32 in [0, 1].

    joints: (P, J, 3) [x, y, v] in output pixels of a res x res map. Each joint with v > 0 whose
    integer part lies inside the map puts a gaussian peak (max-combined) at that integer pixel.
    """
    num_joints = joints.shape[1]
    hms = np.zeros((num_joints, res, res), np.float32)
    g = gaussian_patch(sigma)
    half = int(3 * sigma + 1)
    for person in joints:
        for j, (x, y, v) in enumerate(person):
            if v <= 0:
                continue
            xi, yi = int(x), int(y)
            if x < 0 or y < 0 or xi >= res or yi >= res:
                continue
            x0, y0 = xi - half, yi - half
            x1, y1 = x0 + g.shape[1], y0 + g.shape[0]
            cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(res, x1), min(res, y1)
            patch = g[cy0 - y0: cy1 - y0, cx0 - x0: cx1 - x0]
            np.maximum(hms[j, cy0:cy1, cx0:cx1], patch, out=hms[j, cy0:cy1, cx0:cx1])
    return hms


def joint_indices(joints: np.ndarray, res: int, max_people: int) -> np.ndarray:
    """Official ``JointsGenerator`` (tag per joint): (max_people, J, 2) int64 [flat index, valid].

    The flat index is ``j * res^2 + y * res + x`` into the (J, res, res) tag maps of the stride-4
    output; joints with v = 0 or outside the map are left out (valid 0).
    """
    num_joints = joints.shape[1]
    out = np.zeros((max_people, num_joints, 2), np.int64)
    for p, person in enumerate(joints[:max_people]):
        tot = 0
        for j, (x, y, v) in enumerate(person):
            xi, yi = int(x), int(y)
            if v > 0 and x >= 0 and y >= 0 and xi < res and yi < res:
                out[p, tot] = (j * res * res + yi * res + xi, 1)
                tot += 1
    return out


# --------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------


def _network_input(bgr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 ImageNet-normalised RGB, as the runtime makes it."""
    return torch.from_numpy(normalize(bgr, IMAGENET_MEAN, IMAGENET_STD, bgr=True)[0])


def split_repeat(spec: str) -> tuple[str, int]:
    """"FILE.json@3" -> ("FILE.json", 3): a training file whose images count three times."""
    path, sep, count = spec.rpartition("@")
    if sep and count.isdigit() and int(count) > 0:
        return path, int(count)
    return spec, 1


class SceneDataset(torch.utils.data.Dataset):
    """COCO-format keypoint images -> (image, targets), with the official augmentation.

    Item: dict with ``image`` (3, S, S) float32 ImageNet-normalised RGB, ``heatmaps_4`` (J, S/4, S/4),
    ``heatmaps_2`` (J, S/2, S/2), ``mask_4`` (S/4, S/4), ``mask_2`` (S/2, S/2) float32 and
    ``joints`` (max_people, J, 2) int64 (see :func:`joint_indices`); S = options.crop_size or
    options.input_size.
    With ``augment`` False the image is only scaled so its longer side is S (centred).
    """

    def __init__(self, ann_file: str | Sequence[str], images_dir: str | None = None,
                 options: TrainOptions | None = None, augment: bool = True, dataset: str = "coco",
                 seed: int = 0):
        self.images: list[dict] = []
        self.joints: dict[int, np.ndarray] = {}
        self.ignore: dict[int, list[list[float]]] = defaultdict(list)
        for path, repeat in map(split_repeat, [ann_file] if isinstance(ann_file, str) else ann_file):
            self._load(path, images_dir, repeat)
        self.opt = options or TrainOptions()
        self.augment = augment
        self.kps = keypoint_set(dataset)
        self.flip_index = np.asarray(self.kps.flip_index)
        self.rng = np.random.default_rng(seed)
        self.empty = np.zeros((0, self.kps.num_joints, 3), np.float32)

    def _load(self, ann_file: str, images_dir: str | None, repeat: int) -> None:
        """Append one COCO file's images (``repeat`` times each) under fresh ids: records get
        ``path``; people go to ``joints``, crowd regions (and people without joints) to ``ignore``."""
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
        folder = images_dir or os.path.join(os.path.dirname(os.path.abspath(ann_file)), "images")
        base = len(self.images)
        new_id = {}
        for n, rec in enumerate(sorted(data["images"], key=lambda r: r["id"])):
            new_id[rec["id"]] = base + n
            self.images.append({**rec, "id": base + n, "path": os.path.join(folder, rec["file_name"])})
        by_image = defaultdict(list)
        for a in data["annotations"]:
            if a.get("iscrowd", 0) or a.get("num_keypoints", 1) == 0:
                if "bbox" in a:
                    self.ignore[new_id[a["image_id"]]].append(a["bbox"])
            else:
                by_image[new_id[a["image_id"]]].append(np.asarray(a["keypoints"], np.float32).reshape(-1, 3))
        self.joints.update({k: np.stack(v) for k, v in by_image.items()})
        self.images += self.images[base:] * (repeat - 1)

    def __len__(self) -> int:
        return len(self.images)

    def _matrix(self, w: int, h: int, zoom: float | None = None) -> tuple[np.ndarray, bool]:
        """2x3 image -> input matrix and whether to flip (flip happens before the matrix).

        zoom: input pixels per image pixel before augmentation (None: the longer side fills the
        input); a zoomed image larger than the crop is seen through a random window."""
        s = self.opt.input_size
        out = self.opt.crop_size or s
        fixed_zoom = zoom is not None
        zoom = zoom if fixed_zoom else s / max(w, h)
        angle, tx, ty, flip = 0.0, 0.0, 0.0, False
        if self.augment:
            zoom *= self.rng.uniform(*self.opt.scale_range)
            angle = np.radians(self.rng.uniform(-self.opt.max_rotation, self.opt.max_rotation))
            tx, ty = self.rng.uniform(-self.opt.max_translate, self.opt.max_translate, 2)
            flip = bool(self.rng.random() < self.opt.flip)
        # A crop window anywhere over the scaled image (centred when it is as large as the image).
        span = max(0.0, (max(w, h) * zoom - out) / 2)
        # Whole-pixel offsets: a crop moves the window, it does not resample.
        ox, oy = np.round(self.rng.uniform(-span, span, 2)) if out < s or (fixed_zoom and self.augment) \
            else (0.0, 0.0)
        c, si = math.cos(angle) * zoom, math.sin(angle) * zoom
        a = np.array([[c, -si], [si, c]])
        t = np.array([out / 2 + tx - ox, out / 2 + ty - oy]) - a @ np.array([w / 2, h / 2])
        return np.concatenate([a, t[:, None]], 1), flip

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rec = self.images[i]
        img = cv2.imread(rec["path"], cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read {rec['path']}")
        h, w = img.shape[:2]
        joints = self.joints.get(rec["id"], self.empty).copy()
        m, flip = self._matrix(w, h, rec.get("zoom"))
        # The loss sees the image's pixels less the regions of people nobody labelled.
        ones = np.ones((h, w), np.float32)
        for bx, by, bw, bh in self.ignore.get(rec["id"], ()):
            ones[max(int(by), 0):int(math.ceil(by + bh)), max(int(bx), 0):int(math.ceil(bx + bw))] = 0
        if flip:
            img = img[:, ::-1]
            ones = np.ascontiguousarray(ones[:, ::-1])
            # Corner origin: pixel i -> w - 1 - i, so a coordinate x -> w - x.
            joints[:, :, 0] = np.where(joints[:, :, 2] > 0, w - joints[:, :, 0], 0)
            joints = joints[:, self.flip_index]
        s = self.opt.crop_size or self.opt.input_size
        warped = cv2.warpAffine(np.ascontiguousarray(img), m, (s, s), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        item = {"image": _network_input(warped)}
        for stride in (4, 2):
            res = s // stride
            mr = m * (res / s)
            pts = joints.copy()
            if len(pts):
                xy = pts[:, :, :2] @ mr[:, :2].T + mr[:, 2]
                pts[:, :, :2] = xy
            item[f"heatmaps_{stride}"] = torch.from_numpy(render_heatmaps(pts, res, self.opt.sigma))
            mask = cv2.warpAffine(ones, mr, (res, res), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            item[f"mask_{stride}"] = torch.from_numpy((mask > 0.5).astype(np.float32))
            if stride == 4:
                item["joints"] = torch.from_numpy(joint_indices(pts, res, self.opt.max_people))
        return item
