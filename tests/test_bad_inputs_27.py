"""Issue 27, items 5 to 7: no silent wrong results, stages usable in their documented order."""

from __future__ import annotations

import numpy as np
import pytest

from higherhrnet_trt.cli import main


@pytest.fixture(scope="module")
def nan_onnx(tiny_onnx, tmp_path_factory):
    """The tiny network with every floating-point weight NaN (a diverged checkpoint)."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    model = onnx.load(str(tiny_onnx))
    weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}  # not resize scales
    for init in model.graph.initializer:
        arr = numpy_helper.to_array(init)
        if init.name in weights:
            init.CopyFrom(numpy_helper.from_array(np.full_like(arr, np.nan), init.name))
    path = tmp_path_factory.mktemp("nan") / "nan.onnx"
    onnx.save(model, str(path))
    return path


def test_run_with_nan_weights_is_an_error_not_zero_people(nan_onnx, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8))
    rc = main(["run", str(nan_onnx), "--source", str(image), "--json", str(tmp_path / "p.json"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "NaN/inf" in lines[0] and "weights" in lines[0], err


def test_prepare_works_as_the_first_stage(tiny_onnx):
    """Pipeline.prepare(), documented as stage 1, raised AttributeError (_static_hw) before
    predict(); it must give what it gives once the model is loaded."""
    from higherhrnet_trt.runtime import Pipeline

    frame = np.random.default_rng(1).integers(0, 255, (96, 128, 3), np.uint8)
    with Pipeline(str(tiny_onnx)) as loaded:
        expected, geometry = loaded.prepare(frame)
    fresh = Pipeline(str(tiny_onnx))
    try:
        got, got_geometry = fresh.prepare(frame)
        assert [s for s, _ in got] == [s for s, _ in expected]
        for (_, a), (_, b) in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        assert tuple(got_geometry.base_size_wh) == tuple(geometry.base_size_wh)
    finally:
        fresh.close()


def _info(capsys, path):
    rc = main(["info", str(path)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_info_checks_the_weights_hash_recorded_at_export(tiny_onnx, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    import hashlib

    from onnx import numpy_helper

    model = onnx.load(str(tiny_onnx))
    stamped = {p.key: p.value for p in model.metadata_props}.get("higherhrnet_trt.weights_sha256")
    # The recorded hash, recomputed here by hand from the file's initializers.
    h = hashlib.sha256()
    for init in sorted(model.graph.initializer, key=lambda i: i.name):
        h.update(init.name.encode() + b"\0" + f"{init.data_type}:{list(init.dims)}\0".encode())
        h.update(init.raw_data if init.raw_data else numpy_helper.to_array(init).tobytes())
    assert stamped == h.hexdigest()
    rc, out, err = _info(capsys, tiny_onnx)
    assert rc == 0 and "sha256 matches export" in out, out + err

    # One flipped byte in the largest weight (what a damaged copy does), metadata kept.
    big = max(model.graph.initializer, key=lambda i: len(i.raw_data))
    raw = bytearray(big.raw_data)
    raw[len(raw) // 2] ^= 0x01
    big.raw_data = bytes(raw)
    damaged = tmp_path / "flipped.onnx"
    onnx.save(model, str(damaged))
    rc, out, err = _info(capsys, damaged)
    assert rc == 1 and err.startswith("error: ") and "sha256 differs" in err and err.count("\n") == 1


def test_info_refuses_nan_weights(nan_onnx, capsys):
    rc, out, err = _info(capsys, nan_onnx)
    assert rc == 1 and "NaN/inf" in err and err.count("\n") == 1, err
