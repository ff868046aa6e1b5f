"""One table of the paper's sampling sources on a BEIR collection's train split, produced by the rdistill CLI.

Every step is an rdistill command, as a user would chain them: BM25 and MiniLM dense runs (`retrieve`), the teacher
(`score-teacher`: all-MiniLM-L6-v2 as a bi-encoder, so cosine scores) over {positives} + BM25@200, groups of G
documents from each source (`sample`; random and ensemble documents scored in a second pass through
`--emit-candidates`), the mean teacher entropy of the groups (`entropy`, softmax, T = 0.05 by default since the
teacher's scores are cosines), and locality (`locality`: dataset Δ = 0.99 quantile of the per-query 0.99-quantile
cosine diameters, the mean diameter, and coverage against BM25's top 100 on the test split), with the dense
index's own MiniLM embeddings.

    python bench/experiments/locality_table.py --data ../shared/data/scifact --work /tmp/loc
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[2]  # bench/experiments/ -> the repository root
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


def export_embeddings(index: Path, target: Path) -> None:
    """The dense index's document vectors as the NPZ (ids, vectors) that `locality --embeddings` reads."""
    from rdistill.retrieval.store import DocIds

    ids = DocIds(index)
    vectors = np.load(index / "embeddings.npy", mmap_mode="r")
    np.savez(target, ids=np.array([ids[i] for i in range(len(ids))]), vectors=np.asarray(vectors, dtype=np.float32))


def mean_entropy(groups: Path, temperature: float, work: Path) -> tuple[int, int, float]:
    out = work / (groups.stem + ".entropy.jsonl")
    rd("entropy", "--temperature", str(temperature), stdin=groups, stdout=out)
    rows = [orjson.loads(line) for line in open(out, "rb")]
    return len(rows), len({r["query_id"] for r in rows}), float(np.mean([r["entropy"] for r in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/scifact")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rdistill-locality"))
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--teacher", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    w, d, g = args.work, str(args.data), str(args.group_size)
    w.mkdir(parents=True, exist_ok=True)
    common = ["--qrels", d, "--split", "train", "--group-size", g, "--seed", str(args.seed)]
    teacher = ["score-teacher", "--model", args.teacher, "--queries", d, "--corpus", d]

    def once(path: Path, *cmd: str, stdin: Path | None = None) -> Path:
        if not path.exists():
            rd(*cmd, stdin=stdin, stdout=path)
        return path

    once(w / "bm25.trec", "retrieve", "--corpus", d, "--queries", d, "--split", "train", "--k", "200",
         "--index", w / "idx")
    once(w / "bm25.test.trec", "retrieve", "--corpus", d, "--queries", d, "--split", "test", "--k", "100",
         "--index", w / "idx")
    once(w / "dense.trec", "retrieve", "--dense", "--model", args.teacher, "--corpus", d, "--queries", d,
         "--split", "train", "--k", "200", "--index", w / "idx")
    once(w / "teacher.trec", *teacher, "--qrels", d, "--split", "train", stdin=w / "bm25.trec")

    groups: dict[str, Path] = {}
    once(w / "random.cand.trec", "sample", "--strategy", "random", "--corpus", d, *common, "--no-scores",
         "--emit-candidates")
    once(w / "random.teacher.trec", *teacher, stdin=w / "random.cand.trec")
    groups["random"] = once(w / "random.jsonl", "sample", "--strategy", "random", "--corpus", d, *common,
                            "--scores", str(w / "random.teacher.trec"))
    groups["bm25 (window 1:100)"] = once(w / "bm25.jsonl", "sample", "--strategy", "window", "--window", "1:100",
                                         "--scores", str(w / "teacher.trec"), *common, stdin=w / "bm25.trec")
    groups["teacher (window 1:100)"] = once(w / "teacher.jsonl", "sample", "--strategy", "teacher", "--window",
                                            "1:100", *common, stdin=w / "teacher.trec")
    once(w / "ensemble.cand.trec", "sample", "--strategy", "ensemble", "--corpus", d, *common, "--emit-candidates",
         "--no-scores", str(w / "bm25.trec"), str(w / "dense.trec"))
    once(w / "ensemble.teacher.trec", *teacher, stdin=w / "ensemble.cand.trec")
    for name, flag in (("ensemble (filtered)", "--filter"), ("ensemble (unfiltered)", "--no-filter")):
        groups[name] = once(w / (name.split()[1].strip("()") + ".ensemble.jsonl"), "sample", "--strategy",
                            "ensemble", flag, "--corpus", d, *common, "--scores", str(w / "ensemble.teacher.trec"),
                            str(w / "bm25.trec"), str(w / "dense.trec"))

    export_embeddings(w / "idx" / "dense", w / "emb.npz")
    rd("locality", "--embeddings", w / "emb.npz", "--corpus", d, "--coverage-against", w / "bm25.test.trec",
       "--summary", w / "locality.summary.jsonl", *groups.values(), stdout=w / "locality.jsonl")
    summaries = {s["input"]: s for s in map(orjson.loads, open(w / "locality.summary.jsonl", "rb"))}

    print(f"\nSampling sources on {args.data.name} train, G = {args.group_size}, seed {args.seed} (teacher: "
          f"{args.teacher} cosine; entropy: softmax of each group's teacher scores, T = {args.temperature}, nats)\n")
    print("| source | groups | queries | mean teacher entropy | dataset Δ (q0.99) | mean Δ̂_q | coverage of "
          "BM25 test@100 | vs random pool |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, path in groups.items():
        n_groups, n_queries, mean_h = mean_entropy(path, args.temperature, w)
        s = summaries[str(path)]
        cov = s["coverage"]
        norm = cov["normalised"]
        print(f"| {name} | {n_groups} | {n_queries} | {mean_h:.4f} | {s['delta']:.4f} | {s['mean_diameter']:.4f} | "
              f"{cov['coverage']:.4f} | {'' if norm is None or math.isnan(norm) else f'{norm:.2f}x'} |")


if __name__ == "__main__":
    main()
