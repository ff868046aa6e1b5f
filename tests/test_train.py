"""`rdistill train` through the real CLI on groups built from real files (sample_data, cranfield) with tiny random
models: the contract invocation, students that the inference code loads, seeds, exact resume, the 2-process gloo
run matching the single process, and located errors."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rdistill.io import read_qrels, read_run
from rdistill.training.data import Schedule, read_groups
from tests.conftest import DATA, ROOT, SAMPLE, run_from_text

CRAN = DATA / "cranfield"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from a second thread, and on the shared 2-core machine one thread is several times
    faster when others are busy; restored afterwards for the rest of the suite."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sample_groups() -> str:
    """Groups from sample_data: each run query's best judged document first, the run's other documents as
    negatives, BM25's scores standing in for a teacher's."""
    qrels, run = read_qrels(SAMPLE / "qrels.txt"), read_run(SAMPLE / "run.trec")
    lines = []
    for qid, docs in run.items():
        positive = max(qrels[qid], key=lambda d: qrels[qid][d])
        ids = [positive, *(d for d in docs if d != positive)]
        lines.append(json.dumps({"query_id": qid, "doc_ids": ids, "labels": [1] + [0] * (len(ids) - 1),
                                 "scores": [docs[d] for d in ids], "meta": {}}))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def cran_groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 cranfield training queries, each with its positive and 7 random negatives; teacher scores that rank the
    positive first (a fixed, made-up teacher: the mechanics are under test here, not the teacher)."""
    qrels = read_qrels(CRAN / "qrels" / "train.tsv")
    with open(CRAN / "corpus.jsonl") as fh:
        corpus = [json.loads(line)["_id"] for line in fh]
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("groups") / "cran.jsonl"
    with open(path, "w") as out:
        for qid in list(qrels)[:24]:
            positives = [d for d, rel in qrels[qid].items() if rel > 0]
            negatives = rng.sample([d for d in corpus if d not in qrels[qid]], 7)
            out.write(json.dumps({"query_id": qid, "doc_ids": [positives[0], *negatives], "labels": [1] + [0] * 7,
                                  "scores": [2.0, *(rng.uniform(-3, 1) for _ in negatives)], "meta": {}}) + "\n")
    return path


