"""``higherhrnet-trt``: the command line, a thin layer over the Python API (see ``main``)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    from .main import main as _main

    return _main(argv)


__all__ = ["main"]
