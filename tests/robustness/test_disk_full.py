"""A full disk (issue 27 item 2): every writing command ends in one line ("no space left on
DEVICE writing PATH"), exit 1, and leaves no partial or temporary file.

The disk is a real 300 KB tmpfs, filled up before the command runs: mounting needs root, so
without it (or where the kernel refuses) these tests skip and say why. The mapping itself is
also checked without a mount (OSError values made by hand).
"""

from __future__ import annotations

import errno
import os
import subprocess

import numpy as np
import pytest

from higherhrnet_trt.cli import main
from higherhrnet_trt.core.files import disk_error_message

cv2 = pytest.importorskip("cv2")


@pytest.fixture
def full_disk(tmp_path):
    """A 300 KB tmpfs with ``room`` bytes left free: call it with room, get the mount point."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the full-disk cases run as root only)")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def fill(room: int = 0):
        fd = os.open(mount / ".filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        if room:
            os.truncate(mount / ".filler", max(0, os.path.getsize(mount / ".filler") - room))
        return mount

    yield fill
    subprocess.run(["umount", "-l", str(mount)], check=False)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name != ".filler")


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8))
    return path


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left on"), (errno.EDQUOT, "disk quota exceeded on"),
    (errno.EROFS, "read-only file system on"), (errno.EFBIG, "file too large"),
])
def test_disk_errors_become_one_line_naming_the_file(tmp_path, code, words):
    e = OSError(code, os.strerror(code), str(tmp_path / "out.json"))
    message = disk_error_message(e)
    assert message.startswith(words) and str(tmp_path / "out.json") in message
    assert disk_error_message(OSError(errno.EACCES, "denied")) is None
    # shutil's copy names (source, destination): the message names where the space ran out
    copy = OSError(code, os.strerror(code), "/elsewhere/model.onnx", None, str(tmp_path / "out.onnx"))
    assert str(tmp_path / "out.onnx") in disk_error_message(copy)
    assert "/elsewhere" not in disk_error_message(copy)
    assert disk_error_message(ValueError("x")) is None


def test_main_prints_a_disk_error_in_one_line(monkeypatch, capsys):
    import importlib

    cli_main = importlib.import_module("higherhrnet_trt.cli.main")

    def fail(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/mnt/x/people.json")

    parser = cli_main.build_parser()
    args = parser.parse_args(["info", "m.onnx"])
    monkeypatch.setattr(cli_main, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    args.func = fail
    assert cli_main.main(["info", "m.onnx"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("error: no space left on /") and "writing /mnt/x/people.json" in line


def test_run_json_on_a_full_disk(tiny_onnx, image, full_disk, capsys):
    disk = full_disk(0)
    rc = main(["run", str(tiny_onnx), "--source", str(image), "--json", str(disk / "p.json"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    line = one_line(err)
    assert f"no space left on {disk}" in line and "p.json" in line, line
    assert "wrote" not in err and leftovers(disk) == []


@pytest.mark.parametrize("room", [20_000, 150_000], ids=["before-open", "while-writing"])
def test_run_save_dir_video_on_a_full_disk(tiny_onnx, full_disk, capsys, tmp_path, room):
    """Once: 'wrote .../v30.avi', exit 0, a 0-byte file (and .avi, not the documented .mp4)."""
    from tests.conftest import write_noise_video

    video = write_noise_video(tmp_path / "v30.avi", frames=30, size=(160, 120))
    disk = full_disk(room)
    rc = main(["run", str(tiny_onnx), "--source", str(video), "--save-dir", str(disk / "out"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "no space left on" in one_line(err) and "wrote" not in err, err
    assert [n for n in leftovers(disk) if n != "out"] == []


def test_run_save_dir_images_on_a_full_disk(tiny_onnx, image, full_disk, capsys):
    disk = full_disk(0)
    rc = main(["run", str(tiny_onnx), "--source", str(image), "--save-dir", str(disk / "out"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "no space left on" in one_line(err)
    assert [n for n in leftovers(disk) if n != "out"] == []


def test_bench_json_on_a_full_disk(tiny_onnx, full_disk, capsys):
    disk = full_disk(0)
    rc = main(["bench", str(tiny_onnx), "--warmup", "0", "--iters", "1", "--threads", "1",
               "--json", str(disk / "b.json"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "no space left on" in one_line(err) and leftovers(disk) == []


def test_triton_repo_on_a_full_disk(demo_onnx, full_disk, capsys):
    pytest.importorskip("onnxruntime")
    disk = full_disk(50_000)  # room for the configs, not for the 5 MB model copy
    rc = main(["triton-repo", str(demo_onnx), "-o", str(disk / "repo")])
    err = capsys.readouterr().err
    assert rc == 1, err
    line = one_line(err)
    # once "no space left on / writing <the input model>": the copy's source, not its destination
    assert f"no space left on {disk} writing {disk}/repo/" in line, line
    assert leftovers(disk) == []  # the -o folder it made is removed with the rest


def test_convert_on_a_full_disk(tiny_onnx, full_disk, capsys):
    pytest.importorskip("onnx")
    disk = full_disk(0)
    rc = main(["convert", str(tiny_onnx), "-o", str(disk / "t.fp16.onnx")])
    err = capsys.readouterr().err
    assert rc == 1, err
    line = one_line(err)
    # once "no space left on / writing /tmp/.../candidate.onnx" (the copy's source)
    assert f"no space left on {disk} writing {disk}/t.fp16.onnx" in line, line
    assert leftovers(disk) == []


def test_export_on_a_full_disk(full_disk, capsys):
    pytest.importorskip("torch")
    disk = full_disk(0)
    rc = main(["export", "--config", "tiny", "--input-size", "128", "--no-check", "-o", str(disk / "t.onnx")])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert f"no space left on {disk} writing {disk}/t.onnx" in one_line(err)
    assert leftovers(disk) == []
