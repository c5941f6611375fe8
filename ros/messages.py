"""ROS 2 messages <-> NumPy, without cv_bridge (it has no wheel) and without rclpy at import time.

Readers take any object with the message's fields (a real message or a stand-in), so they are
testable without ROS. Writers import the message classes when called.

Output formats (see the README's ROS 2 section for why these):

- ``people``: higherhrnet_trt_msgs/People (ros/interfaces/higherhrnet_trt_msgs/msg, built into the
  environment by ``python -m higherhrnet_trt.ros.build_msgs``): the input's header, the image size,
  the model's ``joint_names`` and per person (best score first) ``score``, ``track_id`` (-1: not
  tracked) and one Keypoint per joint with ``x``, ``y`` in *pixels* (x right, y down, pixel centres at
  integer + 0.5 as in Poses) and the joint's ``score``. A message type of its own, so no generic
  tool takes the pixels for metres (a PointCloud2 would be drawn and filtered as metres).
  :func:`people_message` builds it, :func:`read_people` turns it back into
  ``(keypoints (P, J, 3), scores (P,))``.
- ``people/markers``: visualization_msgs/MarkerArray skeletons for RViz (see :func:`people_markers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from higherhrnet_trt.core.lazy import import_cv2
from higherhrnet_trt.runtime.draw import person_color

#: sensor_msgs/Image encodings we read -> (channels, OpenCV conversion to BGR or None).
#: 'yuv422' is UYVY in ROS' naming (usb_cam, many drivers); 'yuv422_yuy2' is YUYV.
_ENCODINGS: dict[str, tuple[int, str | None]] = {
    "bgr8": (3, None), "8UC3": (3, None), "rgb8": (3, "COLOR_RGB2BGR"),
    "bgra8": (4, "COLOR_BGRA2BGR"), "8UC4": (4, "COLOR_BGRA2BGR"), "rgba8": (4, "COLOR_RGBA2BGR"),
    "mono8": (1, "COLOR_GRAY2BGR"), "8UC1": (1, "COLOR_GRAY2BGR"),
    "yuv422": (2, "COLOR_YUV2BGR_UYVY"), "uyvy": (2, "COLOR_YUV2BGR_UYVY"),
    "yuv422_yuy2": (2, "COLOR_YUV2BGR_YUY2"), "yuyv": (2, "COLOR_YUV2BGR_YUY2"),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)

class UnsupportedImage(ValueError):
    """An image message this node cannot decode (its encoding, or a broken payload)."""


# --------------------------------------------------------------------------------------------------
# Images in
# --------------------------------------------------------------------------------------------------


def image_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 BGR (a view of the message's buffer for bgr8 without
    row padding, else a copy). Honours ``step`` (rows padded past width * channels).

    Raises UnsupportedImage for encodings outside SUPPORTED_ENCODINGS (16-bit, float, Bayer) or a
    payload shorter than height * step.
    """
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        raise UnsupportedImage(f"image encoding {encoding!r} is not supported; publish one of "
                               f"{', '.join(SUPPORTED_ENCODINGS)}")
    channels, conversion = _ENCODINGS[encoding]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h < 1 or w < 1 or step < w * channels:
        raise UnsupportedImage(f"image of {w}x{h} with step {step} (< width * {channels} bytes)")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < h * step:
        raise UnsupportedImage(f"image of {w}x{h}, step {step} needs {h * step} bytes, got {buf.size}")
    rows = buf[: h * step].reshape(h, step)[:, : w * channels]
    pixels = rows.reshape(h, w, channels) if channels > 1 else rows.reshape(h, w)
    if conversion is None:
        return pixels

    cv2 = import_cv2()
    return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, conversion))


def compressed_to_bgr(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG, PNG: whatever OpenCV decodes) -> (H, W, 3) uint8 BGR.

    ``format`` is not needed to decode (the bytes say what they are); image_transport's
    'rgb8; jpeg compressed bgr8' style strings mean a JPEG of BGR pixels, which imdecode returns.
    Raises UnsupportedImage when the bytes do not decode.
    """
    cv2 = import_cv2()
    data = np.frombuffer(msg.data, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnsupportedImage(f"compressed image ({msg.format!r}, {data.size} bytes) did not decode")
    return image


# --------------------------------------------------------------------------------------------------
# Messages out
# --------------------------------------------------------------------------------------------------


def bgr_to_image(image: np.ndarray, header):
    """(H, W, 3) uint8 BGR -> sensor_msgs/Image (bgr8) with the given header."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "bgr8"
    msg.is_bigendian = 0
    msg.step = int(image.shape[1]) * 3
    msg.data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return msg