@pytest.fixture(scope="module")
def no_dropout(tmp_path_factory: pytest.TempPathFactory, tiny_cross: Path) -> Path:
    """tiny_cross without dropout: separate processes draw different dropout masks, so only a dropout-free model
    can show that data-parallel training computes the single-process update."""
    folder = tmp_path_factory.mktemp("nodrop") / "model"
    shutil.copytree(tiny_cross, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def max_diff(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def cran_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--model", model, "--queries", CRAN, "--corpus", CRAN, "--group-size", "4", "--batch-size", "4",
            "--seed", "3", "--out", out, *extra]


def commands() -> set[str]:
    import typer

    from rdistill.cli import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_contract_cross_student_loads_for_reranking(cli, tmp_path: Path, tiny_cross: Path) -> None:
    out = tmp_path / "student"
    result = cli("train", "--student", "cross", "--model", tiny_cross, "--init-layers", "1", "--loss", "marginmse",
                 "--queries", SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl", "--max-steps", "3",
                 "--seed", "1", "--out", out, input=sample_groups())
    assert result.exit_code == 0, result
    assert result.stdout == ""
    meta = json.loads((out / "rdistill_train.json").read_text())
    assert meta["steps"] == 3 and len(meta["losses"]) == 3 and meta["seed"] == 1
    assert meta["arguments"]["loss"] == "marginmse" and len(meta["groups_sha256"]) == 64
    assert "torch" in meta["versions"] and meta["final_loss"] == meta["losses"][-1]
    assert not (out / "checkpoint").exists()
    from rdistill.models import CrossEncoder, detect_kind

    assert detect_kind(str(out)) == "cross"
    model = CrossEncoder(str(out))
    # Saved with the field's single logit (issue 31): logit1 - logit0 of the trained 2-label head, whose
    # -softplus(-logit) is the log P(relevant) training optimised.
    assert model.model.config.num_hidden_layers == 1 and model.model.config.num_labels == 1
    scores = model.score(["how does BM25 score documents"] * 2, ["BM25 ranks documents", "aerofoil lift"])
    assert scores.shape == (2,) and np.isfinite(scores).all() and (-np.logaddexp(0, -scores) < 0).all()
    if "score-teacher" in commands():
        rerank = cli("score-teacher", "--model", out, "--queries", SAMPLE / "queries.jsonl", "--corpus",
                     SAMPLE / "corpus.jsonl", input=(SAMPLE / "run.trec").read_text())
        assert rerank.exit_code == 0, rerank
        assert len(rerank.stdout.splitlines()) == 11


def test_bi_student_loads_with_its_pooling(cli, tmp_path: Path, tiny_bi: Path, cran_groups: Path) -> None:
    out = tmp_path / "bi"
    result = cli(*cran_args(tiny_bi, out, "--student", "bi", "--loss", "kl", "--max-steps", "2"), cran_groups)
    assert result.exit_code == 0, result
    from rdistill.models import BiEncoder, detect_kind

    assert detect_kind(str(out)) == "bi"
    # the KL convention is recorded: Hinton's T^2 factor
    assert json.loads((out / "rdistill_train.json").read_text())["loss_formula"].startswith("T^2 * KL(")
    model = BiEncoder(str(out))
    assert (model.pooling, model.normalize, model.max_length) == ("cls", False, 200)
    assert model.encode(["wing flow", "boundary layer"]).shape == (2, 32)
    if "retrieve" in commands():
        run = cli("retrieve", "--dense", "--model", out, "--corpus", SAMPLE / "corpus.jsonl", "--queries",
                  SAMPLE / "queries.jsonl", "--k", "3")
        assert run.exit_code == 0, run
        assert len(run.stdout.splitlines()) == 12


@pytest.mark.parametrize("loss", ["lce", "kl", "marginmse", "adrmse"])
def test_in_batch_negatives_with_labels_and_teacher_losses(cli, tmp_path: Path, tiny_bi: Path, cran_groups: Path,
                                                           loss: str) -> None:
    """Issue 24: in-batch negatives for bi-encoders under every loss, the teacher losses included."""
    ok = cli(*cran_args(tiny_bi, tmp_path / "a", "--student", "bi", "--in-batch-negatives", "--loss", loss,
                        "--max-steps", "1"), cran_groups)
    assert ok.exit_code == 0, ok
    meta = json.loads((tmp_path / "a" / "rdistill_train.json").read_text())
    assert meta["arguments"]["in_batch_negatives"] is True and meta["arguments"]["loss"] == loss
    # a cross-encoder scores pairs, so it has no batch of embeddings to share
    bad = cli(*cran_args(tiny_bi, tmp_path / "b", "--in-batch-negatives", "--loss", loss, "--max-steps", "1"),
              cran_groups)
    assert bad.exit_code == 2 and "--in-batch-negatives needs --student bi" in bad.stderr


def test_in_batch_layout_and_teacher_rows(tiny_bi: Path) -> None:
    """Each query's row holds its own group first (the scores it gets without in-batch negatives), then the other
    queries' documents; the teacher's row follows the same layout: the pool's score for this query where the groups
    file has one, the query's lowest teacher score (a label-0 negative) where not."""
    from rdistill.training.data import TrainGroup, in_batch_columns, teacher_rows
    from rdistill.training.students import build_student

    assert in_batch_columns([3, 2]) == [[0, 1, 2, 3, 4], [3, 4, 0, 1, 2]]
    groups = [TrainGroup("qa", ("d1", "d2", "d3"), (5.0, 1.0, 2.0), 1),
              TrainGroup("qb", ("d4", "d1"), (3.0, -1.0), 2)]
    pool = {"qa": {"d1": 5.0, "d2": 1.0, "d3": 2.0, "d4": 4.5}, "qb": {"d4": 3.0, "d1": -1.0}}
    assert teacher_rows(groups, 5, True, pool) == [[5.0, 1.0, 2.0, 4.5, 5.0], [3.0, -1.0, -1.0, -1.0, -1.0]]
    # without in-batch negatives: own scores, zeros past the end (the mask hides them)
    assert teacher_rows(groups, 3, False) == [[5.0, 1.0, 2.0], [3.0, -1.0, 0.0]]
    torch.manual_seed(0)
    student = build_student("bi", str(tiny_bi), None, 30, 200)
    student.model.eval()
    texts = [["wing lift", "boundary layer flow", "heat transfer"], ["shock waves", "wing lift"]]
    with torch.no_grad():
        alone, mask = student.group_scores(student.model, ["lift of wings", "supersonic shocks"], texts,
                                           torch.device("cpu"))
        batch, bmask = student.group_scores(student.model, ["lift of wings", "supersonic shocks"], texts,
                                            torch.device("cpu"), in_batch=True)
    assert batch.shape == (2, 5) and bmask.all()
    assert torch.allclose(batch[0, :3], alone[0, :3], atol=1e-5) and torch.allclose(batch[1, :2], alone[1, :2],
                                                                                  atol=1e-5)
    # qb's row: its own two documents, then qa's three; qa's "wing lift" scores as qb's own "wing lift" does
    assert torch.allclose(batch[1, 2], batch[1, 1], atol=1e-5) and torch.allclose(batch[0, 4], batch[0, 0],
                                                                                  atol=1e-5)


def test_a_checkpoint_without_a_head_gets_one_and_says_so(cli, tmp_path: Path, tiny_bi: Path,
                                                          cran_groups: Path) -> None:
    result = cli(*cran_args(tiny_bi, tmp_path / "c", "--max-steps", "1"), cran_groups)
    assert result.exit_code == 0, result
    notes = [line for line in result.stderr.splitlines() if "classification head" in line]
    assert len(notes) == 1 and "starting a new one" in notes[0]


def test_init_layers_keeps_the_first_layers(tiny_cross: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from rdistill.training.students import build_student

    full = AutoModelForSequenceClassification.from_pretrained(tiny_cross)
    cut = build_student("cross", str(tiny_cross), 1, 30, 200).model
    assert len(cut.bert.encoder.layer) == 1
    a, b = full.bert.encoder.layer[0].state_dict(), cut.bert.encoder.layer[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights(cli, tmp_path: Path, tiny_cross: Path, cran_groups: Path) -> None:
    runs = [cli(*cran_args(tiny_cross, tmp_path / name, "--loss", "ranknet", "--max-steps", "1", "--lr", "1e-3",
                           *extra), cran_groups) for name, extra in (("a", []), ("b", []), ("c", ["--seed", "4"]))]
    assert all(r.exit_code == 0 for r in runs), runs
    assert max_diff(tmp_path / "a", tmp_path / "b") == 0.0
    assert max_diff(tmp_path / "a", tmp_path / "c") > 0.0


def test_teacher_scale_is_scaling_the_groups_scores(cli, tmp_path: Path, tiny_cross: Path,
                                                    cran_groups: Path) -> None:
    """--teacher-scale 4 on the groups trains exactly what --teacher-scale 1 trains on the groups with every
    teacher score times 4 (a power of two, so exact in floats too), and differently from the unscaled scores
    (MarginMSE is not scale-free)."""
    times4 = tmp_path / "times4.jsonl"
    with open(cran_groups) as fh, open(times4, "w") as out:
        for line in fh:
            group = json.loads(line)
            group["scores"] = [4 * x for x in group["scores"]]
            out.write(json.dumps(group) + "\n")
    common = ("--loss", "marginmse", "--max-steps", "2", "--lr", "1e-3")
    runs = [cli(*cran_args(tiny_cross, tmp_path / "scaled", *common, "--teacher-scale", "4"), cran_groups),
            cli(*cran_args(tiny_cross, tmp_path / "pre", *common), times4),
            cli(*cran_args(tiny_cross, tmp_path / "plain", *common), cran_groups)]
    assert all(r.exit_code == 0 for r in runs), runs
    assert max_diff(tmp_path / "scaled", tmp_path / "pre") == 0.0
    assert max_diff(tmp_path / "scaled", tmp_path / "plain") > 0.0
    recorded = json.loads((tmp_path / "scaled" / "rdistill_train.json").read_text())
    assert recorded["arguments"]["teacher_scale"] == 4.0
    bad = cli(*cran_args(tiny_cross, tmp_path / "bad", *common, "--teacher-scale", "0"), cran_groups)
    assert bad.exit_code != 0 and "--teacher-scale" in bad.stderr


def test_resume_continues_exactly(cli, tmp_path: Path, tiny_cross: Path, cran_groups: Path) -> None:
    # dropout on, lr high enough to move: the RNG state, optimizer, schedule and data position must all come back
    args = ("--loss", "lce", "--max-steps", "4", "--lr", "1e-3", "--grad-accum", "2")
    whole = cli(*cran_args(tiny_cross, tmp_path / "whole", *args), cran_groups)
    assert whole.exit_code == 0, whole
    part = cli(*cran_args(tiny_cross, tmp_path / "parts", *args, "--checkpoint-every", "2", "--stop-after", "3"),
               cran_groups)
    assert part.exit_code == 0, part
    assert "continue with --resume" in part.stderr
    assert (tmp_path / "parts" / "checkpoint" / "state.pt").exists() and not (tmp_path / "parts" / "config.json").exists()
    # resuming with other training arguments is refused, naming them
    other = cli(*cran_args(tiny_cross, tmp_path / "parts", "--loss", "lce", "--max-steps", "4", "--lr", "2e-3",
                           "--grad-accum", "2", "--resume"), cran_groups)
    assert other.exit_code == 2 and "lr" in other.stderr
    rest = cli(*cran_args(tiny_cross, tmp_path / "parts", *args, "--checkpoint-every", "2", "--resume"), cran_groups)
    assert rest.exit_code == 0, rest
    assert max_diff(tmp_path / "whole", tmp_path / "parts") == 0.0
    assert (json.loads((tmp_path / "whole" / "rdistill_train.json").read_text())["losses"]
            == json.loads((tmp_path / "parts" / "rdistill_train.json").read_text())["losses"])


def test_two_gloo_processes_match_one(cli, tmp_path: Path, no_dropout: Path, cran_groups: Path) -> None:
    args = [str(a) for a in cran_args(no_dropout, tmp_path / "ddp", "--loss", "marginmse", "--max-steps", "3",
                                      "--lr", "1e-4")]
    single = cli(*cran_args(no_dropout, tmp_path / "one", "--loss", "marginmse", "--max-steps", "3", "--lr", "1e-4"),
                 cran_groups)
    assert single.exit_code == 0, single
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(29400 + os.getpid() % 500), "-m", "rdistill", *args, str(cran_groups)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((tmp_path / "ddp" / "rdistill_train.json").read_text())
    assert meta["world_size"] == 2
    one = json.loads((tmp_path / "one" / "rdistill_train.json").read_text())
    assert meta["losses"] == pytest.approx(one["losses"], rel=1e-5)
    # The summed half-batch gradients equal the whole batch's to float32 rounding (each rank pads to its own longest
    # pair), but Adam divides by the gradient's size, so coordinates whose gradient is near 0 turn that rounding
    # into visible steps: compare the whole difference with how far training moved the weights (here about 2e-3).
    init, a, b = weights(no_dropout), weights(tmp_path / "one"), weights(tmp_path / "ddp")
    gap = sum(((a[k] - b[k]).double() ** 2).sum() for k in a) ** 0.5
    moved = sum(((a[k] - init[k]).double() ** 2).sum() for k in a) ** 0.5
    assert moved > 0 and gap / moved < 1e-2, (gap, moved)


def test_schedule_splits_global_batches_between_ranks() -> None:
    schedule = Schedule(n_groups=10, batch_size=4, grad_accum=2, seed=0, total_queries=20)
    assert schedule.steps == 3
    seen = [i for step in range(schedule.steps) for mb in schedule.step(step) for i in mb]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))  # two epochs
    for step in range(schedule.steps):
        for mb in schedule.step(step):
            assert sorted(Schedule.share(mb, 0, 2) + Schedule.share(mb, 1, 2)) == sorted(mb)


def test_large_groups_are_cut_the_same_way_every_time(tmp_path: Path, cran_groups: Path) -> None:
    a, sha = read_groups(cran_groups, group_size=3, seed=5)
    b, _ = read_groups(cran_groups, group_size=3, seed=5)
    full, _ = read_groups(cran_groups)
    assert a == b and all(len(g.doc_ids) == 3 for g in a)
    for cut, whole in zip(a, full, strict=True):
        assert cut.doc_ids[0] == whole.doc_ids[0] and set(cut.doc_ids) <= set(whole.doc_ids)
        assert cut.scores == tuple(whole.scores[whole.doc_ids.index(d)] for d in cut.doc_ids)
    assert len(sha) == 64


def test_errors_are_located(cli, tmp_path: Path, tiny_cross: Path, cran_groups: Path) -> None:
    lines = cran_groups.read_text().splitlines()
    unscored = tmp_path / "unscored.jsonl"
    unscored.write_text("\n".join([lines[0], json.dumps({**json.loads(lines[1]), "scores": None})]) + "\n")
    result = cli(*cran_args(tiny_cross, tmp_path / "o", "--loss", "marginmse", "--max-steps", "1"), unscored)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"rdistill: error: {unscored}:2: ") and "--loss marginmse needs" in result.stderr
    # labels only is fine for lce
    assert cli(*cran_args(tiny_cross, tmp_path / "o", "--max-steps", "1"), unscored).exit_code == 0
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({**json.loads(lines[0]), "doc_ids": ["184", "no-such-doc"], "labels": [1, 0],
                                   "scores": [1.0, 0.0]}) + "\n")
    result = cli(*cran_args(tiny_cross, tmp_path / "p", "--max-steps", "1"), missing)
    assert result.exit_code == 2 and result.stderr.strip().endswith(
        f"{missing}:1: document 'no-such-doc' is not in --corpus")
    bad = cli(*cran_args(tiny_cross, tmp_path / "q", "--max-steps", "1"), input="{not json\n")
    assert bad.exit_code == 2 and "<stdin>:1: invalid JSON" in bad.stderr
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    refused = cli(*cran_args(tiny_cross, occupied, "--max-steps", "1"), cran_groups)
    assert refused.exit_code == 2 and "other files" in refused.stderr
    assert (occupied / "notes.txt").exists()


