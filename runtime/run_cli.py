"""``higherhrnet-trt run``: a model on images, a folder, a video, a camera or a stream.

Writes annotated images / video (--save-dir), COCO keypoint results (--json), shows a live window
(--show). Whatever stops the run (the end, Ctrl-C, SIGTERM, q in the window, a stream that never
comes back) the outputs written so far are closed properly and a summary is printed. Outputs are
checked against every input before the model loads (none may overwrite another file of the run)
and each appears under its name only complete (runtime.files).

Only argparse is imported at module level (``higherhrnet-trt --help`` must stay instant).
"""

from __future__ import annotations

import argparse

from higherhrnet_trt.core.bounds import THREADS, nonempty_list, torch_device
from higherhrnet_trt.core.cli_args import HelpFormatter, paragraphs, setup_logging
from higherhrnet_trt.core.cli_args import fraction as _fraction
from higherhrnet_trt.core.cli_args import positive_int as _positive_int
from higherhrnet_trt.core.cli_args import seconds as _seconds

from .run_outputs import WINDOW, _open_window, _Outputs, _save_dirs, _window_closed  # noqa: F401

DEFAULT_TIMEOUT_S = 10.0  # runtime.streams.DEFAULT_TIMEOUT_S (not imported: --help stays instant)


def _scales(text: str) -> tuple[float, ...]:
    """'1' -> (1.0,), '2,1,0.5' -> (2.0, 1.0, 0.5)."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers such as 1 or 2,1,0.5, got {text!r}")
    from higherhrnet_trt.core.errors import UserError
    from higherhrnet_trt.core.limits import check_scales

    try:  # count and range, before the model loads (core/limits.py)
        check_scales(sorted(set(values)))
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return values


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by run and eval: backend choice and inference settings."""
    p.add_argument("model", metavar="MODEL",
                   help="model exported by 'higherhrnet-trt export' (.onnx; engines with a TensorRT "
                        "backend); its embedded metadata sets dataset, input size and flip test. A "
                        "checkpoint (.pth) runs with the torch backend; triton://HOST:PORT/NAME is a "
                        "model served by a Triton server")
    p.add_argument("--backend", default="auto",
                   help="auto (from the file extension: .onnx onnxruntime, .engine tensorrt, .pth torch), "
                        "onnxruntime, openvino (Intel CPUs), tensorrt, tensorrt-rtx, torch, triton (MODEL "
                        "is then a served model: triton://HOST:PORT/NAME, see 'higherhrnet-trt serve'), or "
                        "another registered backend")
    p.add_argument("--providers", type=nonempty_list("execution provider names"), metavar="EP[,EP...]",
                   help="onnxruntime only: execution providers in priority order, e.g. "
                        "CUDAExecutionProvider,CPUExecutionProvider (default: CPU)")
    p.add_argument("--threads", type=THREADS, default=0,
                   help="onnxruntime / openvino only: CPU threads (0 = the library's default)")
    p.add_argument("--graph-optimization", choices=("auto", "all", "extended", "basic", "disable"),
                   default=None,
                   help="onnxruntime only: its graph optimisation level (default auto: 'disable' for "
                        "INT8 files from 'calibrate', whose fp16 layers ONNX Runtime's bias "
                        "quantization pass miscomputes; 'all' otherwise)")
    p.add_argument("--inference-precision", choices=("f32", "bf16", "f16"), default=None,
                   help="openvino only: its precision hint for the layers the file keeps in floating "
                        "point (default: OpenVINO's, bf16 on CPUs with AMX / AVX512-BF16, else f32); "
                        "f32 gives onnxruntime's fp32 results")
    p.add_argument("--config", default=None,
                   help="torch: the checkpoint's config (w32_512, w48_640, ...; default: the one "
                        "that fits its shapes); onnxruntime: the config of an ONNX exported by other "
                        "tools, without higherhrnet_trt metadata (files from 'export' describe "
                        "themselves)")
    p.add_argument("--device", type=torch_device, default=None,
                   help="torch only: cuda, cuda:N or cpu (default: cuda when a GPU is visible; FP16 there)")
    p.add_argument("--heatmap-resolution", action="store_true",
                   help="decode maps at half the input resolution: faster, not the official results")


def _served(args) -> bool:
    """MODEL is served by a Triton server (triton://HOST:PORT/NAME, or --backend triton)."""
    from .backends import is_remote

    return args.backend == "triton" or is_remote(args.model)


