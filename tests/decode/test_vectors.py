"""The decoder against the official HeatmapParser outputs on the 20 parser vectors (all cases, all modes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from higherhrnet_trt.decode import DecodeConfig, parse

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310

CASES = [f"case{i:02d}" for i in range(20)]
MODES = {
    # mode: (config, grouped key suffix, scores key suffix)
    "raw": (DecodeConfig(adjust=False, refine=False), "grouped_raw", "scores_raw"),
    "adjusted": (DecodeConfig(adjust=True, refine=False), "grouped_adjusted", "scores"),
    "refined": (DecodeConfig(adjust=True, refine=True), "grouped_refined", "scores"),
}
TOL = 1e-4


@pytest.fixture(scope="module")
def vectors(reference_dir):
    with np.load(reference_dir / "parser_vectors.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def meta(reference_dir):
    return {m["case"]: m for m in json.loads((reference_dir / "parser_vectors_meta.json").read_text())}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", CASES)
def test_official_vectors(vectors, meta, case, mode):
    cfg, grouped_key, scores_key = MODES[mode]
    heatmaps = vectors[f"{case}_heatmaps"][0]
    tags = vectors[f"{case}_tags"][0]
    grouped, scores = parse(heatmaps, tags, cfg)
    want = vectors[f"{case}_{grouped_key}"]
    want_scores = vectors[f"{case}_{scores_key}"]
    assert grouped.dtype == np.float32 and scores.dtype == np.float32
    assert grouped.shape == want.shape, f"{case} {mode}: {grouped.shape[0]} people, official {want.shape[0]}"
    assert grouped.shape[0] == meta[case]["people_found"]
    np.testing.assert_allclose(grouped, want, rtol=0, atol=TOL, err_msg=f"{case} {mode}")
    np.testing.assert_allclose(scores, want_scores, rtol=0, atol=TOL, err_msg=f"{case} {mode} scores")
    detected = int((grouped[:, :, 2] > 0).sum())
    if mode == "refined":
        assert detected == meta[case]["joints_after_refine"]
    else:
        assert detected == meta[case]["joints_detected"]


def test_inputs_not_modified(vectors):
    """The official parser adjusts and refines in place; ours must leave the caller's arrays alone."""
    heatmaps = vectors["case03_heatmaps"][0].copy()
    tags = vectors["case03_tags"][0].copy()
    parse(heatmaps, tags)
    assert np.array_equal(heatmaps, vectors["case03_heatmaps"][0])
    assert np.array_equal(tags, vectors["case03_tags"][0])
