"""GStreamer pipeline sources (``--source "gst:... ! appsink"``): through OpenCV or PyGObject.

Two ways to pull frames out of a GStreamer pipeline, tried in this order:

1. OpenCV built with GStreamer (JetPack's system OpenCV, Debian's python3-opencv):
   ``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)``.
2. PyGObject (``gi``, Debian/Ubuntu/JetPack package python3-gi with gir1.2-gstreamer-1.0): the
   pipeline runs in this process and :class:`GiCapture` pulls samples from its appsink. PyPI's
   OpenCV wheels have no GStreamer, so on a desktop this is the way (see the README: PyGObject
   comes from the distribution and fits the distribution's Python minor version).

Neither there: one line that says what to install. A pipeline must end in ``appsink``; its frames
must be raw video in BGR, BGRx, BGRA or GRAY8 (end with ``videoconvert ! appsink``; the appsink's
caps are set to those formats when the pipeline does not set them).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

import numpy as np

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.lazy import import_cv2

from .streams import timeout_params

log = logging.getLogger("higherhrnet_trt.runtime")

#: Raw formats GiCapture turns into BGR frames, and their channel counts.
_CHANNELS = {"BGR": 3, "BGRx": 4, "BGRA": 4, "GRAY8": 1}

NO_GSTREAMER = (
    "GStreamer pipelines need OpenCV built with GStreamer or PyGObject: this OpenCV has no "
    "GStreamer (PyPI's wheels have none) and 'import gi' failed; install python3-gi and "
    "gir1.2-gst-plugins-base-1.0 (apt) and use the system python3 or a venv made with "
    "--system-site-packages, or give an rtsp:// URL instead"
)


def opencv_has_gstreamer(cv2) -> bool:
    """Whether this OpenCV build lists GStreamer as a video I/O backend."""
    m = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    return bool(m) and m.group(1).upper() == "YES"


def import_gst():
    """PyGObject's Gst module, initialised; None when PyGObject or GStreamer 1.x is missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst
    except (ImportError, ValueError):
        return None
    if not Gst.is_initialized():
        Gst.init(None)
    return Gst


def gstreamer_opener(pipeline: str, timeout_s: float) -> tuple[Callable[[], object], str]:
    """A capture factory for ``pipeline`` and the hint added to a failed open's message.

    pipeline: a gst-launch-1.0 description ending in appsink. timeout_s: bound of the start and
    of each read (PyGObject; OpenCV's GStreamer backend gets it as its open/read timeouts).
    Raises UserError (:data:`NO_GSTREAMER`) when neither OpenCV nor PyGObject has GStreamer.
    """
    cv2 = import_cv2()
    if opencv_has_gstreamer(cv2):
        params = timeout_params(cv2, timeout_s)
        return ((lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER, params)),
                " (OpenCV's GStreamer backend): test it with gst-launch-1.0 first; it must end in "
                "appsink")
    if import_gst() is not None:
        return (lambda: GiCapture(pipeline, timeout_s)), " (PyGObject): see the warning above"
    raise UserError(NO_GSTREAMER)


