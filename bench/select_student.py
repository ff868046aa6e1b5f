"""Choose the demo's student on a dev split carved from the training queries, never on test.

The rule, fixed before any run: every candidate trains on the same groups (BM25-window sampling, the fused
teacher, G = 8) from the training queries minus a seeded dev split (`rdistill data split --dev 100 --seed 42`), and
re-ranks BM25's top 20 of the dev queries; the candidate with the highest mean dev nDCG@10 wins, and a candidate
within 0.005 of it that trains in less time wins instead (cheaper is better at equal quality). The test split is
never read here. Every stage is the real CLI; the shared stages (retrieval, teacher, groups) are `make` targets of
the demo run on the carved folder (DATA=OUT/data), so they are exactly the demo's.

    .venv/bin/python bench/select_student.py                    # all candidates, table on stdout
    .venv/bin/python bench/select_student.py --only frozen      # the candidates whose name contains "frozen"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RD = [sys.executable, "-m", "rdistill"]
TEACHER = ["--teacher-scale", "5", "--group-size", "8", "--seed", "42"]
MINILM = ["--model", "all-MiniLM-L6-v2"]
# name -> (train arguments, scoring arguments)
FROZEN = [*MINILM, "--student", "bi", "--frozen-documents", "--max-doc-length", "256", "--batch-size", "16",
          "--grad-accum", "1"]
CANDIDATES: dict[str, tuple[list[str], list[str]]] = {
    "bi-6l, marginmse, 150 steps, lr 1e-4": (
        [*MINILM, "--student", "bi", "--pooling", "mean", "--max-doc-length", "128", "--batch-size", "4",
         "--grad-accum", "1", "--loss", "marginmse", "--lr", "1e-4", "--max-steps", "150"],
        ["--max-doc-length", "128", "--doc-embeddings", "run"]),
    "cross-4l from ms-marco-MiniLM-L-12-v2, marginmse, 150 steps, lr 1e-4": (
        ["--model", "ms-marco-MiniLM-L-12-v2", "--student", "cross", "--init-layers", "4", "--max-doc-length", "128",
         "--batch-size", "4", "--grad-accum", "1", "--loss", "marginmse", "--lr", "1e-4", "--max-steps", "150"],
        ["--max-doc-length", "128"]),
}
# (The old 2-layer default and MarginMSE at lr 5e-5 were dropped from the list to fit a session's compute: the
# former ends far below BM25 on scifact, the latter was 0.02-0.03 below KL at lr 2e-5 on dev.)
for loss, lrs in (("kl", ("2e-5", "5e-5")), ("marginmse", ("2e-5",))):
    for lr in lrs:
        for steps in ("200", "600"):
            CANDIDATES[f"frozen-documents 6l, {loss}, {steps} steps, lr {lr}"] = (
                [*FROZEN, "--loss", loss, "--lr", lr, "--max-steps", steps], [])


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, text=True, capture_output=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data", help="folder with the BEIR collections")
    ap.add_argument("--dataset", default="scifact")
    ap.add_argument("--out", default="out/select")
    ap.add_argument("--dev", type=int, default=100)
    ap.add_argument("--only", default="", help="run only candidates whose name contains this")
    a = ap.parse_args()
    out = Path(a.out)
    folder = out / "data" / a.dataset
    run([*RD, "data", "split", f"{a.data}/{a.dataset}", str(folder), "--dev", str(a.dev), "--seed", "42"])
    run(["make", "-s", f"OUT={out}", f"DATA={out / 'data'}", f"DATASET={a.dataset}", f"{out}/groups/bm25.jsonl"])
    dev_run = out / "bm25.dev.trec"
    if not dev_run.exists():
        run([*RD, "retrieve", "--corpus", str(folder), "--queries", str(folder), "--split", "dev", "--k", "20",
             "--index", str(out / "index" / "bm25"), "-o", str(dev_run)])

    def ndcg(run_file: Path) -> float:
        done = run([*RD, "eval", "--qrels", str(folder), "--split", "dev", "--metrics", "ndcg@10", "--json", str(run_file)])
        return float(json.loads(done.stdout)["ndcg@10"])

    rows = [("BM25 (the candidates' first stage)", ndcg(dev_run), 0.0)]
    for name, (train_args, score_args) in CANDIDATES.items():
        if a.only not in name:
            continue
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        student, scored = out / "students" / slug, out / "runs" / f"{slug}.trec"
        if not (student / "rdistill_train.json").exists():
            run([*RD, "train", *train_args, *TEACHER, "--queries", str(folder), "--corpus", str(folder),
                 "--out", str(student), str(out / "groups" / "bm25.jsonl")])
        seconds = json.loads((student / "rdistill_train.json").read_text())["seconds"]
        if not scored.exists():
            scored.parent.mkdir(parents=True, exist_ok=True)
            run([*RD, "score-teacher", "--model", str(student), *score_args, "--queries", str(folder), "--corpus",
                 str(folder), "-o", str(scored), str(dev_run)])
        rows.append((name, ndcg(scored), seconds))
        print(f"{name}: dev nDCG@10 {rows[-1][1]:.4f}, trained in {seconds:.0f} s", file=sys.stderr, flush=True)
    best = max(rows[1:], key=lambda r: r[1])
    chosen = min((r for r in rows[1:] if r[1] >= best[1] - 0.005), key=lambda r: r[2])
    print(f"| candidate ({a.dev} dev queries of {a.dataset} train, BM25 top 20 re-ranked) | dev nDCG@10 | "
          "training s |\n|---|---|---|")
    for name, value, seconds in rows:
        mark = " **(chosen)**" if (name, value, seconds) == chosen else ""
        print(f"| {name}{mark} | {value:.4f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
