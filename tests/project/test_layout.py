"""The package layout of issue 14, checked from the source: data flows one way.

A part may import the parts listed before it in LAYERS and never one after it (function-level
imports count: a lazy import is still a dependency). The expectation is written here by hand, not
derived from the code. references/ (the demo network's trainer, the silver labels) is no part: its
scripts are not installed, nothing installed imports them, and they use the public API only
(REFERENCES_MAY_IMPORT), as torchvision's references/ do.

argparse: the commands of ``higherhrnet-trt`` live in cli/, and argparse is imported nowhere else,
with one exception: a stand-alone developer script, i.e. a module that runs its own ``main`` under
``if __name__ == "__main__":`` (``python -m higherhrnet_trt.benchmarks.soak``, the README's table of
developer tools) and sits in benchmarks/ or references/ or is one of ARGPARSE_TOOLS below. The
library modules of those parts (benchmarks/bench.py, which ``bench`` drives; ros/node.py, which
``ros2`` runs) take typed options like the rest; a mention in a docstring (runtime/options.py) is
not an import.

Flags and options: where a command turns its namespace into typed options objects
(``options(args, Cls)`` / ``options_from(Cls, args)``, runtime/options.py), the objects are built by
field name, so a flag stored under another name would be dropped without a word. Every flag of such
a command therefore stores into a field of one of those classes or is read by name in its module,
and every ``field=args.dest`` handed to a dataclass in cli/ has ``dest == field`` (``not
args.no_X`` for ``X``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Each part with the parts it may import. core imports nothing of ours.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "decode": {"core"},
    "kernels": {"core", "decode"},
    "engine": {"core"},
    "export": {"core", "engine"},
    "runtime": {"core", "decode", "kernels", "engine", "export"},
    # The benchmarks and the generated scenes (scenes.py: data of tests and benchmarks).
    "benchmarks": {"core", "decode", "kernels", "engine", "export", "runtime"},
    # Integrations over the runtime (optional extras): only the commands import them.
    "serving": {"core", "decode", "kernels", "engine", "runtime"},
    "ros": {"core", "decode", "kernels", "engine", "export", "runtime", "benchmarks"},
    # The commands, over everything they drive.
    "cli": {"core", "decode", "kernels", "engine", "export", "runtime", "serving", "benchmarks", "ros"},
}
#: Stand-alone developer scripts outside cli/, benchmarks/ and references/ that may import argparse
#: (run as ``python -m ...``, the README's table; not commands of ``higherhrnet-trt``).
ARGPARSE_TOOLS = {"kernels/compile.py", "ros/benchmark.py", "ros/probe.py", "ros/build_msgs.py"}
#: Folders whose stand-alone scripts (a ``__main__`` block) may import argparse.
ARGPARSE_TOOL_PARTS = {"benchmarks", "references"}
#: The scripts of references/ (not installed) use the public API: the core's modules, and the names
#: that these packages' ``__all__`` lists.
REFERENCES_MAY_IMPORT = ("higherhrnet_trt.export", "higherhrnet_trt.runtime")


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


def is_script(path: pathlib.Path) -> bool:
    """``path`` runs something under ``if __name__ == "__main__":`` (a stand-alone script)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("__name__ == '__main__'",
                                                                   "'__main__' == __name__"):
            return True
    return False


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
    """Commands (argparse) live in cli/; elsewhere only stand-alone developer scripts parse a
    command line (the rule in this module's docstring); the rest take typed options."""
    bad = []
    for part in sorted(set(ALLOWED) - {"cli"} | {"references"}):
        for path in python_files(part):
            rel = path.relative_to(ROOT).as_posix()
            line = imports_argparse(path)
            if not line:
                continue
            if not (part in ARGPARSE_TOOL_PARTS or rel in ARGPARSE_TOOLS):
                bad.append(f"{rel}:{line} imports argparse (commands go in cli/)")
            elif not is_script(path):
                bad.append(f"{rel}:{line} imports argparse but is no stand-alone script (no __main__ "
                           "block): a library module takes typed options")
    for rel in sorted(ARGPARSE_TOOLS):
        assert (ROOT / rel).is_file(), f"{rel}: listed in ARGPARSE_TOOLS, not in the repository"
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


def _script_names() -> set[str]:
    """The module names of references/' scripts (they import each other by these names)."""
    return {p.stem for p in (ROOT / "references").glob("*.py")}


def test_references_are_scripts_nothing_installed_imports():
    """references/ is no package (no __init__.py, not in setup.py's PARTS) and no installed part
    imports it: neither ``higherhrnet_trt.references`` nor a script's module by its plain name."""
    assert (ROOT / "references" / "train.py").is_file()
    assert not (ROOT / "references" / "__init__.py").exists()
    scripts = _script_names()
    bad = []
    for part in sorted(ALLOWED):
        for path in python_files(part):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.ImportFrom) and not node.level:
                    names.append(node.module or "")
                elif isinstance(node, ast.Import):
                    names += [a.name for a in node.names]
                for name in names:
                    if name.startswith("higherhrnet_trt.references") or name.split(".")[0] in scripts:
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)


def test_references_use_the_public_api():
    """The trainer's scripts import the core's modules and the public names of export and runtime
    (their ``__all__``), never a module inside another part."""
    import importlib

    bad = []
    for path in python_files("references"):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                bad.append(f"{rel}:{node.lineno} relative import (a script imports siblings by name)")
            if not _is_project_import(node):
                continue
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if module.startswith("higherhrnet_trt.core."):
                continue
            if module not in REFERENCES_MAY_IMPORT or isinstance(node, ast.Import):
                bad.append(f"{rel}:{node.lineno} imports {module} (not the public API)")
                continue
            public = set(importlib.import_module(module).__all__)
            bad += [f"{rel}:{node.lineno} imports {a.name} from {module}, not in its __all__"
                    for a in node.names if a.name not in public]
    assert not bad, "\n".join(bad)


