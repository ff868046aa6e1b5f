"""Progress bars: tqdm on stderr, shown only when stderr is a terminal, so logs, pipes and CI stay clean.

Kept apart from rdistill.models so that stages which need no torch (BM25, sampling) can show progress without importing it.
"""

from __future__ import annotations

import sys
from typing import Any


def progress(total: int | None, desc: str, unit: str = "it") -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not sys.stderr.isatty(), file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
