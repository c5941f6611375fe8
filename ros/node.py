"""The ROS 2 node: image topic in, people out, newest frame first.

Threads: an rclpy executor spins in a background thread; its callbacks only store the newest frame
(:class:`~.latest.LatestSlot`) and camera intrinsics. The main thread takes the newest frame, runs
``Pipeline.predict`` and publishes, with the input's header, on

- ``people`` (higherhrnet_trt_msgs/People: joints in pixels, see messages.py),
- ``people/markers`` (visualization_msgs/MarkerArray skeletons for RViz),
- ``people/image`` (sensor_msgs/Image bgr8, annotated; only with ``publish_image:=true``).

A frame still waiting when a newer one arrives is dropped (counted), and so is a frame stamped
before the last one answered: answers are never more than about one inference old. Ctrl-C and
SIGTERM (ros2 launch, systemd, docker stop) stop it cleanly: the loop ends, the node and the
model are released, a summary line is printed, exit status 0 (a launch file's normal shutdown).

Imports rclpy at module level: the CLI imports this module only when ``ros2`` runs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import rclpy
from higherhrnet_trt_msgs.msg import People
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from higherhrnet_trt.core.errors import UserError, interrupt_word
from higherhrnet_trt.runtime.draw import draw_poses
from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions, options_from
from higherhrnet_trt.runtime.pipeline import Pipeline

from . import messages
from .latest import LatestSlot

#: Node parameters: name -> help; the names of the options (runtime/options.py) they set. Their
#: defaults come from the command line (cli/ros2.py), and
#: ``--ros-args -p NAME:=VALUE`` (or a launch file's parameters) override those.
PARAMETERS: dict[str, str] = {
    "model": "model file (.onnx; .engine with a TensorRT backend)",
    "backend": "auto (from the file extension), onnxruntime, openvino, tensorrt, tensorrt-rtx, torch",
    "providers": "onnxruntime only: execution providers, comma-separated ('' = CPU)",
    "threads": "onnxruntime / openvino only: CPU threads (0 = the library's default)",
    "person_thr": "people whose score (mean joint score) is below this are not published",
    "max_people": "most people per frame (best scores)",
    "kpt_thr": "joints scored at or below this are left out of the markers and the image",
    "qos_depth": "history depth of the image subscription and of the publishers",
    "image_transport": "raw: subscribe to 'image' (sensor_msgs/Image); compressed: 'image/compressed'",
    "publish_image": "also publish the annotated image on 'people/image'",
    "marker_depth": "metres in front of the camera where the RViz skeletons are drawn",
    "track": "person IDs across frames: each person's track_id in 'people' (-1 without it)",
}


@dataclass
class _Frame:
    msg: object
    compressed: bool


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class PoseNode(Node):
    """The ``higherhrnet_trt`` node. ``defaults``: parameter name -> default (see PARAMETERS)."""

    def __init__(self, defaults: dict, context=None, node_name: str = "higherhrnet_trt") -> None:
        super().__init__(node_name, context=context)
        for name, text in PARAMETERS.items():
            self.declare_parameter(name, defaults[name], ParameterDescriptor(description=text))
        self.settings = {name: self.get_parameter(name).value for name in PARAMETERS}
        _check_settings(self.settings)
        self.slot: LatestSlot[_Frame] = LatestSlot()
        self.intrinsics: np.ndarray | None = None  # from camera_info, when published
        self.pipeline = None
        self.stale = self.undecodable = self.processed = 0
        self.latency_ms: deque[float] = deque(maxlen=100_000)  # header stamp -> published
        self.infer_ms: deque[float] = deque(maxlen=100_000)  # decode + predict + publish
        self._last_stamp_ns = -1
        self._warned: set[str] = set()

    # -- setup --------------------------------------------------------------------------------------
    def load_model(self) -> None:
        """Load the model before subscribing, so a wrong path fails at start in one line."""
        s = self.settings
        if not s["model"]:
            raise UserError("no model: higherhrnet-trt ros2 MODEL.onnx (or --ros-args -p model:=PATH)")
        if not os.path.isfile(s["model"]):
            raise UserError(f"model file not found: {s['model']}")
        model = options_from(ModelOptions, s)
        decode = options_from(DecodeOptions, s)  # person_thr, kpt_thr, max_people, track
        self.pipeline = Pipeline.from_options(model, decode).activate()
        joints = list(self.pipeline.keypoints.joint_names)
        self.declare_parameter("joint_names", joints, ParameterDescriptor(
            description="the model's joints, in the order of each person's keypoints (read only)",
            read_only=True))

    def start(self) -> None:
        """Create the subscriptions and publishers (after load_model)."""
        s = self.settings
        depth = s["qos_depth"]
        # Best effort subscriptions connect to reliable and best-effort (camera driver) publishers
        # alike; a reliable one would not connect to a best-effort camera at all.
        sub_qos = QoSProfile(depth=depth, reliability=qos_profile_sensor_data.reliability,
                             durability=qos_profile_sensor_data.durability,
                             history=qos_profile_sensor_data.history)
        if s["image_transport"] == "compressed":
            self.image_sub = self.create_subscription(
                CompressedImage, "image/compressed", lambda m: self._on_image(m, True), sub_qos)
        else:
            self.image_sub = self.create_subscription(
                Image, "image", lambda m: self._on_image(m, False), sub_qos)
        self.info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_info, sub_qos)
        self.people_pub = self.create_publisher(People, "people", depth)
        self.marker_pub = self.create_publisher(MarkerArray, "people/markers", depth)
        self.image_pub = self.create_publisher(Image, "people/image", depth) if s["publish_image"] else None
        meta = self.pipeline.meta
        outs = [self.people_pub.topic_name, self.marker_pub.topic_name]
        if self.image_pub is not None:
            outs.append(self.image_pub.topic_name)
        self.get_logger().info(
            f"model {meta.config_name or '?'} ({meta.dataset}, {self.pipeline.backend.name}); "
            f"listening on {self.image_sub.topic_name}; publishing {', '.join(outs)}")

    # -- executor-thread callbacks (cheap: store and return) -----------------------------------------
    def _on_image(self, msg, compressed: bool) -> None:
        self.slot.put(_Frame(msg, compressed))

    def _on_info(self, msg: CameraInfo) -> None:
        k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
        if k[0, 0] > 0 and k[1, 1] > 0:
            self.intrinsics = k

    # -- main-thread work ---------------------------------------------------------------------------
    def step(self, timeout: float = 0.2) -> bool:
        """Answer the newest waiting frame, if one comes within ``timeout`` s. True when one did."""
        frame = self.slot.take(timeout)
        if frame is None:
            return False
        header = frame.msg.header
        stamp = _stamp_ns(header.stamp)
        if stamp < self._last_stamp_ns:  # older than one already answered (out of order)
            self.stale += 1
            return False
        t0 = time.time_ns()
        try:
            image = (messages.compressed_to_bgr(frame.msg) if frame.compressed
                     else messages.image_to_bgr(frame.msg))
            poses = self.pipeline.predict(image)
        except (messages.UnsupportedImage, UserError) as e:  # this frame's fault (encoding, size)
            self.undecodable += 1
            self._warn_once(str(e).split(";")[0], f"skipping frames: {e}")
            return False
        self.publish(poses, image, header)
        now = time.time_ns()
        self._last_stamp_ns = stamp
        self.processed += 1
        self.infer_ms.append((now - t0) / 1e6)
        if stamp > 0:  # a publisher that leaves the stamp at 0 has no latency to measure
            self.latency_ms.append((now - stamp) / 1e6)
        return True

    def publish(self, poses, image: np.ndarray, header) -> None:
        """People of one frame on every output topic, with the frame's header."""
        s = self.settings
        self.people_pub.publish(messages.people_message(
            poses.keypoints, poses.scores, header, self.pipeline.keypoints.joint_names, poses.image_wh,
            poses.track_ids))
        # Markers and drawing cost milliseconds (~10 ms for 30 people, 2-core CPU): only when
        # someone listens.
        if self.marker_pub.get_subscription_count() > 0:
            k = self.intrinsics
            if k is None:
                k = messages.default_intrinsics(poses.image_wh)
            self.marker_pub.publish(messages.people_markers(
                poses.keypoints, header, self.pipeline.keypoints.skeleton, k, s["marker_depth"],
                s["kpt_thr"]))
        if self.image_pub is not None and self.image_pub.get_subscription_count() > 0:
            drawn = draw_poses(image, poses, self.pipeline.keypoints, kpt_thr=s["kpt_thr"])
            self.image_pub.publish(messages.bgr_to_image(drawn, header))

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def summary(self) -> str:
        """One line: frames in / answered / dropped, latency percentiles."""
        parts = [f"{self.slot.received} frames received, {self.processed} answered, "
                 f"{self.slot.dropped + self.stale} dropped as stale"]
        if self.undecodable:
            parts.append(f"{self.undecodable} skipped (undecodable or refused by the pipeline)")
        if self.latency_ms:
            lat = np.percentile(np.asarray(self.latency_ms), [50, 95])
            parts.append(f"latency (header stamp -> published) median {lat[0]:.0f} ms, p95 {lat[1]:.0f} ms")
        if self.infer_ms:
            parts.append(f"per answer {np.median(np.asarray(self.infer_ms)):.0f} ms")
        return "; ".join(parts)


