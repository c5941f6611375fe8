"""The Jetson install path (README, Install; issue 26 item 2): JetPack 6.1 / 6.2 only, and
requirements/jetson-constraints.txt keeps numpy < 2 and never installs OpenCV or TensorRT wheels
over JetPack's, as pip's resolver sees it for Python 3.10 on aarch64 against the registry."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.engine.jetson import check_jetson, l4t_version

REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "requirements" / "jetson-constraints.txt"
#: The first line of /etc/nv_tegra_release on JetPack 6.2 and 6.0 (NVIDIA's L4T R36.4.3, R36.3).
JP62 = "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8\n"
JP60 = "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: Fri Jul 19\n"
JP512 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1\n"


def release(tmp_path, text: str) -> str:
    path = tmp_path / "nv_tegra_release"
    path.write_text(text)
    return str(path)


def test_l4t_version_parses_the_release_line():
    assert l4t_version(JP62) == (36, 4, 3) and l4t_version(JP60) == (36, 3, 0)
    assert l4t_version("not a release file") is None


def test_jetpack_6_1_and_6_2_pass_and_a_machine_without_l4t_is_not_checked(tmp_path):
    check_jetson("10.3.0.30", release(tmp_path, JP62))
    check_jetson(None, release(tmp_path, JP62))
    check_jetson("8.6.2", str(tmp_path / "missing"))  # not a Jetson: a desktop's TensorRT


@pytest.mark.parametrize("text, trt, found", [
    (JP60, "8.6.2.3", "JetPack 6.0 (L4T R36.3.0) with TensorRT 8.6.2.3 found"),
    (JP512, "8.5.2.2", "JetPack 5.1.2 (L4T R35.4.1) with TensorRT 8.5.2.2 found"),
    (JP62, "10.2.0", "JetPack 6.1 or 6.2 (L4T R36.4.3) with TensorRT 10.2.0 found"),
])
def test_older_jetpack_or_tensorrt_is_one_line_naming_them(tmp_path, text, trt, found):
    with pytest.raises(UserError) as e:
        check_jetson(trt, release(tmp_path, text))
    message = str(e.value)
    assert message.startswith(found + ": higherhrnet-trt needs JetPack 6.1 or 6.2") and "\n" not in message


def runtime_requirements() -> list[str]:
    """setup.py's install_requires, read from its source (what 'pip install -e .' asks for)."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return [ast.literal_eval(e) for e in node.value.elts]
    raise AssertionError("setup.py has no install_requires")


#: JetPack 6 is Ubuntu 22.04 (glibc 2.35): wheels for manylinux 2.17 .. 2.35 install there.
PLATFORMS = [f"manylinux_2_{v}_aarch64" for v in range(17, 36)] + ["manylinux2014_aarch64"]


def resolve(tmp_path, requirements: list[str], constraints: bool) -> subprocess.CompletedProcess:
    """pip's resolver, nothing installed: Python 3.10 on aarch64, binary wheels only."""
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
           "--report", str(tmp_path / "report.json"), "--target", str(tmp_path / "target"),
           "--python-version", "3.10", "--only-binary=:all:"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    if constraints:
        cmd += ["-c", str(CONSTRAINTS)]
    return subprocess.run(cmd + requirements, capture_output=True, text=True, timeout=300)


def resolved(tmp_path) -> dict[str, str]:
    report = json.loads((tmp_path / "report.json").read_text())
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}


def test_jetson_constraints_resolve_for_python_3_10_on_aarch64(tmp_path):
    """Without the constraints the runtime resolves numpy 2 (what broke JetPack's OpenCV); with
    them numpy 1.x, and no OpenCV or TensorRT wheel; a request for one fails to resolve."""
    wanted = runtime_requirements()
    bare = resolve(tmp_path, wanted, constraints=False)
    assert bare.returncode == 0, bare.stderr[-2000:]
    assert int(resolved(tmp_path)["numpy"].split(".")[0]) >= 2

    kept = resolve(tmp_path, wanted, constraints=True)
    assert kept.returncode == 0, kept.stderr[-2000:]
    got = resolved(tmp_path)
    assert int(got["numpy"].split(".")[0]) == 1 and "onnxruntime" in got
    assert not [n for n in got if n.startswith(("opencv", "tensorrt"))]

    refused = resolve(tmp_path, wanted + ["opencv-python-headless"], constraints=True)
    assert refused.returncode != 0 and "opencv-python-headless" in refused.stderr
