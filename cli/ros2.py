"""``higherhrnet-trt ros2 MODEL``: the pose node for ROS 2 (node.py); ``ros2-echo``: its people
printed (echo.py; the PyPI ROS wheels have no ``ros2 topic echo``).

Nothing of ROS at module level: ``higherhrnet-trt --help`` works without rclpy, and ``ros2`` without
it says in one line how to get it. The model and threshold flags are cli/flags.py's, and the node's
parameters carry the same names (person_thr, kpt_thr, max_people, ...).
"""

from __future__ import annotations

import argparse
import importlib

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.ros import echo
from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions, options_from

from .args import HelpFormatter, paragraphs, positive_int, setup_logging
from .flags import add_flags

#: Top-level modules of the ROS 2 packages the node imports; a missing one is an install problem.
_ROS_MODULES = {"rclpy", "rcl_interfaces", "sensor_msgs", "visualization_msgs", "geometry_msgs",
                "std_msgs", "builtin_interfaces"}

INSTALL_HINT = ("pip install 'higherhrnet-trt[ros]' into a virtual environment of its own (see README, "
                "'ROS 2'), or source your ROS 2 install first (e.g. source /opt/ros/humble/setup.bash)")


def register(sub) -> None:
    p = sub.add_parser(
        "ros2",
        help="ROS 2 node: image topic in, people (higherhrnet_trt_msgs/People + RViz markers) out",
        description=paragraphs(
            "A ROS 2 node running the model on each newest frame of an image topic and publishing "
            "the people with the frame's header (stamp, frame_id): 'people' "
            "(higherhrnet_trt_msgs/People: per person, best first, a score, a track id and the joints "
            "x, y in pixels with their scores; 'higherhrnet-trt ros2-echo' prints them), "
            "'people/markers' (visualization_msgs/MarkerArray skeletons for RViz) and, with "
            "--publish-image, 'people/image' (annotated sensor_msgs/Image).",
            "Subscribes to 'image' (sensor_msgs/Image: bgr8, rgb8, bgra8, rgba8, mono8, yuv422) or, "
            "with --image-transport compressed, to 'image/compressed' (JPEG / PNG), and to "
            "'camera_info' for the markers' placement. Rename topics with --ros-args -r "
            "image:=/camera/image_raw. A frame still waiting when a newer one arrives is dropped, "
            "so answers stay about one inference old. Every option is also a node parameter "
            "(--ros-args -p person_thr:=0.3, launch files, --params-file), which wins over "
            "the option. Ctrl-C / SIGTERM stop it cleanly with a summary line, exit status 0.",
            "Needs rclpy, the common message packages and higherhrnet_trt_msgs built in the same "
            "environment: make ros-setup (PyPI ROS 2 wheels in a virtual environment of their own, then "
            "python -m higherhrnet_trt.ros.build_msgs) or a sourced ROS 2 installation.",
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  higherhrnet-trt ros2 model.onnx --ros-args -r image:=/camera/color/image_raw\n"
            "  higherhrnet-trt ros2 model.engine --publish-image --image-transport compressed \\\n"
            "    --ros-args -r image/compressed:=/camera/image_raw/compressed -r __ns:=/front\n"
            "  higherhrnet-trt ros2 --ros-args -p model:=model.onnx -p person_thr:=0.3"
        ),
    )
    add_flags(p, ModelOptions, ["model", "backend", "providers", "threads"],
              model=dict(nargs="?", default="", help=(
                  "model exported by 'higherhrnet-trt export' (.onnx; .engine with a TensorRT backend); "
                  "or parameter model")),
              backend=dict(help="auto (from the file extension), onnxruntime, openvino, tensorrt, "
                                "tensorrt-rtx, torch"))
    add_flags(p, DecodeOptions, ["person_thr", "max_people", "kpt_thr"],
              person_thr=dict(help="people scored below this (mean joint score) are not published"),
              kpt_thr=dict(help="joints scored at or below this are left out of the markers and the "
                                "image (the people message keeps every joint with its score)"))
    p.add_argument("--qos-depth", type=positive_int, default=1,
                   help="history depth of the subscription (best effort) and the publishers (reliable); "
                        "the node answers the newest frame whatever the depth")
    p.add_argument("--image-transport", choices=("raw", "compressed"), default="raw",
                   help="raw: sensor_msgs/Image on 'image'; compressed: sensor_msgs/CompressedImage on "
                        "'image/compressed'")
    p.add_argument("--publish-image", action="store_true",
                   help="also publish the annotated frame on 'people/image' (bgr8)")
    p.add_argument("--marker-depth", type=float, default=2.0, metavar="METRES",
                   help="RViz skeletons are drawn on the plane this far in front of the camera, along "
                        "each joint's pixel ray (intrinsics from 'camera_info', else a 53 deg guess)")
    add_flags(p, DecodeOptions, ["track"], track=dict(
        help="person IDs across frames: each person's track_id in 'people' is the same on the same "
             "person (-1 without --track or for a person not tracked)"))
    p.add_argument("--ros-args", nargs=argparse.REMAINDER, dest="ros_args",
                   help="everything after it goes to ROS: -r FROM:=TO remaps, -p NAME:=VALUE "
                        "parameters, --params-file FILE, --log-level LEVEL")
    p.set_defaults(func=run_ros2)
    _register_echo(sub)


