"""Issue 27, items 2 to 7: hostile file names, disk errors that name the right file, no silent wrong
results, stages usable in their documented order."""

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


@pytest.mark.parametrize("damage, needle", [
    (lambda d: d["annotations"][0]["keypoints"].__setitem__(4, float("nan")), "NaN/inf or non-numbers"),
    (lambda d: d["annotations"][1].__setitem__("keypoints", [10.0, 20.0, 2]), "got 3 values"),
    (lambda d: d["images"][0].__setitem__("id", "100"), "integer 'id'"),
    (lambda d: d["annotations"][0].__setitem__("image_id", 12345), "no entry of 'images'"),
    (lambda d: d["annotations"][0].__setitem__("bbox", [0, 0, float("inf"), 5]), "'bbox' must be 4"),
])
def test_eval_refuses_bad_ground_truth_in_one_line(tmp_path, damage, needle):
    """NaN ground-truth keypoints once gave an AP; 3-value keypoints and string ids a traceback."""
    import json

    pytest.importorskip("pycocotools")
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.runtime.evaluate import load_ground_truth
    from tests.runtime.test_evaluate import COCO, make_dataset

    ann, _, data = make_dataset(tmp_path, COCO)
    load_ground_truth(ann, COCO)  # the undamaged file loads
    damage(data)
    with open(ann, "w", encoding="utf-8") as f:
        json.dump(data, f)  # NaN / Infinity as Python's json writes them (and reads them back)
    with pytest.raises(UserError, match="annotations|images") as e:
        load_ground_truth(ann, COCO)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_convert_refuses_nan_weights_before_any_work(nan_onnx, tmp_path, capsys):
    pytest.importorskip("onnx")
    out = tmp_path / "nan.fp16.onnx"
    rc = main(["convert", str(nan_onnx), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "NaN/inf" in err and err.count("\n") == 1, err
    assert not out.exists()


def test_calibrate_checks_its_cache_folder_before_any_work(tiny_onnx, tmp_path, capsys, monkeypatch):
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("modelopt.onnx.quantization")
    from higherhrnet_trt.export import quantize

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}.jpg"), np.full((96, 128, 3), 40 * i, np.uint8))
    blocker = tmp_path / "cache_is_a_file"
    blocker.write_text("x")
    monkeypatch.setattr(quantize, "_placement", lambda *a, **k: pytest.fail("calibration work started"))
    rc = main(["calibrate", str(tiny_onnx), "--images", str(images), "-o", str(tmp_path / "o.onnx"),
               "--cache-dir", str(blocker / "sub"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "cache folder" in err and "--cache-dir" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("same", [True, False])
def test_run_json_and_save_dir_refused_before_any_work(tiny_onnx, tmp_path, capsys, same):
    """--json on the --save-dir folder (or on an existing folder) is one line before the model loads,
    not an IsADirectoryError after the frames ran."""
    cv2 = pytest.importorskip("cv2")
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "out.json"
    if not same:
        out.mkdir()
    extra = ["--save-dir", str(out)] if same else []
    rc = main(["run", str(tiny_onnx), "--source", str(image), "--json", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "done:" not in err, err
    assert err.strip().startswith("error: --json") and len(err.strip().splitlines()) == 1, err


def test_run_refuses_a_config_the_graph_does_not_fit(tiny_onnx, tmp_path, capsys):
    """`run nometa.onnx --config w32_512` on a narrower network: one line, before any frame."""
    onnx = pytest.importorskip("onnx")
    cv2 = pytest.importorskip("cv2")
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    path = tmp_path / "nometa.onnx"
    onnx.save(model, str(path))
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((96, 128, 3), np.uint8))
    rc = main(["run", str(path), "--config", "w32_512", "--source", str(image), "--json",
               str(tmp_path / "p.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "not a w32_512 network" in lines[0], err
    assert not (tmp_path / "p.json").exists()


def test_calibrate_on_a_file_name_that_is_not_utf8(tiny_onnx, tmp_path, capsys):
    """A source folder holding a name that is not UTF-8 (bytes 0xff 0xfe): the calibration cache
    key encoded the surrogate-escaped name and raised UnicodeEncodeError; the image is used."""
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("modelopt.onnx.quantization")
    import os

    images = tmp_path / "images"
    images.mkdir()
    ok, frame = cv2.imencode(".jpg", np.random.default_rng(2).integers(0, 255, (96, 128, 3), np.uint8))
    (images / "ok.jpg").write_bytes(frame.tobytes())
    with open(os.path.join(os.fsencode(images), b"b\xff\xfe.jpg"), "wb") as f:
        f.write(frame.tobytes())
    out = tmp_path / "o.int8.onnx"
    rc = main(["calibrate", str(tiny_onnx), "--images", str(images), "-o", str(out), "--holdout", "0",
               "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and out.is_file(), err
    assert "calibrated on 2 images" in err, err


def test_info_names_dynamic_output_sizes_after_the_input(tiny_onnx_dynamic, capsys):
    """info showed a dynamic model's outputs as 1x17x32*s3x32*s58 (torch.export's symbols)."""
    rc, out, err = _info(capsys, tiny_onnx_dynamic)
    assert rc == 0, err
    assert "*s" not in out, out
    assert "heatmaps: float32 batchx17xheight/2xwidth/2" in out, out
    assert "tags: float32 batchx17xheight/2xwidth/2x2" in out, out


def test_export_reports_a_dynamic_input_as_dynamic(tiny_model, tmp_path):
    """export printed 'input (1, 3, 256, 256)' for a model that takes any height and width."""
    from higherhrnet_trt.export.onnx_export import export_onnx

    report = export_onnx(tiny_model, str(tmp_path / "d.onnx"), input_size=128, dynamic=True,
                         check=False)
    assert "(input 1x3xheightxwidth, traced at 1x3x128x128)" in report.summary(), report.summary()
    static = export_onnx(tiny_model, str(tmp_path / "s.onnx"), input_size=128, check=False)
    assert "(input 1x3x128x128)" in static.summary(), static.summary()


def test_export_dynamic_batch_alone_needs_a_size_on_purpose(tmp_path, capsys, monkeypatch):
    """--dynamic-batch without --dynamic fixed the input at the config's 256x256 without a word:
    several-source runs then letterboxed every frame and found other people. Refused in one line
    before any export, unless --input-size says the fixed size is meant."""
    from higherhrnet_trt.export import api

    out = tmp_path / "db.onnx"
    monkeypatch.setattr(api, "export", lambda **k: pytest.fail("export started"))
    rc = main(["export", "--config", "tiny", "--dynamic-batch", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and err.count("\n") == 1, err
    assert "--dynamic-batch" in err and "--dynamic" in err and "--input-size" in err, err
    assert not out.exists()


def _foreign_onnx(path):
    """An ONNX of one Relu: a network not made by this project, no metadata of ours."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_foreign_onnx_is_one_line_under_every_backend(tmp_path, capsys, backend):
    """--backend openvino raised a bare ValueError traceback on an ONNX without our metadata."""
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip(backend)
    model = _foreign_onnx(tmp_path / "foreign.onnx")
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    rc = main(["run", str(model), "--source", str(image), "--backend", backend, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and "no higherhrnet_trt metadata" in lines[0] and "--config" in lines[0], err


def test_int8_export_refuses_an_empty_image_folder_before_loading_the_model(tmp_path, monkeypatch):
    """Issue 27 item 6: `export --precision int8 --images empty/` exported for minutes first."""
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.export import api

    def loaded(*a, **k):
        raise AssertionError("the model was loaded before the calibration images were checked")

    monkeypatch.setattr(api, "_load_model", loaded)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no images"):
        api.export(config="tiny", int8=True, images=str(empty), output=str(tmp_path / "t.onnx"))
