"""A one-frame mailbox: the newest frame replaces a waiting one, so latency never queues up.

A camera at 30 FPS and a model at 5 FPS: a FIFO (or a deep subscription queue processed in order)
answers each frame later than the one before, until the queue is full and answers are seconds
old. Here the receiving side (the ROS executor's thread) puts every frame; the inference side takes
the newest; a frame that was still waiting when a newer one came is dropped and counted.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Thread-safe single slot. ``put`` never blocks; ``take`` waits for an item (or the timeout).

    Counters: ``received`` items put, ``dropped`` items replaced before anyone took them.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``, replacing a waiting one. Returns True when one was replaced (dropped)."""
        with self._cond:
            replaced = self._full
            self._item, self._full = item, True
            self.received += 1
            self.dropped += int(replaced)
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item, emptying the slot; None after ``timeout`` seconds or once closed."""
        with self._cond:
            # wait_for re-checks after each wake-up; a timeout here is seconds, not a busy loop.
            self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake a waiting ``take`` (it returns None); later puts are still counted."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
