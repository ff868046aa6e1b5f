"""``rdistill eval``: a thin typer wrapper over :mod:`rdistill.evaluation` and :mod:`rdistill.stats`."""

from __future__ import annotations

from typing import Annotated, Any, TextIO

import typer

from rdistill.commands._common import OutputOpt, QrelsOpt, SplitOpt
from rdistill.errors import UsageError
from rdistill.evaluation import DEFAULT_METRICS, Evaluation
from rdistill.schema import is_finite
from rdistill.stats import CORRECTIONS, DEFAULT_ALPHA, DEFAULT_MARGIN, DEFAULT_TOST_ALPHA, Comparison


def command(
    qrels: QrelsOpt,
    runs: Annotated[list[str] | None, typer.Argument(help="TREC runs (plain or .gz); - for stdin (the default).",
                                                     metavar="RUN", show_default=False)] = None,
    split: SplitOpt = None,
    metrics: Annotated[str, typer.Option("--metrics", "-m", help="Comma-separated measures in ranx's names: "
                                         "ndcg@K, map, map@K, mrr, mrr@K, precision@K, recall@K; a suffix -lN "
                                         "sets one measure's relevance level (map-l2).")] = ",".join(DEFAULT_METRICS),
    rel_level: Annotated[int, typer.Option("--rel-level", "-l", help="Minimum relevance level of a relevant "
                                           "document for map, mrr, precision and recall (trec_eval -l); nDCG "
                                           "always uses the graded levels as gains.")] = 1,
    complete: Annotated[bool, typer.Option("--complete", "-c", help="Average over every judged query, a query "
                                           "missing from the run scoring 0 (trec_eval -c). Default: only the "
                                           "queries with both judgments and results.")] = False,
    json: Annotated[bool, typer.Option("--json", help="JSON instead of a table: one object for one run; JSON "
                                       "Lines, one object per run with a \"run\" key, for several.")] = False,
    per_query: Annotated[bool, typer.Option("--per-query", "-q", help="Every query's value, in trec_eval -q's "
                                            "layout 'measure<TAB>qid<TAB>value', then the 'all' means (with "
                                            "--json: one object per query).")] = False,
    digits: Annotated[int, typer.Option("--digits", min=1, max=17, help="Decimals in the table and -q output "
                                        "(JSON is exact).")] = 4,
    tests: Annotated[bool | None, typer.Option("--tests/--no-tests", help="Compare the runs: paired t-tests "
                                               "against --baseline and TOST equivalence to the best run. "
                                               "Default: on for a table of several runs, off for --json.",
                                               show_default=False)] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="The run the others are t-tested against "
                                                 "(as named on the command line). Default: the first.")] = None,
    correction: Annotated[str, typer.Option("--correction", help="Multiple-comparison correction of each "
                                            "measure's p-values: holm, bonferroni or none.")] = "holm",
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the t-tests (after "
                                         "correction).")] = DEFAULT_ALPHA,
    margin: Annotated[float, typer.Option("--equivalence-margin", help="TOST margin delta, on the measure's "
                                          "scale: equivalent means the mean difference lies within +-delta.")]
    = DEFAULT_MARGIN,
    tost_alpha: Annotated[float, typer.Option("--equivalence-alpha", help="Level of the two one-sided tests "
                                              "(the paper's 0.10).")] = DEFAULT_TOST_ALPHA,
    output: OutputOpt = None,
) -> None:
    """Evaluate TREC runs against qrels, exactly as trec_eval would, and compare them.

    Measures (ranx's definitions, computed with numpy) are taken on each query's documents ranked as trec_eval
    ranks them (score descending, ties by docno descending; the rank column is ignored), so every value equals
    trec_eval's: map, recip_rank (mrr), P_K (precision@K), recall_K (recall@K), ndcg_cut_K (ndcg@K), map_cut_K
    (map@K). As in trec_eval, a run's queries without judgments are ignored, a judged query without relevant
    documents scores 0, and the mean is over the queries with both judgments and results unless -c is given.

    Several runs print side by side, one row each, followed by the tests that compare them: a two-sided paired
    t-test of each run against the baseline per measure, p-values corrected over the runs (Holm by default), and
    the paper's equivalence groups: each run's two one-sided paired t-tests (TOST) against the best run with the
    named --equivalence-margin at alpha 0.10. Pairs use the queries both runs were evaluated on.

    \b
    Example:
      rdistill eval --qrels ../shared/data/cranfield --split test \\
          --metrics ndcg@10,map,mrr,precision@10,recall@100 --json run.trec
      rdistill eval --qrels sample_data/qrels.txt -q sample_data/run.trec
      rdistill eval --qrels ../shared/data/scifact --split test bm25.trec dense.trec student.trec
    """
    from rdistill.data import load_qrels
    from rdistill.evaluation import evaluate_many, parse_measures
    from rdistill.io import open_output, read_run_table

    names = runs or ["-"]
    if len(set(names)) != len(names):
        raise UsageError("a run is named twice (stdin can be read only once)")
    if correction not in CORRECTIONS:
        raise UsageError(f"--correction {correction!r}: expected one of {', '.join(CORRECTIONS)}")
    if not margin > 0:
        raise UsageError("--equivalence-margin must be positive")
    if baseline is not None and baseline not in names:
        raise UsageError(f"--baseline {baseline!r} is not one of the runs given: {', '.join(names)}")
    measures = parse_measures(metrics)  # before reading anything: a typo fails fast
    judged = load_qrels(qrels, split)
    loaded = [(name, read_run_table(name)) for name in names]
    evaluations = evaluate_many(judged, loaded, measures, complete=complete, rel_level=rel_level)
    keys = [m.name for m in measures]

    comparison: Comparison | None = None
    if tests is None:
        tests = len(names) > 1 and not json and not per_query
    if tests:
        if len(names) < 2:
            raise UsageError("--tests needs at least two runs")
        from rdistill.stats import compare

        comparison = compare({e.name: e.per_query for e in evaluations}, keys, baseline or names[0],
                             correction=correction, alpha=alpha, tost_alpha=tost_alpha, margin=margin)

    with open_output(output) as out:
        if per_query:
            _write_per_query(out, evaluations, keys, digits, json)
        elif json:
            _write_json(out, evaluations, comparison)
        else:
            _write_table(out, evaluations, keys, digits)
            if comparison is not None:
                _write_tests(out, comparison, digits)


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _write_per_query(out: TextIO, evaluations: list[Evaluation], keys: list[str], digits: int, json: bool) -> None:
    from rdistill.io import dumps

    several = len(evaluations) > 1
    for e in evaluations:
        if json:
            for q in e.queries:
                record: dict[str, Any] = {"run": e.name} if several else {}
                record["query_id"] = q
                record.update({k: e.per_query[k][q] for k in keys})
                out.write(dumps(record) + "\n")
            continue
        if several:  # trec_eval's own header line, so that blocks of several runs can be told apart
            out.write(f"runid\tall\t{e.name}\n")
        for q in e.queries:
            for k in keys:
                out.write(f"{k}\t{q}\t{_fmt(e.per_query[k][q], digits)}\n")
        out.write(f"num_q\tall\t{len(e.queries)}\n")
        for k in keys:
            out.write(f"{k}\tall\t{_fmt(e.mean[k], digits)}\n")


