"""Following faces from one sampled frame to the next by box overlap (IoU), so each person gets a track.

Greedy IoU linking: in each frame, the (track, face) pairs are taken from the highest overlap
down; a pair links when its IoU is at least `iou_threshold` and neither side is taken yet. A face
left over starts a new track; a track unseen for more than `max_gap` sampled frames is closed.
This needs faces to overlap between consecutive *sampled* frames: fine for a short clip or a
small `--every`, while a few frames spread over a long video (faces seconds apart) may split one
person into several short tracks (see video/aggregate.py for how short tracks are treated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deepfake_detector.data.faces import Box

IOU_THRESHOLD = 0.3
MAX_GAP = 2  # sampled frames a face may be missed (a blink of the detector) and keep its track


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes (0 when either is empty)."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Open:
    track_id: int
    box: Box
    last_step: int


class IouTracker:
    """Feed the face boxes of each sampled frame in order; get back a track id per box."""

    def __init__(self, iou_threshold: float = IOU_THRESHOLD, max_gap: int = MAX_GAP):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {max_gap}")
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.step = -1
        self.next_id = 0
        self.open: list[_Open] = []

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Track ids for the boxes of the next sampled frame (in the order given)."""
        self.step += 1
        self.open = [t for t in self.open if self.step - t.last_step <= self.max_gap + 1]
        pairs = sorted(
            (
                (iou(track.box, box), track.last_step, -t, -b)
                for t, track in enumerate(self.open)
                for b, box in enumerate(boxes)
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        taken: set[int] = set()
        for overlap, _, neg_t, neg_b in pairs:  # best overlap first; ties: the most recently seen track
            if overlap < self.iou_threshold:
                break
            t, b = -neg_t, -neg_b
            if t in taken or ids[b] is not None:
                continue
            taken.add(t)
            ids[b] = self.open[t].track_id
            self.open[t].box = boxes[b]
            self.open[t].last_step = self.step
        for b, box in enumerate(boxes):
            if ids[b] is None:
                ids[b] = self.next_id
                self.open.append(_Open(self.next_id, box, self.step))
                self.next_id += 1
        return [int(i) for i in ids if i is not None]
