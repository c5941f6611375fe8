"""``higherhrnet-trt``: the command line, a thin layer over the Python API.

``main`` builds one parser from every part's ``register(subparsers)`` (see ``main.COMMAND_MODULES``);
importing this package costs argparse only.
"""

from __future__ import annotations

from .main import COMMAND_MODULES, build_parser, main

__all__ = ["COMMAND_MODULES", "build_parser", "main"]
