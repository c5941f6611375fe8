"""``higherhrnet-trt ros2``: conversions without ROS, then the node for real.

The end-to-end tests run three processes with the ROS venv's Python (.venv-ros, made by
``make ros-setup``; the PyPI ROS wheels stay out of .venv): a camera stand-in publishing the bundled
sample, the node, and listeners of its ``people`` (higherhrnet_trt_msgs/People: probe's and
``ros2-echo``), over UDP on 127.0.0.1 only (probe's Fast DDS profile). The people they report must
be the ones ``Pipeline.predict`` finds in this process (.venv) on the same frame, with the
publisher's stamp and frame_id, COCO's joint names and the frame's size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from higherhrnet_trt.cli import demo as demo_cli
from higherhrnet_trt.cli import main
from higherhrnet_trt.core.files import SAMPLE_IMAGE
from higherhrnet_trt.ros import latest, messages, probe

cv2 = pytest.importorskip("cv2")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = demo_cli.package_file(SAMPLE_IMAGE)
#: COCO's keypoint names in its annotation order (the person category of the COCO 2017 annotations).
COCO_JOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"]


def _ros_python() -> Path | None:
    env = os.environ.get("HIGHERHRNET_TRT_ROS_PYTHON")
    path = Path(env) if env else REPO / ".venv-ros" / "bin" / "python"
    return path if path.is_file() else None


needs_ros = pytest.mark.skipif(_ros_python() is None,
                               reason="no ROS 2 venv: run 'make ros-setup' ('make test' does)")


# --------------------------------------------------------------------------------------------------
# Without ROS
# --------------------------------------------------------------------------------------------------


def test_help_lists_ros2_and_missing_rclpy_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "ros2 " in out and "ros2-echo" in out
    import importlib.util

    if importlib.util.find_spec("rclpy") is not None:
        pytest.skip("rclpy is importable here; the message for its absence cannot be checked")
    assert main(["ros2", "model.onnx"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ROS 2 Python packages are missing (rclpy)")
    assert "higherhrnet-trt[ros]" in err[0]
    assert main(["ros2-echo", "--count", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ROS 2 Python packages are missing (rclpy)")


def test_unbuilt_message_package_is_one_line():
    import importlib.util

    from higherhrnet_trt.cli import ros2 as ros_cli
    from higherhrnet_trt.core.errors import UserError

    if importlib.util.find_spec("higherhrnet_trt_msgs") is not None:
        pytest.skip("higherhrnet_trt_msgs is importable here; the message for its absence cannot be checked")
    with pytest.raises(UserError, match=r"^the people message package higherhrnet_trt_msgs is not built .*"
                                        r"python -m higherhrnet_trt\.ros\.build_msgs"):
        ros_cli._import_ros("higherhrnet_trt_msgs.msg")


def _image_msg(pixels: np.ndarray, encoding: str, pad: int = 0) -> SimpleNamespace:
    """A sensor_msgs/Image stand-in, rows padded with ``pad`` bytes of 0xEE."""
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1)
    data = np.concatenate([row, np.full((h, pad), 0xEE, np.uint8)], axis=1)
    return SimpleNamespace(height=h, width=w, encoding=encoding, step=row.shape[1] + pad,
                           data=data.tobytes())


def test_image_encodings_to_bgr():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), np.uint8)
    np.testing.assert_array_equal(messages.image_to_bgr(_image_msg(bgr, "bgr8", pad=3)), bgr)
    np.testing.assert_array_equal(messages.image_to_bgr(_image_msg(bgr[:, :, ::-1].copy(), "rgb8")), bgr)
    rgba = np.concatenate([bgr[:, :, ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)
    np.testing.assert_array_equal(messages.image_to_bgr(_image_msg(rgba, "rgba8", pad=4)), bgr)
    grey = bgr[:, :, 0].copy()
    np.testing.assert_array_equal(messages.image_to_bgr(_image_msg(grey, "mono8", pad=1)),
                                  np.repeat(grey[:, :, None], 3, axis=2))
    # YUYV with Y=200, U=V=128 (no colour): grey 1.164 * (200 - 16) = 214 (BT.601 video range, as
    # OpenCV and cv_bridge convert), +-1 for rounding.
    yuyv = np.tile(np.array([200, 128, 200, 128], np.uint8), (4, 2)).reshape(4, 4, 2)
    out = messages.image_to_bgr(_image_msg(yuyv, "yuv422_yuy2"))
    assert out.shape == (4, 4, 3) and np.abs(out.astype(int) - 214).max() <= 1


def test_bad_images_are_refused_with_the_reason():
    with pytest.raises(messages.UnsupportedImage, match="'16UC1' is not supported"):
        messages.image_to_bgr(SimpleNamespace(height=2, width=2, encoding="16UC1", step=4, data=b"\0" * 8))
    with pytest.raises(messages.UnsupportedImage, match="needs 18 bytes, got 17"):
        messages.image_to_bgr(SimpleNamespace(height=2, width=3, encoding="bgr8", step=9, data=b"\0" * 17))
    with pytest.raises(messages.UnsupportedImage, match="did not decode"):
        messages.compressed_to_bgr(SimpleNamespace(format="jpeg", data=b"not a jpeg"))


def test_compressed_png_decodes_to_the_frame():
    frame = cv2.imread(SAMPLE)
    ok, png = cv2.imencode(".png", frame)
    msg = SimpleNamespace(format="png", data=png.tobytes())
    np.testing.assert_array_equal(messages.compressed_to_bgr(msg), frame)


def _people_stand_in(rows, scores, tracks, names) -> SimpleNamespace:
    """A higherhrnet_trt_msgs/People stand-in with the fields of msg/People.msg."""
    header = SimpleNamespace(stamp=SimpleNamespace(sec=12, nanosec=5_000_000), frame_id="cam")
    people = [SimpleNamespace(score=s, track_id=t,
                              keypoints=[SimpleNamespace(x=x, y=y, score=v) for x, y, v in row])
              for row, s, t in zip(rows, scores, tracks)]
    return SimpleNamespace(header=header, image_width=640, image_height=480, joint_names=names, people=people)


def test_read_people_from_a_stand_in():
    """Two people x two joints as msg/People.msg lays them out."""
    rows = [[(10.5, 20.5, 0.9), (11.5, 21.5, 0.8)], [(30.0, 40.0, 0.2), (31.0, 41.0, 0.1)]]
    msg = _people_stand_in(rows, [0.7, 0.3], [-1, 4], ["nose", "left_eye"])
    keypoints, scores = messages.read_people(msg)
    assert keypoints.dtype == np.float32 and keypoints.shape == (2, 2, 3)
    np.testing.assert_allclose(keypoints, np.array(rows, np.float32))
    np.testing.assert_allclose(scores, [0.7, 0.3])
    empty = messages.read_people(_people_stand_in([], [], [], ["nose", "left_eye"]))
    assert empty[0].shape == (0, 2, 3) and empty[1].shape == (0,)
    msg.people[1].keypoints.pop()
    with pytest.raises(ValueError, match="person 1 has 1 keypoints for 2 joint names"):
        messages.read_people(msg)


def test_echo_text_and_json_of_a_stand_in():
    """The inspector's lines, worked out by hand: the box spans the joints above 0.1 only."""
    from higherhrnet_trt.ros import echo

    rows = [[(10.5, 20.5, 0.9), (11.5, 2.5, 0.05), (30.0, 40.0, 0.5)], [(1.0, 2.0, 0.1)] * 3]
    msg = _people_stand_in(rows, [0.7, 0.3], [-1, 4], ["nose", "left_eye", "right_eye"])
    assert echo.format_people(msg).splitlines() == [
        "stamp 12.005000000 frame_id 'cam' image 640x480: 2 people",
        "  #0 score 0.70 track -: 2/3 joints > 0.1 in 10.5,20.5 - 30.0,40.0 px",
        "  #1 score 0.30 track 4: no joint > 0.1",
    ]
    lines = echo.format_people(msg, joints=True).splitlines()
    assert lines[2] == "      nose                10.5    20.5  0.90" and len(lines) == 1 + 2 * 4
    out = echo.people_to_dict(msg)
    assert out["stamp_ns"] == 12_005_000_000 and out["image_wh"] == [640, 480]
    assert [p["track_id"] for p in out["people"]] == [-1, 4]
    assert out["people"][0]["keypoints"][2] == [30.0, 40.0, 0.5]


