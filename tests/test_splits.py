"""`rdistill data split`: a dev split carved from a training split, deterministic and disjoint from test."""

from __future__ import annotations

import shutil
from pathlib import Path

from rdistill.io import read_qrels
from rdistill.splits import dev_queries
from tests.conftest import DATA, SAMPLE


def _beir(folder: Path) -> Path:
    """A BEIR folder from sample_data: its qrels as the train split, plus a test split that must not be carried."""
    (folder / "qrels").mkdir(parents=True)
    shutil.copy(SAMPLE / "corpus.jsonl", folder / "corpus.jsonl")
    shutil.copy(SAMPLE / "queries.jsonl", folder / "queries.jsonl")
    lines = ["query-id\tcorpus-id\tscore"] + ["\t".join((f[0], f[2], f[3])) for f in
                                             (line.split() for line in (SAMPLE / "qrels.txt").read_text().splitlines())]
    (folder / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    return folder


def test_split_is_a_partition_by_query_and_a_beir_folder(cli, tmp_path):
    src = _beir(tmp_path / "src")
    out = tmp_path / "dev"
    r = cli("data", "split", src, out, "--dev", "1", "--seed", "7")
    assert r.exit_code == 0, r.stderr
    assert "train 3 queries" in r.stderr and "dev 1 queries" in r.stderr
    train, dev = read_qrels(out / "qrels" / "train.tsv"), read_qrels(out / "qrels" / "dev.tsv")
    whole = read_qrels(src / "qrels" / "train.tsv")
    assert not set(train) & set(dev)
    assert {**train, **dev} == whole  # every judgment kept, each query whole on one side
    assert set(dev) == dev_queries(list(whole), 1, 7)
    assert not (out / "qrels" / "test.tsv").exists()  # nothing to tune on by mistake
    assert (out / "corpus.jsonl").resolve() == (src / "corpus.jsonl").resolve()
    # Every stage reads the folder: the dev queries' texts through --split dev.
    r = cli("retrieve", "--corpus", out, "--queries", out, "--split", "dev", "--k", "3", "--index", tmp_path / "ix")
    assert r.exit_code == 0, r.stderr
    assert {line.split()[0] for line in r.stdout.splitlines()} == set(dev)


def test_split_depends_on_ids_and_seed_only():
    ids = [f"q{i}" for i in range(500)]
    a = dev_queries(ids, 50, 42)
    assert a == dev_queries(list(reversed(ids)), 50, 42)  # file order does not matter
    assert a <= dev_queries(ids + ["extra"], 51, 42)  # another query joining moves no query out of dev
    assert a != dev_queries(ids, 50, 43)
    assert len(a) == 50


def test_split_refuses_what_it_cannot_do(cli, tmp_path):
    src = _beir(tmp_path / "src")
    r = cli("data", "split", src, tmp_path / "o", "--dev", "4")
    assert r.exit_code == 2 and "judges only 4 queries" in r.stderr
    r = cli("data", "split", src, src, "--dev", "1")
    assert r.exit_code == 2 and "is the source" in r.stderr
    r = cli("data", "split", src / "qrels" / "train.tsv", tmp_path / "o", "--dev", "1")
    assert r.exit_code == 2 and "expected a BEIR folder" in r.stderr


def test_scifact_dev_split_is_disjoint_from_test(cli, tmp_path):
    out = tmp_path / "scifact"
    r = cli("data", "split", DATA / "scifact", out, "--dev", "100", "--seed", "42")
    assert r.exit_code == 0, r.stderr
    dev, train = read_qrels(out / "qrels" / "dev.tsv"), read_qrels(out / "qrels" / "train.tsv")
    test = read_qrels(DATA / "scifact" / "qrels" / "test.tsv")
    assert len(dev) == 100 and len(train) == 709
    assert not set(dev) & set(test) and not set(dev) & set(train)
    again = tmp_path / "again"
    assert cli("data", "split", DATA / "scifact", again, "--dev", "100", "--seed", "42").exit_code == 0
    assert (again / "qrels" / "dev.tsv").read_bytes() == (out / "qrels" / "dev.tsv").read_bytes()


def test_data_queries_gives_ids_that_every_stage_reads(cli, tmp_path):
    log = tmp_path / "questions.txt"
    log.write_text("how do statins work\n\nwhat  causes\tfever\nhow do statins   work\n")
    out = tmp_path / "queries.jsonl"
    r = cli("data", "queries", log, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert "2 queries written, 1 blank lines skipped, 1 repeated queries kept once" in r.stderr
    # The id is the line number, so a query traces back to its line; whitespace (a tab too) is collapsed.
    assert out.read_text() == ('{"_id":"q1","text":"how do statins work"}\n'
                               '{"_id":"q3","text":"what causes fever"}\n')
    r = cli("retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", out, "--k", "2", "--index", tmp_path / "ix")
    assert r.exit_code == 0, r.stderr
    assert {line.split()[0] for line in r.stdout.splitlines()} <= {"q1", "q3"}
    r = cli("data", "queries", log, "--keep-duplicates", "--prefix", "log-")
    assert r.exit_code == 0 and r.stdout.count('"_id"') == 3 and '"log-4"' in r.stdout


def test_data_queries_refuses_what_it_cannot_number(cli, tmp_path):
    bad = tmp_path / "bad.txt"
    for content, expected in ((b"fine\nbad\x01query\n", "bad.txt:2: the query contains a control character"),
                              (b"ok\n\xff\n", "bad.txt:2: not valid UTF-8"),
                              (b"\n \n", "no queries found")):
        bad.write_bytes(content)
        r = cli("data", "queries", bad)
        assert r.exit_code == 2 and expected in r.stderr, r.stderr
    r = cli("data", "queries", bad, "--prefix", "a b")
    assert r.exit_code == 2 and "--prefix 'a b'" in r.stderr
    # A plain file given where ids are expected says how to give them ids.
    bad.write_text("how do statins work\n")
    r = cli("retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", bad, "--index", tmp_path / "ix")
    assert r.exit_code == 2 and "rdistill data queries" in r.stderr
