"""Frame sources: an image, a folder of images, a glob, a video file, a camera, a network stream or a
GStreamer pipeline, all iterated the same way (``for frame in open_source(spec)``).

What can go wrong ends in one clear line or is counted, never a traceback in the middle of a run:
- an unreadable image in a folder is skipped and counted (``source.skipped``), the run goes on;
- an empty folder, a missing file, a camera that will not open: :class:`UserError` at open time;
- a video file ends: iteration ends;
- a live stream (camera, rtsp://, GStreamer) stops delivering frames: it is reopened with
  exponential backoff, a bounded number of times; then :class:`UserError`. Network streams bound
  every open and read by a timeout (runtime/streams.py holds the policy).

A live source (camera, stream, live GStreamer pipeline) comes wrapped in a newest-frame reader
(runtime/latest.py: a thread keeps only the latest frame, the others are counted as dropped)
unless ``every_frame=True``; files are always read frame by frame.

OpenCV is imported when a source opens (:func:`import_cv2`): on a Jetson it is JetPack's system
build, never a pip wheel, and it may be missing altogether.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import shown_path
from higherhrnet_trt.core.formats import IMAGE_EXTENSIONS
from higherhrnet_trt.core.image_io import try_read_image
from higherhrnet_trt.core.lazy import import_cv2

from .gst_source import gstreamer_opener
from .streams import DEFAULT_TIMEOUT_S, open_network_capture

log = logging.getLogger("higherhrnet_trt.runtime")

#: Network URL schemes OpenCV's FFmpeg backend reads as live streams.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt", "rtp")


def mask_credentials(spec: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x``, for messages and logs."""
    return re.sub(r"(://[^:/@\s]+):[^@/\s]*@", r"\1:***@", spec)


@dataclass
class Frame:
    """One frame of a source.

    image: (H, W, 3) uint8, BGR (as cv2 reads it).
    index: 0-based count of frames delivered by the source (skipped files do not count).
    name: for images, the file name relative to the images' common folder (``img_001.jpg``;
        ``a/x.jpg`` and ``b/x.jpg`` for a glob spanning folders, so names never collide), else
        ``<source>_<index:06d>``.
    path: the file it came from (images), else None.
    timestamp: seconds: position in the video for files, time.monotonic() at read for live sources.
    capture_time: live sources: Unix time (time.time(), seconds) the frame was decoded; else None.
    """

    image: np.ndarray
    index: int
    name: str
    path: str | None = None
    timestamp: float = 0.0
    capture_time: float | None = None


