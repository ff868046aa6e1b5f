"""`rdistill eval` against the trec_eval oracle (pytrec_eval, trec_eval compiled) on real runs.

Builds rank_bm25 runs (top 100) of the test queries of cranfield, scifact and vaswani exactly as tests/test_eval.py
does, plus a scifact run with scores rounded to whole numbers (thousands of ties) and a cranfield run missing every
third query, evaluates each through the real CLI (`python -m rdistill eval -q --json`), and prints, per measure, the
largest absolute difference from pytrec_eval over all queries.

Run from the repository root: .venv/bin/python bench/eval_oracle.py   (about 30 s)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rdistill.data import load_qrels  # noqa: E402
from tests.test_eval import DATA, MEASURES, TREC_NAMES, bm25_run, pytrec, write_run  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    runs = {name: (name, bm25_run(name)) for name in ("cranfield", "scifact", "vaswani")}
    runs["scifact-ties"] = ("scifact", {q: {d: float(round(s)) for d, s in docs.items()}
                                        for q, docs in runs["scifact"][1].items()})
    runs["cranfield-gaps"] = ("cranfield", {q: docs for i, (q, docs) in enumerate(runs["cranfield"][1].items())
                                            if i % 3})
    for name, (collection, run) in runs.items():
        path = write_run(tmp / f"{name}.trec", run)
        out = subprocess.run([sys.executable, "-m", "rdistill", "eval", "--qrels", str(DATA / collection), "--split",
                              "test", "-m", MEASURES, "-q", "--json", str(path)],
                             capture_output=True, text=True, check=True).stdout
        ours = {row["query_id"]: row for row in map(json.loads, out.splitlines())}
        oracle = pytrec(load_qrels(str(DATA / collection), "test"), run)
        assert set(ours) == set(oracle)
        worst = {m: max(abs(ours[q][m] - oracle[q][t]) for q in oracle) for m, t in TREC_NAMES.items()}
        print(f"{name:15s} queries={len(oracle):3d} " + " ".join(f"{m}={v:.1e}" for m, v in worst.items()))


if __name__ == "__main__":
    main()
