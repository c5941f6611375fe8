"""``higherhrnet-trt run``: a model on images, a folder, a video, a camera or a stream.

The flags are the option groups of cli/flags.py; the work is runtime/run_loop.run_stream, which
writes annotated images / video (--save-dir), COCO keypoint results (--json), shows a live window
(--show) and closes every output properly whatever stops the run.
"""

from __future__ import annotations

import sys

from higherhrnet_trt.runtime.options import DecodeOptions, ModelOptions, OutputOptions, SourceOptions

from .args import HelpFormatter, paragraphs, setup_logging
from .flags import add_flags, options


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a model on images, a folder, a video, a camera or a stream; draw / save / show",
        description=paragraphs(
            "Detect people and their keypoints with a HigherHRNet model. Draws skeletons (a colour "
            "per person), writes annotated images or video (--save-dir), COCO keypoint results "
            "(--json), shows a live window with FPS (--show). People scored below --person-thr "
            "(0.15) are left out of all of them and of the count printed. Unreadable images are "
            "skipped and counted.",
            "Live sources: every open and read of a network stream is bounded by --stream-timeout "
            "(10 s). A stream that does not open is an error at once (--wait-for-source retries "
            "it). Once frames came, a drop is reopened --reconnect times with exponential backoff "
            "(0.5, 1, 2, 4, 8 s); then the run stops with one error line and its outputs hold "
            "every frame processed.",
            "Ctrl-C, SIGTERM (systemd, docker stop, timeout) and q in the window stop the run "
            "cleanly: the JSON and the video hold every frame processed so far (exit status 130 "
            "for Ctrl-C, 143 for SIGTERM). Each output is written under a temporary name and "
            "renamed when complete; an output that would overwrite the model, an input image or "
            "video, or another output is refused before the model loads.",
        ),
        formatter_class=HelpFormatter,
        epilog=(
            "examples:\n"
            "  higherhrnet-trt run model.onnx --source photos/ --save-dir out/ --json out/people.json\n"
            "  higherhrnet-trt run model.onnx --source 0 --show\n"
            "  higherhrnet-trt run model.onnx --source rtsp://user:pw@10.0.0.5/stream --save-dir rec/\n"
            "  higherhrnet-trt run model.onnx --show --source \\\n"
            "    \"nvarguscamerasrc ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! \\\n"
            "     video/x-raw,format=BGR ! appsink\""
        ),
    )
    add_flags(p, ModelOptions)
    add_flags(p, SourceOptions, ["source"])
    add_flags(p, OutputOptions, ["save_dir", "show", "json"])
    add_flags(p, DecodeOptions, ["scales", "kpt_thr", "person_thr", "det_thr", "max_people"])
    add_flags(p, SourceOptions, ["max_frames", "reconnect", "stream_timeout", "wait_for_source",
                                 "every_frame"])
    add_flags(p, OutputOptions, ["boxes"])
    add_flags(p, DecodeOptions, ["track"])
    add_flags(p, OutputOptions, ["no_progress"])
    add_flags(p, DecodeOptions, ["heatmap_resolution"])
    p.set_defaults(func=run)


def run(args) -> int:
    """The command: flags -> typed options -> Pipeline -> run_stream."""
    # Here, not at the top: --help imports every command module; its work loads when it runs.
    from higherhrnet_trt.runtime.pipeline import Pipeline
    from higherhrnet_trt.runtime.run_loop import run_stream

    setup_logging()
    model, decode = options(args, ModelOptions), options(args, DecodeOptions)
    source, out = options(args, SourceOptions), options(args, OutputOptions)
    model.check_model_exists()
    pipe = Pipeline.from_options(model, decode)
    done = run_stream(source.source, pipe, out, max_frames=source.max_frames, policy=source.policy(),
                      report=lambda line: print(line, file=sys.stderr), every_frame=source.every_frame)
    return done.exit_code
