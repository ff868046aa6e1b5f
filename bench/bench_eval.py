"""`rdistill eval` against pytrec_eval (trec_eval's own C code) on a large run, whole processes, same measures.

A synthetic run of --queries x --depth lines (default 1,000 x 1,000 = 1 M lines; scores rounded to 4 decimals so
ties occur, as in real runs) and qrels of 40 judged documents per query (levels 0-3; half of them from the run's top 200).
Five measures: ndcg@10, map, mrr, precision@10, recall@100 (trec_eval's ndcg_cut_10, map, recip_rank, P_10,
recall_100).

- Wall time of whole processes, interleaved --repeat times: `python -m rdistill eval --json RUN` against a script
  that reads the same files with a plain split loop and calls pytrec_eval (the baseline), and against an empty
  interpreter. The ratio is rdistill / pytrec_eval, median of the repeats.
- Where rdistill's time goes, in one child: imports, reading the qrels, reading the run (read_run's dict and
  eval's read_run_table), the evaluation, the evaluation again. `eval` no longer imports ranx or numba; the
  script still times one run with a fresh NUMBA_CACHE_DIR to show that no compile or cache cost is left.
- The numbers: every query's value and the means against pytrec_eval's (largest absolute difference, and how many
  differ once printed with trec_eval's 4 decimals).

    .venv/bin/python bench/bench_eval.py                # about a minute
    .venv/bin/python bench/bench_eval.py --queries 200 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURES = {"ndcg@10": "ndcg_cut_10", "map": "map", "mrr": "recip_rank", "precision@10": "P_10",
            "recall@100": "recall_100"}


def make_data(folder: Path, n_queries: int, depth: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(seed)
    run_path, qrels_path = folder / "run.trec", folder / "qrels.txt"
    with open(run_path, "w") as run, open(qrels_path, "w") as qrels:
        for q in range(n_queries):
            docs = rng.choice(10 * depth, size=depth, replace=False)
            scores = np.sort(np.round(rng.normal(10, 3, size=depth), 4))[::-1]
            run.write("".join(f"q{q} Q0 d{d} {r} {s!r} bench\n"
                              for r, (d, s) in enumerate(zip(docs.tolist(), scores.tolist(), strict=True), 1)))
            judged = [*docs[rng.choice(min(200, depth), size=20, replace=False)].tolist(),  # near the top
                      *(10 * depth + rng.choice(depth, size=20, replace=False)).tolist()]
            levels = rng.integers(0, 4, size=len(judged))
            qrels.write("".join(f"q{q} 0 d{d} {lv}\n" for d, lv in zip(judged, levels.tolist(), strict=True)))
    return run_path, qrels_path


def child_pytrec(qrels_path: str, run_path: str) -> dict:
    """The baseline as a user would write it: read both files into dicts, evaluate, average."""
    import pytrec_eval

    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path) as fh:
        for line in fh:
            q, _, d, level = line.split()
            qrels.setdefault(q, {})[d] = int(level)
    run: dict[str, dict[str, float]] = {}
    with open(run_path) as fh:
        for line in fh:
            q, _, d, _, score, _ = line.split()
            run.setdefault(q, {})[d] = float(score)
    per_query = pytrec_eval.RelevanceEvaluator(qrels, set(MEASURES.values())).evaluate(run)
    return {"per_query": per_query}


def child_breakdown(qrels_path: str, run_path: str) -> dict:
    """rdistill's stages timed one by one in one process."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    import rdistill.cli  # noqa: F401
    from rdistill.data import load_qrels
    from rdistill.evaluation import evaluate, parse_measures
    from rdistill.io import read_run, read_run_table

    times["imports (rdistill.cli, evaluation, io)"] = time.perf_counter() - start
    start = time.perf_counter()
    qrels = load_qrels(qrels_path, None)
    times["read qrels"] = time.perf_counter() - start
    start = time.perf_counter()
    run = read_run(run_path)
    times["read run (read_run, a dict)"] = time.perf_counter() - start
    start = time.perf_counter()
    run = read_run_table(run_path)
    times["read run (read_run_table, eval's)"] = time.perf_counter() - start
    measures = parse_measures(",".join(MEASURES))
    start = time.perf_counter()
    result = evaluate(qrels, run, measures)
    times["evaluate"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluate(qrels, run, measures)
    times["evaluate (again)"] = time.perf_counter() - start
    return {"times": times, "per_query": result.per_query, "mean": result.mean}


def child(kind: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *args], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout)


def wall(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        print(json.dumps(child_pytrec(*rest) if kind == "pytrec" else child_breakdown(*rest)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        run_path, qrels_path = make_data(Path(tmp), args.queries, args.depth)
        print(f"run: {args.queries:,} queries x {args.depth:,} documents = {args.queries * args.depth:,} lines "
              f"({run_path.stat().st_size / 2**20:.0f} MiB); measures {', '.join(MEASURES)}")
        ours_cmd = [sys.executable, "-m", "rdistill", "eval", "--qrels", str(qrels_path), "-m", ",".join(MEASURES),
                    "--json", str(run_path)]
        pytrec_cmd = [sys.executable, __file__, "--child", "pytrec", str(qrels_path), str(run_path)]
        empty_cmd = [sys.executable, "-c", "pass"]
        wall(ours_cmd)  # warm the numba cache and the page cache once
        times: dict[str, list[float]] = {"rdistill eval": [], "pytrec_eval script": [], "empty interpreter": []}
        for _ in range(args.repeat):  # interleaved, so that load on the machine hits both alike
            times["rdistill eval"].append(wall(ours_cmd))
            times["pytrec_eval script"].append(wall(pytrec_cmd))
            times["empty interpreter"].append(wall(empty_cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        for name, values in times.items():
            print(f"{name:>20}: median {med[name]:.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
        print(f"ratio rdistill eval / pytrec_eval: {med['rdistill eval'] / med['pytrec_eval script']:.2f}x "
              "(whole processes, parsing included)")

        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            cold = wall(ours_cmd, {"NUMBA_CACHE_DIR": cache})
        print(f"cold numba cache (first run on a machine): {cold:.2f} s, {cold - med['rdistill eval']:+.2f} s over warm")

        ours = child("breakdown", str(qrels_path), str(run_path))
        print("rdistill, stage by stage (one process):")
        for stage, seconds in ours["times"].items():
            print(f"  {stage:>36}: {seconds:.2f} s")

        theirs = child("pytrec", str(qrels_path), str(run_path))["per_query"]
        for measure, trec in MEASURES.items():
            mine = ours["per_query"][measure]
            assert set(mine) == set(theirs)
            worst = max(abs(mine[q] - theirs[q][trec]) for q in mine)
            printed = sum(f"{mine[q]:.4f}" != f"{theirs[q][trec]:.4f}" for q in mine)
            mean = sum(theirs[q][trec] for q in theirs) / len(theirs)
            print(f"{measure:>12}: mean {ours['mean'][measure]:.4f} (pytrec_eval {mean:.4f}), largest per-query "
                  f"difference {worst:.1e}, queries differing at 4 decimals: {printed}")


if __name__ == "__main__":
    main()
