"""``rdistill eval``: a thin typer wrapper over :mod:`rdistill.evaluation` and :mod:`rdistill.stats`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rdistill.commands._common import OutputOpt, QrelsOpt, SplitOpt
from rdistill.errors import UsageError
from rdistill.evaluation import DEFAULT_METRICS
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
    card: Annotated[str | None, typer.Option("--card", metavar="FOLDER", help="A student folder from rdistill "
                                             "train: add each run's nDCG@10 to its model card (README.md), as "
                                             "the student's or its teacher's, by the model each run's sidecar "
                                             "names.")] = None,
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
      rdistill eval --qrels ../shared/data/cranfield --split test --card students/cross \\
          student.test.trec teacher.test.trec
      rdistill eval --qrels sample_data/qrels.txt <(zcat old.trec.gz) <(zcat new.trec.gz)
    """
    from rdistill.commands._common import check_stdin
    from rdistill.data import load_qrels
    from rdistill.evaluation import evaluate_many, parse_measures
    from rdistill.evaluation_output import write_evaluations
    from rdistill.io import open_output, read_run_table

    names = runs or ["-"]
    check_stdin({"the run": list(dict.fromkeys(names)), "--qrels": qrels})  # a name twice: said below
    if len(set(names)) != len(names):
        raise UsageError("a run is named twice (stdin can be read only once)")
    if correction not in CORRECTIONS:
        raise UsageError(f"--correction {correction!r}: expected one of {', '.join(CORRECTIONS)}")
    if not margin > 0:
        raise UsageError("--equivalence-margin must be positive")
    for option, level in (("--alpha", alpha), ("--equivalence-alpha", tost_alpha)):
        if not 0 < level < 1:
            raise UsageError(f"{option} {level:g}: a significance level lies strictly between 0 and 1")
    if baseline is not None and baseline not in names:
        raise UsageError(f"--baseline {baseline!r} is not one of the runs given: {', '.join(names)}")
    measures = parse_measures(metrics)  # before reading anything: a typo fails fast
    if card is not None and "ndcg@10" not in [m.name for m in measures]:
        raise UsageError("--card records nDCG@10: include ndcg@10 in --metrics")
    subjects = _card_subjects(card, names)
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
        write_evaluations(out, evaluations, keys, digits, per_query=per_query, json=json, comparison=comparison)
    if card is not None:
        _add_to_card(card, subjects, evaluations, qrels, split, complete)


def _card_subjects(card: str | None, names: list[str]) -> dict[str, str]:
    """Each run's subject on the card (student or teacher), checked before any evaluation runs."""
    if card is None:
        return {}
    from pathlib import Path

    from rdistill.card import subject

    return {name: subject(Path(card), name) for name in names}


def _add_to_card(card: str, subjects: dict[str, str], evaluations: list[Any], qrels: str, split: str | None,
                 complete: bool) -> None:
    from pathlib import Path

    from rdistill.card import dataset_name, record

    for evaluation in evaluations:
        value = evaluation.mean["ndcg@10"]
        record(Path(card), {"metric": "ndcg@10", "value": float(value), "subject": subjects[evaluation.name],
                            "run": evaluation.name, "dataset": dataset_name(qrels), "split": split,
                            "queries": len(evaluation.queries), "complete": complete})
