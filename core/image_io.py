"""Reading one image file safely: every command that reads image files goes through here.

- The bytes are read by Python and decoded with ``cv2.imdecode``: any file name the OS gives us
  works, including names that are not UTF-8 (Python keeps their bytes as surrogate escapes, which
  ``cv2.imread`` cannot take: it crashed the process).
- Regular files only: ``/dev/zero``, a FIFO or a folder would be read forever or not at all.
- At most :data:`MAX_IMAGE_BYTES` of file and :data:`MAX_IMAGE_PIXELS` of decoded image. PNG,
  JPEG and BMP state their size in the header, which is read first, so a small file that decodes
  to 30,000 x 30,000 pixels (876 KB of PNG, 2.7 GB decoded, over 5 GB at peak) is refused before
  decoding; other formats are checked after.

:func:`read_image` raises :class:`ImageReadError` (a UserError, one line); :func:`try_read_image`
returns the reason instead, for readers that skip and count bad files. OpenCV is imported when
an image is decoded (core.lazy).
"""

from __future__ import annotations

import os
import stat
import struct

import numpy as np

from .errors import UserError
from .files import shown_path
from .lazy import import_cv2

#: Most pixels of an image file (width x height): 100 Mpx, 300 MB decoded as BGR, above any
#: camera's frames (a 61 Mpx full-frame sensor, 8K video at 33 Mpx). Frames larger than the network
#: input are shrunk anyway (core.limits bounds the network input).
MAX_IMAGE_PIXELS = 100_000_000
#: Largest image file read, bytes (256 MB): compressed images of MAX_IMAGE_PIXELS are far smaller.
MAX_IMAGE_BYTES = 256 * 2**20


class ImageReadError(UserError):
    """An image file that cannot or may not be read; ``reason`` without the path."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image {shown_path(path)}: {reason}")
        self.path = path
        self.reason = reason


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG or BMP header, None for other formats or a header that
    states none (the decoder then judges the file)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(int(w)), abs(int(h))  # a negative height: rows stored top-down
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in _SOF:
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(w), int(h)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def _read_bytes(path: str) -> bytes:
    """The file's bytes; ImageReadError for a missing, non-regular, unreadable or huge file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ImageReadError(path, "no such file" if isinstance(e, FileNotFoundError)
                             else (e.strerror or str(e))) from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, pipe or socket"
        raise ImageReadError(path, f"it is {kind}, not a regular file")
    if st.st_size > MAX_IMAGE_BYTES:
        raise ImageReadError(path, f"{st.st_size / 2**20:.0f} MB: image files are read up to "
                                   f"{MAX_IMAGE_BYTES / 2**20:.0f} MB")
    try:
        with open(path, "rb") as f:
            return f.read(MAX_IMAGE_BYTES + 1)
    except OSError as e:
        raise ImageReadError(path, e.strerror or str(e)) from None


def _check_pixels(path: str, w: int, h: int) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageReadError(path, f"{w}x{h} pixels ({w * h / 1e6:.0f} Mpx) is over the limit of "
                                   f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx; shrink it first")


def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 BGR image of the file at ``path`` (as cv2.imread gives it).

    Raises ImageReadError (one line) for a file that is missing, not a regular file, over
    MAX_IMAGE_BYTES or MAX_IMAGE_PIXELS (by its header where it has one), or not decodable.
    """
    data = _read_bytes(path)
    if not data:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    size = header_size(data)
    if size is not None:
        _check_pixels(path, *size)
    cv2 = import_cv2()
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # corrupt headers in some codecs
        image = None
    if image is None or image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageReadError(path, "not a decodable image (is the file complete?)")
    _check_pixels(path, image.shape[1], image.shape[0])
    return image


def try_read_image(path: str) -> tuple[np.ndarray | None, str]:
    """(image, "") or (None, reason): :func:`read_image` for readers that skip bad files."""
    try:
        return read_image(path), ""
    except ImageReadError as e:
        return None, e.reason


__all__ = ["MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "ImageReadError", "header_size", "read_image",
           "try_read_image"]
