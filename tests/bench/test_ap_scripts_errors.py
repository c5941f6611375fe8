"""Benchmark scripts: a refusal from the product (UserError) inside their work is one line on
stderr and exit status 1, as the CLI gives it, not a traceback (demo_model and real_people catch it
themselves; the other scripts' ``__main__`` goes through core.errors.script_exit)."""

import pytest

pytest.importorskip("torch")  # both scripts import the export chain at load
pytest.importorskip("cv2")

from higherhrnet_trt.core.errors import UserError  # noqa: E402


def _refuse(*args, **kwargs):
    raise UserError("target cpu: a refusal made up for this test")


def test_demo_model_refusal_is_one_line(monkeypatch, capsys):
    from higherhrnet_trt.benchmarks import demo_model

    monkeypatch.setattr(demo_model, "prepare_variants", _refuse)
    assert demo_model.main(["--scenes", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: target cpu: a refusal made up for this test"


def test_real_people_refusal_is_one_line(monkeypatch, capsys):
    from higherhrnet_trt.benchmarks import real_people

    if real_people.distribution_missing():
        pytest.skip(real_people.distribution_missing())
    monkeypatch.setattr(real_people, "export_variants", _refuse)
    assert real_people.main(["--scale", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: target cpu: a refusal made up for this test"


def test_script_exit_says_a_user_error_in_one_line(capsys):
    from higherhrnet_trt.core.errors import script_exit

    assert script_exit(lambda: _refuse()) == 1
    assert capsys.readouterr().err == "error: target cpu: a refusal made up for this test\n"
    assert script_exit(lambda: None) == 0 and script_exit(lambda: 3) == 3

    def stopped():
        raise KeyboardInterrupt

    assert script_exit(stopped) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("text", [None, "{not json"])
def test_joint_spread_bad_file_is_one_line_and_status_1(tmp_path, text):
    import subprocess
    import sys

    path = tmp_path / "people.json"
    if text is not None:
        path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "higherhrnet_trt.benchmarks.joint_spread", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and "run --json" in lines[0]


def test_frame_memory_missing_model_is_one_line_and_status_1(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "none.onnx"
    done = subprocess.run([sys.executable, "-m", "higherhrnet_trt.benchmarks.frame_memory", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: model file not found: {missing} (export one with "
                                   "'higherhrnet-trt export --dynamic', or run make demo)")
