"""Property-based fuzz (hypothesis) of what a frame meets before and after the network: frame checks
and pre-processing, the grouping decoder, and the Pipeline between them with a fake network that
returns any maps (issue 15 item 8).

Properties: nothing crashes with anything but the project's one-line UserError (or the decoder's
ValueError for maps that are not maps), nothing hangs, and what comes out keeps its documented
shapes and bounds. Random shapes, NaN / inf, empty and saturated maps, and more joint candidates
than max_people. Examples are bounded (sizes up to ~100 px, a few dozen examples per property) so
the file runs in well under a minute on 2 cores; a watchdog of 60 s per example (far above the
milliseconds one takes) turns a real hang into a failure instead of a stuck CI job.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from higherhrnet_trt.core.errors import UserError  # noqa: E402
from higherhrnet_trt.core.metadata import ModelMeta  # noqa: E402
from higherhrnet_trt.decode import DecodeConfig, parse  # noqa: E402

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WATCHDOG_S = 60


class Hang(Exception):
    pass


@pytest.fixture(autouse=True)
def watchdog():
    """SIGALRM after WATCHDOG_S seconds: a hang fails the test (main thread, POSIX only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise Hang(f"no result after {WATCHDOG_S} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(WATCHDOG_S * 10)  # the whole test: examples x a generous bound
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- maps --------------------------------------------------------------------------------------------
SPECIAL = st.sampled_from([0.0, 1.0, 1e-3, 0.1, 0.5, -1.0, 1e30, -1e30, np.nan, np.inf, -np.inf])


@st.composite
def maps(draw, max_side: int = 40):
    """(heatmaps (J, H, W), tags (J, H, W, T), kind) float32 of random shape and content."""
    j = draw(st.integers(1, 6))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    t = draw(st.integers(1, 2))
    kind = draw(st.sampled_from(["random", "empty", "saturated", "special", "peaks"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    heat = rng.random((j, h, w), dtype=np.float32)
    if kind == "empty":
        heat[:] = 0.0
    elif kind == "saturated":
        heat[:] = 1.0  # every pixel ties: the most candidates there can be
    elif kind == "special":
        heat.flat[rng.integers(0, heat.size, max(1, heat.size // 7))] = draw(SPECIAL)
    elif kind == "peaks":  # many isolated peaks: more candidates than max_people
        heat[:] = 0.0
        heat[:, ::3, ::3] = 0.9
    tags = rng.normal(size=(j, h, w, t)).astype(np.float32) * draw(st.sampled_from([0.0, 0.01, 1.0, 100.0]))
    if draw(st.booleans()):
        tags.flat[rng.integers(0, tags.size, max(1, tags.size // 11))] = draw(SPECIAL)
    return heat, tags, kind


@FUZZ
@given(maps(), st.integers(1, 8), st.booleans(), st.booleans())
def test_decoder_never_crashes_and_keeps_its_shapes(m, max_people, adjust, refine):
    heat, tags, kind = m
    j, h, w = heat.shape
    cfg = DecodeConfig(joint_order=tuple(range(j)), max_people=max_people, adjust=adjust, refine=refine)
    finite = bool(np.isfinite(heat).all() and np.isfinite(tags).all())
    try:
        with np.errstate(all="ignore"):
            grouped, scores = parse(heat, tags, cfg)
    except ValueError:  # NaN / inf maps may be refused (the Pipeline skips them before decoding)
        if finite:
            raise
        return
    assert grouped.ndim == 3 and grouped.shape[1] == j and grouped.shape[2] >= 3
    assert scores.shape == (grouped.shape[0],)
    if finite and len(grouped):
        xy = grouped[:, :, :2]
        assert np.isfinite(xy).all()
        # Joints lie on the map (+0.5 pixel centre, +-0.25 quarter offset, refine's search too).
        assert xy[..., 0].min() >= -1 and xy[..., 0].max() <= w + 1
        assert xy[..., 1].min() >= -1 and xy[..., 1].max() <= h + 1
    if kind == "empty":
        assert len(grouped) == 0  # nothing above the detection threshold: nobody


@FUZZ
@given(
    st.one_of(
        hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.uint16, np.bool_, np.int8]),
                   hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9)),
        st.none(), st.integers(), st.text(max_size=3),
    ),
)
def test_frame_check_accepts_or_refuses_in_one_line(frame):
    from higherhrnet_trt.core.limits import check_frame

    try:
        out = check_frame(frame)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    assert out.shape[:2] == np.asarray(frame).shape[:2]


@FUZZ
@given(st.integers(1, 120), st.integers(1, 120), st.sampled_from([64, 128, 256]),
       st.sampled_from([(1.0,), (2.0, 1.0), (1.0, 0.5), (2.0, 1.0, 0.5)]), st.booleans())
def test_preprocessing_sizes_and_values(h, w, input_size, scales, bgr):
    pytest.importorskip("cv2")
    from higherhrnet_trt.core.preprocess import preprocess

    frame = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), np.uint8)
    inputs, geometry = preprocess(frame, input_size, scales, bgr=bgr)
    assert [s for s, _ in inputs] == sorted(scales, reverse=True)
    for s, x in inputs:
        assert x.dtype == np.float32 and x.shape[:2] == (1, 3) and np.isfinite(x).all()
        assert x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0  # 64-aligned at the smallest scale
        assert min(x.shape[2:]) == int(-(-input_size * min(scales) // 64) * 64 * s / min(scales))
    assert geometry.image_wh == (w, h)


class FakeNetwork:
    """What the Pipeline's backend returns: maps drawn by hypothesis, whatever their content."""

    def __init__(self, fill):
        from higherhrnet_trt.runtime.backends import Backend, TensorSpec

        fill_maps = fill

        class _Fake(Backend):
            name = "fake"

            def activate_impl(self):
                pass

            def deactivate_impl(self):
                pass

            def infer_impl(self, feeds: Mapping[str, np.ndarray]):
                n, _, h, w = feeds["image"].shape
                heat, tags = fill_maps(n, 17, h // 2, w // 2)
                return {"heatmaps": heat, "tags": tags}

            @property
            def inputs(self):
                return [TensorSpec("image", (-1, 3, -1, -1), np.dtype(np.float32))]

            @property
            def outputs(self):
                return [TensorSpec("heatmaps", (-1, 17, -1, -1), np.dtype(np.float32)),
                        TensorSpec("tags", (-1, 17, -1, -1, 2), np.dtype(np.float32))]

            @property
            def metadata(self):
                return ModelMeta.for_dataset("coco", input_size=64, dynamic_shape=True)

        self.backend = _Fake("fake.onnx")


@FUZZ
@given(st.integers(8, 100), st.integers(8, 100), st.sampled_from(["random", "empty", "saturated",
                                                                   "nan", "inf", "peaks"]),
       st.integers(1, 5))
def test_pipeline_on_any_network_output(h, w, kind, max_people):
    pytest.importorskip("cv2")
    from higherhrnet_trt.runtime.pipeline import Pipeline

    def fill(n, j, mh, mw):
        rng = np.random.default_rng(mh * 7 + mw)
        heat = rng.random((n, j, mh, mw), dtype=np.float32)
        heat = {"empty": heat * 0, "saturated": heat * 0 + 1, "nan": heat * np.nan, "inf": heat / 0.0,
                "peaks": np.where((np.indices((mh, mw)) % 3 == 0).all(0), 0.9, 0.0).astype(np.float32)
                * np.ones_like(heat)}.get(kind, heat)
        return heat.astype(np.float32), rng.normal(size=(n, j, mh, mw, 2)).astype(np.float32)

    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
    with np.errstate(all="ignore"):
        pipe = Pipeline("fake.onnx", backend=FakeNetwork(fill).backend, decode={"max_people": max_people})
        try:
            poses = pipe.predict(frame)
        except UserError as e:  # a frame beyond core/limits.py's bounds: refused in one line
            assert "\n" not in str(e) and max(h, w) / min(h, w) > 8
            return
    assert len(poses) <= max_people  # more candidates than max_people: capped, best first
    assert poses.keypoints.shape == (len(poses), 17, 3) and poses.boxes.shape == (len(poses), 4)
    assert np.all(np.diff(poses.scores) <= 0)
    if kind in ("nan", "inf"):
        assert not poses.valid and len(poses) == 0 and pipe.stats.skipped_nonfinite == 1
    else:
        assert poses.valid and np.isfinite(poses.keypoints).all()
    if kind == "empty":
        assert len(poses) == 0
