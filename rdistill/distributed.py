"""torchrun's process layout, read once for every stage that runs under it (``train``, ``score-teacher``).

Importable without torch: ``score-teacher`` decides its shard before it loads a model.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class World(NamedTuple):
    """This process's place among torchrun's: (0, 0, 1) when run directly."""

    rank: int
    local_rank: int
    size: int

    @classmethod
    def from_env(cls) -> World:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                   int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def launched(self) -> bool:
        """Under torchrun with more than one process."""
        return self.size > 1

    def gpu(self) -> str:
        """This rank's GPU under torchrun (one GPU per local rank)."""
        return f"cuda:{self.local_rank}"
