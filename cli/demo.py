"""``higherhrnet-trt demo``: the whole chain on the bundled street frame, on the CPU, in one command.

The bundled fp16 demo ONNX (runtime/assets, exported from the bundled weights by
``python -m higherhrnet_trt.cli.demo_onnx``; flip test and aggregation in the graph) -> ONNX
Runtime on the CPU -> decode -> skeletons drawn + COCO keypoint JSON. Only the runtime is needed
(numpy, onnxruntime, OpenCV, tqdm): no torch. ``--weights`` or ``--force-export`` export a
checkpoint first (the export extra: torch, onnx).

The default sample is frame 700 of OpenCV's vtest.avi (``REAL_SAMPLE``), which the demo network's
training held out; the network is trained on silver-labelled people of that camera and generated
scenes, not on COCO (export/assets/MODEL_CARD.md): its skeletons show the chain working on real
people, not HigherHRNet's accuracy. Without its weights (a checkout where they
were not trained yet) the demo exports random weights and says so loudly: the chain still runs,
the people it finds mean nothing.

Only argparse is imported at module level (``higherhrnet-trt --help`` stays instant).
"""

from __future__ import annotations

import os

from higherhrnet_trt.cli.args import HelpFormatter, paragraphs
from higherhrnet_trt.core.errors import CheckpointError, UserError
from higherhrnet_trt.core.files import DEMO_WEIGHTS, atomic_open, check_writable, package_file
from higherhrnet_trt.export import weights as registry
from higherhrnet_trt.export.weights import add_cli_options

from . import main as cli_main

DEMO_ONNX = ("runtime", "assets", "demo_w16_256.fp16.onnx")  # export/demo_onnx.DEMO_ONNX
#: The default sample: frame 700 of OpenCV's vtest.avi (pedestrians seen by a static campus camera;
#: Apache-2.0 AND BSD-3-Clause as Debian's opencv-doc ships it, README "Sample"), held out from the
#: demo network's training.
REAL_SAMPLE = ("runtime", "assets", "vtest_0700.jpg")
REAL_SAMPLE_FRAME = 700  # its frame number in vtest.avi (benchmarks/data/silver_heldout.json)
#: Test scale of the demo network on that frame: its people are 50-150 px of 768x576 and the
#: network's input is 256 (the shorter side becomes 256 x this), as the model card measures them.
REAL_SAMPLE_SCALE = "2"


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the bundled demo model on the bundled street frame (CPU, ONNX Runtime)",
        description=paragraphs(
            "The whole chain in one command, on any machine: the bundled fp16 demo ONNX (exported "
            "from the bundled checkpoint) runs on the CPU with ONNX Runtime on the bundled sample "
            "(frame 700 of OpenCV's vtest.avi, held out from training, at --scales 2; or --source), "
            "is decoded, and the people are drawn and written as COCO "
            "keypoint JSON. Needs only the runtime (no torch). --weights and --force-export "
            "export a checkpoint to ONNX first (checked against PyTorch by ONNX Runtime), which "
            "needs the export extra (torch, onnx).",
            "The demo network is small and trained on one camera's pedestrians (silver labels) and "
            "generated scenes, not COCO; for real use export "
            "an official checkpoint with 'higherhrnet-trt export --checkpoint X.pth --config w32_512'.",
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  higherhrnet-trt demo\n"
            "  higherhrnet-trt demo --source my_photos/ --save-dir outputs/mine"
        ),
    )
    p.add_argument("--save-dir", default="outputs/demo", metavar="DIR",
                   help="where demo.onnx, the annotated image(s) and people.json are written")
    p.add_argument("--source", metavar="SRC",
                   help="image, folder, video or camera instead of the bundled sample (as 'run')")
    p.add_argument("--weights", metavar="PTH|NAME",
                   help="demo-config checkpoint to use instead of the bundled one, or a released "
                        "weights name such as mmpose_w32_512 (downloaded to the cache and sha256-checked "
                        "first, exported with its own config: 'higherhrnet-trt weights list')")

    add_cli_options(p)
    p.add_argument("--force-export", action="store_true",
                   help="export the checkpoint to DIR/demo.onnx (fp32) instead of running the bundled "
                        "ONNX, again even if DIR/demo.onnx was exported from the same weights "
                        "(compared by sha256, recorded in DIR/demo.onnx.source.json)")
    p.set_defaults(func=demo)


def _stamp_path(onnx_path: str) -> str:
    """Where the demo records what its ONNX was exported from (beside it)."""
    return onnx_path + ".source.json"


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_record(onnx_path: str, weights: str | None) -> dict:
    """What the ONNX is made of, by content: the weights' and the ONNX's sha256 (file times lie:
    a copied or restored file keeps or changes its time whatever its content)."""
    return {"weights_sha256": _sha256(weights) if weights else "random",
            "onnx_sha256": _sha256(onnx_path) if os.path.isfile(onnx_path) else ""}


