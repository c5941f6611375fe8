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
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class UserError(Exception):
    """Bad input or environment the user can fix (missing file, wrong checkpoint, no GPU, ...)."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded into the chosen model config."""


class BackendUnavailable(UserError):
    """A backend whose library or hardware is missing on this machine."""


class CudaError(UserError, RuntimeError):
    """A CUDA, NVRTC or kernel launch failure, in one line. Also a RuntimeError, what these calls
    raised before, so existing ``except RuntimeError`` handlers still catch it."""


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
def deferred_interrupts(what: str, say=None) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while native code runs that an exception must not cut through
    (torch.onnx.export: a KeyboardInterrupt raised inside its C++ callbacks ended the process with
    a native abort, exit status 134); the interrupt is raised when the block ends.

    what: the step, for the message printed at the first signal. say: where that message goes
    (default: stderr). A third Ctrl-C restores the default handler: the next one ends the process
    at once. Main thread only, as signal handlers are (elsewhere nothing is installed).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import sys

    received: list[int] = []

    def handler(signum: int, frame) -> None:
        received.append(signum)
        if len(received) == 1:
            (say or (lambda m: print(m, file=sys.stderr, flush=True)))(
                f"stopping after {what} (it cannot be interrupted safely half-way)...")
        if received.count(signal.SIGINT) >= 3:
            signal.signal(signal.SIGINT, signal.SIG_DFL)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
    if received:
        raise Terminated() if received[0] == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread; the previous handler
    comes back on exit.

    Only the first SIGTERM raises: later ones are ignored, so a second ``kill`` cannot break the
    clean-up (closing the JSON, the video's index) that the first one started; SIGKILL still ends
    the process at once. SIGINT raises KeyboardInterrupt inside too, even where the process was
    started with SIGINT ignored (a job a script starts with ``&``, a pytest-xdist worker's child):
    ROS 2 launch and supervisors stop a node with SIGINT. Outside the main thread (a host
    application calling ``main()`` from a worker) nothing is installed: Python allows signal
    handlers in the main thread only.
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
    ignored_interrupt = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored_interrupt:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        # None: a handler installed from C; the default is the closest Python can restore.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if ignored_interrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def script_exit(main: Callable[[], int | None]) -> int:
    """Exit status of a ``python -m`` script's ``main()``, errors said as the CLI says them: a
    UserError is one line ``error: ...`` and status 1, Ctrl-C or SIGTERM a word and 130 / 143."""
    import sys

    with sigterm_as_interrupt():
        try:
            return int(main() or 0)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as e:
            print(interrupt_word(e), file=sys.stderr)
            return interrupt_exit_code(e)
