"""The Python API: ``Pipeline(model).predict(frame_bgr) -> Poses``.

Per frame, the official HigherHRNet test flow (tools/valid.py), with the network behind any backend:

1. for each test scale, largest first: warp the frame to that scale's input size and normalise
   (core/preprocess.py, with the frame's core.geometry.FrameGeometry), run the model;
2. resize heatmaps to the base size (input size at scale 1: the official PROJECT2IMAGE) and average
   over scales; tags come from scale 1 only (aggregate.py);
3. group joints into people (decode), map them back to frame pixels (FrameGeometry.map_to_image).

Everything the model needs (dataset, input size, normalisation, flip test, output layout) comes
from the metadata embedded in the model file; only the test scales and decoding thresholds are
choices of the caller.

Models with a *static* input size (typical for TensorRT engines) cannot take the official
aspect-preserving input size of every frame; frames are then letterboxed into the fixed input
(whole frame visible, centred, black borders) and mapped back the same way. With a frame whose
official size equals the static size this is the official flow exactly.

``maps_to_poses`` is the "network outputs -> people" half on its own: evaluation tests feed it
oracle maps.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.geometry import FrameGeometry
from higherhrnet_trt.core.keypoints import KeypointSet
from higherhrnet_trt.core.limits import (
    check_frame,
    check_frame_size,
    check_scales,
    needs_letterbox,
    official_input_wh,
)
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.core.preprocess import letterbox, preprocess
from higherhrnet_trt.decode import DecodeConfig, parse
from higherhrnet_trt.decode.aggregate import MultiScaleAggregator, resize_bilinear, resize_tags
from higherhrnet_trt.kernels import cpu as cpu_decode

from .backends import Backend, create_backend
from .options import DECODERS, DEFAULT_KPT_THR, DEFAULT_PERSON_THR, DecodeOptions, ModelOptions
from .poses import (
    Poses,
    boxes_from_keypoints,
    cap_people,
    decode_config_for,
    is_bgr,
    people_from_grouped,
)
from .sources import Frame, Source, import_cv2, open_source
from .track import Tracker, TrackerOptions

log = logging.getLogger("higherhrnet_trt.runtime")

#: Largest batch a dynamic-batch model is given at once by predict_batch.
DEFAULT_MAX_BATCH = 8


# --------------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------------


@dataclass
class PipelineStats:
    """Counters over the pipeline's life (reported at the end of a run).

    frames: frames predicted; skipped_nonfinite: frames dropped for NaN / inf network outputs;
    capped: frames that gave more than max_people people (only the best max_people were kept).
    """

    frames: int = 0
    skipped_nonfinite: int = 0
    capped: int = 0
    people: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"preprocess": 0.0, "infer": 0.0,
                                                               "decode": 0.0})


@dataclass
class _Job:
    """One network input: frame ``frame``'s input at ``scale``."""

    frame: int
    scale: float
    tensor: np.ndarray  # (1, 3, h, w) float32


