"""benchmarks/gpu_check.sh, the prepared run for a lent GPU machine: it must at least parse and
explain itself here, since the GPU machine is lent rarely and each minute there counts. (Its steps
ran end to end on the CPU with TRAIN_DEVICE=cpu and tiny sizes when it was written; see its header.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, timeout=60).returncode == 0


def test_help_explains_every_setting():
    res = _run("--help")
    assert res.returncode == 0
    for word in ("--fetch", "OUT", "DEADLINE_S", "TRAIN_MINUTES", "INIT_FROM", "SOAK_FRAMES", "carry"):
        assert word in res.stdout


def test_unknown_argument_is_one_line():
    res = _run("--bogus")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "--help" in res.stderr
