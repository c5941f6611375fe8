"""The committed demo ONNX, regenerated from the bundled weights (the command: cli/demo_onnx.py):

    python -m higherhrnet_trt.cli.demo_onnx [--output PATH]

export/assets/demo_w16_256.pth -> fp16 ONNX (dynamic height and width, flip test in the graph, as
``demo`` runs it) -> runtime/assets/demo_w16_256.fp16.onnx, which ``higherhrnet-trt demo`` runs
with only the runtime installed (no torch). Needs the export extra (torch, onnx).
tests/export/test_demo_onnx.py checks that the committed file gives what a fresh export gives.
"""

from __future__ import annotations

import os

from higherhrnet_trt.core.errors import UserError

from .fp16 import convert_fp16

#: The committed file, relative to the package root (the folder holding export/ and runtime/).
DEMO_ONNX = ("runtime", "assets", "demo_w16_256.fp16.onnx")
DEMO_WEIGHTS = ("export", "assets", "demo_w16_256.pth")


def package_root() -> str:
    """The folder holding export/, runtime/, ... (the checkout, or site-packages/higherhrnet_trt)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_demo_onnx(output: str, log=print) -> str:
    """Export the bundled demo weights as the committed demo ONNX is made; returns ``output``.

    output: the .onnx to write (its folder is created). The fp32 export on the way is written to a
    temporary folder. Raises UserError without torch / onnx / modelopt (extras export, quantize).
    """
    import tempfile

    try:
        from .api import export  # the export extra: a missing part is said in one line
    except ModuleNotFoundError as e:
        raise UserError(f"exporting the demo ONNX needs {e.name}: pip install "
                        "'higherhrnet-trt[export,quantize]'") from None
    weights = os.path.join(package_root(), *DEMO_WEIGHTS)
    if not os.path.isfile(weights):
        raise UserError(f"the bundled demo weights {weights} are missing: reinstall the package")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, "demo.onnx")
        # check=False: the export tests check the fp32 graph against PyTorch; here its second
        # model would double the time.
        export(weights, config="demo", output=fp32, dynamic=True, flip=True, check=False, log=log)
        fp16_from(fp32, output, log)
    return output


def fp16_from(fp32_path: str, output: str, log=print) -> str:
    """The demo's fp32 ONNX (dynamic height and width, flip test) -> the fp16 demo ONNX at
    ``output``, the step tests/export/test_demo_onnx.py repeats on the suite's fp32 export."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    q = convert_fp16(fp32_path, output)
    summary = getattr(q, "summary", None)
    log(summary() if callable(summary) else f"wrote {output} (fp16)")
    return output
