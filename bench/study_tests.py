"""The paired t-tests docs/study.md quotes for a study folder: sampling sources (each against random, then each against
BM25, per loss), the ensemble's filter (filtered against unfiltered, per loss), entropy cuts (each cut against the
same source and loss trained on all queries), and every uncut student against each baseline run (BM25, the teacher,
the untrained student: the study's baselines/COLLECTION/*.trec), Holm over the students.

`rdistill report` marks equivalence to the best system; the study's questions are differences from a named
reference, so this script runs the same machinery (rdistill.report's discovery and seed averaging per query,
rdistill.stats.compare's paired t-test with Holm's correction within each block) against those references.

    .venv/bin/python bench/study_tests.py --runs out/grid/runs --qrels ../shared/data/scifact:test
    .venv/bin/python bench/study_tests.py --runs out/grid/runs --qrels ../shared/data/cranfield:test
    .venv/bin/python bench/study_tests.py --runs out/gpu-grid/runs --qrels ../shared/data/scifact:test
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from rdistill.data import load_qrels
from rdistill.evaluation import evaluate
from rdistill.io import read_run
from rdistill.report import System, discover, evaluate_systems, load_runs, parse_collection_arg
from rdistill.schema import Qrels
from rdistill.stats import compare


def seed_spread(systems: dict[System, list[Path]], qrels: Qrels) -> None:
    """Each system's mean nDCG@10 seed by seed: how far one seed's figure can be trusted."""
    print("seed spread (mean nDCG@10 of each seed's run; mean, sample sd and range over seeds):")
    for system in sorted(systems, key=lambda s: s.label):
        paths = systems[system]
        values = [evaluate(qrels, run, ["ndcg@10"], name=system.label).mean["ndcg@10"] for run in load_runs(paths)]
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        seeds = " ".join(p.stem.rsplit(".", 1)[-1] for p in paths)
        print(f"  {system.label:36s} [{seeds}] {' '.join(f'{v:.4f}' for v in values)}  mean {np.mean(values):.4f}"
              f"  sd {sd:.4f}  range {max(values) - min(values):.4f}")


def block(title: str, reference: str, others: list[str], values: dict[str, dict[str, float]],
          seeds: dict[str, str]) -> None:
    """Each of ``others`` against ``reference`` (labels of ``values``, per-query nDCG@10), Holm over ``others``."""
    if not others:  # a study still running, or a grid without this block's other rows: nothing to compare
        return
    per_query = {label: {"ndcg@10": values[label]} for label in [reference, *others]}
    result = compare(per_query, ["ndcg@10"], reference)
    print(f"{title}: against {reference} ({seeds[reference]} seeds), mean {result.paired[0].baseline_mean:.4f}")
    for test, label in zip(result.paired, others, strict=True):
        print(f"  {test.run:36s} seeds {seeds[label]}  {test.mean:.4f}  diff {test.mean - test.baseline_mean:+.4f}"
              f"  p {test.p:.2g}  Holm {test.p_adjusted:.2g}  (n = {test.n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True, help="a study's runs folder (COLLECTION/STUDENT.sSEED.trec)")
    parser.add_argument("--qrels", required=True, help="in-domain qrels as SPEC[:SPLIT], e.g. ../d/scifact:test")
    parser.add_argument("--collection", help="folder name under --runs (default: the qrels folder's name)")
    parser.add_argument("--baselines", type=Path,
                        help="the study's baselines folder (COLLECTION/NAME.trec; default: beside --runs)")
    args = parser.parse_args()

    _, spec, split = parse_collection_arg(f"x={args.qrels}")
    collection = args.collection or Path(spec).name
    systems = discover(args.runs, collection)
    qrels = load_qrels(spec, split)
    seed_spread(systems, qrels)
    values = {s.label: v for s, v in evaluate_systems(systems, qrels, "ndcg@10").items()}
    seeds = {s.label: str(len(paths)) for s, paths in systems.items()}

    by_loss: dict[str, list[System]] = defaultdict(list)
    for system in sorted(systems, key=lambda s: s.label):
        by_loss[system.loss].append(system)
    uncut_all: list[str] = []
    for loss, members in sorted(by_loss.items()):
        uncut = {s.source: s.label for s in members if s.cut is None}
        uncut_all += uncut.values()
        # Local sources against random (does locality matter?), then against BM25 (does more than BM25 help?).
        for name in ("random", "bm25"):
            if name in uncut:
                block(f"sources, {loss}", uncut[name], [label for source, label in uncut.items() if source != name],
                      values, seeds)
        # The ensemble's false-negative filter: the same candidates with and without it.
        if "ensemble" in uncut and "ensemble-nofilter" in uncut:
            block(f"ensemble filter, {loss}", uncut["ensemble-nofilter"], [uncut["ensemble"]], values, seeds)
        for source, reference in sorted(uncut.items()):
            # bm25~inner keeps every query (its groups equal the uncut source's), so it is no cut to test.
            cuts = [s.label for s in members if s.source == source and s.cut not in (None, "inner")]
            if cuts:
                block(f"entropy cuts, {source} {loss}", reference, cuts, values, seeds)

    # Every uncut student against each baseline run, Holm over the students: does distillation beat the first
    # stage, the untrained student, the teacher?
    baselines = args.baselines or args.runs.parent / "baselines"
    for path in sorted((baselines / collection).glob("*.trec")):
        run = read_run(path)
        values[f"(baseline) {path.stem}"] = evaluate(qrels, run, ["ndcg@10"], name=path.stem).per_query["ndcg@10"]
        seeds[f"(baseline) {path.stem}"] = "-"
        block("students vs baseline", f"(baseline) {path.stem}", sorted(uncut_all), values, seeds)

if __name__ == "__main__":
    main()
