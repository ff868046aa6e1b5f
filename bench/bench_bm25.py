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
    # index build memory against corpus size: this tree's segmented build (--memory) against the in-memory build
    # of --baseline-rev (taken from git), each in its own child process, sizes interleaved:
    .venv/bin/python bench/bench_bm25.py --scale 100000,200000,500000,1000000 --baseline-max 200000
    # queries/second against bm25s's own retrieve on the same index files (scifact; --docs N adds a synthetic one):
    .venv/bin/python bench/bench_bm25.py --search 10,100,1000 --docs 0
    # whole processes: `rdistill retrieve` against a bm25s script writing the same run (scifact, all queries):
    .venv/bin/python bench/bench_bm25.py --process 100,1000
    # rank_bm25's own run (same tokens, top 100, matching documents only), to evaluate beside `rdistill retrieve`:
    .venv/bin/python bench/bench_bm25.py --rank-bm25-run ../shared/data/scifact --split test > rank_bm25.trec
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
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


def child_build(corpus: str, index_dir: str, memory: str) -> dict:
    """Only the index build, so ru_maxrss is the build's peak (imports included)."""
    from rdistill.retrieval.bm25 import BM25Params, build_bm25

    start = time.perf_counter()
    extra = {"memory": memory} if memory else {}  # the baseline revision's build takes no budget
    build_bm25(corpus, Path(index_dir), BM25Params(), show_progress=False, **extra)
    meta = json.loads((Path(index_dir) / "meta.json").read_text())
    return {"build_s": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb(), **meta["stats"],
            "index_mb": sum(f.stat().st_size for f in Path(index_dir).rglob("*") if f.is_file()) / 2**20}


def child_search(index_dir: str, queries: list[str], k: int, repeat: int) -> dict:
    """Queries/second on one built index: rdistill's search against bm25s's retrieve on the same index files.

    Both tokenise with the same Tokenizer inside the timed loop and return the top k (document indices) with
    scores; "ids": an array of document ids instead (rdistill's ``ranking``, in trec_eval's order; bm25s given
    the ids as a numpy array); "dict": rdistill's ``search``, docno -> score, the Python strings a run is written
    from. rdistill keeps only documents holding a query term, and those tied at the k-th score. Interleaved, and
    timed in CPU seconds of this process (process_time), which other jobs on a shared machine disturb less.
    """
    import bm25s

    from rdistill.retrieval.bm25 import BM25Index, BM25Params
    from rdistill.retrieval.tokenize import Tokenizer

    index = BM25Index(Path(index_dir), BM25Params())
    engine = bm25s.BM25.load(Path(index_dir) / "bm25s", mmap=True, show_progress=False)
    tokenize = Tokenizer()
    # bm25s returns ids when given the corpus's ids (as a numpy array it indexes them in one call): what a bm25s
    # script that writes a run does.
    doc_ids = np.array(index.ids.many(np.arange(len(index.ids))))
    times: dict[str, list[float]] = {"rdistill": [], "rdistill ids": [], "rdistill dict": [], "bm25s": [],
                                     "bm25s ids": []}
    for _ in range(repeat):
        start = time.process_time()
        for q in queries:
            index.best(q, k)
        times["rdistill"].append(time.process_time() - start)
        start = time.process_time()
        for q in queries:
            index.ranking(q, k)
        times["rdistill ids"].append(time.process_time() - start)
        start = time.process_time()
        ours = [index.search(q, k) for q in queries]
        times["rdistill dict"].append(time.process_time() - start)
        start = time.process_time()
        tokens = [[t for t in tokenize(q) if t in engine.vocab_dict] or [next(iter(engine.vocab_dict))]
                  for q in queries]
        _, scores = engine.retrieve(tokens, k=k, show_progress=False)
        times["bm25s"].append(time.process_time() - start)
        start = time.process_time()
        tokens = [[t for t in tokenize(q) if t in engine.vocab_dict] or [next(iter(engine.vocab_dict))]
                  for q in queries]
        engine.retrieve(tokens, corpus=doc_ids, k=k, show_progress=False)
        times["bm25s ids"].append(time.process_time() - start)
    # bm25s breaks ties at the k-th score its own way and fills short lists with non-matching documents.
    same = sum(sorted(o.values(), reverse=True)[:k] == row.tolist()[: len(o)] for o, row in zip(ours, scores, strict=True))
    return {"times": times, "queries": len(queries), "same_top_k": same}