def backend_options(args) -> dict:
    """Backend constructor options from --providers / --threads / --graph-optimization /
    --inference-precision (ONNX Runtime's and OpenVINO's; the torch backend's --config / --device;
    others take none)."""
    from higherhrnet_trt.core.errors import UserError

    from .backends import default_backend_for

    name = default_backend_for(args.model) if args.backend == "auto" else args.backend
    opts: dict = {}
    given = {"--providers": args.providers, "--threads": args.threads,
             "--graph-optimization": getattr(args, "graph_optimization", None),
             "--inference-precision": getattr(args, "inference_precision", None)}
    takes = {"onnxruntime": ("--providers", "--threads", "--graph-optimization"),
             "openvino": ("--threads", "--inference-precision")}
    wrong = [flag for flag, value in given.items() if value and flag not in takes.get(name, ())]
    if wrong:
        raise UserError(f"{' / '.join(wrong)}: not an option of the {name} backend (onnxruntime options: "
                        "--providers, --threads, --graph-optimization; openvino options: --threads, "
                        "--inference-precision)")
    if args.providers:
        opts["providers"] = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.threads:
        opts["threads"] = args.threads
    if given["--graph-optimization"]:
        opts["graph_optimization"] = given["--graph-optimization"]
    if given["--inference-precision"]:
        opts["inference_precision"] = given["--inference-precision"]
    config, device = getattr(args, "config", None), getattr(args, "device", None)
    if name == "torch":
        if config:
            opts["config"] = config
        if device:
            opts["device"] = device
    elif name == "onnxruntime" and config and not device:
        opts["config"] = config  # for ONNX files without our metadata (backends/foreign.py)
    elif config or device:
        raise UserError(f"--config / --device are torch-backend options (for .pth checkpoints; "
                        f"--config also onnxruntime's, for ONNX files without metadata); the {name} "
                        "backend reads them from the model file")
    return opts


        # Propagation stays on: a CLI process has no root handlers (so nothing prints twice), and
        # hosts that configure logging (pytest, applications calling main()) still see records.


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a model on images, a folder, a video, a camera or a stream; draw / save / show",
        description=paragraphs(
            "Detect people and their keypoints with a HigherHRNet model. Draws skeletons (a colour "
            "per person), writes annotated images or video (--save-dir), COCO keypoint results "
            "(--json), shows a live window with FPS (--show). Unreadable images are skipped and "
            "counted.",
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
    add_model_options(p)
    p.add_argument("--source", "-s", required=True, metavar="SRC", action="append",
                   help="image, folder of images, glob ('a/*.png'), video file, camera index (0) or "
                        "/dev/videoN, rtsp:// or http:// URL, or a GStreamer pipeline ending in "
                        "appsink ('gst:' prefix optional). Repeat for several sources: each round "
                        "takes one frame of every source and predicts them as one batch (one engine "
                        "call with a --dynamic-batch model); outputs go to DIR/source0, "
                        "DIR/source1, ... and JSON records carry 'source' (its index)")
    p.add_argument("--save-dir", metavar="DIR",
                   help="write annotated images or video (<source>.mp4) here. Images keep their "
                        "names; a glob spanning folders keeps each image's sub-folder below the "
                        "folder they share ('a/x.jpg' and 'b/x.jpg' -> DIR/a/x.jpg, DIR/b/x.jpg), "
                        "so no two results share a file")
    p.add_argument("--show", action="store_true", help="live window (needs a display); q or Esc quits")
    p.add_argument("--json", metavar="FILE",
                   help="write COCO keypoint results to FILE.json: image_id, category_id 1, keypoints "
                        "[x, y, v] in pixels, score (image_id = the number of COCO-style names when "
                        "every image has a distinct one, else the frame index)")
    p.add_argument("--scales", type=_scales, default="1", metavar="S[,S...]",
                   help="test scales, e.g. 2,1,0.5 (official multi-scale; needs a --dynamic model); at "
                        "most 4, each 0.25..4. Memory: each scale's network input may have at most 3 "
                        "Mpx and a side ratio of 8:1 (frames beyond are skipped and counted); a frame "
                        "took at most 1.5 KB of memory per input pixel, near the limits up to 1.5 GB "
                        "with the demo network and 3.7 GB with W32-512 (benchmarks/frame_memory; W48 "
                        "not measured)")
    p.add_argument("--kpt-thr", type=_fraction, default=0.1,
                   help="joints scored above this are drawn and span the person's box")
    p.add_argument("--person-thr", type=_fraction, default=0.15,
                   help="people scored below this (mean joint score) are not drawn; --json keeps "
                        "every person with its score, as COCO evaluation wants")
    p.add_argument("--det-thr", type=_fraction, default=0.1,
                   help="decoder: heatmap peaks above this become joint candidates")
    p.add_argument("--max-people", type=_positive_int, default=30,
                   help="most people kept per frame (best scores)")
    p.add_argument("--max-frames", type=_positive_int, metavar="N",
                   help="stop after N frames (of each source)")
    p.add_argument("--reconnect", type=int, default=5, metavar="N",
                   help="live sources: after frames stop, reopen attempts (0.5 s, 1 s, 2 s ... up to "
                        "8 s apart; the count restarts after every good frame) before the run stops "
                        "with an error, its outputs kept")
    p.add_argument("--stream-timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="network streams and GStreamer pipelines: the longest one open or one read "
                        "may take before it counts as failed")
    p.add_argument("--wait-for-source", action="store_true",
                   help="network streams: retry the first open like a reconnect (a camera still "
                        "booting); without it a stream that does not open is an error at once")
    p.add_argument("--boxes", action="store_true", help="also draw each person's box and score")
    p.add_argument("--track", action="store_true",
                   help="person IDs across frames (each source tracked on its own): the same "
                        "'track_id' on the same person in the JSON (-1: not tracked), drawn people "
                        "coloured by ID with the ID at their box; IDs are never reused")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------


def _check_outputs(args, sources, save_dirs) -> None:
    """Before the model loads: --json names a .json file, and no output lands on an input (the
    model, an image or the video read, of any source) or on another output. One line naming the
    fix. sources: the opened sources; save_dirs: the --save-dir folder of each (or Nones)."""
    import os

    from higherhrnet_trt.core.files import Output, check_outputs, check_writable, require_suffix

    inputs = [("the model", args.model)]
    for source in sources:
        paths = getattr(source, "paths", None)
        if paths:
            inputs += [("the input image", p) for p in paths]
        elif getattr(source, "path", None):
            inputs.append(("the input video", source.path))
    outputs = []
    if args.json:
        require_suffix(args.json, (".json",), "--json", "the results are a JSON list (e.g. "
                       "--json people.json)")
        outputs.append(Output("--json", args.json, "give --json another file name"))
    if args.save_dir:
        check_writable(args.save_dir, "--save-dir", "choose a folder you can write to", folder=True)
    for source, save_dir in zip(sources, save_dirs):
        if save_dir and getattr(source, "paths", None):
            fix = f"choose another --save-dir than {args.save_dir}"
            outputs += [Output("the annotated copy", os.path.join(save_dir, name), fix)
                        for name in source.names]
    check_outputs(outputs, inputs)


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------


def run(args) -> int:
    import os
    import sys
    import time

    from higherhrnet_trt.core.errors import UserError, interrupt_exit_code, interrupt_word

    from .multi_source import open_sources
    from .pipeline import Pipeline
    from .results import CocoResultsWriter
    from .run_loop import Progress, frame_loop, progress_bar
    from .sources import ImageFiles, import_cv2
    from .streams import StreamPolicy

    setup_logging()
    if args.reconnect < 0:
        raise UserError(f"--reconnect must be 0 or more, got {args.reconnect}")
    if not os.path.isfile(args.model) and not _served(args):
        raise UserError(f"model file not found: {args.model}")
    policy = StreamPolicy(timeout_s=args.stream_timeout, max_reconnects=args.reconnect,
                          retry_first_open=args.wait_for_source)
    cv2 = import_cv2()
    pipe = Pipeline(
        args.model, backend=args.backend, scales=args.scales,
        project2image=not args.heatmap_resolution, kpt_thr=args.kpt_thr,
        decode={"max_people": args.max_people, "detection_threshold": args.det_thr},
        track=getattr(args, "track", False), **backend_options(args),
    )
    if args.show:
        _open_window(cv2)  # before loading anything: fail fast without a display
    source = open_sources(args.source, **policy.source_options())
    save_dirs = _save_dirs(args.save_dir, len(source))
    try:
        _check_outputs(args, source.sources, save_dirs)
    except UserError:
        source.close()
        raise
    first = source.sources[0]
    numeric = len(source) == 1 and isinstance(first, ImageFiles) and _numeric_ids(first.paths)
    outputs, writer, bar = [], None, None
    done = Progress()
    t_start = time.perf_counter()
    code = 0  # exit status: 130 after Ctrl-C, 143 after SIGTERM
    try:
        outputs = [_Outputs(d, s, cv2) for d, s in zip(save_dirs, source.sources)]
        pipe.activate()
        meta = pipe.meta
        print(f"model: {os.path.basename(args.model)} ({meta.dataset}, {meta.config_name or '?'}, "
              f"input {meta.input_size}, flip test {'on' if meta.flip else 'off'}, "
              f"{pipe.backend.name}); source: {source.description}", file=sys.stderr)
        writer = CocoResultsWriter(args.json) if args.json else None
        if not (args.save_dir or args.json or args.show):
            print("note: nothing is saved or shown; add --save-dir, --json or --show", file=sys.stderr)
        bar = progress_bar(args, source)
        t_start = time.perf_counter()  # FPS counts frames, not model loading
        frame_loop(args, pipe, source, outputs, writer, bar, numeric, done, cv2)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (runtime.errors.sigterm_as_interrupt)
        done.status = interrupt_word(e)
        code = interrupt_exit_code(e)
    finally:
        if bar is not None:
            bar.close()
        close_error = _close_all((writer, *outputs, source))
        pipe.deactivate()
        if args.show:
            cv2.destroyAllWindows()
        if done.too_large:
            print(f"skipped {len(done.too_large)} frames too large for the network input limits "
                  f"(first: {done.too_large[0]})", file=sys.stderr)
        if (done.frames or done.status != "error") and close_error is None:
            _summary(done, time.perf_counter() - t_start, pipe, source, outputs, writer,
                     args.max_people)
    if close_error is not None:  # a full disk while finishing the JSON or the video
        raise close_error
    _check_frames_ran(done, source, pipe.stats)
    return code


def _close_all(closers) -> BaseException | None:
    """Close each of ``closers`` (None skipped), all of them even when one fails; the first
    failure is returned, for the caller to raise once everything is released."""
    first = None
    for closer in closers:
        if closer is None:
            continue
        try:
            closer.close()
        except Exception as e:  # e.g. OSError(ENOSPC) finishing a file: still close the rest
            first = first or e
    return first


def _check_frames_ran(done, source, stats=None) -> None:
    """A run that ended normally without one frame, or whose every frame gave NaN/inf network
    outputs (NaN weights, an fp16 overflow), is an error (exit 1), with the reason."""
    from higherhrnet_trt.core.errors import UserError

    if (done.status == "done" and stats is not None and done.frames
            and stats.skipped_nonfinite >= done.frames):
        raise UserError(f"the network returned NaN/inf for every one of the {done.frames} frames: "
                        "its weights are probably NaN or inf (check the checkpoint, re-export "
                        "it), or an fp16/INT8 file overflows (compare with the fp32 model)")
    if done.status != "done" or done.frames:
        return
    if done.too_large:
        raise UserError(f"every frame of {source.description} was too large for the network input "
                        "limits (see the warning above): crop or resize them, or use smaller --scales")
    # every input unreadable, or an empty video
    raise UserError(f"no frame could be read from {source.description}"
                    + (f" ({len(source.skipped)} unreadable, first: {source.skipped[0]})"
                       if source.skipped else "") + ": check the --source files")


def _numeric_ids(paths) -> bool:
    """Whether COCO-style names (000000000139.jpg) give the image ids: all of them must, and no
    two the same (a/000000000001.jpg and b/000000000001.jpg); otherwise frame indices are the
    ids, for all frames alike, so two naming schemes never collide."""
    import sys

    from .results import image_id_from_name

    ids = [image_id_from_name(p, -1) for p in paths]
    if min(ids, default=-1) < 0:
        return False
    if len(set(ids)) < len(ids):
        print("note: several images have the same COCO-style number in their names: the JSON's "
              "image_id is the frame index instead (file_name tells them apart)", file=sys.stderr)
        return False
    return True


def _summary(done, seconds, pipe, source, outputs, writer, max_people) -> None:
    import sys

    lines = []
    st = pipe.stats
    per = max(st.frames, 1)
    ms = ", ".join(f"{k} {1000 * v / per:.0f} ms" for k, v in st.seconds.items())
    status = "stopped by the error below" if done.status == "error" else done.status
    lines.append(f"{status}: {done.frames} frames, {done.people} people, "
                 f"{done.frames / max(seconds, 1e-9):.1f} FPS overall ({ms} per frame)")
    if source.skipped:
        lines.append(f"skipped {len(source.skipped)} unreadable images (first: {source.skipped[0]})")
    if st.skipped_nonfinite:
        lines.append(f"skipped {st.skipped_nonfinite} frames whose network outputs had NaN/inf")
    if st.capped:
        lines.append(f"{st.capped} frames had more than {max_people} people; the "
                     "best were kept (--max-people)")
    if getattr(source, "reconnects", 0):
        lines.append(f"the source reconnected {source.reconnects} times")
    for k, out in enumerate(outputs):
        tag = f"[{k}] " if len(outputs) > 1 else ""
        if out.failed:
            lines.append(f"{tag}could not write {len(out.failed)} images (first: {out.failed[0]})")
        if out.dir and (out.images or out.video_path or done.status != "error"):
            what = out.video_path or f"{out.images} images in {out.dir}"
            lines.append(f"{tag}wrote {what}")
    if writer is not None:
        lines.append(f"wrote {writer.count} people to {writer.path}")
    print("\n".join(lines), file=sys.stderr)
