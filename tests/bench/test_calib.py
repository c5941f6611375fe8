"""benchmarks/calib_speed and benchmarks/calib_sample run end to end on the tiny network (smoke:
their numbers go to RESULTS.md from full-size runs; here: they run, report every method, and the
sampled pass with a sample larger than every tensor reproduces the exact ranges)."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("modelopt.onnx.quantization", reason="nvidia-modelopt is not installed")

from higherhrnet_trt.benchmarks import calib_sample, calib_speed  # noqa: E402


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return calib_speed._synthetic_images(str(tmp_path_factory.mktemp("frames")), 3)


def test_calib_speed_reports_each_method_and_sample(tiny_onnx, frames):
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = calib_speed.run(str(tiny_onnx), frames, 3, ["entropy"], [65536, 0], log=lines.append)
    assert set(res["methods"]) == {"entropy sample=65536", "entropy sample=0"}
    for row in res["methods"].values():  # the numbers themselves go to RESULTS.md, not asserted
        assert set(row) == {"wall", "cpu", "plain_wall", "plain_cpu"}
    assert res["images"] == 3
    assert any("ratio calibration / inference" in line for line in lines)


def test_calib_sample_whole_tensors_match_the_exact_pass(tiny_onnx, frames):
    """A sample larger than every tensor reads every value: ranges equal the exact pass's up to
    the optimised graph's float rounding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = calib_sample.compare(str(tiny_onnx), frames, 3, [10**9], ["percentile"],
                                   log=lambda *a: None)
    assert res["percentile"][10**9]["max"] < 1e-5
