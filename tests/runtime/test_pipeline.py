"""Pipeline and Poses.

Most tests drive the pipeline with ``OracleBackend``, a test double of the Backend interface that
answers every input with the maps a perfect network would give for known people (rendered with the
input's own warp). That is a unit test of the pipeline's logic (sizing, letterbox, batching, scale
aggregation, decoding, mapping back to frame pixels, NaN and crowd handling), not of a network. The
real tiny ONNX model (export fixtures in conftest.py) checks the plumbing end to end.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.geometry import (
    FrameGeometry,
    apply_affine,
    get_affine_transform,
    get_multi_scale_size,
)
from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.runtime.backends import Backend, TensorSpec
from higherhrnet_trt.runtime.evaluate import oracle_maps
from higherhrnet_trt.runtime.pipeline import (
    Pipeline,
    Poses,
    boxes_from_keypoints,
)

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

J = COCO.num_joints
# Unit-box template of a standing person (COCO joint order), x to the image right.
TEMPLATE = np.array([
    (0.50, 0.07), (0.54, 0.05), (0.46, 0.05), (0.58, 0.07), (0.42, 0.07), (0.70, 0.20), (0.30, 0.20),
    (0.80, 0.36), (0.20, 0.36), (0.85, 0.52), (0.15, 0.52), (0.62, 0.55), (0.38, 0.55), (0.64, 0.76),
    (0.36, 0.76), (0.66, 0.96), (0.34, 0.96),
])


def people_in(image_wh, count, seed=0):
    """(P, J, 2) joints of ``count`` people side by side in a frame, image pixels."""
    rng = np.random.default_rng(seed)
    w, h = image_wh
    slot = w / count
    out = []
    for k in range(count):
        ph = 0.75 * h
        pw = min(0.45 * ph, 0.8 * slot)
        x0 = k * slot + 0.5 * (slot - pw)
        out.append(TEMPLATE * [pw, ph] + [x0, 0.1 * h] + rng.normal(0, 1.0, TEMPLATE.shape))
    return np.array(out)


class OracleBackend(Backend):
    """Backend test double: a perfect network for ``self.people`` (P, J, 2) in a frame of
    ``self.image_wh``. Every input is assumed to show that frame; the frame -> input warp is
    recovered from the input size (the official sizing is FrameGeometry.letterbox's special case).

    layout: "aggregated" (heatmaps + tags at stride 2, T = 2) or "raw" (output0 stride 4 with
    heatmaps and tags, output1 stride-2 heatmaps). poison: answer with NaN. tag_per_joint_offset:
    give each joint's tags a different offset, so no joint matches another (many 'people').
    """

    name = "oracle"

    def __init__(self, input_shape=(-1, 3, -1, -1), layout="aggregated", input_size=512):
        super().__init__("oracle.onnx")
        self.input_shape = tuple(input_shape)
        self.layout = layout
        self.meta = ModelMeta.for_dataset("coco", input_size=input_size, outputs=layout,
                                          flip=layout == "aggregated")
        self.people = np.zeros((0, J, 2))
        self.image_wh = (640, 480)
        self.calls: list[tuple[int, ...]] = []
        self.last_input: np.ndarray | None = None
        self.poison = False
        self.tag_per_joint_offset = 0.0

    def activate_impl(self):
        pass

    def deactivate_impl(self):
        pass

    @property
    def inputs(self):
        return [TensorSpec("image", self.input_shape, np.dtype(np.float32))]

    @property
    def outputs(self):
        names = ["heatmaps", "tags"] if self.layout == "aggregated" else ["output0", "output1"]
        return [TensorSpec(n, (-1,) * 4, np.dtype(np.float32)) for n in names]

    @property
    def metadata(self):
        return self.meta

    def _maps(self, in_wh, stride, tag_dims):
        geom = FrameGeometry.letterbox(self.image_wh, in_wh)
        pts = apply_affine(self.people, get_affine_transform(geom.center, geom.scale, in_wh))
        size = (in_wh[0] // stride, in_wh[1] // stride)
        # Map pixel k covers input pixels [stride*k, stride*(k+1)): the decoder's convention.
        heat, tags = oracle_maps(pts / stride, np.ones(self.people.shape[:2], bool), size,
                                 sigma=2.0 / stride * 2, tag_dims=tag_dims)
        tags = tags + (np.arange(J) * self.tag_per_joint_offset)[:, None, None, None]
        return heat, tags

    def infer_impl(self, feeds):
        x = feeds["image"]
        self.calls.append(x.shape)
        self.last_input = x
        n, _, h, w = x.shape
        if self.layout == "aggregated":
            heat, tags = self._maps((w, h), 2, 2)
            out = {"heatmaps": np.repeat(heat[None], n, 0), "tags": np.repeat(tags[None], n, 0)}
        else:
            heat4, tags4 = self._maps((w, h), 4, 1)
            heat2, _ = self._maps((w, h), 2, 1)
            out0 = np.concatenate([heat4, tags4[..., 0]], axis=0)
            out = {"output0": np.repeat(out0[None], n, 0), "output1": np.repeat(heat2[None], n, 0)}
        if self.poison:
            out = {k: np.full_like(v, np.nan) for k, v in out.items()}
        return out


def frame_of(wh, value=90):
    return np.full((wh[1], wh[0], 3), value, np.uint8)


def matched_error(poses: Poses, truth: np.ndarray) -> float:
    """Largest joint distance (px) between predicted and true people, matched by nearest nose."""
    assert len(poses) == len(truth)
    worst = 0.0
    for t in truth:
        p = poses.keypoints[np.argmin(np.abs(poses.keypoints[:, 0, :2] - t[0]).sum(1))]
        worst = max(worst, float(np.abs(p[:, :2] - t).max()))
    return worst


def make(backend, **kw) -> Pipeline:
    return Pipeline("oracle.onnx", backend=backend, **kw)


# -- the official flow --------------------------------------------------------------------------


@pytest.mark.parametrize("wh", [(640, 480), (360, 500)])
def test_people_come_back_in_frame_pixels(wh):
    be = OracleBackend()
    be.image_wh, be.people = wh, people_in(wh, 3)
    with make(be) as pipe:
        poses = pipe.predict(frame_of(wh))
    assert be.calls == [(1, 3) + tuple(reversed(get_multi_scale_size(wh, 512, 1.0, 1.0)[0]))]
    assert poses.valid and poses.image_wh == wh
    assert poses.keypoints.dtype == np.float32 and poses.keypoints.shape == (3, J, 3)
    # Quantisation of the decoder: 3/4 of a base-size pixel (~0.7 frame px at these sizes).
    assert matched_error(poses, be.people) < 1.0
    assert np.all(np.diff(poses.scores) <= 0)  # best first
    assert poses.scores.shape == (3,) and poses.boxes.shape == (3, 4)
    np.testing.assert_allclose(poses.boxes, boxes_from_keypoints(poses.keypoints, 0.1))
    assert (poses.keypoints[:, :, 2] > 0.5).all()  # oracle joint values near 1


def test_multi_scale_runs_each_scale_largest_first():
    wh = (320, 240)
    be = OracleBackend()
    be.image_wh, be.people = wh, people_in(wh, 2)
    with make(be, scales=(0.5, 1, 2)) as pipe:
        poses = pipe.predict(frame_of(wh))
    widths = [c[3] for c in be.calls]
    assert widths == sorted(widths, reverse=True) and len(widths) == 3
    assert widths[0] == 4 * widths[2] and all(c[2] % 64 == 0 and c[3] % 64 == 0 for c in be.calls)
    assert matched_error(poses, be.people) < 1.5


def test_heatmap_resolution_option():
    wh = (640, 480)
    be = OracleBackend()
    be.image_wh, be.people = wh, people_in(wh, 2)
    poses = make(be, project2image=False).predict(frame_of(wh))
    assert matched_error(poses, be.people) < 2.0  # a map pixel is twice as large here


def test_raw_output_layout():
    wh = (480, 480)
    be = OracleBackend(layout="raw")
    be.image_wh, be.people = wh, people_in(wh, 2)
    poses = make(be).predict(frame_of(wh))
    assert matched_error(poses, be.people) < 1.5


# -- static inputs: letterbox ---------------------------------------------------------------------


def test_letterbox_geometry_is_the_official_one_at_official_sizes(reference_dir):
    """At the official input size of a frame, fitting the frame gives the official center / scale
    bit for bit. Exception: the official rounding up to 64 px rounds *down* when the exact size is
    within 1 px above a multiple of 64, so its region crops the frame by less than a pixel per
    scale step; the letterbox never crops (the pipeline uses the official warp at official sizes)."""
    entries = json.loads((reference_dir / "sizing_vectors.json").read_text())
    # Scale sets whose sizes the network can run (ratios to the smallest scale are integers; the
    # official code truncates the others, e.g. 853 px, and its network fails on them).
    entries = [e for e in entries if 0.75 not in e["scale_factor"]]
    assert len(entries) == 90
    exact = cropped = 0
    for e in entries:
        w, h = e["image_wh"]
        for s in e["per_scale"]:
            g = FrameGeometry.letterbox((w, h), tuple(s["size_wh"]))
            assert g.center.tolist() == s["center"]
            region = np.array(s["scale"]) * 200
            if region[0] >= w - 1e-6 and region[1] >= h - 1e-6:  # scale * 200 is not exact
                assert g.scale.tolist() == s["scale"], (e["image_wh"], s)
                exact += 1
            else:
                ours = g.scale * 200
                assert ours[0] >= w - 1e-9 and ours[1] >= h - 1e-9
                per_input_px = ours / np.array(s["size_wh"])
                assert np.all(np.abs(ours - region) <= 4 * per_input_px + 1e-9)
                cropped += 1
    assert exact + cropped == 180 and cropped == 12  # all from 1000 x 333 and 333 x 1000


def test_static_model_letterboxes_other_frame_shapes(caplog):
    wh = (640, 360)
    be = OracleBackend(input_shape=(1, 3, 256, 256))
    be.image_wh, be.people = wh, people_in(wh, 2)
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"), make(be) as pipe:
        first = pipe.predict(frame_of(wh))
        pipe.predict(frame_of(wh))
    assert all(c == (1, 3, 256, 256) for c in be.calls)
    assert sum("letterboxed" in r.message for r in caplog.records) == 1  # said once
    # A 256 px input for a 640 px frame: map pixels are 2.5 frame px.
    assert matched_error(first, be.people) < 2.5
    # The border is black (normalised zero pixels), the frame sits in the middle rows.
    x = be.last_input[0]
    mean0 = -np.array([0.485, 0.456, 0.406]) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x[:, 0, 128], mean0, rtol=1e-5)  # top border row
    assert not np.allclose(x[:, 128, 128], mean0)


def test_static_model_at_the_official_size_is_not_letterboxed(caplog):
    wh = (640, 480)  # official size at 512: 704 x 512
    be = OracleBackend(input_shape=(1, 3, 512, 704))
    be.image_wh, be.people = wh, people_in(wh, 1)
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"):
        poses = make(be).predict(frame_of(wh))
    assert not caplog.records and matched_error(poses, be.people) < 1.0


def test_static_model_rejects_multi_scale():
    be = OracleBackend(input_shape=(1, 3, 512, 512))
    with pytest.raises(UserError, match="fixed input size .* --dynamic"):
        make(be, scales=(1, 2)).activate()
    assert not be.is_active  # a failed activation does not leave the model loaded


# -- batching -----------------------------------------------------------------------------------


def test_predict_batch_groups_equal_sizes():
    be = OracleBackend()
    be.image_wh, be.people = (320, 240), people_in((320, 240), 1)
    frames = [frame_of((320, 240), v) for v in (10, 20, 30)]
    with make(be, max_batch=2) as pipe:
        out = pipe.predict_batch(frames)
        assert [c[0] for c in be.calls] == [2, 1]
        assert len(out) == 3 and all(len(p) == 1 for p in out)
        np.testing.assert_array_equal(out[0].keypoints, out[2].keypoints)
        assert pipe.predict_batch([]) == []


def test_static_batch_is_padded():
    be = OracleBackend(input_shape=(2, 3, 192, 256))
    be.image_wh, be.people = (256, 192), people_in((256, 192), 1)
    out = make(be).predict_batch([frame_of((256, 192))] * 3)
    assert [c[0] for c in be.calls] == [2, 2] and len(out) == 3


# -- bad input and bad output ---------------------------------------------------------------------


def test_nonfinite_outputs_skip_the_frame_and_warn_once(caplog):
    be = OracleBackend()
    be.image_wh, be.people = (320, 240), people_in((320, 240), 1)
    be.poison = True
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"), make(be) as pipe:
        a = pipe.predict(frame_of((320, 240)))
        b = pipe.predict(frame_of((320, 240)))
        assert pipe.stats.skipped_nonfinite == 2 and pipe.stats.frames == 2
    assert not a.valid and len(a) == 0 and a.keypoints.shape == (0, J, 3) and not b.valid
    assert sum("NaN/inf" in r.message for r in caplog.records) == 1


def test_no_people():
    be = OracleBackend()
    poses = make(be).predict(frame_of((320, 240)))
    assert poses.valid and len(poses) == 0 and poses.boxes.shape == (0, 4)


def test_too_many_people_are_capped_with_one_warning(caplog):
    be = OracleBackend()
    be.image_wh, be.people = (640, 480), people_in((640, 480), 2)
    be.tag_per_joint_offset = 10.0  # no joint matches another: 17 x 2 single-joint 'people'
    # person_thr 0: single-joint people score about 1/17, below the default threshold
    with caplog.at_level(logging.WARNING, logger="higherhrnet_trt.runtime"), make(be, person_thr=0) as pipe:
        poses = pipe.predict(frame_of((640, 480)))
        pipe.predict(frame_of((640, 480)))
        assert pipe.stats.capped == 2
    assert len(poses) == 30 and np.all(np.diff(poses.scores) <= 0)
    msgs = [r.message for r in caplog.records if "max_people" in r.message]
    assert len(msgs) == 1 and "34 people" in msgs[0]
    smaller = make(OracleBackend(), decode={"max_people": 5}, person_thr=0)
    smaller.backend.image_wh, smaller.backend.people = (640, 480), people_in((640, 480), 2)
    smaller.backend.tag_per_joint_offset = 10.0
    assert len(smaller.predict(frame_of((640, 480)))) == 5


def test_people_below_person_thr_are_not_returned():
    """Two whole people (every joint at its peak: score about 1) and, split off by their tags,
    single-joint 'people' (one joint of 17: score about 1/17 = 0.059): the default 0.15 returns
    the whole ones only, 0 returns every candidate."""
    def backend(split: bool):
        be = OracleBackend()
        be.image_wh, be.people = (640, 480), people_in((640, 480), 2)
        if split:
            be.tag_per_joint_offset = 10.0
        return be

    whole = make(backend(False)).predict(frame_of((640, 480)))
    assert len(whole) == 2 and np.all(whole.scores > 0.9)
    split = make(backend(True)).predict(frame_of((640, 480)))
    assert len(split) == 0
    every = make(backend(True), person_thr=0, decode={"max_people": 40}).predict(frame_of((640, 480)))
    assert len(every) == 34 and np.all(np.abs(every.scores - 1 / 17) < 0.01)


@pytest.mark.parametrize("frame, match", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), r"\(H, W, 3\)"),
    ([[1, 2]], "numpy array"),
])
def test_bad_frames_are_user_errors(frame, match):
    with pytest.raises(UserError, match=match):
        make(OracleBackend()).predict(frame)


def test_grey_and_bgra_frames_are_accepted():
    pipe = make(OracleBackend())
    assert pipe.predict(np.zeros((64, 80), np.uint8)).valid
    assert pipe.predict(np.zeros((64, 80, 4), np.uint8)).valid


@pytest.mark.parametrize("scales", [(0.75, 1, 1.25), (0.5, 2), (), (0, 1), ("a",)])
def test_bad_scales(scales):
    with pytest.raises(UserError, match="scale"):
        make(OracleBackend(), scales=scales)


def test_color_order():
    red_bgr = np.zeros((64, 64, 3), np.uint8)
    red_bgr[..., 2] = 255
    for order, frame in (("bgr", red_bgr), ("rgb", red_bgr[..., ::-1].copy())):
        be = OracleBackend()
        make(be, color_order=order).predict(frame)
        r, g, b = be.last_input[0, :, 32, 32]
        assert r > 2 and g < 0 and b < 0, order  # plane 0 of the input is red
    with pytest.raises(UserError, match="color_order"):
        make(OracleBackend(), color_order="hsv")


def test_lifecycle_and_lazy_activation():
    be = OracleBackend()
    pipe = make(be)
    assert not be.is_active
    pipe.predict(frame_of((64, 64)))
    assert be.is_active
    pipe.deactivate()
    assert not be.is_active
    with pipe as p:
        assert p is pipe and be.is_active and p.keypoints.name == "coco"
        assert p.decode_config.joint_order == COCO.joint_order
    assert not be.is_active
    with pytest.raises(UserError, match="Backend object"):
        Pipeline("x.onnx", backend=be, threads=2)


def test_stream_over_frames_and_folder(tmp_path):
    be = OracleBackend()
    be.image_wh, be.people = (96, 64), people_in((96, 64), 1)
    pipe = make(be)
    got = list(pipe.stream([frame_of((96, 64))] * 3, max_frames=2))
    assert [f.index for f, _ in got] == [0, 1] and all(p.valid for _, p in got)
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"{i}.png"), frame_of((96, 64)))
    names = [f.name for f, _ in pipe.stream(tmp_path)]  # a Path works as well as a str
    assert names == ["0.png", "1.png"]


def test_poses_helpers():
    k = np.zeros((2, J, 3), np.float32)
    k[0, :, :2] = [[i, 2 * i] for i in range(J)]
    k[0, :, 2] = 0.5
    k[0, 3, 2] = 0.05  # below threshold: not in the box
    k[0, 3, :2] = [-100, -100]
    k[1, :, :2] = 7.0  # no joint above threshold: box of all joints
    boxes = boxes_from_keypoints(k, 0.1)
    np.testing.assert_array_equal(boxes[0], [0, 0, 16, 32])
    np.testing.assert_array_equal(boxes[1], [7, 7, 7, 7])
    p = Poses(k, np.array([0.9, 0.2], np.float32), boxes, (100, 50))
    assert len(p) == 2 and len(p.select(0.5)) == 1 and len(Poses.empty(14)) == 0


# -- the real tiny network ------------------------------------------------------------------------


def test_tiny_onnx_end_to_end(tiny_onnx):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(2)]
    with Pipeline(str(tiny_onnx), decode={"max_people": 5}) as pipe:
        assert pipe.meta.flip and pipe.keypoints.name == "coco"
        one = pipe.predict(frames[0])
        both = pipe.predict_batch(frames)
    assert one.valid and one.keypoints.shape[1:] == (J, 3) and len(one) <= 5
    assert np.isfinite(one.keypoints).all()
    np.testing.assert_allclose(both[0].keypoints, one.keypoints, rtol=1e-5, atol=1e-4)


def test_tiny_onnx_dynamic_official_input(tiny_onnx_dynamic):
    """A dynamic model gets exactly the official multi-scale inputs (preprocess.py's)."""
    from higherhrnet_trt.core.preprocess import preprocess

    frame = np.random.default_rng(1).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    pipe = Pipeline(str(tiny_onnx_dynamic), scales=(1, 2), decode={"max_people": 5})
    seen = []
    pipe.activate()
    real = pipe.backend.infer_impl
    pipe.backend.infer_impl = lambda feeds: (seen.append(feeds["image"]), real(feeds))[1]
    poses = pipe.predict(frame)
    pipe.close()
    assert poses.valid and np.isfinite(poses.keypoints).all()
    inputs, _ = preprocess(frame, 128, (1, 2))
    assert len(seen) == 2
    for (_, expected), got in zip(inputs, seen):
        np.testing.assert_array_equal(got, expected)


def test_missing_model_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Pipeline(str(tmp_path / "nope.onnx")).activate()
    with pytest.raises(UserError, match="cannot tell the backend"):
        Pipeline(str(tmp_path / "model.bin"))


def test_missing_opencv_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cv2", None)  # makes 'import cv2' fail
    with pytest.raises(UserError, match=r"OpenCV \(cv2\) is not installed"):
        make(OracleBackend()).activate()


def test_half_precision_io():
    """An engine with fp16 input / outputs: inputs are cast, outputs decoded in float32."""

    class Half(OracleBackend):
        @property
        def inputs(self):
            return [TensorSpec("image", self.input_shape, np.dtype(np.float16))]

        def infer_impl(self, feeds):
            return {k: v.astype(np.float16) for k, v in super().infer_impl(feeds).items()}

    be = Half()
    be.image_wh, be.people = (320, 240), people_in((320, 240), 2)
    poses = make(be).predict(frame_of((320, 240)))
    assert be.last_input.dtype == np.float16 and poses.keypoints.dtype == np.float32
    assert matched_error(poses, be.people) < 1.0


def test_track_gives_each_person_one_id_per_source():
    # Two people walk right 6 px a frame. Source 0 and source 1 each get their own tracker: the
    # first frame of source 1 (after three of source 0) is IDs 1 and 2 again, not 3 and 4.
    be = OracleBackend()
    wh = (640, 480)
    be.image_wh = wh
    start = people_in(wh, 2)
    with make(be, track=True) as pipe:
        by_place = {}
        for k in range(3):
            be.people = start + [6.0 * k, 0.0]
            poses = pipe.predict(frame_of(wh))
            for row, track_id in zip(poses.keypoints, poses.track_ids):
                left = bool(row[0, 0] < wh[0] / 2)
                by_place.setdefault(left, set()).add(int(track_id))
        assert [len(ids) for ids in by_place.values()] == [1, 1]  # one ID per person, all frames
        assert by_place[True] | by_place[False] == {1, 2}
        be.people = start
        other = pipe.predict(frame_of(wh), source=1)
        assert sorted(other.track_ids.tolist()) == [1, 2] and set(pipe.trackers) == {0, 1}
    assert make(OracleBackend()).predict(frame_of(wh)).track_ids is None
@pytest.mark.parametrize("dynamic", [False, True])
def test_decoders_give_the_same_people(tiny_onnx, tiny_onnx_dynamic, monkeypatch, dynamic):
    """decoder="cpu" (maps projected and decoded by kernels/cpu_decode.cpp) against decoder="numpy"
    with the NumPy resize (OpenCV's is float32-close, not bit-equal): the same people, bit for bit;
    multi-scale (dynamic model, scales 1 and 2) aggregates first, then the compiled decode."""
    from higherhrnet_trt.decode import aggregate
    from higherhrnet_trt.kernels import cpu

    if not cpu.available():
        pytest.skip(f"compiled CPU decode unavailable: {cpu.unavailable_reason()}")
    monkeypatch.setattr(aggregate, "_cv2_or_none", lambda: None)
    model, scales = (tiny_onnx_dynamic, (1, 2)) if dynamic else (tiny_onnx, (1,))
    frames = [np.random.default_rng(s).integers(0, 255, (90, 120, 3), dtype=np.uint8) for s in range(3)]
    decode = {"max_people": 8, "detection_threshold": 0.0}
    with Pipeline(str(model), scales=scales, decode=decode, decoder="cpu") as fast, \
            Pipeline(str(model), scales=scales, decode=decode, decoder="numpy") as ref:
        assert fast._cpu_decode and not ref._cpu_decode
        for frame in frames:
            a, b = fast.predict(frame), ref.predict(frame)
            assert len(b) > 0
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
            np.testing.assert_array_equal(a.scores, b.scores)


def test_decoder_choice_is_checked(tiny_onnx, monkeypatch):
    from higherhrnet_trt.kernels import cpu

    with pytest.raises(UserError, match="decoder must be one of"):
        Pipeline(str(tiny_onnx), decoder="fast")
    monkeypatch.setattr(cpu, "_state", {"error": "no C++ compiler found (set CXX or install g++)"})
    with pytest.raises(UserError, match="--decoder numpy"):
        Pipeline(str(tiny_onnx), decoder="cpu").activate()
