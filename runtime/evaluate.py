"""Keypoint AP on COCO and CrowdPose (OKS-based, pycocotools).

Split so that any predictor can be measured: :func:`run_evaluation` reads the images named by the
annotation file, asks ``predict(image_bgr, image_info) -> Poses`` for each, writes COCO results and
scores them with :func:`keypoint_stats`. :func:`evaluate_model` / :func:`evaluate_pipeline` plug
a :class:`Pipeline` in;
:func:`oracle_predictor` plugs in the decoder fed with maps rendered from the ground truth (a
perfect network), which must score AP 1.0: the test suite's proof that decoding, geometry, results
and scoring fit together.

COCO: the standard pycocotools protocol, the one the official HigherHRNet reports (AP, AP50, AP75,
APM, APL, AR, AR50, AR75, ARM, ARL; at most 20 people per image count).

CrowdPose: its reference tool (crowdposetools, or xtcocotools) is not used: crowdposetools is not on
PyPI, and xtcocotools' wheels are built against NumPy 1 and fail to import under NumPy 2. Its
protocol is reproduced on pycocotools instead: CrowdPose's 14 OKS sigmas, object area = 0.53 x bbox
area (crowdposetools ignores the annotations' area), at most 20 people per image; AP easy / medium /
hard are the mean precision over images with crowdIndex < 0.2, < 0.8 and the rest, as its
``summarize`` computes them. This re-statement has not been compared with crowdposetools itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import shown_path
from higherhrnet_trt.core.geometry import (
    FrameGeometry,
    apply_affine,
    get_affine_transform,
    get_multi_scale_size,
)
from higherhrnet_trt.core.image_io import try_read_image
from higherhrnet_trt.core.keypoints import KeypointSet
from higherhrnet_trt.decode import DecodeConfig

from .pipeline import Pipeline
from .poses import maps_to_poses
from .results import CocoResultsWriter, poses_to_coco
from .sources import import_cv2

log = logging.getLogger("higherhrnet_trt.runtime")

COCO_STATS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
CROWDPOSE_STATS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
#: crowdposetools' split of images by crowdIndex (the values its summarize() passes).
CROWD_INDEX_SPLIT = (0.2, 0.8)
#: crowdposetools measures OKS against this fraction of the ground-truth box area.
CROWDPOSE_AREA_FACTOR = 0.53

#: predict(image (H, W, 3) uint8 BGR, COCO image record) -> Poses
Predictor = Callable[[np.ndarray, dict], object]


def _pycocotools():
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        raise UserError("pycocotools is not installed: pip install pycocotools "
                        "(or pip install 'higherhrnet-trt[eval]')") from e
    return COCO, COCOeval


@contextlib.contextmanager
def _quiet():
    """pycocotools prints progress to stdout; keep the API's output clean."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclass
