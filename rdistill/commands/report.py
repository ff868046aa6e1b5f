"""`rdistill report`: the study's tables and plot from the run files a study leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rdistill.commands._common import OutputOpt


def command(
    runs: Annotated[Path, typer.Option("--runs", help="Folder of student runs: COLLECTION/SOURCE[~CUT].LOSS.sSEED.trec.",
                                       metavar="DIR")],
    qrels: Annotated[list[str], typer.Option("--qrels", help="A test collection as NAME=SPEC[:SPLIT]; repeat it. The "
                                             "first is in-domain, the others out-of-domain.", metavar="NAME=SPEC")],
    baselines: Annotated[Path | None, typer.Option("--baselines", help="Folder of reference runs: COLLECTION/NAME.trec "
                                                   "(e.g. bm25, teacher), shown below each table.", metavar="DIR")] = None,
    entropy: Annotated[str | None, typer.Option("--entropy", help="Per-query teacher entropy on the in-domain test "
                                                "queries (JSONL from `rdistill entropy`), for --plot.",
                                                metavar="FILE")] = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Write the entropy-vs-nDCG@10 plot here (PNG); needs "
                                             "--entropy.", metavar="FILE.png")] = None,
    groups: Annotated[Path | None, typer.Option("--groups", help="Folder of the sampling sources' groups "
                                                "(SOURCE.jsonl with .meta.json sidecars): adds what each source's "
                                                "groups cost.", metavar="DIR")] = None,
    margin: Annotated[float, typer.Option("--equivalence-margin", help="TOST margin, absolute on the measure.")] = 0.01,
    alpha: Annotated[float, typer.Option("--equivalence-alpha", help="TOST significance level.")] = 0.10,
    output: OutputOpt = None,
) -> None:
    """Write the study report: one markdown table per study, equivalence groups marked, and a plot.

    Rows are loss x sampling source (the paper's tables; a second table for students trained on entropy cuts),
    columns are in-domain nDCG@10 and AP and out-of-domain nDCG@10. Seeds of one system are averaged per query
    (its seeds column says how many).
    In each column the best system is bold and every system equivalent to it by TOST (paired, Holm-corrected) is
    marked. Bold goes to the best row of a column including the baselines (BM25, the teacher, the untrained
    student), so a column where a baseline leads shows no bold student. `make demo` and `make grid` call this;
    rerun it by hand to regenerate the report from the runs.

    --groups DIR adds a table of what each sampling source's groups cost: the first-stage runs used, the pairs
    the teacher (and BM25 as a teacher) scored, and the wall seconds of every stage that made them, followed
    back from DIR/SOURCE.jsonl through the inputs each stage's .meta.json sidecar names (outputs written with -o).

    \b
    Example:
      rdistill entropy < out/demo/baselines/scifact/teacher.trec > out/demo/entropy.test.jsonl
      rdistill report --runs out/demo/runs --baselines out/demo/baselines --groups out/demo/groups \\
          --qrels scifact=../shared/data/scifact:test --qrels cranfield=../shared/data/cranfield:test \\
          --entropy out/demo/entropy.test.jsonl --plot out/demo/entropy_vs_ndcg.png -o out/demo/report.md
    """
    from rdistill.data import load_qrels
    from rdistill.errors import UsageError
    from rdistill.io import open_output
    from rdistill.report import (
        Collection,
        build_tables,
        parse_collection_arg,
        plot_entropy_vs_effectiveness,
        read_entropy,
        render,
    )

    if plot and not entropy:
        raise UsageError("--plot needs --entropy (per-query teacher entropy from `rdistill entropy`)")
    collections = []
    for text in qrels:
        name, spec, split = parse_collection_arg(text)
        collections.append(Collection(name, load_qrels(spec, split)))
    tables, in_domain = build_tables(runs, collections, baselines, margin=margin, alpha=alpha)
    if plot and entropy:
        plot_entropy_vs_effectiveness(read_entropy(entropy), in_domain, plot)
    cost_text = None
    if groups is not None:
        from rdistill.cost import cost_table, source_costs

        sources = sorted({s.source for table in tables for s in table.systems if s.cut is None})
        costs = source_costs(groups, sources)
        cost_text = cost_table(costs) if costs else None
    with open_output(output) as out:
        out.write(render(tables, collections, margin, alpha, plot, cost_text))