def _register_echo(sub) -> None:
    p = sub.add_parser(
        "ros2-echo",
        help="print the people a ros2 node publishes (the ROS wheels have no 'ros2 topic echo')",
        description="Subscribe to a higherhrnet_trt_msgs/People topic and print each message: stamp, "
                    "frame_id, image size, and per person its score, track id and the pixel box of its "
                    "joints above --kpt-thr (--joints: every joint; --json: one JSON object a line). "
                    "Run it with the node's environment (ROS_DOMAIN_ID, the ROS venv).",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
               "  higherhrnet-trt ros2-echo\n"
               "  higherhrnet-trt ros2-echo /front/people --count 1 --joints\n"
               "  higherhrnet-trt ros2-echo --json --ros-args -r __ns:=/front > people.jsonl",
    )
    p.add_argument("topic", nargs="?", default="people", help="the People topic (relative names take "
                                                               "--ros-args -r __ns:=...)")
    p.add_argument("--count", type=int, default=0, help="stop after N messages (0: until Ctrl-C)")
    p.add_argument("--timeout", type=float, default=0.0, metavar="S",
                   help="fail if no message came within S seconds (0: wait for ever)")
    p.add_argument("--json", action="store_true", help="one JSON object a message (pixels, scores)")
    p.add_argument("--joints", action="store_true", help="also print every joint: name, x, y, score")
    add_flags(p, DecodeOptions, ["kpt_thr"], kpt_thr=dict(
        help="joints scored at or below this are left out of each person's box"))
    p.add_argument("--ros-args", nargs=argparse.REMAINDER, dest="ros_args",
                   help="everything after it goes to ROS (remaps, e.g. -r __ns:=/front)")
    p.set_defaults(func=run_echo)


def _import_ros(name: str):
    """Import module ``name`` (one that needs ROS), turning a missing ROS package into one line
    that says how to get it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        top = (e.name or "").split(".")[0]
        if top == "higherhrnet_trt_msgs":
            raise UserError("the people message package higherhrnet_trt_msgs is not built in this "
                            "environment: python -m higherhrnet_trt.ros.build_msgs (make ros-setup "
                            "does; with a ROS 2 install, colcon build ros/interfaces)") from None
        if top in _ROS_MODULES:
            raise UserError(f"ROS 2 Python packages are missing ({e.name}): {INSTALL_HINT}") from None
        if not e.name and "rclpy" in str(e):  # installed, but its libraries did not load
            raise UserError(f"rclpy did not load ({str(e).splitlines()[0]}): {INSTALL_HINT}") from None
        raise


def run_echo(args) -> int:
    for needed in ("rclpy", "higherhrnet_trt_msgs.msg"):  # echo imports them when it runs
        _import_ros(needed)
    return echo.echo(args.topic, args.count, args.timeout, args.json, args.kpt_thr, args.joints,
                     list(args.ros_args or []))


def run_ros2(args) -> int:
    node = _import_ros("higherhrnet_trt.ros.node")
    setup_logging()
    model = options_from(ModelOptions, args)
    decode = options_from(DecodeOptions, args)
    defaults = {  # the node's parameters: the options' field names
        "model": model.model, "backend": model.backend, "providers": ",".join(model.providers or ()),
        "threads": model.threads, "person_thr": decode.person_thr, "max_people": decode.max_people,
        "kpt_thr": decode.kpt_thr, "qos_depth": args.qos_depth, "image_transport": args.image_transport,
        "publish_image": args.publish_image, "marker_depth": float(args.marker_depth),
        "track": decode.track,
    }
    return node.run(defaults, list(args.ros_args or []))
