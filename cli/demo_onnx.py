"""Regenerate the committed demo ONNX from the bundled weights (export/demo_onnx.py):

    python -m higherhrnet_trt.cli.demo_onnx [--output PATH]

Needs the export and quantize extras (torch, onnx, ModelOpt).
"""

from __future__ import annotations

import argparse
import os
import sys

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.export.demo_onnx import DEMO_ONNX, export_demo_onnx, package_root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=os.path.join(package_root(), *DEMO_ONNX),
                    help="where to write it (default: the committed file)")
    args = ap.parse_args(argv)
    try:
        path = export_demo_onnx(args.output)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
