"""Peak memory and time of ``higherhrnet-trt convert`` (fp32 -> fp16 ONNX) per model.

Each conversion runs as its own process under an address-space cap (``--cap-gb``, default 8: a
conversion that would grow past it dies alone instead of taking the machine). Its peak resident
memory is the kernel's own count (``os.wait4``'s ru_maxrss for that child), its time the wall
clock. Prints one row per model and the command's report line (error against fp32).

    python -m higherhrnet_trt.benchmarks.fp16_convert w32_512.onnx w48_640.onnx --method ranges
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time

from higherhrnet_trt.core.errors import script_exit


def _cap(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
        os.nice(19)
    return apply


def measure(onnx: str, method: str, cap_gb: float, out_dir: str, timeout_s: float) -> dict:
    """Run one conversion in a capped child process: {onnx, method, rc, seconds, peak_rss_gb, report}.
    The peak is ``os.wait4``'s ru_maxrss of that child (the kernel's count, in kB on Linux)."""
    out = os.path.join(out_dir, os.path.splitext(os.path.basename(onnx))[0] + f".{method}.fp16.onnx")
    cmd = [sys.executable, "-m", "higherhrnet_trt.cli", "convert", onnx, "-o", out, "--method", method,
           "--no-progress"]
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=_cap(int(cap_gb * 1e9)))
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    lines = text.splitlines()
    report = next((ln for ln in lines if ln.startswith("wrote ")), "")
    error = next((ln for ln in lines if ln.startswith("error")), "")
    return {"onnx": onnx, "method": method, "rc": proc.returncode, "seconds": seconds,
            "peak_rss_gb": usage.ru_maxrss / 1e6, "report": report or error or text.strip()[-300:]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", nargs="+", help="fp32 ONNX files written by 'higherhrnet-trt export'")
    p.add_argument("--method", choices=["ranges", "autocast"], default="ranges")
    p.add_argument("--cap-gb", type=float, default=8.0, help="address-space cap per conversion")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per conversion")
    p.add_argument("--out-dir", help="where the fp16 files go (default: a temporary folder)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fp16_bench_") as tmp:
        out_dir = args.out_dir or tmp
        print(f"{'model':<28} {'method':<9} {'rc':>4} {'time s':>8} {'peak RSS GB':>12}")
        for onnx in args.onnx:
            r = measure(onnx, args.method, args.cap_gb, out_dir, args.timeout)
            print(f"{os.path.basename(onnx):<28} {r['method']:<9} {r['rc']:>4} {r['seconds']:>8.1f} "
                  f"{r['peak_rss_gb']:>12.2f}")
            print(f"    {r['report']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
