"""The interface every inference backend implements (ONNX Runtime, TensorRT, TensorRT-RTX, ...).

Lifecycle, as in polygraphy's runners: constructing a backend is cheap and imports nothing heavy;
``activate()`` loads the model and allocates; ``infer()`` runs a batch; ``deactivate()`` frees.
Use it as a context manager. Inputs and outputs are named; shapes come from the model, with
dynamic dimensions given as ``-1``. Nothing backend-specific (sessions, engines, streams) leaks out.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.metadata import ModelMeta


@dataclass(frozen=True)
class TensorSpec:
    """A named model input or output. shape: ints, -1 where the dimension is dynamic."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape)


class Backend(abc.ABC):
    """Runs a model on named numpy arrays. Subclasses set ``name`` and implement the four methods."""

    name: str = "base"
    #: The ModelOptions fields (runtime/options.py) this backend's constructor takes, by the same
    #: names; the commands refuse the others for it in one line. A new backend option: a field of
    #: ModelOptions, a flag in cli/flags.py, its name here.
    options: tuple[str, ...] = ()
    #: True for a backend that runs the whole pipeline elsewhere (a Triton server): it takes frames
    #: and returns people through ``infer_frames(frames) -> [(keypoints, scores, valid)]`` and
    #: ``check_settings(scales, project2image, decode_config)``; Pipeline then only converts.
    serves_people: bool = False

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self.is_active = False

    # -- lifecycle -------------------------------------------------------------------------------
    @abc.abstractmethod
    def activate_impl(self) -> None:
        """Load the model and allocate resources."""

    @abc.abstractmethod
    def deactivate_impl(self) -> None:
        """Release everything activate_impl acquired."""

    @abc.abstractmethod
    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. feeds: input name -> array of the input's dtype."""

    @property
    @abc.abstractmethod
    def inputs(self) -> list[TensorSpec]:
        """Model inputs (valid once active)."""

    @property
    @abc.abstractmethod
    def outputs(self) -> list[TensorSpec]:
        """Model outputs (valid once active)."""

    @property
    @abc.abstractmethod
    def metadata(self) -> ModelMeta:
        """Model metadata embedded at export (valid once active)."""

    def activate(self) -> Backend:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; checks names and static dimensions first so errors are one clear line."""
        if not self.is_active:
            raise RuntimeError(f"{self.name} backend used before activate()")
        expected = {s.name: s for s in self.inputs}
        missing = set(expected) - set(feeds)
        unknown = set(feeds) - set(expected)
        if missing or unknown:
            raise UserError(
                f"model inputs are {sorted(expected)}; got {sorted(feeds)}"
            )
        for name, arr in feeds.items():
            spec = expected[name]
            if arr.ndim != len(spec.shape) or any(
                d >= 0 and d != a for d, a in zip(spec.shape, arr.shape)
            ):
                raise UserError(
                    f"input {name!r} has shape {tuple(arr.shape)} but the model expects "
                    f"{spec.shape} (-1 = any); re-export with --dynamic for other sizes"
                )
        return self.infer_impl(feeds)

    def __enter__(self) -> Backend:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @property
    def input_name(self) -> str:
        """Name of the single image input."""
        return self.inputs[0].name
