"""Hostile image files (issue 27 item 3): names that are not UTF-8, files that are not regular,
small files that decode to huge images. Every reader (run's sources, calibration data, eval)
goes through core.image_io; the sizes below are hand-made headers, not what the code computes."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from higherhrnet_trt.cli import main  # noqa: E402
from higherhrnet_trt.core import image_io  # noqa: E402
from higherhrnet_trt.core.image_io import MAX_IMAGE_PIXELS, ImageReadError, header_size, read_image  # noqa: E402

NON_UTF8 = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 'cafe': not UTF-8, a surrogate escape in Python


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w: int, h: int, idat: bytes) -> bytes:
    """A PNG of w x h, 8-bit RGB, with the given compressed IDAT stream."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_header_size_matches_what_opencv_decodes(ext):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    ok, data = cv2.imencode(ext, image)
    assert ok
    assert header_size(data.tobytes()) == (53, 37)  # (W, H) of the array made above
    assert cv2.imdecode(data, cv2.IMREAD_COLOR).shape == (37, 53, 3)


def test_a_progressive_jpeg_header_is_read_too():
    ok, data = cv2.imencode(".jpg", np.zeros((70, 90, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok and header_size(data.tobytes()) == (90, 70)


def test_a_huge_image_is_refused_by_its_header_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(png(30_000, 30_000, zlib.compress(b"")))
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(1))
    with pytest.raises(ImageReadError, match="30000x30000 pixels"):
        read_image(str(path))
    assert not decoded
    assert 30_000 * 30_000 > MAX_IMAGE_PIXELS


def test_a_compressed_bomb_in_a_folder_is_skipped_and_named(tmp_path, capsys, tiny_onnx):
    """A 20,000 x 6,000 black PNG (120 Mpx, a few hundred KB) beside a good image."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((96, 128, 3), np.uint8))
    rows = b"\x00" * (1 + 20_000 * 3)  # filter byte + one black row
    (folder / "b.png").write_bytes(png(20_000, 6_000, zlib.compress(rows * 6_000, 9)))
    assert (folder / "b.png").stat().st_size < 1_000_000
    rc = main(["run", str(tiny_onnx), "--source", str(folder), "--json", str(tmp_path / "p.json"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err
    assert "20000x6000 pixels" in err and "b.png" in err


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder.jpg"])
def test_non_regular_files_are_refused(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "x.jpg"
        os.mkfifo(path)  # a reader would block forever
    elif special == "folder.jpg":
        path = tmp_path / special
        path.mkdir()
    else:
        path = special
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(str(path))


def test_run_on_dev_zero_says_what_it_is(tiny_onnx, capsys):
    rc = main(["run", str(tiny_onnx), "--source", "/dev/zero", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "no such file" not in err and "not a file" in err and err.count("\n") == 1, err


def test_a_name_that_is_not_utf8_is_read(tmp_path):
    path = os.path.join(str(tmp_path), NON_UTF8)
    ok, data = cv2.imencode(".jpg", np.full((20, 30, 3), 128, np.uint8))
    with open(path, "wb") as f:
        f.write(data.tobytes())
    assert read_image(path).shape == (20, 30, 3)
    with pytest.raises(ImageReadError) as e:
        read_image(os.path.join(str(tmp_path), os.fsdecode(b"missing\xff.jpg")))
    assert "\\xff" in str(e.value)
    str(e.value).encode("utf-8")  # printable: no lone surrogates


def test_run_and_calibration_data_read_a_name_that_is_not_utf8(tiny_onnx, tmp_path, capsys):
    """run once segfaulted here (cv2.imread of a surrogate-escaped path); calibrate raised
    UnicodeEncodeError."""
    from higherhrnet_trt.export.calib_data import read_image as calib_read

    folder = tmp_path / "imgs"
    folder.mkdir()
    path = os.path.join(str(folder), NON_UTF8)
    cv2.imwrite(str(folder / "plain.jpg"), np.zeros((96, 128, 3), np.uint8))
    with open(path, "wb") as f:
        f.write(cv2.imencode(".jpg", np.zeros((96, 128, 3), np.uint8))[1].tobytes())
    image, why = calib_read(path)
    assert image is not None and why == ""
    out = tmp_path / "people.json"
    rc = main(["run", str(tiny_onnx), "--source", str(folder), "--json", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and "cannot read" not in err, err
    import json

    names = {r["file_name"] for r in json.loads(out.read_text(encoding="utf-8"))}
    assert len(names) == 2 and "plain.jpg" in names, names  # both images ran


def test_a_model_whose_name_is_not_utf8_loads_without_re_export_advice(tiny_onnx, tmp_path, capsys):
    model = os.path.join(str(tmp_path), os.fsdecode(b"mod\xe8le.onnx"))
    with open(model, "wb") as f:
        f.write(tiny_onnx.read_bytes())
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((96, 128, 3), np.uint8))
    rc = main(["run", model, "--source", str(image), "--json", str(tmp_path / "p.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "re-export" not in err and "Traceback" not in err, err


def test_every_image_reader_goes_through_image_io():
    """No cv2.imread left in the product's readers (sources, calibration data, eval, bench)."""
    root = os.path.dirname(os.path.dirname(image_io.__file__))
    for rel in ("runtime/sources.py", "runtime/evaluate.py", "export/calib_data.py", "benchmarks/bench.py"):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            assert "imread(" not in f.read(), rel
