"""Per-query min-max fusion of TREC runs (weighted sum), for README figures measured before `rdistill fuse` landed.

Each run's scores are min-max normalised per query ((s - min) / (max - min), 1e-9 floor on the denominator, as
ranx), a document a run lacks gets 0, and the fused score is the weighted sum; ties are broken as trec_eval does.
This is `rdistill fuse --weights W1,W2 --norm minmax --method wsum`'s rule, so the figures carry over.

    .venv/bin/python bench/fuse_minmax.py bm25.trec cross.trec > fused.trec
    .venv/bin/python bench/fuse_minmax.py --weights 1,0.5 bm25.trec cross.trec > fused.trec
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from rdistill.io import format_run_query, read_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--weights", default=None, help="comma-separated, one per run (default: all 1)")
    ap.add_argument("--tag", default="fused")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")] if args.weights else [1.0] * len(args.runs)
    if len(weights) != len(args.runs):
        sys.exit("fuse_minmax: one weight per run")
    runs = [read_run(r) for r in args.runs]
    for qid in runs[0]:
        fused: dict[str, float] = {}
        for weight, run in zip(weights, runs, strict=True):
            scores = run.get(qid, {})
            if not scores:
                continue
            low, high = min(scores.values()), max(scores.values())
            for doc, s in scores.items():
                fused[doc] = fused.get(doc, 0.0) + weight * (s - low) / max(high - low, 1e-9)
            for doc in runs[0][qid]:
                fused.setdefault(doc, 0.0)
        sys.stdout.write(format_run_query(qid, fused.items(), args.tag))


if __name__ == "__main__":
    main()
