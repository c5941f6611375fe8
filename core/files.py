"""Writing outputs without losing data.

Two rules every command follows:

- An output appears under its name only complete (:func:`atomic_path`, :func:`atomic_open`): it is
  written to a hidden temporary name in the same folder, then renamed (``os.replace``, atomic on
  one filesystem). A run stopped half-way (Ctrl-C, SIGTERM, a full disk, a crash) leaves the
  previous file, or none, never a torn one.
- An output never lands on an input (:func:`check_outputs`): the model, a source image or video,
  an annotation file, or another output of the same run. Paths are compared after resolving
  symbolic links and ``..``, and by device and inode, so no spelling of a file slips through. The
  check runs before any expensive work and ends in one line that names the fix.

Also here: bundled files (:func:`package_file`), a file's hash (:func:`sha256_file`) and a path as
printed (:func:`shown_path`). Only the standard library is imported: the CLI modules use this
before anything heavy loads.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, NamedTuple

from .errors import UserError

# --------------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------------


def temp_path(path: str) -> str:
    """A fresh hidden name beside ``path`` that keeps its extension.

    ``out/clip.mp4`` -> ``out/.clip.1234-a1b2c3.part.mp4``. Same folder: the final rename stays
    on one filesystem (atomic). Same extension: OpenCV, matplotlib and ONNX pick the format from it.
    The file is not created here, so whoever writes it gets the usual permissions (umask).
    """
    folder, base = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(base)
    return os.path.join(folder, f".{stem}.{os.getpid()}-{secrets.token_hex(3)}.part{ext}")


def discard(tmp: str) -> None:
    """Remove a temporary file if it exists (never raises: it runs while unwinding an error)."""
    try:
        os.remove(tmp)
    except OSError:
        pass


#: errno values that mean the output's filesystem cannot take it (full, over quota, read-only,
#: file too large): the CLI prints them in one line (:func:`disk_error_message`), no traceback.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def mount_point(path: str) -> str:
    """The mount point of the filesystem holding ``path`` (or its nearest existing folder)."""
    here = os.path.abspath(path)
    while not os.path.exists(here):
        here = os.path.dirname(here)
    return _mount_of(here)


def _mount_of(here: str) -> str:
    try:
        dev = os.stat(here).st_dev
        while here != os.path.dirname(here) and os.stat(os.path.dirname(here)).st_dev == dev:
            here = os.path.dirname(here)
    except OSError:
        pass
    return here


def name_output(e: OSError, path: str, temp: str | None = None) -> OSError:
    """``e`` with ``path`` as its file name when it has none (a failed write() names no file) or
    names only ``temp``, the temporary file written for ``path`` (removed by then: the user knows
    the output, not its hidden ``.part`` name), so the one-line message says which output it was.
    Returns ``e``."""
    if not isinstance(e, OSError) or e.errno not in DISK_ERRNOS:
        return e
    named = {os.fsdecode(n) for n in (e.filename, e.filename2) if n}
    if not named or (temp is not None and os.fsdecode(temp) in named):
        e.filename, e.filename2 = str(path), None
    return e


def disk_error_message(e: BaseException) -> str | None:
    """'no space left on DEVICE writing PATH' (and the like) for an OSError of DISK_ERRNOS, else
    None. DEVICE: the mount point of the file's filesystem."""
    if not isinstance(e, OSError) or e.errno not in DISK_ERRNOS:
        return None

    # A copy or a rename names its destination second: shutil's copy on a full disk gives
    # (source, destination), and the source is not where the space ran out.
    name = e.filename2 or e.filename
    path = shown_path(os.fsdecode(name)) if name else None
    where = mount_point(path) if path else None
    writing = f" writing {path}" if path else ""
    on = f" on {where}" if where else ""
    if e.errno == errno.EROFS:
        return f"read-only file system{on}: cannot write{writing or ' the output'}; choose a writable folder"
    if e.errno == errno.EFBIG:
        return f"file too large for the file system{on}{writing}; write it to another file system"
    what = "disk quota exceeded" if e.errno == errno.EDQUOT else "no space left"
    return f"{what}{on}{writing}; free some space or write to another disk (nothing partial was kept)"


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``.

    On any exception (KeyboardInterrupt and SIGTERM included) the temporary file is removed and
    ``path`` is left as it was. Folders are created. Writers that report failure without raising
    (``cv2.imwrite`` returns False) should use :func:`temp_path` / ``os.replace`` / :func:`discard`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        discard(tmp)
        name_output(e, path, tmp)
        raise
    except BaseException:
        discard(tmp)
        raise


@contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """``open(path, mode)`` whose file appears under ``path`` only once closed without error."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as f:
            yield f


# --------------------------------------------------------------------------------------------------
# Outputs never onto inputs
# --------------------------------------------------------------------------------------------------


class Output(NamedTuple):
    """A file a command will write: ``what`` names it as the user typed it (``--json``), ``fix``
    says what to do when it collides (``give --json another file name``)."""

    what: str
    path: str | None  # None: not written this run (an option left out); skipped
    fix: str


def _identities(path: str) -> list[tuple]:
    """Keys under which one file is known: its resolved path, and device + inode when it exists
    (hard links, bind mounts and case-insensitive filesystems give one file several paths)."""
    real = os.path.normcase(os.path.realpath(path))
    keys: list[tuple] = [("path", real)]
    try:
        st = os.stat(real)
    except OSError:
        return keys
    keys.append(("inode", st.st_dev, st.st_ino))
    return keys


def check_writable(path: str, what: str, fix: str, folder: bool = False,
                   probed: set[str] | None = None) -> None:
    """Refuse (UserError, one line, before any expensive work) an output that cannot be written.

    path: a file to write (``folder=False``) or a folder to write into. Missing folders are fine
    (the writers create them) as long as the nearest existing one is a writable folder: that is
    probed by creating and removing a hidden file, which also catches read-only mounts and holds
    for root, whom permission bits do not stop. probed: folders already probed (skipped).
    """
    target = os.path.abspath(path)
    if not folder and os.path.isdir(target):
        raise UserError(f"{what} {path} is a folder, not a file: {fix}")
    if folder and os.path.exists(target) and not os.path.isdir(target):
        raise UserError(f"{what} {path} is a file, not a folder: {fix}")
    parent = target if folder else os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if probed is not None and parent in probed:
        return
    if not os.path.isdir(parent):
        raise UserError(f"{what} {path} cannot be written: {parent} is a file, not a folder; {fix}")
    probe = os.path.join(parent, f".{os.getpid()}-{secrets.token_hex(3)}.write-probe")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.remove(probe)
    except OSError as e:
        raise UserError(f"{what} {path} cannot be written: {parent} is not writable ({e.strerror}); "
                        f"{fix}") from None
    if probed is not None:
        probed.add(parent)


def check_outputs(outputs: Iterable[Output], inputs: Iterable[tuple[str, str]]) -> None:
    """Refuse (UserError, one line) an output that is an input or another output, or that
    cannot be written (:func:`check_writable`).

    outputs: the files the command will write (None paths are skipped).
    inputs: (what, path) of everything it reads: ("the model", "m.onnx"), ("the input image", ...).
    Linear in the number of files: a folder of thousands of images is checked in milliseconds.
    """
    seen: dict[tuple, tuple[str, str, bool]] = {}  # key -> (what, path, is_output)
    for what, path in inputs:
        if path:
            for key in _identities(path):
                seen.setdefault(key, (what, path, False))
    probed: set[str] = set()
    for out in outputs:
        if not out.path:
            continue
        check_writable(out.path, out.what, out.fix, probed=probed)
        keys = _identities(out.path)
        for key in keys:
            if key not in seen:
                continue
            what, path, is_output = seen[key]
            if is_output:
                raise UserError(f"{out.what} would write {out.path}, which {what} also writes: one "
                                f"would overwrite the other; {out.fix}")
            raise UserError(f"{out.what} {out.path} is {what} {path}: writing it would destroy that "
                            f"input; {out.fix}")
        for key in keys:
            seen[key] = (out.what, out.path, True)


def require_suffix(path: str, suffixes: Sequence[str], what: str, fix: str) -> None:
    """Refuse (UserError) a ``path`` that does not end in one of ``suffixes`` (case-insensitive)."""
    if not path.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise UserError(f"{what} {path} must end in {' or '.join(suffixes)}: {fix}")


#: Bundled files (package data), relative to the package folders.
SAMPLE_IMAGE = ("runtime", "assets", "sample.jpg")
DEMO_WEIGHTS = ("export", "assets", "demo_w16_256.pth")


def package_file(parts: tuple[str, str, str]) -> str:
    """Absolute path of a bundled file (``higherhrnet_trt.<parts[0]>`` folder)."""
    module = importlib.import_module(f"higherhrnet_trt.{parts[0]}")
    base = os.path.dirname(os.path.abspath(module.__file__))
    return os.path.join(base, *parts[1:])


def shown_path(path: str) -> str:
    """``path`` printable: bytes that are not UTF-8 (surrogate escapes) shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace") if isinstance(path, str) else str(path)


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in ``chunk``-sized blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["DEMO_WEIGHTS", "DISK_ERRNOS", "SAMPLE_IMAGE", "Output", "atomic_open", "atomic_path",
           "check_outputs", "check_writable", "discard", "disk_error_message", "mount_point",
           "name_output", "package_file", "require_suffix", "sha256_file", "shown_path", "temp_path"]
