"""A camera stand-in and a people listener, to check or measure the node without a robot.

    python -m higherhrnet_trt.ros.probe publish IMAGE [--rate 30] [--duration S] [--compressed png]
    python -m higherhrnet_trt.ros.probe listen [--count N] [--timeout S] [--out people.json]

``publish`` sends one image file again and again as sensor_msgs/Image (or CompressedImage on
TOPIC/compressed), each message stamped with the wall clock at sending and frame_id --frame-id,
best effort like a camera driver; ``--stamps FILE`` logs each stamp (ns), one a line.
``listen`` subscribes to the node's ``people`` (higherhrnet_trt_msgs/People) and writes, per
message, its stamp, frame_id, the wall-clock time it arrived, the people (read_people), joint names,
image size, track ids and the latency (arrival - stamp), as JSON;
with --markers / --image also the headers of ``people/markers`` and ``people/image``.
Both stop at their count / time limit or on Ctrl-C / SIGTERM, writing what they have.

Run them with the Python that has rclpy (the ROS venv); remap or namespace with --ros-args.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

from higherhrnet_trt.core.errors import sigterm_as_interrupt
from higherhrnet_trt.core.lazy import import_cv2

from .messages import read_people

#: Fast DDS profile: UDP on 127.0.0.1 only, no shared memory, so tests and benchmarks go through
#: the loopback interface and never reach another host (discovery included).
LOOPBACK_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<dds>
  <profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>loopback_udp</transport_id>
        <type>UDPv4</type>
        <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="loopback_only" is_default_profile="true">
      <rtps>
        <userTransports><transport_id>loopback_udp</transport_id></userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def loopback_env(folder: str, domain_id: int | None = None) -> dict[str, str]:
    """Environment for ROS processes that talk over 127.0.0.1 only: Fast DDS with
    LOOPBACK_PROFILE (written into ``folder``) and a random ROS_DOMAIN_ID (1-100) unless given,
    so runs of other people on the same machine do not see each other."""
    path = os.path.join(folder, "fastdds_loopback.xml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(LOOPBACK_PROFILE)
    env = dict(os.environ)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)  # let the ROS venv's Python set its own paths
    env.update({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "FASTDDS_DEFAULT_PROFILES_FILE": path,
                "ROS_DOMAIN_ID": str(domain_id if domain_id is not None else random.randint(1, 100))})
    env.pop("ROS_AUTOMATIC_DISCOVERY_RANGE", None)  # the profile decides
    return env


def _init(ros_args: list[str]):
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(args=["probe", "--ros-args", *ros_args] if ros_args else None, context=context,
               signal_handler_options=SignalHandlerOptions.NO)
    return context


def _image_message(path: str, encoding: str, compressed: str | None):
    """The message to send, built once (its header is set per send)."""
    import numpy as np
    from sensor_msgs.msg import CompressedImage, Image

    cv2 = import_cv2()
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"error: cannot read image {path}")
    if compressed:
        ok, data = cv2.imencode("." + compressed, bgr)
        msg = CompressedImage()
        msg.format = compressed
        msg.data = data.tobytes()
        return msg
    pixels = {"bgr8": bgr, "rgb8": bgr[:, :, ::-1],
              "mono8": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)}[encoding]
    msg = Image()
    msg.height, msg.width = int(bgr.shape[0]), int(bgr.shape[1])
    msg.encoding = encoding
    msg.step = int(pixels.shape[1] * (pixels.shape[2] if pixels.ndim == 3 else 1))
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def publish(args) -> int:
    """Send the image at ``--rate`` Hz (on a fixed schedule: a late send does not cause a burst)."""
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage

    context = _init(args.ros_args or [])
    node = Node("image_probe", context=context)
    msg = _image_message(args.image, args.encoding, args.compressed)
    compressed = isinstance(msg, CompressedImage)
    qos = QoSProfile(depth=1) if args.reliable else qos_profile_sensor_data
    pub = node.create_publisher(type(msg), args.topic + ("/compressed" if compressed else ""), qos)
    msg.header.frame_id = args.frame_id
    stamps = open(args.stamps, "w", encoding="ascii") if args.stamps else None
    period = 1.0 / args.rate
    start = t0 = time.monotonic()
    sent = 0
    try:
        while (not args.count or sent < args.count) and (
                not args.duration or time.monotonic() - t0 < args.duration):
            now_ns = time.time_ns()
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
            pub.publish(msg)
            sent += 1
            if stamps:
                stamps.write(f"{now_ns}\n")
                stamps.flush()
            ahead = start + sent * period - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            else:  # late: keep the schedule from here on instead of catching up in a burst
                start -= ahead
    except KeyboardInterrupt:
        pass
    finally:
        if stamps:
            stamps.close()
        node.destroy_node()
        context.try_shutdown()
    print(f"probe: published {sent} frames in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


def listen(args) -> int:
    """Collect ``people`` messages (and with --markers / --image the other outputs' headers) until
    ``--count`` of each or ``--timeout``; write them as JSON {"people": [...], "markers": [...],
    "images": [...]}."""
    from higherhrnet_trt_msgs.msg import People
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    context = _init(args.ros_args or [])
    node = Node("people_probe", context=context)
    got: dict[str, list[dict]] = {"people": [], "markers": [], "images": []}

    def header(msg) -> dict:
        arrived = time.time_ns()
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        return {"stamp_ns": stamp, "frame_id": msg.header.frame_id, "arrived_ns": arrived,
                "latency_ms": (arrived - stamp) / 1e6}

    def on_people(msg) -> None:
        keypoints, scores = read_people(msg)
        got["people"].append({**header(msg), "keypoints": keypoints.tolist(), "scores": scores.tolist(),
                              "joint_names": list(msg.joint_names),
                              "image_wh": [msg.image_width, msg.image_height],
                              "track_ids": [p.track_id for p in msg.people]})

    def on_markers(msg) -> None:
        first = msg.markers[0] if msg.markers else None
        got["markers"].append({**(header(first) if first else {}), "count": len(msg.markers),
                               "actions": [m.action for m in msg.markers],
                               "namespaces": [m.ns for m in msg.markers]})

    def on_image(msg) -> None:
        got["images"].append({**header(msg), "encoding": msg.encoding, "hw": [msg.height, msg.width]})

    wanted = {"people": args.count, "markers": args.count if args.markers else 0,
              "images": args.count if args.image else 0}
    node.create_subscription(People, args.topic, on_people, 10)
    if args.markers:
        node.create_subscription(MarkerArray, args.topic + "/markers", on_markers, 10)
    if args.image:
        node.create_subscription(Image, args.topic + "/image", on_image, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    start = time.monotonic()

    def done() -> bool:
        return all(len(got[k]) >= n for k, n in wanted.items())

    try:
        while not done() and time.monotonic() - start < args.timeout:
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    text = json.dumps(got)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text)
    print(f"probe: received {', '.join(f'{len(v)} {k}' for k, v in got.items())}", file=sys.stderr)
    return 0 if done() else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m higherhrnet_trt.ros.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish", help="send an image file as a camera would")
    p.add_argument("image")
    p.add_argument("--topic", default="image")
    p.add_argument("--rate", type=float, default=30.0, help="messages per second")
    p.add_argument("--count", type=int, default=0, help="stop after N messages (0: no limit)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: no limit)")
    p.add_argument("--frame-id", default="camera_optical_frame")
    p.add_argument("--encoding", choices=("bgr8", "rgb8", "mono8"), default="bgr8")
    p.add_argument("--compressed", choices=("png", "jpg"), help="send a CompressedImage on TOPIC/compressed")
    p.add_argument("--reliable", action="store_true", help="reliable QoS instead of best effort")
    p.add_argument("--stamps", metavar="FILE", help="log each stamp (ns since the epoch), one a line")
    p.add_argument("--ros-args", nargs=argparse.REMAINDER, dest="ros_args")
    p.set_defaults(func=publish)
    q = sub.add_parser("listen", help="collect the node's people messages")
    q.add_argument("--topic", default="people")
    q.add_argument("--count", type=int, default=1)
    q.add_argument("--timeout", type=float, default=60.0, help="seconds")
    q.add_argument("--markers", action="store_true", help="also wait for --count TOPIC/markers messages")
    q.add_argument("--image", action="store_true", help="also wait for --count TOPIC/image messages")
    q.add_argument("--out", metavar="FILE.json")
    q.add_argument("--ros-args", nargs=argparse.REMAINDER, dest="ros_args")
    q.set_defaults(func=listen)
    args = parser.parse_args(argv)
    with sigterm_as_interrupt():
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
