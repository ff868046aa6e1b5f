"""Options shared by several subcommands, declared once so their names and help read the same everywhere, and the
checks several commands make (an input named twice, stdin read more than once)."""

from __future__ import annotations

import contextlib
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


def check_stdin(inputs: dict[str, str | list[str] | None]) -> None:
    """Refuse up front two inputs that both claim standard input (``-``, /dev/stdin): the second would find it
    empty or read the first one's data. ``inputs`` maps how the user named each input to its value(s)."""
    from rdistill.io import claims_stdin

    claimed = [f"{label} {item}" for label, value in inputs.items()
               for item in (value if isinstance(value, list) else [value]) if claims_stdin(item)]
    if len(claimed) > 1:
        raise UsageError(f"{' and '.join(claimed)} both read standard input, which can be read only once; "
                         "give all but one of them as a file")


def check_corpus(spec: str | None) -> None:
    """Refuse, before any model loads, a corpus that cannot be indexed (stdin, a pipe: see ``data.corpus_file``)."""
    from rdistill.data import corpus_file, is_irds

    if spec is not None and not is_irds(spec):
        corpus_file(spec)


def readable_twice(source: str) -> contextlib.AbstractContextManager[str]:
    """A path that can be read more than once (see :func:`rdistill.io.rereadable`: a stream spooled once)."""
    from rdistill.io import rereadable

    return rereadable(source)
