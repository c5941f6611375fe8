"""Absurd numbers (issue 27 item 4) end while the command line is parsed, in one line that names
the valid range, before any model loads. The ranges are written here by hand from cli/bounds.py'
docstrings (an outside reference for the parsers under test)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from higherhrnet_trt.cli import bounds, main

M = "model.onnx"  # never opened: every case below ends in the parser

CASES = [
    (["bench", M, "--batch", "100000"], "--batch", "from 1 to 256"),
    (["bench", M, "--batch", "0"], "--batch", "from 1 to 256"),
    (["bench", M, "--input-size", "63"], "--input-size", "multiple of 64"),
    (["bench", M, "--input-size", "1000000"], "--input-size", "multiple of 64 from 64 to 4096"),
    (["bench", M, "--input-size", "1792"], "--input-size", "3 Mpx"),
    (["export", "--batch", "100000"], "--batch", "from 1 to 256"),
    (["export", "--input-size=-64"], "--input-size", "from 64 to 4096"),
    (["export", "--input-size", "0"], "--input-size", "from 64 to 4096"),
    (["export", "--input-size", "1000000"], "--input-size", "from 64 to 4096"),
    (["export", "--input-size", "100"], "--input-size", "multiple of 64"),
    (["export", "--input-size", "1664x1920"], "--input-size", "3 Mpx"),
    (["export", "--input-size", "64x1024"], "--input-size", "8:1"),
    (["export", "--input-size", "512x"], "--input-size", "multiple of 64"),
    (["debug-precision", M, "--variant", M, "--num-inputs", "1e9"], "--num-inputs", "from 1 to 1000"),
    (["debug-precision", M, "--variant", M, "--num-inputs", "1000000000"], "--num-inputs", "1000"),
    (["debug-precision", M, "--variant", M, "--tolerance", "nan"], "--tolerance", "more than 0 to 1"),
    (["debug-precision", M, "--variant", M, "--tolerance", "inf"], "--tolerance", "more than 0 to 1"),
    (["debug-precision", M, "--variant", M, "--tolerance", "0"], "--tolerance", "more than 0"),
    (["debug-precision", M, "--variant", M, "--factor", "nan"], "--factor", "from 1"),
    (["run", M, "--threads", "1e9"], "--threads", "from 0 to 1024"),
    (["run", M, "--threads", "1000000000"], "--threads", "from 0 to 1024"),
    (["run", M, "--threads", "-1"], "--threads", "from 0 to 1024"),
    (["eval", M, "--threads", "-1"], "--threads", "from 0 to 1024"),
    (["run", M, "--providers", ""], "--providers", "one or more"),
    (["run", M, "--providers", " , "], "--providers", "one or more"),
    (["calibrate", M, "--images", "d", "--holdout", "-1"], "--holdout", "from 0 to 100000"),
    (["calibrate", M, "--images", "d", "--input-size", "63"], "--input-size", "multiple of 64"),
    (["calibrate", M, "--images", "d", "--input-size", "1792"], "--input-size", "64 to 1728"),
    (["calibrate", M, "--images", "d", "--percentile", "nan"], "--percentile", "from 50 to 100"),
    (["calibrate", M, "--images", "d", "--percentile", "101"], "--percentile", "from 50 to 100"),
    (["triton-repo", M, "-o", "r", "--queue-delay-us", "-1"], "--queue-delay-us", "0 to 1000000"),
    (["serve", M, "--threads", "-1"], "--threads", "from 0 to 1024"),
    (["serve", M, "--http-port", "99999"], "--http-port", "from 1 to 65535"),
    (["serve", M, "--host", "999.1.1.1"], "--host", "an IP address"),
    (["serve", M, "--host", ""], "--host", "an IP address"),
    (["run", "x.pth", "-s", "a.jpg", "--device", "banana"], "--device", "cpu, cuda or cuda:N"),
    (["bench", M, "--plot", "p.txt"], "--plot", ".png"),
]


@pytest.mark.parametrize("argv, option, needle", CASES, ids=[" ".join(c[0][:1] + c[0][2:]) for c in CASES])
def test_absurd_numbers_end_in_the_parser_naming_the_range(capsys, monkeypatch, tmp_path, argv, option,
                                                           needle):
    monkeypatch.chdir(tmp_path)  # a case the parser let through must not write into the checkout
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and option in lines[0] and needle in lines[0], err


def test_valid_values_parse_to_what_was_typed():
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["export", "--batch", "256", "--input-size", "384x640"])
    assert (args.batch, args.input_size) == (256, (384, 640))
    assert parser.parse_args(["export", "--input-size", "1728"]).input_size == 1728
    assert parser.parse_args(["export", "--input-size", "1024x2048"]).input_size == (1024, 2048)
    assert parser.parse_args(["bench", M, "--input-size", "512"]).input_size == (512, 512)
    args = parser.parse_args(["run", M, "-s", "x.jpg", "--threads", "0",
                              "--providers", "CPUExecutionProvider"])
    assert (args.threads, args.providers) == (0, "CPUExecutionProvider")
    for ok in ("127.0.0.1", "0.0.0.0", "::1", "localhost", "pose-server.lan"):
        assert parser.parse_args(["serve", M, "--host", ok]).host == ok
    assert parser.parse_args(["run", "x.pth", "-s", "a.jpg", "--device", "cuda:1"]).device == "cuda:1"
    assert parser.parse_args(["bench", M, "--plot", "p.svg"]).plot == "p.svg"
    args = parser.parse_args(["debug-precision", M, "--variant", M, "--tolerance", "1", "--factor", "1"])
    assert (args.tolerance, args.factor) == (1.0, 1.0)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "", " ", "1e400", "0x10", "--1"])
def test_float_ranges_refuse_non_finite_and_junk(text):
    with pytest.raises(argparse.ArgumentTypeError):
        bounds.FloatRange(0.0, 1.0)(text)


def test_int_range_edges():
    r = bounds.SQUARE_SIDE
    assert r("64") == 64 and r(" 1728 ") == 1728
    for text in ("0", "-64", "1792", "100", "64.0", "1e3", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            r(text)
    assert bounds.SQUARE_SIDE.hi ** 2 <= 3 * 2**20 < (bounds.SQUARE_SIDE.hi + 64) ** 2
    assert bounds.input_size("4096x512") == (4096, 512)
    assert math.isclose(bounds.PERCENTILE.hi, 100.0)


def test_percentile_without_the_percentile_method_is_refused(capsys, tmp_path):
    rc = main(["calibrate", str(tmp_path / "never_read.onnx"), "--images", str(tmp_path),
               "--percentile", "99.9"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: --percentile applies to --method percentile"), err
    assert err.count("\n") == 1


def test_calibrate_input_size_on_a_static_model_is_refused(tiny_onnx, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("modelopt.onnx.quantization")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((96, 128, 3), 40 * i, np.uint8))
    out = tmp_path / "out.int8.onnx"
    rc = main(["calibrate", str(tiny_onnx), "--images", str(images), "-o", str(out),
               "--input-size", "256", "--no-progress", "--no-cache"])
    err = capsys.readouterr().err
    assert rc == 1 and "fixed at" in err and "--input-size" in err and err.count("\n") == 1, err
    assert not out.exists()


# -- fuzz: random numbers, NaN, huge, negative, empty strings into every bounded option ------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: (argv before the value, option, the range it must land in when it parses)
FUZZED = [
    (["bench", M], "--batch", bounds.BATCH),
    (["export"], "--batch", bounds.BATCH),
    (["run", M, "-s", "x.jpg"], "--threads", bounds.THREADS),
    (["debug-precision", M, "--variant", M], "--num-inputs", bounds.NUM_INPUTS),
    (["debug-precision", M, "--variant", M], "--tolerance", bounds.TOLERANCE),
    (["debug-precision", M, "--variant", M], "--factor", bounds.FACTOR),
    (["calibrate", M, "--images", "d"], "--holdout", bounds.HOLDOUT),
    (["calibrate", M, "--images", "d"], "--percentile", bounds.PERCENTILE),
    (["triton-repo", M, "-o", "r"], "--queue-delay-us", bounds.QUEUE_DELAY_US),
    (["serve", M], "--grpc-port", bounds.PORT),
    (["export"], "--input-size", None),
    (["bench", M], "--input-size", None),
]

TEXTS = st.one_of(
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "-nan", "inf", "1e9", "1e-400", "0x40", "64x", "x64", "64x64x64",
                     "-64x64", "٦٤", "64\x00"]),
    st.text(max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FUZZED), TEXTS)
def test_option_parsers_parse_in_range_or_refuse_in_one_line(case, text):
    from higherhrnet_trt.cli import build_parser

    argv, option, bound = case
    parser = build_parser()
    parser.exit = lambda status=0, message=None: (_ for _ in ()).throw(SystemExit(status))
    try:
        args = parser.parse_args([*argv, f"{option}={text}"])
    except SystemExit as e:
        assert e.code == 2
        return
    value = getattr(args, option.lstrip("-").replace("-", "_"))
    if bound is None:  # an input size: each side a multiple of 64, at most 3 Mpx
        sides = value if isinstance(value, tuple) else (value, value)
        assert all(64 <= s <= 4096 and s % 64 == 0 for s in sides) and sides[0] * sides[1] <= 3 * 2**20
    else:
        assert bound.check(value), (text, value)
