"""The package layout of issue 14, checked from the source: data flows one way.

A part may import the parts listed before it in LAYERS and never one after it (function-level
imports count: a lazy import is still a dependency). The references (training, scenes) are never
imported by the product. The expectation is written here by hand, not derived from the code.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Each part with the parts it may import. core imports nothing of ours.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "decode": {"core"},
    "kernels": {"core", "decode"},
    "engine": {"core"},
    "export": {"core", "engine"},
    "runtime": {"core", "decode", "kernels", "engine", "export"},
    "cli": {"core", "decode", "kernels", "engine", "export", "runtime"},
    "benchmarks": {"core", "decode", "kernels", "engine", "export", "runtime", "cli", "references"},
    "references": {"core", "decode", "engine", "export", "runtime"},
    # Integrations over the runtime (optional extras): nothing else imports them.
    "serving": {"core", "decode", "kernels", "engine", "export", "runtime", "cli"},
    "ros": {"core", "decode", "kernels", "engine", "export", "runtime", "cli", "benchmarks"},
}


def imported_parts(path: pathlib.Path, part: str) -> dict[str, int]:
    """{other part: first line} for every import of another higherhrnet_trt part in ``path``."""
    rel = path.relative_to(ROOT / part).with_suffix("").parts
    package = [part, *rel[:-1]] if rel[-1] != "__init__" else [part, *rel[:-1]]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                names.append(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("higherhrnet_trt."):
                names.append(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            names += [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("higherhrnet_trt.")]
        for name in names:
            other = name.split(".")[0]
            if other != part:
                found.setdefault(other, node.lineno)
    return found


def python_files(part: str) -> list[pathlib.Path]:
    return sorted((ROOT / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_before_it(part):
    bad = []
    for path in python_files(part):
        for other, line in imported_parts(path, part).items():
            if other not in ALLOWED[part]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {other}")
    assert not bad, "\n".join(bad)


def test_the_parts_checked_here_are_the_installed_ones():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    parts = next(ast.literal_eval(node.value) for node in ast.parse(setup).body  # may span lines
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PARTS")
    assert set(parts) == set(ALLOWED)


def test_every_command_names_calibration_images_the_same_way():
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    new = parser.parse_args(["export", "--precision", "int8", "--images", "d", "--num-images", "3"])
    old = parser.parse_args(["export", "--precision", "int8", "--data", "d", "--num-calib-images", "3"])
    assert (new.data, new.num_calib_images) == (old.data, old.num_calib_images) == ("d", 3)
    cal = parser.parse_args(["calibrate", "m.onnx", "--images", "d", "--num-images", "3"])
    assert (cal.images, cal.num_images) == ("d", 3)


def test_version_and_verbose_after_the_command(capsys):
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert capsys.readouterr().out.startswith("higherhrnet-trt ")
    assert parser.parse_args(["info", "x.onnx", "--verbose"]).verbose is True
    assert parser.parse_args(["--verbose", "info", "x.onnx"]).verbose is True
    assert parser.parse_args(["info", "x.onnx"]).verbose is False


@pytest.mark.parametrize("old,new", [
    ("higherhrnet_trt.runtime.errors", "higherhrnet_trt.core.errors"),
    ("higherhrnet_trt.runtime.metadata", "higherhrnet_trt.core.metadata"),
    ("higherhrnet_trt.runtime.datasets", "higherhrnet_trt.core.keypoints"),
    ("higherhrnet_trt.runtime.preprocess", "higherhrnet_trt.core.preprocess"),
    ("higherhrnet_trt.runtime.decode", "higherhrnet_trt.decode"),
])
def test_module_paths_of_0_1_are_the_moved_modules(old, new):
    """Code written against 0.1 imports the same objects (one UserError class, not two)."""
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)


def test_public_names_of_0_1_still_import():
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.runtime import DecodeConfig, ModelMeta, Pipeline, Poses, maps_to_poses
    from higherhrnet_trt.runtime.errors import UserError as OldUserError
    from higherhrnet_trt.runtime.pipeline import Poses as PipelinePoses

    assert OldUserError is UserError and PipelinePoses is Poses
    assert all(callable(x) for x in (DecodeConfig, ModelMeta, Pipeline, maps_to_poses))
