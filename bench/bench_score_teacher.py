"""Pairs per second of score-teacher's scoring path against a plain Hugging Face loop, in one run.

Both score the same (query, document) pairs of a BM25 run (scifact by default, --data) with the same cross-encoder (the
all-MiniLM-L6-v2 encoder under a sequence-classification head, randomly initialised with a fixed seed, saved to a
temporary folder) at the same batch size and the same 30 / 200-token cuts:

- rdistill: ``rdistill.teacher`` as ``score-teacher`` runs it: the run read query by query into chunks, documents
  fetched from the on-disk DocStore, pairs sorted by length so each batch pads to its own longest pair,
  torch.inference_mode.
- baseline: the plain loop: pairs in input order, every batch padded to its longest pair, torch.no_grad; texts
  already in memory (so the baseline pays no document lookups).

The two loops alternate over --rounds; each round's ratio and the median are printed, plus the largest score
difference (must be below 1e-4).

    .venv/bin/python bench/bench_score_teacher.py --run bm25.test.trec --queries 10 --batch-size 32
    .venv/bin/python bench/bench_score_teacher.py --data cranfield --run cranfield.bm25.trec --queries 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def make_cross_encoder(folder: Path, seed: int) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rdistill.models import resolve_model

    base = resolve_model("all-MiniLM-L6-v2")
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a TREC run on scifact (e.g. rdistill retrieve ... --k 100)")
    ap.add_argument("--data", default="scifact", help="the collection under ../shared/data the run is on")
    ap.add_argument("--queries", type=int, default=10, help="first N queries of the run")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np
    import torch

    from rdistill.data import load_queries
    from rdistill.docstore import DocStore
    from rdistill.io import iter_run_queries
    from rdistill.models import cross_encoder_scores, cut_texts, load_tokenizer
    from rdistill.teacher import CrossTeacher, TeacherSettings, chunks, score_chunk

    with tempfile.TemporaryDirectory() as scratch:
        run = Path(scratch) / "run.trec"
        with open(run, "w") as out:
            for n, (qid, docs) in enumerate(iter_run_queries(args.run)):
                if n >= args.queries:
                    break
                out.writelines(f"{qid} Q0 {d} {r} {s!r} x\n" for r, (d, s) in enumerate(docs.items(), 1))
        model_dir = make_cross_encoder(Path(scratch) / "cross", args.seed)
        data = SHARED / args.data
        queries = load_queries(str(data))
        store = DocStore(str(data))
        pairs = [(qid, d) for qid, docs in iter_run_queries(run) for d in docs]
        q_texts = [queries[q] for q, _ in pairs]
        d_texts = [store.text(d) for _, d in pairs]
        settings = TeacherSettings(model=str(model_dir), kind="cross", batch_size=args.batch_size, device="cpu")
        teacher = CrossTeacher(settings)

        def ours() -> dict[tuple[str, str], float]:
            got: dict[tuple[str, str], float] = {}
            for chunk in chunks(run, (0, 1), None, settings.chunk_pairs):
                for line in score_chunk(teacher, chunk, queries, store, "t").splitlines():
                    qid, _, doc, _, score, _ = line.split()
                    got[qid, doc] = float(score)
            return got

        tok = load_tokenizer(str(model_dir))
        hf = teacher.model.model  # the same weights, called directly

        def baseline() -> dict[tuple[str, str], float]:
            scores = np.empty(len(pairs))
            with torch.no_grad():
                for start in range(0, len(pairs), args.batch_size):
                    q = cut_texts(tok, q_texts[start:start + args.batch_size], 30)
                    d = cut_texts(tok, d_texts[start:start + args.batch_size], 200)
                    batch = tok(q, d, padding="longest", return_tensors="pt")
                    scores[start:start + len(q)] = cross_encoder_scores(hf(**batch).logits).double().numpy()
            return dict(zip(pairs, scores.tolist(), strict=True))

        ratios = []
        print(f"{len(pairs)} pairs ({args.queries} queries of {args.run}), batch {args.batch_size}, "
              f"{torch.get_num_threads()} threads", file=sys.stderr)
        for r in range(args.rounds):
            t0 = time.perf_counter()
            b = baseline()
            t1 = time.perf_counter()
            o = ours()
            t2 = time.perf_counter()
            diff = max(abs(o[p] - b[p]) for p in pairs)
            base_rate, our_rate = len(pairs) / (t1 - t0), len(pairs) / (t2 - t1)
            ratios.append(our_rate / base_rate)
            print(f"round {r + 1}: baseline {base_rate:.1f} pairs/s  score-teacher {our_rate:.1f} pairs/s  "
                  f"ratio {ratios[-1]:.2f}x  max |score diff| {diff:.2e}")
            assert diff < 1e-4, diff
        print(f"median ratio score-teacher / plain HF loop: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
