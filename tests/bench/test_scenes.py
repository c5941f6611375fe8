"""benchmarks/scenes.py: deterministic generated scenes with valid COCO keypoint annotations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks import scene_figure as figure  # noqa: E402
from higherhrnet_trt.benchmarks import scenes  # noqa: E402
from higherhrnet_trt.core.keypoints import COCO  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict]:
    """12 non-square scenes (W 160 != H 120 catches swapped axes)."""
    out = tmp_path_factory.mktemp("scenes")
    ann = scenes.generate_dataset(str(out), 12, seed=5, size=(160, 120))
    with open(ann, encoding="utf-8") as f:
        return out, json.load(f)


def test_same_seed_same_scene_other_seed_differs():
    a_img, a_anns = scenes.render_scene(np.random.default_rng([3, 0]), (96, 80))
    b_img, b_anns = scenes.render_scene(np.random.default_rng([3, 0]), (96, 80))
    c_img, _ = scenes.render_scene(np.random.default_rng([4, 0]), (96, 80))
    assert np.array_equal(a_img, b_img) and a_anns == b_anns
    assert not np.array_equal(a_img, c_img)


def test_dataset_deterministic_and_prefix_stable(tmp_path):
    """Image i depends only on (seed, i): equal files for equal seeds, and 2 images are the first
    2 of 3."""
    p1 = scenes.generate_dataset(str(tmp_path / "a"), 3, seed=11, size=(96, 96))
    p2 = scenes.generate_dataset(str(tmp_path / "b"), 2, seed=11, size=(96, 96))
    d1, d2 = (json.loads(Path(p).read_text()) for p in (p1, p2))
    assert d1["images"][:2] == d2["images"]
    assert [a for a in d1["annotations"] if a["image_id"] <= 2] == d2["annotations"]
    for name in ("000000.jpg", "000001.jpg"):
        a, b = (tmp_path / d / "images" / name for d in ("a", "b"))
        assert a.read_bytes() == b.read_bytes()


def test_annotations_valid(dataset):
    out, data = dataset
    images = {im["id"]: im for im in data["images"]}
    assert len(images) == 12
    for im in data["images"]:
        img = cv2.imread(str(out / "images" / im["file_name"]))
        assert img is not None and img.shape == (im["height"], im["width"], 3) == (120, 160, 3)
    assert data["annotations"], "12 scenes of 1..12 people should hold someone"
    ids = [a["id"] for a in data["annotations"]]
    assert len(set(ids)) == len(ids)
    seen_v = set()
    for a in data["annotations"]:
        w, h = images[a["image_id"]]["width"], images[a["image_id"]]["height"]
        k = np.asarray(a["keypoints"], dtype=np.float64).reshape(COCO.num_joints, 3)
        v = k[:, 2]
        seen_v.update(v.tolist())
        assert set(v.tolist()) <= {0.0, 1.0, 2.0}
        assert a["num_keypoints"] == int((v > 0).sum())
        assert a["iscrowd"] == 0 and a["category_id"] == 1
        assert a["area"] > 0
        # Labelled joints lie inside the image; unlabelled ones are (0, 0, 0) as in COCO.
        lab = k[v > 0]
        assert np.all((lab[:, 0] >= 0) & (lab[:, 0] < w) & (lab[:, 1] >= 0) & (lab[:, 1] < h))
        assert np.all(k[v == 0, :2] == 0)
        bx, by, bw, bh = a["bbox"]
        assert bw > 0 and bh > 0 and bx >= 0 and by >= 0 and bx + bw <= w and by + bh <= h
        # bbox / area are those of the visible pixels: area fits in the box.
        assert a["area"] <= bw * bh
        vis = k[v == 2]
        assert np.all((vis[:, 0] >= bx) & (vis[:, 0] <= bx + bw) & (vis[:, 1] >= by) & (vis[:, 1] <= by + bh))
    assert {1.0, 2.0} <= seen_v, "occluded and visible joints both occur"


def test_loads_in_pycocotools(dataset):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO as CocoApi

    out, data = dataset
    api = CocoApi(str(out / "person_keypoints.json"))
    assert sorted(api.getImgIds()) == list(range(1, 13))
    cat = api.loadCats(api.getCatIds())[0]
    assert cat["keypoints"] == list(COCO.joint_names)
    # COCO's own 1-based skeleton, e.g. its first limb [16, 14] = left ankle - left knee.
    assert cat["skeleton"][0] == [16, 14]
    assert cat["skeleton"] == [[a + 1, b + 1] for a, b in COCO.skeleton]
    assert len(api.getAnnIds()) == len(data["annotations"])


def test_left_is_the_persons_left():
    """COCO convention: a figure facing the camera shows its left hip on the image's right."""
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        fig = figure.sample_figure(rng)
        hips = fig.joints[figure.L_HIP] - fig.joints[figure.R_HIP]
        forward = fig.extra["toe_l"] - fig.joints[figure.L_ANK]
        if abs(forward[2]) < 0.02 or abs(hips[1]) > abs(hips[0]):  # side view, or lying
            continue
        assert np.sign(hips[0]) == np.sign(forward[2])
        checked += 1
    assert checked > 100


