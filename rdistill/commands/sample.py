"""``rdistill sample``: a thin typer wrapper over :mod:`rdistill.sampling`."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.commands._common import OutputOpt, SplitOpt
from rdistill.sampling import STRATEGIES, strategies_help

# The help read off the strategies' table, so that a new row shows up in it.
_NAMES = list(STRATEGIES)
_ONE = "/".join(n for n, s in STRATEGIES.items() if s.stdin)
_SEVERAL = "/".join(n for n, s in STRATEGIES.items() if s.max_runs is None)


def command(
    qrels: Annotated[str | None, typer.Option("--qrels", help="Judgments: a BEIR folder (with --split), a TREC or "
                                              "BEIR qrels file, or irds:ID. Without them, --positives teacher:K "
                                              "or none.", metavar="SPEC", show_default=False)] = None,
    runs: Annotated[list[str] | None, typer.Argument(
        help=f"Rankings (TREC runs, plain or .gz): one for {_ONE} (default: stdin), several for {_SEVERAL}.",
        metavar="RUN", show_default=False)] = None,
    split: SplitOpt = None,
    strategy: Annotated[str, typer.Option("--strategy", help=f"{', '.join(_NAMES[:-1])} or {_NAMES[-1]} (see "
                                          "above).")] = "window",
    window: Annotated[str, typer.Option("--window", help="Ranks A:B (1-based, inclusive) of each run that "
                                        "negatives are drawn from.", metavar="A:B")] = "1:100",
    group_size: Annotated[int, typer.Option("--group-size", "-G", help="Documents per group: the positive and "
                                            "G-1 negatives.")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same inputs and seed give byte-identical "
                                      "output.")] = 42,
    scores: Annotated[str | None, typer.Option("--scores", help="Teacher scores to attach (a TREC run, e.g. from "
                                               "score-teacher --qrels); the window still follows the ranking. "
                                               "Default: the ranking's own scores (none for ensemble).",
                                               metavar="RUN")] = None,
    no_scores: Annotated[bool, typer.Option("--no-scores", help="Write \"scores\": null (labels-only "
                                            "training).")] = False,
    corpus: Annotated[str | None, typer.Option("--corpus", help="Documents to draw random negatives and "
                                               "ensemble padding from: a BEIR folder or a JSONL/TSV file.",
                                               metavar="SPEC")] = None,
    per_system: Annotated[int, typer.Option("--per-system", help="Ensemble: at most this many negatives from "
                                            "each run.")] = 10,
    filter: Annotated[bool, typer.Option("--filter/--no-filter", help="Ensemble: drop negatives the teacher "
                                         "scores above min(positive scores) - margin / teacher-scale.")] = True,
    margin: Annotated[float, typer.Option("--margin", help="Ensemble filter margin, in scaled teacher units (the "
                                          "paper's 0.5 for a cross-encoder's log-probabilities).")] = 0.5,
    teacher_scale: Annotated[float, typer.Option("--teacher-scale", help="The factor train's --teacher-scale "
                                                 "applies to this teacher's scores (20 for MiniLM cosines); the "
                                                 "filter's margin in raw scores is margin / teacher-scale.")] = 1.0,
    relative_margin: Annotated[float | None, typer.Option(
        "--relative-margin", help="Drop negatives scoring above p - |p| R, p the lowest positive's teacher score "
        "(sentence-transformers' relative margin; 0.05 is its advice); scores must be >= 0.", metavar="R",
        show_default=False)] = None,
    positives: Annotated[str, typer.Option("--positives", help="judged (--qrels), teacher:K (no judgments: the "
                                           "teacher's top K of each query are pseudo-positives) or none "
                                           "(positive-free lists of G documents).", metavar="KIND")] = "judged",
    one_per_query: Annotated[bool, typer.Option("--one-per-query", help="One group per query (a positive drawn "
                                                "by the seed) instead of one per positive.")] = False,
    include_labelled_positives: Annotated[bool, typer.Option(
        "--include-labelled-positives", help="Let other labelled positives be drawn as negatives, as the "
        "authors' code did (the group's own positive never is).")] = False,
    min_relevance: Annotated[int, typer.Option("--min-relevance", help="Qrels level from which a document is a "
                                               "positive (at least 1: a group's first label is above 0).")] = 1,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="Skip and count groups with a document "
                                               "the teacher did not score, instead of stopping.")] = False,
    emit_candidates: Annotated[bool, typer.Option(
        "--emit-candidates", help="Write, as a TREC run, every document the groups could hold (positives, window "
        "or ensemble pools, random draws) for score-teacher to score; then run again with --scores.")] = False,
    sort_buffer: Annotated[int, typer.Option("--sort-buffer", min=1, help="MB of groups held before sorted "
                                             "chunks spill to temporary files.", metavar="MB")] = 64,
    output: OutputOpt = None,
) -> None:
    """Sample training groups (a positive and G-1 negatives with teacher scores) from runs, qrels and a teacher.

    Writes JSONL, one group a line, sorted by query id then positive id:
    {"query_id", "doc_ids": [positive, negatives...], "labels": [qrels levels], "scores": [teacher scores] or
    null, "meta": {strategy, seed, ...}}. One group per judged positive (--one-per-query: one per query).
    Labelled positives are never negatives unless --include-labelled-positives.

    \b
    Strategies (the paper's sampling sources):
    STRATEGIES_HELP

    The filter's margin is in the teacher's units after train's --teacher-scale: the paper's 0.5 is for a
    cross-encoder's log-probabilities (scale 1); give sample the --teacher-scale you give train (MiniLM cosines:
    20, so the margin is 0.025 in cosine) and the filter drops what the paper's filter would.

    --relative-margin R is sentence-transformers' positive-aware filter: with p the lowest score among the
    group's positives, a negative is kept only if it scores at most p - |p| R (p (1 - R) for non-negative
    scores). It is meant for non-negative similarities (the fused teacher's [0, 2], cosines): a query whose
    positive scores below 0 (log-probabilities, logits) stops the run with one line; use --margin there. It is
    scale-free, so --teacher-scale does not change it. It applies before the draw of window, teacher,
    stratified and top, and after the --margin filter of ensemble; the count it drops goes to stderr.

    Without judgments (no --qrels): --positives teacher:K makes each query of the driving run (the run argument
    or stdin; for random, --scores) one group: the teacher's top K (ties broken by doc id, as trec_eval does)
    labelled 1 and first, then G-K negatives the strategy draws from the rest; --positives none writes G
    documents, every label 0. Both record "positives" in each group and in the meta, need teacher scores (--scores,
    or the run's own for window, teacher, stratified and top) and make one group per query. The training
    queries are the run's: restrict them by filtering the run. Their texts come later, to train --queries, from
    any query file (a BEIR folder, JSONL, or a plain id<TAB>text file, one query a line). A query with fewer than
    K scored documents, or too few candidates, is skipped and counted.

    The ranking that defines the window and the scores attached are separate inputs: with --scores the window
    still follows the ranking on stdin and only the scores come from the teacher's file. A document without a
    teacher score stops the run (--skip-missing counts instead). Random and padding documents are rarely
    scored already: list them with --emit-candidates, score them, and pass the result as --scores. Queries with
    too few candidates are skipped and counted on stderr. Runs are streamed a query at a time; --scores and the
    other runs of an ensemble are read in lockstep (constant memory when their query order matches).

    \b
    Example:
      rdistill sample --strategy window --window 1:100 --qrels ../shared/data/cranfield --split train \\
          --group-size 8 --seed 1 < scored.trec > groups.jsonl
      rdistill sample --strategy window --scores teacher.trec --qrels ../shared/data/scifact --split train \\
          < bm25.trec > bm25-groups.jsonl
      rdistill sample --strategy random --corpus ../shared/data/scifact --qrels ../shared/data/scifact \\
          --split train --emit-candidates --no-scores | rdistill score-teacher ... > random.teacher.trec
      rdistill sample --strategy ensemble --scores teacher.trec --corpus ../shared/data/scifact \\
          --qrels ../shared/data/scifact --split train bm25.trec dense.trec > ensemble.jsonl
      rdistill sample --strategy window --window 1:100 --qrels ../shared/data/scifact --split train \\
          --scores <(zcat teacher.trec.gz) bm25.trec > groups.jsonl
      rdistill sample --strategy stratified --window 1:100 --relative-margin 0.05 --scores teacher.trec \\
          --qrels ../shared/data/scifact --split train < bm25.trec > stratified.jsonl
      rdistill sample --strategy top --positives teacher:1 --window 1:50 < teacher.trec > pseudo.jsonl
    """
    import time
    from dataclasses import replace

    from rdistill.data import load_qrels
    from rdistill.errors import UsageError
    from rdistill.io import open_output
    from rdistill.meta import write_sidecar
    from rdistill.sampling import CorpusIds, SampleConfig, parse_window, sample, write_groups

    start = time.perf_counter()
    config = SampleConfig(strategy=strategy, group_size=group_size, window=parse_window(window),
                          per_system=per_system, filter=filter, margin=margin, teacher_scale=teacher_scale,
                          one_per_query=one_per_query,
                          include_labelled_positives=include_labelled_positives, skip_missing=skip_missing,
                          min_relevance=min_relevance, seed=seed, attach_scores=not no_scores,
                          emit_candidates=emit_candidates, relative_margin=relative_margin, positives=positives)
    label_free = config.positive_mode[0] != "judged"
    if qrels is None and not label_free:
        raise UsageError("sample needs --qrels (judged positives), or, without judgments, --positives teacher:K "
                         "or none with the teacher's scores")
    if qrels is not None and label_free:
        raise UsageError(f"--positives {positives} samples without judgments: drop --qrels (or use --positives "
                         "judged)")
    if split is not None and qrels is None:
        raise UsageError("--split selects the judgments of a BEIR folder: give --qrels")
    names = list(runs or [])
    if config.kind.stdin:
        names = names or ["-"]
    if (not config.kind.reads_runs and not names and scores is None and not no_scores and not emit_candidates
            and not label_free):
        config = replace(config, attach_scores=False)
        typer.echo(f"sample: --strategy {strategy} reads no ranking and no --scores was given: groups carry "
                   "\"scores\": null (list their documents with --emit-candidates, score them with "
                   "score-teacher, and pass that as --scores)", err=True)
    from rdistill.commands._common import check_stdin

    check_stdin({"the run": list(dict.fromkeys(names)), "--scores": scores, "--qrels": qrels, "--corpus": corpus})
    config.check_inputs(names, scores)

    judged = load_qrels(qrels, split) if qrels is not None else {}
    corpus_ids = CorpusIds(corpus) if corpus is not None and config.kind.draws_corpus else None
    items, sampler = sample(config, judged, names, scores, corpus_ids)
    with open_output(output) as out:
        write_groups(out, items, chunk_bytes=sort_buffer << 20)
    typer.echo(sampler.stats.summary(), err=True)
    if output is not None:
        write_sidecar(output, {"config": config.meta() | {"group_size": group_size, "one_per_query": one_per_query,
                                                         "include_labelled_positives": include_labelled_positives},
                               "runs": names, "scores": scores, "qrels": qrels, "split": split,
                               **({"positives": positives} if label_free else {}),
                               "stats": {"groups": sampler.stats.groups, "queries": sampler.stats.queries,
                                         "too_few": sampler.stats.too_few,
                                         "missing_groups": sampler.stats.missing_groups,
                                         "filtered": sampler.stats.filtered, "padded": sampler.stats.padded,
                                         **({"relative_filtered": sampler.stats.relative_filtered}
                                            if relative_margin is not None else {})}},
                     started=start)


# The strategies' entries, one a row of the table (see STRATEGIES_HELP above).
command.__doc__ = (command.__doc__ or "").replace("    STRATEGIES_HELP", strategies_help("    "))
