"""Output forms of benchmarks/compare.py's result: the text table and the two figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from higherhrnet_trt.core.lazy import lazy_import

matplotlib = lazy_import("matplotlib")
plt = lazy_import("matplotlib.pyplot")

#: Stages each pipeline is timed in, per image (the table's and the bar chart's columns).
PIPE_STAGES = ("preprocess", "network", "decode", "end_to_end")


def _threads(n: int) -> str:
    return f"{n} CPU thread{'' if n == 1 else 's'}"


def format_table(r: dict[str, Any]) -> str:
    """Medians per stage (ms per image) and speed-ups against the official-style pipeline."""
    head = (f"{'pipeline':<52}{'preproc':>9}{'network':>10}{'decode':>10}{'end2end':>10}"
            f"{'img/s':>8}{'people':>8}   speed-up (network / decode / e2e)")
    lines = [f"config {r['config']} (input {r['input_size']}x{r['input_size']}"
             f"{', RANDOM weights' if r['random_weights'] else ''}), {r['images']} images x "
             f"{r['iters']} rounds, {_threads(r['threads'])}; medians, ms per image", head]
    for p in r["pipelines"]:
        s, x = p["stages_ms"], p["speedup_vs_official"]
        lines.append(f"{p['name']:<52}{s['preprocess']['median']:9.2f}{s['network']['median']:10.2f}"
                     f"{s['decode']['median']:10.2f}{s['end_to_end']['median']:10.2f}"
                     f"{p['images_per_s']:8.2f}{p['mean_people_found']:8.1f}   "
                     f"{x['network']:.2f}x / {x['decode']:.2f}x / {x['end_to_end']:.2f}x")
    if r["decode_vs_people"]:
        lines.append("")
        lines.append("decode vs people (generated maps): people, found, loop ms, vectorised ms, speed-up")
        for c in r["decode_vs_people"]:
            lines.append(f"  {c['people']:3d} {c['people_found']:5d} {c['loop_ms']:10.1f} "
                         f"{c['vectorised_ms']:10.2f} {c['speedup']:8.1f}x")
    other = r.get("other_processes_cpu_percent")
    if other is not None and other >= 20.0:
        lines.append(f"note: other processes used {other:.0f} % of one core during the timed rounds: "
                     "not a quiet machine")
    for n in r["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def plot_bars(r: dict[str, Any], path: str) -> str:
    """Grouped bars: median ms per stage for each pipeline."""
    matplotlib.use("Agg")

    pipes = r["pipelines"]
    x = np.arange(len(PIPE_STAGES))
    width = 0.8 / len(pipes)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    for i, p in enumerate(pipes):
        vals = [p["stages_ms"][k]["median"] for k in PIPE_STAGES]
        bars = ax.bar(x + (i - (len(pipes) - 1) / 2) * width, vals, width, label=p["name"])
        if i:
            ax.bar_label(bars, [f"{p['speedup_vs_official'][k]:.1f}x" for k in PIPE_STAGES],
                         fontsize=7)
    ax.set_xticks(x, ["preprocess", "network (flip test)", "decode", "end to end"])
    ax.set_yscale("log")
    ax.set_ylabel("median ms per image (host clock, log scale)")
    ax.set_title(f"{r['config']} {r['input_size']}x{r['input_size']}, {_threads(r['threads'])}"
                 f"{' (random weights)' if r['random_weights'] else ''}; labels: speed-up vs official")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 8)  # room for the legend above the bars
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curve(r: dict[str, Any], path: str) -> str:
    """Decode latency (ms, log scale) against the number of people, both decoders."""
    matplotlib.use("Agg")

    c = r["decode_vs_people"]
    n = [row["people"] for row in c]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(n, [row["loop_ms"] for row in c], "o-", label="official-style loop decoder")
    ax.plot(n, [row["vectorised_ms"] for row in c], "s-", label="ours (vectorised)")
    ax.set_yscale("log")
    ax.set_xlabel("people in the scene")
    ax.set_ylabel("decode ms per image (median)")
    ax.set_title(f"decode at {r['input_size']}x{r['input_size']} (17 joints, T=2), generated maps")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
