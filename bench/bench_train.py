"""Training throughput of `rdistill train` against a plain PyTorch loop over the same model and batches.

Both train the same student (a cross-encoder from --model cut to --init-layers) with MarginMSE on the same groups,
in the same order, with the same tokenisation (rdistill.models.encode_pairs) and AdamW; the plain loop has the texts
in memory already and does nothing else (no document store, schedule, clipping, accounting or progress bar). The
figure is pairs per second of each and their ratio, measured in one run.

The groups are real: BM25 (rank_bm25) negatives from the top 100 of a BEIR collection's training queries, scored by
the MiniLM bi-encoder as teacher (cosine). `--groups-out FILE` keeps them, e.g. for loss curves:

    .venv/bin/python bench/bench_train.py --data ../shared/data/cranfield --steps 5 --rounds 3
    .venv/bin/python bench/bench_train.py --groups-out /tmp/cran.groups.jsonl --steps 0
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rdistill.data import iter_corpus, load_qrels, load_queries
from rdistill.models import BiEncoder, cross_encoder_scores, encode_pairs, resolve_model
from rdistill.training import TrainConfig, train
from rdistill.training.data import Schedule, read_groups
from rdistill.training.losses import marginmse
from rdistill.training.students import build_student


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def build_groups(data: str, split: str, negatives: int, depth: int, seed: int, out: Path) -> int:
    """One group per judged training query: its best positive, then `negatives` drawn from BM25's top `depth`
    (judged positives excluded), with MiniLM cosine scores as the teacher's."""
    from rank_bm25 import BM25Okapi

    docs = list(iter_corpus(data))
    texts = {d.doc_id: d.full_text for d in docs}
    ids = [d.doc_id for d in docs]
    bm25 = BM25Okapi([tokens(d.full_text) for d in docs])
    queries = load_queries(data, split)
    qrels = load_qrels(data, split)
    teacher = BiEncoder("all-MiniLM-L6-v2")
    doc_emb = dict(zip(ids, teacher.encode([texts[i] for i in ids], batch_size=64), strict=True))
    rng = random.Random(seed)
    count = 0
    with open(out, "w") as fh:
        for qid, text in queries.items():
            judged = qrels.get(qid, {})
            positives = sorted((d for d, r in judged.items() if r > 0 and d in texts), key=lambda d: -judged[d])
            if not positives:
                continue
            top = np.argsort(-bm25.get_scores(tokens(text)))[:depth]
            pool = [ids[i] for i in top if judged.get(ids[i], 0) <= 0]
            group = [positives[0], *rng.sample(pool, min(negatives, len(pool)))]
            q = teacher.encode([text])[0]
            scores = [float(np.dot(q, doc_emb[d])) for d in group]
            fh.write(json.dumps({"query_id": qid, "doc_ids": group, "labels": [1] + [0] * (len(group) - 1),
                                 "scores": scores, "meta": {"strategy": "bm25", "depth": depth, "seed": seed,
                                                            "teacher": "all-MiniLM-L6-v2 cosine"}}) + "\n")
            count += 1
    return count


def plain_loop(model_path: str, groups_path: Path, data: str, args: argparse.Namespace) -> float:
    """The baseline: the same student, batches and loss in the shortest loop PyTorch allows. Returns pairs/s."""
    groups, _ = read_groups(groups_path, args.group_size, args.seed)
    queries = load_queries(data)
    texts = {d.doc_id: d.full_text for d in iter_corpus(data)}
    torch.manual_seed(args.seed)
    student = build_student("cross", model_path, args.init_layers, 30, 200)
    model, tokenizer = student.model, student.tokenizer
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    schedule = Schedule(len(groups), args.batch_size, 1, args.seed, args.steps * args.batch_size)
    batches = [[groups[i] for i in schedule.step(s)[0]] for s in range(args.steps)]
    pairs = 0
    start = time.perf_counter()
    for batch in batches:
        qs = [queries[g.query_id] for g in batch for _ in g.doc_ids]
        ds = [texts[d] for g in batch for d in g.doc_ids]
        enc = encode_pairs(tokenizer, qs, ds, 30, 200)
        s = cross_encoder_scores(model(**enc).logits).view(len(batch), -1)
        t = torch.tensor([g.scores for g in batch])
        loss = marginmse(s, t).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        pairs += len(ds)
    return pairs / (time.perf_counter() - start)


def ours(model_path: str, groups_path: Path, data: str, args: argparse.Namespace, out: Path) -> float:
    """`rdistill train` itself (the library call behind the command); its own pairs/s over the training loop."""
    result = train(TrainConfig(model=model_path, queries=data, corpus=data, out=str(out), groups=str(groups_path),
                               student="cross", loss="marginmse", group_size=args.group_size,
                               batch_size=args.batch_size, grad_accum=1, max_steps=args.steps,
                               init_layers=args.init_layers, seed=args.seed, device="cpu"))
    return result.pairs_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/cranfield"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--init-layers", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", help="use these groups instead of building them")
    parser.add_argument("--groups-out", help="keep the built groups here")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_train."))
    groups = Path(args.groups) if args.groups else Path(args.groups_out or tmp / "groups.jsonl")
    if not args.groups:
        t0 = time.perf_counter()
        n = build_groups(args.data, args.split, 15, 100, args.seed, groups)
        print(f"groups: {n} from {args.data} ({args.split}) in {time.perf_counter() - t0:.1f}s -> {groups}",
              file=sys.stderr)
    if args.steps == 0:
        return
    model = resolve_model(args.model)
    # The machine is shared, so load from others comes and goes: alternate the two in rounds (the order flipped
    # each round) and report each round and the median ratio.
    ratios, rates = [], []
    for r in range(args.rounds):
        first_plain = r % 2 == 0
        if first_plain:
            baseline = plain_loop(model, groups, args.data, args)
        ours_rate = ours(model, groups, args.data, args, tmp / f"student{r}")
        if not first_plain:
            baseline = plain_loop(model, groups, args.data, args)
        rates.append((baseline, ours_rate))
        ratios.append(ours_rate / baseline)
    print(f"model {args.model} --init-layers {args.init_layers}, group size {args.group_size}, batch "
          f"{args.batch_size} queries, {args.steps} steps a run, {torch.get_num_threads()} threads, CPU")
    for r, (baseline, ours_rate) in enumerate(rates):
        print(f"round {r + 1}: plain PyTorch loop {baseline:.1f} pairs/s, rdistill train {ours_rate:.1f} pairs/s, "
              f"ratio {ours_rate / baseline:.3f}")
    print(f"median ratio (rdistill / plain): {float(np.median(ratios)):.3f}; rdistill train median "
          f"{float(np.median([o for _, o in rates])):.1f} pairs/s = "
          f"{float(np.median([o for _, o in rates])) / (args.group_size * args.batch_size):.3f} steps/s at "
          "--grad-accum 1")


if __name__ == "__main__":
    main()