def test_build_msgs_names_a_missing_tool(monkeypatch):
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.ros import build_msgs

    monkeypatch.setattr(build_msgs.shutil, "which", lambda name, path=None: None)
    with pytest.raises(UserError, match=r"^cmake not found on PATH: pip install 'higherhrnet-trt\[ros\]'"):
        build_msgs.build("/nonexistent")
    assert (build_msgs.SOURCE / "msg" / "People.msg").is_file()


def test_markers_lie_on_the_pixel_rays():
    """x / z * fx + cx gives back u (pinhole projection, written out here)."""
    k = np.array([[500.0, 0, 320], [0, 400.0, 240], [0, 0, 1]])
    uv = np.array([[0.5, 0.5], [320, 240], [639.5, 100]])
    xyz = messages.pixels_to_plane(uv, k, 3.0)
    assert np.allclose(xyz[:, 2], 3.0)
    np.testing.assert_allclose(xyz[:, 0] / xyz[:, 2] * 500 + 320, uv[:, 0])
    np.testing.assert_allclose(xyz[:, 1] / xyz[:, 2] * 400 + 240, uv[:, 1])


def test_latest_slot_keeps_the_newest_and_counts_the_rest():
    slot = latest.LatestSlot()
    assert slot.take(timeout=0) is None
    assert [slot.put(i) for i in range(3)] == [False, True, True]
    assert slot.take(timeout=0) == 2 and slot.take(timeout=0) is None
    slot.put(3)
    assert slot.take() == 3
    assert (slot.received, slot.dropped) == (4, 2)
    slot.close()
    assert slot.take() is None  # closed: no wait