class Pipeline:
    """HigherHRNet inference on BGR frames: model file in, people out.

    model: path to an exported .onnx (or an engine once a TensorRT backend is registered).
    backend: "auto" (from the extension), a registered backend name (see backends.BACKENDS), or
        a Backend object.
    scales: test scales, e.g. (1.0,) (official single scale) or (2, 1, 0.5) (official multi-scale;
        needs a model with dynamic height / width).
    project2image: True = the official flow, maps resized to the input size before decoding.
        False = decode at heatmap resolution (input / 2): faster, not the official numbers.
    decode: a DecodeConfig, a dict of DecodeConfig fields to override (e.g. {"max_people": 50}),
        or None for the official settings with the model's joint order.
    kpt_thr: joints above this score span a person's box.
    person_thr: people scored below this (mean joint score) are not returned (default 0.15, see
        runtime/options.DEFAULT_PERSON_THR); 0 returns every candidate, as COCO evaluation needs.
    color_order: "bgr" (cv2 frames) or "rgb" (e.g. ROS rgb8 images).
    max_batch: largest batch sent at once to a dynamic-batch model by predict_batch.
    track: person IDs across frames (runtime/track.py): True, or a TrackerOptions for other
        settings; then every Poses has ``track_ids``. Frames of each source (``predict(frame,
        source=k)``) are tracked by a tracker of their own (``trackers[k]``).
    decoder: "auto" (the compiled CPU decode where a C++ compiler builds it, else NumPy), "cpu"
        (the compiled one, or a one-line error), "numpy" (decode/, the reference). Both give the
        same people from the same maps; the compiled one projects the maps to the input size as
        resize_bilinear(backend="numpy") does, the NumPy one with OpenCV where that is exact to
        float32 rounding.
    backend_options: passed to the backend (ONNX Runtime: providers=..., threads=...).

    The backend is loaded on first use or by ``activate()`` / ``with Pipeline(...) as pipe:``;
    ``deactivate()`` (or leaving the with-block) frees it.
    """

    def __init__(
        self,
        model: str,
        backend: str | Backend = "auto",
        scales: Sequence[float] = (1.0,),
        project2image: bool = True,
        decode: DecodeConfig | Mapping[str, Any] | None = None,
        kpt_thr: float = DEFAULT_KPT_THR,
        person_thr: float = DEFAULT_PERSON_THR,
        color_order: str = "bgr",
        max_batch: int = DEFAULT_MAX_BATCH,
        track: bool | TrackerOptions = False,
        decoder: str = "auto",
        **backend_options: Any,
    ) -> None:
        if decoder not in DECODERS:
            raise UserError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        self.decoder = decoder
        self.bgr = is_bgr(color_order)
        self.model_path = str(model)
        self.scales = check_scales(scales)
        self.project2image = bool(project2image)
        self.kpt_thr = float(kpt_thr)
        self.person_thr = float(person_thr)
        self.max_batch = max(1, int(max_batch))
        self._decode_arg = decode
        if isinstance(backend, Backend):  # a ready backend object (custom runtimes, test doubles)
            if backend_options:
                raise UserError("backend options go to the backend's constructor, not to Pipeline, "
                                "when a Backend object is passed")
            self.backend = backend
        else:
            self.backend = create_backend(self.model_path, backend, **backend_options)
        self.stats = PipelineStats()
        self._meta: ModelMeta | None = None
        self._cfg: DecodeConfig | None = None
        self._static_hw: tuple[int, int] | None = None  # set by activate()
        self._batch = -1
        self._warned: set[str] = set()
        self.track = track
        self.trackers: dict[int, Tracker] = {}  # source index -> its tracker, when tracking

    @classmethod
    def from_options(cls, model: ModelOptions, decode: DecodeOptions | None = None,
                     **kwargs: Any) -> Pipeline:
        """The pipeline for typed options (what the commands parse; runtime/options.py): the
        backend options are checked against those the backend takes. kwargs: the other
        arguments (color_order=..., max_batch=...)."""
        decode = decode if decode is not None else DecodeOptions()
        return cls(model.model, backend=model.backend, **decode.pipeline_kwargs(), **kwargs,
                   **model.backend_options())

    # -- lifecycle ----------------------------------------------------------------------------------
    def activate(self) -> Pipeline:
        """Load the model (idempotent) and check it can run the chosen scales."""
        if self.backend.is_active:
            return self

        if not self.backend.serves_people:  # a server that runs the pipeline warps for us
            import_cv2()  # warping needs OpenCV: say so in one line, before the model loads
        self.backend.activate()
        try:
            self._configure(self.backend.metadata)
        except BaseException:
            self.backend.deactivate()
            raise
        return self

    def deactivate(self) -> None:
        self.backend.deactivate()

    close = deactivate

    def __enter__(self) -> Pipeline:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def _configure(self, meta: ModelMeta) -> None:
        if meta.outputs not in ("aggregated", "raw"):
            raise UserError(f"{self.model_path}: unknown output layout {meta.outputs!r} in its metadata "
                            "(written by a newer exporter? update higherhrnet-trt)")
        cfg = decode_config_for(meta, self._decode_arg, self.model_path)
        if self.backend.serves_people:  # a server runs the whole pipeline: same settings or refuse
            self.backend.check_settings(self.scales, self.project2image, cfg)
            self._meta, self._cfg = meta, cfg
            return
        spec = self.backend.inputs[0]
        if len(spec.shape) != 4 or spec.shape[1] not in (3, -1):
            raise UserError(f"{self.model_path}: expected an (N, 3, H, W) image input, got {spec.shape}")
        h, w = spec.shape[2], spec.shape[3]
        if (h < 0) != (w < 0):
            raise UserError(f"{self.model_path}: only one of height / width is dynamic ({spec.shape}); "
                            "re-export with --dynamic (both) or a fixed --input-size")
        self._static_hw = None if h < 0 else (h, w)
        if self._static_hw is not None and len(self.scales) > 1:
            raise UserError(
                f"{self.model_path} has a fixed input size ({h}x{w}): scales {self.scales} need a "
                "model exported with --dynamic (height and width)"
            )
        self._batch = spec.shape[0]  # -1 = dynamic
        self._meta, self._cfg = meta, cfg
        self._cpu_decode = self._resolve_decoder(meta, cfg)

    @property
    def active_decoder(self) -> str:
        """The decoder frames are decoded with, the decoder option resolved: "cpu" (compiled) or
        "numpy". Loads the model first if needed."""
        self.activate()
        return "cpu" if self._cpu_decode else "numpy"

    def _resolve_decoder(self, meta: ModelMeta, cfg: DecodeConfig) -> bool:
        """True when frames decode with the compiled CPU decode (the decoder option resolved)."""
        if self.decoder == "numpy":
            return False
        if not cpu_decode.available():
            reason = cpu_decode.unavailable_reason()
            if self.decoder == "cpu":
                raise UserError(f"decoder 'cpu': {reason}; install a C++ compiler (g++) or use decoder "
                                "'numpy' (--decoder numpy)")
            log.warning("compiled CPU decode unavailable (%s): decoding in NumPy", reason)
            return False
        tag_dim = 2 if meta.flip and meta.outputs == "aggregated" else 1
        if not cpu_decode.supports(cfg, meta.keypoints.num_joints, tag_dim):
            log.warning("decode settings past the compiled CPU decode's limits (max_people <= %d): "
                        "decoding in NumPy", cpu_decode.MAX_PEOPLE)
            return False
        return True

    @property
    def meta(self) -> ModelMeta:
        """The model's metadata (loads the model)."""
        self.activate()
        return self._meta

    @property
    def keypoints(self) -> KeypointSet:
        """The model's keypoint set: joint names, skeleton, OKS sigmas (loads the model)."""
        return self.meta.keypoints

    @property
    def decode_config(self) -> DecodeConfig:
        self.activate()
        return self._cfg

    def _warn_once(self, key: str, message: str, *args) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    # -- prediction ---------------------------------------------------------------------------------
    def predict(self, frame: np.ndarray, source: int = 0) -> Poses:
        """People in one frame: (H, W, 3) uint8 BGR (or RGB with color_order="rgb"). See Poses.
        source: which camera / stream the frame is from (its tracker, with ``track``)."""
        return self.predict_batch([frame], [source])[0]

    def predict_batch(self, frames: Sequence[np.ndarray], sources: Sequence[int] | None = None
                      ) -> list[Poses]:
        """predict() for several frames, batched through the model where its batch size allows
        (frames of the same size share batches). Returns one Poses per frame, in order.
        sources: each frame's source index (None: all 0); with ``track`` the frames of one source
        are tracked in the order given."""
        results = self._predict_frames(frames)
        if self.track:  # on every candidate: the tracker's second stage matches weak people too
            results = [self._tracker(k).update_poses(p)
                       for k, p in zip(sources if sources is not None else [0] * len(results), results)]
        return [p.select(self.person_thr) for p in results]

    def _tracker(self, source: int) -> Tracker:
        """The tracker of frames from ``source`` (made on its first frame)."""
        if source not in self.trackers:
            options = self.track if isinstance(self.track, TrackerOptions) else None
            self.trackers[source] = Tracker(self.keypoints.sigmas, options)
        return self.trackers[source]

    def _predict_frames(self, frames: Sequence[np.ndarray]) -> list[Poses]:
        """predict_batch without tracking, every candidate (person_thr not applied yet)."""
        self.activate()
        frames = [check_frame(f) for f in frames]
        if not frames:
            return []
        if self.backend.serves_people:
            return self._predict_served(frames)
        t0 = time.perf_counter()
        jobs: list[_Job] = []
        geometries: list[FrameGeometry] = []
        for i, frame in enumerate(frames):
            inputs, geometry = self.prepare(frame)
            geometries.append(geometry)
            jobs.extend(_Job(i, s, x) for s, x in inputs)
        t1 = time.perf_counter()
        outputs = self._run_jobs(jobs)
        t2 = time.perf_counter()
        results = [self.postprocess(i, frames[i], geometries[i], outputs) for i in range(len(frames))]
        t3 = time.perf_counter()
        sec = self.stats.seconds
        sec["preprocess"] += t1 - t0
        sec["infer"] += t2 - t1
        sec["decode"] += t3 - t2
        return results

    def _predict_served(self, frames: list[np.ndarray]) -> list[Poses]:
        """predict_batch through a backend that runs the whole pipeline (a Triton server): frames
        out, people back; boxes from the keypoints with this pipeline's kpt_thr, as maps_to_poses."""
        t0 = time.perf_counter()
        people = self.backend.infer_frames(frames if self.bgr else [f[:, :, ::-1] for f in frames])
        self.stats.seconds["infer"] += time.perf_counter() - t0
        results = []
        for frame, (keypoints, scores, valid) in zip(frames, people):
            image_wh = (frame.shape[1], frame.shape[0])
            self.stats.frames += 1
            if not valid:
                self.stats.skipped_nonfinite += 1
                self._warn_once("nonfinite", "the server's network returned NaN/inf values: such frames "
                                "are skipped; the count is reported at the end")
                results.append(Poses.empty(self._meta.keypoints.num_joints, image_wh, valid=False))
                continue
            results.append(Poses(keypoints, scores, boxes_from_keypoints(keypoints, self.kpt_thr), image_wh))
            self.stats.people += len(scores)
        return results

    def stream(self, source, max_frames: int | None = None, **source_options: Any) -> Iterator[tuple]:
        """Iterate ``(Frame, Poses)`` over a source: anything ``open_source`` takes (path, folder,
        video, camera index, URL, GStreamer pipeline) or an opened Source / iterable of frames.

        source_options: passed to open_source (max_reconnects=..., backoff_s=..., every_frame=...):
            a live source yields its newest frame by default (runtime/latest.py), frames the model
            was too slow for dropped (``Frame.index`` shows the gaps); ``every_frame=True`` yields
            every frame in turn.
        """
        opened = source if isinstance(source, Source) else None
        if opened is None and isinstance(source, (str, int, os.PathLike)):
            opened = open_source(os.fspath(source) if isinstance(source, os.PathLike) else source,
                                 **source_options)
        iterable: Iterable = opened if opened is not None else source
        try:
            for n, frame in enumerate(iterable):
                if max_frames is not None and n >= max_frames:
                    break
                if not isinstance(frame, Frame):  # a plain iterable of images
                    frame = Frame(image=frame, index=n, name=f"frame_{n:06d}")
                yield frame, self.predict(frame.image)
        finally:
            if opened is not None and opened is not source:
                opened.close()

    # -- stages (public for per-stage timing: benchmarks.bench; predict_batch chains them) ----------
    def prepare(self, frame: np.ndarray) -> tuple[list[tuple[float, np.ndarray]], FrameGeometry]:
        """Stage 1: (H, W, 3) uint8 frame -> [(scale, input (1, 3, h, w) float32)], its geometry.
        Official multi-scale resize for dynamic models; letterbox into a fixed input otherwise.
        Loads the model first if needed (its input size and metadata decide the resize)."""
        self.activate()
        frame = check_frame(frame)
        meta = self._meta
        image_wh = (frame.shape[1], frame.shape[0])
        if self._static_hw is not None:
            in_h, in_w = self._static_hw
            scale = self.scales[0]  # static models run one scale (checked in _configure)
            if needs_letterbox(image_wh, meta.input_size, (in_w, in_h), scale):
                official = official_input_wh(image_wh, meta.input_size, scale)
                self._warn_once(
                    "letterbox",
                    "frames of %dx%d are letterboxed into the model's fixed %dx%d input (the official "
                    "size would be %dx%d; export with --dynamic for the official results)",
                    image_wh[0], image_wh[1], in_w, in_h, official[0], official[1],
                )
                x, geometry = letterbox(frame, (in_w, in_h), meta.mean, meta.std, bgr=self.bgr)
                return [(scale, x)], geometry
        # Before any work: an elongated frame or a large scale would exhaust memory (core/limits.py).
        check_frame_size(image_wh, meta.input_size, self.scales)
        inputs, geometry = preprocess(frame, meta.input_size, self.scales, meta.mean, meta.std,
                                      bgr=self.bgr)
        return inputs, geometry

    def _run_jobs(self, jobs: list[_Job]) -> dict[tuple[int, float], tuple[np.ndarray, np.ndarray]]:
        """Run all inputs, batching those of equal shape. Returns (frame, scale) -> (heatmaps
        (1, J, h, w), tags (1, J, h', w', T)) as the model's 'aggregated' layout gives them."""
        groups: dict[tuple[int, ...], list[_Job]] = {}
        for job in jobs:
            groups.setdefault(job.tensor.shape, []).append(job)
        size = self.max_batch if self._batch < 0 else self._batch
        spec = self.backend.inputs[0]
        name = spec.name
        out: dict[tuple[int, float], tuple[np.ndarray, np.ndarray]] = {}
        for group in groups.values():
            for start in range(0, len(group), size):
                chunk = group[start:start + size]
                batch = np.concatenate([j.tensor for j in chunk], axis=0)
                if self._batch > 0 and batch.shape[0] < self._batch:
                    # A static batch larger than the frames at hand: pad with copies of the last
                    # input (its outputs are discarded).
                    pad = np.repeat(batch[-1:], self._batch - batch.shape[0], axis=0)
                    batch = np.concatenate([batch, pad], axis=0)
                if batch.dtype != spec.dtype:  # e.g. an fp16-input engine; preprocessing is fp32
                    batch = batch.astype(spec.dtype)
                heatmaps, tags = self.model_maps(self.backend.infer({name: batch}))
                for k, job in enumerate(chunk):
                    out[(job.frame, job.scale)] = (heatmaps[k:k + 1], tags[k:k + 1])
        return out

    def model_maps(self, result: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2 (after ``backend.infer``): backend outputs -> (heatmaps (N, J, h, w), tags
        (N, J, h', w', T)), for both output layouts ("aggregated" and raw)."""
        self.activate()
        names = [o.name for o in self.backend.outputs]
        j = self._meta.keypoints.num_joints
        if self._meta.outputs == "aggregated":
            heatmaps = result.get("heatmaps", result[names[0]])
            tags = result.get("tags", result[names[1]])
            if tags.ndim == 4:
                tags = tags[..., None]
        else:
            # Raw network outputs: do the graph's stride-2 step here (no flip test in raw models):
            # output0 (N, 2J, h/4, w/4) upsampled x2, heatmaps averaged with output1 (N, J, h/2, w/2).
            out0 = np.asarray(result.get("output0", result[names[0]]), dtype=np.float32)
            out1 = np.asarray(result.get("output1", result[names[1]]), dtype=np.float32)
            up = resize_bilinear(out0, (out1.shape[3], out1.shape[2]))
            heatmaps = (up[:, :j] + out1) / np.float32(2.0)
            tags = up[:, j:][..., None]
        if heatmaps.ndim != 4 or heatmaps.shape[1] != j or tags.shape[:2] != heatmaps.shape[:2]:
            raise UserError(f"{self.model_path}: outputs {heatmaps.shape} / {tags.shape} do not match "
                            f"its metadata ({j} joints, {self._meta.outputs}); re-export the model")
        return heatmaps, tags

    def decode_maps(self, heatmaps: np.ndarray, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3's decode: one frame's aggregated heatmaps (J, H, W) and tags (J, H, W, T) float32
        -> grouped people (P, J, 3 + T) in map pixels and their scores (P,), as decode.parse.
        The decoder option's (compiled CPU or NumPy); the Triton pipeline model (serving) swaps in
        the CUDA kernels."""
        self.activate()
        if getattr(self, "_cpu_decode", False):
            return cpu_decode.decode(heatmaps, tags, self._cfg)
        return parse(heatmaps, tags, self._cfg)

    def _fused_decode(self, scales: Sequence[float]) -> bool:
        """Whether frame maps go straight to the compiled decode, which projects them itself (one
        scale, and decode_maps not replaced by a subclass: serving's CUDA decoder wants them
        projected)."""
        return getattr(self, "_cpu_decode", False) and len(scales) == 1 and not self._decode_replaced()

    def _decode_replaced(self) -> bool:
        """Whether decode_maps is not this class's own (a subclass swapped another decoder in)."""
        return type(self).decode_maps is not Pipeline.decode_maps

    def postprocess(self, i: int, frame: np.ndarray, geometry: FrameGeometry, outputs) -> Poses:
        """Stage 3: frame ``i``'s maps -> Poses in image pixels. ``outputs``: (frame, scale) ->
        (heatmaps (1, J, h, w), tags (1, J, h', w', T)) from :meth:`model_maps`; scales aggregated,
        decoded, capped at max_people; counts into ``stats``."""
        self.activate()
        self.stats.frames += 1
        num_joints = self._meta.keypoints.num_joints
        scales = [s for s in self.scales if (i, s) in outputs]
        maps = [outputs[(i, s)] for s in scales]
        if not all(np.isfinite(h).all() and np.isfinite(t).all() for h, t in maps):
            self.stats.skipped_nonfinite += 1
            self._warn_once(
                "nonfinite",
                "the network returned NaN/inf values: skipping such frames (fp16/INT8 overflow? "
                "compare with the fp32 model); the count is reported at the end",
            )
            return Poses.empty(num_joints, geometry.image_wh, valid=False)
        agg = MultiScaleAggregator(geometry.base_size_wh, scales,
                                   resolution="input" if self.project2image else "heatmap")
        if self._fused_decode(scales):
            h, t = maps[0]
            if t.shape[2:4] != h.shape[2:4]:  # stride-4 tags: the official first step to stride 2
                t = resize_tags(t, (h.shape[3], h.shape[2]), backend="numpy")
            grouped, scores = cpu_decode.decode(h[0], t[0], self._cfg, size_wh=agg.output_size_wh)
        else:
            for s, (h, t) in zip(scales, maps):
                agg.add(s, h, t)
            heatmaps, tags = agg.result()
            grouped, scores = self.decode_maps(heatmaps[0], tags[0])
        poses = people_from_grouped(  # as maps_to_poses, with the decode step swappable
            grouped, scores, geometry, num_joints, self.kpt_thr,
            heatmap_size_wh=None if self.project2image else agg.output_size_wh,
        )
        limit = self._cfg.max_people
        if len(poses) > limit:
            self.stats.capped += 1
            self._warn_once(
                "capped",
                "a frame gave %d people, more than max_people=%d: keeping the %d best (raise it "
                "with --max-people / decode={'max_people': N}); said once", len(poses), limit, limit,
            )
            poses = cap_people(poses, limit)
        self.stats.people += len(poses)
        return poses
