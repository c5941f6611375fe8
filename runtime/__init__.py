"""The lean runtime: model file + frames -> people. No torch; OpenCV only where images are read,
warped or drawn.

``from higherhrnet_trt.runtime import Pipeline`` is all robot code needs. Names load lazily, so
importing the package (e.g. for ``higherhrnet-trt --help``) costs nothing.
"""

from __future__ import annotations

import importlib

#: public name -> module (relative) that defines it
_EXPORTS = {
    "Pipeline": ".pipeline",
    "Poses": ".poses",
    "maps_to_poses": ".poses",
    "open_source": ".sources",
    "Frame": ".sources",
    "draw_poses": ".draw",
    "Tracker": ".track",
    "TrackerOptions": ".track",
    "evaluate_model": ".evaluate",
    "ModelMeta": "higherhrnet_trt.core.metadata",
    "UserError": "higherhrnet_trt.core.errors",
    "FrameGeometry": "higherhrnet_trt.core.geometry",
    "DecodeConfig": "higherhrnet_trt.decode",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
