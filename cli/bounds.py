"""The valid range of every number a command takes, declared once, as argparse ``type=`` parsers.

A typo (``--batch 100000``, ``--threads 1e9``, ``--input-size=-64``, ``--tolerance nan``) is refused
while the command line is parsed, before any model loads, in one line that names the range:

    error: argument --batch: expected a whole number from 1 to 256, got '100000'

Each range is a value of :class:`IntRange` or :class:`FloatRange` (callables argparse uses as
``type=``); commands share them, so one option means one range everywhere. The bounds are guards
against typos, not tuning advice: each says why it is where it is. Only the standard library and
core.limits are imported (the CLI modules use these at parser-building time).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from higherhrnet_trt.core.limits import MAX_ASPECT, MAX_INPUT_PIXELS, QUEUE_DELAY_US_RANGE


@dataclass(frozen=True)
class IntRange:
    """argparse type: a whole number from ``lo`` to ``hi`` (inclusive), a multiple of ``step``."""

    lo: int
    hi: int
    step: int = 1
    unit: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.step == 1 else f"a multiple of {self.step}"
        unit = f" {self.unit}" if self.unit else ""
        return f"{kind} from {self.lo} to {self.hi}{unit}"

    def check(self, value: int) -> bool:
        return self.lo <= value <= self.hi and value % self.step == 0

    def __call__(self, text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            value = None
        if value is None or not self.check(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


@dataclass(frozen=True)
class FloatRange:
    """argparse type: a finite number from ``lo`` to ``hi``; ``lo_open`` / ``hi_open`` exclude the
    end. NaN and infinities are always refused."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    unit: str = ""

    def describe(self) -> str:
        left = "more than" if self.lo_open else "from"
        right = "below" if self.hi_open else "to"
        unit = f" {self.unit}" if self.unit else ""
        return f"a number {left} {self.lo:g} {right} {self.hi:g}{unit}"

    def check(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __call__(self, text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            value = math.nan
        if not self.check(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value


#: Frames per batch (export's static batch, bench): 256 frames of 512 x 512 are 800 MB of fp32
#: input alone, before the network's activations (which grow with it).
BATCH = IntRange(1, 256, unit="frames")
#: CPU threads of ONNX Runtime / OpenVINO (0: the library's default). ORT allocates per thread.
THREADS = IntRange(0, 1024)
#: One side of a network input, pixels: HigherHRNet's strides need multiples of 64. H x W is also
#: bounded by core.limits (3 Mpx, 8:1), so 4096 is only reached by a 4096 x 512 input.
INPUT_SIDE = IntRange(64, 4096, step=64, unit="pixels")
#: A square input's side, or a dynamic model's pre-processing size (the frame's short side): the
#: largest square within core.limits.MAX_INPUT_PIXELS (3 Mpx) has 1728-pixel sides.
SQUARE_SIDE = IntRange(64, 64 * int(math.sqrt(MAX_INPUT_PIXELS) // 64), step=64, unit="pixels")
#: debug-precision inputs: every tensor of both models is kept per input.
NUM_INPUTS = IntRange(1, 1000)
#: calibrate --holdout: images kept out of calibration (more than the image folder holds is
#: caught where the images are counted).
HOLDOUT = IntRange(0, 100_000, unit="images")
#: Triton's dynamic batcher: longest wait for a fuller batch (0: none; 1 s at most).
QUEUE_DELAY_US = IntRange(*QUEUE_DELAY_US_RANGE, unit="microseconds")
#: A TCP port (serve --http-port, --grpc-port, --metrics-port).
PORT = IntRange(1, 65535)
#: debug-precision --tolerance: relative error max|err| / max|fp32| above which a jump is reported.
TOLERANCE = FloatRange(0.0, 1.0, lo_open=True)
#: debug-precision --factor: how many times its inputs' error makes a layer "jump".
FACTOR = FloatRange(1.0, 1e6, hi_open=True)
#: calibrate --percentile: the share of |x| kept, percent (100: the maximum).
PERCENTILE = FloatRange(50.0, 100.0, unit="percent")


def input_size(text: str) -> tuple[int, int]:
    """argparse type: 'N' -> (N, N), 'HxW' -> (H, W); each side :data:`INPUT_SIDE`, H x W at most
    core.limits.MAX_INPUT_PIXELS and at most MAX_ASPECT : 1."""
    parts = str(text).lower().replace("*", "x").split("x")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or HxW, e.g. 512 or 384x640, got {text!r}")
    try:
        sides = [INPUT_SIDE(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected N or HxW, each side {INPUT_SIDE.describe()}, "
                                         f"got {text!r}") from None
    h, w = (sides * 2)[:2]
    if h * w > MAX_INPUT_PIXELS or max(h, w) / min(h, w) > MAX_ASPECT:
        raise argparse.ArgumentTypeError(
            f"input {h}x{w} is over the limit: at most {MAX_INPUT_PIXELS / 2**20:g} Mpx and "
            f"{MAX_ASPECT:g}:1 (e.g. 1728 or 1024x2048), got {text!r}")
    return h, w


def input_side(text: str) -> int:
    """argparse type: a dynamic model's pre-processing size (short side), :data:`SQUARE_SIDE`."""
    return SQUARE_SIDE(text)


def nonempty_list(what: str):
    """argparse type: a comma-separated list with at least one non-empty item (the text, as given:
    its users split it)."""

    def parse(text: str) -> str:
        if not [t for t in str(text).split(",") if t.strip()]:
            raise argparse.ArgumentTypeError(f"expected one or more {what} separated by commas, "
                                             f"got {text!r}")
        return text

    parse.__name__ = what
    return parse


def nonempty(what: str):
    """argparse type: a string that is not empty or blank."""

    def parse(text: str) -> str:
        if not str(text).strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got an empty string")
        return text

    parse.__name__ = what
    return parse


def host(text: str) -> str:
    """argparse type: an address to bind: an IPv4 / IPv6 address or a host name (a dotted-number
    name that is no IPv4 address, such as 999.1.1.1, is refused: the server never came up)."""
    import ipaddress
    import re

    value = str(text).strip()
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value) or not re.fullmatch(
            r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
            r"[A-Za-z0-9])?)*", value):
        raise argparse.ArgumentTypeError(f"expected an IP address (127.0.0.1, 0.0.0.0, ::1) or a "
                                         f"host name, got {text!r}")
    return value


def torch_device(text: str) -> str:
    """argparse type: a torch device for inference: cpu, cuda or cuda:N."""
    import re

    value = str(text).strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d{1,3})?", value):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")
    return value


__all__ = ["BATCH", "FACTOR", "HOLDOUT", "INPUT_SIDE", "NUM_INPUTS", "PERCENTILE", "PORT",
           "QUEUE_DELAY_US", "SQUARE_SIDE", "THREADS", "TOLERANCE", "FloatRange", "IntRange", "host",
           "input_side", "input_size", "nonempty", "nonempty_list", "torch_device"]
