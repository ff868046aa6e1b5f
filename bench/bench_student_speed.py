"""The reason to distil, measured: a cross student's re-ranking throughput against its teacher's, same CPU, one run.

Both re-rank the same (query, document) pairs of scifact (../shared/data/scifact, test queries, each with its judged
documents and random others up to --depth, seeded) through rdistill's own scoring path (models.CrossEncoder.score:
30 / 200-token cuts, length-sorted batches, inference mode), fp32 PyTorch, the same batch size and threads. The two
alternate over --rounds so the machine's load falls on both; per round docs/s and the ratio, then the medians.

- teacher: --teacher (default ms-marco-MiniLM-L-12-v2, the packaged int8 ONNX rebuilt as its fp32 checkpoint);
- student: --student, a folder from ``rdistill train --student cross``; without one, the teacher's first
  --layers layers under its own head (throughput depends on the shape, not the weights: no nDCG from that one).

With --card FOLDER (the student's folder) the figures go into its model card.

    .venv/bin/python bench/bench_student_speed.py --student students/cross --queries 20 --depth 20 --rounds 3
    .venv/bin/python bench/bench_student_speed.py --layers 2 --queries 10
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"))
    parser.add_argument("--teacher", default="ms-marco-MiniLM-L-12-v2")
    parser.add_argument("--student")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card")
    args = parser.parse_args()

    import torch

    from rdistill.data import load_qrels, load_queries
    from rdistill.docstore import DocStore
    from rdistill.models import CrossEncoder, torch_checkpoint

    queries, qrels, store = load_queries(args.data, "test"), load_qrels(args.data, "test"), DocStore(args.data)
    ids = [store.id_at(i) for i in range(len(store))]
    rng = random.Random(args.seed)
    qs, ds = [], []
    for qid in sorted(q for q in qrels if q in queries)[:args.queries]:
        docs = [d for d in qrels[qid] if d in store][:args.depth]
        docs += rng.sample(ids, args.depth - len(docs))
        qs += [queries[qid]] * len(docs)
        ds += [store.text(d) for d in docs]
    teacher_path = torch_checkpoint(args.teacher)
    with tempfile.TemporaryDirectory() as scratch:
        student_path = args.student
        if student_path is None:
            from rdistill.training.students import CrossStudent

            student_path = str(Path(scratch) / "student")
            CrossStudent(teacher_path, init_layers=args.layers).save(Path(student_path))
        models = {"teacher": CrossEncoder(teacher_path, device="cpu"),
                  "student": CrossEncoder(student_path, device="cpu")}
        layers = {k: m.model.config.num_hidden_layers for k, m in models.items()}
        print(f"{len(qs)} pairs ({args.queries} scifact test queries x {args.depth}), batch {args.batch_size}, "
              f"{torch.get_num_threads()} threads, {cpu_name()}; teacher {args.teacher} ({layers['teacher']} layers), "
              f"student {args.student or 'teacher cut to ' + str(args.layers) + ' layers'} ({layers['student']} "
              "layers); fp32 PyTorch", flush=True)
        rates: dict[str, list[float]] = {"teacher": [], "student": []}
        for r in range(args.rounds):
            order = ["teacher", "student"] if r % 2 == 0 else ["student", "teacher"]
            for name in order:
                start = time.perf_counter()
                models[name].score(qs, ds, batch_size=args.batch_size)
                rates[name].append(len(qs) / (time.perf_counter() - start))
            print(f"round {r + 1}: teacher {rates['teacher'][-1]:.1f} docs/s, student {rates['student'][-1]:.1f} "
                  f"docs/s, student/teacher {rates['student'][-1] / rates['teacher'][-1]:.2f}x", flush=True)
    teacher, student = statistics.median(rates["teacher"]), statistics.median(rates["student"])
    print(f"median: teacher {teacher:.1f} docs/s, student {student:.1f} docs/s, ratio {student / teacher:.2f}x")
    if args.card:
        from rdistill.card import record

        detail = (f"{len(qs)} scifact pairs, batch {args.batch_size}, {torch.get_num_threads()} threads, fp32; "
                  f"{student / teacher:.2f}x the teacher {args.teacher}, median of {args.rounds} rounds")
        for name, value in (("student", student), ("teacher", teacher)):
            record(Path(args.card), {"metric": "docs_per_second", "value": value, "subject": name,
                                     "dataset": "scifact", "split": "test", "device": cpu_name(), "detail": detail})


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