class EvalResult:
    """Outcome of an evaluation.

    dataset: "coco" or "crowdpose". stats: metric name -> value (0..1; -1 where the images hold no
    ground truth for it, NaN where it could not be computed). num_images: images predicted and
    scored. skipped: image paths that could not be read (left out of the score). num_people:
    people written. results_path: the results JSON, if written. notes: caveats to show the user.
    """

    dataset: str
    stats: dict[str, float]
    num_images: int
    skipped: list[str] = field(default_factory=list)
    num_people: int = 0
    results_path: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the terminal: the metric table, then counts and notes."""
        names = list(self.stats)
        head = " | ".join(f"{n:>9}" for n in names)
        vals = " | ".join(f"{self.stats[n]:>9.4f}" for n in names)
        lines = [f"{self.dataset} keypoints, {self.num_images} images, {self.num_people} people",
                 head, vals]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable images (first: {self.skipped[0]}); "
                         "they are not part of the score")
        if self.results_path:
            lines.append(f"results: {self.results_path}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def load_ground_truth(ann_file: str, keypoints: KeypointSet):
    """Load a COCO-format keypoint annotation file and check it matches ``keypoints``.

    Returns a pycocotools COCO object. For CrowdPose, annotation areas are set to 0.53 x bbox area,
    the object size crowdposetools uses for OKS. Raises UserError on a missing file, a file without
    keypoints, or a joint count that differs from the model's.
    """
    COCO, _ = _pycocotools()
    if not os.path.isfile(ann_file):
        raise UserError(f"annotation file not found: {ann_file}")
    try:
        with open(ann_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read annotation file {ann_file}: {e}") from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise UserError(f"{ann_file} is not a COCO annotation file (no 'images' / 'annotations')")
    cats = [c for c in data.get("categories", []) if c.get("keypoints")]
    if not cats:
        raise UserError(f"{ann_file} has no keypoint categories: use a keypoint file such as "
                        "person_keypoints_val2017.json (not instances_*.json)")
    n = len(cats[0]["keypoints"])
    if n != keypoints.num_joints:
        raise UserError(f"{ann_file} has {n} keypoints per person but the model predicts "
                        f"{keypoints.num_joints} ({keypoints.name}): use the matching annotation file")
    check_annotations(data, n, ann_file)
    for ann in data["annotations"]:
        if "num_keypoints" not in ann:  # pycocotools ignores people by it; derive it when absent
            ann["num_keypoints"] = int(np.count_nonzero(np.asarray(ann.get("keypoints", []))[2::3]))
        ann.setdefault("iscrowd", 0)
        if keypoints.name == "crowdpose" and "bbox" in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3] * CROWDPOSE_AREA_FACTOR)
        elif "area" not in ann and "bbox" in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    gt = COCO()
    gt.dataset = data
    with _quiet():
        gt.createIndex()
    return gt


def _finite_numbers(value, count: int | None = None) -> bool:
    """A list of ``count`` (any when None) finite real numbers (bools are not numbers here)."""
    if not isinstance(value, list) or (count is not None and len(value) != count):
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
               for v in value)


def check_annotations(data: dict, num_joints: int, ann_file: str) -> None:
    """UserError (one line, naming the first bad entry) unless every image has an integer id and
    a file name, and every annotation names a listed image and has 3 x num_joints finite keypoint
    values (x, y, visibility) and, where given, a finite 4-number bbox and a finite area: NaN
    ground truth would otherwise give an AP that means nothing."""
    images = data["images"]
    if not isinstance(images, list) or not isinstance(data["annotations"], list):
        raise UserError(f"{ann_file}: 'images' and 'annotations' must be lists")
    ids = set()
    for k, img in enumerate(images):
        if not isinstance(img, dict) or type(img.get("id")) is not int:
            raise UserError(f"{ann_file}: images[{k}] needs an integer 'id' (COCO image ids are "
                            f"numbers), got {img.get('id') if isinstance(img, dict) else img!r}")
        if not isinstance(img.get("file_name"), str) or not img["file_name"]:
            raise UserError(f"{ann_file}: images[{k}] (id {img['id']}) has no 'file_name'")
        ids.add(img["id"])
    for k, ann in enumerate(data["annotations"]):
        where = f"{ann_file}: annotations[{k}]"
        if not isinstance(ann, dict):
            raise UserError(f"{where} is not an object")
        if type(ann.get("image_id")) is not int or ann["image_id"] not in ids:
            raise UserError(f"{where} has image_id {ann.get('image_id')!r}, which no entry of "
                            "'images' has")
        if not _finite_numbers(ann.get("keypoints"), 3 * num_joints):
            kp = ann.get("keypoints")
            got = repr(kp) if not isinstance(kp, list) else (
                f"{len(kp)} values" if len(kp) != 3 * num_joints else "NaN/inf or non-numbers")
            raise UserError(f"{where} (image {ann['image_id']}): 'keypoints' must be {3 * num_joints} "
                            f"finite numbers (x, y, visibility for each of {num_joints} joints), got "
                            f"{got}")
        if "bbox" in ann and not _finite_numbers(ann["bbox"], 4):
            raise UserError(f"{where} (image {ann['image_id']}): 'bbox' must be 4 finite numbers "
                            f"(x, y, width, height), got {ann['bbox']!r}")
        if "area" in ann and not _finite_numbers([ann["area"]]):
            raise UserError(f"{where} (image {ann['image_id']}): 'area' must be a finite number, "
                            f"got {ann['area']!r}")


def person_category(gt) -> int:
    """Id of the (first) category that has keypoints, 1 for COCO's person."""
    for cat_id in sorted(gt.cats):
        if gt.cats[cat_id].get("keypoints"):
            return int(cat_id)
    return 1