def test_inference_scores_what_training_scored(tmp_path: Path, tiny_cross: Path, cran_groups: Path) -> None:
    """The saved student, loaded by models.CrossEncoder (what score-teacher uses), gives the scores the trained
    model gave in training (dropout off): same tokens, same head, same log P(relevant)."""
    from rdistill.data import load_queries
    from rdistill.docstore import DocStore
    from rdistill.models import CrossEncoder
    from rdistill.training.losses import marginmse
    from rdistill.training.students import build_student

    torch.manual_seed(0)
    student = build_student("cross", str(tiny_cross), 1, 30, 200)
    groups, _ = read_groups(cran_groups, group_size=4)
    queries, store = load_queries(str(CRAN)), DocStore(str(CRAN))
    qs = [queries[g.query_id] for g in groups[:4]]
    ds = [[store.text(d) for d in g.doc_ids] for g in groups[:4]]
    teacher = torch.tensor([g.scores for g in groups[:4]])
    optimizer = torch.optim.AdamW(student.model.parameters(), lr=1e-2)
    for _ in range(3):
        s, mask = student.group_scores(student.model, qs, ds, torch.device("cpu"))
        marginmse(s, teacher, mask).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    student.model.eval()
    with torch.no_grad():
        trained, _ = student.group_scores(student.model, qs, ds, torch.device("cpu"))
    student.save(tmp_path / "student")
    loaded = CrossEncoder(str(tmp_path / "student")).score([q for q, g in zip(qs, ds, strict=True) for _ in g],
                                                           [d for g in ds for d in g])
    # The saved head is the single logit logit1 - logit0; log P(relevant) = -softplus(-logit) is what training saw.
    log_p = -torch.nn.functional.softplus(-torch.from_numpy(loaded))
    assert torch.allclose(trained.flatten().double(), log_p, atol=1e-6)


