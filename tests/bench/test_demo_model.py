"""benchmarks.demo_model's plumbing (not the demo model's accuracy: tests/accuracy/test_demo_model.py):
one export serves several scene sets, and the result has the shape the model card and the CI
floor test read. Random demo-config weights, fp32 only, two scenes: seconds."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pycocotools")
pytest.importorskip("cv2")

from higherhrnet_trt.benchmarks import demo_model  # noqa: E402
from higherhrnet_trt.export.configs import CONFIGS  # noqa: E402
from higherhrnet_trt.export.model import HigherHRNet  # noqa: E402


def test_one_export_serves_every_scene_set(tmp_path, monkeypatch):
    torch.manual_seed(0)
    weights = tmp_path / "random_demo.pth"
    torch.save(HigherHRNet(CONFIGS["demo"]).state_dict(), weights)
    exports = []
    real_export = demo_model.export_variants

    def counting_export(*args, **kwargs):
        exports.append(args)
        return real_export(*args, **kwargs)

    monkeypatch.setattr(demo_model, "export_variants", counting_export)
    work = tmp_path / "work"
    variants = demo_model.prepare_variants(str(weights), str(work), num_calib=2, precisions=("fp32",),
                                           log=lambda *_: None)
    first = demo_model.measure(str(weights), num_scenes=2, seed=11, work_dir=str(work), variants=variants,
                               log=lambda *_: None)
    second = demo_model.measure(str(weights), num_scenes=2, seed=12, work_dir=str(work), variants=variants,
                                log=lambda *_: None)
    assert len(exports) == 1
    for res, seed in ((first, 11), (second, 12)):
        assert set(res["ap"]) == {"fp32"} and res["seed"] == seed and res["scenes"] == 2
        assert 0.0 <= res["ap"]["fp32"] <= 1.0 or res["ap"]["fp32"] == -1.0  # pycocotools: -1 = no match


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="demo weights not found"):
        demo_model.prepare_variants(str(tmp_path / "nope.pth"), str(tmp_path / "w"))


def test_cli_missing_weights_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        demo_model.main(["--weights", str(tmp_path / "nope.pth")])
    assert e.value.code == 2 and "demo weights not found" in capsys.readouterr().err
