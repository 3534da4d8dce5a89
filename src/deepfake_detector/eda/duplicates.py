"""Leakage finders: exact copies (same file bytes) and near copies (perceptual hashes within a
small Hamming distance), grouped so that each group lists every member once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

HASH_BITS = 64
DEFAULT_NEAR_DISTANCE = 4


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = defaultdict(list)
        for i in range(len(self.parent)):
            members[self.find(i)].append(i)
        return [m for m in members.values() if len(m) > 1]


def exact_duplicate_groups(digests: Sequence[str]) -> list[list[int]]:
    """Indices of items with identical content digests, one sorted list per group of 2 or more."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(digests):
        by_digest[digest].append(i)
    return sorted((g for g in by_digest.values() if len(g) > 1), key=lambda g: g[0])


def hamming_distance(a: int, b: int) -> int:
    return (int(a) ^ int(b)).bit_count()


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.bitwise_count(values) if hasattr(np, "bitwise_count") else _popcount_bytes(values)


def _popcount_bytes(values: np.ndarray) -> np.ndarray:
    as_bytes = values.astype(np.uint64).view(np.uint8).reshape(*values.shape, 8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def near_pairs(hashes: np.ndarray, max_distance: int) -> list[tuple[int, int]]:
    """All index pairs (i < j) of 64-bit hashes within `max_distance` bits, sorted.

    Multi-index hashing: cut the bits into max_distance + 1 chunks; by pigeonhole two hashes that
    differ in at most max_distance bits agree exactly on at least one chunk, so only hashes that
    share a chunk value are compared. Within each chunk's buckets (sorted by chunk value) every
    member is compared with the one d places on, for d = 1, 2, ... while any bucket is that long,
    all buckets at once: work grows with the pairs inside buckets, not with N^2.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    bounds = np.linspace(0, HASH_BITS, max_distance + 2).astype(int)
    found: list[np.ndarray] = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        keys = (hashes >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys, sorted_hashes = keys[order], hashes[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, n])
        bucket_end = np.repeat(starts + sizes, sizes)
        position = np.arange(n)
        active = position[bucket_end - position > 1]
        offset = 1
        while active.size:
            close = _popcount(sorted_hashes[active] ^ sorted_hashes[active + offset]) <= max_distance
            hit = active[close]
            a, b = order[hit], order[hit + offset]
            found.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
            offset += 1
            active = active[bucket_end[active] - active > offset]
    if not found:
        return []
    codes = np.unique(np.concatenate(found))
    return list(zip((codes // n).tolist(), (codes % n).tolist(), strict=True))


def near_duplicate_groups(
    hashes: Sequence[int], digests: Sequence[str] | None = None, max_distance: int = DEFAULT_NEAR_DISTANCE
) -> list[list[int]]:
    """Groups of items whose perceptual hashes chain within `max_distance` bits (single linkage).

    Items with identical `digests` count as one image, and a group is kept only if it holds at
    least two different contents, so pure byte-identical copies are left to the exact finder.
    """
    n = len(hashes)
    digests = list(digests) if digests is not None else [str(i) for i in range(n)]
    finder = _UnionFind(n)
    # Identical hash values are distance 0: merge them directly, then compare unique values only,
    # so a flood of identical hashes (e.g. blank images) cannot make the search quadratic.
    unique_values, first_index, inverse = np.unique(
        np.asarray([int(h) for h in hashes], dtype=np.uint64), return_index=True, return_inverse=True
    )
    for i, u in enumerate(inverse.reshape(-1).tolist()):
        finder.union(i, int(first_index[u]))
    for a, b in near_pairs(unique_values, max_distance):
        finder.union(int(first_index[a]), int(first_index[b]))
    groups = [sorted(g) for g in finder.groups() if len({digests[i] for i in g}) > 1]
    return sorted(groups, key=lambda g: g[0])
