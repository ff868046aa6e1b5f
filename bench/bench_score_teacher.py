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

With --int8 it measures int8 inference instead, on a real model (--model; an ONNX folder such as the packaged
ms-marco-MiniLM-L-12-v2 is first rebuilt as a PyTorch fp32 checkpoint): three teachers score the same pairs through
score-teacher's own path (rdistill.teacher, bi-encoders with --doc-embeddings run so every pair pays for its
document), interleaved in a rotating order over --rounds so the machine's load falls on all alike:

- fp32: the PyTorch model (the baseline);
- int8 onnxruntime: ``--dtype int8``, the model exported to ONNX and dynamically quantised (what rdistill ships);
- int8 torch: torch.ao's dynamic quantisation of the same model's linear layers (the alternative engine);
- bf16: ``--dtype bf16``, on the CPU the fp32 model under bf16 autocast with its head in fp32.

Per round: pairs/s and the ratio to fp32 in that round; then the median ratios, the per-query Kendall tau of each
int8 ranking against fp32 (mean and minimum) and nDCG@10 of each on the queries (with --qrels).

    .venv/bin/python bench/bench_score_teacher.py --int8 --model all-MiniLM-L6-v2 --run bm25.test.trec \\
        --queries 10 --rounds 3
    .venv/bin/python bench/bench_score_teacher.py --int8 --model ms-marco-MiniLM-L-12-v2 --run bm25.test.trec \\
        --queries 5 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
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
    ap.add_argument("--qrels", default=None, metavar="SPLIT", help="--int8: nDCG@10 against this split's qrels")
    ap.add_argument("--fused", action="store_true", help="--int8: compare the variants fused with the run's own "
                    "scores (min-max, weights 1,1), the study's BM25 + model teacher")
    ap.add_argument("--int8", action="store_true", help="measure int8 against fp32 on --model instead")
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="--int8: the real model")
    args = ap.parse_args()
    if args.int8:
        int8_main(args)
        return

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


def first_queries(run: str, n: int, folder: Path) -> Path:
    from rdistill.io import iter_run_queries

    out_path = folder / "run.trec"
    with open(out_path, "w") as out:
        for i, (qid, docs) in enumerate(iter_run_queries(run)):
            if i >= n:
                break
            out.writelines(f"{qid} Q0 {d} {r} {s!r} x\n" for r, (d, s) in enumerate(docs.items(), 1))
    return out_path


