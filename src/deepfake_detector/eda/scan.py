"""Run the per-image analysis over a manifest: chunks of files in a process pool, with progress."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from deepfake_detector.data.manifest import Manifest
from deepfake_detector.eda.stats import ANALYSIS_SIZE, ChunkResult, analyse_chunk

ProgressCallback = Callable[[int], None]
ChunkCallback = Callable[[ChunkResult], None]


def _limit_worker_threads() -> None:
    # Each worker is one core's worth of work; nested OpenCV threads would only fight each other.
    import cv2

    cv2.setNumThreads(1)


def _init_worker(parent_pid: int) -> None:
    _limit_worker_threads()
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    # A parent killed with SIGKILL cannot stop its pool, and idle workers would wait on the task
    # queue forever: leave once this process has been handed to another parent.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _chunk_size(n_items: int, workers: int) -> int:
    # Small enough to balance the load and keep the bar moving, big enough that the per-chunk
    # spectrum/pixel sums sent back between processes are negligible.
    return max(8, min(256, n_items // max(1, workers * 8) or 1))


def scan_manifest(
    manifest: Manifest,
    *,
    workers: int = 2,
    size: int = ANALYSIS_SIZE,
    on_progress: ProgressCallback | None = None,
    done: ChunkResult | None = None,
    on_chunk: ChunkCallback | None = None,
) -> ChunkResult:
    """Analyse every sample once. Bad files end up in `failures`, never raise.

    `done`: the result of an interrupted scan; its files are skipped and the rest merged into it.
    `on_chunk` sees each chunk's result as it arrives (the eda checkpoint appends it).
    """
    finished = {r.index for r in done.records} | {i for i, _ in done.failures} if done is not None else set()
    items = [(i, s.path, s.label) for i, s in enumerate(manifest.samples) if i not in finished]
    total = done if done is not None else ChunkResult(size)
    step = _chunk_size(len(items), workers)
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    if workers <= 1:
        _limit_worker_threads()
        for chunk in chunks:
            result = analyse_chunk(chunk, size)
            total.merge(result)
            if on_chunk:
                on_chunk(result)
            if on_progress:
                on_progress(len(chunk))
    else:
        # spawn, not fork: the parent runs a progress-bar thread, and forking a threaded process
        # can deadlock the child on a lock held at fork time.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
        ) as pool:
            futures = {pool.submit(analyse_chunk, chunk, size): len(chunk) for chunk in chunks}
            for future in as_completed(futures):
                result = future.result()
                total.merge(result)
                if on_chunk:
                    on_chunk(result)
                if on_progress:
                    on_progress(futures[future])
    total.records.sort(key=lambda r: r.index)
    total.failures.sort()
    return total
