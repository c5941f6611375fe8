"""The newest-frame reader (runtime/latest.py) on a source whose frames the test releases one by one;
tests/runtime/test_rtsp.py checks it against a real RTSP server."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from higherhrnet_trt.core.errors import UserError
from higherhrnet_trt.runtime.latest import LatestFrames
from higherhrnet_trt.runtime.multi_source import MultiSource
from higherhrnet_trt.runtime.sources import Frame, Source

pytestmark = pytest.mark.runtime  # also under Python 3.10 / NumPy 1.x: make test-py310


class Released(Source):
    """A live source that delivers frame k only once the test released k + 1 frames; after
    ``count`` frames it ends, or raises ``error``."""

    def __init__(self, count: int, error: Exception | None = None) -> None:
        super().__init__(kind="stream", description="fake stream", is_live=True)
        self.gate = threading.Semaphore(0)
        self.count = count
        self.error = error
        self.closed = False
        self.name = "fake"

    def __iter__(self):
        for k in range(self.count):
            self.gate.acquire()
            yield Frame(image=np.full((2, 2, 3), k, np.uint8), index=k, name=f"fake_{k:06d}",
                        capture_time=time.time())
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def wait_until(condition, limit_s: float = 10.0) -> None:
    end = time.monotonic() + limit_s  # hang guard only
    while not condition():
        assert time.monotonic() < end, "the reader thread did not get there"
        time.sleep(0.001)


def test_the_consumer_gets_the_newest_frame_and_drops_are_counted():
    src = Released(10)
    latest = LatestFrames(src)
    it = iter(latest)
    src.gate.release(3)  # frames 0, 1, 2 decoded while the model was busy
    wait_until(lambda: latest.read == 3)
    assert next(it).index == 2 and latest.dropped == 2
    src.gate.release(1)
    assert next(it).index == 3 and latest.dropped == 2
    src.gate.release(6)  # 4..9, then the end
    wait_until(lambda: latest.read == 10)
    assert [f.index for f in it] == [9] and latest.dropped == 7
    latest.close()
    assert src.closed and latest.name == "fake" and latest.description == "fake stream"


def test_a_source_error_reaches_the_consumer_after_the_last_frame():
    src = Released(2, error=UserError("stream x stopped delivering frames"))
    latest = LatestFrames(src)
    it = iter(latest)
    src.gate.release(1)
    assert next(it).index == 0
    src.gate.release(1)
    wait_until(lambda: latest.read == 2)
    assert next(it).index == 1
    with pytest.raises(UserError, match="stopped delivering frames"):
        next(it)
    latest.close()


def test_several_live_sources_take_the_newest_of_each_and_sum_the_drops():
    a, b = Released(5), Released(5)
    multi = MultiSource([LatestFrames(a), LatestFrames(b)])
    rounds = iter(multi)
    a.gate.release(3)
    b.gate.release(1)
    wait_until(lambda: multi.read == 4)
    assert [(t.source, t.frame.index) for t in next(rounds)] == [(0, 2), (1, 0)]
    assert multi.dropped == 2
    a.gate.release(5)  # the readers stop after their read in progress
    b.gate.release(5)
    multi.close()
    assert a.closed and b.closed


def test_run_summary_counts_the_frames_dropped():
    """run's summary line for a live source that dropped frames (the counts of MultiSource)."""
    from types import SimpleNamespace

    from higherhrnet_trt.runtime.run_loop import Progress, summary

    src = Released(3)
    multi = MultiSource([LatestFrames(src)])
    src.gate.release(3)
    wait_until(lambda: multi.read == 3)
    next(iter(multi))  # takes frame 2: 0 and 1 dropped
    stats = SimpleNamespace(frames=1, seconds={}, skipped_nonfinite=0, capped=0)
    pipe = SimpleNamespace(stats=stats, person_thr=0.15)
    text = summary(Progress(frames=1, status="done"), 1.0, pipe, multi, [], None, 30)
    multi.close()
    assert "newest frame first: 2 of 3 frames read from the live source were dropped" in text
