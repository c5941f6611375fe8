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

CLI: ``python -m higherhrnet_trt.references.scenes --out DIR --num N --seed S [--width W --height H]``
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
from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.core.keypoints import COCO

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

#: The id buffer value of foreground objects (people are 1..254, background 0).
OCCLUDER_ID = 255
#: cv2 drawing works in fixed point with this many fractional bits (sub-pixel placement of shapes).
_SHIFT = 4
_ONE = 1 << _SHIFT

J = COCO.num_joints
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK) = range(J)
FACE_JOINTS = (NOSE, L_EYE, R_EYE, L_EAR, R_EAR)


def _cv2():
    import cv2

    return cv2


# --------------------------------------------------------------------------------------------------
# 3-D figure
# --------------------------------------------------------------------------------------------------


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


@dataclass
class Figure:
    """One posed person in body units (standing height ~1), camera frame.

    joints: (17, 3) x right, y up, z towards the camera. Person's left is +x when facing the camera.
    head: (3,) head centre; head_r: head radius; face_dir: (3,) unit vector the face points to.
    extra: named 3-D points used only for drawing (neck base, hand and toe tips).
    radii: body-unit thickness (radius) at each joint, for tapered limbs.
    """

    joints: np.ndarray
    head: np.ndarray
    head_r: float
    face_dir: np.ndarray
    extra: dict
    radii: np.ndarray


def _limb_dir(rng: np.random.Generator, down: np.ndarray, out: np.ndarray, fwd: np.ndarray,
              theta_max: float, psi_range: tuple[float, float]) -> np.ndarray:
    """A unit direction ``theta`` (<= theta_max, degrees) away from ``down``, turned by azimuth
    ``psi`` (degrees: 0 = outward, 90 = forward, -90 = backward) around it."""
    theta = np.radians(rng.uniform(0, theta_max))
    psi = np.radians(rng.uniform(*psi_range))
    return _unit(np.cos(theta) * down + np.sin(theta) * (np.cos(psi) * out + np.sin(psi) * fwd))


