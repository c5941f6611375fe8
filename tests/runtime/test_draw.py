"""Skeleton drawing: limbs and joints where the keypoints are, colours per person, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.core.keypoints import COCO, CROWDPOSE
from higherhrnet_trt.runtime.draw import PALETTE, draw_fps, draw_poses, person_color
from higherhrnet_trt.runtime.pipeline import Poses, boxes_from_keypoints

pytest.importorskip("cv2")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def person(kp, x0, y0, score=0.9):
    """A person of the keypoint set laid out on a grid from (x0, y0): (J, 3)."""
    j = np.arange(kp.num_joints)
    return np.stack([x0 + 10.0 * (j % 4), y0 + 12.0 * (j // 4), np.full(kp.num_joints, score)], 1)


def poses_of(*people):
    k = np.array(people, np.float32)
    return Poses(k, np.full(len(people), 0.5, np.float32), boxes_from_keypoints(k), (200, 120))


def has_color(img, color, at=None, r=2):
    if at is not None:
        x, y = int(round(at[0])), int(round(at[1]))
        img = img[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
    return bool((img.reshape(-1, 3) == np.array(color, np.uint8)).all(1).any())


@pytest.mark.parametrize("kp", [COCO, CROWDPOSE], ids=lambda k: k.name)
def test_each_person_in_its_colour_at_its_joints(kp):
    img = np.zeros((120, 200, 3), np.uint8)
    a, b = person(kp, 10, 10), person(kp, 110, 20)
    out = draw_poses(img, poses_of(a, b), kp)
    assert out is not img and not img.any()  # a copy by default
    for p, joints in enumerate((a, b)):
        for x, y, _ in joints:
            assert has_color(out, person_color(p), (x, y))
    # A limb is drawn along its length, not only at the joints: at the midpoint of the first limb,
    # away from both joint discs (radius 2 here), some pixel is lit (anti-aliased, so blended).
    i, k = kp.skeleton[0]
    x, y = np.round((a[i, :2] + a[k, :2]) / 2).astype(int)
    assert np.linalg.norm(a[i, :2] - a[k, :2]) >= 10 and out[y - 1:y + 2, x - 1:x + 2].any()


def test_threshold_hides_joints_and_their_limbs():
    img = np.zeros((120, 200, 3), np.uint8)
    a = person(COCO, 20, 10)
    a[:, 2] = 0.05  # all below 0.1
    a[0, 2] = 0.9
    out = draw_poses(img, a[None], COCO, kpt_thr=0.1)
    assert has_color(out, person_color(0), a[0, :2])
    ys, xs = np.nonzero(out.any(2))
    assert np.abs(xs - a[0, 0]).max() <= 4 and np.abs(ys - a[0, 1]).max() <= 4  # only that joint


def test_inplace_empty_and_wild_values():
    img = np.zeros((50, 60, 3), np.uint8)
    assert draw_poses(img, Poses.empty(17), "coco", inplace=True) is img and not img.any()
    k = person(COCO, 5, 5)[None].astype(np.float32)
    k[0, 3, :2] = [1e12, -1e12]  # far off-image
    k[0, 4, 0] = np.nan
    out = draw_poses(img, k, "coco", inplace=True)
    assert out is img and img.any()


def test_boxes_fps_and_errors():
    img = np.zeros((120, 200, 3), np.uint8)
    out = draw_poses(img, poses_of(person(COCO, 30, 30)), COCO, boxes=True)
    assert has_color(out, person_color(0), (30, 60))  # left edge of the box, between joints
    draw_fps(out, 12.34)
    assert out[:20, :60].any()
    with pytest.raises(ValueError, match="14 joints per person, but the coco skeleton has 17"):
        draw_poses(img, person(CROWDPOSE, 0, 0)[None], COCO)
    assert len(set(PALETTE)) == len(PALETTE) and person_color(len(PALETTE)) == PALETTE[0]


def test_people_below_the_person_threshold_are_not_drawn():
    img = np.zeros((120, 200, 3), np.uint8)
    a, b = person(COCO, 10, 10), person(COCO, 110, 20)
    poses = poses_of(a, b)
    poses.scores[:] = (0.6, 0.05)  # b is a weak candidate
    out = draw_poses(img, poses, COCO, person_thr=0.15, boxes=True)
    assert has_color(out, person_color(0), at=a[10])  # (the score label covers the box corner)
    assert not has_color(out, person_color(1))
    assert has_color(draw_poses(img, poses, COCO), person_color(1), at=b[0])  # default: everyone


def test_tracked_people_take_the_colour_of_their_id_and_show_it():
    img = np.full((120, 200, 3), 90, np.uint8)
    a, b = person(COCO, 10, 10), person(COCO, 110, 20)
    tracked = poses_of(a, b).with_track_ids([5, -1])
    out = draw_poses(img, tracked, COCO)
    assert has_color(out, person_color(4), a[-1, :2])  # ID 5: the fifth colour, whatever its rank
    assert has_color(out, (160, 160, 160), b[-1, :2])  # not tracked: grey
    # "#5" on a black label at the top-left corner of A's box (10, 10); none on B (no ID).
    label = out[10:24, 10:40].reshape(-1, 3).astype(int)  # text anti-aliased on black: k * (255, 0, 255)
    assert (label == 0).all(axis=1).any()
    assert ((label[:, 1] == 0) & (label[:, 0] == label[:, 2]) & (label[:, 0] > 60)).any()
    assert not has_color(out, (0, 0, 0), (114, 24))
    assert not has_color(draw_poses(img, poses_of(a, b), COCO), (0, 0, 0), (14, 14))
