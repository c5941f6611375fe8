"""``higherhrnet-trt info``: what an ONNX or engine file is, and whether it is whole and runs here.

Exit status (returned by :func:`info`): 0 when the file is intact and nothing known says it cannot
run on this machine; 1 (a UserError, one line) when it is damaged (empty or truncated ONNX; an
engine whose size or sha256 is not the one its sidecar recorded at build time) or when it is known
to be incompatible here (another TensorRT flavour or version, another compute capability). What
cannot be checked on this machine (no GPU, the engine's TensorRT not installed) is said as such,
never called "compatible".
"""

from __future__ import annotations

import os

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.core.files import sha256_file
from higherhrnet_trt.core.formats import ENGINE_SUFFIXES
from higherhrnet_trt.core.gpu import query_gpu

from . import flavors
from .flavors import MODULES, load_flavor
from .layers import layers_path, parse_json, read_builder_layers, summarize
from .onnx_info import check_weights, load_model, summarize_model
from .sidecar import check_compatible, check_engine_file, read_sidecar


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def meta_line(meta) -> str:
    """One line about a ModelMeta."""
    return (f"{meta.model_name} (config {meta.config_name or '?'}), {meta.dataset} "
            f"{meta.num_joints} joints, input size {meta.input_size}, outputs {meta.outputs}, "
            f"flip {meta.flip}, precision {meta.precision}"
            + (f" for {meta.target}" if meta.precision == "int8" and meta.target else "")
            + (", RANDOM WEIGHTS" if meta.random_weights else ""))


def info_onnx(path: str) -> None:
    """Print what an ONNX file is; UserError when it is empty, unreadable or has no graph."""
    model = load_model(path)
    s = summarize_model(model, path)
    weights_state = check_weights(model, path)  # NaN/inf weights, or not the exported ones
    print(f"{path}: ONNX opset {s.opset}, producer {s.producer or '?'}, precision {s.precision}")
    for kind, items in (("input", s.inputs), ("output", s.outputs)):
        for t in items:
            print(f"  {kind:6} {t.name}: {t.dtype} {t.shape_text()}")
    print("  ops: " + ", ".join(f"{k} {v}" for k, v in s.op_counts.items()))
    if s.initializer_bytes:
        print("  weights: " + ", ".join(f"{k} {_mib(v)}" for k, v in s.initializer_bytes.items())
              + f"; finite; sha256 {weights_state}")
    if s.has_meta:
        print(f"  model: {meta_line(s.meta())}")
    else:
        print("  model: no higherhrnet_trt metadata (not written by 'higherhrnet-trt export'); run "
              "it with --config NAME (see 'higherhrnet-trt run --help')")


def _layer_summary(sidecar, engine_path: str, show_all: bool) -> list[str]:
    """Engine inspector summary: from the engine (its TensorRT flavour and a GPU deserialize it),
    else from the report the builder logged at build time (ENGINE.layers.txt, layers.py)."""
    layers, source = None, ""
    if query_gpu() is not None:
        try:
            flavor = load_flavor(sidecar.flavor)
        except UserError as e:
            return [f"layers: {e}"]
        layers, source = parse_json(_inspector_json(flavor, sidecar, engine_path)), "engine inspector"
    else:
        layers = read_builder_layers(engine_path)
        source = f"the builder's report in {layers_path(engine_path)} (no CUDA GPU here)"
    if layers is None:
        return ["layers: no CUDA GPU here (deserializing an engine for the engine inspector needs one) "
                f"and no {layers_path(engine_path)} from the build; rebuild to get one"]
    if layers and layers[0]["type"] == "?":
        return [f"layers: {len(layers)} (built without detailed profiling verbosity)"]
    stats = summarize(layers)
    lines = stats.lines()
    lines[0] += f" (from {source})"
    if show_all:
        lines += [f"    {x['name']} [{x['type']}] in {'/'.join(x['inputs']) or '-'} weights "
                  f"{'/'.join(sorted(set(x['constants']))) or '-'} -> {'/'.join(x['outputs']) or '-'}"
                  for x in layers]
    return lines


