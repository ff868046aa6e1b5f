"""``rdistill data``: a thin typer group over :mod:`rdistill.datasets` (``rdistill data export``)."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.datasets import RECIPES, export

app = typer.Typer(
    name="data",
    help="Get the test collections: export them from ir_datasets as BEIR folders.\n\n"
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
