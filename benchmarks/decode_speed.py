"""Decoder speed: the compiled CPU decode and the vectorised NumPy decode, and NumPy against the
per-joint-loop baseline.

    python -m higherhrnet_trt.benchmarks.decode_speed [--only compiled|loop] [--json out.json]

compiled (issue 25): W32-512 maps as the network gives them (17 x 256 x 256 heatmaps and tags,
T = 2) with 1 and 30 people (``synthetic_scene``), decoded with the projection to 512 x 512
included in the timed decode: the NumPy decode as the Pipeline runs it (MultiScaleAggregator,
whose resize uses OpenCV where exact, then decode.parse) against kernels/cpu.decode on one thread
and on every core. Prints medians of wall and process CPU time, the ratios, the compiled stages
and whether the people are bit for bit those of the NumPy decode (with the exact NumPy resize).

loop: ``decode.parse`` against the per-joint-loop baseline (median of ``--repeat`` runs) on the 20
official parser vectors (if the reference folder is there) and on a 512 x 512, 20-person scene.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.decode import DecodeConfig, parse
from higherhrnet_trt.decode.aggregate import MultiScaleAggregator
from higherhrnet_trt.kernels import cpu

from .loop_decode import loop_parse

# A standing COCO person, (x, y) in units of its height, origin at the hips' midpoint.
_POSE = np.array(
    [
        (0.0, -0.42), (0.03, -0.45), (-0.03, -0.45), (0.07, -0.43), (-0.07, -0.43),
        (0.12, -0.32), (-0.12, -0.32), (0.16, -0.16), (-0.16, -0.16), (0.17, -0.01), (-0.17, -0.01),
        (0.08, 0.0), (-0.08, 0.0), (0.09, 0.25), (-0.09, 0.25), (0.09, 0.5), (-0.09, 0.5),
    ],
    dtype=np.float64,
)


def synthetic_scene(
    seed: int,
    size: tuple[int, int] = (512, 512),
    people: int = 20,
    tag_dim: int = 2,
    sigma: float = 4.0,
    spurious: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic multi-person scene as the network would output it after aggregation.

    size: (H, W) heatmap pixels; sigma: blob sigma in pixels. Each person gets a COCO-shaped pose
    (height 10-45 % of H, random position and lean), one tag value in [-4, 4] and a per-joint
    offset N(0, 0.1); 12 % of joints are missing, 10 % are faint (0.05-0.16). A joint's heatmap is
    the max of its people's gaussian blobs; where a blob dominates, the tag is the person's tag plus
    pixel noise N(0, 0.05) (second channel: + N(0, 0.08), as a flipped pass); elsewhere a smooth
    per-joint plane. Background noise N(0, 0.01) everywhere, plus a few spurious blobs.
    Returns heatmaps (J, H, W) float32 and tags (J, H, W, tag_dim) float32.
    """
    rng = np.random.default_rng(seed)
    H, W = size
    J = COCO.num_joints
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    heat = np.zeros((J, H, W), dtype=np.float32)
    owner_val = np.zeros((J, H, W), dtype=np.float32)
    plane = rng.uniform(-4, 4, (J, 3)).astype(np.float32)
    tags = (plane[:, 0, None, None] + plane[:, 1, None, None] * (xx / W - 0.5)
            + plane[:, 2, None, None] * (yy / H - 0.5))[..., None].repeat(tag_dim, axis=3)
    tags = tags.astype(np.float32)
    person_tags = rng.uniform(-4, 4, people)
    for p in range(people):
        height = rng.uniform(0.1, 0.45) * H
        cx, cy = rng.uniform(0.05 * W, 0.95 * W), rng.uniform(0.1 * H, 0.9 * H)
        lean = rng.uniform(-0.3, 0.3)
        amp = rng.uniform(0.4, 1.0)
        s = sigma * (0.6 if height < 0.2 * H else 1.0)
        for j in range(J):
            if rng.random() < 0.12:
                continue
            px = cx + height * (_POSE[j, 0] + lean * _POSE[j, 1]) + rng.normal(0, 0.02 * height)
            py = cy + height * _POSE[j, 1] + rng.normal(0, 0.02 * height)
            if not (0 <= px < W and 0 <= py < H):
                continue
            a = rng.uniform(0.05, 0.16) if rng.random() < 0.1 else amp * rng.uniform(0.8, 1.0)
            r = int(4 * s) + 1
            y0, y1 = max(int(py) - r, 0), min(int(py) + r + 1, H)
            x0, x1 = max(int(px) - r, 0), min(int(px) + r + 1, W)
            blob = a * np.exp(-((xx[y0:y1, x0:x1] - px) ** 2 + (yy[y0:y1, x0:x1] - py) ** 2) / (2 * s * s))
            win = blob > np.maximum(owner_val[j, y0:y1, x0:x1], 2e-3)
            t = person_tags[p] + rng.normal(0, 0.1)
            noise = rng.normal(0, 0.05, blob.shape)
            tj = tags[j, y0:y1, x0:x1]
            tj[..., 0] = np.where(win, t + noise, tj[..., 0])
            for c in range(1, tag_dim):
                tj[..., c] = np.where(win, t + noise + rng.normal(0, 0.08, blob.shape), tj[..., c])
            owner_val[j, y0:y1, x0:x1] = np.where(win, blob, owner_val[j, y0:y1, x0:x1])
            heat[j, y0:y1, x0:x1] = np.maximum(heat[j, y0:y1, x0:x1], blob)
    for _ in range(spurious):
        j = int(rng.integers(J))
        px, py = rng.uniform(0, W), rng.uniform(0, H)
        heat[j] = np.maximum(heat[j], rng.uniform(0.05, 0.3) * np.exp(
            -((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma * sigma)))
    heat += rng.normal(0, 0.01, heat.shape).astype(np.float32)
    return heat.astype(np.float32), tags.astype(np.float32)


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def _reference_dir() -> Path:
    env = os.environ.get("HIGHERHRNET_TRT_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "reference"


def run(repeat: int = 5, repeat_loop: int = 3) -> dict:
    """Time both decoders; returns a dict of results (seconds per image set)."""
    cfg = DecodeConfig()
    results: dict = {"numpy": np.__version__, "repeat": repeat, "repeat_loop": repeat_loop}

    vec_path = _reference_dir() / "parser_vectors.npz"
    if vec_path.is_file():
        data = np.load(vec_path)
        cases = [(data[f"case{c:02d}_heatmaps"][0], data[f"case{c:02d}_tags"][0]) for c in range(20)]
        same = all(_same(parse(h, t, cfg), loop_parse(h, t, cfg)) for h, t in cases)
        t_fast = _median_time(lambda: [parse(h, t, cfg) for h, t in cases], repeat)
        t_loop = _median_time(lambda: [loop_parse(h, t, cfg) for h, t in cases], repeat_loop)
        results["vectors"] = {"images": 20, "identical": same, "vectorised_s": t_fast, "loop_s": t_loop,
                              "speedup": t_loop / t_fast}
    else:
        results["vectors"] = {"skipped": f"no parser_vectors.npz at {vec_path}"}

    h, t = synthetic_scene(seed=0)
    fast = parse(h, t, cfg)
    same = _same(fast, loop_parse(h, t, cfg))
    t_fast = _median_time(lambda: parse(h, t, cfg), repeat)
    t_loop = _median_time(lambda: loop_parse(h, t, cfg), repeat_loop)
    results["realistic"] = {
        "shape": list(t.shape), "people_found": int(fast[0].shape[0]),
        "joints_before_refine": int((parse(h, t, replace(cfg, refine=False))[0][:, :, 2] > 0).sum()),
        "joints_after_refine": int((fast[0][:, :, 2] > 0).sum()),
        "identical": same, "vectorised_s": t_fast, "loop_s": t_loop, "speedup": t_loop / t_fast,
    }
    return results


def _median_times(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall and process CPU seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    wall, cpu_s = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu_s)


def run_compiled(people_counts: tuple[int, ...] = (1, 30), repeat: int = 7, repeat_numpy: int = 3) -> dict:
    """The compiled CPU decode against the NumPy decode on W32-512 maps, projection included."""
    if not cpu.available():
        return {"skipped": f"compiled CPU decode unavailable: {cpu.unavailable_reason()}"}
    cfg = DecodeConfig()
    size = (512, 512)
    out: dict = {"map_size": [17, 256, 256, 2], "decode_size": list(size), "cores": os.cpu_count(),
                 "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    for people in people_counts:
        h, t = synthetic_scene(seed=people, size=(256, 256), people=people, sigma=2.0)

        def numpy_decode(h=h, t=t):
            agg = MultiScaleAggregator(size)  # as Pipeline.postprocess: resize, then parse
            agg.add(1.0, h[None], t[None])
            heatmaps, tags = agg.result()
            return parse(heatmaps[0], tags[0], cfg)

        same = _same(cpu.decode(h, t, cfg, size_wh=size), cpu.reference_decode(h, t, cfg, size))
        found = len(cpu.decode(h, t, cfg, size_wh=size)[1])
        np_wall, np_cpu = _median_times(numpy_decode, repeat_numpy)
        one_wall, one_cpu = _median_times(lambda h=h, t=t: cpu.decode(h, t, cfg, size, threads=1), repeat)
        all_wall, all_cpu = _median_times(lambda h=h, t=t: cpu.decode(h, t, cfg, size, threads=0), repeat)
        stages = np.zeros(3)
        acc = np.zeros(3)
        for _ in range(repeat):
            cpu.decode_batch(h[None], t[None], cfg, size, threads=1, stage_s=stages)
            acc += stages
        out[f"people_{people}"] = {
            "people_found": found, "identical": same,
            "numpy_s": np_wall, "numpy_cpu_s": np_cpu,
            "compiled_1thread_s": one_wall, "compiled_1thread_cpu_s": one_cpu,
            "compiled_all_s": all_wall, "compiled_all_cpu_s": all_cpu,
            "speedup_1thread": np_wall / one_wall, "speedup_1thread_cpu": np_cpu / one_cpu,
            "speedup_all": np_wall / all_wall,
            "stages_1thread_s": {"project_nms_topk": acc[0] / repeat, "group": acc[1] / repeat,
                                 "refine": acc[2] / repeat},
        }
    if len(people_counts) > 1:
        a, b = out[f"people_{people_counts[0]}"], out[f"people_{people_counts[-1]}"]
        out["flatness_1thread_cpu"] = b["compiled_1thread_cpu_s"] / a["compiled_1thread_cpu_s"]
    return out


def _print_compiled(res: dict) -> None:
    if "skipped" in res:
        print(f"compiled: skipped ({res['skipped']})")
        return
    print(f"compiled CPU decode vs NumPy decode: 17 x 256 x 256 maps, T = 2, projected to 512 x 512 "
          f"(included); {res['cores']} cores, load {res['load_1min']}")
    for key, r in res.items():
        if not key.startswith("people_"):
            continue
        st = r["stages_1thread_s"]
        print(f"  {key.split('_')[1]:>2} people ({r['people_found']} found), identical: {r['identical']}")
        print(f"    numpy              {r['numpy_s'] * 1e3:8.1f} ms wall "
              f"{r['numpy_cpu_s'] * 1e3:8.1f} ms cpu")
        print(f"    compiled 1 thread  {r['compiled_1thread_s'] * 1e3:8.1f} ms wall "
              f"{r['compiled_1thread_cpu_s'] * 1e3:8.1f} ms cpu   {r['speedup_1thread']:6.1f} x wall "
              f"{r['speedup_1thread_cpu']:6.1f} x cpu")
        print(f"    compiled all cores {r['compiled_all_s'] * 1e3:8.1f} ms wall "
              f"{r['compiled_all_cpu_s'] * 1e3:8.1f} ms cpu   {r['speedup_all']:6.1f} x wall")
        print(f"    stages (1 thread, cpu) project+nms+topk {st['project_nms_topk'] * 1e3:.1f} ms, group "
              f"{st['group'] * 1e3:.1f} ms, refine {st['refine'] * 1e3:.1f} ms")
    if "flatness_1thread_cpu" in res:
        print(f"  flatness: 30 people / 1 person, 1 thread cpu time: {res['flatness_1thread_cpu']:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--only", choices=("compiled", "loop"), help="run one comparison (default: both)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the vectorised decoder (median)")
    ap.add_argument("--repeat-loop", type=int, default=3, help="runs of the loop decoder (median)")
    args = ap.parse_args(argv)
    res: dict = {}
    if args.only != "loop":
        res["compiled"] = run_compiled()
        _print_compiled(res["compiled"])
    if args.only == "compiled":
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        same = [v.get("identical", True) for v in res["compiled"].values() if isinstance(v, dict)]
        return 0 if all(same) else 1
    res.update(run(args.repeat, args.repeat_loop))
    for name in ("vectors", "realistic"):
        r = res[name]
        if "skipped" in r:
            print(f"{name}: skipped ({r['skipped']})")
            continue
        what = "20 parser vectors (all images)" if name == "vectors" else (
            f"synthetic {r['shape']} tags, {r['people_found']} people")
        print(f"{name}: {what}")
        print(f"  loop decoder       {r['loop_s'] * 1e3:9.1f} ms")
        print(f"  vectorised decoder {r['vectorised_s'] * 1e3:9.1f} ms")
        print(f"  speedup            {r['speedup']:9.1f} x   outputs identical: {r['identical']}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    ok = all(r.get("identical", True) for r in (res["vectors"], res["realistic"]))
    ok = ok and all(v.get("identical", True) for v in res.get("compiled", {}).values() if isinstance(v, dict))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(script_exit(main))
