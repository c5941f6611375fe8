"""INT8 against fp32 under ONNX Runtime (CPU), interleaved in one process: infer medians and ratios.

    python -m higherhrnet_trt.benchmarks.int8_ort --fp32 demo.onnx --int8 demo.cpu.int8.onnx \\
        --int8 demo.int8.onnx --runs 20 --threads 1

Each file gets its own session at the graph optimisation level the runtime picks for it
(``--graph-optimization auto``: "all" for fp32 and ``calibrate --target cpu`` files, "disable" for
TensorRT-target INT8 files, see backends/onnxruntime_backend.needed_level). Every round runs each
session once on the same random input, in turn, so a machine shared with other jobs slows all of
them alike and the ratio stays fair where the absolute times do not. Also printed per file: how
many of its ops ONNX Runtime turned into integer kernels (QLinearConv, QLinearAdd, ...) and how
many Convs stay float, read from the optimised graph (``SessionOptions.optimized_model_filepath``),
and the load average before and after.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.lazy import lazy_import
from higherhrnet_trt.core.metadata import ModelMeta
from higherhrnet_trt.runtime.backends.onnxruntime_backend import needed_level

onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")


def _session(path: str, threads: int, optimized_path: str):
    """(session, level) at the level the runtime picks for this file; the optimised graph saved."""
    props = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    try:
        level = needed_level(ModelMeta.from_props(props))
    except ValueError:
        level = "all"
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level == "all"
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]), level


def op_counts(optimized_path: str) -> dict[str, int]:
    """Op types of ONNX Runtime's optimised graph: integer kernels vs float Convs left."""
    graph = onnx.load(optimized_path, load_external_data=False).graph
    counts = collections.Counter(n.op_type for n in graph.node)
    keep = ("QLinear", "Conv", "FusedConv", "QuantizeLinear", "DequantizeLinear", "Resize",
            "Upsample", "Add", "Concat", "Relu", "MatMulInteger", "ConvInteger")
    return {k: v for k, v in sorted(counts.items()) if k.startswith(keep)}


def run(files: list[str], runs: int, threads: int, warmup: int = 2) -> dict:
    """Interleaved timing of ``files`` (the first is the reference): {file: {median_ms, ratio,
    level, ops}}, with the load average before and after."""
    load0 = os.getloadavg()
    sessions, out = [], {}
    with tempfile.TemporaryDirectory(prefix="int8_ort_") as tmp:
        for k, path in enumerate(files):
            opt = os.path.join(tmp, f"opt{k}.onnx")
            sess, level = _session(path, threads, opt)
            sessions.append(sess)
            out[path] = {"level": level, "ops": op_counts(opt), "times_ms": []}
    inp = sessions[0].get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for _ in range(warmup):
        for s in sessions:
            s.run(None, {inp.name: x})
    for _ in range(runs):
        for path, s in zip(files, sessions):
            t0 = time.perf_counter()
            s.run(None, {inp.name: x})
            out[path]["times_ms"].append(1000 * (time.perf_counter() - t0))
    base = float(np.median(out[files[0]]["times_ms"]))
    for r in out.values():
        r["median_ms"] = float(np.median(r["times_ms"]))
        r["ratio"] = base / r["median_ms"]  # > 1: faster than the reference
    return {"files": out, "runs": runs, "threads": threads, "input_shape": shape,
            "loadavg_start": load0, "loadavg_end": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m higherhrnet_trt.benchmarks.int8_ort",
                                 description="INT8 vs fp32 ONNX Runtime infer medians, interleaved.")
    ap.add_argument("--fp32", required=True, help="reference ONNX (ratio 1.00)")
    ap.add_argument("--int8", action="append", default=[], help="INT8 ONNX (repeatable)")
    ap.add_argument("--runs", type=int, default=20, help="timed rounds (each file once per round)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per session")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args(argv)
    res = run([args.fp32, *args.int8], args.runs, args.threads, args.warmup)
    print(f"ONNX Runtime CPU, {args.threads} thread(s), input {res['input_shape']}, {args.runs} "
          f"interleaved rounds; load {res['loadavg_start'][0]:.2f} -> {res['loadavg_end'][0]:.2f}")
    for path, r in res["files"].items():
        print(f"{os.path.basename(path)}: infer median {r['median_ms']:.1f} ms, {r['ratio']:.2f}x fp32 "
              f"(graph optimisation {r['level']}); ops {r['ops']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