@dataclass
class Source:
    """Base of all sources: iterate for frames, close when done (or use ``with``).

    kind: "images", "video", "camera" or "stream". description: printable (no passwords).
    length: number of frames when known up front (image lists, video files), else None.
    fps: frames per second the source reports (video, camera, stream), else None.
    is_live: frames come in real time (camera, stream): reconnect on drops, no end.
    skipped: items that could not be read (paths of unreadable images).
    """

    kind: str
    description: str
    length: int | None = None
    fps: float | None = None
    is_live: bool = False
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; iterating again afterwards reopens it."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ImageFiles(Source):
    """A list of image files, read one by one; unreadable ones are skipped and counted."""

    def __init__(self, paths: Sequence[str], description: str) -> None:
        super().__init__(kind="images", description=description, length=len(paths))
        self.paths = [str(p) for p in paths]
        self.names = relative_names(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        import_cv2()  # a missing OpenCV is one error, not every file skipped
        self.skipped = []
        index = 0
        for path, name in zip(self.paths, self.names):
            # core.image_io: bytes through Python (any file name), regular files only, the size
            # bounded by the header before decoding.
            image, why = try_read_image(path)
            if image is None:
                if not self.skipped:
                    log.warning("cannot read image %s: %s; skipping it (and counting any others)",
                                shown_path(path), why)
                self.skipped.append(path)
                continue
            yield Frame(image=image, index=index, name=name, path=path)
            index += 1


def relative_names(paths: Sequence[str]) -> list[str]:
    """Each path relative to the folder the paths share: a folder's images keep their bare file
    names; ``a/x.jpg`` and ``b/x.jpg`` (a glob spanning folders) stay ``a/x.jpg`` and ``b/x.jpg``
    instead of both becoming ``x.jpg``, so outputs named after them cannot overwrite each other."""
    if not paths:
        return []
    full = [os.path.abspath(p) for p in paths]
    common = os.path.commonpath([os.path.dirname(p) for p in full])
    return [os.path.relpath(p, common) for p in full]


class CaptureSource(Source):
    """Frames from a ``cv2.VideoCapture``: a video file, a camera, a network stream or GStreamer.

    opener: returns a new opened-or-not capture object (``isOpened``, ``read``, ``get``,
        ``release``); called again to reconnect. Tests pass fakes here.
    max_reconnects: live sources only: how many reopen attempts after frames stop, before giving
        up with UserError. The count starts again after every good frame.
    backoff_s, max_backoff_s: wait before reopen attempt k (0-based): min(backoff_s * 2**k, max).
    open_error: the one-line message when the very first open fails.
    retry_first_open: network streams only: a camera on the network may still be booting, so the
        first open is retried like a reconnect.
    sleep: injectable for tests.
    """

    def __init__(
        self,
        opener: Callable[[], object],
        kind: str,
        description: str,
        name: str,
        open_error: str,
        is_live: bool,
        max_reconnects: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        retry_first_open: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        path: str | None = None,
    ) -> None:
        super().__init__(kind=kind, description=description, is_live=is_live)
        self.path = path  # the video file, when there is one
        self._opener = opener
        self.name = name
        self.open_error = open_error
        self.max_reconnects = int(max_reconnects)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.retry_first_open = retry_first_open
        self._sleep = sleep
        self._cap = None
        self.reconnects = 0  # total successful reopen count, for the run summary
        self.opens = 0  # open attempts, first and reopens (each bounded by the stream timeout)
        # Open now: errors (no such camera, bad URL) belong at open time, not at the first frame,
        # and length / fps are known before the loop starts.
        self._cap = self._open_first()
        self._read_properties()

    # -- opening ------------------------------------------------------------------------------------
    def _try_open(self):
        self.opens += 1
        cap = self._opener()
        if cap is not None and cap.isOpened():
            return cap
        if cap is not None:
            cap.release()
        return None

    def _open_first(self):
        cap = self._try_open()
        attempt = 0
        while cap is None and self.retry_first_open and attempt < self.max_reconnects:
            delay = self._delay(attempt)
            log.warning("%s: cannot open, retrying in %.1f s (attempt %d/%d)",
                        self.description, delay, attempt + 1, self.max_reconnects)
            self._sleep(delay)
            attempt += 1
            cap = self._try_open()
        if cap is None:
            raise UserError(self.open_error)
        return cap

    def _delay(self, attempt: int) -> float:
        return min(self.backoff_s * (2.0 ** attempt), self.max_backoff_s)

    def _read_properties(self) -> None:
        cv2 = import_cv2()
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        # Cameras and streams report 0, or nonsense such as 90000 (the RTP clock); keep sane values.
        self.fps = fps if 0.0 < fps <= 1000.0 else None
        if not self.is_live:
            count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            # Container frame counts are estimates (and negative for some streams); use as a hint.
            self.length = count if count > 0 else None

    # -- iteration ----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        cv2 = import_cv2()
        if self._cap is None:
            self._cap = self._open_first()
        index = 0
        failures = 0  # consecutive reopen attempts since the last good frame
        while True:
            ok, image = self._cap.read() if self._cap is not None else (False, None)
            if ok and image is not None and image.size:
                failures = 0
                captured = None
                if self.is_live:
                    stamp, captured = time.monotonic(), time.time()
                else:
                    stamp = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
                yield Frame(image=_as_bgr(image), index=index, name=f"{self.name}_{index:06d}",
                            timestamp=stamp, capture_time=captured)
                index += 1
                continue
            if not self.is_live or getattr(self._cap, "ended", False):
                # A video file ends (or stops at a broken frame: nothing more to read); so does a
                # GStreamer pipeline that is not live (runtime/gst_source.GiCapture.ended).
                return
            # A live source went quiet: drop the capture, wait, reopen, bounded.
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            if failures >= self.max_reconnects:
                raise UserError(
                    f"{self.description} stopped delivering frames and did not come back after "
                    f"{self.max_reconnects} reconnect attempts: check the camera / network "
                    "(or allow more with --reconnect)"
                )
            delay = self._delay(failures)
            log.warning("%s: no frame, reconnecting in %.1f s (attempt %d/%d)",
                        self.description, delay, failures + 1, self.max_reconnects)
            self._sleep(delay)
            failures += 1
            self._cap = self._try_open()
            if self._cap is not None:
                self.reconnects += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """Captures may deliver (H, W) grey or (H, W, 4) frames (some GStreamer caps): make them BGR."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


# --------------------------------------------------------------------------------------------------
# open_source: a --source string -> the right Source
# --------------------------------------------------------------------------------------------------


def _is_stream_url(spec: str) -> bool:
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", spec)
    return bool(m) and m.group(1).lower() in STREAM_SCHEMES


def _is_gstreamer(spec: str) -> bool:
    # A GStreamer launch line links elements with '!'; no file name or URL we accept contains one
    # surrounded by spaces.
    return " ! " in spec or spec.strip().endswith("appsink") or spec.startswith("gst:")


def _images_in(folder: str) -> list[str]:
    # Hidden files are skipped: among them the temporary '.NAME.*.part.jpg' an interrupted (killed)
    # run leaves beside its outputs, which would otherwise be read as inputs next time.
    names = sorted(os.listdir(folder))
    return [os.path.join(folder, n) for n in names
            if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)
            and os.path.isfile(os.path.join(folder, n))]


#: Largest camera index taken as one (V4L2 numbers devices from 0; OpenCV adds API offsets of
#: 100s to indices, so anything above this is a typo or a file name that does not exist).
MAX_CAMERA_INDEX = 9999


def open_source(
    spec: str | int,
    max_reconnects: int = 5,
    backoff_s: float = 0.5,
    max_backoff_s: float = 8.0,
    opener: Callable[[], object] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retry_first_open: bool = False,
    every_frame: bool = False,
) -> Source:
    """Open what ``--source`` names.

    spec: an image file; a folder (its images, sorted by name, not recursive); a glob such as
        ``'shots/*.png'``; a video file; a camera index (``0`` or ``"0"``) or device
        (``/dev/video0``); a URL (``rtsp://``, ``http://``, ...); or a GStreamer pipeline ending in
        ``appsink`` (``gst:`` prefix optional).
    max_reconnects, backoff_s, max_backoff_s: reconnect policy of live sources (see CaptureSource).
    timeout_s: network streams and GStreamer pipelines: bound of each open and read, seconds.
    retry_first_open: network streams: retry the first open like a reconnect (a camera still
        booting); by default a first open that fails is one error line (runtime/streams.py).
    every_frame: live sources (cameras, URLs, GStreamer): read every frame in turn, in the caller's
        thread (a recorded stream served live). By default a reader thread keeps only the newest
        frame (runtime/latest.py), so a model slower than the source never falls behind it.
        Files are always read frame by frame.
    opener: for tests: a zero-argument factory of capture objects, used instead of
        cv2.VideoCapture for video / camera / stream specs.
    Raises UserError when the spec names nothing usable (one line, with what was expected).
    """
    source = _open_any(spec, opener, timeout_s, retry_first_open, dict(
        max_reconnects=max_reconnects, backoff_s=backoff_s, max_backoff_s=max_backoff_s, sleep=sleep))
    if _real_time(source) and not every_frame:
        from .latest import LatestFrames  # not at the top: latest.py builds on this module's Source

        return LatestFrames(source)
    return source


def _real_time(source: Source) -> bool:
    """Frames come in real time: a camera or stream, or a GStreamer pipeline that is live (one
    that prerolls, a file through filesrc, is read like a file: every frame)."""
    cap = getattr(source, "_cap", None)
    return source.is_live and getattr(cap, "live", True) is not False


def _open_any(spec: str | int, opener, timeout_s: float, retry_first_open: bool,
              live: dict) -> Source:
    """open_source without the newest-frame reader."""
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()
                                                and not os.path.exists(spec)):
        return _open_camera_index(spec, opener, live)
    spec = str(spec)
    if not spec.strip():
        raise UserError("--source is empty: give an image, folder, video, camera index or URL")
    if _is_stream_url(spec):
        return _open_stream(spec, opener, live, timeout_s, retry_first_open)
    if _is_gstreamer(spec):
        return _open_gstreamer(spec, opener, live, timeout_s)
    source = _open_path(spec, opener, live)
    if source is None:
        raise UserError(
            f"--source {mask_credentials(spec)}: no such file or folder (expected an image, a folder "
            "of images, a video, a camera index such as 0, an rtsp:// URL or a GStreamer pipeline)"
        )
    return source


def _open_camera_index(spec: str | int, opener, live: dict) -> Source:
    index = int(spec)
    if index > MAX_CAMERA_INDEX:  # OpenCV's overload error otherwise (a C long overflows)
        raise UserError(f"--source {spec}: no such camera; cameras are numbered from 0 (list them "
                        "with: ls /dev/video*), files need a path that exists")
    cv2 = import_cv2() if opener is None else None
    return CaptureSource(
        opener or (lambda: cv2.VideoCapture(index)), kind="camera", description=f"camera {index}",
        name=f"camera{index}", is_live=True,
        open_error=(f"cannot open camera {index}: is it connected and not used by another "
                    "program? (list devices with: ls /dev/video*)"),
        **live,
    )


def _open_stream(spec: str, opener, live: dict, timeout_s: float, retry_first_open: bool) -> Source:
    shown = mask_credentials(spec)
    cv2 = import_cv2() if opener is None else None
    return CaptureSource(
        opener or (lambda: open_network_capture(cv2, spec, timeout_s)), kind="stream",
        description=f"stream {shown}", name="stream", is_live=True,
        retry_first_open=retry_first_open,
        open_error=(f"cannot open stream {shown} (waited up to {timeout_s:g} s): check the URL, "
                    "port, credentials and that the camera is reachable (try it with ffplay or "
                    "VLC); --stream-timeout waits longer, --wait-for-source retries"),
        **live,
    )


def _open_gstreamer(spec: str, opener, live: dict, timeout_s: float) -> Source:
    pipeline = spec[4:] if spec.startswith("gst:") else spec
    open_pipeline, hint = (opener, "") if opener is not None else gstreamer_opener(pipeline, timeout_s)
    return CaptureSource(
        open_pipeline, kind="stream", description="GStreamer pipeline", name="gstreamer",
        is_live=True, open_error=f"cannot start the GStreamer pipeline{hint}", **live,
    )


def _open_path(spec: str, opener, live: dict) -> Source | None:
    """A folder, image, video, /dev/video device or glob; None when ``spec`` names none."""
    if os.path.isdir(spec):
        paths = _images_in(spec)
        if not paths:
            raise UserError(f"no images in folder {spec} (looked for {', '.join(IMAGE_EXTENSIONS)})")
        return ImageFiles(paths, description=f"folder {spec} ({len(paths)} images)")
    if os.path.isfile(spec):
        if spec.lower().endswith(IMAGE_EXTENSIONS):
            return ImageFiles([spec], description=f"image {spec}")
        cv2 = import_cv2() if opener is None else None
        stem = os.path.splitext(os.path.basename(spec))[0]
        return CaptureSource(
            opener or (lambda: cv2.VideoCapture(spec)), kind="video", description=f"video {spec}",
            name=stem, is_live=False, path=spec,
            open_error=(f"cannot open video {spec}: not a video OpenCV can decode (is the file "
                        "complete? for images use one of: " + ", ".join(IMAGE_EXTENSIONS) + ")"),
            **live,
        )
    if spec.startswith("/dev/video") and os.path.exists(spec):
        cv2 = import_cv2() if opener is None else None
        return CaptureSource(
            opener or (lambda: cv2.VideoCapture(spec)), kind="camera", description=f"camera {spec}",
            name=os.path.basename(spec), is_live=True,
            open_error=f"cannot open camera {spec}: is it used by another program?",
            **live,
        )
    if os.path.exists(spec) and not spec.startswith("/dev/video"):
        raise UserError(f"--source {shown_path(spec)} is a device, pipe or socket, not a file: give "
                        "an image, a folder of images, a video file, a camera index such as 0 or "
                        "/dev/videoN, an rtsp:// URL or a GStreamer pipeline")
    if any(c in spec for c in "*?["):
        paths = sorted(p for p in glob.glob(spec) if p.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            raise UserError(f"no images match {spec}")
        return ImageFiles(paths, description=f"{spec} ({len(paths)} images)")
    return None