def _needs_export(onnx_path: str, weights: str | None) -> bool:
    """True unless DIR/demo.onnx was exported by the demo from these very weights and is unchanged
    since (both checked by sha256 against the record written after the export)."""
    import json

    if not os.path.isfile(onnx_path):
        return True
    try:
        with open(_stamp_path(onnx_path), encoding="utf-8") as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return True  # exported by an older demo, or not by the demo at all
    return recorded != _source_record(onnx_path, weights)


def _write_record(onnx_path: str, weights: str | None) -> None:
    import json

    with atomic_open(_stamp_path(onnx_path)) as f:
        json.dump(_source_record(onnx_path, weights), f, indent=1)


def _weights_and_config(args) -> tuple[str | None, str]:
    """--weights as a file and the config to export it with: a released name becomes its verified
    cached file and brings its config; a file is a demo-config checkpoint."""
    if args.weights is None:
        return None, "demo"
    path, entry = registry.resolve(args.weights, args.cache_dir, args.weights_url)
    if entry is None and not os.path.isfile(path):
        raise UserError(f"--weights {args.weights}: file not found")
    return path, entry.config if entry else "demo"


def demo(args) -> int:
    import sys

    weights, config = _weights_and_config(args)
    if weights is None:
        bundled = package_file(DEMO_WEIGHTS)
        weights = bundled if os.path.isfile(bundled) else None

    check_writable(args.save_dir, "--save-dir", "choose a folder you can write to", folder=True)
    os.makedirs(args.save_dir, exist_ok=True)
    source, scales = args.source, None
    if source is None:
        source = package_file(REAL_SAMPLE)
        if not os.path.isfile(source):
            raise UserError(f"the bundled sample {source} is missing: reinstall the package, "
                            "or pass --source")
        # The demo network's input is 256: the frame's small people need the larger scale.
        scales = REAL_SAMPLE_SCALE if config == "demo" else None
    bundled_onnx = package_file(DEMO_ONNX)
    if args.weights is None and not args.force_export and os.path.isfile(bundled_onnx):
        onnx_path = bundled_onnx
        print(f"using the bundled {os.path.basename(onnx_path)} (--force-export exports the "
              "checkpoint instead)", file=sys.stderr)
    else:
        onnx_path = _exported(args, weights, config)
    return _run(onnx_path, source, args.save_dir, scales)


def _exported(args, weights: str | None, config: str) -> str:
    """DIR/demo.onnx exported from ``weights`` (random weights, loudly, when None), unless the
    one there was exported from them already and --force-export is not given."""
    import sys

    onnx_path = os.path.join(args.save_dir, "demo.onnx" if weights else "demo_random.onnx")
    if args.force_export or _needs_export(onnx_path, weights):
        try:
            from higherhrnet_trt.export.api import export  # an extra: a missing part is said in one line
        except ModuleNotFoundError as e:
            raise UserError(f"the export step needs {e.name}: pip install 'higherhrnet-trt[export]' "
                            "(or pass an exported model to 'higherhrnet-trt run')") from None
        if weights is None:
            print(f"note: no demo weights at {package_file(DEMO_WEIGHTS)}; see export/assets/MODEL_CARD.md "
                  "to train them", file=sys.stderr)
        try:
            export(weights, config=config, output=onnx_path, dynamic=True, flip=True)
        except CheckpointError as e:  # its advice names export's --config, which demo does not have
            cause = getattr(e, "cause", None) or str(e)
            fits = getattr(e, "matching_configs", None) or ["NAME"]
            raise UserError(f"--weights {weights} is not a demo-config checkpoint ({cause}): export it "
                            f"with 'higherhrnet-trt export -c {weights} --config {fits[0]} -o model.onnx' "
                            "and run 'higherhrnet-trt run model.onnx'") from None
        _write_record(onnx_path, weights)
    else:
        print(f"using {onnx_path} (exported earlier; --force-export to redo)", file=sys.stderr)
    return onnx_path


def _run(onnx_path: str, source: str, save_dir: str, scales: str | None = None) -> int:
    """``run`` of the demo's model on its source, writing into ``save_dir``."""
    import sys

    run_args = ["run", onnx_path, "--source", source, "--save-dir", save_dir,
                "--json", os.path.join(save_dir, "people.json"), "--boxes"]
    if scales:
        run_args += ["--scales", scales]
    code = cli_main(run_args)
    if code == 0:
        exported = "" if os.path.dirname(os.path.abspath(onnx_path)) != os.path.abspath(save_dir) \
            else f", {os.path.basename(onnx_path)}"
        print(f"\nwrote {save_dir}/ (annotated image(s), people.json{exported})\n"
              "next: FP16 / INT8 / engines, see README.md ('higherhrnet-trt export --help', "
              "'higherhrnet-trt calibrate --help', 'higherhrnet-trt build --help')", file=sys.stderr)
    return code