#: Scripts run with another project's Python, where higherhrnet_trt is not installed: MediaPipe's
#: venv (references/silver.py's docstring says how it is made).
FOREIGN_VENV_SCRIPTS = ("references/silver.py",)


@pytest.mark.parametrize("rel", FOREIGN_VENV_SCRIPTS)
def test_scripts_for_another_venv_import_nothing_of_ours(rel):
    tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
    ours = [n.lineno for n in ast.walk(tree)
            if _is_project_import(n) or "higherhrnet_trt" in _imported_roots(n)]
    assert not ours, f"{rel}:{ours[0]} imports higherhrnet_trt, which MediaPipe's venv does not have"


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
    assert imports_argparse(path) == 2 and not is_script(path)
    path.write_text("import argparsex\n", encoding="utf-8")
    assert imports_argparse(path) == 0
    path.write_text('"""Built from an argparse namespace."""\nimport os\n', encoding="utf-8")
    assert imports_argparse(path) == 0  # a docstring that names argparse (runtime/options.py)
    path.write_text("import argparse\n\nif __name__ == '__main__':\n    pass\n", encoding="utf-8")
    assert imports_argparse(path) == 1 and is_script(path)


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


def _module_tree(module: str) -> ast.Module:
    import importlib

    return ast.parse(pathlib.Path(importlib.import_module(module).__file__).read_text(encoding="utf-8"))


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """{name: module} for every ``from MODULE import name`` in ``tree`` (at any depth)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update({a.asname or a.name: node.module for a in node.names})
    return names


def _options_classes(tree: ast.Module, module: str) -> set[type]:
    """The option classes a command module builds from its namespace: ``options(args, Cls)`` and
    ``options_from(Cls, args)``."""
    import importlib

    mod = importlib.import_module(module)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2:
            cls = {"options": node.args[1], "options_from": node.args[0]}.get(node.func.id)
            if isinstance(cls, ast.Name):
                found.add(getattr(mod, cls.id))
    return found


def _args_read(tree: ast.Module) -> set[str]:
    """Namespace attributes read by name: ``args.X`` and ``getattr(args, "X", ...)``."""
    read = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args":
            read.add(node.attr)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
            read.add(node.args[1].value)
    return read


def test_no_flag_is_lost_on_the_way_to_its_options():
    """A command that builds typed options from its namespace reads them by field name: each of its
    flags stores into a field of one of those classes or is read by name in its module (a flag
    stored under another name, e.g. --kpt-threshold -> kpt_threshold, would silently do nothing)."""
    import argparse
    import dataclasses

    from higherhrnet_trt.cli import build_parser

    top = {a.dest for a in build_parser()._actions}  # --help, --version, --verbose, the command
    bad, checked = [], 0
    for command, parser in _subparsers().items():
        module = parser.get_default("func").__module__
        tree = _module_tree(module)
        classes = _options_classes(tree, module)
        if not classes:
            continue
        checked += 1
        fields = {f.name for cls in classes for f in dataclasses.fields(cls)}
        read = _args_read(tree)
        for action in parser._actions:
            if action.dest in top or action.dest == argparse.SUPPRESS:
                continue
            if action.dest not in fields and action.dest not in read:
                names = "/".join(action.option_strings) or action.dest
                bad.append(f"{command} {names} -> {action.dest}: not a field of "
                           f"{', '.join(sorted(c.__name__ for c in classes))} and never read")
    assert checked >= 5  # export, calibrate, build, run, eval, bench, ros2 ...
    assert not bad, "\n".join(bad)


def test_dataclasses_in_cli_get_each_flag_under_its_field_name():
    """``Settings(field=args.dest)`` in cli/: the dataclass field and the flag's destination are one
    name (``progress=not args.no_progress`` is the one spelling of a negated switch)."""
    import dataclasses
    import importlib

    from higherhrnet_trt.cli import COMMAND_MODULES

    bad, seen = [], 0
    for module in COMMAND_MODULES:
        tree = _module_tree(module)
        imported = _imported_names(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in imported):
                continue
            target = getattr(importlib.import_module(imported[node.func.id]), node.func.id, None)
            if not (isinstance(target, type) and dataclasses.is_dataclass(target)):
                continue
            for kw in node.keywords:
                value, negated = kw.value, False
                if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
                    value, negated = value.operand, True
                if not (isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name)
                        and value.value.id == "args"):
                    continue
                seen += 1
                want = "no_" + kw.arg if negated else kw.arg
                if value.attr != want:
                    bad.append(f"{module}:{node.lineno} {target.__name__}({kw.arg}="
                               f"{'not ' if negated else ''}args.{value.attr})")
    assert seen  # cli/bench.py's BenchSettings at least
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

    root = pathlib.Path(__file__).resolve().parents[2]
    import subprocess

    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True,
                             text=True).stdout.split()
    if not tracked:  # not a git checkout: the package folders themselves
        tracked = [str(p.relative_to(root)) for p in root.rglob("*.py")
                   if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    aliases = [name for name in tracked if name != "tests/project/test_layout.py"
               and "sys.modules[__name__] =" in (root / name).read_text(encoding="utf-8", errors="ignore")]
    assert aliases == []
