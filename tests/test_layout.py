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
    "references": {"core", "decode", "engine", "export", "runtime"},
    "benchmarks": {"core", "decode", "kernels", "engine", "export", "runtime", "references"},
    # Integrations over the runtime (optional extras): only the commands import them.
    "serving": {"core", "decode", "kernels", "engine", "export", "runtime"},
    "ros": {"core", "decode", "kernels", "engine", "export", "runtime", "benchmarks"},
    # The commands, over everything they drive.
    "cli": {"core", "decode", "kernels", "engine", "export", "runtime", "serving", "benchmarks", "ros"},
}
#: Modules outside cli/ that may import argparse: developer tools run as ``python -m ...`` (the
#: README's table), not commands of ``higherhrnet-trt``. benchmarks/ and references/ are such tools
#: throughout. Anything else parses no command line: it takes typed options.
ARGPARSE_TOOLS = {"kernels/compile.py", "ros/benchmark.py", "ros/probe.py", "ros/build_msgs.py"}
ARGPARSE_TOOL_PARTS = {"benchmarks", "references"}


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


def imports_argparse(path: pathlib.Path) -> int:
    """The first line importing argparse in ``path`` (0: none)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
            return node.lineno
        if isinstance(node, ast.ImportFrom) and node.module == "argparse":
            return node.lineno
    return 0


def python_files(part: str) -> list[pathlib.Path]:
    return sorted((ROOT / part).rglob("*.py"))


def tracked_python_files() -> list[str]:
    """The repository's .py files as git tracks them (not the venvs); the package folders when
    this is not a git checkout."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    return tracked or [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                       if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]


#: Never imported at load by these parts (the runtime must run without torch, TensorRT or ONNX):
#: inside a function, or as ``core.lazy.lazy_import`` proxies.
NOT_AT_LOAD = {"torch", "onnx", "tensorrt", "tensorrt_rtx"}
NOT_AT_LOAD_PARTS = ("runtime/", "core/", "decode/")