# ------------------------------------------------------------------------------- label-free training (issue 28)

TEXTS = ("--queries", SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl")


def positive_free_groups(teacher_run: str) -> str:
    """Positive-free lists ("positives": "none") from a run scored by a teacher: each query's documents in the
    teacher's order, cut to a different length per query (2, 3, 4, ...) so that one batch holds lists of unequal
    lengths: lists of unequal lengths in one batch, which `rdistill sample --positives none` never writes."""
    scored = run_from_text(teacher_run)
    lines = []
    for i, qid in enumerate(sorted(scored)):
        ranked = sorted(scored[qid], key=lambda d: -scored[qid][d])[:2 + i]
        if len(ranked) >= 2:
            lines.append(json.dumps({"query_id": qid, "doc_ids": ranked, "labels": [0] * len(ranked),
                                     "scores": [scored[qid][d] for d in ranked], "meta": {}, "positives": "none"}))
    return "\n".join(lines) + "\n"


def test_label_free_chain(cli, tmp_path: Path, tiny_cross: Path) -> None:
    """retrieve -> score-teacher -> positive-free groups -> train --loss adrmse -> score-teacher with the student
    -> eval, through the CLI on sample_data, with no judgment used before eval."""
    bm25 = cli("retrieve", *TEXTS, "--k", "6", "--index", tmp_path / "index")
    assert bm25.exit_code == 0, bm25
    teacher = cli("score-teacher", "--model", tiny_cross, *TEXTS, input=bm25.stdout)
    assert teacher.exit_code == 0, teacher
    groups = tmp_path / "groups.jsonl"
    sampled = cli("sample", "--positives", "none", "--strategy", "window", "--window", "1:6", "--group-size", "3",
                  "--seed", "1", "-o", groups, input=teacher.stdout)
    assert sampled.exit_code == 0, sampled
    lines = [json.loads(line) for line in groups.read_text().splitlines()]
    assert lines and all(g["positives"] == "none" and set(g["labels"]) == {0} for g in lines)
    # Lists of unequal lengths in one batch (masked, not padded into the loss) are the stand-in's job below.
    unequal = tmp_path / "unequal.jsonl"
    unequal.write_text(positive_free_groups(teacher.stdout))
    assert len({len(json.loads(line)["doc_ids"]) for line in unequal.read_text().splitlines()}) > 1
    assert cli("train", "--model", tiny_cross, *TEXTS, "--loss", "adrmse", "--batch-size", "4", "--grad-accum", "1",
               "--max-steps", "1", "--out", tmp_path / "unequal", unequal).exit_code == 0
    out = tmp_path / "student"
    trained = cli("train", "--model", tiny_cross, *TEXTS, "--loss", "adrmse", "--alpha", "2", "--batch-size", "4",
                  "--grad-accum", "1", "--max-steps", "2", "--lr", "1e-3", "--out", out, groups)
    assert trained.exit_code == 0, trained
    meta = json.loads((out / "rdistill_train.json").read_text())
    assert meta["arguments"]["loss"] == "adrmse" and meta["arguments"]["alpha"] == 2.0
    assert "alpha" in meta["loss_formula"] and all(x >= 0 for x in meta["losses"])
    rerank = cli("score-teacher", "--model", out, *TEXTS, input=bm25.stdout)
    assert rerank.exit_code == 0, rerank
    assert len(rerank.stdout.splitlines()) == len(bm25.stdout.splitlines())
    evaluated = cli("eval", "--qrels", SAMPLE / "qrels.txt", "-m", "ndcg@10", "--json", input=rerank.stdout)
    assert evaluated.exit_code == 0, evaluated
    assert "ndcg@10" in evaluated.stdout


def test_group_kinds_each_loss_takes(cli, tmp_path: Path, tiny_cross: Path) -> None:
    """Losses that need a positive refuse positive-free lists, lce (labels) refuses pseudo positives, each with one
    located line; a pool the teacher ties throughout trains ADR-MSE on average ranks."""
    run = (SAMPLE / "run.trec").read_text()
    none = tmp_path / "none.jsonl"
    none.write_text(positive_free_groups(run))
    first = json.loads(none.read_text().splitlines()[0])["query_id"]
    for loss in ("lce", "marginmse"):
        refused = cli("train", "--model", tiny_cross, *TEXTS, "--loss", loss, "--max-steps", "1", "--out",
                      tmp_path / loss, none)
        assert refused.exit_code == 2, refused
        assert refused.stderr.startswith(f"rdistill: error: {none}:1: query {first!r} is a positive-free list")
        assert "use --loss ranknet, kl, listmle, lambdaloss or adrmse" in refused.stderr
        assert not (tmp_path / loss / "config.json").exists()
    pseudo = tmp_path / "pseudo.jsonl"
    pseudo.write_text("".join(json.dumps({**json.loads(line), "positives": "pseudo",
                                          "labels": [1] + [0] * (len(json.loads(line)["doc_ids"]) - 1)}) + "\n"
                              for line in none.read_text().splitlines()))
    refused = cli("train", "--model", tiny_cross, *TEXTS, "--loss", "lce", "--max-steps", "1", "--out",
                  tmp_path / "p", pseudo)
    assert refused.exit_code == 2 and f"{pseudo}:1: query {first!r} has a pseudo positive" in refused.stderr
    assert "trains only on judged groups" in refused.stderr
    ok = cli("train", "--model", tiny_cross, *TEXTS, "--loss", "marginmse", "--max-steps", "1", "--out",
             tmp_path / "m", pseudo)
    assert ok.exit_code == 0, ok
    ties = tmp_path / "ties.jsonl"
    ties.write_text("".join(json.dumps({**json.loads(line), "scores": [1.5] * len(json.loads(line)["doc_ids"])})
                            + "\n" for line in none.read_text().splitlines()))
    tied = cli("train", "--model", tiny_cross, *TEXTS, "--loss", "adrmse", "--max-steps", "1", "--out",
               tmp_path / "t", ties)
    assert tied.exit_code == 0, tied
    bad = cli("train", "--model", tiny_cross, *TEXTS, "--loss", "adrmse", "--alpha", "0", "--max-steps", "1",
              "--out", tmp_path / "a", ties)
    assert bad.exit_code == 2 and "--alpha 0" in bad.stderr