class GiCapture:
    """The part of ``cv2.VideoCapture`` a CaptureSource uses, over a PyGObject pipeline.

    Builds and starts the pipeline; ``read()`` pulls one sample from its appsink (waiting at most
    ``timeout_s``) and returns ``(True, (H, W, C) uint8 BGR/BGRA/grey)`` or ``(False, None)`` at
    the end of the stream, on a pipeline error or a timeout. ``ended`` tells the CaptureSource that
    a pipeline which is not live (files, test sources: GStreamer prerolls them) reached its end,
    which ends the source instead of reopening it; a live pipeline (cameras, rtspsrc) that stops
    is reopened by the reconnect policy like any live source. A pipeline that does not parse is a
    UserError (retrying cannot fix it); one that parses but cannot start (a refused connection)
    gives ``isOpened() == False`` and a warning with GStreamer's message.
    """

    def __init__(self, pipeline: str, timeout_s: float) -> None:
        Gst = import_gst()
        if Gst is None:
            raise UserError(NO_GSTREAMER)
        self._Gst = Gst
        self._timeout_ns = int(timeout_s * 1e9)
        self._fps = 0.0
        self.live = False  # set by _start: the pipeline did not preroll (a live source)
        self.ended = False  # a pipeline that is not live reached its end
        try:
            self._pipe = Gst.parse_launch(pipeline)
        except Exception as e:  # GLib.Error: no such element, bad syntax
            raise UserError(f"the GStreamer pipeline does not parse: {_message(e)}") from None
        self._sink = _appsink_of(Gst, self._pipe)
        if self._sink is None:
            self._pipe = None
            raise UserError("the GStreamer pipeline must end in appsink (e.g. '... ! videoconvert "
                            "! appsink')")
        if self._sink.get_property("caps") is None:
            self._sink.set_property("caps", Gst.Caps.from_string(
                "video/x-raw,format={" + ",".join(_CHANNELS) + "}"))
        self._sink.set_property("max-buffers", 2)  # bounded memory: upstream waits, nothing piles up
        self._opened = self._start()

    def _start(self) -> bool:
        Gst = self._Gst
        ret = self._pipe.set_state(Gst.State.PLAYING)
        if ret != Gst.StateChangeReturn.FAILURE:
            ret, _, _ = self._pipe.get_state(self._timeout_ns)  # wait for preroll, bounded
        if ret in (Gst.StateChangeReturn.SUCCESS, Gst.StateChangeReturn.NO_PREROLL):
            self.live = ret == Gst.StateChangeReturn.NO_PREROLL
            return True
        error = self._bus_error() or ("did not start within the timeout" if
                                      ret == Gst.StateChangeReturn.ASYNC else "failed to start")
        log.warning("GStreamer: %s", error)
        self._stop()
        self._pipe = None
        return False

    def _bus_error(self) -> str | None:
        msg = self._pipe.get_bus().pop_filtered(self._Gst.MessageType.ERROR)
        if msg is None:
            return None
        err, debug = msg.parse_error()
        return f"{_message(err)} ({msg.src.get_name()})"

    def isOpened(self) -> bool:  # noqa: N802 (cv2.VideoCapture's name)
        return self._opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self._opened:
            return False, None
        sample = self._sink.emit("try-pull-sample", self._timeout_ns)
        if sample is None:  # end of stream, error or timeout
            error = self._bus_error()
            if error:
                log.warning("GStreamer: %s", error)
            self.ended = not error and not self.live and self._sink.get_property("eos")
            return False, None
        return True, self._to_array(sample)

    def _to_array(self, sample) -> np.ndarray:
        s = sample.get_caps().get_structure(0)
        fmt = s.get_value("format")
        w, h = s.get_value("width"), s.get_value("height")
        if fmt not in _CHANNELS:
            raise UserError(f"the GStreamer pipeline delivers {fmt} frames: end it with "
                            "'videoconvert ! video/x-raw,format=BGR ! appsink'")
        ok, num, den = s.get_fraction("framerate")
        if ok and den:
            self._fps = num / den
        buf = sample.get_buffer()
        data = np.frombuffer(buf.extract_dup(0, buf.get_size()), np.uint8)
        stride = data.size // h  # rows may be padded to 4 bytes
        rows = data[: stride * h].reshape(h, stride)
        return rows[:, : w * _CHANNELS[fmt]].reshape(h, w, _CHANNELS[fmt]).copy()

    def get(self, prop: int) -> float:
        cv2 = import_cv2()
        return self._fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        if self._pipe is not None:
            self._stop()
            self._pipe = None
        self._opened = False

    def _stop(self) -> None:
        """Set the pipeline to NULL, waiting at most the timeout.

        set_state(NULL) joins the streaming threads, so an element stuck in a stalled stream
        (a dead camera, a network source that stopped mid-frame) blocks it for as long as the
        stall lasts: the stop runs in a daemon thread and is left to finish in the background.
        """
        pipe, null = self._pipe, self._Gst.State.NULL
        stopper = threading.Thread(target=pipe.set_state, args=(null,), daemon=True,
                                   name="gst-stop")
        stopper.start()
        stopper.join(self._timeout_ns / 1e9)
        if stopper.is_alive():
            log.warning("GStreamer: the pipeline did not stop within the timeout (a stalled "
                        "element); left to stop in the background")


def _appsink_of(Gst, pipe):  # noqa: N803 (the module's name)
    """The pipeline's appsink (a sink element of factory 'appsink'), or None."""
    it = pipe.iterate_sinks()
    while True:
        ok, element = it.next()
        if ok != Gst.IteratorResult.OK:
            return None
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "appsink":
            return element


def _message(err) -> str:
    return str(getattr(err, "message", err)).strip().splitlines()[0]
