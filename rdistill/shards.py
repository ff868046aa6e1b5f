"""Sharding a job by query: the same assignment on every machine and Python run, so shards can run anywhere."""

from __future__ import annotations

import zlib

from rdistill.errors import UsageError


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/n' -> (i, n); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Stable assignment of a query to a shard (crc32 of its id), the same on every machine and Python run."""
    i, n = shard
    return n == 1 or zlib.crc32(key.encode("utf-8")) % n == i
