"""The cross-encoder study on one GPU: many `rdistill train` + `rdistill score-teacher` jobs at once, to a deadline.

`make grid SCALE=paper` is the way to run the study on a GPU machine that has rdistill installed. This script is
for a machine that has only a GPU, PyTorch and transformers (a lent accelerator with no package index): everything
upstream of training (BM25, the teacher's scores, the groups) is made on the CPU beforehand and travels as a
bundle; here the students are trained and re-rank BM25's top 100 on every test collection, through the real CLI
(`python -m rdistill ...`), several jobs at a time since one small student leaves most of a GPU idle.

Bundle layout (relative paths; what `bench/experiments/gpu_bundle.sh` writes):
    model/                    the initial checkpoint (any dtype: students load in fp32)
    data/COLLECTION/          BEIR folders (corpus, queries, qrels) for scifact and the out-of-domain collections
    groups/SOURCE.jsonl       training groups, with the teacher's scores
    bm25/COLLECTION.trec      BM25's top 100 on each collection's test queries

Jobs run in priority order (the untrained student, then loss by loss over the sampling sources, then the entropy
cuts), so a deadline cuts whole students off the end. A job that fails stops everything (the failure is most likely
systematic, and the lease is short); a job still running at the deadline is killed and left out. Writes
OUT/results.tar.gz, laid out as `make grid` lays out its folder so that `rdistill report --runs runs --baselines
baselines` reads it unpacked (runs/COLLECTION/STUDENT.sSEED.trec, baselines/COLLECTION/student-init.trec,
students/STUDENT.sSEED/rdistill_train.json, jobs.tsv, logs/), and prints one line per job: its wall time split into
training and scoring.

    python3 bench/experiments/gpu_study.py --bundle .gpu/bundle --out $OUT --steps 400 --workers 6 --deadline 480
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ["random", "bm25", "teacher", "ensemble", "ensemble-nofilter"]
LOSSES = ["marginmse", "lce", "kl", "ranknet"]
# bm25~inner keeps every query at G = 8 (its groups file is bm25.jsonl byte for byte) and bm25~outer none.
CUTS = ["below-median", "above-median", "below-q3", "above-q1"]
CUT_LOSSES = ["marginmse", "lce"]


@dataclass
class Job:
    name: str
    groups: str
    train_args: list[str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    phase: str = "pending"
    started: float = 0.0
    trained: float = 0.0


def plan(bundle: Path, only: list[str] | None) -> list[Job]:
    jobs = [Job("init", "bm25", ["--loss", "lce", "--lr", "0", "--max-steps", "1"])]
    jobs += [Job(f"{s}.{loss}", s, ["--loss", loss]) for loss in LOSSES for s in SOURCES]
    jobs += [Job(f"bm25~{c}.{loss}", f"bm25~{c}", ["--loss", loss]) for loss in CUT_LOSSES for c in CUTS]
    jobs = [j for j in jobs if (bundle / "groups" / f"{j.groups}.jsonl").exists()]
    return [j for j in jobs if j.name in only] if only else jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_study"), help="students' weights (not returned)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", default="2e-5")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--deadline", type=float, default=480, help="seconds: no job starts that would end later")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--dtype", default="bf16", help="scoring dtype")
    parser.add_argument("--collections", nargs="+", default=["scifact", "cranfield", "vaswani"])
    parser.add_argument("--only", nargs="*", help="job names to run (default: all)")
    args = parser.parse_args()

    t0 = time.monotonic()
    bundle, work = args.bundle.resolve(), args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="2", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    rd = [sys.executable, "-m", "rdistill"]
    common = ["--student", "cross", "--model", str(bundle / "model"), "--init-layers", "6", "--teacher-scale", "20",
              "--group-size", "8", "--batch-size", "8", "--grad-accum", "2", "--lr", args.lr,
              "--max-steps", str(args.steps), "--max-doc-length", "200", "--seed", str(args.seed),
              "--device", args.device]
    if args.amp != "none":
        common += ["--amp", args.amp]
    scifact = str(bundle / "data" / "scifact")

    def run_path(job: Job, collection: str) -> Path:
        """Where `make grid` keeps this run: the untrained student is a baseline, the others students."""
        if job.name == "init":
            return work / "baselines" / collection / "student-init.trec"
        return work / "runs" / collection / f"{job.name}.s{args.seed}.trec"

    def start_train(job: Job) -> None:
        out = work / "students" / job.name
        extra = common + job.train_args  # later options win: init's --lr 0 --max-steps 1
        with open(bundle / "groups" / f"{job.groups}.jsonl", "rb") as stdin, \
                open(work / "logs" / f"{job.name}.train.log", "wb") as log:
            job.procs = [subprocess.Popen([*rd, "train", *extra, "--queries", scifact, "--corpus", scifact,
                                           "--out", str(out)], stdin=stdin, stdout=log, stderr=log, env=env)]
        job.phase, job.started = "train", time.monotonic()

    def start_score(job: Job) -> None:
        job.procs = []
        for c in args.collections:
            run_path(job, c).parent.mkdir(parents=True, exist_ok=True)
            data = str(bundle / "data" / c)
            with open(bundle / "bm25" / f"{c}.trec", "rb") as stdin, \
                    open(run_path(job, c).with_suffix(".trec.tmp"), "wb") as stdout, \
                    open(work / "logs" / f"{job.name}.{c}.log", "wb") as log:
                job.procs.append(subprocess.Popen(
                    [*rd, "score-teacher", "--model", str(work / "students" / job.name), "--max-doc-length", "200",
                     "--queries", data, "--corpus", data, "--device", args.device, "--dtype", args.dtype,
                     "--batch-size", "256"], stdin=stdin, stdout=stdout, stderr=log, env=env))
        job.phase, job.trained = "score", time.monotonic()

    pending = plan(bundle, args.only)
    print(f"{len(pending)} jobs, {args.workers} at a time, {args.steps} steps, deadline {args.deadline:.0f} s",
          flush=True)
    running: list[Job] = []
    done: list[tuple[Job, float]] = []
    failed: Job | None = None
    while (pending or running) and failed is None:
        now = time.monotonic() - t0
        mean = sum(t for _, t in done) / len(done) if done else 0.0
        while pending and len(running) < args.workers and now + 1.1 * mean < args.deadline:
            job = pending.pop(0)
            start_train(job)
            running.append(job)
        if not running:
            break
        if now > args.deadline:
            break
        time.sleep(0.5)
        for job in list(running):
            codes = [p.poll() for p in job.procs]
            if any(c not in (None, 0) for c in codes):
                failed = job
                break
            if any(c is None for c in codes):
                continue
            if job.phase == "train":
                start_score(job)
                continue
            for c in args.collections:
                run_path(job, c).with_suffix(".trec.tmp").replace(run_path(job, c))
            end = time.monotonic()
            done.append((job, end - job.started))
            running.remove(job)
            print(f"{job.name:32s} train {job.trained - job.started:6.1f} s  score {end - job.trained:6.1f} s  "
                  f"(at {end - t0:5.0f} s)", flush=True)
    for job in running:
        for p in job.procs:
            p.kill()
    if failed is not None:
        print(f"FAILED: {failed.name} ({failed.phase}); its log:", flush=True)
        for log in sorted((work / "logs").glob(f"{failed.name}.*")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}", flush=True)
    for job in running:
        if job is not failed:
            print(f"{job.name}: cut off by the deadline ({job.phase})", flush=True)
    for job in pending:
        print(f"{job.name}: not started (deadline)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(work / "jobs.tsv", "w") as f:
        f.write("student\ttrain_s\tscore_s\n")
        for job, total in done:
            f.write(f"{job.name}\t{job.trained - job.started:.1f}\t{job.started + total - job.trained:.1f}\n")
    with tarfile.open(args.out / "results.tar.gz", "w:gz") as tar:
        tar.add(work / "jobs.tsv", "jobs.tsv")
        for job, _ in done:
            student = "init" if job.name == "init" else f"{job.name}.s{args.seed}"  # as `make grid` names them
            tar.add(work / "students" / job.name / "rdistill_train.json", f"students/{student}/rdistill_train.json")
            for c in args.collections:
                tar.add(run_path(job, c), str(run_path(job, c).relative_to(work)))
        tar.add(work / "logs", "logs")
    print(f"{len(done)} students done in {time.monotonic() - t0:.0f} s; results in {args.out / 'results.tar.gz'}",
          flush=True)
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