def child_bm25s_run(index_dir: str, queries_file: str, k: int) -> None:
    """The baseline of --process: a bm25s script that does `rdistill retrieve`'s job on a built index. It loads
    the index memory-mapped, reads the queries, tokenises them with the same tokenizer, retrieves all of them in
    one call with the document ids as a numpy array (so bm25s returns ids), and writes a TREC run on stdout."""
    import bm25s
    import orjson

    from rdistill.retrieval.tokenize import Tokenizer

    folder = Path(index_dir)
    engine = bm25s.BM25.load(folder / "bm25s", mmap=True, show_progress=False)
    offsets = np.load(folder / "docids.offsets.npy")
    raw = (folder / "docids.bin").read_bytes()
    doc_ids = np.array([raw[a:b].decode() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)])
    tokenize = Tokenizer()
    qids, tokens = [], []
    with open(queries_file, "rb") as fh:
        for line in fh:
            record = orjson.loads(line)
            qids.append(record["_id"])
            tokens.append([t for t in tokenize(record["text"]) if t in engine.vocab_dict]
                          or [next(iter(engine.vocab_dict))])
    docs, scores = engine.retrieve(tokens, corpus=doc_ids, k=k, show_progress=False)
    out = sys.stdout
    for qid, row_docs, row_scores in zip(qids, docs.tolist(), scores.tolist(), strict=True):
        out.write("".join(f"{qid} Q0 {d} {r} {s!r} bm25s\n"
                          for r, (d, s) in enumerate(zip(row_docs, row_scores, strict=True), 1)))


def process(depths: list[int], repeat: int) -> None:
    """Whole processes, wall time: `rdistill retrieve` against the bm25s script above (child_bm25s_run), both on
    the same built index and all of scifact's 1,109 queries, each writing its run to a file; interleaved repeats,
    median. Startup, imports, query reading and run writing are all in the time, as a user sees it."""
    from rdistill.io import read_run

    rdistill_bin = Path(sys.executable).parent / "rdistill"
    corpus = str(DATA / "scifact")
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        folder = Path(tmp) / "index"
        subprocess.run([str(rdistill_bin), "retrieve", "--corpus", corpus, "--queries", corpus, "--k", "1",
                        "--index", str(folder), "-o", os.devnull], check=True, capture_output=True)
        n_queries = sum(1 for _ in open(DATA / "scifact" / "queries.jsonl", "rb"))
        print(f"{n_queries} scifact queries, whole process wall time, median of {repeat} interleaved repeats")
        for k in depths:
            ours_out, theirs_out = Path(tmp) / "ours.trec", Path(tmp) / "theirs.trec"
            commands = {
                "rdistill": [str(rdistill_bin), "retrieve", "--corpus", corpus, "--queries", corpus, "--k", str(k),
                             "--index", str(folder), "-o", str(ours_out)],
                "bm25s": [sys.executable, __file__, "--child", "bm25s-run", str(folder / "bm25"),
                          str(DATA / "scifact" / "queries.jsonl"), str(k)],
            }
            took: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(repeat):
                for name, command in commands.items():
                    start = time.perf_counter()
                    with open(theirs_out if name == "bm25s" else os.devnull, "wb") as sink:
                        subprocess.run(command, check=True, stdout=sink, stderr=subprocess.DEVNULL,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)})
                    took[name].append(time.perf_counter() - start)
            ours, theirs = read_run(str(ours_out)), read_run(str(theirs_out))
            # bm25s pads a short list with documents holding no query term, and picks its own documents among those
            # tied at the k-th score: compare the scores of the documents rdistill lists.
            same = sum(sorted(ours[q].values(), reverse=True) == sorted(theirs[q].values(), reverse=True)[:len(ours[q])]
                       for q in ours)
            a, b = statistics.median(took["rdistill"]), statistics.median(took["bm25s"])
            print(f"k={k:<5} rdistill retrieve {a:6.2f} s  bm25s script {b:6.2f} s  ratio (bm25s / rdistill) "
                  f"{b / a:.2f}x  same scores {same}/{len(ours)} queries", flush=True)


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


