"""``higherhrnet-trt ros2-echo [TOPIC]``: print the node's people as they arrive.

The PyPI ROS wheels have no ``ros2`` command (``ros2 topic echo``); this subscribes to a
higherhrnet_trt_msgs/People topic and prints each message: a line with its stamp, frame_id, image
size and people count, then a line per person (score, track id, how many joints score above
``--kpt-thr`` and the pixel box around them; ``--joints`` adds every joint), or with
``--json`` one JSON object a line for programs.

The formatting functions take any object with People's fields, so they are testable without ROS;
rclpy is imported by :func:`echo` only.
"""

from __future__ import annotations

import json
import sys
import time

from higherhrnet_trt.core.errors import UserError


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def people_to_dict(msg) -> dict:
    """People -> plain JSON-able dict: stamp_ns, frame_id, image_wh, joint_names, and per person
    score, track_id and keypoints [[x, y, score], ...] (pixels)."""
    return {
        "stamp_ns": _stamp_ns(msg.header), "frame_id": str(msg.header.frame_id),
        "image_wh": [int(msg.image_width), int(msg.image_height)],
        "joint_names": [str(n) for n in msg.joint_names],
        "people": [{"score": float(p.score), "track_id": int(p.track_id),
                    "keypoints": [[float(k.x), float(k.y), float(k.score)] for k in p.keypoints]}
                   for p in msg.people],
    }


def format_people(msg, kpt_thr: float = 0.1, joints: bool = False) -> str:
    """People -> lines for a terminal (no trailing newline). Pixels to one decimal, scores to two.

    A person line reads ``#i score S track T: V/J joints > kpt_thr in x0,y0 - x1,y1 px`` (the box
    spans the joints above kpt_thr; ``no joint > kpt_thr`` when none is); ``joints`` adds a
    ``name x y score`` line per joint.
    """
    stamp = _stamp_ns(msg.header)
    names = list(msg.joint_names)
    head = (f"stamp {stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d} frame_id {msg.header.frame_id!r} "
            f"image {msg.image_width}x{msg.image_height}: {len(msg.people)} "
            f"{'person' if len(msg.people) == 1 else 'people'}")
    lines = [head]
    for i, person in enumerate(msg.people):
        seen = [k for k in person.keypoints if k.score > kpt_thr]
        track = "-" if person.track_id < 0 else str(person.track_id)
        where = (f"{len(seen)}/{len(person.keypoints)} joints > {kpt_thr:g} in "
                 f"{min(k.x for k in seen):.1f},{min(k.y for k in seen):.1f} - "
                 f"{max(k.x for k in seen):.1f},{max(k.y for k in seen):.1f} px"
                 if seen else f"no joint > {kpt_thr:g}")
        lines.append(f"  #{i} score {person.score:.2f} track {track}: {where}")
        if joints:
            for j, k in enumerate(person.keypoints):
                name = names[j] if j < len(names) else f"joint{j}"
                lines.append(f"      {name:<16} {k.x:7.1f} {k.y:7.1f}  {k.score:.2f}")
    return "\n".join(lines)


def _why_nothing(node, topic: str) -> str:
    """What the graph says about a topic that delivered nothing: its publishers' types, or the
    topics that do have publishers (a wrong name or namespace shows there)."""
    types = {info.topic_type for info in node.get_publishers_info_by_topic(topic)}
    if types - {"higherhrnet_trt_msgs/msg/People"}:
        return f"its publishers send {', '.join(sorted(types))}"
    if types:
        return "it has a People publisher, but nothing arrived: is the node getting images?"
    published = sorted(name for name, _ in node.get_topic_names_and_types()
                       if name != topic and node.count_publishers(name) > 0)
    return (f"nothing publishes it; published topics: {', '.join(published) or 'none'}; check the "
            f"node's namespace and ROS_DOMAIN_ID")


def echo(topic: str, count: int, timeout: float, as_json: bool, kpt_thr: float, joints: bool,
         ros_args: list[str]) -> int:
    """Subscribe to ``topic`` (People, reliable, depth 10) and print until ``count`` messages (0: no
    limit), ``timeout`` seconds without a first message (0: wait forever), or Ctrl-C / SIGTERM.

    Returns 0, or raises UserError when nothing came within ``timeout`` (naming the topics seen).
    """
    import rclpy
    from higherhrnet_trt_msgs.msg import People
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(args=["ros2-echo", "--ros-args", *ros_args] if ros_args else None, context=context,
               signal_handler_options=SignalHandlerOptions.NO)
    node = Node("people_echo", context=context)
    got = 0

    def on_people(msg) -> None:
        nonlocal got
        got += 1
        text = json.dumps(people_to_dict(msg)) if as_json else format_people(msg, kpt_thr, joints)
        print(text, flush=True)

    try:
        sub = node.create_subscription(People, topic, on_people, 10)
    except Exception as e:  # rclpy's RCLError: a bad name, or a topic of another type in this process
        node.destroy_node()
        context.try_shutdown()
        why = str(e).splitlines()[0].split(", at ")[0].rstrip(":")  # rcl appends source locations
        raise UserError(f"cannot subscribe to {topic!r}: {why}") from None
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    start = time.monotonic()
    try:
        while (not count or got < count) and (got or not timeout or time.monotonic() - start < timeout):
            executor.spin_once(timeout_sec=0.1)
        if not got and timeout:
            raise UserError(f"no higherhrnet_trt_msgs/People on {sub.topic_name} within {timeout:g} s "
                            f"({_why_nothing(node, sub.topic_name)})")
    except KeyboardInterrupt:  # Ctrl-C is how an open-ended echo ends
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    print(f"ros2-echo: {got} message{'s' if got != 1 else ''} on {topic}", file=sys.stderr)
    return 0
