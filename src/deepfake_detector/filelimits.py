"""What is read at all: only regular files, up to these sizes (stdlib only, so --help can quote it)."""

from __future__ import annotations

MAX_FILE_BYTES = 256 * 1024 * 1024  # an image file
MAX_VIDEO_BYTES = 16 * 1024**3  # a video file


def describe_limit(limit: int) -> str:
    """A byte count for messages and --help: 256 MiB, 4 GiB, 1,000 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if limit >= size and limit % (size // 16) == 0:
            return f"{limit / size:g} {unit}"
    return f"{limit:,} bytes"


READ_POLICY = (
    "Only regular files are read (a FIFO, device or socket is an error row, never opened); images over "
    f"{describe_limit(MAX_FILE_BYTES)} and videos over {describe_limit(MAX_VIDEO_BYTES)} are refused."
)
