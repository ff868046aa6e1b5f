"""BM25 speed and memory: rdistill's on-disk index (bm25s, memory-mapped) against rank_bm25's BM25Okapi.

Both score the same tokens with the same parameters (k1 1.2, b 0.75, Okapi idf floor), so the timings compare
like with like; the script also checks that both give the same top-10 lists. Each system runs in a child process
so that its peak resident memory (ru_maxrss) is its own; "baseline" is a child that only imports the libraries.

Corpora: scifact (5,183 abstracts) and a synthetic corpus of --docs documents (default 100,000) made by joining
the first half of one scifact abstract to the second half of another (pairs chosen by a fixed permutation), so
the vocabulary and lengths stay realistic. rank_bm25 scans every document in Python for every query term, so on
the large corpus it is timed on the first --slow-queries queries only; queries/second is per system.

    .venv/bin/python bench/bench_bm25.py                  # scifact + 100k synthetic
    .venv/bin/python bench/bench_bm25.py --docs 200000
    # rank_bm25's own run (same tokens, top 100, matching documents only), to evaluate beside `rdistill retrieve`:
    .venv/bin/python bench/bench_bm25.py --rank-bm25-run ../shared/data/scifact --split test > rank_bm25.trec
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
K = 100


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def child_baseline() -> dict:
    import bm25s  # noqa: F401
    import rank_bm25  # noqa: F401

    from rdistill.retrieval import bm25  # noqa: F401

    return {"peak_rss_mb": peak_rss_mb()}


def child_rdistill(corpus: str, queries: list[str], index_dir: str) -> dict:
    from rdistill.retrieval.bm25 import BM25Index, BM25Params

    start = time.perf_counter()
    index = BM25Index.open(corpus, Path(index_dir), BM25Params(), rebuild=True, show_progress=False)
    build = time.perf_counter() - start
    build_rss = peak_rss_mb()
    index = BM25Index(Path(index_dir), BM25Params())  # fresh, memory-mapped, as a later `retrieve` loads it
    start = time.perf_counter()
    tops = [list(sorted(index.search(q, K).items(), key=lambda x: (-x[1], x[0]))[:10]) for q in queries]
    search = time.perf_counter() - start
    return {"build_s": build, "build_peak_rss_mb": build_rss, "search_s": search, "queries": len(queries),
            "top10": [[d for d, _ in t] for t in tops],
            "index_mb": sum(f.stat().st_size for f in Path(index_dir).rglob("*") if f.is_file()) / 2**20}


def child_rank_bm25(corpus: str, queries: list[str]) -> dict:
    from rank_bm25 import BM25Okapi

    from rdistill.data import iter_corpus
    from rdistill.retrieval.tokenize import Tokenizer

    tokenize = Tokenizer()
    start = time.perf_counter()
    ids, tokens = [], []
    for doc in iter_corpus(corpus):
        ids.append(doc.doc_id)
        tokens.append(tokenize(doc.full_text))
    tokenized = time.perf_counter() - start
    model = BM25Okapi(tokens, k1=1.2, b=0.75, epsilon=0.25)
    build = time.perf_counter() - start
    build_rss = peak_rss_mb()
    start = time.perf_counter()
    tops = []
    for q in queries:
        query = tokenize(q)
        scores = model.get_scores(query)
        best = np.argpartition(-scores, K)[:K] if len(scores) > K else np.arange(len(scores))
        terms = set(query)
        ranked = sorted(((ids[i], float(scores[i])) for i in best if terms.intersection(tokens[i])),
                        key=lambda x: (-x[1], x[0]))
        tops.append([d for d, _ in ranked[:10]])
    search = time.perf_counter() - start
    return {"build_s": build, "tokenize_s": tokenized, "build_peak_rss_mb": build_rss, "search_s": search,
            "queries": len(queries), "top10": tops}


def rank_bm25_run(corpus: str, split: str | None) -> None:
    """Write rank_bm25's BM25Okapi run for a corpus's queries, ranked and cut as `rdistill retrieve` does."""
    from rank_bm25 import BM25Okapi

    from rdistill.data import iter_corpus, load_queries
    from rdistill.io import format_run_query
    from rdistill.retrieval.tokenize import Tokenizer

    tokenize = Tokenizer()
    docs = [(d.doc_id, tokenize(d.full_text)) for d in iter_corpus(corpus)]
    model = BM25Okapi([t for _, t in docs], k1=1.2, b=0.75, epsilon=0.25)
    for qid, text in load_queries(corpus, split).items():
        query = tokenize(text)
        scores = model.get_scores(query)
        terms = set(query)
        hits = {doc: float(s) for (doc, toks), s in zip(docs, scores, strict=True) if terms.intersection(toks)}
        sys.stdout.write(format_run_query(qid, hits, "rank_bm25", K))


def in_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def synthesize(n_docs: int, path: Path) -> None:
    """Join halves of two scifact abstracts per document; a fixed permutation makes every pair different."""
    import orjson

    from rdistill.data import iter_corpus

    docs = [d.full_text.split() for d in iter_corpus(str(DATA / "scifact"))]
    rng = np.random.default_rng(0)
    with open(path, "wb") as fh:
        for i in range(n_docs):
            a, b = docs[i % len(docs)], docs[int(rng.integers(len(docs)))]
            text = " ".join(a[: len(a) // 2] + b[len(b) // 2:])
            fh.write(orjson.dumps({"_id": f"s{i}", "text": text}) + b"\n")


def compare(name: str, corpus: str, queries: list[str], slow_queries: int, scratch: Path) -> None:
    ours = in_child("rdistill", corpus, json.dumps(queries), str(scratch / f"idx-{name}"))
    subset = queries[:slow_queries]
    theirs = in_child("rank_bm25", corpus, json.dumps(subset))
    agree = sum(a == b for a, b in zip(ours["top10"][: len(subset)], theirs["top10"], strict=True))
    ours_qps = ours["queries"] / ours["search_s"]
    theirs_qps = theirs["queries"] / theirs["search_s"]
    print(f"\n== {name}: {corpus}")
    print(f"index build: rdistill {ours['build_s']:.2f} s (tokenising included), peak RSS "
          f"{ours['build_peak_rss_mb']:.0f} MB, index on disk {ours['index_mb']:.1f} MB; "
          f"rank_bm25 {theirs['build_s']:.2f} s ({theirs['tokenize_s']:.2f} s of it tokenising), "
          f"peak RSS {theirs['build_peak_rss_mb']:.0f} MB")
    print(f"queries/second (top {K}): rdistill {ours_qps:.1f} on {ours['queries']} queries; "
          f"rank_bm25 {theirs_qps:.2f} on {theirs['queries']} queries; ratio {ours_qps / theirs_qps:.1f}x")
    print(f"identical top-10 lists: {agree}/{len(subset)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    parser.add_argument("--slow-queries", type=int, default=20, help="queries rank_bm25 is timed on (large corpus)")
    parser.add_argument("--rank-bm25-run", metavar="CORPUS", help="only write rank_bm25's run for CORPUS")
    parser.add_argument("--split", help="split of --rank-bm25-run's BEIR folder")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_bm25_run:
        rank_bm25_run(args.rank_bm25_run, args.split)
        return
    if args.child:
        kind, *rest = args.child
        if kind == "baseline":
            result = child_baseline()
        elif kind == "rdistill":
            result = child_rdistill(rest[0], json.loads(rest[1]), rest[2])
        else:
            result = child_rank_bm25(rest[0], json.loads(rest[1]))
        print(json.dumps(result))
        return

    from rdistill.data import load_queries

    queries = list(load_queries(str(DATA / "scifact"), "test").values())
    print(f"baseline (interpreter + libraries imported): peak RSS {in_child('baseline')['peak_rss_mb']:.0f} MB")
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        scratch = Path(tmp)
        compare("scifact", str(DATA / "scifact"), queries, len(queries), scratch)
        synthetic = scratch / "synthetic.jsonl"
        synthesize(args.docs, synthetic)
        compare(f"synthetic {args.docs:,} documents", str(synthetic), queries, args.slow_queries, scratch)


if __name__ == "__main__":
    main()
