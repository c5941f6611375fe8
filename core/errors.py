"""Errors meant for the user: one line that names the cause and the fix.

The CLI prints ``str(err)`` of these without a traceback; anything else is a bug and keeps its
traceback.

Also how a long command is stopped: SIGTERM (what systemd, ``docker stop`` and ``timeout`` send)
is turned into :class:`Terminated`, a KeyboardInterrupt, by :func:`sigterm_as_interrupt`, so the
code that closes outputs on Ctrl-C (valid JSON, a playable video, a calibration cache, the
benchmark measured so far) runs for it too.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """Bad input or environment the user can fix (missing file, wrong checkpoint, no GPU, ...)."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded into the chosen model config."""


class BackendUnavailable(UserError):
    """A backend whose library or hardware is missing on this machine."""


class Terminated(KeyboardInterrupt):
    """SIGTERM received. A KeyboardInterrupt, so every ``except KeyboardInterrupt`` that closes
    outputs on Ctrl-C does the same for it; :func:`interrupt_exit_code` tells the two apart."""

    signum = signal.SIGTERM


def interrupt_exit_code(exc: BaseException) -> int:
    """128 + the signal number, as shells report a process the signal ended: 143 for SIGTERM,
    130 for Ctrl-C (SIGINT)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def interrupt_word(exc: BaseException) -> str:
    """'terminated (SIGTERM)' or 'interrupted' (Ctrl-C), for the summary line."""
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread; the previous handler
    comes back on exit.

    Only the first SIGTERM raises: later ones are ignored, so a second ``kill`` cannot break the
    clean-up (closing the JSON, the video's index) that the first one started; SIGKILL still ends
    the process at once. Outside the main thread (a host application calling ``main()`` from a
    worker) nothing is installed: Python allows signal handlers in the main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # None: a handler installed from C; the default is the closest Python can restore.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
