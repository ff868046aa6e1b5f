"""``rdistill locality``: a thin typer wrapper over :mod:`rdistill.locality`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rdistill.commands._common import BatchSizeOpt, DeviceOpt, OutputOpt, SeedOpt
from rdistill.errors import UsageError
from rdistill.locality import DATASET_QUANTILE, DEFAULT_ALPHA


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
    no model.

    \b
    Example:
      rdistill locality --model all-MiniLM-L6-v2 --corpus ../shared/data/scifact groups.jsonl > diam.jsonl
      rdistill locality --corpus ../shared/data/scifact --coverage-against bm25.test.trec \\
          bm25-groups.jsonl random-groups.jsonl
    """
    from rdistill.io import dumps, open_output
    from rdistill.locality import (
        Embeddings,
        coverage,
        dataset_delta,
        query_pools,
        random_pool,
        robust_diameter,
    )

    names = inputs or ["-"]
    if len(set(names)) != len(names):
        raise UsageError("an input is named twice (stdin can be read only once)")
    diameters_wanted = model is not None or embeddings is not None
    if not diameters_wanted and coverage_against is None:
        raise UsageError("nothing to measure: give --model (or --embeddings) for diameters, or --coverage-against")
    if coverage_against is not None and corpus is None:
        raise UsageError("--coverage-against needs --corpus (the random pool is drawn from it)")
    pools = {name: list(query_pools(name, k)) for name in names}

    vectors = Embeddings(embeddings)
    if diameters_wanted:
        need = vectors.missing(d for pool in pools.values() for _, docs in pool for d in docs)
        if need:
            if model is None or corpus is None:
                raise UsageError(f"{len(need)} documents (e.g. {need[0]!r}) have no vector in --embeddings: give "
                                 "--model and --corpus to embed them")
            from rdistill.docstore import DocStore
            from rdistill.models import BiEncoder

            store = DocStore(corpus)
            texts = [store.text(d) for d in need]
            vectors.add(need, BiEncoder(model, device=device).encode(texts, batch_size, desc="embedding"))

    store_for_cov: Any = None
    test_pool: set[str] = set()
    if coverage_against is not None:
        from rdistill.docstore import DocStore

        store_for_cov = DocStore(corpus)  # type: ignore[arg-type]
        test_pool = {d for _, docs in query_pools(coverage_against, test_k) for d in docs}

    summaries: list[dict[str, Any]] = []
    with open_output(output) as out:
        for name in names:
            record: dict[str, Any] = {"input": name} if len(names) > 1 else {}
            diameters: list[float] = []
            if diameters_wanted:
                for qid, docs in pools[name]:
                    if len(docs) < 2:
                        continue
                    value = robust_diameter(vectors.get(docs), alpha)
                    diameters.append(value)
                    out.write(dumps({**record, "query_id": qid, "diameter": value, "n": len(docs),
                                     "alpha": alpha}) + "\n")
            info: dict[str, Any] = {"input": name, "queries": len(pools[name])}
            if diameters:
                import numpy as np

                info.update(alpha=alpha, delta=dataset_delta(diameters), delta_quantile=DATASET_QUANTILE,
                            mean_diameter=float(np.mean(diameters)), median_diameter=float(np.median(diameters)))
            if coverage_against is not None:
                train = {d for _, docs in pools[name] for d in docs}
                rand = random_pool(len(train), len(store_for_cov), store_for_cov.id_at, seed)
                info["coverage"] = coverage(train, test_pool, len(store_for_cov), rand).to_json()
            summaries.append(info)
    lines = "".join(dumps(s) + "\n" for s in summaries)
    if summary is not None:
        from rdistill.io import write_text_atomic

        write_text_atomic(summary, lines)
    else:
        typer.echo(lines, err=True, nl=False)