def test_people_sizes_vary_and_small_people_on_request(dataset, tmp_path):
    _, data = dataset
    heights = [a["bbox"][3] for a in data["annotations"]]
    assert max(heights) > 0.5 * 120 and max(heights) > 1.8 * min(heights)
    ann = scenes.generate_dataset(str(tmp_path), 4, seed=2, size=(160, 120), height_range=(0.1, 0.15))
    small = [a["bbox"][3] for a in json.loads(open(ann).read())["annotations"]]
    assert small and max(small) < 0.2 * 120


def test_headings_turn_the_face_away(tmp_path):
    """Heading 0 faces the camera (noses visible), 180 shows the back (no nose visible)."""
    def noses(headings):
        ann = scenes.generate_dataset(str(tmp_path / str(headings[0])), 6, seed=4, size=(128, 128),
                                      people=(2, 2), height_range=(0.8, 0.9), headings=headings)
        kps = [a["keypoints"] for a in json.loads(open(ann).read())["annotations"]]
        return [k[2] for k in kps]  # the nose's v

    front, back = noses((0.0, 0.0)), noses((180.0, 180.0))
    assert front.count(2) >= len(front) // 2
    assert back.count(2) == 0


def test_tiny_dataset_writes_every_image(tmp_path):
    # (How fast scenes render is a benchmark's business, not a test's.)
    scenes.generate_dataset(str(tmp_path), 10, seed=1, size=(128, 128))
    assert len(os.listdir(tmp_path / "images")) == 10


def test_cli(tmp_path, capsys):
    assert scenes.main(["--out", str(tmp_path / "d"), "--num", "2", "--seed", "3",
                        "--width", "64", "--height", "48"]) == 0
    data = json.loads((tmp_path / "d" / "person_keypoints.json").read_text())
    assert [im["width"] for im in data["images"]] == [64, 64]
    assert sorted(os.listdir(tmp_path / "d" / "images")) == ["000000.jpg", "000001.jpg"]


def test_bundled_sample_matches_recipe(tmp_path):
    """runtime/assets/sample.jpg is the SAMPLE_RECIPE scene (regenerate with --sample if the
    generator changes): 640x480, small, several people."""
    bundled = REPO / "runtime" / "assets" / "sample.jpg"
    assert bundled.stat().st_size < 150_000
    img = cv2.imread(str(bundled))
    assert img.shape == (480, 640, 3)
    anns = scenes.write_sample(str(tmp_path / "s.jpg"))
    assert len(anns) >= 3 and all(a["num_keypoints"] >= 6 for a in anns[:3])
    again = cv2.imread(str(tmp_path / "s.jpg")).astype(np.int16)
    assert np.abs(again - img).mean() < 2.0


def test_parallel_workers_write_the_same_dataset(tmp_path):
    """--workers renders in processes; annotations (ids included) and images come out identical."""
    p1 = scenes.generate_dataset(str(tmp_path / "serial"), 5, seed=3, size=(96, 96))
    p2 = scenes.generate_dataset(str(tmp_path / "parallel"), 5, seed=3, size=(96, 96), workers=2)
    assert json.loads(Path(p1).read_text()) == json.loads(Path(p2).read_text())
    for i in range(5):
        a, b = (tmp_path / d / "images" / f"{i:06d}.jpg" for d in ("serial", "parallel"))
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("args", [["--heights", "0.5", "0.2"], ["--occluders", "2", "1"],
                                  ["--headings", "90", "-90"]])
def test_cli_bad_ranges_are_one_line(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as e:
        scenes.main(["--out", str(tmp_path / "d"), "--num", "1", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "MIN" in err[-1] and not (tmp_path / "d").exists()
