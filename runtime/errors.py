"""Errors meant for the user: one line that names the cause and the fix.

The CLI prints ``str(err)`` of these without a traceback; anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """Bad input or environment the user can fix (missing file, wrong checkpoint, no GPU, ...)."""


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded into the chosen model config."""


class BackendUnavailable(UserError):
    """A backend whose library or hardware is missing on this machine."""
