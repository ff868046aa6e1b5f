"""Metadata sidecars: what produced an output file (arguments, seed, model, versions), written next to it."""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rdistill import __version__
from rdistill.io import dumps, is_plain_output, write_text_atomic


def versions() -> dict[str, str]:
    found = {"rdistill": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "numpy", "ranx", "faiss", "bm25s"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            found[name] = str(module.__version__)
    return found


def sidecar_path(output: str | Path) -> Path:
    path = Path(output)
    return path.with_name(path.name + ".meta.json")


def write_sidecar(output: str | Path, info: dict[str, Any], started: float | None = None) -> Path | None:
    """Write ``OUTPUT.meta.json``: the caller's info plus versions, command line and time.

    ``started`` (a ``time.perf_counter()`` taken when the command began) adds ``wall_seconds``: what the stage cost,
    which ``rdistill report`` adds up per sampling source beside the items the stage counted (queries, pairs,
    groups)."""
    if not is_plain_output(output):
        return None  # -o a FIFO, a device or /dev/stdout: nowhere beside it to put a file (/dev/stdout.meta.json)
    record = {"command": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info,
              "versions": versions()}
    if started is not None:
        record["wall_seconds"] = round(time.perf_counter() - started, 3)
    path = sidecar_path(output)
    write_text_atomic(path, dumps(record) + "\n")
    return path


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
