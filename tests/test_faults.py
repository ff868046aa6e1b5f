"""The fault classes of issue 29 through the real CLI (DEVELOPING.md, "Fault classes"): located content errors,
self-contradicting input, options that cannot be honoured, writers whose readers refuse them, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
RUN = (SAMPLE / "run.trec").read_text()
QRELS = (SAMPLE / "qrels.txt").read_text()
GROUPS = [
    {"query_id": "q1", "doc_ids": ["d1", "d11", "d7", "d8"], "labels": [1, 0, 0, 0], "scores": [9.5, 6.25, 4.0, 1.5]},
    {"query_id": "q2", "doc_ids": ["d4", "d5", "d2", "d6"], "labels": [1, 0, 0, 0], "scores": [7.75, 3.5, 3.5, 0.5]},
]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("rdistill: error:")]


# ------------------------------------------------------------------------------- 2. self-contradicting input


def test_qrels_judging_a_pair_twice_is_refused_or_counted_once_by_grade(cli, tmp_path):
    regraded = tmp_path / "regraded.txt"
    regraded.write_text(QRELS + "q2 0 d4 1\n")
    result = cli("eval", "--qrels", regraded, SAMPLE / "run.trec")
    assert result.exit_code == 2
    assert errors(result) == [f"rdistill: error: {regraded}:10: query 'q2', document 'd4' is judged again with "
                              "grade 1 after grade 2; a pair has one grade"]
    repeated = tmp_path / "repeated.txt"
    repeated.write_text(QRELS + "q2 0 d4 2\n")
    clean = cli("eval", "--json", "--qrels", SAMPLE / "qrels.txt", SAMPLE / "run.trec")
    again = cli("eval", "--json", "--qrels", repeated, SAMPLE / "run.trec")
    assert again.exit_code == 0 and again.stdout == clean.stdout
    assert "rdistill: note:" in again.stderr and "judged twice with the same grade" in again.stderr


@pytest.mark.parametrize(("doc_ids", "labels", "message"), [
    (["d1", "d11", "d1", "d8"], [1, 0, 0, 0], "document 'd1' is the positive, listed again among the negatives"),
    (["d1", "d11", "d7", "d11"], [1, 0, 0, 0], "document 'd11' is listed twice"),
    (["d1", "d11", "d7", "d8"], [1, 0.5, 0, 0], "field 'labels' holds 0.5; labels are integer relevance grades"),
])
def test_a_group_that_contradicts_itself_is_refused_at_its_line(cli, tmp_path, doc_ids, labels, message):
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl([GROUPS[1], {**GROUPS[0], "doc_ids": doc_ids, "labels": labels}]))
    for argv in (["entropy"], ["convert", "--to", "authors", "--scores-out", tmp_path / "s.json"]):
        result = cli(*argv, path)
        assert result.exit_code == 2 and len(errors(result)) == 1, result.stderr
        assert errors(result)[0].startswith(f"rdistill: error: {path}:2: ") and message in errors(result)[0]


def test_an_integral_float_label_reads_as_its_grade(cli, tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl([{**GROUPS[0], "labels": [2.0, 0.0, 0, 0]}]))
    result = cli("convert", "--to", "authors", "--scores-out", tmp_path / "s.json", path)
    assert result.exit_code == 0, result.stderr


def test_a_duplicate_query_id_is_located_at_its_second_line(cli, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text((SAMPLE / "queries.jsonl").read_text() + '{"_id": "q2", "text": "again"}\n')
    result = cli("score-teacher", "--model", "bm25", "--index", tmp_path / "idx", "--queries", queries, "--corpus",
                 SAMPLE / "corpus.jsonl", SAMPLE / "run.trec")
    assert result.exit_code == 2
    assert errors(result) == [f"rdistill: error: {queries}:5: query id 'q2' appears more than once"]


def test_the_dense_index_refuses_a_corpus_id_twice_as_bm25_does(cli, tmp_path, tiny_bi):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text((SAMPLE / "corpus.jsonl").read_text() + '{"_id": "d4", "text": "again"}\n')
    result = cli("retrieve", "--dense", "--model", tiny_bi, "--device", "cpu", "--corpus", corpus, "--queries",
                 SAMPLE / "queries.jsonl", "--index", tmp_path / "idx")
    assert result.exit_code == 2
    assert errors(result) == [f"rdistill: error: {corpus}:13: document id 'd4' appears more than once"]


@pytest.mark.parametrize("ident", ["d\x001", "d\ufeff1", "d\x071"])
def test_an_id_with_an_invisible_character_is_refused_in_every_format(cli, tmp_path, ident):
    run = tmp_path / "r.trec"
    run.write_text(RUN.replace("d11", ident, 1))
    for argv in (["eval", "--qrels", SAMPLE / "qrels.txt"], ["entropy"]):
        result = cli(*argv, run)
        assert result.exit_code == 2 and errors(result)[0].startswith(f"rdistill: error: {run}:2: document id")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text((SAMPLE / "corpus.jsonl").read_text() + json.dumps({"_id": ident, "text": "t"}) + "\n")
    result = cli("retrieve", "--corpus", corpus, "--queries", SAMPLE / "queries.jsonl", "--index", tmp_path / "i")
    assert result.exit_code == 2 and "control or invisible character" in errors(result)[0]


# ------------------------------------------------------------------------ 1. content errors name file and line


def test_score_teacher_names_the_run_line_of_a_missing_query_or_document(cli, tmp_path):
    common = ["score-teacher", "--model", "bm25", "--index", tmp_path / "idx", "--queries", SAMPLE / "queries.jsonl",
              "--corpus", SAMPLE / "corpus.jsonl"]
    run = tmp_path / "r.trec"
    run.write_text(RUN + "q9 Q0 d1 1 1.0 x\n")
    result = cli(*common, run)
    assert errors(result) == [f"rdistill: error: {run}:12: query 'q9' of the run is not in --queries"]
    run.write_text(RUN + "q3 Q0 dX 4 0.5 x\n")
    result = cli(*common, run)
    assert errors(result) == [f"rdistill: error: {run}:12: document 'dX' is not in the corpus"]
    result = cli(*common, "-", input=RUN.replace("d12", "dY"))
    assert errors(result) == ["rdistill: error: <stdin>:9: document 'dY' is not in the corpus"]


def test_score_teacher_cross_names_the_run_line_of_a_missing_document(cli, tmp_path, tiny_cross):
    run = tmp_path / "r.trec"
    run.write_text(RUN.replace("q2 Q0 d2 ", "q2 Q0 dZ "))
    result = cli("score-teacher", "--model", tiny_cross, "--device", "cpu", "--queries", SAMPLE / "queries.jsonl",
                 "--corpus", SAMPLE / "corpus.jsonl", run)
    assert errors(result) == [f"rdistill: error: {run}:7: document 'dZ' is not in the corpus"]


def test_convert_names_the_group_line_whose_text_is_missing(cli, tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(jsonl([GROUPS[0], {**GROUPS[1], "doc_ids": ["d4", "d5", "dQ", "d6"]}]))
    result = cli("convert", "--to", "tevatron", "--queries", SAMPLE / "queries.jsonl", "--corpus",
                 SAMPLE / "corpus.jsonl", path)
    assert errors(result) == [f"rdistill: error: {path}:2: document 'dQ' is not in --corpus"]


# --------------------------------------------------------------------------- 3. options that cannot be honoured


def train_argv(model: Path, out: Path, groups: Path, *extra: str) -> list:
    return ["train", "--model", model, "--queries", SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl",
            "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1", "--device", "cpu", "--out", out, *extra,
            groups]


def test_train_group_size_is_refused_above_every_group_and_recorded_as_trained(cli, tmp_path, tiny_cross):
    groups = tmp_path / "g.jsonl"
    groups.write_text(jsonl(GROUPS))
    result = cli(*train_argv(tiny_cross, tmp_path / "big", groups, "--group-size", "5"))
    assert result.exit_code == 2 and not (tmp_path / "big").exists()
    assert errors(result) == [f"rdistill: error: --group-size 5: the largest group in {groups} holds 4 documents, "
                              "and a group cannot be grown; give --group-size 4 or less, or leave it out"]
    groups.write_text(jsonl([*GROUPS, {"query_id": "q3", "doc_ids": ["d12", "d3", "d7"], "labels": [1, 0, 0],
                                       "scores": [3.0, 2.0, 1.0]}]))
    result = cli(*train_argv(tiny_cross, tmp_path / "mixed", groups, "--group-size", "4"))
    assert result.exit_code == 0, result.stderr
    assert "1 of 3 groups hold fewer than --group-size 4 documents (the smallest 3)" in result.stderr
    meta = json.loads((tmp_path / "mixed" / "rdistill_train.json").read_text())
    assert meta["group_sizes"] == {"min": 3, "max": 4}


def test_sample_refuses_a_min_relevance_whose_groups_train_would_refuse(cli):
    result = cli("sample", "--strategy", "window", "--window", "1:4", "-G", "3", "--min-relevance", "0", "--qrels",
                 SAMPLE / "qrels.txt", SAMPLE / "run.trec")
    assert result.exit_code == 2 and "--min-relevance 0" in errors(result)[0]


# ------------------------------------------------------------------------------ 4. writers and readers agree


def test_convert_never_writes_a_group_train_refuses(cli, tmp_path, tiny_cross):
    triples = tmp_path / "t.jsonl"
    triples.write_text(jsonl([{"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d11", "d8"]},
                              {"query_id": "q1", "doc_id_a": "d8", "doc_id_b": ["d7"]}]))  # d8: unjudged for q1
    result = cli("convert", "--from", "authors", "--qrels", SAMPLE / "qrels.txt", triples)
    assert result.exit_code == 2
    assert errors(result)[0].startswith(f"rdistill: error: {triples}:2: query 'q1': the positive 'd8' is judged 0")
    triples.write_text(jsonl([{"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d11", "d8"]},
                              {"query_id": "q2", "doc_id_a": "d4", "doc_id_b": ["d5", "d6"]}]))
    groups = tmp_path / "g.jsonl"
    assert cli("convert", "--from", "authors", "--qrels", SAMPLE / "qrels.txt", "-o", groups, triples).exit_code == 0
    trained = cli(*train_argv(tiny_cross, tmp_path / "student", groups, "--loss", "lce"))
    assert trained.exit_code == 0, trained.stderr


@pytest.mark.parametrize(("fmt", "content", "message"), [
    ("authors", "", "no groups"),
    ("sentence-transformers", "", "no groups"),
    ("sentence-transformers", '{"qid": "q1", "pos": [], "neg": ["d7"]}\n', "no groups"),
    ("sentence-transformers", '{"qid": "q1", "pos": ["d1"], "neg": []}\n', "got 1 document(s)"),
])
def test_convert_refuses_an_input_that_gives_nothing(cli, tmp_path, fmt, content, message):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    result = cli("convert", "--from", fmt, path)
    assert result.exit_code == 2 and message in errors(result)[0] and result.stdout == ""


@pytest.mark.parametrize("value", ['"high"', "null", "true", "[1]", "1e400"])
def test_convert_refuses_a_score_that_is_not_a_finite_number(cli, tmp_path, value):
    triples, scores = tmp_path / "t.jsonl", tmp_path / "s.json"
    triples.write_text(jsonl([{"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d7"]}]))
    scores.write_text('{"q1": {"d1": ' + value + ', "d7": 1}}')
    result = cli("convert", "--from", "authors", "--scores-json", scores, triples)
    assert result.exit_code == 2 and result.exception is None and len(errors(result)) == 1
    assert errors(result)[0].startswith(f"rdistill: error: {scores}")


def test_convert_scores_out_without_scores_writes_nothing(cli, tmp_path):
    groups, out, scores = tmp_path / "g.jsonl", tmp_path / "t.jsonl", tmp_path / "s.json"
    groups.write_text(jsonl([{**g, "scores": None} for g in GROUPS]))
    result = cli("convert", "--to", "authors", "--scores-out", scores, "-o", out, groups)
    assert result.exit_code == 2 and not out.exists() and not scores.exists()


# ------------------------------------------------------------------------------------------- 6. interrupts


def _interrupt(argv: list, stdin: bytes, ready) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rdistill", *map(str, argv)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdin.write(stdin)
    proc.stdin.flush()  # and kept open: the job waits for more, as behind a user's pipe
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_in_score_teacher_says_in_one_line_what_was_kept_and_resume_never_mixes(tmp_path, tiny_cross, cli):
    out = tmp_path / "out.trec"
    journal = Path(f"{out}.partial")
    argv = ["score-teacher", "--model", tiny_cross, "--device", "cpu", "--queries", SAMPLE / "queries.jsonl",
            "--corpus", SAMPLE / "corpus.jsonl", "--chunk-pairs", "2", "-o", out]
    first_query = "".join(RUN.splitlines(True)[:5]).encode()  # q1 and the first line of q2: q1's chunk finishes
    proc = _interrupt([*argv, "-"], first_query, lambda: journal.exists() and b"#chunk" in journal.read_bytes())
    lines = [x for x in proc.stderr.decode().splitlines() if x.strip()]
    assert proc.returncode == 130 and len(lines) == 1, proc.stderr
    assert lines[0] == (f"rdistill: error: interrupted; the finished chunks are kept in {journal}: the same command "
                        "with --resume continues from them")
    other = tmp_path / "other.trec"
    other.write_text(RUN.replace("6.25", "6.0"))
    refused = cli(*argv, "--resume", other)
    assert refused.exit_code == 2 and "--resume with other input" in errors(refused)[0] and journal.exists()
    resumed = cli(*argv, "--resume", SAMPLE / "run.trec")
    assert resumed.exit_code == 0 and not journal.exists()
    fresh = cli(*argv[:-2], SAMPLE / "run.trec")
    assert out.read_text() == fresh.stdout
