"""The frame loop of ``higherhrnet-trt run`` (runtime/run_cli.py sets up sources, model and outputs).

Each round holds one frame of every source still running (runtime/multi_source.py; one source
gives rounds of one frame); the round is predicted as one batch, then each frame's people go to
the JSON and its annotated copy to that source's output and window.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Progress:
    """What the frame loop has done so far (read by the summary, however the loop ended)."""

    frames: int = 0
    people: int = 0
    status: str = "error"  # until the loop ends by itself or by the user
    fps: float = 0.0
    too_large: list[str] = field(default_factory=list)  # frames refused by core/limits.py


def progress_bar(args, source):
    """tqdm over frames (of all sources): total known for files, capped by --max-frames."""
    import sys

    from tqdm import tqdm

    total = source.length
    if args.max_frames:
        cap = args.max_frames * len(source)
        total = min(total, cap) if total else (None if source.is_live else cap)
    return tqdm(total=total, unit="frame", desc="run", dynamic_ncols=True,
                disable=args.no_progress, file=sys.stderr)


def frame_loop(args, pipe, source, outputs, writer, bar, numeric, done: Progress, cv2) -> None:
    """Rounds of frames (one per source still running) -> one predict_batch each -> JSON records,
    annotated images / video per source, the window. Counts into ``done``; sets its status when
    the sources end, --max-frames is reached or the window is closed."""
    import time

    from .draw import draw_fps, draw_poses
    from .results import image_id_from_name
    from .run_outputs import WINDOW, _window_closed

    kp = pipe.keypoints
    several = len(source) > 1
    t_prev = time.perf_counter()
    for rounds, round_ in enumerate(source):
        if args.max_frames and rounds >= args.max_frames:
            break
        all_poses = _predict_round(pipe, round_, done)
        for t, poses in zip(round_, all_poses):
            if poses is None:  # too large for the network input limits: skipped and counted
                continue
            frame = t.frame
            if writer is not None:
                if several:  # frame indices repeat across sources: the running count is the id
                    writer.add(poses, done.frames, file_name=frame.name, source=t.source)
                else:
                    image_id = image_id_from_name(frame.name, frame.index) if numeric else frame.index
                    writer.add(poses, image_id, file_name=frame.name)
            done.frames += 1
            done.people += len(poses)
            if args.save_dir or args.show:
                vis = draw_poses(frame.image, poses, kp, args.kpt_thr, boxes=args.boxes,
                                 inplace=True, person_thr=args.person_thr)
                outputs[t.source].write(frame, vis)
            if args.show:
                name = WINDOW if t.source == 0 else f"{WINDOW} [{t.source}]"
                cv2.imshow(name, draw_fps(vis, done.fps, f"{len(poses)} people"))
        now = time.perf_counter()
        rate = len(round_) / max(now - t_prev, 1e-9)
        done.fps = rate if done.fps == 0.0 else 0.9 * done.fps + 0.1 * rate  # smoothed, for display
        t_prev = now
        if args.show and _window_closed(cv2):
            done.status = "stopped from the window"
            return
        bar.update(len(round_))
        bar.set_postfix(people=sum(len(p) for p in all_poses if p is not None), fps=f"{done.fps:.1f}",
                        refresh=False)
    done.status = "done"  # the sources ended, or --max-frames


def _predict_round(pipe, round_, done: Progress) -> list:
    """The round's people, one predict_batch call; when a frame is too large for the network input
    limits (core/limits.py) the round is predicted frame by frame and that frame's entry is None
    (one odd image must not end a folder's run: it is skipped and counted in ``done``)."""
    import sys

    from higherhrnet_trt.core.limits import FrameTooLarge

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
