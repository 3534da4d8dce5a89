"""Decode many image files in parallel, in input order, with a bounded number in flight.

Threads are enough: simplejpeg, OpenCV and Pillow's decoders release the GIL while they work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from deepfake_detector.data.images import UnreadableImage, load_image

Source = str | Path | bytes
T = TypeVar("T")

# Files decoded ahead of the consumer per worker: enough to hide decode latency, few enough to bound memory.
READ_AHEAD_PER_WORKER = 16


def decode_one(source: Source, size: int | tuple[int, int] | None) -> np.ndarray | UnreadableImage:
    """One image file (or its bytes) at `size`, or the UnreadableImage saying why not (never raises
    for a bad file). Decoded arrays are checked by pipeline.as_rgb_array, not here."""
    try:
        return load_image(source, size=size)
    except UnreadableImage as exc:
        return exc
    except Exception as exc:  # a decoder bug on one odd file must not stop a batch of thousands
        return UnreadableImage(None if isinstance(source, bytes) else source, f"cannot decode ({exc})")


def iter_mapped(
    items: Iterable[T], func: Callable[[T], object], workers: int = 2, read_ahead: int | None = None
) -> Iterator[tuple[int, object]]:
    """(index, func(item)) in input order, computed by `workers` threads with at most `read_ahead` pending.

    `func` must not raise for one bad item (return an error value instead); if it does, the
    exception propagates here.
    """
    if workers <= 1:
        for index, item in enumerate(items):
            yield index, func(item)
        return
    limit = read_ahead or workers * READ_AHEAD_PER_WORKER
    pending: deque[tuple[int, Future]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        try:
            for index, item in enumerate(items):
                pending.append((index, pool.submit(func, item)))
                if len(pending) >= limit:
                    done_index, future = pending.popleft()
                    yield done_index, future.result()
            while pending:
                done_index, future = pending.popleft()
                yield done_index, future.result()
        finally:  # consumer stopped early: drop queued work instead of decoding it
            for _, future in pending:
                future.cancel()


def iter_decoded(
    paths: Iterable[Source], size: int | tuple[int, int] | None, workers: int = 2
) -> Iterator[tuple[int, np.ndarray | UnreadableImage]]:
    """(index, RGB uint8 image at `size` or the UnreadableImage) for each input, in input order."""
    yield from iter_mapped(paths, lambda source: decode_one(source, size), workers=workers)  # type: ignore[misc]


def batched(iterator: Iterable[T], batch_size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `batch_size` items."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    batch: list[T] = []
    for item in iterator:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