def in_child(*args: str, tree: Path = ROOT) -> dict:
    """Run a child of this script with ``tree``'s rdistill first on the path (this checkout, or the baseline's)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True,
                         env=env)
    return json.loads(out.stdout)


def search(depths: list[int], n_docs: int, repeat: int) -> None:
    """rdistill's BM25Index.search against bm25s's retrieve on the same index, queries/second at each depth."""
    from rdistill.data import load_queries
    from rdistill.retrieval.bm25 import BM25Index, BM25Params

    queries = list(load_queries(str(DATA / "scifact"), "test").values())
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        corpora = [("scifact", str(DATA / "scifact"))]
        if n_docs:
            synthesize(n_docs, Path(tmp) / "synthetic.jsonl")
            corpora.append((f"synthetic {n_docs:,}", str(Path(tmp) / "synthetic.jsonl")))
        print(f"{len(queries)} scifact test queries; median of {repeat} interleaved repeats; same tokenizer")
        for name, corpus in corpora:
            folder = Path(tmp) / name
            BM25Index.open(corpus, folder, BM25Params(), show_progress=False)
            for k in depths:
                r = in_child("search", str(folder), json.dumps(queries), str(k), str(repeat))
                ours, named, mapped, theirs, theirs_named = (
                    len(queries) / statistics.median(r["times"][s])
                    for s in ("rdistill", "rdistill ids", "rdistill dict", "bm25s", "bm25s ids"))
                print(f"{name:>18} k={k:<5} rdistill {ours:7.0f} q/s ({named:7.0f} with ids, {mapped:7.0f} as a "
                      f"dict)  bm25s {theirs:7.0f} q/s ({theirs_named:7.0f} with ids)  ratio {ours / theirs:.2f}x, "
                      f"with ids {named / theirs_named:.2f}x, dict against bm25s with ids "
                      f"{mapped / theirs_named:.2f}x  "
                      f"same top-k scores {r['same_top_k']}/{len(queries)}", flush=True)


def scale(sizes: list[int], memory: str, baseline_rev: str, baseline_max: int, scratch: Path) -> None:
    """Peak build memory and time at several corpus sizes, ours against the baseline revision's build."""
    baseline = scratch / "baseline"
    baseline.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline_rev, "rdistill"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
    print(f"baseline: the in-memory build of {baseline_rev} (git archive); ours: --memory {memory}")
    print("documents  system    build s  docs/s  peak RSS MiB  postings  segments  index MiB")
    ours: dict[int, dict] = {}
    for n in sizes:
        corpus = scratch / f"synthetic-{n}.jsonl"
        synthesize(n, corpus)
        runs = [("ours", ROOT, memory)] + ([("baseline", baseline, "")] if n <= baseline_max else [])
        for name, tree, budget in runs:
            r = in_child("build", str(corpus), str(scratch / f"idx-{name}-{n}"), budget, tree=tree)
            if name == "ours":
                ours[n] = r
            print(f"{n:>9,}  {name:<8} {r['build_s']:>8.1f} {n / r['build_s']:>7.0f} {r['peak_rss_mb']:>13.0f} "
                  f"{r['postings']:>9,} {r.get('segments', 1):>9} {r['index_mb']:>10.0f}", flush=True)
            shutil.rmtree(scratch / f"idx-{name}-{n}")
        corpus.unlink()
    if len(ours) > 1:
        lo, hi = min(ours), max(ours)
        slope = (ours[hi]["peak_rss_mb"] - ours[lo]["peak_rss_mb"]) / ((hi - lo) / 1000)
        per_posting = ours[hi]["index_mb"] * 2**20 / ours[hi]["postings"]
        print(f"ours: peak RSS growth {slope:.3f} MiB per 1,000 documents between {lo:,} and {hi:,}; "
              f"index {per_posting:.1f} bytes per posting; {sum(r['postings'] for r in ours.values()) / sum(r['build_s'] for r in ours.values()) / 1e6:.2f} M postings/s")


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
    parser.add_argument("--scale", metavar="N,N,...", help="only the build-memory table at these corpus sizes")
    parser.add_argument("--memory", default="1G", help="our build's --memory budget (--scale)")
    parser.add_argument("--baseline-rev", default="6e1d5df",
                        help="git revision whose rdistill is the baseline build (--scale); default: the last "
                        "in-memory build")
    parser.add_argument("--baseline-max", type=int, default=200_000,
                        help="largest size the baseline builds (--scale); its memory grows with the corpus")
    parser.add_argument("--search", metavar="K,K,...", help="only queries/second against bm25s at these depths, on "
                        "scifact and (with --docs > 0) the synthetic corpus")
    parser.add_argument("--process", metavar="K,K,...", help="only whole-process wall time of `rdistill retrieve` "
                        "against a bm25s script doing its job, at these depths (scifact, all queries)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repeats (--search, --process)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_bm25_run:
        rank_bm25_run(args.rank_bm25_run, args.split)
        return
    if args.child:
        kind, *rest = args.child
        if kind == "bm25s-run":
            child_bm25s_run(rest[0], rest[1], int(rest[2]))
            return
        if kind == "baseline":
            result = child_baseline()
        elif kind == "search":
            result = child_search(rest[0], json.loads(rest[1]), int(rest[2]), int(rest[3]))
        elif kind == "build":
            result = child_build(*rest)
        elif kind == "rdistill":
            result = child_rdistill(rest[0], json.loads(rest[1]), rest[2])
        else:
            result = child_rank_bm25(rest[0], json.loads(rest[1]))
        print(json.dumps(result))
        return

    if args.process:
        process([int(k) for k in args.process.split(",")], args.repeat)
        return
    if args.search:
        search([int(k) for k in args.search.split(",")], args.docs, args.repeat)
        return
    if args.scale:
        with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
            scale([int(n) for n in args.scale.split(",")], args.memory, args.baseline_rev, args.baseline_max,
                  Path(tmp))
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
