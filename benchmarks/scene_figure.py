"""The articulated 3-D stick figure of a generated person (benchmarks/scenes.py): sampling a pose
within rough human joint limits, turned to a heading, orthographically projected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.core.keypoints import COCO

J = COCO.num_joints
(NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI,
 L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK) = range(J)
FACE_JOINTS = (NOSE, L_EYE, R_EYE, L_EAR, R_EAR)


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
    # One function on purpose: the order of its random draws defines every generated dataset
    # (image i of seed s); splitting it must keep each draw in place.
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