def _check_settings(s: dict) -> None:
    """One-line errors naming the parameter to fix."""
    def bad(name: str, want: str) -> UserError:
        return UserError(f"parameter {name}={s[name]!r}: expected {want} (-p {name}:=VALUE)")

    for name in ("person_thr", "kpt_thr"):
        if not 0.0 <= float(s[name]) <= 1.0:
            raise bad(name, "a number from 0 to 1")
    for name in ("max_people", "qos_depth"):
        if int(s[name]) < 1:
            raise bad(name, "a whole number >= 1")
    if int(s["threads"]) < 0:
        raise bad("threads", "0 (the library's default) or more")
    if s["image_transport"] not in ("raw", "compressed"):
        raise bad("image_transport", "raw or compressed")
    if not float(s["marker_depth"]) > 0:
        raise bad("marker_depth", "a distance > 0 in metres")


def run(defaults: dict, ros_args: list[str]) -> int:
    """Run the node until Ctrl-C / SIGTERM. ``defaults``: PARAMETERS' defaults; ``ros_args``: what
    followed ``--ros-args`` (remaps ``-r``, parameters ``-p``, ``--params-file``...)."""
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    try:
        # No rclpy signal handlers: SIGINT / SIGTERM raise KeyboardInterrupt in this (main)
        # thread (core.errors.sigterm_as_interrupt, installed by the CLI), which ends the loop below.
        rclpy.init(args=["higherhrnet-trt", "--ros-args", *ros_args] if ros_args else ["higherhrnet-trt"],
                   context=context, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as e:  # rclpy's argument errors are RCLError / UnknownROSArgsError
        why = ("unknown " if type(e).__name__ == "UnknownROSArgsError" else "") + str(e).splitlines()[0]
        raise UserError(f"ROS arguments {' '.join(ros_args)!r} rejected ({why}); they are -r FROM:=TO, "
                        "-p NAME:=VALUE, --params-file FILE, --log-level LEVEL") from None
    node = executor = spinner = None
    reason = "stopped"
    started = False
    try:
        node = _make_node(defaults, context)
        node.load_model()
        node.start()
        started = True
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, name="ros-executor", daemon=True)
        spinner.start()
        while context.ok():
            node.step()
        reason = "ROS context shut down"
    except KeyboardInterrupt as e:
        reason = interrupt_word(e)
    finally:
        if node is not None:
            node.slot.close()
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        if spinner is not None:
            spinner.join(timeout=2.0)
        if node is not None:
            if node.pipeline is not None:
                node.pipeline.close()
            line = node.summary()
            node.destroy_node()
            if started:
                print(f"ros2: {reason}: {line}", file=sys.stderr)
        context.try_shutdown()
    return 0


def _make_node(defaults: dict, context) -> PoseNode:
    """PoseNode, with a parameter of the wrong type (``-p person_thr:=1`` for a double) as a
    one-line error instead of rclpy's traceback."""
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    try:
        return PoseNode(defaults, context=context)
    except (InvalidParameterTypeException, InvalidParameterValueException) as e:
        raise UserError(f"{str(e).splitlines()[0]} (numbers with a decimal point for thresholds and "
                        "marker_depth, e.g. -p person_thr:=1.0; true / false for publish_image)"
                        ) from None