# --------------------------------------------------------------------------------------------------
# With ROS: real processes on the loopback
# --------------------------------------------------------------------------------------------------


# demo_onnx: the session fixture of conftest.py (one export shared with the Triton tests).


@pytest.fixture(scope="module")
def reference(demo_onnx):
    """People of the bundled sample by Pipeline.predict in this process, at the default person
    threshold (0.15), which the node's must equal: the same people."""
    from higherhrnet_trt.runtime import Pipeline

    with Pipeline(str(demo_onnx)) as pipe:
        assert pipe.person_thr == 0.15
        poses = pipe.predict(cv2.imread(SAMPLE))
    assert len(poses) >= 2, "the demo network finds people on its own sample"
    return poses


def _start(cmd: list, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 90) -> int:  # slow under load
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@needs_ros
@pytest.mark.parametrize("transport, stop", [("raw", signal.SIGINT), ("compressed", signal.SIGTERM)])
def test_node_publishes_the_people_of_pipeline_predict(transport, stop, demo_onnx, reference, tmp_path):
    ros_py = str(_ros_python())
    env = probe.loopback_env(str(tmp_path))
    ns = ["-r", f"__ns:=/hhrnet_test_{uuid.uuid4().hex[:8]}"]
    if transport == "raw":  # options on the command line
        node_cmd = [ros_py, "-m", "higherhrnet_trt.cli", "ros2", str(demo_onnx), "--ros-args", *ns]
        pub_opts = ["--encoding", "bgr8"]
    else:  # everything as ROS parameters
        node_cmd = [ros_py, "-m", "higherhrnet_trt.cli", "ros2", "--ros-args", *ns,
                    "-p", f"model:={demo_onnx}", "-p", "image_transport:=compressed",
                    "-p", "publish_image:=true"]
        pub_opts = ["--compressed", "png"]
    extra = ["--markers", "--image"] if transport == "compressed" else ["--markers"]
    stamps, people = tmp_path / "stamps.txt", tmp_path / "people.json"
    node = _start(node_cmd, env, tmp_path / "node.log")
    procs = [node]
    try:
        listener = _start([ros_py, "-m", "higherhrnet_trt.ros.probe", "listen", "--count", "3",
                           "--timeout", "120", "--out", str(people), *extra, "--ros-args", *ns],
                          env, tmp_path / "listen.log")
        procs.append(listener)
        if transport == "raw":  # the inspector too, as a user would run it
            echo = _start([ros_py, "-m", "higherhrnet_trt.cli", "ros2-echo", "--count", "1", "--json",
                           "--timeout", "120", "--ros-args", *ns], env, tmp_path / "echo.log")
            procs.append(echo)
        camera = _start([ros_py, "-m", "higherhrnet_trt.ros.probe", "publish", SAMPLE, "--rate", "5",
                         "--duration", "150", "--frame-id", "test_cam", "--stamps", str(stamps), *pub_opts,
                         "--ros-args", *ns], env, tmp_path / "camera.log")
        procs.append(camera)
        try:
            listened = listener.wait(150)
        except subprocess.TimeoutExpired:
            listened = None
        assert listened == 0, (tmp_path / "listen.log").read_text() + (tmp_path / "node.log").read_text()
        if transport == "raw":
            assert echo.wait(60) == 0, (tmp_path / "echo.log").read_text()
        assert _stop(node, stop) == 0
        assert _stop(camera, signal.SIGTERM) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    node_log = (tmp_path / "node.log").read_text()
    word = "interrupted" if stop == signal.SIGINT else "terminated (SIGTERM)"
    assert f"ros2: {word}: " in node_log and "answered" in node_log, node_log
    sent = {int(line) for line in stamps.read_text().split()}
    out = json.loads(people.read_text())
    got = out["people"]
    assert len(got) == 3
    for markers in out["markers"]:  # skeletons: a DELETEALL, then two markers per person at most
        assert markers["frame_id"] == "test_cam" and markers["stamp_ns"] in sent
        assert markers["actions"][0] == 3 and 2 < markers["count"] <= 1 + 2 * len(reference)
    for image in out["images"]:
        assert image["frame_id"] == "test_cam" and image["stamp_ns"] in sent
        assert image["hw"] == [480, 640] and image["encoding"] == "bgr8"
    assert len(out["images"]) == (3 if transport == "compressed" else 0)
    for msg in got:
        assert msg["frame_id"] == "test_cam" and msg["stamp_ns"] in sent
        assert msg["joint_names"] == COCO_JOINTS and msg["image_wh"] == [640, 480]
        assert msg["track_ids"] == [-1] * len(reference)
        scores, keypoints = np.array(msg["scores"], np.float32), np.array(msg["keypoints"], np.float32)
        np.testing.assert_allclose(scores, reference.scores, rtol=0, atol=1e-5)
        np.testing.assert_allclose(keypoints, reference.keypoints, rtol=0, atol=1e-3)
    if transport == "raw":  # ros2-echo --json: the first line is the message, the last stderr's count
        lines = (tmp_path / "echo.log").read_text().splitlines()
        echoed = json.loads(lines[0])
        assert echoed["frame_id"] == "test_cam" and echoed["stamp_ns"] in sent
        assert echoed["joint_names"] == COCO_JOINTS and echoed["image_wh"] == [640, 480]
        np.testing.assert_allclose([p["score"] for p in echoed["people"]], reference.scores, atol=1e-5)
        np.testing.assert_allclose([p["keypoints"] for p in echoed["people"]], reference.keypoints,
                                   atol=1e-3)
        assert lines[-1] == "ros2-echo: 1 message on people"


