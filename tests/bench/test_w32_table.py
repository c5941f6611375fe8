"""benchmarks/w32_table: the table's ratios, errors and people agreement on hand-made numbers
(the benchmark itself needs W32 files and minutes of CPU: not run in CI)."""

import numpy as np

from higherhrnet_trt.benchmarks.w32_table import STAGES, Cell, fill_errors, format_table


def _cell(name, ms, people):
    """ms: stage -> per-frame times."""
    c = Cell(name)
    for k in STAGES:
        c.times[k] = list(ms[k])
    c.people = list(people)
    return c


def _cells():
    official = _cell("official", {"preprocess": [2, 4, 3], "infer": [900, 800, 1000],
                                  "decode": [2400, 2000, 2500], "end_to_end": [3300, 2900, 3400]},
                     [30, 29, 30])
    fp32 = _cell("ours: onnxruntime fp32", {"preprocess": [3, 3, 3], "infer": [450, 400, 500],
                                            "decode": [200, 250, 210], "end_to_end": [660, 650, 700]},
                 [30, 30, 28])
    int8 = _cell("ours: openvino int8", {"preprocess": [1.5, 1.5, 1.5], "infer": [100, 100, 120],
                                         "decode": [200, 200, 200], "end_to_end": [330, 300, 310]},
                 [30, 29, 28])
    return official, fp32, int8


def test_ratios_are_first_cell_median_over_cell_median():
    official, fp32, int8 = _cells()
    lines = format_table([official, fp32, int8]).splitlines()
    assert len(lines) == 5
    base = lines[2].split(" | ")
    assert base[1:5] == ["3.00 (1.00x)", "900 (1.00x)", "2400 (1.00x)", "3300 (1.00x)"]
    ours = lines[3].split(" | ")
    # medians 3, 450, 210, 660 -> 3/3, 900/450, 2400/210, 3300/660, by hand
    assert ours[1:5] == ["3.00 (1.00x)", "450 (2.00x)", "210 (11.43x)", "660 (5.00x)"]
    assert ours[5] == "1.52"  # 1000 / 660 images/s
    assert ours[6] == "30, 30, 28"
    last = lines[4].split(" | ")
    assert last[1:5] == ["1.50 (2.00x)", "100 (9.00x)", "200 (12.00x)", "310 (10.65x)"]


def test_errors_and_people_agreement_against_the_reference():
    official, fp32, int8 = _cells()
    ref = [np.zeros((1, 2, 4, 4), np.float32) for _ in range(3)]
    got = [np.zeros((1, 2, 4, 4), np.float16) for _ in range(3)]
    got[1][0, 1, 2, 3] = 0.5  # one pixel off by 0.5 in frame 1, nothing else
    maps = {fp32.name: ref, int8.name: got, official.name: [np.zeros((1, 2, 8, 8))] * 3}
    fill_errors([official, fp32, int8], maps, ref=fp32.name)
    assert int8.err_max == 0.5
    assert np.isclose(int8.err_mean, 0.5 / 32 / 3)  # mean over each frame's 32 values, then frames
    assert int8.same_people == 2 and official.same_people == 1 and fp32.same_people == 3
    assert official.err_max is None  # other shape: not comparable, shown as n/a
    table = format_table([official, fp32, int8])
    row = {line.split(" | ")[0]: line.split(" | ") for line in table.splitlines()[2:]}
    assert row["| ours: onnxruntime fp32"][7] == "reference"
    assert row["| ours: openvino int8"][7] == "5.00e-01 / 5.21e-03"
    assert row["| official"][7] == "n/a"
    assert row["| ours: openvino int8"][8] == "2/3 |"


def test_a_refused_cell_keeps_its_row_and_the_others_their_numbers():
    """A backend that refuses one file (OpenVINO's int8 probe failing on the CPU) gives a row with
    its reason; the ratios and errors of the other rows are as without it."""
    official, fp32, int8 = _cells()
    refused = Cell("ours: openvino int8 (8-bit weights)", refused="OpenVINO's int8 kernels compute wrongly")
    maps = {fp32.name: [np.zeros((1, 2, 4, 4), np.float32)] * 3,
            int8.name: [np.zeros((1, 2, 4, 4), np.float32)] * 3}
    fill_errors([official, fp32, refused, int8], maps, ref=fp32.name)
    assert refused.same_people is None and refused.err_max is None
    assert int8.err_max == 0.0 and int8.same_people == 2  # [30, 29, 28] vs fp32's [30, 30, 28]
    lines = format_table([official, fp32, refused, int8]).splitlines()
    assert lines[4] == ("| ours: openvino int8 (8-bit weights) | refused: OpenVINO's int8 kernels "
                        "compute wrongly |" + " |" * 7)
    assert lines[4].count("|") == lines[2].count("|")  # as many columns as a measured row
    assert lines[5].split(" | ")[1:5] == ["1.50 (2.00x)", "100 (9.00x)", "200 (12.00x)", "310 (10.65x)"]
