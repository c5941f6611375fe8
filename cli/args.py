"""What every command's parser shares: one help formatter, one set of number parsers, logging.

Each command module of cli/ builds its parser with these (and the flag groups of flags.py), so
``--help`` looks and validates the same everywhere. Only argparse and textwrap at import time.
"""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the option help, real ones only (none for flags or options without one).

    Descriptions and epilogs are wrapped paragraph by paragraph (blank line between), except
    paragraphs whose lines start with two spaces (examples), which print as written.
    """

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Option help: never break inside an option name such as --stream-timeout.
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            if para.startswith("  ") or "\n  " in para:
                out.append("\n".join(indent + line for line in para.split("\n")))
            else:
                out.append(textwrap.fill(" ".join(para.split()), width, initial_indent=indent,
                                         subsequent_indent=indent, break_on_hyphens=False))
        return "\n\n".join(out)

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def paragraphs(*texts: str, width: int = 88) -> str:
    """Wrap each text to ``width`` columns, blank line between; lines starting with two spaces
    (examples) are kept as they are."""
    out = []
    for text in texts:
        if text.startswith("  ") or "\n  " in text:
            out.append(text)
        else:
            out.append(textwrap.fill(text, width, break_on_hyphens=False))
    return "\n\n".join(out)


def whole_number_at_least(minimum: int):
    """argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"whole number >= {minimum}"  # argparse names the type in its messages
    return parse


#: argparse type: a whole number >= 1.
positive_int = whole_number_at_least(1)


def fraction(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def seconds(text: str) -> float:
    """argparse type: a duration in seconds, more than 0 (timeouts)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_global_options(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Options every command accepts before or after its name (``--verbose``).

    defaults: False on the subcommands' copies (argparse.SUPPRESS), so a value given before the
    command is not reset by the subparser's default.
    """
    parser.add_argument("--verbose", action="store_true",
                        default=False if defaults else argparse.SUPPRESS,
                        help="show full tracebacks on errors")


def setup_logging() -> None:
    """Library warnings as 'warning: ...' lines that do not break tqdm's progress bar."""
    import logging
    import sys

    class TqdmHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            from tqdm import tqdm

            try:
                tqdm.write(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
            except Exception:  # never let logging end a run
                self.handleError(record)

    logger = logging.getLogger("higherhrnet_trt")
    if not any(getattr(h, "_hhrnet_cli", False) for h in logger.handlers):
        handler = TqdmHandler(logging.INFO)
        handler._hhrnet_cli = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        # Propagation stays on: a CLI process has no root handlers (so nothing prints twice), and
        # hosts that configure logging (pytest, applications calling main()) still see records.
