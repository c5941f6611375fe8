"""File kinds and sizes every part agrees on (one definition each)."""

from __future__ import annotations

import os

#: Serialized TensorRT engines.
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
#: Still images read from files and folders (calibration data, ``run --source DIR``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jp2")
#: HigherHRNet inputs are multiples of this: 5 stride-2 stages plus the nearest-neighbour fusion.
SIZE_MULTIPLE = 64


def cache_dir(*parts: str) -> str:
    """``$XDG_CACHE_HOME/higherhrnet_trt/<parts>`` (``~/.cache`` by default); not created here."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "higherhrnet_trt", *parts)
