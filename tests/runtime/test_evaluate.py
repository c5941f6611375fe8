"""Evaluation: a COCO-format set generated here, scored with pycocotools.

The central check: decoding oracle maps (a perfect network's heatmaps and tags, rendered from the
ground truth) and mapping the people back to image pixels gives AP 1.0, for COCO's 17 joints and
CrowdPose's 14. Perturbed predictions must score lower, so a 1.0 is not a given.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.keypoints import COCO, CROWDPOSE, KeypointSet

pytest.importorskip("pycocotools")
cv2 = pytest.importorskip("cv2")

from higherhrnet_trt.runtime.evaluate import (  # noqa: E402
    COCO_STATS,
    CROWDPOSE_STATS,
    _evaluator,
    _quiet,
    keypoint_stats,
    load_ground_truth,
    oracle_maps,
    oracle_predictor,
    run_evaluation,
)
from higherhrnet_trt.runtime.pipeline import Poses  # noqa: E402

# A standing person in a unit box, (x, y) per joint name; x grows to the image right.
TEMPLATE = {
    "nose": (0.50, 0.07), "left_eye": (0.54, 0.05), "right_eye": (0.46, 0.05),
    "left_ear": (0.58, 0.07), "right_ear": (0.42, 0.07), "head": (0.50, 0.04), "neck": (0.50, 0.15),
    "left_shoulder": (0.70, 0.20), "right_shoulder": (0.30, 0.20), "left_elbow": (0.80, 0.36),
    "right_elbow": (0.20, 0.36), "left_wrist": (0.85, 0.52), "right_wrist": (0.15, 0.52),
    "left_hip": (0.62, 0.55), "right_hip": (0.38, 0.55), "left_knee": (0.64, 0.76),
    "right_knee": (0.36, 0.76), "left_ankle": (0.66, 0.96), "right_ankle": (0.34, 0.96),
}

IMAGE_SIZES = [(480, 360), (360, 480), (400, 400), (520, 300)]  # (W, H), both orientations


def make_people(rng, kp: KeypointSet, image_wh, count) -> list[np.ndarray]:
    """``count`` non-overlapping people side by side: (J, 3) keypoints [x, y, v] each."""
    w, h = image_wh
    slot = w / count
    people = []
    base = np.array([TEMPLATE[n] for n in kp.joint_names])
    for k in range(count):
        ph = rng.uniform(0.6, 0.85) * h
        pw = min(0.5 * ph, 0.8 * slot)
        x0 = k * slot + rng.uniform(0.05, 0.95) * (slot - pw)
        y0 = rng.uniform(0.02, 0.98) * (h - ph)
        xy = base * [pw, ph] + [x0, y0] + rng.normal(0, 1.5, base.shape)
        v = np.full(len(base), 2.0)
        v[rng.random(len(base)) < 0.12] = 0  # a few unlabelled joints: ignored by OKS, not rendered
        kpts = np.concatenate([xy, v[:, None]], axis=1)
        kpts[v == 0, :2] = 0  # COCO stores unlabelled joints as (0, 0, 0)
        people.append(kpts)
    return people


def make_dataset(tmp_path, kp: KeypointSet, seed=0, crowd_index=False):
    """Images (noise JPEGs, the oracle ignores pixels) + a COCO keypoint annotation file."""
    rng = np.random.default_rng(seed)
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    images, anns = [], []
    for i, (w, h) in enumerate(IMAGE_SIZES):
        img_id = 100 + i
        name = f"{img_id:012d}.jpg"
        cv2.imwrite(str(img_dir / name), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        info = {"id": img_id, "file_name": name, "width": w, "height": h}
        if crowd_index:
            info["crowdIndex"] = [0.05, 0.5, 0.9, 0.3][i]
        images.append(info)
        for kpts in make_people(rng, kp, (w, h), 1 + i % 3):
            vis = kpts[kpts[:, 2] > 0]
            x0, y0 = vis[:, :2].min(0) - 5
            x1, y1 = vis[:, :2].max(0) + 5
            anns.append({
                "id": len(anns) + 1, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                "keypoints": [round(float(v), 2) for v in kpts.reshape(-1)],
                "num_keypoints": int((kpts[:, 2] > 0).sum()),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0) * 0.6),
            })
    # One image without people: the official evaluation includes such images too.
    cv2.imwrite(str(img_dir / "000000000099.jpg"), np.zeros((200, 300, 3), np.uint8))
    images.append({"id": 99, "file_name": "000000000099.jpg", "width": 300, "height": 200,
                   **({"crowdIndex": 0.0} if crowd_index else {})})
    data = {
        "images": images, "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": list(kp.joint_names),
                        "skeleton": [[a + 1, b + 1] for a, b in kp.skeleton]}],
    }
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(json.dumps(data))
    return str(ann_file), str(img_dir), data


@pytest.mark.parametrize("kp", [COCO, CROWDPOSE], ids=lambda k: k.name)
def test_oracle_maps_decode_to_ap_1(tmp_path, kp):
    ann, images, _ = make_dataset(tmp_path, kp, crowd_index=kp is CROWDPOSE)
    gt = load_ground_truth(ann, kp)
    res = run_evaluation(oracle_predictor(gt, kp), ann, images, kp, results_json=str(tmp_path / "r.json"))
    names = CROWDPOSE_STATS if kp is CROWDPOSE else COCO_STATS
    assert list(res.stats) == list(names)
    assert res.stats["AP"] == pytest.approx(1.0) and res.stats["AR"] == pytest.approx(1.0)
    assert res.stats["AP50"] == pytest.approx(1.0) and res.stats["AP75"] == pytest.approx(1.0)
    if kp is CROWDPOSE:  # every crowdIndex bucket has people, each is perfect
        for name in ("AP_easy", "AP_medium", "AP_hard"):
            assert res.stats[name] == pytest.approx(1.0)
    assert res.num_images == 5 and res.num_people == 1 + 2 + 3 + 1 and not res.skipped
    written = json.loads((tmp_path / "r.json").read_text())
    assert len(written) == res.num_people
    assert {r["category_id"] for r in written} == {1}
    assert all(len(r["keypoints"]) == 3 * kp.num_joints for r in written)


def test_oracle_joints_land_on_ground_truth(tmp_path):
    """Not only AP: each labelled joint comes back within a pixel of its annotation."""
    ann, images, data = make_dataset(tmp_path, COCO, seed=3)
    gt = load_ground_truth(ann, COCO)
    predict = oracle_predictor(gt, COCO)
    info = data["images"][0]
    poses = predict(cv2.imread(f"{images}/{info['file_name']}"), info)
    truth = [np.array(a["keypoints"]).reshape(-1, 3) for a in data["annotations"]
             if a["image_id"] == info["id"]]
    assert len(poses) == len(truth) == 1
    v = truth[0][:, 2] > 0
    err = np.abs(poses.keypoints[0, v, :2] - truth[0][v, :2])
    assert err.max() < 1.0  # decoder quantisation: 3/4 map pixel, a map pixel is 360/512 px here


def test_worse_predictions_score_lower(tmp_path):
    ann, images, _ = make_dataset(tmp_path, COCO, seed=1)
    gt = load_ground_truth(ann, COCO)
    oracle = oracle_predictor(gt, COCO)

    def shifted(image, info):  # every joint 6 px off
        p = oracle(image, info)
        k = p.keypoints.copy()
        k[:, :, :2] += 6.0
        return Poses(k, p.scores, p.boxes, p.image_wh)

    def missing_one(image, info):  # drops the best person of every image
        p = oracle(image, info)
        return Poses(p.keypoints[1:], p.scores[1:], p.boxes[1:], p.image_wh)

    ap_shift = run_evaluation(shifted, ann, images, COCO).stats
    ap_miss = run_evaluation(missing_one, ann, images, COCO).stats
    assert ap_shift["AP"] < 0.6 and ap_shift["AP50"] > ap_shift["AP75"]
    assert ap_miss["AR"] == pytest.approx(3 / 7, abs=1e-6)  # 3 of 7 people remain


def test_ground_truth_as_results_is_perfect_and_oks_is_crowdposes(tmp_path):
    """keypoint_stats alone, on records made from the annotations themselves."""
    ann, _, data = make_dataset(tmp_path, CROWDPOSE, crowd_index=True)
    gt = load_ground_truth(ann, CROWDPOSE)
    # CrowdPose areas are 0.53 x bbox area (crowdposetools), not the annotations' own area.
    a = data["annotations"][0]
    assert gt.anns[a["id"]]["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3] * 0.53)
    recs = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in data["annotations"]]
    ids = [im["id"] for im in data["images"]]
    stats, notes = keypoint_stats(gt, recs, ids, CROWDPOSE)
    assert stats["AP"] == pytest.approx(1.0) and any("crowdposetools" in n for n in notes)
    # The OKS pycocotools computes is crowdposetools' formula: CrowdPose sigmas, 0.53 x bbox area.
    shifted = []
    rng = np.random.default_rng(5)
    for r in recs:
        k = np.array(r["keypoints"], dtype=float).reshape(-1, 3)
        k[:, :2] += rng.normal(0, 6.0, (k.shape[0], 2))
        shifted.append({**r, "keypoints": k.reshape(-1).tolist()})
    with _quiet():
        ev = _evaluator(gt, gt.loadRes(shifted), ids, CROWDPOSE)
    sigmas = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0
    checked = 0
    for (img_id, _), ious in ev.ious.items():
        gts = [a for a in data["annotations"] if a["image_id"] == img_id]
        dts = [d for d in shifted if d["image_id"] == img_id]
        for j, g in enumerate(gts):
            for i, d in enumerate(dts):  # one score for all: pycocotools keeps the given order
                kg = np.array(g["keypoints"]).reshape(-1, 3)
                kd = np.array(d["keypoints"]).reshape(-1, 3)
                area = g["bbox"][2] * g["bbox"][3] * 0.53
                e = ((kd[:, :2] - kg[:, :2]) ** 2).sum(1) / (2 * sigmas) ** 2 / (area + np.spacing(1)) / 2
                oks = np.exp(-e[kg[:, 2] > 0]).mean()
                assert ious[i, j] == pytest.approx(oks, rel=1e-12)
                checked += 1
    assert checked >= 1 + 4 + 9 + 1


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    ann, images, data = make_dataset(tmp_path, COCO)
    (tmp_path / "images" / data["images"][1]["file_name"]).write_bytes(b"not a jpeg")
    (tmp_path / "images" / data["images"][2]["file_name"]).unlink()
    gt = load_ground_truth(ann, COCO)
    res = run_evaluation(oracle_predictor(gt, COCO), ann, images, COCO)
    assert len(res.skipped) == 2 and res.num_images == 3
    assert res.stats["AP"] == pytest.approx(1.0)  # skipped images are left out, not counted as misses
    assert "skipped 2 unreadable images" in res.summary()


def test_max_images_and_no_detections(tmp_path):
    ann, images, _ = make_dataset(tmp_path, COCO)
    empty = run_evaluation(lambda im, info: Poses.empty(17, (im.shape[1], im.shape[0])), ann, images, COCO,
                           max_images=2)
    assert empty.num_images == 2 and all(v == 0.0 for v in empty.stats.values())
    assert any("no people" in n for n in empty.notes) and any("subset" in n for n in empty.notes)


def test_clear_errors(tmp_path):
    ann, images, _ = make_dataset(tmp_path, COCO)
    with pytest.raises(UserError, match="17 keypoints per person but the model predicts 14"):
        load_ground_truth(ann, CROWDPOSE)
    with pytest.raises(UserError, match="not found"):
        load_ground_truth(str(tmp_path / "nope.json"), COCO)
    inst = tmp_path / "instances.json"
    cats = [{"id": 1, "name": "person"}]
    inst.write_text(json.dumps({"images": [], "annotations": [], "categories": cats}))
    with pytest.raises(UserError, match="no keypoint categories"):
        load_ground_truth(str(inst), COCO)
    with pytest.raises(UserError, match="none of the 5 images could be read"):
        run_evaluation(lambda im, info: None, ann, str(tmp_path), COCO)
    with pytest.raises(UserError, match="image folder not found"):
        run_evaluation(lambda im, info: None, ann, str(tmp_path / "missing"), COCO)


def test_oracle_maps_layout():
    points = np.array([[[10.5, 8.5], [20.0, 5.0]], [[30.5, 12.5], [0.0, 0.0]]])
    visible = np.array([[True, True], [True, False]])
    heat, tags = oracle_maps(points, visible, (40, 16), sigma=2.0, tag_dims=2)
    assert heat.shape == (2, 16, 40) and tags.shape == (2, 16, 40, 2)
    assert heat[0, 8, 10] == pytest.approx(1.0)  # centred at point - 0.5
    assert tags[0, 8, 10, 0] == 0.0 and tags[0, 12, 30, 1] == 2.0  # person k -> k * 2
    assert heat[1].max() == pytest.approx(math.exp(-0.5 / 8), rel=1e-5)  # (19.5, 4.5): off-grid centre
    assert (tags[1] == 0).all()  # only person 0 has joint 1