def sample_figure(rng: np.random.Generator, headings: tuple[float, float] = (0.0, 360.0)) -> Figure:
    """A random person pose within rough joint limits, turned to a heading drawn uniformly from
    ``headings`` (degrees about the vertical axis; 0 faces the camera, 180 shows the back)."""
    build = rng.uniform(0.85, 1.2)
    torso_len = 0.30 * rng.uniform(0.92, 1.08)
    sho_half = 0.105 * build
    hip_half = 0.08 * build
    upper_arm, forearm = 0.17 * rng.uniform(0.92, 1.08), 0.16 * rng.uniform(0.92, 1.08)
    thigh, shin = 0.245 * rng.uniform(0.92, 1.08), 0.245 * rng.uniform(0.92, 1.08)
    head_r = 0.062 * rng.uniform(0.9, 1.12)

    up = np.array([0.0, 1.0, 0.0])
    x_axis = np.array([1.0, 0.0, 0.0])
    z_axis = np.array([0.0, 0.0, 1.0])

    # Spine: forward lean and a little sideways; shoulders twist against the hips.
    r_spine = _rot_z(np.radians(rng.uniform(-15, 15))) @ _rot_x(np.radians(rng.uniform(-12, 35)))
    spine = r_spine @ up
    r_chest = r_spine @ _rot_y(np.radians(rng.uniform(-25, 25)))
    chest_x, chest_z = r_chest @ x_axis, r_chest @ z_axis

    p = np.zeros((J, 3))
    pelvis = np.zeros(3)
    neck = pelvis + spine * torso_len
    p[L_HIP], p[R_HIP] = pelvis + x_axis * hip_half, pelvis - x_axis * hip_half
    p[L_SHO], p[R_SHO] = neck + chest_x * sho_half, neck - chest_x * sho_half

    # Arms: upper arm anywhere from hanging to raised overhead (not far behind the back or across
    # the body); the elbow bends 0..150 degrees towards a direction turned by the arm's roll.
    for sho, elb, wri, side in ((L_SHO, L_ELB, L_WRI, 1.0), (R_SHO, R_ELB, R_WRI, -1.0)):
        out = chest_x * side
        theta_max = 170.0 if rng.random() < 0.35 else 70.0
        d = _limb_dir(rng, -spine, out, chest_z, theta_max, (-50.0, 150.0))
        p[elb] = p[sho] + d * upper_arm
        roll = np.radians(rng.uniform(-90, 90))
        bend_to = _unit(np.cross(d, np.cross(chest_z, d)) if abs(d @ chest_z) < 0.95 else out)
        # Turn the bend direction around the upper arm by the roll angle (Rodrigues).
        bend_to = _unit(bend_to * np.cos(roll) + np.cross(d, bend_to) * np.sin(roll))
        e = np.radians(rng.uniform(0, 150) if rng.random() < 0.7 else rng.uniform(0, 30))
        p[wri] = p[elb] + (np.cos(e) * d + np.sin(e) * bend_to) * forearm

    # Legs: mostly standing or walking; sometimes kicking, sitting or kneeling poses. The knee only
    # bends backwards (rotation about the body's x axis).
    stance = rng.random()
    for hip, kne, ank, side in ((L_HIP, L_KNE, L_ANK, 1.0), (R_HIP, R_KNE, R_ANK, -1.0)):
        out = x_axis * side
        if stance < 0.6:
            d = _limb_dir(rng, -up, out, z_axis, 28.0, (-90.0, 90.0))
            k = rng.uniform(0, 35)
        elif stance < 0.85:
            d = _limb_dir(rng, -up, out, z_axis, 110.0, (0.0, 100.0))
            k = rng.uniform(0, 140)
        else:
            d = _limb_dir(rng, -up, out, z_axis, 50.0, (-80.0, 60.0))
            k = rng.uniform(20, 140)
        p[kne] = p[hip] + d * thigh
        shin_dir = _rot_x(np.radians(k)) @ d
        p[ank] = p[kne] + shin_dir * shin

    # Head on the neck, turned and tilted relative to the chest.
    r_head = r_chest @ _rot_y(np.radians(rng.uniform(-50, 50))) @ _rot_x(np.radians(rng.uniform(-20, 25)))
    head = neck + spine * (0.055 + head_r)
    hx, hy, hz = r_head @ x_axis, r_head @ up, r_head @ z_axis
    face = {
        NOSE: (0.0, -0.15, 1.02),
        L_EYE: (0.36, 0.18, 0.86),
        R_EYE: (-0.36, 0.18, 0.86),
        L_EAR: (0.92, 0.0, -0.08),
        R_EAR: (-0.92, 0.0, -0.08),
    }
    for jid, (a, b, c) in face.items():
        p[jid] = head + head_r * (a * hx + b * hy + c * hz)

    extra = {"neck": neck, "hand_l": p[L_WRI] + _unit(p[L_WRI] - p[L_ELB]) * 0.045,
             "hand_r": p[R_WRI] + _unit(p[R_WRI] - p[R_ELB]) * 0.045}
    # Feet point forward-ish from the ankle, along the body's z axis turned by the leg.
    for ank, name in ((L_ANK, "toe_l"), (R_ANK, "toe_r")):
        extra[name] = p[ank] + _unit(z_axis * 1.0 + (-up) * 0.25) * 0.075

    radii = np.full(J, 0.03)
    radii[[L_SHO, R_SHO]] = 0.042 * build
    radii[[L_ELB, R_ELB]] = 0.031 * build
    radii[[L_WRI, R_WRI]] = 0.022 * build
    radii[[L_HIP, R_HIP]] = 0.052 * build
    radii[[L_KNE, R_KNE]] = 0.039 * build
    radii[[L_ANK, R_ANK]] = 0.03 * build

    # Whole body: a heading, a slight in-plane tilt (rarely lying or falling), then centre the
    # figure so its pelvis is the origin.
    heading = _rot_y(np.radians(rng.uniform(*headings)))
    tilt_deg = rng.uniform(-12, 12) if rng.random() < 0.92 else rng.uniform(-95, 95)
    world = _rot_z(np.radians(tilt_deg)) @ heading

    def tr(v: np.ndarray) -> np.ndarray:
        return v @ world.T

    return Figure(
        joints=tr(p), head=tr(head), head_r=head_r, face_dir=tr(hz),
        extra={k: tr(v) for k, v in extra.items()}, radii=radii,
    )


# --------------------------------------------------------------------------------------------------
# Colors and textures
# --------------------------------------------------------------------------------------------------

_SKIN = np.array([[60, 90, 140], [80, 120, 180], [100, 150, 205], [140, 180, 225], [40, 60, 95],
                  [120, 160, 210]], dtype=np.float64)  # BGR


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _skin_color(rng: np.random.Generator) -> np.ndarray:
    return np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 12, 3), 0, 255)


