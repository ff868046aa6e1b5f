"""One table of the paper's sampling sources on a BEIR collection's train split, produced by the rdistill CLI.

For each source (random, bm25 window, teacher window, ensemble of BM25 + MiniLM dense with and without the
false-negative filter) it runs `rdistill sample` for groups of G documents, then reports the groups and queries,
the mean teacher entropy of the groups (softmax over each group's teacher scores, T = 1, nats), and the locality
from `rdistill locality`: the dataset Δ (0.99 quantile of the per-query 0.99-quantile cosine diameters), the mean
diameter, and the coverage of each pool against BM25's top 100 on the test split.

The teacher is all-MiniLM-L6-v2 used as a bi-encoder (cosine of query and document embeddings), as in the
Makefile's demo; the dense run is the same model's top 200. Random and padding documents are scored through
`sample --emit-candidates`, as a user would. Embeddings are computed once (or read from --embeddings-dir, an
folder with corpus.npz and queries.npz holding 'ids' and 'vectors') and given to `locality --embeddings`.

    python bench/locality_table.py --data ../shared/data/scifact --work /tmp/loc --embeddings-dir /tmp/emb
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
RD = [sys.executable, "-m", "rdistill"]


def rd(*args: str, stdin: Path | None = None, stdout: Path | None = None) -> str:
    cmd = [*RD, *map(str, args)]
    print("$ rdistill " + " ".join(map(str, args)) + (f" < {stdin}" if stdin else "") +
          (f" > {stdout}" if stdout else ""), file=sys.stderr)
    with open(stdin or "/dev/null", "rb") as fin, open(stdout or "/dev/null", "wb") as fout:
        done = subprocess.run(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, cwd=ROOT)
    err = done.stderr.decode()
    sys.stderr.write(err)
    if done.returncode != 0:
        raise SystemExit(f"failed: {cmd}")
    return err


def embeddings(data: Path, folder: Path | None, work: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    if folder is None:  # embed here (slow on a small CPU; a GPU run can write the two .npz files instead)
        from rdistill.data import iter_corpus, load_queries
        from rdistill.models import BiEncoder

        model = BiEncoder("all-MiniLM-L6-v2")
        docs = list(iter_corpus(str(data)))
        queries = load_queries(str(data))
        folder = work
        np.savez(folder / "corpus.npz", ids=np.array([d.doc_id for d in docs]),
                 vectors=model.encode([d.full_text for d in docs], desc="corpus"))
        np.savez(folder / "queries.npz", ids=np.array(list(queries)), vectors=model.encode(list(queries.values())))
    out = []
    for name in ("corpus", "queries"):
        z = np.load(folder / f"{name}.npz")
        v = z["vectors"].astype(np.float64)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out.append({str(i): v[k] for k, i in enumerate(z["ids"])})
    return out[0], out[1]


def score_run(source: Path, target: Path, docs: dict[str, np.ndarray], queries: dict[str, np.ndarray],
              extra: dict[str, set[str]] | None = None) -> None:
    """The teacher: cosine of MiniLM embeddings for every (query, document) of a run (plus ``extra`` documents)."""
    from rdistill.io import iter_run_queries, write_run

    def scored():
        for qid, ranked in iter_run_queries(source):
            wanted = set(ranked) | (extra or {}).get(qid, set())
            yield qid, {d: float(queries[qid] @ docs[d]) for d in wanted}

    with open(target, "w") as out:
        write_run(out, scored(), tag="minilm-teacher")


def dense_run(target: Path, docs: dict[str, np.ndarray], queries: dict[str, np.ndarray], qids: list[str],
              k: int) -> None:
    from rdistill.io import write_run

    ids = list(docs)
    matrix = np.stack([docs[d] for d in ids])
    with open(target, "w") as out:
        for qid in qids:
            sims = matrix @ queries[qid]
            top = np.argsort(-sims, kind="stable")[:k]
            write_run(out, [(qid, {ids[i]: float(sims[i]) for i in top})], tag="minilm-dense")


def entropy(path: Path) -> tuple[int, int, float]:
    groups, queries, total = 0, set(), 0.0
    for line in open(path, "rb"):
        g = orjson.loads(line)
        s = np.asarray(g["scores"], dtype=np.float64)
        p = np.exp(s - s.max())
        p /= p.sum()
        total += float(-(p * np.log(p)).sum())
        groups += 1
        queries.add(g["query_id"])
    return groups, len(queries), total / groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rdistill-locality"))
    parser.add_argument("--embeddings-dir", type=Path, default=None)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    w, d, g = args.work, str(args.data), str(args.group_size)
    w.mkdir(parents=True, exist_ok=True)
    docs, queries = embeddings(args.data, args.embeddings_dir, w)
    qrels_args = ["--qrels", d, "--split", "train"]
    common = [*qrels_args, "--group-size", g, "--seed", str(args.seed)]

    if not (w / "bm25.trec").exists():
        rd("retrieve", "--corpus", d, "--queries", d, "--split", "train", "--k", "200", stdout=w / "bm25.trec")
    if not (w / "bm25.test.trec").exists():
        rd("retrieve", "--corpus", d, "--queries", d, "--split", "test", "--k", "100", stdout=w / "bm25.test.trec")
    from rdistill.data import load_qrels

    judged = load_qrels(d, "train")
    positives = {q: {x for x, r in docs_.items() if r > 0} for q, docs_ in judged.items()}
    dense_run(w / "dense.trec", docs, queries, sorted(positives), 200)
    # The teacher re-ranks {positives} + BM25@200, as score-teacher --qrels does.
    score_run(w / "bm25.trec", w / "teacher.trec", docs, queries, positives)

    groups: dict[str, Path] = {}
    # random: list the random documents, score them, sample again with the scores (same seed, same documents).
    rd("sample", "--strategy", "random", "--corpus", d, *common, "--no-scores", "--emit-candidates",
       stdout=w / "random.cand.trec")
    score_run(w / "random.cand.trec", w / "random.teacher.trec", docs, queries)
    groups["random"] = w / "random.jsonl"
    rd("sample", "--strategy", "random", "--corpus", d, *common, "--scores", w / "random.teacher.trec",
       stdout=groups["random"])
    groups["bm25 (window 1:100)"] = w / "bm25.jsonl"
    rd("sample", "--strategy", "window", "--window", "1:100", "--scores", w / "teacher.trec", *common,
       stdin=w / "bm25.trec", stdout=groups["bm25 (window 1:100)"])
    groups["teacher (window 1:100)"] = w / "teacher.jsonl"
    rd("sample", "--strategy", "teacher", "--window", "1:100", *common, stdin=w / "teacher.trec",
       stdout=groups["teacher (window 1:100)"])
    rd("sample", "--strategy", "ensemble", "--corpus", d, *common, "--emit-candidates", "--no-scores",
       w / "bm25.trec", w / "dense.trec", stdout=w / "ensemble.cand.trec")
    score_run(w / "ensemble.cand.trec", w / "ensemble.teacher.trec", docs, queries)
    for name, flag in (("ensemble (filtered)", "--filter"), ("ensemble (unfiltered)", "--no-filter")):
        groups[name] = w / (name.split()[1].strip("()") + ".ensemble.jsonl")
        rd("sample", "--strategy", "ensemble", flag, "--corpus", d, *common, "--scores", w / "ensemble.teacher.trec",
           w / "bm25.trec", w / "dense.trec", stdout=groups[name])

    np.savez(w / "emb.npz", ids=np.array(list(docs)), vectors=np.stack(list(docs.values())).astype(np.float32))
    rd("locality", "--embeddings", w / "emb.npz", "--corpus", d, "--coverage-against", w / "bm25.test.trec",
       "--summary", w / "locality.summary.jsonl", *groups.values(), stdout=w / "locality.jsonl")
    summaries = {s["input"]: s for s in map(orjson.loads, open(w / "locality.summary.jsonl", "rb"))}

    print(f"\nSampling sources on {args.data.name} train, G = {args.group_size}, seed {args.seed} "
          "(teacher: all-MiniLM-L6-v2 cosine; entropy: softmax of each group's teacher scores, T = 1, nats)\n")
    print("| source | groups | queries | mean teacher entropy | dataset Δ (q0.99) | mean Δ̂_q | coverage of "
          "BM25 test@100 | vs random pool |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, path in groups.items():
        n_groups, n_queries, mean_h = entropy(path)
        s = summaries[str(path)]
        cov = s["coverage"]
        norm = cov["normalised"]
        print(f"| {name} | {n_groups} | {n_queries} | {mean_h:.4f} | {s['delta']:.4f} | {s['mean_diameter']:.4f} | "
              f"{cov['coverage']:.4f} | {'' if norm is None or math.isnan(norm) else f'{norm:.2f}x'} |")


if __name__ == "__main__":
    main()