def _evaluator(gt, dt, img_ids: Sequence[int], keypoints: KeypointSet):
    _, COCOeval = _pycocotools()
    ev = COCOeval(gt, dt, "keypoints")
    ev.params.imgIds = list(img_ids)
    ev.params.catIds = [person_category(gt)]
    ev.params.kpt_oks_sigmas = np.asarray(keypoints.sigmas, dtype=np.float64)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
    return ev


def keypoint_stats(
    gt, results: list[dict], img_ids: Sequence[int], keypoints: KeypointSet
) -> tuple[dict[str, float], list[str]]:
    """OKS keypoint metrics of ``results`` (COCO result records) on ``img_ids``.

    Returns (stats: name -> value, notes). COCO names: COCO_STATS; CrowdPose: CROWDPOSE_STATS.
    """
    names = CROWDPOSE_STATS if keypoints.name == "crowdpose" else COCO_STATS
    notes: list[str] = []
    img_set = set(int(i) for i in img_ids)
    results = [r for r in results if int(r["image_id"]) in img_set]
    if not results:
        # pycocotools cannot load an empty result list; with nothing detected AP and AR are 0.
        notes.append("no people were detected: every metric is 0")
        return {n: 0.0 for n in names}, notes
    with _quiet():
        dt = gt.loadRes(results)
    ev = _evaluator(gt, dt, img_ids, keypoints)
    with _quiet():
        ev.summarize()
    s = [float(v) for v in ev.stats]
    if keypoints.name != "crowdpose":
        stats = dict(zip(names, s[:10]))
    else:
        stats = {"AP": s[0], "AP50": s[1], "AP75": s[2], "AR": s[5], "AR50": s[6], "AR75": s[7]}
        split = crowd_index_split(gt, img_ids)
        if split is None:
            notes.append("AP easy/medium/hard need each image's 'crowdIndex' (CrowdPose annotation "
                         "files have it); not computed")
            stats.update(AP_easy=float("nan"), AP_medium=float("nan"), AP_hard=float("nan"))
        else:
            for name, ids in zip(("AP_easy", "AP_medium", "AP_hard"), split):
                if not ids:
                    stats[name] = float("nan")
                    continue
                sub = _evaluator(gt, dt, ids, keypoints)
                # crowdposetools: plain mean of precision[T, R, K, area 'all', M], -1 entries included.
                stats[name] = float(np.mean(sub.eval["precision"][:, :, :, 0, :]))
        notes.append("CrowdPose metrics computed with pycocotools following crowdposetools' "
                     "protocol (crowdposetools / xtcocotools do not install with NumPy 2)")
    if all(v == -1 for v in stats.values()):
        notes.append("the evaluated images hold no (non-crowd) people: metrics are -1")
    return stats, notes


def crowd_index_split(gt, img_ids: Sequence[int]) -> tuple[list[int], list[int], list[int]] | None:
    """(easy, medium, hard) image ids by crowdIndex, as crowdposetools splits them; None when the
    annotation file has no crowdIndex."""
    easy: list[int] = []
    medium: list[int] = []
    hard: list[int] = []
    for i in img_ids:
        ci = gt.imgs[i].get("crowdIndex")
        if ci is None:
            return None
        (easy if ci < CROWD_INDEX_SPLIT[0] else medium if ci < CROWD_INDEX_SPLIT[1] else hard).append(i)
    return easy, medium, hard


