"""No command destroys a file: outputs never land on an input, never on each other, and appear
under their name only complete (issue 15, item 4). One test per defect found, plus the helpers.

The tiny network has random weights: these tests check files, exit codes and messages.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import Output, atomic_open, atomic_path, check_outputs

cv2 = pytest.importorskip("cv2")


def image(path, seed=0, size=(128, 96)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
    return path


def copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


def one_line_error(capsys, *argv) -> str:
    """Run the CLI, expect exit 1 with a single 'error: ...' line; returns it."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


# -- run / eval --json ------------------------------------------------------------------------------


def test_run_json_onto_the_input_image_is_refused(tiny_onnx, tmp_path, capsys):
    src = image(tmp_path / "x.jpg")
    before = src.read_bytes()
    err = one_line_error(capsys, "run", tiny_onnx, "--source", src, "--json", src)
    assert "--json" in err and ".json" in err
    assert src.read_bytes() == before


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_run_json_onto_the_model_by_another_name_is_refused(tiny_onnx, tmp_path, capsys, link):
    """A name that passes the .json check but is the model (a symbolic or hard link)."""
    model = copy(tiny_onnx, tmp_path / "m.onnx")
    before = model.read_bytes()
    link(model, tmp_path / "results.json")
    err = one_line_error(capsys, "run", model, "--source", image(tmp_path / "in" / "a.jpg"), "--json",
                         tmp_path / "sub" / ".." / "results.json")
    assert "is the model" in err and "give --json another file name" in err
    assert model.read_bytes() == before


def test_run_json_ending_in_onnx_is_refused(tiny_onnx, tmp_path, capsys):
    model = copy(tiny_onnx, tmp_path / "m.onnx")
    before = model.read_bytes()
    err = one_line_error(capsys, "run", model, "--source", image(tmp_path / "a.jpg"), "--json", model)
    assert "must end in .json" in err
    assert model.read_bytes() == before


def test_eval_json_onto_the_annotations_is_refused(tiny_onnx, tmp_path, capsys):
    ann = tmp_path / "ann.json"
    ann.write_text('{"images": [], "annotations": [], "categories": []}')
    before = ann.read_bytes()
    err = one_line_error(capsys, "eval", tiny_onnx, "--ann", ann, "--images", tmp_path, "--json", ann)
    assert "is the annotation file" in err
    assert ann.read_bytes() == before


# -- glob / folder outputs --------------------------------------------------------------------------


def test_glob_whose_files_share_a_name_keeps_every_result(tiny_onnx, tmp_path, capsys):
    image(tmp_path / "a" / "x.jpg", seed=1)
    image(tmp_path / "b" / "x.jpg", seed=2)
    out = tmp_path / "out"
    rc = main(["run", str(tiny_onnx), "--source", str(tmp_path / "*" / "x.jpg"), "--save-dir", str(out),
               "--json", str(out / "people.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "wrote 2 images" in err
    a, b = cv2.imread(str(out / "a" / "x.jpg")), cv2.imread(str(out / "b" / "x.jpg"))
    assert a is not None and b is not None and not np.array_equal(a, b)
    names = {r["file_name"] for r in json.loads((out / "people.json").read_text())}
    assert names <= {"a/x.jpg", "b/x.jpg"} and names


def test_coco_numbers_shared_across_folders_do_not_merge_images(tiny_onnx, tmp_path, capsys):
    image(tmp_path / "a" / "000000000001.jpg", seed=1)
    image(tmp_path / "b" / "000000000001.jpg", seed=2)
    out = tmp_path / "r.json"
    rc = main(["run", str(tiny_onnx), "--source", str(tmp_path / "*" / "*.jpg"), "--json", str(out),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    records = json.loads(out.read_text())
    assert records
    by_id = {}
    for r in records:
        by_id.setdefault(r["image_id"], set()).add(r["file_name"])
    assert all(len(files) == 1 for files in by_id.values()), by_id  # one image per id
    assert "image_id is the frame index" in err


def test_save_dir_that_would_overwrite_inputs_in_sub_folders_is_refused(tiny_onnx, tmp_path, capsys):
    src = image(tmp_path / "a" / "x.jpg", seed=1)
    image(tmp_path / "b" / "x.jpg", seed=2)
    before = src.read_bytes()
    err = one_line_error(capsys, "run", tiny_onnx, "--source", tmp_path / "*" / "x.jpg", "--save-dir",
                         tmp_path)
    assert "is the input image" in err and "choose another --save-dir" in err
    assert src.read_bytes() == before


# -- convert / calibrate ----------------------------------------------------------------------------


def test_convert_onto_its_input_is_refused(tiny_onnx, tmp_path, capsys):
    model = copy(tiny_onnx, tmp_path / "x.onnx")
    before = model.read_bytes()
    err = one_line_error(capsys, "convert", model, "-o", model)
    assert "would destroy" in err and "x.fp16.onnx" in err
    assert model.read_bytes() == before


def test_calibrate_onto_its_input_is_refused(tiny_onnx, tmp_path, capsys):
    model = copy(tiny_onnx, tmp_path / "x.onnx")
    before = model.read_bytes()
    image(tmp_path / "imgs" / "a.jpg")
    err = one_line_error(capsys, "calibrate", model, "--images", tmp_path / "imgs", "-o",
                         tmp_path / "." / "x.onnx")
    assert "would destroy" in err and "x.int8.onnx" in err
    assert model.read_bytes() == before


def test_calibrate_to_an_engine_name_is_refused(tiny_onnx, tmp_path, capsys):
    image(tmp_path / "imgs" / "a.jpg")
    err = one_line_error(capsys, "calibrate", tiny_onnx, "--images", tmp_path / "imgs", "-o",
                         tmp_path / "x.engine")
    assert "must end in .onnx" in err
    assert f"higherhrnet-trt build {tmp_path / 'x.int8.onnx'} -o {tmp_path / 'x.engine'}" in err
    assert not (tmp_path / "x.engine").exists()


# -- the helpers ------------------------------------------------------------------------------------


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(path)) as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    with atomic_path(str(tmp_path / "sub" / "p.png")) as tmp:
        assert tmp.endswith(".png") and os.path.dirname(tmp) == str(tmp_path / "sub")
        open(tmp, "w").write("png")
    assert (tmp_path / "sub" / "p.png").read_text() == "png"
    assert os.listdir(tmp_path / "sub") == ["p.png"]


def test_check_outputs_knows_a_file_by_any_name(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_text("x")
    os.link(model, tmp_path / "hard.onnx")
    with pytest.raises(UserError, match="is the model"):
        check_outputs([Output("-o", str(tmp_path / "hard.onnx"), "fix")], [("the model", str(model))])
    with pytest.raises(UserError, match="one would overwrite the other"):
        check_outputs([Output("--json", str(tmp_path / "a.json"), "fix"),
                       Output("--plot", str(tmp_path / "." / "a.json"), "fix")], [])
    check_outputs([Output("--json", None, "fix"), Output("-o", str(tmp_path / "new.onnx"), "fix")],
                  [("the model", str(model))])