def _texture(rng: np.random.Generator, shape: tuple[int, int], color: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: the color plain, striped or with blotchy noise."""
    cv2 = _cv2()
    h, w = shape
    kind = rng.random()
    base = np.empty((h, w, 3), np.float32)
    base[:] = color
    if kind < 0.45:
        return base
    if kind < 0.75:  # stripes at a random angle
        other = _random_color(rng)
        period = rng.uniform(3, 14)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        phase = (xx * np.cos(ang) + yy * np.sin(ang)) / period
        m = (np.floor(phase) % 2).astype(np.float32)[..., None]
        return base * (1 - m) + other.astype(np.float32) * m
    small = rng.normal(0, 1, (max(2, h // 6), max(2, w // 6), 3)).astype(np.float32)
    noise = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(base + noise * rng.uniform(10, 40), 0, 255)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float32 background: gradient, smooth noise or stripes, then clutter."""
    cv2 = _cv2()
    kind = rng.random()
    if kind < 0.35:
        c0, c1 = _random_color(rng), _random_color(rng)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = xx * np.cos(ang) + yy * np.sin(ang)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    elif kind < 0.75:
        cells = int(rng.integers(2, 16))
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0, rng.uniform(2, 15), (h, w, 3))
    else:
        img = _texture(rng, (h, w), _random_color(rng))
    img = img.astype(np.float32)
    # Clutter: shapes in random colors, including skin-colored blobs and limb-like sticks, so that
    # "a colored capsule" alone does not mean "a person".
    scale = min(w, h)
    for _ in range(int(rng.integers(0, 25))):
        color = (_skin_color(rng) if rng.random() < 0.15 else _random_color(rng)).tolist()
        shape = rng.random()
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        s = scale * np.exp(rng.uniform(np.log(0.02), np.log(0.3)))
        if shape < 0.35:
            p0 = (int(x * _ONE), int(y * _ONE))
            p1 = (int((x + rng.uniform(-s, s)) * _ONE), int((y + rng.uniform(-s, s)) * _ONE))
            cv2.rectangle(img, p0, p1, color, -1, cv2.LINE_8, _SHIFT)
        elif shape < 0.6:
            cv2.circle(img, (int(x * _ONE), int(y * _ONE)), int(s / 2 * _ONE), color, -1,
                       cv2.LINE_AA, _SHIFT)
        else:
            a = rng.uniform(0, np.pi)
            x1, y1 = x + np.cos(a) * s, y + np.sin(a) * s
            thick = max(1, int(scale * rng.uniform(0.005, 0.04)))
            cv2.line(img, (int(x * _ONE), int(y * _ONE)), (int(x1 * _ONE), int(y1 * _ONE)), color,
                     thick, cv2.LINE_AA, _SHIFT)
    return img


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------


def _capsule_poly(a: np.ndarray, b: np.ndarray, ra: float, rb: float, n: int = 10) -> np.ndarray:
    """Convex outline (K, 2) of a tapered limb: circles of radius ra at a and rb at b, joined."""
    angles = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    circ = np.stack([np.cos(angles), np.sin(angles)], 1)
    pts = np.concatenate([a + circ * ra, b + circ * rb])
    return _hull(pts)


