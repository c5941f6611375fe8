"""``higherhrnet-trt``: one command, thin over the Python API.

Each subcommand lives beside the code it drives, in a module that exposes
``register(subparsers)``: it adds its parser and sets ``func=callable(args) -> int``. Those modules
import only argparse at top level, so ``--help`` is instant and a missing torch or TensorRT costs
nothing until the subcommand that needs it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from higherhrnet_trt.core.cli_args import add_global_options
from higherhrnet_trt.core.errors import UserError, interrupt_exit_code, interrupt_word, sigterm_as_interrupt
from higherhrnet_trt.core.files import disk_error_message

#: (module, one-line summary) in the order they appear in --help.
COMMAND_MODULES: list[str] = [
    "higherhrnet_trt.export.cli",  # export, convert
    "higherhrnet_trt.export.precision_cli",  # calibrate, debug-precision
    "higherhrnet_trt.engine.cli",  # build, info
    "higherhrnet_trt.cli.demo",  # demo
    "higherhrnet_trt.cli.weights",  # weights list, weights download
    "higherhrnet_trt.runtime.run_cli",  # run
    "higherhrnet_trt.runtime.eval_cli",  # eval
    "higherhrnet_trt.benchmarks.cli",  # bench
    "higherhrnet_trt.serving.cli",  # triton-repo, serve
    "higherhrnet_trt.ros.cli",  # ros2
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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that part of the toolkit is not written yet
                continue
            raise
        module.register(sub)
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
