"""``higherhrnet-trt``: one command, thin over the Python API.

Each command (or family: export / convert, build / info) is a module of cli/ that exposes
``register(subparsers)``: it adds its parser from the flag groups of cli/flags.py and sets
``func=callable(args) -> int``, which turns the namespace into the runtime's typed options
(runtime/options.py) and calls the API. argparse is used nowhere else. Those modules import
nothing heavy at top level, so ``--help`` is instant and a missing torch or TensorRT costs nothing
until the subcommand that needs it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from higherhrnet_trt.core.errors import UserError, interrupt_exit_code, interrupt_word, sigterm_as_interrupt
from higherhrnet_trt.core.files import disk_error_message

from .args import add_global_options

#: (module, one-line summary) in the order they appear in --help.
COMMAND_MODULES: list[str] = [
    "higherhrnet_trt.cli.export",  # export, convert
    "higherhrnet_trt.cli.precision",  # calibrate, debug-precision
    "higherhrnet_trt.cli.engine",  # build, info
    "higherhrnet_trt.cli.demo",  # demo
    "higherhrnet_trt.cli.weights",  # weights list, weights download
    "higherhrnet_trt.cli.run",  # run
    "higherhrnet_trt.cli.eval",  # eval
    "higherhrnet_trt.cli.bench",  # bench
    "higherhrnet_trt.cli.serving",  # triton-repo, serve
    "higherhrnet_trt.cli.ros2",  # ros2, ros2-echo
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="higherhrnet-trt",
        description="HigherHRNet pose estimation: checkpoint -> ONNX -> TensorRT engine -> people.",
        epilog="Run 'higherhrnet-trt COMMAND --help' for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # global flags also after the command name
        add_global_options(command, defaults=False)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("higherhrnet-trt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _printable_streams() -> None:
    """File names that are not UTF-8 (surrogate escapes) print as \\xNN instead of raising
    UnicodeEncodeError half-way through a command (stderr does this already; stdout does not)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a text stream we may change
            pass


def main(argv: list[str] | None = None) -> int:
    _printable_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # SIGTERM (systemd, docker stop, timeout) takes Ctrl-C's path: each command's interrupt
    # handling closes what it wrote. Exit status 130 for Ctrl-C, 143 for SIGTERM.
    with sigterm_as_interrupt():
        try:
            return int(args.func(args) or 0)
        except UserError as e:
            if args.verbose:
                raise
            print(f"error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as e:
            print(interrupt_word(e), file=sys.stderr)
            return interrupt_exit_code(e)
        except OSError as e:  # a full, read-only or over-quota disk: one line, not a traceback
            message = disk_error_message(e)
            if message is None or args.verbose:
                raise
            print(f"error: {message}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
