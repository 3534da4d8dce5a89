"""Run the per-image analysis over a manifest: chunks of files in a process pool, with progress."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from deepfake_detector.data.manifest import Manifest
from deepfake_detector.eda.stats import ANALYSIS_SIZE, ChunkResult, analyse_chunk

ProgressCallback = Callable[[int], None]


def _limit_worker_threads() -> None:
    # Each worker is one core's worth of work; nested OpenCV threads would only fight each other.
    import cv2

    cv2.setNumThreads(1)


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
) -> ChunkResult:
    """Analyse every sample once. Bad files end up in `failures`, never raise."""
    items = [(i, s.path, s.label) for i, s in enumerate(manifest.samples)]
    total = ChunkResult(size)
    step = _chunk_size(len(items), workers)
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    if workers <= 1:
        _limit_worker_threads()
        for chunk in chunks:
            total.merge(analyse_chunk(chunk, size))
            if on_progress:
                on_progress(len(chunk))
    else:
        # spawn, not fork: the parent runs a progress-bar thread, and forking a threaded process
        # can deadlock the child on a lock held at fork time.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_worker_threads) as pool:
            futures = {pool.submit(analyse_chunk, chunk, size): len(chunk) for chunk in chunks}
            for future in as_completed(futures):
                total.merge(future.result())
                if on_progress:
                    on_progress(futures[future])
    total.records.sort(key=lambda r: r.index)
    total.failures.sort()
    return total
