"""The runtime's options, one typed object per concern: what the commands parse and the Python API
takes alike.

Each field is one option under one name: the command-line flag is the field name with dashes
(``kpt_thr`` <-> ``--kpt-thr``; cli/flags.py defines each group once, and tests/project/test_layout.py
fails when a flag's destination is not a field here), the ROS 2 node's parameter, the API's
argument and the JSON key. A new option is one field here plus its flag in cli/flags.py.

- :class:`ModelOptions`: the model file and its backend's options (each backend declares the
  ones it takes: ``Backend.options``);
- :class:`DecodeOptions`: test scales and the thresholds from network maps to reported people;
- :class:`SourceOptions`: which frames, and the live-stream policy;
- :class:`OutputOptions`: where people go (JSON, annotated images / video, the window).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from higherhrnet_trt.core.errors import UserError

from .backends import BACKENDS, backend_class, default_backend_for, is_remote
from .streams import StreamPolicy

#: The score a person needs to be reported (mean joint score; Poses.scores): printed, drawn,
#: written, served and published. 0.15 from the demo network on generated scenes (precision 0.806,
#: recall 0.657: benchmarks/person_thr.py, RESULTS.md); 0 keeps every candidate (COCO evaluation).
DEFAULT_PERSON_THR = 0.15
#: Joints scored above this are drawn and span a person's box.
DEFAULT_KPT_THR = 0.1
#: Decoders of the maps: "cpu" the compiled one (kernels/cpu_decode.cpp), "numpy" the reference,
#: "auto" the compiled one where it builds, else NumPy (saying so once).
DECODERS = ("auto", "cpu", "numpy")


def flag(name: str) -> str:
    """The command-line spelling of an option: ``kpt_thr`` -> ``--kpt-thr``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class ModelOptions:
    """The model and the backend that runs it.

    model: an exported .onnx, an engine, a .pth checkpoint, or triton://HOST:PORT/NAME.
    backend: "auto" (from the file: .onnx onnxruntime, engines tensorrt, .pth torch, triton://
        triton) or a registered name. The other fields are backend options: each backend takes
        those named in its ``options`` (None / 0 = not given; giving one to a backend that does
        not take it is an error naming the backends that do).
    providers: ONNX Runtime execution providers, in priority order.
    threads: CPU threads (0 = the library's default).
    graph_optimization: ONNX Runtime's graph optimisation level.
    inference_precision: OpenVINO's precision hint (f32, bf16, f16).
    config: the model config (torch checkpoints; ONNX files without our metadata).
    device: torch's device (cuda, cuda:N, cpu).
    """

    model: str = ""
    backend: str = "auto"
    providers: tuple[str, ...] | None = None
    threads: int = 0
    graph_optimization: str | None = None
    inference_precision: str | None = None
    config: str | None = None
    device: str | None = None

    #: The fields above that are not backend options.
    NOT_BACKEND = ("model", "backend")

    def __post_init__(self) -> None:
        if isinstance(self.providers, str):  # "A,B" from a flag or a ROS parameter
            names = tuple(p.strip() for p in self.providers.split(",") if p.strip())
            object.__setattr__(self, "providers", names or None)
        if self.threads is None or int(self.threads) < 0:
            raise UserError(f"threads must be 0 (the library's default) or more, got {self.threads}")

    @property
    def served(self) -> bool:
        """The model is served by a Triton server (triton://HOST:PORT/NAME, or backend triton)."""
        return self.backend == "triton" or is_remote(self.model)

    def backend_name(self) -> str:
        """The backend that will run the model ("auto" resolved from the file)."""
        return default_backend_for(self.model) if self.backend == "auto" else self.backend

    def given(self) -> dict[str, Any]:
        """The backend options given (not None, 0 or empty), by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in self.NOT_BACKEND and getattr(self, f.name)}

    def backend_options(self) -> dict[str, Any]:
        """Keyword arguments for the backend's constructor: the options given, checked against
        those the backend declares (``Backend.options``); one line naming the fix otherwise."""
        name = self.backend_name()
        given = self.given()
        if name not in BACKENDS:  # create_backend says which exist
            return given
        takes = backend_class(name).options
        wrong = [k for k in given if k not in takes]
        if wrong:
            raise UserError(f"{' / '.join(flag(k) for k in wrong)}: not an option of the {name} backend "
                            f"({_who_takes(wrong)})")
        return {k: list(v) if k == "providers" else v for k, v in given.items()}

    def check_model_exists(self) -> None:
        """A local model file that is not there: one line, before anything loads."""
        if not self.served and not os.path.isfile(self.model):
            raise UserError(f"model file not found: {self.model}")


def _who_takes(options: Sequence[str]) -> str:
    """'onnxruntime options: --providers, --threads; openvino options: --threads' for the error
    above: the backends that take any of ``options``, with all they take."""
    parts = []
    for name in BACKENDS:
        takes = _declared(name)
        if any(o in takes for o in options):
            parts.append(f"{name} options: {', '.join(flag(o) for o in takes)}")
    return "; ".join(parts) or "no backend takes them"


def _declared(name: str) -> tuple[str, ...]:
    try:
        return backend_class(name).options
    except ImportError:  # a registered backend whose module does not import here
        return ()


@dataclass(frozen=True)
class DecodeOptions:
    """From network maps to the people reported.

    scales: test scales (official single scale (1,); multi-scale (2, 1, 0.5) needs a model with
        dynamic height / width).
    heatmap_resolution: decode at half the input resolution (faster, not the official results).
    det_thr: heatmap peaks above this become joint candidates.
    max_people: most people kept per frame (best scores).
    kpt_thr: joints scored above this are drawn and span a person's box.
    person_thr: people scored below this (mean joint score) are left out of what is returned,
        printed, drawn, written and published; 0 keeps every candidate (``eval`` does).
    track: person IDs across frames (runtime/track.py; each source tracked on its own), on every
        candidate before person_thr.
    decoder: "auto" (the compiled CPU decode where it builds, else NumPy), "cpu" or "numpy".
    """

    scales: tuple[float, ...] = (1.0,)
    heatmap_resolution: bool = False
    det_thr: float = 0.1
    max_people: int = 30
    kpt_thr: float = DEFAULT_KPT_THR
    person_thr: float = DEFAULT_PERSON_THR
    track: bool = False
    decoder: str = "auto"

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise UserError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        for name in ("det_thr", "kpt_thr", "person_thr"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise UserError(f"{name} must be a number from 0 to 1, got {getattr(self, name)!r}")
        if int(self.max_people) < 1:
            raise UserError(f"max_people must be a whole number >= 1, got {self.max_people!r}")

    def pipeline_kwargs(self) -> dict[str, Any]:
        """Pipeline's arguments for these options."""
        return dict(scales=self.scales, project2image=not self.heatmap_resolution, kpt_thr=self.kpt_thr,
                    person_thr=self.person_thr, track=self.track, decoder=self.decoder,
                    decode={"max_people": self.max_people, "detection_threshold": self.det_thr})


