"""``rdistill locality``: a thin typer wrapper over :mod:`rdistill.locality`."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.commands._common import BatchSizeOpt, DeviceOpt, OutputOpt, SeedOpt
from rdistill.locality import DEFAULT_ALPHA


def command(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="Training groups (JSONL from sample) or TREC runs (top --k per query); - for stdin (the default).",
        metavar="INPUT", show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", help="Bi-encoder that embeds the documents (a folder, a "
                                              "hub name, or all-MiniLM-L6-v2).")] = None,
    corpus: Annotated[str | None, typer.Option("--corpus", help="Documents: a BEIR folder or a JSONL/TSV file "
                                               "(texts to embed; the corpus size for coverage).",
                                               metavar="SPEC")] = None,
    embeddings: Annotated[str | None, typer.Option("--embeddings", help="Precomputed document vectors: an .npz "
                                                   "with arrays 'ids' and 'vectors'; documents it lacks are "
                                                   "embedded with --model.", metavar="NPZ")] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Quantile of a query's pairwise "
                                         "cosine distances taken as its diameter.")] = DEFAULT_ALPHA,
    k: Annotated[int, typer.Option("--k", min=2, help="Documents per query taken from a run input.")] = 100,
    coverage_against: Annotated[str | None, typer.Option(
        "--coverage-against", help="Also report the coverage |S n R| / |R| of each input's document pool S "
        "against this test run's top --test-k pool R, and a random pool's.", metavar="RUN")] = None,
    test_k: Annotated[int, typer.Option("--test-k", min=1, help="Depth of the test run's pool.")] = 100,
    summary: Annotated[str | None, typer.Option("--summary", help="Write the summary (JSON, one line per input) "
                                                "here instead of stderr.", metavar="FILE")] = None,
    seed: SeedOpt = 42,
    batch_size: BatchSizeOpt = 64,
    device: DeviceOpt = "auto",
    output: OutputOpt = None,
) -> None:
    """Measure the locality of training documents: per-query robust diameters and the dataset's Δ.

    For each query, its documents (the union of its groups, or a run's top --k) are embedded with a bi-encoder
    and the query's robust diameter is the --alpha quantile (0.99) of their pairwise cosine distances; the
    dataset's Δ is the 0.99 quantile of the diameters over queries (the paper's locality measure). Writes JSONL,
    one query a line {"query_id", "diameter", "n", "alpha"} (with "input" when several inputs are given), and a
    summary per input on stderr: queries, Δ, mean and median diameter. Each document is embedded once however
    many inputs and queries share it; --embeddings reuses vectors computed before.

    With --coverage-against, the summary also gives the coverage of the input's whole document pool S against a
    test run's pool R (every query's top --test-k): |S n R| / |R|, the same for a random pool of |S| corpus
    documents (seeded), and the coverage normalised by the random pool's expected |S| / N. Coverage alone needs
    no model, and has no per-query rows: it refuses -o (the summary goes to stderr, or to --summary).

    \b
    Example:
      rdistill locality --model all-MiniLM-L6-v2 --corpus ../shared/data/scifact groups.jsonl > diam.jsonl
      rdistill locality --corpus ../shared/data/scifact --coverage-against bm25.test.trec \\
          bm25-groups.jsonl random-groups.jsonl
      rdistill locality --corpus ../shared/data/scifact --coverage-against <(zcat bm25.test.trec.gz) \\
          groups.jsonl
    """
    from rdistill.commands._common import check_distinct, check_stdin
    from rdistill.errors import UsageError
    from rdistill.io import dumps, open_output, write_text_atomic
    from rdistill.locality import measure

    names = inputs or ["-"]
    check_distinct(names)
    check_stdin({"INPUT": list(dict.fromkeys(names)), "--coverage-against": coverage_against, "--corpus": corpus,
                 "--embeddings": embeddings})
    if output is not None and model is None and embeddings is None:
        # Coverage alone has no per-query rows: -o would be an empty file that looks like a result.
        raise UsageError("-o: coverage alone writes no per-query rows (its summary goes to stderr, or to "
                         "--summary FILE); give --model or --embeddings for diameters")
    found = measure(names, k=k, alpha=alpha, embeddings=embeddings,
                    model=model, corpus=corpus, coverage_against=coverage_against, test_k=test_k, seed=seed,
                    batch_size=batch_size, device=device)
    with open_output(output) as out:
        for row in found.rows:
            out.write(dumps(row) + "\n")
    lines = "".join(dumps(s) + "\n" for s in found.summaries)
    if summary is not None:
        write_text_atomic(summary, lines)
    else:
        typer.echo(lines, err=True, nl=False)