def _hull(pts: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    fixed = np.round(pts * _ONE).astype(np.int32)
    return cv2.convexHull(fixed).reshape(-1, 2)


class _Canvas:
    """The image (float32 BGR) and the id buffer (uint8: 0 background, 1..254 people, 255 objects)."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.uint8)

    def fill(self, poly_fixed: np.ndarray, pid: int, color: np.ndarray, texture: np.ndarray | None,
             rng: np.random.Generator | None = None) -> None:
        """Fill a convex polygon (fixed-point (K, 2)) with a color or a texture (same size as image,
        or None), writing ``pid`` into the id buffer under it."""
        cv2 = _cv2()
        h, w = self.ids.shape
        x0, y0 = np.floor(poly_fixed.min(0) / _ONE).astype(int) - 1
        x1, y1 = np.ceil(poly_fixed.max(0) / _ONE).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, poly_fixed - np.array([x0, y0]) * _ONE, 1, cv2.LINE_8, _SHIFT)
        sel = mask.astype(bool)
        roi = self.image[y0:y1, x0:x1]
        roi[sel] = texture[y0:y1, x0:x1][sel] if texture is not None else color.astype(np.float32)
        self.ids[y0:y1, x0:x1][sel] = pid


def _draw_person(canvas: _Canvas, fig: Figure, pid: int, center: np.ndarray, height_px: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw one figure; returns its joints in cv2 pixel coordinates (17, 2) (pixel centres at
    integers) and their depth (17,) in the last column -> (17, 3)."""
    h, w = canvas.ids.shape

    def proj(v: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(v)
        return np.stack([center[0] + v[:, 0] * height_px, center[1] - v[:, 1] * height_px], 1)

    jp = proj(fig.joints)
    jz = fig.joints[:, 2]
    skin = _skin_color(rng)
    shirt, pants, shoes = _random_color(rng), _random_color(rng), _random_color(rng) * 0.5
    hair = np.clip(rng.choice([rng.uniform(0, 60, 3), rng.uniform(0, 255, 3)]), 0, 255)
    long_sleeves = rng.random() < 0.6
    long_pants = rng.random() < 0.75
    shirt_tex = _texture(rng, (h, w), shirt)
    pants_tex = _texture(rng, (h, w), pants)
    # Near-side parts a little brighter than far-side ones: a depth cue as on real bodies in light.
    zmin, zmax = float(jz.min()), float(jz.max())

    def shade(color_or_tex, z: float):
        f = 0.82 + 0.18 * (z - zmin) / max(zmax - zmin, 1e-6)
        return color_or_tex * f

    r = fig.radii * height_px
    parts: list[tuple[float, callable]] = []

    def limb(a: int | np.ndarray, b: int | np.ndarray, ra: float, rb: float, color, tex=None):
        pa = jp[a] if isinstance(a, (int, np.integer)) else proj(a)[0]
        pb = jp[b] if isinstance(b, (int, np.integer)) else proj(b)[0]
        za = jz[a] if isinstance(a, (int, np.integer)) else a[2]
        zb = jz[b] if isinstance(b, (int, np.integer)) else b[2]
        z = (za + zb) / 2
        poly = _capsule_poly(pa, pb, max(ra, 0.6), max(rb, 0.6))
        parts.append((z, lambda: canvas.fill(poly, pid, shade(color, z),
                                             None if tex is None else shade(tex, z))))

    # Torso: convex hull of discs at shoulders and hips.
    corners = np.concatenate([
        _capsule_poly(jp[L_SHO], jp[R_SHO], r[L_SHO], r[R_SHO]) / _ONE,
        _capsule_poly(jp[L_HIP], jp[R_HIP], r[L_HIP] * 0.9, r[R_HIP] * 0.9) / _ONE,
    ])
    torso_poly = _hull(corners)
    torso_z = float(jz[[L_SHO, R_SHO, L_HIP, R_HIP]].mean())
    parts.append((torso_z, lambda: canvas.fill(torso_poly, pid, shirt, shirt_tex)))
    # Pelvis band in the pants' color so that the hips read as legs' roots.
    limb(L_HIP, R_HIP, r[L_HIP], r[R_HIP], pants, pants_tex)
    neck = fig.extra["neck"]
    limb(neck, fig.head, 0.03 * height_px, 0.03 * height_px, skin)
    for s, e, wr, hand in ((L_SHO, L_ELB, L_WRI, "hand_l"), (R_SHO, R_ELB, R_WRI, "hand_r")):
        limb(s, e, r[s], r[e], shirt, shirt_tex)
        if long_sleeves:
            limb(e, wr, r[e], r[wr], shirt, shirt_tex)
        else:
            limb(e, wr, r[e], r[wr], skin)
        limb(wr, fig.extra[hand], r[wr] * 1.1, r[wr] * 0.9, skin)
    for hp, kn, an, toe in ((L_HIP, L_KNE, L_ANK, "toe_l"), (R_HIP, R_KNE, R_ANK, "toe_r")):
        limb(hp, kn, r[hp], r[kn], pants, pants_tex)
        limb(kn, an, r[kn], r[an], pants if long_pants else skin, pants_tex if long_pants else None)
        limb(an, fig.extra[toe], r[an], r[an] * 0.8, shoes)

    # Head: hair behind the face when the face looks at the camera, over it when it looks away.
    hc = proj(fig.head)[0]
    hr = fig.head_r * height_px
    facing = float(fig.face_dir[2])
    back = proj(fig.head - fig.face_dir * fig.head_r * 0.3 + np.array([0, 0.2, 0]) * fig.head_r)[0]

    def draw_head():
        cv2 = _cv2()
        hair_poly = _capsule_poly(back, back, hr * 1.02, hr * 1.02, 12)
        face_poly = _capsule_poly(hc, hc, hr, hr, 12)
        if facing > 0:
            canvas.fill(hair_poly, pid, hair, None)
            canvas.fill(face_poly, pid, skin, None)
        else:
            canvas.fill(face_poly, pid, skin, None)
            canvas.fill(hair_poly, pid, hair, None)
        # Facial marks only on the side that faces the camera.
        for jid, size, color in ((L_EYE, 0.16, (30, 30, 30)), (R_EYE, 0.16, (30, 30, 30)),
                                 (NOSE, 0.14, skin * 0.7)):
            normal = _unit(fig.joints[jid] - fig.head)
            if normal[2] > 0.15 and hr >= 2.5:
                c = (int(jp[jid][0] * _ONE), int(jp[jid][1] * _ONE))
                cv2.circle(canvas.image, c, max(1, int(size * hr * _ONE)),
                           tuple(float(v) for v in color), -1, cv2.LINE_AA, _SHIFT)
        for jid in (L_EAR, R_EAR):
            normal = _unit(fig.joints[jid] - fig.head)
            if normal[2] > -0.1 and hr >= 3:
                c = (int(jp[jid][0] * _ONE), int(jp[jid][1] * _ONE))
                cv2.circle(canvas.image, c, max(1, int(0.2 * hr * _ONE)),
                           tuple(float(v) for v in skin * 0.85), -1, cv2.LINE_AA, _SHIFT)

    parts.append((float(fig.head[2]), draw_head))
    for _, draw in sorted(parts, key=lambda t: t[0]):
        draw()
    return np.concatenate([jp, jz[:, None]], 1)


def _draw_occluders(canvas: _Canvas, rng: np.random.Generator, count: int) -> None:
    """Foreground objects (boxes, poles, discs) drawn over everything, id OCCLUDER_ID."""
    h, w = canvas.ids.shape
    scale = min(w, h)
    for _ in range(count):
        color = _random_color(rng)
        tex = _texture(rng, (h, w), color)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        kind = rng.random()
        if kind < 0.4:  # box
            bw, bh = scale * rng.uniform(0.05, 0.35), scale * rng.uniform(0.05, 0.35)
            pts = np.array([[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh]])
            poly = _hull(pts)
        elif kind < 0.7:  # pole / bar
            a = rng.uniform(0, np.pi)
            length = scale * rng.uniform(0.3, 1.2)
            p1 = np.array([x + np.cos(a) * length, y + np.sin(a) * length])
            poly = _capsule_poly(np.array([x, y]), p1, *(2 * [scale * rng.uniform(0.01, 0.04)]))
        else:  # disc
            rad = scale * rng.uniform(0.03, 0.15)
            poly = _capsule_poly(np.array([x, y]), np.array([x, y]), rad, rad, 12)
        canvas.fill(poly, OCCLUDER_ID, color, tex)


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
    cv2 = _cv2()
    w, h = int(size[0]), int(size[1])
    canvas = _Canvas(_background(rng, w, h))
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
        joints = _draw_person(canvas, fig, pid, center, hp, rng)
        placed.append((pid, joints, fig))
    _draw_occluders(canvas, rng, int(rng.integers(occluders[0], occluders[1] + 1)))

    anns = []
    for pid, joints, fig in placed:
        mask = canvas.ids == pid
        area = int(mask.sum())
        if area == 0:
            continue
        ys, xs = np.nonzero(mask)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
        kps = np.zeros((J, 3))
        for j in range(J):
            # Labels use the corner origin (pixel i spans [i, i + 1)); cv2 puts pixel centres at
            # integers, hence the half pixel.
            x, y = joints[j, 0] + 0.5, joints[j, 1] + 0.5
            if not (0.0 <= x < w and 0.0 <= y < h):
                continue
            px, py = min(int(np.floor(x)), w - 1), min(int(np.floor(y)), h - 1)
            v = 2 if canvas.ids[py, px] == pid else 1
            if j in FACE_JOINTS:
                # Face points on the far side of the head: occluded by the head itself, and not
                # labelled at all when well behind it (as COCO annotators leave them).
                normal_z = float(_unit(fig.joints[j] - fig.head)[2])
                if normal_z <= -0.3:
                    continue
                if normal_z <= 0.0:
                    v = 1
            kps[j] = (round(x, 2), round(y, 2), v)
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
    cv2 = _cv2()
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
    cv2 = _cv2()
    r = SAMPLE_RECIPE
    img, anns = render_scene(np.random.default_rng(list(r["seed"])), r["size"], r["people"],
                             r["height_range"], r["occluders"])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, r["jpeg_quality"]]):
        raise OSError(f"cannot write {path}")
    return anns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m higherhrnet_trt.references.scenes",
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
    raise SystemExit(main())
