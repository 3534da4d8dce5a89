"""A bounded inference queue: a few threads do the work, a fixed number of jobs may wait, the rest get 503.

A job keeps its slot until its thread has really finished, even when the request that asked for it
has already timed out (a running thread cannot be stopped): so timed-out work still counts against
the queue and can never pile up unbounded behind the clients' backs.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_EWMA_WEIGHT = 0.2  # how fast the job-duration estimate behind Retry-After follows recent jobs
MAX_RETRY_AFTER_S = 30


class QueueFull(Exception):
    """No slot free: the client should come back after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"server busy: try again in {retry_after} s")


class InferenceTimeout(Exception):
    """The job did not finish within the request timeout."""


class InferencePool:
    """Run blocking jobs off the event loop with bounded admission and a per-request timeout."""

    def __init__(self, threads: int, capacity: int, timeout_s: float):
        self.threads = threads
        self.capacity = capacity
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="inference")
        self._lock = threading.Lock()
        self._admitted = 0
        self._mean_job_s = 0.1
        self.completed = 0
        self.rejected = 0
        self.timed_out = 0

    @property
    def in_flight(self) -> int:
        return self._admitted

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue drained by the threads at the mean job time."""
        estimate = self._mean_job_s * self.capacity / self.threads
        return int(min(MAX_RETRY_AFTER_S, max(1, math.ceil(estimate))))

    async def run(self, job: Callable[..., T], *args: object) -> T:
        """`job(*args)` on a pool thread; QueueFull when no slot is free, InferenceTimeout after timeout_s."""
        with self._lock:
            if self._admitted >= self.capacity:
                self.rejected += 1
                raise QueueFull(self.retry_after())
            self._admitted += 1
        try:
            future: Future[T] = self._executor.submit(self._timed, job, *args)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            self.timed_out += 1
            raise InferenceTimeout(f"no answer within the {self.timeout_s:g} s request timeout") from None

    def _timed(self, job: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        try:
            return job(*args)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._mean_job_s += _EWMA_WEIGHT * (elapsed - self._mean_job_s)

    def _release(self, done: Future | None) -> None:
        with self._lock:
            self._admitted -= 1
            if done is not None and not done.cancelled():
                self.completed += 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