def int8_main(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from scipy.stats import kendalltau

    from rdistill.data import load_qrels, load_queries
    from rdistill.docstore import DocStore
    from rdistill.evaluation import evaluate
    from rdistill.io import read_run
    from rdistill.models import detect_kind, torch_checkpoint
    from rdistill.teacher import TeacherSettings, chunks, load_teacher, score_chunk

    data = str(SHARED / args.data)
    model = torch_checkpoint(args.model)  # fp32 PyTorch weights, whatever form the model ships in
    kind = detect_kind(model)
    queries = load_queries(data)
    store = DocStore(data)
    with tempfile.TemporaryDirectory() as scratch:
        run = first_queries(args.run, args.queries, Path(scratch))

        def teacher(dtype: str) -> object:
            return load_teacher(TeacherSettings(model=model, kind=kind, batch_size=args.batch_size, device="cpu",
                                                dtype=dtype, doc_embeddings="run"), data)

        fp32, ort8, torch8 = teacher("fp32"), teacher("int8"), teacher("fp32")
        inner = torch8.model if kind == "cross" else torch8.encoder  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice (it still works in torch 2.13)
            inner.model = torch.ao.quantization.quantize_dynamic(inner.model, {torch.nn.Linear}, dtype=torch.qint8)
        variants = {"fp32": fp32, "int8 onnxruntime": ort8, "int8 torch": torch8, "bf16": teacher("bf16")}
        n_pairs = sum(len(pool) for chunk in chunks(run, (0, 1), None, 4096) for _, pool in chunk)
        print(f"{args.model} ({kind}), {n_pairs} pairs ({args.queries} queries of {args.run}), batch "
              f"{args.batch_size}, {torch.get_num_threads()} threads, {args.rounds} rounds in rotating order",
              file=sys.stderr)

        def score(t: object) -> dict[str, dict[str, float]]:
            got: dict[str, dict[str, float]] = {}
            for chunk in chunks(run, (0, 1), None, 4096):
                for line in score_chunk(t, chunk, queries, store, "t").splitlines():  # type: ignore[arg-type]
                    qid, _, doc, _, value, _ = line.split()
                    got.setdefault(qid, {})[doc] = float(value)
            return got

        # Wall time and this process's CPU time (one thread: onnxruntime and torch both compute on the calling
        # thread): on a shared machine the CPU time is the steadier measure of what a dedicated core would do.
        rates: dict[str, list[float]] = {name: [] for name in variants}
        cpu_rates: dict[str, list[float]] = {name: [] for name in variants}
        results: dict[str, dict[str, dict[str, float]]] = {}
        names = list(variants)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            took, cpu = {}, {}
            for name in order:
                t0, c0 = time.perf_counter(), time.process_time()
                results[name] = score(variants[name])
                took[name], cpu[name] = time.perf_counter() - t0, time.process_time() - c0
                rates[name].append(n_pairs / took[name])
                cpu_rates[name].append(n_pairs / cpu[name])
            print(f"round {r + 1}: " + "  ".join(
                f"{name} {n_pairs / took[name]:.1f} pairs/s wall ({took['fp32'] / took[name]:.2f}x), "
                f"{n_pairs / cpu[name]:.1f} per CPU-s ({cpu['fp32'] / cpu[name]:.2f}x);" for name in names),
                flush=True)
        for label, table in (("wall", rates), ("CPU", cpu_rates)):
            print(f"median ratio to fp32 per round, {label} time: " + ", ".join(
                f"{name} {statistics.median(a / b for a, b in zip(table[name], table['fp32'], strict=True)):.2f}x"
                for name in names[1:]))
        if args.fused:
            # The study's teacher: each variant's scores and the run's own (BM25's) per-query min-max normalised
            # and summed, as `rdistill fuse --weights 1,1` does; int8's error then moves half of each score.
            from rdistill.fusion import FuseConfig, FuseStats, fuse_query

            first_stage = read_run(run)
            config = FuseConfig()  # wsum of min-max scores; the weights are fuse_query's argument
            results = {name: {qid: fuse_query([first_stage[qid], docs], config, [1.0, 1.0], ["run", name], qid,
                                              FuseStats()) for qid, docs in res.items()}
                       for name, res in results.items()}
            print("below: each variant fused with the run's own scores (min-max, weights 1,1)")
        base = results["fp32"]
        for name in names[1:]:
            taus = []
            for qid, docs in base.items():
                keys = sorted(docs)
                taus.append(kendalltau([docs[k] for k in keys], [results[name][qid][k] for k in keys]).statistic)
            diff = max(abs(results[name][q][d] - base[q][d]) for q in base for d in base[q])
            print(f"{name}: per-query Kendall tau vs fp32 mean {np.mean(taus):.4f} min {np.min(taus):.4f}; "
                  f"largest |score diff| {diff:.3g}")
        if args.qrels:
            qrels = load_qrels(data, args.qrels)
            bm25 = read_run(run)
            ev = {name: evaluate(qrels, res, "ndcg@10").mean["ndcg@10"] for name, res in
                  [("bm25", bm25), *results.items()]}
            print("nDCG@10 on these queries: " + ", ".join(f"{k} {v:.4f}" for k, v in ev.items()) +
                  "; " + ", ".join(f"{k} - fp32 {ev[k] - ev['fp32']:+.4f}" for k in names[1:]))


if __name__ == "__main__":
    main()
