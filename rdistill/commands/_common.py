"""Options shared by several subcommands, declared once so their names and help read the same everywhere, and the
checks several commands make (an input named twice, stdin read more than once)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from rdistill.errors import UsageError

QueriesOpt = Annotated[str, typer.Option("--queries", help="Queries: a BEIR folder, a JSONL or TSV file, - for stdin, "
                                         "or irds:ID.", metavar="SPEC")]
CorpusOpt = Annotated[str, typer.Option("--corpus", help="Documents: a BEIR folder, a JSONL or TSV file, or irds:ID.",
                                        metavar="SPEC")]
QrelsOpt = Annotated[str, typer.Option("--qrels", help="Judgments: a BEIR folder (with --split), a TREC or BEIR qrels "
                                       "file, or irds:ID. A pair judged twice with different grades is refused "
                                       "(FILE:LINE); with the same grade it counts once (a note says so).",
                                       metavar="SPEC")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of a BEIR folder (train, dev, test).")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="Write here (atomically) instead of stdout; "
                                               ".gz compresses.", metavar="FILE")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; recorded in the output's metadata.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, or auto (a GPU when there is one).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp32 (default), bf16 (on the CPU: fp32 weights under bf16 "
                                       "autocast, fast where the CPU has AMX or AVX512-BF16), fp16 (GPU only), or "
                                       "int8 (CPU: dynamic int8 through ONNX Runtime, the [models] extra).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Texts or pairs per forward pass.")]
ShardOpt = Annotated[str | None, typer.Option("--shard", help="Process only shard I of N (I in 0..N-1), e.g. 0/4, "
                                              "splitting the work by query.", metavar="I/N")]


def check_distinct(names: list[str], what: str = "an input") -> None:
    """A file named twice would be read twice; for ``-`` the second read finds stdin empty."""
    if len(set(names)) != len(names):
        raise UsageError(f"{what} is named twice (stdin can be read only once)")


@contextlib.contextmanager
def readable_twice(source: str) -> Iterator[str]:
    """A path that can be read more than once: ``source`` itself, or stdin spooled to a temporary file (bounded
    memory whatever the input's size), removed when the block ends."""
    if source != "-":
        yield source
        return
    from rdistill.io import open_binary

    with tempfile.TemporaryDirectory(prefix="rdistill-stdin-") as scratch:
        path = str(Path(scratch) / "input")
        with open_binary("-") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path
