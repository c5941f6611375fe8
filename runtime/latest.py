"""Newest frame first: a live source read by a thread of its own that keeps only the latest frame.

A camera or stream delivers frames in real time whether or not the model keeps up. Read in the
loop's own thread, a model slower than the source falls behind it: the frames waiting pile up in
OpenCV's, FFmpeg's and the network's buffers, and the frame processed is seconds old (and the
buffers still drop frames once full). :class:`LatestFrames` instead decodes every frame as it
comes, in a daemon thread, and hands the consumer the newest one: a processed frame is at most one
frame interval plus one inference behind the source. Frames replaced before the consumer took them
are counted (``dropped``); each Frame keeps its source frame index and its capture time, so gaps
show in the results.

``open_source(..., every_frame=True)`` (``run --every-frame``) keeps the old reading, every frame
in turn, for a recorded stream served live; files (videos, images) are always read frame by frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from .sources import Frame, Source

#: Seconds close() waits for the reader thread; a read in progress is itself bounded by the
#: stream timeout (runtime/streams.py), and the thread is a daemon, so it never blocks exit.
JOIN_S = 2.0


class LatestFrames(Source):
    """A live Source read by a background thread from construction on; iteration yields only the
    newest frame.

    source: an opened live Source (camera, network stream, GStreamer pipeline), closed with this.
    read: frames decoded from the source so far. dropped: frames replaced by a newer one before
    the consumer took them. An error of the source (UserError after the reconnect attempts) is
    raised in the consumer's thread, after the frame it has already been given.
    Other attributes (name, path, reconnects, ...) are the source's.
    """

    def __init__(self, source: Source) -> None:
        super().__init__(kind=source.kind, description=source.description, length=None,
                         fps=source.fps, is_live=True)
        self.source = source
        self.read = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._error: BaseException | None = None
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Reading starts now, not at the first frame asked for: while the model loads, frames
        # would otherwise pile up in the network buffers, and be drained as a burst of old ones.
        self._start()

    def __getattr__(self, name: str):
        # Only called for names this object lacks: name, path, reconnects, opens, ... of the source.
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    @property
    def skipped(self) -> list[str]:  # type: ignore[override]
        return self.source.skipped

    @skipped.setter
    def skipped(self, value: list[str]) -> None:
        pass  # Source.__init__ sets it; the source's own list is the one that counts

    def _start(self) -> None:
        self._stop.clear()
        self._frame, self._error, self._ended = None, None, False
        self._thread = threading.Thread(target=self._reader, name=f"latest:{self.source.kind}",
                                        daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        try:
            for frame in self.source:
                with self._cond:
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame = frame
                    self.read += 1
                    self._cond.notify()
                if self._stop.is_set():
                    break
        except BaseException as e:  # UserError after the reconnects, or a decoder failure
            self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify()

    def __iter__(self) -> Iterator[Frame]:
        """The newest frames; a reader stopped by an earlier iteration's end starts again (one
        that ended by itself keeps its last frame and error for this iteration)."""
        if self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
            self._start()
        return self._newest()

    def _newest(self) -> Iterator[Frame]:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._frame is not None or self._ended)
                    frame, self._frame = self._frame, None
                    if frame is None:  # ended, nothing newer left
                        if self._error is not None:
                            error, self._error = self._error, None
                            raise error
                        return
                yield frame
        finally:
            self._stop.set()

    def close(self) -> None:
        """Stop the reader (waiting up to JOIN_S for a read in progress), then close the source."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(JOIN_S)
        if thread is None or not thread.is_alive():
            self.source.close()
        # else: the daemon thread is still in a bounded read; releasing the capture under it
        # would crash the decoder, so the source is left to the process exit.
