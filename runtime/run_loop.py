"""The stream loop: frames from sources -> Pipeline -> outputs (JSON, annotated images / video, the
window, callbacks). ``higherhrnet-trt run`` is this loop with typed options from its flags
(cli/run.py); the Python API, the benchmarks and the tests call it with arguments.

Each round holds one frame of every source still running (runtime/multi_source.py; one source
gives rounds of one frame); the round is predicted as one batch, then each frame's people go to
the JSON, the callback and its annotated copy to that source's output and window. Whatever stops
the loop (the end, ``max_frames``, Ctrl-C, SIGTERM, q in the window, a stream that never comes
back) the outputs written so far are closed properly and the summary is reported. Outputs are
checked against every input before the model loads (none may overwrite another file of the run)
and each appears under its name only complete (core/files.py).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from higherhrnet_trt.core.errors import UserError, interrupt_exit_code, interrupt_word
from higherhrnet_trt.core.files import Output, check_outputs, check_writable, require_suffix
from higherhrnet_trt.core.limits import FrameTooLarge

from .draw import draw_fps, draw_poses
from .multi_source import MultiSource, open_sources
from .options import OutputOptions
from .results import CocoResultsWriter, image_id_from_name
from .run_outputs import WINDOW, _open_window, _Outputs, _save_dirs, _window_closed
from .sources import Frame, ImageFiles, import_cv2
from .streams import StreamPolicy

#: A callback for each frame's people: (source index, Frame, Poses).
OnPeople = Callable[[int, Frame, object], None]
#: Where status lines go (the model line, notes, the summary): the CLI prints them to stderr.
Report = Callable[[str], None]


@dataclass
class Progress:
    """What the loop has done (read by the summary, however the loop ended).

    status: "done" (the sources ended or max_frames), "stopped from the window", an interrupt's
    word ("interrupted", "terminated"), or "error" while running / after an error.
    exit_code: 0, or 130 / 143 after Ctrl-C / SIGTERM.
    """

    frames: int = 0
    people: int = 0
    status: str = "error"  # until the loop ends by itself or by the user
    exit_code: int = 0
    fps: float = 0.0
    too_large: list[str] = field(default_factory=list)  # frames refused by core/limits.py


def run_stream(sources: MultiSource | Sequence[str | int], pipeline, outputs: OutputOptions | None = None,
               *, max_frames: int | None = None, policy: StreamPolicy | None = None,
               on_people: OnPeople | None = None, report: Report | None = None,
               every_frame: bool = False) -> Progress:
    """Run ``pipeline`` over ``sources`` until they end; returns what was done.

    sources: an opened MultiSource (closed here at the end), or specs open_sources takes (paths,
        folders, globs, videos, camera indices, URLs, GStreamer pipelines).
    pipeline: a Pipeline (activated here after the outputs are checked: a bad output path fails
        before the model loads). Its person_thr decides who is reported: the people returned are
        those written, drawn, counted and given to ``on_people``.
    outputs: JSON / save_dir / show / boxes / no_progress (default: none, no progress bar).
    max_frames: stop after this many frames of each source. policy: live streams' timeouts and
        reconnects (default StreamPolicy()).
    report: receives status lines (default: none are made).
    every_frame: live sources: every frame in turn instead of the newest (runtime/latest.py).

    Raises UserError when a run that ended normally read no frame at all (with the reason); Ctrl-C
    and SIGTERM end the loop with ``status`` / ``exit_code`` set instead of raising.
    """
    outputs = outputs if outputs is not None else OutputOptions(no_progress=True)
    say = report or (lambda line: None)
    cv2 = import_cv2()
    if outputs.show:
        _open_window(cv2)  # before opening anything: fail fast without a display
    if not isinstance(sources, MultiSource):
        sources = open_sources(list(sources), every_frame=every_frame,
                               **(policy or StreamPolicy()).source_options())
    save_dirs = _save_dirs(outputs.save_dir, len(sources))
    try:
        check_run_outputs(outputs, pipeline.model_path, sources.sources, save_dirs)
    except UserError:
        sources.close()
        raise
    first = sources.sources[0]
    numeric = len(sources) == 1 and isinstance(first, ImageFiles) and _numeric_ids(first.paths, say)
    per_source, writer, bar = [], None, None
    done = Progress()
    max_people = 0
    t_start = time.perf_counter()
    try:
        per_source = [_Outputs(d, s, cv2) for d, s in zip(save_dirs, sources.sources)]
        pipeline.activate()
        max_people = pipeline.decode_config.max_people
        say(f"model: {describe_model(pipeline)}; source: {sources.description}")
        if not (outputs.save_dir or outputs.json or outputs.show or on_people):
            say("note: nothing is saved or shown; add --save-dir, --json or --show")
        writer = CocoResultsWriter(outputs.json) if outputs.json else None
        bar = progress_bar(sources, max_frames, outputs.no_progress)
        t_start = time.perf_counter()  # FPS counts frames, not model loading
        _loop(pipeline, sources, outputs, per_source, writer, bar, numeric, done, cv2, max_frames,
              on_people)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (core.errors.sigterm_as_interrupt)
        done.status = interrupt_word(e)
        done.exit_code = interrupt_exit_code(e)
    finally:
        if bar is not None:
            bar.close()
        close_error = _close_all((writer, *per_source, sources))
        pipeline.deactivate()
        if outputs.show:
            cv2.destroyAllWindows()
        if done.too_large:
            say(f"skipped {len(done.too_large)} frames too large for the network input limits "
                f"(first: {done.too_large[0]})")
        if (done.frames or done.status != "error") and close_error is None:
            say(summary(done, time.perf_counter() - t_start, pipeline, sources, per_source, writer,
                        max_people))
    if close_error is not None:  # a full disk while finishing the JSON or the video
        raise close_error
    _check_frames_ran(done, sources, pipeline.stats)
    return done


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


def describe_model(pipeline) -> str:
    """'w32.onnx (coco, w32_512, input 512, flip test on, onnxruntime)' (loads the model)."""
    meta = pipeline.meta
    return (f"{os.path.basename(pipeline.model_path)} ({meta.dataset}, {meta.config_name or '?'}, "
            f"input {meta.input_size}, flip test {'on' if meta.flip else 'off'}, {pipeline.backend.name})")


def progress_bar(source, max_frames: int | None, disable: bool):
    """tqdm over frames (of all sources): total known for files, capped by max_frames."""
    from tqdm import tqdm

    total = source.length
    if max_frames:
        cap = max_frames * len(source)
        total = min(total, cap) if total else (None if source.is_live else cap)
    return tqdm(total=total, unit="frame", desc="run", dynamic_ncols=True, disable=disable,
                file=sys.stderr)


def _loop(pipe, source, outputs: OutputOptions, per_source, writer, bar, numeric, done: Progress, cv2,
          max_frames: int | None, on_people: OnPeople | None) -> None:
    """Rounds of frames (one per source still running) -> one predict_batch each -> JSON records,
    the callback, annotated images / video per source, the window. Counts into ``done``; sets its
    status when the sources end, max_frames is reached or the window is closed."""
    kp = pipe.keypoints
    several = len(source) > 1
    t_prev = time.perf_counter()
    for rounds, round_ in enumerate(source):
        if max_frames and rounds >= max_frames:
            break
        all_poses = _predict_round(pipe, round_, done)
        for t, poses in zip(round_, all_poses):
            if poses is None:  # too large for the network input limits: skipped and counted
                continue
            frame = t.frame
            if writer is not None:
                extra = live_keys(frame)
                if several:  # frame indices repeat across sources: the running count is the id
                    writer.add(poses, done.frames, file_name=frame.name, source=t.source, **extra)
                else:
                    image_id = image_id_from_name(frame.name, frame.index) if numeric else frame.index
                    writer.add(poses, image_id, file_name=frame.name, **extra)
            if on_people is not None:
                on_people(t.source, frame, poses)
            done.frames += 1
            done.people += len(poses)
            if outputs.draws:
                vis = draw_poses(frame.image, poses, kp, pipe.kpt_thr, boxes=outputs.boxes, inplace=True)
                per_source[t.source].write(frame, vis)
            if outputs.show:
                name = WINDOW if t.source == 0 else f"{WINDOW} [{t.source}]"
                cv2.imshow(name, draw_fps(vis, done.fps, f"{len(poses)} people"))
        now = time.perf_counter()
        rate = len(round_) / max(now - t_prev, 1e-9)
        done.fps = rate if done.fps == 0.0 else 0.9 * done.fps + 0.1 * rate  # smoothed, for display
        t_prev = now
        if outputs.show and _window_closed(cv2):
            done.status = "stopped from the window"
            return
        bar.update(len(round_))
        bar.set_postfix(people=sum(len(p) for p in all_poses if p is not None), fps=f"{done.fps:.1f}",
                        refresh=False)
    done.status = "done"  # the sources ended, or max_frames


def live_keys(frame) -> dict:
    """JSON keys of a live frame: ``frame_index`` (the source's count of frames decoded, so frames
    the newest-frame reader dropped show as gaps) and ``capture_time`` (Unix seconds it was
    decoded); none for files."""
    if frame.capture_time is None:
        return {}
    return {"frame_index": frame.index, "capture_time": round(frame.capture_time, 3)}


def _predict_round(pipe, round_, done: Progress) -> list:
    """The round's people, one predict_batch call; when a frame is too large for the network input
    limits (core/limits.py) the round is predicted frame by frame and that frame's entry is None
    (one odd image must not end a folder's run: it is skipped and counted in ``done``)."""
    tracked = getattr(pipe, "track", False)  # each source's frames to its own tracker
    try:
        if tracked:
            return pipe.predict_batch([t.frame.image for t in round_], [t.source for t in round_])
        return pipe.predict_batch([t.frame.image for t in round_])
    except FrameTooLarge:
        pass
    out = []
    for t in round_:
        try:
            out.append(pipe.predict(t.frame.image, t.source) if tracked else pipe.predict(t.frame.image))
        except FrameTooLarge as e:
            done.too_large.append(t.frame.name)
            if len(done.too_large) == 1:
                print(f"warning: {t.frame.name}: {e}; skipping such frames (counted)", file=sys.stderr)
            out.append(None)
    return out


# --------------------------------------------------------------------------------------------------
# Checks before the model loads, and the summary
# --------------------------------------------------------------------------------------------------


def check_run_outputs(outputs: OutputOptions, model: str, sources, save_dirs) -> None:
    """Before the model loads: json names a .json file, and no output lands on an input (the
    model, an image or the video read, of any source) or on another output. One line naming the
    fix. sources: the opened sources; save_dirs: the save_dir folder of each (or Nones)."""
    inputs = [("the model", model)]
    for source in sources:
        paths = getattr(source, "paths", None)
        if paths:
            inputs += [("the input image", p) for p in paths]
        elif getattr(source, "path", None):
            inputs.append(("the input video", source.path))
    found = []
    if outputs.json:
        require_suffix(outputs.json, (".json",), "--json", "the results are a JSON list (e.g. "
                       "--json people.json)")
        found.append(Output("--json", outputs.json, "give --json another file name"))
        check_writable(outputs.json, "--json", "give --json another file name")
        if outputs.save_dir and os.path.abspath(outputs.json) == os.path.abspath(outputs.save_dir):
            raise UserError(f"--json {outputs.json} is also the --save-dir folder: give them different names")
    if outputs.save_dir:
        check_writable(outputs.save_dir, "--save-dir", "choose a folder you can write to", folder=True)
    for source, save_dir in zip(sources, save_dirs):
        if save_dir and getattr(source, "paths", None):
            fix = f"choose another --save-dir than {outputs.save_dir}"
            found += [Output("the annotated copy", os.path.join(save_dir, name), fix)
                      for name in source.names]
    check_outputs(found, inputs)


def _check_frames_ran(done: Progress, source, stats=None) -> None:
    """A run that ended normally without one frame, or whose every frame gave NaN/inf network
    outputs (NaN weights, an fp16 overflow), is an error, with the reason."""
    if (done.status == "done" and stats is not None and done.frames
            and getattr(stats, "skipped_nonfinite", 0) >= done.frames):
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


def _numeric_ids(paths, say: Report) -> bool:
    """Whether COCO-style names (000000000139.jpg) give the image ids: all of them must, and no
    two the same (a/000000000001.jpg and b/000000000001.jpg); otherwise frame indices are the
    ids, for all frames alike, so two naming schemes never collide."""
    ids = [image_id_from_name(p, -1) for p in paths]
    if min(ids, default=-1) < 0:
        return False
    if len(set(ids)) < len(ids):
        say("note: several images have the same COCO-style number in their names: the JSON's "
            "image_id is the frame index instead (file_name tells them apart)")
        return False
    return True


def summary(done: Progress, seconds: float, pipe, source, per_source, writer, max_people: int) -> str:
    """The lines printed at the end of a run: frames, people reported (those drawn and written:
    score >= person_thr), FPS and per-stage times, what was skipped, what was written."""
    lines = []
    st = pipe.stats
    per = max(st.frames, 1)
    ms = ", ".join(f"{k} {1000 * v / per:.0f} ms" for k, v in st.seconds.items())
    status = "stopped by the error below" if done.status == "error" else done.status
    lines.append(f"{status}: {done.frames} frames, {done.people} people (score >= {pipe.person_thr:g}), "
                 f"{done.frames / max(seconds, 1e-9):.1f} FPS overall ({ms} per frame)")
    if source.skipped:
        lines.append(f"skipped {len(source.skipped)} unreadable images (first: {source.skipped[0]})")
    if st.skipped_nonfinite:
        lines.append(f"skipped {st.skipped_nonfinite} frames whose network outputs had NaN/inf")
    if st.capped:
        lines.append(f"{st.capped} frames had more than {max_people} people; the "
                     "best were kept (--max-people)")
    if getattr(source, "dropped", 0):
        lines.append(f"newest frame first: {source.dropped} of {source.read} frames read from the "
                     "live source were dropped (the model is slower than the source; --every-frame "
                     "processes all)")
    if getattr(source, "reconnects", 0):
        lines.append(f"the source reconnected {source.reconnects} times")
    for k, out in enumerate(per_source):
        tag = f"[{k}] " if len(per_source) > 1 else ""
        if out.failed:
            lines.append(f"{tag}could not write {len(out.failed)} images (first: {out.failed[0]})")
        if out.dir and (out.images or out.video_path or done.status != "error"):
            what = out.video_path or f"{out.images} images in {out.dir}"
            lines.append(f"{tag}wrote {what}")
    if writer is not None:
        lines.append(f"wrote {writer.count} people to {writer.path}")
    return "\n".join(lines)