def _write_json(out: TextIO, evaluations: list[Evaluation], comparison: Comparison | None) -> None:
    from rdistill.io import dumps

    if len(evaluations) == 1:
        out.write(dumps(evaluations[0].to_json()) + "\n")
        return
    for e in evaluations:
        record: dict[str, Any] = {"run": e.name, **e.to_json()}
        if comparison is not None:
            if e.name == comparison.baseline:
                record["baseline"] = True
            record["vs_baseline"] = {t.measure: {"t": _finite(t.t), "p": t.p, "p_adjusted": t.p_adjusted,
                                                 "significant": t.significant}
                                     for t in comparison.paired if t.run == e.name}
            record["equivalence"] = {t.measure: {"best": t.best, "difference": t.difference, "p": t.p,
                                                 "p_adjusted": t.p_adjusted, "equivalent": t.equivalent}
                                     for t in comparison.equivalence if t.run == e.name}
        out.write(dumps(record) + "\n")


def _finite(value: float) -> float | None:
    return value if is_finite(value) else None


def _table(out: TextIO, header: list[str], rows: list[list[str]], text_columns: int = 1) -> None:
    """Aligned columns: the first ``text_columns`` (names) to the left, the numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.ljust(width) if i < text_columns else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        out.write("  ".join(cells).rstrip() + "\n")


def _write_table(out: TextIO, evaluations: list[Evaluation], keys: list[str], digits: int) -> None:
    rows = [[e.name, *(_fmt(e.mean[k], digits) for k in keys), str(len(e.queries))] for e in evaluations]
    _table(out, ["run", *keys, "queries"], rows)


def _p(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def _write_tests(out: TextIO, c: Comparison, digits: int) -> None:
    n_runs = len({t.run for t in c.paired}) or 1
    out.write(f"\nPaired t-test (two-sided) of each run against the baseline {c.baseline}; p-values of each measure "
              f"corrected over {n_runs} run(s) ({c.correction}); significant: corrected p < {c.alpha:g}\n")
    _table(out, ["measure", "run", "queries", "mean", "baseline", "t", "p", f"p_{c.correction}", "significant"],
           [[t.measure, t.run, str(t.n), _fmt(t.mean, digits), _fmt(t.baseline_mean, digits), f"{t.t:.3f}",
             _p(t.p), _p(t.p_adjusted), "yes" if t.significant else "no"] for t in c.paired], text_columns=2)
    out.write(f"\nTOST equivalence to the best run of each measure (two one-sided paired t-tests), margin "
              f"+-{c.margin:g}, alpha {c.tost_alpha:g}, {c.correction} correction; p = max(p_lower, p_upper)\n")
    _table(out, ["measure", "run", "best", "queries", "difference", "p_lower", "p_upper", "p", f"p_{c.correction}",
                 "equivalent"],
           [[e.measure, e.run, e.best, str(e.n), f"{e.difference:+.{digits}f}", _p(e.p_lower), _p(e.p_upper),
             _p(e.p), _p(e.p_adjusted), "yes" if e.equivalent else "no"] for e in c.equivalence], text_columns=3)
    out.write("\nEquivalence groups (the best run, then the runs equivalent to it):\n")
    for measure, members in c.groups().items():
        out.write(f"{measure}: {', '.join(members)}\n")
