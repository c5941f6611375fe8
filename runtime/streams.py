"""Network streams (rtsp://, http://, ...): bounded open and read times, and the reconnect policy.

Without a timeout OpenCV's FFmpeg backend waits 30 s for a server that accepts the connection and
never answers, and 30 s more on each read from a stream that went silent. Here every open and every
read of a network stream is bounded by ``timeout_s`` (default :data:`DEFAULT_TIMEOUT_S`, 10 s),
passed to OpenCV as ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC`` (OpenCV >= 4.6,
FFmpeg and GStreamer backends).

The reconnect policy (:class:`StreamPolicy`; ``run --reconnect / --stream-timeout``; the README's
"Live streams" section says the same):

1. The first open is one attempt, bounded by the timeout: a wrong address, port, path or password
   ends the command at once with one line (a closed port in well under a second, a server that
   never answers after ``timeout_s``). A service that must wait for a camera still booting asks
   for ``retry_first_open`` (``run --wait-for-source``): then the first open follows rule 2.
2. Once frames have come, a read that fails or times out drops the connection and reopens it, up
   to ``max_reconnects`` times (default 5), waiting ``min(backoff_s * 2**k, max_backoff_s)``
   before attempt k (0.5, 1, 2, 4, 8 s). The count starts again after every good frame.
3. When the attempts are used up the source raises UserError; ``run`` then closes its outputs:
   the JSON and the video hold every frame processed before the drop. Worst case from the last
   good frame to that error: ``StreamPolicy.worst_case_s()`` (75.5 s with the defaults: the
   read that timed out, then five waits and five opens of at most 10 s each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from higherhrnet_trt.core.errors import UserError

log = logging.getLogger("higherhrnet_trt.runtime")

#: Seconds an open or a read of a network stream may take before it counts as failed.
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class StreamPolicy:
    """How a live source is opened, read and reopened (see the module docstring).

    timeout_s: bound of one open and of one read of a network stream, seconds.
    max_reconnects: reopen attempts after frames stopped, before giving up (0: stop at once).
    backoff_s, max_backoff_s: wait before reopen attempt k (0-based): min(backoff_s * 2**k, max).
    retry_first_open: the first open is retried like a reconnect (a camera still booting).
    """

    timeout_s: float = DEFAULT_TIMEOUT_S
    max_reconnects: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    retry_first_open: bool = False

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise UserError(f"the stream timeout must be more than 0 seconds, got {self.timeout_s}")
        if self.max_reconnects < 0:
            raise UserError(f"reconnect attempts must be 0 or more, got {self.max_reconnects}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopen attempt ``attempt`` (0-based)."""
        return min(self.backoff_s * (2.0 ** attempt), self.max_backoff_s)

    def worst_case_s(self) -> float:
        """Longest time from the last good frame to giving up: the failed read, then each attempt's
        wait and open, all bounded by the timeout."""
        waits = sum(self.delay(k) for k in range(self.max_reconnects))
        return self.timeout_s * (1 + self.max_reconnects) + waits

    def source_options(self) -> dict:
        """The keyword arguments of ``open_source`` / ``open_sources`` for this policy."""
        return dict(timeout_s=self.timeout_s, max_reconnects=self.max_reconnects,
                    backoff_s=self.backoff_s, max_backoff_s=self.max_backoff_s,
                    retry_first_open=self.retry_first_open)

    def describe(self) -> str:
        """One line for --help and logs."""
        waits = ", ".join(f"{self.delay(k):g}" for k in range(min(self.max_reconnects, 5)))
        return (f"open/read timeout {self.timeout_s:g} s; after a drop up to {self.max_reconnects} "
                f"reopen attempts ({waits} s apart)")


def timeout_params(cv2, timeout_s: float) -> list[int]:
    """``[CAP_PROP_OPEN_TIMEOUT_MSEC, ms, CAP_PROP_READ_TIMEOUT_MSEC, ms]`` for VideoCapture's
    ``params`` (the constants are looked up by name, never hard-coded numbers).
    Empty for OpenCV < 4.6, which has no such properties (a warning says the 30 s default holds)."""
    open_prop = getattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC", None)
    read_prop = getattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC", None)
    if open_prop is None or read_prop is None:
        log.warning("OpenCV %s cannot bound stream open/read times (needs >= 4.6): its own 30 s "
                    "limit applies", getattr(cv2, "__version__", "?"))
        return []
    ms = max(1, int(round(timeout_s * 1000)))
    return [int(open_prop), ms, int(read_prop), ms]


def open_network_capture(cv2, url: str, timeout_s: float):
    """``cv2.VideoCapture`` of a network URL with the open / read timeouts set.

    The FFmpeg backend is asked for by name when this OpenCV has it (PyPI's wheels and JetPack's
    build do): with the generic CAP_ANY a backend that does not know the timeout properties could
    take the URL and ignore them. Without FFmpeg, CAP_ANY gets the same properties.
    """
    params = timeout_params(cv2, timeout_s)
    api = cv2.CAP_FFMPEG if _has_backend(cv2, cv2.CAP_FFMPEG) else cv2.CAP_ANY
    if not params:
        return cv2.VideoCapture(url, api)
    return cv2.VideoCapture(url, api, params)


def _has_backend(cv2, api: int) -> bool:
    try:
        return bool(cv2.videoio_registry.hasBackend(api))
    except (AttributeError, cv2.error):  # OpenCV < 4.5.x: no registry; try it
        return True
