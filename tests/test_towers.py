"""`train --frozen-documents`: a bi-encoder student whose query tower alone trains, scored against the initial
model's document embeddings; through the real CLI on sample_data with a tiny random BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rdistill.io import read_run
from rdistill.models import BiEncoder
from rdistill.towers import DOCUMENTS_FILE
from tests.conftest import SAMPLE
from tests.test_train import _one_thread, sample_groups  # noqa: F401 - _one_thread: autouse, module scope

Q, C = str(SAMPLE / "queries.jsonl"), str(SAMPLE / "corpus.jsonl")


def _train(cli, model: Path, out: Path, *extra: str):
    return cli("train", "--student", "bi", "--frozen-documents", "--model", model, "--queries", Q, "--corpus", C,
               "--loss", "kl", "--max-steps", "3", "--batch-size", "2", "--grad-accum", "1", "--lr", "1e-3",
               "--max-doc-length", "64", "--out", out, *extra, input=sample_groups())


def test_query_tower_trains_documents_stay(cli, tmp_path: Path, tiny_bi: Path) -> None:
    student, index = tmp_path / "student", tmp_path / "index"
    result = _train(cli, tiny_bi, student, "--doc-index", index)
    assert result.exit_code == 0, result.stderr
    tower = json.loads((student / DOCUMENTS_FILE).read_text())
    assert tower["model"] == str(tiny_bi) and tower["max_length"] == 64
    card = (student / "README.md").read_text()  # the model card says how to embed documents for this student
    assert "the trained **query** tower" in card and f'SentenceTransformer("{tiny_bi}")' in card
    # The documents are the initial model's embeddings, untouched by training.
    docs = BiEncoder(str(tiny_bi), max_length=64, device="cpu")
    texts = [json.loads(line) for line in Path(C).read_text().splitlines()]
    want = docs.encode([f"{t['title']} {t['text']}" if t.get("title") else t["text"] for t in texts])
    assert np.allclose(np.load(index / "embeddings.npy"), want, atol=1e-5)
    # The query tower did train: its embedding of a query moved.
    q = json.loads(Path(Q).read_text().splitlines()[0])["text"]
    trained = BiEncoder(str(student), device="cpu").encode([q])
    assert not np.allclose(trained, BiEncoder(str(tiny_bi), device="cpu").encode([q]), atol=1e-4)

    # score-teacher scores each pair as the student's query tower . the recorded document tower's embedding, with
    # the corpus index (shared cache) or each chunk's documents embedded on the fly.
    run = read_run(SAMPLE / "run.trec")
    scored = cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--embeddings-cache", index,
                 input=(SAMPLE / "run.trec").read_text())
    assert scored.exit_code == 0, scored.stderr
    on_the_fly = cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--doc-embeddings", "run",
                     input=(SAMPLE / "run.trec").read_text())
    assert on_the_fly.exit_code == 0, on_the_fly.stderr
    a, b = _parse(scored.stdout), _parse(on_the_fly.stdout)
    assert a.keys() == b.keys() == {(qid, d) for qid, docs in run.items() for d in docs}
    assert all(abs(a[k] - b[k]) < 1e-4 for k in a)
    # A run's sidecar names the student as the model that scored it (eval --card attributes runs by it), and its
    # document tower beside it.
    named = tmp_path / "named.trec"
    assert cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--embeddings-cache", index,
               "-o", named, SAMPLE / "run.trec").exit_code == 0
    teacher = json.loads(Path(f"{named}.meta.json").read_text())["teacher"]
    assert teacher["model"] == str(student) and teacher["document_tower"]["model"] == str(tiny_bi)
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in Path(Q).read_text().splitlines()}
    ids = [json.loads(line)["_id"] for line in Path(C).read_text().splitlines()]
    qid, doc = next(iter(a))
    expected = float(trained[0] @ want[ids.index(doc)]) if queries[qid] == q else None
    if expected is not None:
        assert abs(a[(qid, doc)] - expected) < 1e-4


def _parse(text: str) -> dict[tuple[str, str], float]:
    return {(f[0], f[2]): float(f[4]) for f in (line.split() for line in text.splitlines())}


def test_other_towers_are_refused(cli, tmp_path: Path, tiny_bi: Path, tiny_cross: Path) -> None:
    index = tmp_path / "index"
    assert _train(cli, tiny_bi, tmp_path / "a", "--doc-index", index).exit_code == 0
    # An index made at another length (another setting of the same model) is refused, not silently used.
    other = cli("train", "--student", "bi", "--frozen-documents", "--model", tiny_bi, "--queries", Q, "--corpus", C,
                "--loss", "kl", "--max-steps", "1", "--max-doc-length", "32", "--doc-index", index,
                "--out", tmp_path / "b", input=sample_groups())
    assert other.exit_code == 2 and "built with other settings" in other.stderr and "max_length" in other.stderr
    cross = cli("train", "--student", "cross", "--frozen-documents", "--model", tiny_cross, "--queries", Q,
                "--corpus", C, "--max-steps", "1", "--out", tmp_path / "c", input=sample_groups())
    assert cross.exit_code == 2 and "needs --student bi" in cross.stderr
    # Scoring at another document length, or with a document tower whose weights changed, is refused.
    student = tmp_path / "a"
    length = cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--max-doc-length", "32",
                 "--doc-embeddings", "run", input=(SAMPLE / "run.trec").read_text())
    assert length.exit_code == 2 and "embedded by" in length.stderr and length.stderr.count("\n") == 1
    record = json.loads((student / DOCUMENTS_FILE).read_text())
    record["weights_sha256"] = "0" * 64
    (student / DOCUMENTS_FILE).write_text(json.dumps(record))
    changed = cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--doc-embeddings", "run",
                  input=(SAMPLE / "run.trec").read_text())
    assert changed.exit_code == 2 and "not the ones the student was trained against" in changed.stderr
    (student / DOCUMENTS_FILE).write_text("{not json")
    broken = cli("score-teacher", "--model", student, "--queries", Q, "--corpus", C, "--doc-embeddings", "run",
                 input=(SAMPLE / "run.trec").read_text())
    assert broken.exit_code == 2 and DOCUMENTS_FILE in broken.stderr
