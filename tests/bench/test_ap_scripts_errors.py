"""benchmarks/demo_model and real_people: a refusal from the product (UserError) inside their work
is one line on stderr and exit status 1, as the CLI gives it, not a traceback."""

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
