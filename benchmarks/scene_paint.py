"""Painting generated scenes (benchmarks/scenes.py): colours and textures, backgrounds, people
drawn as tapered limbs in painter's order with an id buffer for visibility, occluders."""

from __future__ import annotations

import numpy as np

from higherhrnet_trt.core.lazy import lazy_import

from .scene_figure import (
    FACE_JOINTS,
    L_ANK,
    L_EAR,
    L_ELB,
    L_EYE,
    L_HIP,
    L_KNE,
    L_SHO,
    L_WRI,
    NOSE,
    R_ANK,
    R_EAR,
    R_ELB,
    R_EYE,
    R_HIP,
    R_KNE,
    R_SHO,
    R_WRI,
    Figure,
    J,
    _unit,
)

cv2 = lazy_import("cv2")

#: The id buffer value of foreground objects (people are 1..254, background 0).
OCCLUDER_ID = 255
#: cv2 drawing works in fixed point with this many fractional bits (sub-pixel placement of shapes).
_SHIFT = 4
_ONE = 1 << _SHIFT


def import_cv2():
    return cv2


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
    cv2 = import_cv2()
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


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float32 background: gradient, smooth noise or stripes, then clutter."""
    cv2 = import_cv2()
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
    cv2 = import_cv2()
    fixed = np.round(pts * _ONE).astype(np.int32)
    return cv2.convexHull(fixed).reshape(-1, 2)


class Canvas:
    """The image (float32 BGR) and the id buffer (uint8: 0 background, 1..254 people, 255 objects)."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.ids = np.zeros(image.shape[:2], np.uint8)

    def fill(self, poly_fixed: np.ndarray, pid: int, color: np.ndarray, texture: np.ndarray | None,
             rng: np.random.Generator | None = None) -> None:
        """Fill a convex polygon (fixed-point (K, 2)) with a color or a texture (same size as image,
        or None), writing ``pid`` into the id buffer under it."""
        cv2 = import_cv2()
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


def draw_person(canvas: Canvas, fig: Figure, pid: int, center: np.ndarray, height_px: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw one figure; returns its joints in cv2 pixel coordinates (17, 2) (pixel centres at
    integers) and their depth (17,) in the last column -> (17, 3)."""
    # One function on purpose: painter's order (far parts first) is one sequence of draws that
    # decides visibility labels; splitting it must keep every draw and its order.
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
        cv2 = import_cv2()
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


def joint_labels(canvas: Canvas, fig: Figure, pid: int, joints: np.ndarray) -> np.ndarray:
    """COCO labels of person ``pid`` as drawn: (J, 3) float (x, y, v), x / y in pixels with the
    corner origin, v = 2 visible, 1 occluded (another id on the canvas at the joint, or a face point
    just behind the head), all 0 when outside the image or well behind the head (unlabelled, as
    COCO annotators leave them). joints: draw_person's (J, 3) image-space joints."""
    h, w = canvas.ids.shape
    kps = np.zeros((J, 3))
    for j in range(J):
        # Labels use the corner origin (pixel i spans [i, i + 1)); cv2 puts pixel centres at
        # integers, hence the half pixel.
        x, y = joints[j, 0] + 0.5, joints[j, 1] + 0.5
        if not (0.0 <= x < w and 0.0 <= y < h):
            continue
        v = 2 if canvas.ids[min(int(y), h - 1), min(int(x), w - 1)] == pid else 1
        if j in FACE_JOINTS:
            normal_z = float(_unit(fig.joints[j] - fig.head)[2])
            if normal_z <= -0.3:
                continue
            if normal_z <= 0.0:
                v = 1
        kps[j] = (round(x, 2), round(y, 2), v)
    return kps


def draw_occluders(canvas: Canvas, rng: np.random.Generator, count: int) -> None:
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
