"""``rdistill retrieve``: a thin typer wrapper over :mod:`rdistill.retrieval` (BM25 and dense first stages)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from rdistill.commands._common import (
    BatchSizeOpt,
    CorpusOpt,
    DeviceOpt,
    OutputOpt,
    QueriesOpt,
    ShardOpt,
    SplitOpt,
)
from rdistill.errors import UsageError


def command(
    corpus: CorpusOpt,
    queries: QueriesOpt,
    split: SplitOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="Documents per query in the run (its depth).")] = 1000,
    index: Annotated[str | None, typer.Option("--index", help="Folder for the index: built there on first use, "
                                              "reused (memory-mapped) after. Default: a temporary folder.",
                                              metavar="DIR")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the index even if --index holds one (needed "
                                          "when the corpus or the settings changed).")] = False,
    output: OutputOpt = None,
    tag: Annotated[str | None, typer.Option("--tag", help="The run's tag column. Default: bm25, bm25-lucene, or "
                                            "the model's folder name.")] = None,
    shard: ShardOpt = None,
    variant: Annotated[str, typer.Option("--bm25-variant", help="okapi: rank_bm25's BM25Okapi (idf floored at "
                                         "0.25 x mean idf); lucene: Lucene's / pyserini's BM25.")] = "okapi",
    k1: Annotated[float, typer.Option("--k1", min=0.0, help="BM25 term-frequency saturation.")] = 1.2,
    b: Annotated[float, typer.Option("--b", min=0.0, max=1.0, help="BM25 length normalisation.")] = 0.75,
    stemmer: Annotated[str, typer.Option("--stemmer", help="PyStemmer's stemmer (english = Snowball English, "
                                         "porter, or any Snowball language), or none.")] = "english",
    stopwords: Annotated[str, typer.Option("--stopwords", help="Stopwords removed before stemming: en (Lucene's "
                                           "33 English words, as in bm25s and pyserini) or none.")] = "en",
    memory: Annotated[str, typer.Option("--memory", help="Memory budget of the BM25 index build (1G, 1.5G, 512M): "
                                        "postings spill to sorted segments on disk beyond it, so the build's peak "
                                        "memory is about this, whatever the corpus's size. The index is the same "
                                        "for any budget.", metavar="SIZE")] = "1G",
    dense: Annotated[bool, typer.Option("--dense", help="Dense retrieval with the bi-encoder --model instead of "
                                        "BM25.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Bi-encoder (--dense): a Hugging Face folder or "
                                              "name; all-MiniLM-L6-v2 works offline.", metavar="PATH")] = None,
    pooling: Annotated[str | None, typer.Option("--pooling", help="cls or mean. Default: what a "
                                                "sentence-transformers folder says, else cls.")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize", help="L2-normalise embeddings. "
                                                   "Default: what a sentence-transformers folder says, else no.",
                                                   show_default=False)] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", min=1, help="Tokens per text. Default: the "
                                                   "folder's max_seq_length, else 512.")] = None,
    approx: Annotated[bool, typer.Option("--approx", help="Approximate search with a faiss HNSW graph (built once "
                                         "in --index) instead of exact inner product: for large corpora.")] = False,
    batch_size: BatchSizeOpt = 64,
    device: DeviceOpt = "auto",
) -> None:
    """Retrieve the top k documents of a corpus for each query, with BM25 (default) or a dense bi-encoder.

    Writes a TREC run (qid Q0 docno rank score tag) on stdout, or atomically to -o. The index is built once into
    --index and reused: memory-mapped, so a corpus of millions of documents costs no Python object per document.
    A folder holding an index built from another corpus or with other settings is an error unless --rebuild; a
    corpus file only touched (copied, re-synced: a new time, the same bytes by the index's recorded sha256) keeps
    its index. One folder can hold a BM25 and a dense index side by side (bm25/ and dense/).

    BM25 (k1 1.2, b 0.75): tokens are the lowercased runs of 2+ word characters, minus Lucene's 33 English
    stopwords, stemmed with Snowball English (--stemmer, --stopwords change this; the index records it). The default
    variant scores exactly as rank_bm25's BM25Okapi on the same tokens; --bm25-variant lucene is pyserini's.
    Documents are title + " " + text. A run lists only documents holding a query term. The build streams the
    corpus in --memory (default 1G; disk: about 20 bytes per posting while it runs, 12 after).

    Dense (--dense --model PATH): document embeddings are computed once into the index folder (float32 .npy);
    search is exact inner product with faiss, or HNSW with --approx. Pooling, normalisation and length come from
    a sentence-transformers folder when present, else --pooling/--normalize.

    \b
    Example:
      rdistill retrieve --corpus ../shared/data/cranfield --queries ../shared/data/cranfield \\
          --split test --k 100 --index idx/cranfield > bm25.trec
      rdistill retrieve --corpus ../shared/data/scifact --queries ../shared/data/scifact --split test \\
          --k 100 --index idx/scifact --dense --model all-MiniLM-L6-v2 > dense.trec
      echo '{"_id": "q1", "text": "boundary layer"}' | \\
          rdistill retrieve --corpus sample_data/corpus.jsonl --queries - --k 10
    """
    import time

    from rdistill.commands._common import check_corpus, check_stdin
    from rdistill.data import load_queries
    from rdistill.io import format_run_query, open_output
    from rdistill.retrieval import retrieve
    from rdistill.retrieval.segments import parse_memory
    from rdistill.shards import in_shard, parse_shard

    start = time.perf_counter()
    check_stdin({"--queries": queries, "--corpus": corpus})
    check_corpus(corpus)
    part = parse_shard(shard)
    budget = parse_memory(memory)
    if dense and model is None:
        raise UsageError("--dense needs --model (a bi-encoder folder or name)")
    if not dense and (model is not None or approx or pooling is not None or normalize is not None):
        raise UsageError("--model, --pooling, --normalize and --approx apply to --dense retrieval")
    if pooling not in (None, "cls", "mean"):
        raise UsageError(f"--pooling {pooling!r}: expected cls or mean")
    todo = {qid: text for qid, text in load_queries(queries, split).items() if in_shard(qid, part)}

    with tempfile.TemporaryDirectory(prefix="rdistill-index-") as scratch:
        root = Path(index) if index is not None else Path(scratch)
        if root.exists() and not root.is_dir():
            raise UsageError(f"--index {index}: not a folder")
        with open_output(output) as out:
            engine: Any
            if dense:
                from rdistill.models import BiEncoder
                from rdistill.retrieval.dense import DenseIndex

                encoder = BiEncoder(model, pooling=pooling, normalize=normalize,  # type: ignore[arg-type]
                                    max_length=max_length, device=device)
                engine = DenseIndex.open(corpus, root / "dense", encoder, approx=approx, rebuild=rebuild,
                                         batch_size=batch_size)
                name = tag or Path(str(model).rstrip("/")).name  # as the user named it: all-MiniLM-L6-v2
                settings = {"kind": "dense", **encoder.settings(), "approx": approx}
            else:
                from rdistill.retrieval.bm25 import BM25Index, BM25Params
                from rdistill.retrieval.tokenize import TokenizerSettings

                params = BM25Params(variant=variant, k1=k1, b=b,
                                    tokenizer=TokenizerSettings(stopwords=stopwords, stemmer=stemmer))
                engine = BM25Index.open(corpus, root / "bm25", params, rebuild=rebuild, memory=budget)
                name = tag or ("bm25" if variant == "okapi" else f"bm25-{variant}")
                settings = {"kind": "bm25", **params.as_dict()}
            empty = 0
            for qid, hits in retrieve(todo, engine, k, batch_size):
                empty += not hits
                out.write(format_run_query(qid, hits, name, k))
        if empty and not dense:
            print(f"rdistill retrieve: {empty} of {len(todo)} queries matched no document", file=sys.stderr)
        if output is not None:
            from rdistill.meta import write_sidecar

            write_sidecar(output, {"corpus": corpus, "queries": queries, "split": split, "k": k,
                                   "shard": shard, "index": index, "tag": name, "retriever": settings,
                                   "queries_retrieved": len(todo)}, started=start)