@dataclass(frozen=True)
class SourceOptions:
    """Which frames: sources and the live-stream policy (runtime/streams.py).

    source: images, folders, globs, videos, camera indices, URLs or GStreamer pipelines; several
        are read in rounds of one frame each, predicted as one batch.
    max_frames: stop after this many frames of each source (None: until they end).
    reconnect: reopen attempts after a live source's frames stop.
    stream_timeout: the longest one open or read of a network stream may take, in seconds.
    wait_for_source: retry a network stream's first open like a reconnect.
    every_frame: live sources: process every frame in turn (a recording served live) instead of
        the newest (runtime/latest.py: frames the model was too slow for are dropped and counted).
    """

    source: tuple[str, ...] = ()
    max_frames: int | None = None
    reconnect: int = 5
    stream_timeout: float = 10.0
    wait_for_source: bool = False
    every_frame: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.source, (str, int, os.PathLike)):
            object.__setattr__(self, "source", (self.source,))
        if self.reconnect < 0:
            raise UserError(f"--reconnect must be 0 or more, got {self.reconnect}")

    def policy(self):
        """The streams' StreamPolicy for these options."""
        return StreamPolicy(timeout_s=self.stream_timeout, max_reconnects=self.reconnect,
                            retry_first_open=self.wait_for_source)


@dataclass(frozen=True)
class OutputOptions:
    """Where people go.

    json: COCO keypoint results file (.json).
    save_dir: annotated images or videos (<source>.mp4) go here.
    show: a live window (needs a display).
    boxes: also draw each person's box and score.
    no_progress: no progress bar.
    """

    json: str | None = None
    save_dir: str | None = None
    show: bool = False
    boxes: bool = False
    no_progress: bool = False

    @property
    def draws(self) -> bool:
        """Whether frames are drawn (saved or shown)."""
        return bool(self.save_dir or self.show)


def options_from(cls, values: Any, **overrides: Any):
    """``cls`` (one of the option classes) from an object with one attribute per field (an
    argparse namespace: flag destinations are field names) or a mapping (ROS parameters);
    fields it lacks keep their defaults."""
    get = values.get if isinstance(values, dict) else (lambda k, d: getattr(values, k, d))
    missing = object()
    kwargs = {}
    for f in fields(cls):
        value = overrides.get(f.name, get(f.name, missing))
        if value is not missing:
            kwargs[f.name] = value
    return cls(**kwargs)


__all__ = ["ModelOptions", "DecodeOptions", "SourceOptions", "OutputOptions", "options_from",
           "DEFAULT_PERSON_THR", "DEFAULT_KPT_THR"]