def run_evaluation(
    predict: Predictor,
    ann_file: str,
    images_dir: str,
    keypoints: KeypointSet,
    max_images: int | None = None,
    results_json: str | None = None,
    progress: bool = False,
) -> EvalResult:
    """Predict every image of an annotation file and score the results.

    predict: image (H, W, 3) uint8 BGR, COCO image record -> Poses (keypoints in image pixels).
    ann_file: COCO-format keypoint annotations (person_keypoints_val2017.json, crowdpose_val.json).
    images_dir: folder holding the images' ``file_name``s (e.g. val2017/).
    max_images: the first N images by id (all images, with or without people, as the official
        evaluation does); None = all.
    results_json: also write the COCO results there.
    Unreadable images are skipped, counted (EvalResult.skipped) and left out of the score.
    """
    import_cv2()
    gt = load_ground_truth(ann_file, keypoints)
    if not os.path.isdir(images_dir):
        raise UserError(f"image folder not found: {images_dir}")
    img_ids = sorted(gt.getImgIds())
    if max_images is not None:
        if max_images < 1:
            raise UserError(f"--max-images must be at least 1, got {max_images}")
        img_ids = img_ids[:max_images]
    if not img_ids:
        raise UserError(f"{ann_file} lists no images")
    category = person_category(gt)
    records: list[dict] = []
    skipped: list[str] = []
    done: list[int] = []
    writer = CocoResultsWriter(results_json, category) if results_json else None
    try:
        from tqdm import tqdm

        for img_id in tqdm(img_ids, desc="eval", unit="img", disable=not progress, dynamic_ncols=True):
            info = gt.imgs[img_id]
            path = os.path.join(images_dir, info["file_name"])
            image, why = try_read_image(path)
            if image is None:
                if not skipped:
                    log.warning("cannot read %s: %s; skipping it (and counting any others)",
                                shown_path(path), why)
                skipped.append(path)
                continue
            poses = predict(image, info)
            records.extend(poses_to_coco(poses, img_id, category))
            if writer is not None:
                writer.add(poses, img_id)
            done.append(img_id)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the results so far are kept, not scored
        if writer is not None:
            log.warning("stopped after %d of %d images: their results are in %s (not scored)",
                        len(done), len(img_ids), results_json)
        raise
    finally:
        if writer is not None:
            writer.close()
    if not done:
        raise UserError(f"none of the {len(img_ids)} images could be read from {images_dir} (first: "
                        f"{skipped[0]}): is --images the folder of this annotation file's images?")
    stats, notes = keypoint_stats(gt, records, done, keypoints)
    if max_images is not None and len(img_ids) < len(gt.getImgIds()):
        notes.append(f"subset: the first {len(img_ids)} of {len(gt.getImgIds())} images by id; "
                     "compare full-set numbers only with full-set runs")
    return EvalResult(dataset=keypoints.name, stats=stats, num_images=len(done), skipped=skipped,
                      num_people=len(records), results_path=results_json, notes=notes)


def evaluate_pipeline(
    pipe,
    ann_file: str,
    images_dir: str,
    max_images: int | None = None,
    results_json: str | None = None,
    progress: bool = False,
) -> EvalResult:
    """:func:`run_evaluation` with a :class:`Pipeline` as the predictor, plus notes on what makes its
    numbers differ from the official ones (no flip test, fixed input size, NaN frames). Every
    candidate person is scored, whatever the pipeline's person_thr (COCO evaluation needs them)."""
    pipe.activate()
    skipped_before = pipe.stats.skipped_nonfinite
    person_thr, pipe.person_thr = pipe.person_thr, 0.0  # COCO evaluation scores every candidate
    try:
        result = run_evaluation(lambda image, info: pipe.predict(image), ann_file, images_dir,
                                pipe.keypoints, max_images, results_json, progress)
    finally:
        pipe.person_thr = person_thr
    nonfinite = pipe.stats.skipped_nonfinite - skipped_before
    if nonfinite:
        result.notes.append(f"{nonfinite} images gave NaN/inf network outputs and count as having "
                            "no people")
    if not pipe.meta.flip:
        result.notes.append("this model was exported without the flip test (--no-flip): expect "
                            "~1-2 AP below the official numbers")
    if pipe.backend.inputs[0].shape[2] > 0:
        result.notes.append("this model has a fixed input size: images are letterboxed, not run at "
                            "the official test resolution (export with --dynamic to compare)")
    if not pipe.project2image:
        result.notes.append("decoded at heatmap resolution (--heatmap-resolution): not the official "
                            "flow")
    return result


