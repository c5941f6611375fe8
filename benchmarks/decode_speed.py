"""Decoder speed: vectorised ``runtime.decode.parse`` against the per-joint-loop baseline.

    python -m higherhrnet_trt.benchmarks.decode_speed [--json out.json] [--repeat 5]

Times both decoders (median of ``--repeat`` runs, one image at a time, single thread as the
runtime calls it) on the 20 official parser vectors (if the reference folder is there) and on a
realistic synthetic scene: 17 joints at 512 x 512 (heatmaps projected to the input size), T = 2,
20 people, rendered deterministically by ``synthetic_scene``. Checks that both give identical
outputs (bit for bit) and prints both times and their ratio.
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

from higherhrnet_trt.core.keypoints import COCO
from higherhrnet_trt.decode import DecodeConfig, parse

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--repeat", type=int, default=5, help="runs of the vectorised decoder (median)")
    ap.add_argument("--repeat-loop", type=int, default=3, help="runs of the loop decoder (median)")
    args = ap.parse_args(argv)
    res = run(args.repeat, args.repeat_loop)
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
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