def _inspector_json(flavor, sidecar, engine_path: str) -> str:
    """get_engine_information(JSON) of the deserialized engine (needs a GPU)."""
    trt = flavor.trt
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    if sidecar.version_compatible and hasattr(runtime, "engine_host_code_allowed"):
        runtime.engine_host_code_allowed = True
    with open(engine_path, "rb") as f:
        engine = runtime.deserialize_cuda_engine(f.read())
    if engine is None:
        raise UserError(f"{engine_path}: {flavor.label} could not deserialize the engine; rebuild it: "
                        f"{sidecar.rebuild_command(engine_path=engine_path)}")
    inspector = engine.create_engine_inspector()
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)


def _print_engine(path: str, s) -> None:
    """The sidecar's description of the engine."""
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    target = (f"ahead-of-time for compute capabilities {', '.join(s.target_compute_capabilities)}"
              if s.ahead_of_time else f"{s.gpu} (compute capability {s.compute_capability})")
    print(f"{path}: {s.flavor} {s.version} engine, {_mib(size)}, precision {s.precision}, "
          f"{'strongly typed' if s.strongly_typed else 'weakly typed ' + '+'.join(s.builder_flags)}")
    print(f"  target: {target}" + (f", DLA core {s.dla_core}" if s.dla_core is not None else "")
          + (", version compatible" if s.version_compatible else ""))
    print(f"  built {s.built_at} in {s.build_seconds:.1f}s")
    onnx_path = s.onnx.get("path", "")
    state = "not found here"
    if onnx_path and os.path.isfile(onnx_path):
        state = "unchanged" if sha256_file(onnx_path) == s.onnx.get("sha256") else \
            "CHANGED since the build: rebuild"
    print(f"  from {onnx_path} (sha256 {s.onnx.get('sha256', '')[:16]}..., {state})")
    for name, prof in s.shapes.items():
        print(f"  profile {name}: min {'x'.join(map(str, prof['min']))}, opt "
              f"{'x'.join(map(str, prof['opt']))}, max {'x'.join(map(str, prof['max']))}")
    for kind, items in (("input", s.inputs), ("output", s.outputs)):
        for t in items:
            print(f"  {kind:6} {t['name']}: {t['dtype']} {'x'.join(map(str, t['shape']))}")
    print(f"  model: {meta_line(s.meta())}")
    for note in s.notes:
        print(f"  note: {note}")
    print(f"  rebuild: {s.rebuild_command(engine_path=path)}")


def info_engine(path: str, show_layers: bool) -> None:
    """Print what an engine is; UserError when it is damaged or cannot run on this machine."""
    s = read_sidecar(path)
    _print_engine(path, s)
    check_engine_file(path, s)  # size and sha256 against the sidecar: DAMAGED is an error
    print(f"  integrity: size and sha256 match the sidecar ({s.engine_sha256[:16] or 'no hash'}...)")
    # flavors._import looked up now: tests stand a fake TensorRT in for it
    module = flavors._import(s.flavor) if s.flavor in MODULES else None
    if module is None:
        print(f"  this machine: NOT CHECKED: {s.flavor} is not installed here, so whether the engine "
              "runs here is unknown")
        return
    gpu = query_gpu()
    # Raises (exit 1) on a known mismatch: flavour, version, compute capability.
    warns = check_compatible(s, s.flavor, str(getattr(module, "__version__", "")), gpu, engine_path=path)
    if gpu is None:
        need = (", ".join(s.target_compute_capabilities) if s.ahead_of_time else s.compute_capability)
        print(f"  this machine: {s.flavor} {s.version} matches, but there is no CUDA GPU here: the "
              f"engine runs only on a GPU of compute capability {need}")
        if show_layers:
            for line in _layer_summary(s, path, show_layers):
                print(f"  {line}")
        return
    print("  this machine: compatible" + "".join(f"; {w}" for w in warns))
    for line in _layer_summary(s, path, show_layers):
        print(f"  {line}")


def info(path: str, show_layers: bool = False) -> int:
    """``higherhrnet-trt info FILE``; returns the exit status (errors raise UserError)."""
    if path.lower().endswith(".onnx"):
        info_onnx(path)
    elif path.lower().endswith(ENGINE_SUFFIXES):
        info_engine(path, show_layers)
    else:
        raise UserError(f"cannot tell what {path!r} is: expected .onnx or .engine/.plan/.trt")
    return 0