def evaluate_model(
    model: str,
    ann_file: str,
    images_dir: str,
    scales: Sequence[float] = (1.0,),
    backend: str = "auto",
    project2image: bool = True,
    max_images: int | None = None,
    results_json: str | None = None,
    progress: bool = False,
    **backend_options,
) -> EvalResult:
    """Evaluate a model file with the official settings (single scale unless ``scales`` says
    otherwise). The flip test is part of the exported model (its metadata says whether it has one).
    """
    with Pipeline(model, backend=backend, scales=scales, project2image=project2image,
                  **backend_options) as pipe:
        return evaluate_pipeline(pipe, ann_file, images_dir, max_images, results_json, progress)


# --------------------------------------------------------------------------------------------------
# Oracle: maps a perfect network would output, rendered from the ground truth
# --------------------------------------------------------------------------------------------------


def oracle_maps(
    points: np.ndarray,
    visible: np.ndarray,
    size_wh: Sequence[int],
    sigma: float = 2.0,
    tag_dims: int = 2,
    tag_step: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps and tags of a perfect network for people at known map positions.

    points: (P, J, 2) x, y in map pixels, in the decoder's convention: where it should report the
        joint (it adds 0.5 to the peak pixel index, so blobs are centred at point - 0.5).
    visible: (P, J) bool; invisible joints get no blob.
    size_wh: (W, H) of the maps. sigma: blob std in map pixels (the official targets use 2).
    tag_dims: T, the tags' last axis (2 for flip-test models). tag_step: person k's tag is
        k * tag_step (> the decoder's tag_threshold of 1 keeps people apart).
    Returns heatmaps (J, H, W) float32 (peak 1 at a blob centre) and tags (J, H, W, T) float32:
    at each pixel the tag of the person whose joint is nearest (0 where a joint has no person).
    """
    points = np.asarray(points, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    num_people, num_joints = visible.shape
    w, h = int(size_wh[0]), int(size_wh[1])
    heatmaps = np.zeros((num_joints, h, w), np.float32)
    tags = np.zeros((num_joints, h, w), np.float32)
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    radius = int(np.ceil(3 * sigma)) + 1
    for j in range(num_joints):
        best = np.full((h, w), np.inf)
        for p in range(num_people):
            if not visible[p, j]:
                continue
            cx, cy = points[p, j, 0] - 0.5, points[p, j, 1] - 0.5
            dist2 = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2
            closer = dist2 < best
            best[closer] = dist2[closer]
            tags[j][closer] = p * tag_step
            # Blobs only within 3 sigma (as the official targets), max over people where they meet.
            x0, x1 = max(0, int(cx) - radius), min(w, int(cx) + radius + 1)
            y0, y1 = max(0, int(cy) - radius), min(h, int(cy) + radius + 1)
            if x0 < x1 and y0 < y1:
                blob = np.exp(-dist2[y0:y1, x0:x1] / (2 * sigma * sigma)).astype(np.float32)
                np.maximum(heatmaps[j, y0:y1, x0:x1], blob, out=heatmaps[j, y0:y1, x0:x1])
    return heatmaps, np.repeat(tags[..., None], tag_dims, axis=3)


def oracle_predictor(gt, keypoints: KeypointSet, input_size: int = 512, sigma: float = 2.0) -> Predictor:
    """A Predictor that decodes oracle maps of each image's ground truth (no network).

    Maps are rendered at the official base size of each image (the input size at scale 1, as the
    official PROJECT2IMAGE flow decodes them), then go through the same decode and mapping back to
    image pixels as a Pipeline's. Crowd annotations and joints with v = 0 are not rendered.
    """
    cfg = DecodeConfig.for_keypoints(keypoints)
    category = person_category(gt)

    def predict(image: np.ndarray, info: dict):
        image_wh = (int(image.shape[1]), int(image.shape[0]))
        size, center, scale = get_multi_scale_size(image_wh, input_size, 1.0, 1.0)
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=[info["id"]], catIds=[category]))
                if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0]
        kpts = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(
            len(anns), keypoints.num_joints, 3)
        points = apply_affine(kpts[:, :, :2], get_affine_transform(center, scale, size))
        heatmaps, tags = oracle_maps(points, kpts[:, :, 2] > 0, size, sigma)
        geometry = FrameGeometry(image_wh=image_wh, base_size_wh=tuple(size), center=center, scale=scale)
        return maps_to_poses(heatmaps, tags, geometry, cfg)

    return predict