_MARKER_SCRIPT = """
import json, sys
import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker
from higherhrnet_trt.ros import messages
kpts = np.array(json.loads(sys.argv[1]), np.float32)
k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
header = Header(frame_id="cam")
out = messages.people_markers(kpts, header, [(0, 1), (1, 2), (2, 3)], k, depth=2.0, kpt_thr=0.1)
people = messages.people_message(kpts, np.array([0.9, 0.4], np.float32), header, ["a", "b", "c", "d"],
                                  (640, 480), track_ids=[7, -1])
back = messages.read_people(people)
print(json.dumps({
    "markers": [[m.action, m.type, m.ns, m.id, m.header.frame_id,
                 [[p.x / p.z * 500 + 320, p.y / p.z * 500 + 240] for p in m.points]] for m in out.markers],
    "codes": [Marker.DELETEALL, Marker.LINE_LIST, Marker.SPHERE_LIST],
    "people": [type(people).__module__, people.header.frame_id, people.image_width, people.image_height,
               list(people.joint_names), [p.track_id for p in people.people], back[0].tolist(),
               back[1].tolist()]}))
"""


@needs_ros
def test_marker_and_people_messages(tmp_path):
    """Built with the real message classes (ROS venv): a person with joints 0, 1, 3 above 0.1 and
    joint 2 below gets limb (0, 1) only and spheres at 0, 1, 3; a person with none gets nothing."""
    kpts = [[[10, 20, 0.9], [30, 40, 0.8], [50, 60, 0.05], [70, 80, 0.5]],
            [[1, 2, 0.0], [3, 4, 0.05], [5, 6, 0.0], [7, 8, 0.1]]]
    run = subprocess.run([str(_ros_python()), "-c", _MARKER_SCRIPT, json.dumps(kpts)], capture_output=True,
                         text=True, timeout=120, env=probe.loopback_env(str(tmp_path)))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    delete_all, line_list, sphere_list = out["codes"]
    first, *people = out["markers"]
    assert first[0] == delete_all
    assert [(m[1], m[2], m[3], m[4]) for m in people] == [(line_list, "skeleton", 0, "cam"),
                                                         (sphere_list, "joints", 0, "cam")]
    np.testing.assert_allclose(people[0][5], [[10, 20], [30, 40]], atol=1e-9)
    np.testing.assert_allclose(people[1][5], [[10, 20], [30, 40], [70, 80]], atol=1e-9)
    module, frame_id, width, height, names, tracks, keypoints, scores = out["people"]
    assert module.startswith("higherhrnet_trt_msgs.msg") and (frame_id, width, height) == ("cam", 640, 480)
    assert names == ["a", "b", "c", "d"] and tracks == [7, -1]
    np.testing.assert_allclose(keypoints, kpts, rtol=1e-6)
    np.testing.assert_allclose(scores, [0.9, 0.4], rtol=1e-6)


def test_ros_python_is_separate_from_this_venv():
    """The ROS wheels' .pth re-launches Python: it must not be in the venv running the tests."""
    import site

    pth = [Path(d, "ros_wheels_bootstrapper.pth") for d in site.getsitepackages()]
    assert not any(p.exists() for p in pth), sys.prefix


@needs_ros
def test_wrong_parameters_are_one_line_errors(tmp_path):
    env = probe.loopback_env(str(tmp_path))
    cases = {
        ("--ros-args", "-p", "model:=x.onnx", "-p", "person_thr:=1"):
            "error: Trying to set parameter 'person_thr' to '1' of type 'INTEGER', expecting "
            "type 'DOUBLE'",
        (str(tmp_path / "none.onnx"), "--ros-args", "-p", "qos_depth:=2"):
            f"error: model file not found: {tmp_path / 'none.onnx'}",
    }
    for args, first in cases.items():
        run = subprocess.run([str(_ros_python()), "-m", "higherhrnet_trt.cli", "ros2", *args],
                             capture_output=True, text=True, timeout=120, env=env)
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert run.returncode == 1 and len(lines) == 1 and lines[0].startswith(first), run.stderr
