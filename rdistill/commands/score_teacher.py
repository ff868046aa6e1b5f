"""``rdistill score-teacher``: a thin typer wrapper over :mod:`rdistill.teacher`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from rdistill.commands._common import (
    BatchSizeOpt,
    CorpusOpt,
    DeviceOpt,
    DtypeOpt,
    OutputOpt,
    QueriesOpt,
    ShardOpt,
    SplitOpt,
)
from rdistill.errors import UsageError


def command(
    queries: QueriesOpt,
    corpus: CorpusOpt,
    model: Annotated[str, typer.Option("--model", help="Teacher: a Hugging Face folder or name (a cross-encoder, a "
                                       "bi-encoder, or a student from rdistill train), or a folder holding "
                                       "model.onnx and its tokenizer (run by ONNX Runtime). Offline: "
                                       "all-MiniLM-L6-v2, and with the [models] extra ms-marco-MiniLM-L-12-v2 "
                                       "and bge-small-en-v1.5; bm25 is BM25 itself (a folder named bm25: ./bm25).",
                                       metavar="PATH")],
    run: Annotated[str, typer.Argument(help="The TREC run to re-score; - (default) reads stdin.",
                                       metavar="RUN")] = "-",
    kind: Annotated[str | None, typer.Option("--kind", help="cross or bi. Default: detected from the checkpoint "
                                             "(a sequence-classification head is a cross-encoder).")] = None,
    allow_new_head: Annotated[bool, typer.Option("--allow-new-head", help="With --kind cross on a checkpoint "
                                                 "without a trained classification head (a plain encoder): score "
                                                 "with a new random head instead of refusing.")] = False,
    qrels: Annotated[str | None, typer.Option("--qrels", help="Add each query's judged positives (rel > 0) to "
                                              "its pool: a BEIR folder (with --split), a TREC or BEIR qrels file.",
                                              metavar="SPEC")] = None,
    split: SplitOpt = None,
    output: OutputOpt = None,
    resume: Annotated[bool, typer.Option("--resume", help="With -o: continue an interrupted job from "
                                         "OUTPUT.partial instead of starting over.")] = False,
    shard: ShardOpt = None,
    tag: Annotated[str | None, typer.Option("--tag", help="The run's tag column. Default: the model's folder "
                                            "name.")] = None,
    batch_size: BatchSizeOpt = 64,
    max_query_length: Annotated[int | None, typer.Option("--max-query-length", min=1, help="Query tokens "
                                                         "(cross-encoder). Default: 30.")] = None,
    max_doc_length: Annotated[int | None, typer.Option("--max-doc-length", "--max-length", min=1, help="Document "
                                                       "tokens. Default: 200 for a cross-encoder; a bi-encoder's "
                                                       "max_seq_length (else 512) for queries and documents.")] = None,
    similarity: Annotated[str, typer.Option("--similarity", help="Bi-encoder: dot (of embeddings pooled and "
                                            "normalised as the folder's config says) or cos.")] = "dot",
    embeddings_cache: Annotated[str | None, typer.Option("--embeddings-cache", help="Bi-encoder: folder for the "
                                                         "corpus embeddings, computed once and reused (e.g. "
                                                         "retrieve's --index DIR/dense). Default: rdistill's cache.",
                                                         metavar="DIR")] = None,
    doc_embeddings: Annotated[str, typer.Option("--doc-embeddings", help="Bi-encoder: corpus (embed every "
                                                "document once and cache it; best when the model scores many "
                                                "runs) or run (embed only this run's documents, uncached; best for "
                                                "a model scored once on a small re-ranking).")] = "corpus",
    chunk_pairs: Annotated[int, typer.Option("--chunk-pairs", min=1, help="Pairs per chunk: the unit of length "
                                             "sorting and of the -o journal (work lost to a crash).")] = 4096,
    index: Annotated[str | None, typer.Option("--index", help="--model bm25: retrieve's --index folder (the BM25 "
                                              "index is DIR/bm25, built there on first use). Default: rdistill's "
                                              "cache.", metavar="DIR")] = None,
    bm25_variant: Annotated[str, typer.Option("--bm25-variant", help="--model bm25: okapi or lucene, as in "
                                              "retrieve.")] = "okapi",
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "fp32",
) -> None:
    """Score every (query, document) pair of a run with a teacher and write the run re-ranked by it.

    Reads a TREC run (stdin or RUN), looks each query up in --queries and each document in --corpus (an on-disk
    offset index, built once, so large corpora stay in bounded memory; a document's text is title + " " + text),
    and writes a TREC run with the teacher's scores, each query re-sorted, tagged with the model's name. A
    query missing from --queries, or a document missing from --corpus, is an error at the run's FILE:LINE
    where its id stands.

    A cross-encoder's score is its logit (1-logit head) or log P(relevant) = log_softmax(logits)[1] (2-label
    head); query and document are cut to 30 / 200 tokens. A bi-encoder's score is the dot product (or cosine) of
    query and document embeddings; the corpus's embeddings are computed once and cached. Pairs are sorted by
    length into batches so each pads only to its own longest pair.

    A folder with model.onnx (or one .onnx file) and tokenizer files runs through ONNX Runtime: a graph with
    logits [batch, 1 or 2] is a cross-encoder, one with hidden states a bi-encoder (pooled as its
    sentence-transformers config says, else CLS). --dtype int8 (CPU) runs any model as a dynamic-int8 graph,
    exported and quantised once into rdistill's cache; the sidecar records the engine. On a CPU with AMX
    (Intel Xeon since Sapphire Rapids) --dtype bf16 is the faster choice: matrix products in bf16, everything
    else and the head in fp32; measured on MiniLM, 2.6x fp32 with per-query Kendall tau 0.998 against fp32,
    where int8 gave 1.05x and tau 0.935 (docs/performance.md, "Teacher scoring").

    --qrels (with --split for a BEIR folder) adds each query's judged positives (relevance > 0) to its pool
    before scoring, as the paper scores {positive} + BM25@200.

    --model bm25 re-scores every pair with BM25 from the index `rdistill retrieve` builds (--index DIR as given
    to retrieve, built on first use; same default settings, --bm25-variant as in retrieve): a pair in BM25's top
    k gets exactly retrieve's score, a document holding no query term 0. With --qrels the judged positives
    outside the run get their BM25 scores too, so BM25 and a neural teacher can be fused over the same pools
    (rdistill fuse).

    Long jobs: with -o, finished chunks go to OUTPUT.partial (fsynced); after a crash or kill, the same command
    with --resume continues there and ends with the same bytes an uninterrupted run writes; --resume with other
    input, queries, corpus, model or settings is refused, never mixed in. Ctrl-C prints one line saying what
    was kept. --shard I/N scores
    one share of the queries; under torchrun each rank takes its own shard and writes OUTPUT.shardI-of-N.
    A .meta.json sidecar records the teacher and settings.

    \b
    Example:
      rdistill retrieve --corpus ../shared/data/scifact --queries ../shared/data/scifact --split test \\
          --k 100 > bm25.trec
      rdistill score-teacher --model all-MiniLM-L6-v2 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact < bm25.trec > scored.trec
      rdistill score-teacher --model all-MiniLM-L6-v2 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact --qrels ../shared/data/scifact --split train \\
          -o teacher.train.trec --resume bm25.train.trec
      rdistill score-teacher --model ms-marco-MiniLM-L-12-v2 --dtype int8 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact < bm25.trec > cross.trec
      rdistill score-teacher --model all-MiniLM-L6-v2 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact <(zcat bm25.trec.gz) > scored.trec
      rdistill score-teacher --model bm25 --index idx --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact --qrels ../shared/data/scifact --split train < bm25.train.trec \\
          > bm25.pools.trec
    """
    import time

    from rdistill.commands._common import check_corpus, check_stdin
    from rdistill.data import load_qrels, load_queries
    from rdistill.distributed import World
    from rdistill.meta import write_sidecar
    from rdistill.shards import parse_shard
    from rdistill.teacher import TeacherSettings, score_run

    start = time.perf_counter()
    check_stdin({"the run": run, "--queries": queries, "--qrels": qrels, "--corpus": corpus})
    check_corpus(corpus)
    if model != "bm25" and (index is not None or bm25_variant != "okapi"):
        raise UsageError("--index and --bm25-variant apply to --model bm25")
    if kind not in (None, "cross", "bi"):
        raise UsageError(f"--kind {kind!r}: expected cross or bi")
    part = parse_shard(shard)
    world = World.from_env()
    if shard is None and world.launched:  # torchrun: one shard per rank
        part = (world.rank, world.size)
        if output is None:
            raise UsageError("under torchrun give -o FILE: each rank writes FILE.shardI-of-N")
        output = f"{output}.shard{part[0]}-of-{world.size}"
        if device == "auto" and "LOCAL_RANK" in os.environ:
            import torch

            if torch.cuda.is_available():
                device = world.gpu()
    if split is not None and qrels is None:
        raise UsageError("--split applies to --qrels")
    positives = load_qrels(qrels, split) if qrels is not None else None
    settings = TeacherSettings(model=model, kind=kind, batch_size=batch_size, max_query_length=max_query_length,
                               max_doc_length=max_doc_length, similarity=similarity, device=device, dtype=dtype,
                               chunk_pairs=chunk_pairs, embeddings_cache=embeddings_cache,
                               doc_embeddings=doc_embeddings, allow_new_head=allow_new_head,
                               bm25_variant=bm25_variant, index=index)
    info = score_run(run, load_queries(queries), corpus, settings, output=output, resume=resume, shard=part,
                     positives=positives, tag=tag)
    if output is not None:
        write_sidecar(output, {**info, "queries_spec": queries, "corpus": str(Path(corpus)), "qrels": qrels,
                               "split": split}, started=start)
