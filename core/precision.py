"""The options of a model's precision, shared by ``export``, ``build`` and ``calibrate``: one
name each (cli/flags.py maps each field to its flag, ``precision`` <-> ``--precision``).

- :class:`PrecisionOptions`: the precision a model file is written or built in;
- :class:`CalibrationOptions`: the images INT8 activation ranges come from, and the method.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError

#: What a model file runs in: fp32, fp16 (convert / TensorRT 10's weak typing), int8 (Q/DQ).
PRECISIONS = ("fp32", "fp16", "int8")
#: How INT8 activation ranges are chosen (export/calib_ranges.py).
CALIBRATION_METHODS = ("entropy", "max", "percentile")
#: The runtime an INT8 Q/DQ file is laid out for (written into its metadata): "tensorrt"
#: (ModelOpt's placement, fp16 elsewhere) or "cpu" (ONNX Runtime's placement for its integer kernels).
CALIBRATION_TARGETS = ("tensorrt", "cpu")


@dataclass(frozen=True)
class PrecisionOptions:
    """precision: one of PRECISIONS."""

    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")

    @property
    def half(self) -> bool:
        return self.precision == "fp16"

    @property
    def int8(self) -> bool:
        return self.precision == "int8"


@dataclass(frozen=True)
class CalibrationOptions:
    """INT8 calibration.

    images: folder of calibration images (searched recursively).
    num_images: how many of them calibrate (a seeded shuffle picks them).
    method: activation range method, one of CALIBRATION_METHODS.
    target: the runtime the Q/DQ graph is for, one of CALIBRATION_TARGETS.
    """

    images: str | None = None
    num_images: int = 512
    method: str = "entropy"
    target: str = "tensorrt"

    def __post_init__(self) -> None:
        if self.target not in CALIBRATION_TARGETS:
            raise UserError(f"calibration target {self.target!r}: expected one of "
                            f"{', '.join(CALIBRATION_TARGETS)}")
        if self.method not in CALIBRATION_METHODS:
            raise UserError(f"calibration method {self.method!r}: expected one of "
                            f"{', '.join(CALIBRATION_METHODS)}")
