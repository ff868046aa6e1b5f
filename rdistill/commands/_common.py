"""Options shared by several subcommands, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from typing import Annotated

import typer

QueriesOpt = Annotated[str, typer.Option("--queries", help="Queries: a BEIR folder, a JSONL or TSV file, - for stdin, "
                                         "or irds:ID.", metavar="SPEC")]
CorpusOpt = Annotated[str, typer.Option("--corpus", help="Documents: a BEIR folder, a JSONL or TSV file, or irds:ID.",
                                        metavar="SPEC")]
QrelsOpt = Annotated[str, typer.Option("--qrels", help="Judgments: a BEIR folder (with --split), a TREC or BEIR qrels "
                                       "file, or irds:ID.", metavar="SPEC")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="Split of a BEIR folder (train, dev, test).")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="Write here (atomically) instead of stdout; "
                                               ".gz compresses.", metavar="FILE")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; recorded in the output's metadata.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N, or auto (a GPU when there is one).")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="fp32 (default), bf16, fp16 (GPU only), or int8 (CPU: "
                                       "dynamic int8 through ONNX Runtime, the [models] extra).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Texts or pairs per forward pass.")]
ShardOpt = Annotated[str | None, typer.Option("--shard", help="Process only shard I of N (I in 0..N-1), e.g. 0/4, "
                                              "splitting the work by query.", metavar="I/N")]
