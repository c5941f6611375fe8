"""How far the sampled INT8 ranges (``calibrate --sample N``) are from the exact ones (``--sample 0``).

For each method, the calibration pass runs once reading every value (ModelOpt's way) and once per
``--samples`` value with the in-graph taps, on the same images; prints the time of each pass and,
per quantized tensor, the relative difference of its range from the exact one: median, 90th
percentile, max, and the share of tensors whose range is identical to the float. Tensors smaller
than the sample are read whole (their ranges then differ only by the optimised graph's rounding).

    python -m higherhrnet_trt.benchmarks.calib_sample demo.onnx --images scenes/ --num-images 50 \\
        --input-size 512 --samples 65536,262144
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from higherhrnet_trt.core.errors import script_exit
from higherhrnet_trt.export import quantize as q
from higherhrnet_trt.export.calib_data import InputMaker, list_images
from higherhrnet_trt.export.calib_ranges import collect_ranges
from higherhrnet_trt.export.quant_common import check_fp32_input


def compare(onnx: str, images: str, num_images: int, samples: list[int], methods: list[str],
            input_size: int | None = None, log=print) -> dict:
    """{method: {sample: {"seconds", "median", "p90", "max", "identical"}}} (sample 0: exact)."""
    import numpy as np

    src_model, summary, meta = check_fp32_input(onnx)
    maker = InputMaker(summary, meta, input_size)
    paths = list_images(images)[:num_images]
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="calib_sample_") as tmp:
        work = os.path.join(tmp, "model.onnx")  # ModelOpt writes files next to its input
        shutil.copyfile(onnx, work)
        _, placement = q._placement(work, maker, paths, "fp16", tmp, src_model, onnx)
        log(f"{len(placement.scales)} activation quantizers, {len(paths)} images")
        for method in methods:
            exact = None
            for sample in [0] + [s for s in samples if s != 0]:
                t0 = time.perf_counter()
                ranges, _ = collect_ranges(work, placement, method, 99.999, maker.feeds(paths, []),
                                           tmp, sample)
                seconds = time.perf_counter() - t0
                if exact is None:
                    exact = ranges
                    result[method] = {0: {"seconds": seconds}}
                    log(f"{method:<10} every value (--sample 0): {seconds:.1f}s")
                    continue
                rel = np.array([abs(ranges[t] - exact[t]) / max(exact[t], 1e-12) for t in exact])
                row = {"seconds": seconds, "median": float(np.median(rel)),
                       "p90": float(np.percentile(rel, 90)), "max": float(rel.max()),
                       "identical": float(np.mean(rel == 0))}
                result[method][sample] = row
                log(f"{method:<10} --sample {sample}: {seconds:.1f}s; range vs every value: median "
                    f"{row['median']:.1e}, p90 {row['p90']:.1e}, max {row['max']:.1e}; identical "
                    f"{row['identical']:.0%}")
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", help="fp32 ONNX written by 'higherhrnet-trt export'")
    p.add_argument("--images", required=True, help="calibration images (a folder)")
    p.add_argument("--num-images", type=int, default=50)
    p.add_argument("--samples", default="65536", help="comma-separated --sample values to compare")
    p.add_argument("--methods", default="entropy,percentile,max")
    p.add_argument("--input-size", type=int, help="pre-processing size of a dynamic-shape ONNX")
    args = p.parse_args(argv)
    compare(args.onnx, args.images, args.num_images, [int(v) for v in args.samples.split(",")],
            args.methods.split(","), args.input_size)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
