"""Several sources through one model: frames are read in rounds and each round is one batch.

``run --source A --source B ...`` and :func:`predict_sources` read one frame from every source that
is still running, then send the round's frames to ``Pipeline.predict_batch`` together: with a
model exported with ``--dynamic-batch`` the frames whose network inputs have the same shape
(cameras of one resolution, or any frames with a fixed-size model) go through one engine call.
Each result says which source it came from (the source's index in the list).

Policy, the same as for one source, per source:
- a source that ends (a video file, a folder) leaves the rounds; the others go on;
- a live source that drops is reopened by its own reconnect policy (runtime/streams.py) while
  the round waits; one that does not come back stops the whole run with its one-line error, after
  the outputs of every source are closed with all frames processed so far.

Sources are read one after the other in the calling thread, as the single-source loop reads its
one source: with a model slower than the cameras, each camera's own buffer holds the frames
waiting (OpenCV keeps a few and drops older ones for live captures).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from . import sources as _sources
from .sources import Frame, Source


@dataclass
class Tagged:
    """One frame of a round: the source's index in the list, and the frame."""

    source: int
    frame: Frame


class MultiSource:
    """N opened sources read in rounds (iterate for ``list[Tagged]``, one entry per source still
    running). ``close()`` closes them all. Attributes mirror a single Source for the run summary:
    length (total frames when every source knows its length, else None), is_live, skipped,
    reconnects, description."""

    def __init__(self, sources: Sequence[Source]) -> None:
        if not sources:
            raise ValueError("MultiSource needs at least one source")
        self.sources = list(sources)
        lengths = [s.length for s in self.sources]
        self.length = None if None in lengths else sum(lengths)
        self.is_live = any(s.is_live for s in self.sources)
        self.description = (self.sources[0].description if len(self.sources) == 1 else
                            "; ".join(f"[{k}] {s.description}" for k, s in enumerate(self.sources)))

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def skipped(self) -> list[str]:
        return [p for s in self.sources for p in s.skipped]

    @property
    def reconnects(self) -> int:
        return sum(getattr(s, "reconnects", 0) for s in self.sources)

    def __iter__(self) -> Iterator[list[Tagged]]:
        iterators = {k: iter(s) for k, s in enumerate(self.sources)}
        while iterators:
            round_ = []
            for k in list(iterators):
                try:
                    round_.append(Tagged(k, next(iterators[k])))
                except StopIteration:  # this source ended; the others go on
                    del iterators[k]
            if round_:
                yield round_

    def close(self) -> None:
        for s in self.sources:
            s.close()

    def __enter__(self) -> MultiSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sources(specs: Sequence[str | int], **options) -> MultiSource:
    """open_source() for each spec (options go to each: timeout_s=, max_reconnects=, ...). When
    one fails to open, those already opened are closed before the error goes up."""
    opened: list[Source] = []
    try:
        for spec in specs:
            opened.append(_sources.open_source(spec, **options))  # module attribute: tests swap it
    except BaseException:
        for s in opened:
            s.close()
        raise
    return MultiSource(opened)


def predict_sources(pipe, sources, max_rounds: int | None = None,
                    **source_options) -> Iterator[list[tuple[int, Frame, object]]]:
    """The Python API of ``run --source A --source B``: per round, ``[(source index, Frame,
    Poses)]`` for every source still running, the round's frames predicted in one
    ``pipe.predict_batch`` call.

    sources: a MultiSource, or specs for :func:`open_sources` (paths, camera indices, URLs, ...;
        those are closed at the end). source_options: passed to open_sources.
    max_rounds: stop after this many rounds (None: until every source ends).
    A Pipeline with ``track`` tracks each source's frames with a tracker of its own.
    """
    multi = sources if isinstance(sources, MultiSource) else open_sources(sources, **source_options)
    try:
        for n, round_ in enumerate(multi):
            if max_rounds is not None and n >= max_rounds:
                break
            images = [t.frame.image for t in round_]
            poses = (pipe.predict_batch(images, [t.source for t in round_]) if getattr(pipe, "track", False)
                     else pipe.predict_batch(images))  # a tracker per source; GpuPipeline takes frames only
            yield [(t.source, t.frame, p) for t, p in zip(round_, poses)]
    finally:
        if multi is not sources:
            multi.close()
