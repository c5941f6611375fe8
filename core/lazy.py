"""Optional heavy libraries as module-level lazy proxies (as polygraphy's ``mod.lazy_import``).

torch, ONNX, TensorRT, OpenVINO, cuda-python, OpenCV, rclpy, Triton and the rest are extras or
slow to import: a module that uses one names it once at the top, ``torch = lazy_import("torch")``,
and the import happens at the first attribute access (``torch.zeros``), so importing the module
costs nothing and needs nothing installed. A missing library is then reported in one line that
says how to install it, when ``install`` is given.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from .errors import BackendUnavailable, UserError


class LazyModule:
    """Stands for module ``name`` and imports it at the first attribute access.

    Nothing is cached here: each access looks the module up in ``sys.modules`` (a dict lookup once
    imported), so a test that replaces or removes the module there is seen at once.
    """

    __slots__ = ("_name", "_install", "_error")

    def __init__(self, name: str, install: str | None = None, error: type[UserError] = UserError):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_install", install)
        object.__setattr__(self, "_error", error)

    def _load(self) -> ModuleType:
        module = sys.modules.get(self._name)
        if module is not None:
            return module
        try:
            return importlib.import_module(self._name)
        except ImportError as e:
            if self._install is None:
                raise
            missing = getattr(e, "name", None) or self._name
            raise self._error(f"{self._name} is not importable ({missing} missing): "
                              f"{self._install}") from e

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._load(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def __repr__(self) -> str:
        state = "imported" if sys.modules.get(self._name) is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_import(name: str, install: str | None = None, error: type[UserError] = UserError) -> LazyModule:
    """A proxy for module ``name`` (dotted names too: ``lazy_import("onnx.numpy_helper")``) that
    imports it at its first attribute access.

    install: the one-line fix, e.g. "pip install 'higherhrnet-trt[openvino]'": a missing module
        then raises ``error`` with it; None lets the ImportError through, as a plain import would.
    """
    return LazyModule(name, install, error)


#: How to get OpenCV, for :func:`import_cv2` and ``lazy_import("cv2", CV2_INSTALL)``.
CV2_INSTALL = ("pip install opencv-python-headless (on a Jetson use JetPack's system OpenCV: "
               "sudo apt install python3-opencv)")


def import_cv2() -> ModuleType:
    """OpenCV, or a one-line UserError that says how to get it."""
    try:
        import cv2
    except ImportError as e:
        raise UserError(f"OpenCV (cv2) is not installed: {CV2_INSTALL}") from e
    return cv2


def import_cudart(required: bool = True) -> ModuleType | None:
    """cuda-python's runtime module (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.6).

    required: raise BackendUnavailable with the fix when absent; False returns None instead.
    """
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # cuda-python 11.x / 12.0-12.5
        except ImportError:
            if not required:
                return None
            raise BackendUnavailable(
                "this needs cuda-python: pip install 'cuda-python>=12,<13' on CUDA 12 "
                "(JetPack 6) or 'cuda-python>=13' on CUDA 13, matching your driver") from None
    return cudart