def people_message(keypoints: np.ndarray, scores: np.ndarray, header, joint_names: Sequence[str],
                   image_wh: tuple[int, int], track_ids: np.ndarray | None = None):
    """People -> higherhrnet_trt_msgs/People (see module docstring).

    keypoints: (P, J, 3) float32 [x, y, score] frame pixels; scores: (P,) person scores;
    joint_names: J names in keypoint order; image_wh: (width, height) pixels of the frame;
    track_ids: (P,) ints, or None for -1 each (no tracking).
    """
    from higherhrnet_trt_msgs.msg import Keypoint, People, Person

    kpts = np.asarray(keypoints, dtype=np.float32)
    if kpts.ndim != 3 or kpts.shape[2] != 3 or kpts.shape[1] != len(joint_names):
        raise ValueError(f"keypoints of shape {kpts.shape} for {len(joint_names)} joint names")
    ids = [-1] * len(kpts) if track_ids is None else [int(i) for i in track_ids]
    msg = People(header=header, image_width=int(image_wh[0]), image_height=int(image_wh[1]),
                 joint_names=[str(n) for n in joint_names])
    msg.people = [Person(score=score, track_id=track,
                         keypoints=[Keypoint(x=x, y=y, score=v) for x, y, v in row])
                  for score, track, row in zip(np.asarray(scores, np.float32).tolist(), ids, kpts.tolist())]
    return msg


def read_people(msg) -> tuple[np.ndarray, np.ndarray]:
    """higherhrnet_trt_msgs/People -> (keypoints (P, J, 3) float32 [x, y, score] pixels, scores (P,)
    float32), J = len(msg.joint_names). What a program subscribing to ``people`` needs.

    Raises ValueError for a person whose keypoint count is not the joint count (a message of
    another producer that breaks the layout), rather than returning a ragged array.
    """
    j = len(msg.joint_names)
    rows = []
    for i, person in enumerate(msg.people):
        if len(person.keypoints) != j:
            raise ValueError(f"person {i} has {len(person.keypoints)} keypoints for {j} joint names")
        rows.append([(k.x, k.y, k.score) for k in person.keypoints])
    keypoints = np.array(rows, dtype=np.float32).reshape(len(rows), j, 3)
    scores = np.array([p.score for p in msg.people], dtype=np.float32)
    return keypoints, scores


# --------------------------------------------------------------------------------------------------
# RViz markers
# --------------------------------------------------------------------------------------------------


def default_intrinsics(image_wh: tuple[int, int]) -> np.ndarray:
    """3x3 pinhole matrix when no CameraInfo came: focal length = image width (~53 deg horizontal
    field of view), principal point at the image centre. Only places the RViz markers."""
    w, h = image_wh
    return np.array([[w, 0.0, w / 2.0], [0.0, w, h / 2.0], [0.0, 0.0, 1.0]])


def pixels_to_plane(uv: np.ndarray, k: np.ndarray, depth: float) -> np.ndarray:
    """Pixels (N, 2) -> (N, 3) points in the camera's optical frame (x right, y down, z forward, m)
    on the plane z = depth, along each pixel's ray: where a Camera display in RViz, which renders
    the scene through the same intrinsics, draws them over the pixel they came from."""
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    x = (uv[:, 0] - cx) / fx * depth
    y = (uv[:, 1] - cy) / fy * depth
    return np.stack([x, y, np.full_like(x, depth)], axis=1)


def people_markers(
    keypoints: np.ndarray,
    header,
    skeleton: Sequence[tuple[int, int]],
    intrinsics: np.ndarray,
    depth: float = 2.0,
    kpt_thr: float = 0.1,
):
    """People -> visualization_msgs/MarkerArray for RViz, in the header's frame (a camera optical
    frame: x right, y down, z forward).

    The first marker deletes every marker of the previous frame (DELETEALL); then per person i
    (best first) a LINE_LIST ``skeleton``/i of the limbs whose two joints score above kpt_thr and a
    SPHERE_LIST ``joints``/i of those joints, in the person's colour (the annotated image's). 2D
    keypoints have no depth: they are drawn on the plane ``depth`` metres in front of the camera,
    along their pixel rays (:func:`pixels_to_plane`). Line width: 1 % of depth.
    """
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    clear = Marker()
    clear.header = header
    clear.action = Marker.DELETEALL
    out.markers.append(clear)
    kpts = np.asarray(keypoints, dtype=np.float32)
    width = 0.01 * depth
    for i in range(kpts.shape[0]):
        visible = (kpts[i, :, 2] > kpt_thr) & np.isfinite(kpts[i]).all(axis=1)
        if not visible.any():
            continue
        xyz = pixels_to_plane(kpts[i, :, :2], intrinsics, depth)
        b, g, r = person_color(i)
        color = ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)
        limbs = [(a, c) for a, c in skeleton if visible[a] and visible[c]]
        for ns, kind, joints, size in (
            ("skeleton", Marker.LINE_LIST, [j for limb in limbs for j in limb], width),
            ("joints", Marker.SPHERE_LIST, np.flatnonzero(visible).tolist(), 2.5 * width),
        ):
            if not joints:
                continue
            m = Marker()
            m.header = header
            m.ns, m.id, m.type, m.action = ns, i, kind, Marker.ADD
            m.pose.orientation.w = 1.0
            m.scale.x = m.scale.y = m.scale.z = size
            m.color = color
            m.points = [Point(x=float(xyz[j, 0]), y=float(xyz[j, 1]), z=float(xyz[j, 2])) for j in joints]
            out.markers.append(m)
    return out
