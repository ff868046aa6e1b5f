"""`rdistill sample` throughput (groups/s) and peak memory on synthetic runs of 250k and 1M lines.

Each measurement runs the real CLI in a child process and reads the child's own peak RSS (os.wait4). The runs
have 20 documents per query, so 1M lines = 50k queries, four times the queries of 250k lines. The baseline is
loading the same 1M-line run whole with rdistill.io.read_run (what a sampler that is not streamed would hold).
Rows:
  window: `sample --strategy window --window 1:20 -G 8` over the run on stdin, its own scores attached;
  window + --scores (same order): the teacher's scores from a second file listing queries in the same order
    (read in lockstep);
  window + --scores (reversed): the scores file lists queries in the opposite order, the worst case, where the
    scores of queries not reached yet are held (the documented trade-off);
with --sort-buffer 4 (MB of output held before sorted chunks spill to disk) and the default 64. The floor is a
process that imports the same modules and loads the qrels, which every strategy needs: "above floor" is what
sampling itself costs, and it should not grow with the number of queries.

    python bench/bench_sample.py [--work /tmp/bench-sample]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

DOCS_PER_QUERY = 20


def make(work: Path, lines: int) -> dict[str, Path]:
    queries = lines // DOCS_PER_QUERY
    paths = {k: work / f"{k}.{lines}" for k in ("run", "scores", "reversed", "qrels")}
    if all(p.exists() for p in paths.values()):
        return paths
    rng = random.Random(lines)
    blocks, teacher, qrels = [], [], []
    for q in range(queries):
        qid = f"q{q:07d}"
        docs = rng.sample(range(5_000_000), DOCS_PER_QUERY)
        blocks.append("".join(f"{qid} Q0 d{d} {r} {100.0 - r * 0.5!r} bm25\n" for r, d in enumerate(docs, 1)))
        teacher.append("".join(f"{qid} Q0 d{d} {r} {-r * 0.25!r} teacher\n" for r, d in enumerate(docs, 1)))
        qrels.append(f"{qid} 0 d{docs[4]} 1\n")
    paths["run"].write_text("".join(blocks))
    paths["scores"].write_text("".join(teacher))
    paths["reversed"].write_text("".join(reversed(teacher)))
    paths["qrels"].write_text("".join(qrels))
    return paths


def measure(args: list[str], stdin: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stderr) of one child process."""
    with open(stdin, "rb") as fin, open(os.devnull, "wb") as fout:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        err = child.stderr.read().decode() if child.stderr else ""
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(args)}\n{err}")
    return seconds, usage.ru_maxrss / 1024, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-sample"))
    parser.add_argument("--sizes", default="250000,1000000")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.generate:
        opts.work.mkdir(parents=True, exist_ok=True)
        for n in (int(s) for s in opts.sizes.split(",")):
            make(opts.work, n)
        return
    opts.work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in opts.sizes.split(",")]
    # Generate in a child process: Linux carries a process's peak RSS across fork and exec, so a parent grown by
    # the generation would mask every child's figure.
    subprocess.run([sys.executable, __file__, "--generate", "--work", str(opts.work), "--sizes", opts.sizes],
                   check=True)
    data = {n: make(opts.work, n) for n in sizes}
    rd = [sys.executable, "-m", "rdistill", "sample", "--strategy", "window", "--window", "1:20", "-G", "8",
          "--seed", "1"]
    big = max(sizes)
    baseline = [sys.executable, "-c", "import sys; from rdistill.io import read_run; read_run(sys.argv[1])",
                str(data[big]["run"])]
    base_s, base_mb, _ = measure(baseline, Path(os.devnull))
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this script's own peak RSS (inherited by children): {own:.0f} MB")
    print(f"baseline: read_run of the whole {big:,}-line run: {base_s:.1f} s, peak RSS {base_mb:.0f} MB\n")
    # What any sampler must hold: the interpreter, rdistill's imports and the qrels (one positive per query).
    floor = {}
    for n in sizes:
        code = ("import sys, rdistill.cli, rdistill.commands.sample, rdistill.sampling; from rdistill.data import "
                "load_qrels; load_qrels(sys.argv[1])")
        _, floor[n], _ = measure([sys.executable, "-c", code, str(data[n]["qrels"])], Path(os.devnull))
        print(f"floor: imports + qrels of {n // DOCS_PER_QUERY:,} queries: peak RSS {floor[n]:.0f} MB")
    print()
    print("| input | lines | queries | sort buffer | groups | seconds | groups/s | peak RSS MB | above floor MB | "
          "RSS vs baseline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for variant, extra in (("window", []), ("window + --scores (same order)", ["--scores", "scores"]),
                           ("window + --scores (reversed order)", ["--scores", "reversed"])):
        for buffer in ("4", "64"):
            for n in sizes:
                if variant.endswith("(reversed order)") and (buffer == "64"):
                    continue
                paths = data[n]
                args = [*rd, "--qrels", str(paths["qrels"]), "--sort-buffer", buffer,
                        *[str(paths[x]) if x in paths else x for x in extra]]
                seconds, mb, err = measure(args, paths["run"])
                groups = int(err.split("sample: ")[1].split(" groups")[0])
                print(f"| {variant} | {n:,} | {n // DOCS_PER_QUERY:,} | {buffer} MB | {groups:,} | {seconds:.1f} | "
                      f"{groups / seconds:,.0f} | {mb:.0f} | {mb - floor[n]:.0f} | {mb / base_mb:.2f} |", flush=True)


if __name__ == "__main__":
    main()
