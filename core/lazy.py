"""One way to import an optional heavy library (as polygraphy's ``mod.lazy_import``).

torch, TensorRT, OpenVINO, cuda-python, OpenCV, rclpy and Triton are extras: a module that needs one
imports it inside the function that uses it, through :func:`lazy_import`, so a missing library
costs nothing until then and is reported in one line that says how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BackendUnavailable, UserError


def lazy_import(name: str, install: str, error: type[UserError] = UserError) -> ModuleType:
    """Import module ``name`` now; if it is missing, raise ``error`` with ``install`` as the fix.

    install: the one-line fix, e.g. "pip install 'higherhrnet-trt[openvino]'".
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing = getattr(e, "name", None) or name
        raise error(f"{name} is not importable ({missing} missing): {install}") from e


def import_cv2() -> ModuleType:
    """OpenCV, or a one-line UserError that says how to get it."""
    try:
        import cv2
    except ImportError as e:
        raise UserError(
            "OpenCV (cv2) is not installed: pip install opencv-python-headless "
            "(on a Jetson use JetPack's system OpenCV: sudo apt install python3-opencv)"
        ) from e
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
