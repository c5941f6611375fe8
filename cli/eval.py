"""``higherhrnet-trt eval``: keypoint AP of a model on COCO or CrowdPose annotations (pycocotools).

Nothing heavy is imported at module level (``higherhrnet-trt --help`` must stay instant). Every
candidate person is scored (person_thr 0), as COCO evaluation needs.
"""

from __future__ import annotations

import os
import sys

from higherhrnet_trt.core.files import Output, check_outputs, require_suffix
from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions

from .args import HelpFormatter, paragraphs, positive_int, setup_logging
from .flags import add_flags, options

#: The official multi-scale test set (experiments' TEST.SCALE_FACTOR for multi-scale results).
MULTI_SCALE = (2.0, 1.0, 0.5)

FLIP_NOTE = (
    "flip test: there is no --no-flip here. The flip test is compiled into the exported model "
    "(a batch of the image and its mirror image, averaged inside the graph), as the official "
    "evaluation does it. To evaluate without it, export a model with 'higherhrnet-trt export "
    "--no-flip'; this command prints which kind it is evaluating."
)


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="COCO / CrowdPose keypoint AP of a model (pycocotools)",
        description=paragraphs(
            "Run a model on the images of a COCO-format keypoint annotation file and report OKS "
            "keypoint AP: COCO AP, AP50, AP75, APM, APL, AR...; CrowdPose AP, AP50, AP75, AR... and "
            "AP easy / medium / hard (crowdposetools' protocol re-stated on pycocotools). The dataset "
            "comes from the model's metadata; the annotation file must match it. Single-scale test "
            "at the official resolution unless --multi-scale or --scales."
        ),
        formatter_class=HelpFormatter,
        epilog=paragraphs(
            FLIP_NOTE,
            "example:\n  higherhrnet-trt eval w32_512.onnx --images coco/val2017/ \\\n"
            "    --ann coco/annotations/person_keypoints_val2017.json",
        ),
    )
    add_flags(p, ModelOptions)
    add_flags(p, DecodeOptions, ["heatmap_resolution"])
    p.add_argument("--ann", required=True, metavar="JSON",
                   help="keypoint annotations, e.g. person_keypoints_val2017.json or crowdpose_val.json")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of the annotated images")
    p.add_argument("--max-images", type=positive_int, metavar="N",
                   help="only the first N images by id (a quick check; not comparable to full runs)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--multi-scale", action="store_true",
                   help="official multi-scale test, scales 2, 1, 0.5 (needs a model exported with "
                        "--dynamic)")
    add_flags(g, DecodeOptions, ["scales"], scales=dict(default=None, help="custom test scales, e.g. 1,2"))
    p.add_argument("--json", metavar="FILE",
                   help="also write the COCO keypoint results to FILE.json (renamed into place when "
                        "complete; after Ctrl-C or SIGTERM it holds the images done so far)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def run_eval(args) -> int:
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.runtime.evaluate import evaluate_pipeline
    from higherhrnet_trt.runtime.pipeline import Pipeline

    setup_logging()
    model = options(args, ModelOptions)
    model.check_model_exists()
    if args.json:
        _check_json(args)
    scales = MULTI_SCALE if args.multi_scale else (args.scales or (1.0,))
    decode = options(args, DecodeOptions, scales=scales, person_thr=0.0)  # every candidate is scored
    with Pipeline.from_options(model, decode) as pipe:
        meta = pipe.meta
        print(f"model: {os.path.basename(args.model)} ({meta.dataset}, {meta.config_name or '?'}, "
              f"input {meta.input_size}, flip test {'on' if meta.flip else 'off'}, scales "
              f"{','.join(f'{s:g}' for s in pipe.scales)}, {pipe.backend.name})", file=sys.stderr)
        result = evaluate_pipeline(pipe, args.ann, args.images, args.max_images, args.json,
                                   progress=not args.no_progress)
    print(result.summary())
    return 0


def _check_json(args) -> None:
    """--json names a .json file that is neither the model nor the annotation file (checked
    before the model loads; an image cannot end in .json)."""
    require_suffix(args.json, (".json",), "--json", "the results are a JSON list (e.g. --json "
                   "results.json)")
    check_outputs([Output("--json", args.json, "give --json another file name")],
                  [("the model", args.model), ("the annotation file", args.ann)])
