"""classic_munkres against the classic ``munkres`` package (1.x) on tie-heavy cost matrices.

The package decides the official results' ties, so every pair must be the same, not just the
total cost.
"""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.decode import classic_munkres, match_cost

munkres = pytest.importorskip("munkres")

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


def _package(cost: np.ndarray) -> list[tuple[int, int]]:
    # A list of lists, as the package documents: for a numpy array it would slice rows as views
    # and break on tall input (row += [0] * k broadcasts), which the official code never feeds it.
    return [tuple(p) for p in munkres.Munkres().compute(cost.tolist())]


def _ours(cost: np.ndarray) -> list[tuple[int, int]]:
    pairs = classic_munkres(cost)
    assert pairs.dtype == np.int64 and pairs.shape == (min(cost.shape), 2)
    return [tuple(p) for p in pairs.tolist()]


def _official_like(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """round(L2 distance) * 100 - detection value, with the 1e10 padding when rows > cols."""
    people = rng.uniform(-3, 3, (cols, 2))
    pick = rng.integers(0, cols, rows)
    cand = people[pick] + rng.normal(0, rng.choice([0.2, 0.8, 2.0]), (rows, 2))
    val = rng.uniform(0.1, 1.0, rows)
    cost, _ = match_cost(cand.astype(np.float32), val.astype(np.float32), people.astype(np.float32))
    return cost


def test_package_is_classic():
    assert munkres.__version__.split(".")[0] in {"1"}, "the reference ties need munkres 1.x"


def test_official_like_costs():
    """Costs as match_by_tag builds them: many ties, per-row constants, 1e10 padding columns."""
    rng = np.random.default_rng(7)
    for _ in range(400):
        rows, cols = (int(v) for v in rng.integers(1, 31, 2))
        cost = _official_like(rng, rows, cols)
        assert _ours(cost) == _package(cost), (rows, cols)


def test_tie_heavy_integer_multiples():
    rng = np.random.default_rng(11)
    for _ in range(400):
        rows, cols = (int(v) for v in rng.integers(1, 20, 2))
        levels = int(rng.integers(1, 4))
        cost = rng.integers(0, levels + 1, (rows, cols)) * 100.0
        if rng.random() < 0.7:
            cost -= rng.uniform(0.1, 1.0, (rows, 1))  # detection value: a per-row constant
        if rows > cols and rng.random() < 0.7:
            cost = np.concatenate([cost, np.full((rows, rows - cols), 1e10)], axis=1)
        assert _ours(cost) == _package(cost), cost


def test_non_square_zero_padding():
    """Tall and wide inputs without the 1e10 columns: the package pads with zeros either way."""
    rng = np.random.default_rng(3)
    for _ in range(150):
        rows, cols = (int(v) for v in rng.integers(1, 12, 2))
        cost = rng.integers(-2, 3, (rows, cols)).astype(np.float64) * rng.choice([1.0, 100.0])
        if rng.random() < 0.5:
            cost += rng.uniform(0, 1, (rows, cols)).round(1)
        assert _ours(cost) == _package(cost), cost


def test_larger_matrices():
    rng = np.random.default_rng(5)
    for rows, cols in [(30, 30), (30, 24), (24, 30), (30, 8)]:
        cost = _official_like(rng, rows, cols)
        assert _ours(cost) == _package(cost)


def test_degenerate():
    assert _ours(np.zeros((1, 1))) == [(0, 0)]
    for shape in [(4, 4), (3, 5), (5, 3)]:
        same = np.full(shape, 7.0)
        assert _ours(same) == _package(same)
    assert classic_munkres(np.zeros((0, 3))).shape == (0, 2)
    with pytest.raises(ValueError):
        classic_munkres(np.zeros(3))



def test_infinite_tags_raise_instead_of_hanging():
    """An inf tag gives inf costs, on which the classic steps cycle (munkres 1.x never returns);
    classic_munkres stops after the step-6 pass limit (as kernels/munkres.cuh). Child process with
    a timeout, so a regression fails instead of hanging CI."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from higherhrnet_trt.decode import parse\n"
        "from higherhrnet_trt.decode.munkres import UnsolvableMatrix\n"
        "rng = np.random.default_rng(0)\n"
        "hm = (rng.random((17, 24, 24)) ** 4).astype(np.float32)\n"
        "tg = rng.normal(scale=2.0, size=(17, 24, 24, 2)).astype(np.float32)\n"
        "for j in (3, 9):\n"
        "    tg[j].reshape(-1, 2)[np.argmax(hm[j]), 0] = np.inf\n"
        "try:\n"
        "    parse(hm, tg)\n"
        "except UnsolvableMatrix as e:\n"
        "    print('unsolvable:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "unsolvable: no assignment after the step-6 pass limit" in out.stdout
