"""``rdistill fuse``: a thin typer wrapper over :mod:`rdistill.fusion`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rdistill.commands._common import OutputOpt


def command(
    runs: Annotated[list[str], typer.Argument(help="Two or more TREC runs; one of them may be - (stdin).",
                                              metavar="RUN")],
    method: Annotated[str, typer.Option("--method", help="wsum (weighted sum of normalised scores), combmnz "
                                        "(their sum times the number of runs holding the document) or rrf "
                                        "(sum of weight / (k + rank)).")] = "wsum",
    norm: Annotated[str, typer.Option("--norm", help="Per query and run, before wsum and combmnz: minmax, zscore "
                                      "(population std) or none. rrf uses ranks only.")] = "minmax",
    weights: Annotated[str | None, typer.Option("--weights", help="One weight per run, comma-separated, e.g. "
                                                "0.5,0.5. Default: equal weights summing to 1.",
                                                metavar="W,W,...")] = None,
    rrf_k: Annotated[float, typer.Option("--rrf-k", help="rrf's k.")] = 60.0,
    require_all: Annotated[bool, typer.Option("--require-all", help="Every run must list every query and score "
                                              "every document the others hold for it; else an error naming the "
                                              "file and query.")] = False,
    tag: Annotated[str, typer.Option("--tag", help="The fused run's tag column.")] = "fused",
    output: OutputOpt = None,
) -> None:
    """Fuse two or more TREC runs into one, query by query.

    Per query, each run's scores are normalised (--norm minmax by default: (s - min) / (max - min)) and combined
    over the union of the runs' documents: wsum adds weight x score, combmnz multiplies that sum by the number of
    runs holding the document, rrf adds weight / (k + rank) over the runs' rankings (trec_eval's order).
    wsum and combmnz under minmax, and rrf, give the same numbers as ranx.fuse.

    Missing documents: a document one run does not hold for a query gets that run's normalised minimum for the
    query (0 under minmax, the lowest z-score under zscore, the lowest score under none); under rrf it adds
    nothing. Missing queries: a query some run does not list is fused from the runs that list it and kept; a
    note on stderr counts such queries. --require-all makes either an error.

    Runs are read query by query in lockstep: in bounded memory when they list queries in the same order (as
    every rdistill stage writes them). The output lists the first run's queries in its order, then queries only
    the other runs hold, by id; each query is sorted as trec_eval ranks it. With -o a .meta.json sidecar records
    the inputs, the settings, the counts and the wall seconds.

    \b
    Example (BM25 and a MiniLM teacher over the same pools, the study's fused teacher):
      rdistill score-teacher --model bm25 --queries ../shared/data/scifact --corpus ../shared/data/scifact \\
          --index idx < bm25.test.trec > bm25.scored.trec
      rdistill score-teacher --model all-MiniLM-L6-v2 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact < bm25.test.trec > minilm.trec
      rdistill fuse --method wsum --norm minmax bm25.scored.trec minilm.trec > fused.trec
      rdistill fuse --method rrf bm25.scored.trec <(zcat minilm.trec.gz) | rdistill eval --qrels qrels.txt
    """
    import time

    from rdistill.commands._common import check_stdin
    from rdistill.fusion import FuseConfig, FuseStats, fuse, parse_weights
    from rdistill.io import format_run_query, open_output, source_name

    start = time.perf_counter()
    check_stdin({"the run": list(dict.fromkeys(runs))})  # "-" twice: fuse says so itself
    config = FuseConfig(method=method, norm=norm, weights=parse_weights(weights, len(runs)), rrf_k=rrf_k,
                        require_all=require_all)
    stats = FuseStats()
    pairs = 0
    with open_output(output) as out:
        for qid, docs in fuse(runs, config, stats):
            out.write(format_run_query(qid, docs, tag))
            pairs += len(docs)
    if stats.partial_queries:
        print(f"rdistill fuse: note: {stats.partial_queries} of {stats.queries} queries are missing from some run; "
              "fused from the runs that list them", file=sys.stderr)
    if output is not None:
        from rdistill.meta import write_sidecar

        write_sidecar(output, {"inputs": [source_name(r) for r in runs], "method": method, "norm": norm,
                               "weights": list(config.weights) if config.weights else None, "rrf_k": rrf_k,
                               "require_all": require_all, "tag": tag, "queries": stats.queries, "pairs": pairs,
                               "partial_queries": stats.partial_queries,
                               "filled_documents": stats.filled_documents}, started=start)