def _is_project_import(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").startswith("higherhrnet_trt.")
    return isinstance(node, ast.Import) and any(a.name.startswith("higherhrnet_trt.") for a in node.names)


def _imported_roots(node: ast.AST) -> set[str]:
    if isinstance(node, ast.ImportFrom):
        return set() if node.level else {(node.module or "").split(".")[0]}
    return {a.name.split(".")[0] for a in node.names} if isinstance(node, ast.Import) else set()


def import_problems(rel: str, text: str) -> list[str]:
    """In-function project imports with no comment saying why (on the import's line, or on the
    line above it or above the block of imports it belongs to); for runtime/, core/ and decode/
    also module-level imports of NOT_AT_LOAD libraries."""
    lines = text.splitlines()
    tree = ast.parse(text)
    problems = []
    in_function: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function |= {id(n) for n in ast.walk(fn) if n is not fn}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if id(node) in in_function and _is_project_import(node):
            first = node.lineno - 1
            while first > 0 and lines[first - 1].strip().startswith(("from ", "import ")):
                first -= 1  # a comment above a block of imports covers the block
            said = "#" in lines[node.lineno - 1] or (first > 0 and lines[first - 1].strip().startswith("#"))
            if not said:
                problems.append(f"{rel}:{node.lineno} imports inside a function with no comment "
                                "saying why (move it to the top, or say why on the line above)")
        elif id(node) not in in_function and rel.startswith(NOT_AT_LOAD_PARTS):
            for lib in sorted(_imported_roots(node) & NOT_AT_LOAD):
                problems.append(f"{rel}:{node.lineno} imports {lib} at load (the runtime stays free of "
                                f"it: import it in the function, or {lib} = lazy_import({lib!r}))")
    return problems


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_before_it(part):
    bad = []
    for path in python_files(part):
        for other, line in imported_parts(path, part).items():
            if other not in ALLOWED[part]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {other}")
    assert not bad, "\n".join(bad)


def test_argparse_only_in_cli():
    """Commands (argparse) live in cli/; the runtime and the integrations take typed options."""
    bad = []
    for part in sorted(set(ALLOWED) - {"cli"} - ARGPARSE_TOOL_PARTS):
        for path in python_files(part):
            rel = path.relative_to(ROOT).as_posix()
            line = imports_argparse(path)
            if line and rel not in ARGPARSE_TOOLS:
                bad.append(f"{rel}:{line} imports argparse (commands go in cli/)")
    assert not bad, "\n".join(bad)


def test_imports_at_the_top_and_heavy_libraries_not_at_load():
    """Project imports sit at the top of each file; one inside a function says why (an import cycle,
    an optional extra, --help's speed). runtime/, core/ and decode/ never import torch, ONNX or
    TensorRT when they load."""
    bad = []
    for rel in tracked_python_files():
        if rel.startswith("tests/") or rel == "setup.py":
            continue
        bad += import_problems(rel, (ROOT / rel).read_text(encoding="utf-8"))
    assert not bad, "\n".join(bad)


def test_the_import_check_can_fail():
    quiet = "def f():\n    from .x import y\n"
    said = "def f():\n    # here: x imports this module\n    from .x import y\n    from .z import w\n"
    assert import_problems("decode/m.py", quiet) == [
        "decode/m.py:2 imports inside a function with no comment saying why (move it to the top, or "
        "say why on the line above)"]
    assert import_problems("decode/m.py", said) == []
    assert len(import_problems("runtime/m.py", "import torch\ntry:\n    import onnx\nexcept ImportError:\n"
                                               "    pass\n")) == 2
    assert import_problems("export/m.py", "import torch\n") == []  # export/ needs torch
    assert import_problems("core/m.py", "import onnxruntime\ndef f():\n    import torch\n") == []


def test_the_argparse_check_can_fail(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from argparse import ArgumentParser\n", encoding="utf-8")
    assert imports_argparse(path) == 2
    path.write_text("import argparsex\n", encoding="utf-8")
    assert imports_argparse(path) == 0


def _subparsers():
    import argparse

    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_flag_destinations_are_option_field_names():
    """Every flag of cli/flags.py's groups stores into its options field; every command that has
    one of those flags (by its spelling or a hidden old one) stores it there too."""
    import dataclasses

    from higherhrnet_trt.cli.flags import GROUPS, mismatched_names
    from higherhrnet_trt.runtime.options import flag

    assert mismatched_names() == []
    field_of = {}  # every spelling of a group's flag -> its field
    for cls, group in GROUPS.items():
        names = {f.name for f in dataclasses.fields(cls)}
        for name, f in group.items():
            assert name in names, f"{flag(name)}: not a field of {cls.__name__}"
            for spelling in (flag(name), *f.short, *f.aliases):
                field_of[spelling] = name
    bad = []
    for command, parser in _subparsers().items():
        for action in parser._actions:
            for spelling in action.option_strings:
                if spelling in field_of and action.dest != field_of[spelling]:
                    bad.append(f"{command} {spelling} -> {action.dest}, not {field_of[spelling]}")
    assert not bad, "\n".join(bad)


def test_the_options_commands_share_are_spelled_as_their_fields():
    """run, eval, bench and ros2 take their model, decode, source and output flags from the
    groups: each such flag is ``--`` + the field name with dashes (no second name for one thing)."""
    import dataclasses

    from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions, OutputOptions, SourceOptions

    fields = {f.name for cls in (ModelOptions, DecodeOptions, SourceOptions, OutputOptions)
              for f in dataclasses.fields(cls)}
    parsers = _subparsers()
    bad = []
    for command in ("run", "eval", "bench", "ros2", "ros2-echo"):
        for action in parsers[command]._actions:
            if action.dest in fields and action.option_strings and action.help != "==SUPPRESS==":
                long = [s for s in action.option_strings if s.startswith("--")]
                if long != ["--" + action.dest.replace("_", "-")]:
                    bad.append(f"{command} {long} -> {action.dest}")
    assert not bad, "\n".join(bad)


def test_old_flag_spellings_still_work_and_say_so(capsys):
    from higherhrnet_trt.cli import build_parser

    args = build_parser().parse_args(["ros2", "m.onnx", "--score-threshold", "0.3", "--kpt-threshold", "0.2"])
    assert (args.person_thr, args.kpt_thr) == (0.3, 0.2)
    err = capsys.readouterr().err
    assert "--score-threshold is deprecated" in err and "use --person-thr" in err
    assert "--score-threshold" not in build_parser().format_help()


def test_the_parts_checked_here_are_the_installed_ones():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    parts = next(ast.literal_eval(node.value) for node in ast.parse(setup).body  # may span lines
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PARTS")
    assert set(parts) == set(ALLOWED)


def test_every_command_names_calibration_images_the_same_way():
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    new = parser.parse_args(["export", "--precision", "int8", "--images", "d", "--num-images", "3",
                             "--method", "max"])
    old = parser.parse_args(["export", "--precision", "int8", "--data", "d", "--num-calib-images", "3",
                             "--calib-method", "max"])
    cal = parser.parse_args(["calibrate", "m.onnx", "--images", "d", "--num-images", "3", "--method", "max"])
    assert ((new.images, new.num_images, new.method) == (old.images, old.num_images, old.method)
            == (cal.images, cal.num_images, cal.method) == ("d", 3, "max"))


def test_export_and_build_name_the_precision_the_same_way(capsys):
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["export", "--precision", "fp16"]).precision == "fp16"
    assert parser.parse_args(["build", "m.onnx", "--precision", "int8"]).precision == "int8"
    assert parser.parse_args(["build", "m.onnx"]).precision == "fp32"
    assert parser.parse_args(["build", "m.onnx", "--fp16"]).precision == "fp16"  # the old switch
    assert "--fp16 is deprecated" in capsys.readouterr().err


def test_version_and_verbose_after_the_command(capsys):
    from higherhrnet_trt.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--version"])
    assert capsys.readouterr().out.startswith("higherhrnet-trt ")
    assert parser.parse_args(["info", "x.onnx", "--verbose"]).verbose is True
    assert parser.parse_args(["--verbose", "info", "x.onnx"]).verbose is True
    assert parser.parse_args(["info", "x.onnx"]).verbose is False


def test_public_names_import():
    from higherhrnet_trt.runtime import DecodeConfig, ModelMeta, Pipeline, Poses, maps_to_poses
    from higherhrnet_trt.runtime.pipeline import Poses as PipelinePoses

    assert PipelinePoses is Poses
    assert all(callable(x) for x in (DecodeConfig, ModelMeta, Pipeline, maps_to_poses))


def test_no_alias_modules_or_dead_names():
    """No module replaces itself in sys.modules (aliases of moved modules): one path per module."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True,
                             text=True).stdout.split()
    if not tracked:  # not a git checkout: the package folders themselves
        tracked = [str(p.relative_to(root)) for p in root.rglob("*.py")
                   if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    aliases = [name for name in tracked if name != "tests/test_layout.py"
               and "sys.modules[__name__] =" in (root / name).read_text(encoding="utf-8", errors="ignore")]
    assert aliases == []
