"""Latency of ``higherhrnet-trt ros2`` under a 30 FPS camera, against a node that queues.

Three processes over UDP on 127.0.0.1 (ros.probe's Fast DDS profile): the camera stand-in
(``probe publish``: the bundled 640x480 sample, best effort, stamped at sending), the node, and the
listener (``probe listen``: arrival time - header stamp of every ``people`` message). Run with the
Python that has rclpy (``make ros-setup`` makes .venv-ros):

    .venv-ros/bin/python -m higherhrnet_trt.ros.benchmark MODEL [--rate 30] [--duration 30]
        [--baseline-depth 10] [--threads N] [--json out.json]

Rows: ``ros2`` (our node: the newest frame, stale ones dropped) and, unless --baseline-depth 0,
``queue`` (the textbook node: Pipeline.predict inside the subscription callback, subscription
depth N, every queued frame answered in order). Per row: frames sent, answers, answers/s, latency
median / p90 / max, and the median of the first and the last third of the run: a queue's latency
grows until the queue is full and stays there; ours stays about one inference. Prints numbers,
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from higherhrnet_trt.benchmarks.environment import collect
from higherhrnet_trt.core.files import SAMPLE_IMAGE, package_file
from higherhrnet_trt.runtime.pipeline import Pipeline

from . import messages
from .probe import loopback_env


def _wait_for(path: str, text: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until ``text`` appears in the log at ``path`` (the node is ready) or the process ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path, encoding="utf-8", errors="replace") as f:
            if text in f.read():
                return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    with open(path, encoding="utf-8", errors="replace") as f:
        raise SystemExit(f"error: the node did not start:\n{f.read()}")


def _row(name: str, node_cmd: list[str], args, sample: str, folder: str) -> dict:
    env = loopback_env(folder)
    py = sys.executable
    logs = {k: os.path.join(folder, f"{name}_{k}.log") for k in ("node", "camera", "listen")}
    out = os.path.join(folder, f"{name}_people.json")
    node = subprocess.Popen(node_cmd, env=env, stdout=open(logs["node"], "w"), stderr=subprocess.STDOUT)
    procs = [node]
    try:
        _wait_for(logs["node"], "listening on", node)
        listener = subprocess.Popen(
            [py, "-m", "higherhrnet_trt.ros.probe", "listen", "--count", "1000000000",
             "--timeout", str(args.duration + 3), "--out", out],
            env=env, stdout=open(logs["listen"], "w"), stderr=subprocess.STDOUT)
        procs.append(listener)
        time.sleep(1.0)  # discovery
        camera = subprocess.Popen(
            [py, "-m", "higherhrnet_trt.ros.probe", "publish", sample, "--rate", str(args.rate),
             "--duration", str(args.duration)], env=env, stdout=open(logs["camera"], "w"),
            stderr=subprocess.STDOUT)
        procs.append(camera)
        camera.wait()
        listener.wait(args.duration + 60)
        node.send_signal(signal.SIGINT)
        node.wait(30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    with open(out, encoding="utf-8") as f:
        got = json.load(f)["people"]
    with open(logs["camera"], encoding="utf-8") as f:
        sent_line = f.read().strip().splitlines()[-1]
    with open(logs["node"], encoding="utf-8") as f:
        summary = [line for line in f.read().splitlines() if line.startswith("ros2:") or "answered" in line]
    lat = np.array([m["latency_ms"] for m in got])
    third = max(1, len(lat) // 3)
    span = (got[-1]["arrived_ns"] - got[0]["arrived_ns"]) / 1e9 if len(got) > 1 else 0.0
    return {
        "row": name, "sent": sent_line, "answers": len(got),
        "answers_per_s": round((len(got) - 1) / span, 2) if span else None,
        "latency_ms": {"median": round(float(np.median(lat)), 1),
                       "p90": round(float(np.percentile(lat, 90)), 1),
                       "max": round(float(lat.max()), 1),
                       "first_third_median": round(float(np.median(lat[:third])), 1),
                       "last_third_median": round(float(np.median(lat[-third:])), 1)} if lat.size else None,
        "node_summary": summary,
    }


def baseline_node(model: str, depth: int, threads: int = 0) -> int:
    """The queueing node: predict in the callback, every frame of a depth-N queue answered in order."""
    import rclpy
    from higherhrnet_trt_msgs.msg import People
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = Node("queue_baseline")
    pipe = Pipeline(model, **({"threads": threads} if threads else {})).activate()
    pub = node.create_publisher(People, "people", 10)

    def on_image(msg) -> None:
        poses = pipe.predict(messages.image_to_bgr(msg)).select(0.15)
        pub.publish(messages.people_message(poses.keypoints, poses.scores, msg.header,
                                            pipe.keypoints.joint_names, poses.image_wh))

    qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)
    node.create_subscription(Image, "image", on_image, qos)
    print(f"queue baseline: depth {depth}, listening on image", file=sys.stderr, flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--rate", type=float, default=30.0, help="camera frames per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of camera per row")
    parser.add_argument("--baseline-depth", type=int, default=10,
                        help="queue depth of the baseline row (0: no baseline row)")
    parser.add_argument("--threads", type=int, default=0,
                        help="ONNX Runtime CPU threads of both nodes (0: its default, one per core)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--baseline-node", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_node:
        return baseline_node(args.model, args.baseline_depth, args.threads)

    sample = package_file(SAMPLE_IMAGE)
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows.append(_row("ros2", [py, "-m", "higherhrnet_trt.cli", "ros2", args.model,
                                  "--threads", str(args.threads)], args, sample, folder))
        if args.baseline_depth > 0:
            rows.append(_row("queue", [py, "-m", "higherhrnet_trt.ros.benchmark", args.model,
                                       "--baseline-node", "--baseline-depth", str(args.baseline_depth),
                                       "--threads", str(args.threads)],
                             args, sample, folder))
    result = {"command": " ".join(sys.argv), "rate": args.rate, "duration_s": args.duration,
              "environment": collect(), "rows": rows}
    for r in rows:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
