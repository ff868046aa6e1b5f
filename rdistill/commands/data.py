"""``rdistill data``: a thin typer group over :mod:`rdistill.datasets` (``rdistill data export``)."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.datasets import RECIPES, export

app = typer.Typer(
    name="data",
    help="Get the test collections: export them from ir_datasets as BEIR folders; carve a dev split.\n\n"
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
