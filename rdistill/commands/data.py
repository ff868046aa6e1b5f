"""``rdistill data``: a thin typer group over :mod:`rdistill.datasets` (``rdistill data export``)."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.datasets import RECIPES, export

app = typer.Typer(
    name="data",
    help="Get the test collections: export them from ir_datasets as BEIR folders; carve a dev split; give ids to "
    "a file of queries without them.\n\n"
    "\b\nExample (the three collections of `make demo`, into data/; downloads once, online):\n"
    "  rdistill data export irds:beir/scifact data/scifact\n"
    "  rdistill data export irds:cranfield data/cranfield\n"
    "  rdistill data export irds:vaswani data/vaswani",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@app.command("export")
def export_command(
    dataset: Annotated[str, typer.Argument(help="The collection: " + ", ".join(f"irds:{k}" for k in RECIPES) + ".",
                                           metavar="irds:ID", show_default=False)],
    folder: Annotated[str, typer.Argument(help="The BEIR folder to write (created; its files are replaced).",
                                          metavar="DIR", show_default=False)],
) -> None:
    """Write an ir_datasets collection as a BEIR folder, split as ../shared/data is.

    Writes DIR/corpus.jsonl ({"_id", "title", "text"}), DIR/queries.jsonl ({"_id", "text"}) and
    DIR/qrels/SPLIT.tsv, which every stage reads (--corpus DIR --queries DIR --qrels DIR --split SPLIT).
    scifact keeps BEIR's train and test splits and texts; cranfield's test split is the query ids divisible by 3
    (train the others), its relevance codes 1..4 are inverted (4 = most relevant) and its "-1" judgments dropped;
    vaswani has a test split only. ir_datasets (pip install -e '.[irds]') downloads a collection once into
    $IR_DATASETS_HOME (~/.ir_datasets) and reads it offline afterwards; without the package or the files it is a
    one-line error. All files are written atomically, all or none.

    \b
    Example (then `make demo DATA=data`):
      rdistill data export irds:cranfield data/cranfield
    """
    from rdistill.cli import verbose

    summary = export(dataset, folder, quiet=not verbose())
    typer.echo(f"data export: {dataset} -> {summary.line()}", err=True)


@app.command("split")
def split_command(
    source: Annotated[str, typer.Argument(help="The BEIR folder whose training split is carved.", metavar="SRC",
                                          show_default=False)],
    folder: Annotated[str, typer.Argument(help="The BEIR folder to write: qrels/train.tsv and qrels/dev.tsv, with "
                                          "corpus.jsonl and queries.jsonl linked to SRC's.", metavar="DIR",
                                          show_default=False)],
    dev: Annotated[int, typer.Option("--dev", help="Queries to hold out as dev.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Which queries: the same seed gives the same split.")] = 42,
    split: Annotated[str, typer.Option("--from", help="The split of SRC to carve.")] = "train",
) -> None:
    """Carve a dev split out of a training split, to choose configurations without touching the test split.

    Each judged query of SRC's --from split is ranked by crc32 of "SEED:QUERY_ID" and the first --dev of them go
    to DIR/qrels/dev.tsv, the others (with all their judgment lines, in SRC's order) to DIR/qrels/train.tsv. The
    split depends only on the ids and the seed, never on file order. corpus.jsonl and queries.jsonl in DIR are
    links to SRC's, so DIR is a BEIR folder every stage reads (--split train or --split dev); SRC's other splits
    (test) are not carried over, so nothing tuned on DIR can see them.

    \b
    Example (the demo's dev split: 100 of scifact's 809 training queries):
      rdistill data split ../shared/data/scifact out/dev/scifact --dev 100 --seed 42
      rdistill retrieve --corpus out/dev/scifact --queries out/dev/scifact --split dev --k 20 > bm25.dev.trec
    """
    from rdistill.splits import carve

    summary = carve(source, folder, dev, seed, split)
    typer.echo(f"data split: {summary.line()}", err=True)


@app.command("queries")
def queries_command(
    source: Annotated[str, typer.Argument(help="One query a line (plain text, UTF-8, or gzipped); - for stdin.",
                                          metavar="FILE", show_default=False)] = "-",
    output: Annotated[str | None, typer.Option("-o", "--output", help="Write here (atomically) instead of stdout.",
                                               metavar="FILE")] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Ids are PREFIX + the line number.")] = "q",
    keep_duplicates: Annotated[bool, typer.Option("--keep-duplicates",
                                                  help="Keep a query that repeats an earlier one.")] = False,
) -> None:
    """Give ids to queries that have none, for a domain without judgments.

    Reads one query a line (a query log, questions your users asked) and writes queries JSONL
    ({"_id": "q12", "text": ...}: the id is --prefix and the line number), which --queries reads everywhere.
    Blank lines are skipped; a repeated query (the same text once whitespace is collapsed) is kept once, at its
    first line, unless --keep-duplicates. Then distil without a single judgment: BM25 candidates, the teacher's
    scores, `sample --positives teacher:1` (or `none`) and `train` (`make demo LABELS=none` is this chain on
    scifact).

    \b
    Example (a domain student from a query log and a corpus, no judgments):
      rdistill data queries questions.txt -o queries.jsonl
      rdistill retrieve --corpus corpus.jsonl --queries queries.jsonl --k 100 --index idx -o bm25.trec
      rdistill score-teacher --model all-MiniLM-L6-v2 --queries queries.jsonl --corpus corpus.jsonl bm25.trec \\
        | rdistill sample --strategy teacher --positives teacher:1 --window 1:100 > groups.jsonl
      rdistill train --student bi --frozen-documents --model all-MiniLM-L6-v2 --loss kl --teacher-scale 20 \\
        --queries queries.jsonl --corpus corpus.jsonl --out student groups.jsonl
    """
    from rdistill.data import number_queries
    from rdistill.io import open_output

    with open_output(output) as out:
        summary = number_queries(source, out, prefix, keep_duplicates)
    typer.echo(f"data queries: {summary.line()}", err=True)
