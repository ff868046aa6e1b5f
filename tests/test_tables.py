"""The strategies' and the losses' tables are whole: a toy strategy and a toy loss, registered by one row each in a
fixture, go through `rdistill sample` and `rdistill train` (the real CLI, sample_data, a tiny random model) with no
other change to the code."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from rdistill.sampling import STRATEGIES, QueryInputs, Sampler, Strategy
from rdistill.training.losses import LOSSES, Loss
from tests.conftest import SAMPLE

QRELS = ["--qrels", str(SAMPLE / "qrels.txt")]
TEXTS = ["--queries", str(SAMPLE / "queries.jsonl"), "--corpus", str(SAMPLE / "corpus.jsonl")]


def _draw_bottom(s: Sampler, q: QueryInputs) -> tuple[list[str], dict[str, int]] | None:
    """The G-1 lowest-ranked candidates of the window: deterministic, so the test knows each group."""
    need = s.cfg.group_size - 1
    pool = s.window_pool(q.rankings[0], q.exclude)
    if len(pool) < need:
        return None
    return (pool if q.emit else pool[-need:]), {}


def _squared_error(s, t, mask, temperature):  # type: ignore[no-untyped-def]
    """Per query: the mean squared difference of student and teacher scores over the real documents."""
    m = mask.float()
    return ((s.float() - t) ** 2 * m).sum(1) / m.sum(1)


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STRATEGIES, "bottom", Strategy(
        _draw_bottom, "the G-1 lowest-ranked documents of ranks A:B (a toy)", reads_runs=True, max_runs=1,
        stdin=True, draws_corpus=False, own_scores=True, options=("window", "per_system")))
    monkeypatch.setitem(LOSSES, "toy", Loss(_squared_error, "squared error to the teacher's scores (a toy)",
                                            needs_teacher=True, needs_positive=False))


def test_toy_strategy_and_loss_end_to_end(cli, toys: None, tiny_cross: Path, tmp_path: Path) -> None:
    import torch

    run = (SAMPLE / "run.trec").read_text()
    result = cli("sample", "--strategy", "bottom", "--window", "1:10", "--group-size", "2", "--per-system", "3",
                 *QRELS, input=run)
    assert result.exit_code == 0, result
    groups = [orjson.loads(line) for line in result.stdout.splitlines()]
    # q1's positives are d1 and d7; the lowest-ranked other document of its run is the group's negative.
    from rdistill.io import read_qrels, read_run, sort_query

    qrels, scores = read_qrels(SAMPLE / "qrels.txt"), read_run(SAMPLE / "run.trec")
    expected = []
    for qid in sorted(scores):
        positives = sorted(d for d, r in qrels.get(qid, {}).items() if r >= 1)
        others = [d for d, _ in sort_query(scores[qid]) if d not in positives]
        expected += [(qid, [p, others[-1]]) for p in positives if others]
    assert [(g["query_id"], g["doc_ids"]) for g in groups] == expected and expected
    for g in groups:
        assert g["meta"] == {"strategy": "bottom", "seed": 42, "window": "1:10", "per_system": 3}
        assert g["scores"] == [scores[g["query_id"]][d] for d in g["doc_ids"]]  # the run's own (own_scores)
    # The row's run count is checked like every other strategy's.
    twice = cli("sample", "--strategy", "bottom", *QRELS, str(SAMPLE / "run.trec"), str(SAMPLE / "run.trec"))
    assert twice.exit_code == 2 and "--strategy bottom takes one run" in twice.stderr

    groups_file = tmp_path / "groups.jsonl"
    groups_file.write_text(result.stdout)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "student"
        trained = cli("train", "--model", tiny_cross, "--init-layers", "1", "--loss", "toy", *TEXTS, "--max-steps",
                      "2", "--batch-size", "2", "--grad-accum", "1", "--out", out, groups_file)
        assert trained.exit_code == 0, trained
        meta = json.loads((out / "rdistill_train.json").read_text())
        assert meta["arguments"]["loss"] == "toy" and meta["steps"] == 2
        assert all(isinstance(x, float) and x >= 0 for x in meta["losses"])
        # needs_teacher comes from the row: groups without teacher scores are refused, naming the loss.
        bare = tmp_path / "bare.jsonl"
        bare.write_text("".join(orjson.dumps({**g, "scores": None}).decode() + "\n" for g in groups))
        refused = cli("train", "--model", tiny_cross, "--loss", "toy", *TEXTS, "--max-steps", "1",
                      "--out", tmp_path / "other", bare)
        assert refused.exit_code == 2 and "--loss toy needs them" in refused.stderr
    finally:
        torch.set_num_threads(before)


def test_help_reads_the_tables(cli) -> None:
    """Every strategy and loss is listed in its command's help, with its row's help line."""
    sample = cli("sample", "--help").stdout
    for name, row in STRATEGIES.items():
        assert f"  {name}  " in sample and row.help.split("\n")[0][:40] in sample
    train = cli("train", "--help").stdout
    for name, loss in LOSSES.items():
        assert f"  {name}  " in train and loss.help in train
