"""rdistill score-teacher through the CLI: scores against the model run directly, kinds, positives, shards, and a
real kill -9 in the middle of a job followed by --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT, SAMPLE

QUERIES = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").open()}
DOCS = {}
for _line in (SAMPLE / "corpus.jsonl").open():
    _obj = json.loads(_line)
    DOCS[_obj["_id"]] = f"{_obj['title']} {_obj['text']}" if _obj.get("title") else _obj["text"]
RUN = (SAMPLE / "run.trec").read_text()


def parse(text: str) -> list[tuple[str, str, int, float, str]]:
    rows = []
    for line in text.splitlines():
        qid, _, doc, rank, score, tag = line.split()
        rows.append((qid, doc, int(rank), float(score), tag))
    return rows


def pairs_of(text: str) -> dict[tuple[str, str], float]:
    return {(q, d): s for q, d, _, s, _ in parse(text)}


def direct_cross(model_dir: Path, pairs: list[tuple[str, str]]) -> list[float]:
    """The teacher's scores computed one pair at a time (no padding), straight from transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rdistill.models import cut_texts

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.inference_mode():
        for qid, doc in pairs:
            q = cut_texts(tok, [QUERIES[qid]], 30)
            d = cut_texts(tok, [DOCS[doc]], 200)
            logits = model(**tok(q, d, return_tensors="pt")).logits[0]
            out.append(float(logits[0]) if logits.shape[0] == 1 else float(torch.log_softmax(logits, -1)[1]))
    return out


def test_contract_cross_encoder_two_labels(cli, tiny_cross: Path) -> None:
    result = cli("score-teacher", "--model", tiny_cross, "--queries", SAMPLE / "queries.jsonl",
                 "--corpus", SAMPLE / "corpus.jsonl", input=RUN)
    assert result.exit_code == 0, result
    rows = parse(result.stdout)
    assert {(q, d) for q, d, *_ in rows} == set(pairs_of(RUN))
    assert {tag for *_, tag in rows} == {tiny_cross.name}
    for qid in {q for q, *_ in rows}:
        mine = [(s, d, r) for q, d, r, s, _ in rows if q == qid]
        assert [r for *_, r in mine] == list(range(1, len(mine) + 1))
        assert [s for s, *_ in mine] == sorted((s for s, *_ in mine), reverse=True)
    got = pairs_of(result.stdout)
    keys = sorted(got)
    assert [got[k] for k in keys] == pytest.approx(direct_cross(tiny_cross, keys), abs=1e-5)
    assert all(s <= 0 for s in got.values())  # log P(relevant)


def test_one_logit_head_scores_its_logit(cli, tiny_cross_1logit: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.trec"
    result = cli("score-teacher", "--model", tiny_cross_1logit, "--queries", SAMPLE / "queries.jsonl",
                 "--corpus", SAMPLE / "corpus.jsonl", "--batch-size", "3", "-o", out, SAMPLE / "run.trec")
    assert result.exit_code == 0, result
    got = pairs_of(out.read_text())
    keys = sorted(got)
    assert [got[k] for k in keys] == pytest.approx(direct_cross(tiny_cross_1logit, keys), abs=1e-5)
    meta = json.loads((tmp_path / "s.trec.meta.json").read_text())
    assert meta["teacher"]["kind"] == "cross" and meta["pairs"] == len(keys)
    assert not (tmp_path / "s.trec.partial").exists()


def test_bi_encoder_teacher_dot_and_cos_with_cached_embeddings(cli, tiny_bi: Path, tmp_path: Path) -> None:
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    cache = tmp_path / "emb"
    args = ["score-teacher", "--model", tiny_bi, "--queries", SAMPLE / "queries.jsonl", "--corpus",
            SAMPLE / "corpus.jsonl", "--embeddings-cache", cache]
    dot = cli(*args, input=RUN)
    assert dot.exit_code == 0, dot
    stamp = (cache / "embeddings.npy").stat().st_mtime_ns
    cos = cli(*args, "--similarity", "cos", input=RUN)
    assert cos.exit_code == 0, cos
    assert (cache / "embeddings.npy").stat().st_mtime_ns == stamp  # computed once, reused

    tok = AutoTokenizer.from_pretrained(tiny_bi)
    model = AutoModel.from_pretrained(tiny_bi).eval()

    def emb(text: str) -> np.ndarray:  # no sentence-transformers config: CLS pooling, no normalisation
        with torch.inference_mode():
            return model(**tok([text], truncation=True, max_length=512, return_tensors="pt")).last_hidden_state[0, 0]

    for (qid, doc), score in pairs_of(dot.stdout).items():
        q, d = emb(QUERIES[qid]).double(), emb(DOCS[doc]).double()
        assert score == pytest.approx(float(q @ d), abs=1e-4)
        assert pairs_of(cos.stdout)[qid, doc] == pytest.approx(float(q @ d / (q.norm() * d.norm())), abs=1e-5)


def test_bi_encoder_run_embeddings_score_as_the_corpus_index(cli, tiny_bi: Path, tmp_path: Path) -> None:
    """--doc-embeddings run embeds only the run's documents, caches nothing, and scores as the corpus index does."""
    args = ["score-teacher", "--model", tiny_bi, "--queries", SAMPLE / "queries.jsonl", "--corpus",
            SAMPLE / "corpus.jsonl"]
    indexed = cli(*args, "--embeddings-cache", tmp_path / "emb", input=RUN)
    per_run = cli(*args, "--doc-embeddings", "run", "--embeddings-cache", tmp_path / "unused", input=RUN)
    assert indexed.exit_code == 0 and per_run.exit_code == 0, (indexed, per_run)
    assert not (tmp_path / "unused").exists()
    a, b = pairs_of(indexed.stdout), pairs_of(per_run.stdout)
    assert a.keys() == b.keys()
    assert all(b[k] == pytest.approx(a[k], abs=1e-4) for k in a)
    bad = cli(*args, "--doc-embeddings", "some", input=RUN)
    assert bad.exit_code == 2 and "--doc-embeddings" in bad.stderr


def test_forced_kind_and_minilm_settings(cli, tiny_cross: Path, minilm_path: Path, tmp_path: Path) -> None:
    forced = cli("score-teacher", "--model", tiny_cross, "--kind", "bi", "--queries", SAMPLE / "queries.jsonl",
                 "--corpus", SAMPLE / "corpus.jsonl", "-o", tmp_path / "f.trec", input=RUN)
    assert forced.exit_code == 0, forced
    assert json.loads((tmp_path / "f.trec.meta.json").read_text())["teacher"]["kind"] == "bi"
    mini = cli("score-teacher", "--model", minilm_path, "--queries", SAMPLE / "queries.jsonl", "--corpus",
               SAMPLE / "corpus.jsonl", "-o", tmp_path / "m.trec", input=RUN)
    assert mini.exit_code == 0, mini
    teacher = json.loads((tmp_path / "m.trec.meta.json").read_text())["teacher"]
    assert (teacher["kind"], teacher["pooling"], teacher["normalize"], teacher["max_length"]) == ("bi", "mean",
                                                                                               True, 256)
    assert all(-1 - 1e-6 <= s <= 1 + 1e-6 for s in pairs_of((tmp_path / "m.trec").read_text()).values())


def test_qrels_add_positives_to_each_pool(cli, tiny_cross: Path) -> None:
    qrels = {(q, d) for q, _, d, rel in (line.split() for line in (SAMPLE / "qrels.txt").read_text().splitlines())
             if int(rel) > 0}
    # The sample run holds every positive; drop them from the input so --qrels has something to add back.
    run = "".join(line + "\n" for line in RUN.splitlines() if tuple(line.split()[0:3:2]) not in qrels)
    result = cli("score-teacher", "--model", tiny_cross, "--queries", SAMPLE / "queries.jsonl", "--corpus",
                 SAMPLE / "corpus.jsonl", "--qrels", SAMPLE / "qrels.txt", input=run)
    assert result.exit_code == 0, result
    run_queries = {q for q, _ in pairs_of(run)}
    expect = set(pairs_of(run)) | {(q, d) for q, d in qrels if q in run_queries}
    assert expect - set(pairs_of(run))
    assert set(pairs_of(result.stdout)) == expect


def test_shards_and_torchrun_ranks_split_the_job(cli, tiny_cross: Path, tmp_path: Path, monkeypatch) -> None:
    args = ["score-teacher", "--model", tiny_cross, "--queries", SAMPLE / "queries.jsonl", "--corpus",
            SAMPLE / "corpus.jsonl"]
    whole = cli(*args, input=RUN)
    parts = [cli(*args, "--shard", f"{i}/2", input=RUN) for i in range(2)]
    assert all(p.exit_code == 0 for p in parts)
    assert sorted(parts[0].stdout.splitlines() + parts[1].stdout.splitlines()) == sorted(whole.stdout.splitlines())
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    rank = cli(*args, "-o", tmp_path / "t.trec", input=RUN)
    assert rank.exit_code == 0, rank
    assert (tmp_path / "t.trec.shard1-of-2").read_text() == parts[1].stdout


def test_errors_are_one_line(cli, tiny_cross: Path) -> None:
    args = ["score-teacher", "--model", tiny_cross, "--queries", SAMPLE / "queries.jsonl", "--corpus",
            SAMPLE / "corpus.jsonl"]
    for extra, text, words in (([], "q1 Q0 nope 1 1.0 x\n", "nope"), ([], "q404 Q0 d1 1 1.0 x\n", "q404"),
                               (["--resume"], RUN, "-o"), (["--kind", "tri"], RUN, "--kind")):
        result = cli(*args, *extra, input=text)
        assert result.exit_code == 2, (extra, result)
        assert result.stderr.startswith("rdistill: error:") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def cranfield_run(n_docs: int = 8) -> str:
    """A fixed run over all 225 cranfield queries: n_docs documents each (1,800 pairs), no retrieval needed."""
    docs = [json.loads(line)["_id"] for line in (DATA / "cranfield" / "corpus.jsonl").open()]
    qids = [json.loads(line)["_id"] for line in (DATA / "cranfield" / "queries.jsonl").open()]
    lines = []
    for i, qid in enumerate(qids):
        for r in range(n_docs):
            doc = docs[(i * 7 + r * 31) % len(docs)]
            lines.append(f"{qid} Q0 {doc} {r + 1} {float(n_docs - r)!r} bm25\n")
    return "".join(lines)


def test_kill_9_mid_job_then_resume_is_byte_identical(tiny_cross: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_text(cranfield_run())
    base = [sys.executable, "-m", "rdistill", "score-teacher", "--model", str(tiny_cross), "--queries",
            str(DATA / "cranfield"), "--corpus", str(DATA / "cranfield"), "--chunk-pairs", "40", "--batch-size",
            "8", str(run)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed.trec"
    partial = tmp_path / "killed.trec.partial"
    proc = subprocess.Popen([*base, "-o", str(killed)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if partial.exists() and partial.read_bytes().count(b"#chunk") >= 2:
            break
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists()
    done_before = partial.read_bytes().count(b"#chunk")
    assert done_before < 45  # 1,800 pairs in chunks of 40: the kill landed mid-job

    resumed = subprocess.run([*base, "-o", str(killed), "--resume"], env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()
    whole = tmp_path / "whole.trec"
    fresh = subprocess.run([*base, "-o", str(whole)], env=env, capture_output=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr.decode()
    assert killed.read_bytes() == whole.read_bytes()
    assert len(killed.read_text().splitlines()) == 1800
    meta = json.loads((tmp_path / "killed.trec.meta.json").read_text())
    assert meta["resumed_chunks"] >= done_before >= 2


def test_bm25_teacher_scores_equal_retrieve(cli, tmp_path: Path) -> None:
    """--model bm25 re-scores pairs from retrieve's own index: retrieve's scores for its top k, and with --qrels
    the judged positives outside the run get their BM25 scores too (those of a run deep enough to hold them)."""
    cran = DATA / "cranfield"
    common = ["--corpus", cran, "--queries", cran, "--split", "test", "--index", tmp_path / "idx"]
    top = cli("retrieve", *common, "--k", "30")
    deep = cli("retrieve", *common, "--k", "1400")
    assert top.exit_code == deep.exit_code == 0, (top, deep)
    scored = cli("score-teacher", "--model", "bm25", "--index", tmp_path / "idx", "--queries", cran, "--corpus",
                 cran, "--qrels", cran, "--split", "test", "-o", tmp_path / "scored.trec", input=top.stdout)
    assert scored.exit_code == 0, scored
    got = pairs_of((tmp_path / "scored.trec").read_text())
    want, everything = pairs_of(top.stdout), pairs_of(deep.stdout)
    assert want.keys() <= got.keys()
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-9
    added = got.keys() - want.keys()
    assert added  # judged positives BM25 ranks below 30
    assert all(abs(got[k] - everything.get(k, 0.0)) <= 1e-9 for k in added)  # 0 where no query term occurs
    meta = json.loads((tmp_path / "scored.trec.meta.json").read_text())
    assert meta["teacher"]["kind"] == "bm25" and meta["pairs"] == len(got) and meta["wall_seconds"] > 0
    # Without --index the index is built once in rdistill's cache: the same scores.
    cached = cli("score-teacher", "--model", "bm25", "--queries", cran, "--corpus", cran, input=top.stdout)
    assert cached.exit_code == 0, cached
    assert pairs_of(cached.stdout) == pytest.approx(want, abs=1e-9)
    bad = cli("score-teacher", "--model", "all-MiniLM-L6-v2", "--index", tmp_path / "idx", "--queries", cran,
              "--corpus", cran, input=top.stdout)
    assert bad.exit_code == 2 and "--index and --bm25-variant apply to --model bm25" in bad.stderr


def test_bf16_on_the_cpu_is_autocast_with_fp32_heads(cli, tiny_cross: Path, tiny_cross_1logit: Path, tiny_bi: Path,
                                                      tmp_path: Path) -> None:
    # --dtype bf16 on the CPU: fp32 weights under bf16 autocast (products in bf16), the classification head in
    # fp32, so the scores stay close to fp32's and are not bf16 numbers; the engine says so in the sidecar (it also
    # keys embedding caches, which must not mix fp32 and bf16 embeddings).
    import torch

    for model, extra in ((tiny_cross, []), (tiny_cross_1logit, []), (tiny_bi, ["--doc-embeddings", "run"])):
        fp32 = cli("score-teacher", "--model", model, *extra, "--queries", SAMPLE / "queries.jsonl", "--corpus",
                   SAMPLE / "corpus.jsonl", input=RUN)
        out = tmp_path / f"{model.name}.bf16.trec"
        bf16 = cli("score-teacher", "--model", model, "--dtype", "bf16", *extra, "--queries",
                   SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl", "-o", out, SAMPLE / "run.trec")
        assert fp32.exit_code == 0 and bf16.exit_code == 0, (fp32, bf16)
        want, got = pairs_of(fp32.stdout), pairs_of(out.read_text())
        assert got.keys() == want.keys() and got != want
        assert max(abs(got[k] - want[k]) for k in want) < 0.05 * max(abs(v) for v in want.values())
        assert json.loads(out.with_name(out.name + ".meta.json").read_text())["teacher"]["engine"] == \
            "torch-bf16-autocast"
        if model == tiny_cross_1logit:  # the score is the head's logit: fp32, so not all bf16-representable
            assert any(float(torch.tensor(v).bfloat16()) != v for v in got.values())


def test_embedding_cache_outlives_a_touched_corpus_and_follows_a_changed_one(cli, tiny_bi: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus embeddings cache (no --embeddings-cache): a corpus file touched with the same bytes keeps its
    entry (no re-embedding); one whose bytes changed at the same size is embedded again in the same entry, and its
    scores follow the new text. Never a refusal: it is a cache."""
    import os

    monkeypatch.setenv("RDISTILL_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes((SAMPLE / "corpus.jsonl").read_bytes())
    args = ["score-teacher", "--model", tiny_bi, "--queries", SAMPLE / "queries.jsonl", "--corpus", corpus]
    first = cli(*args, input=RUN)
    assert first.exit_code == 0, first
    entries = list((tmp_path / "cache" / "teacher-embeddings").iterdir())
    assert len(entries) == 1
    stamp = (entries[0] / "embeddings.npy").stat().st_mtime_ns
    later = corpus.stat().st_mtime_ns + 5 * 10**9
    os.utime(corpus, ns=(later, later))
    touched = cli(*args, input=RUN)
    assert touched.exit_code == 0 and touched.stdout == first.stdout, touched
    assert (entries[0] / "embeddings.npy").stat().st_mtime_ns == stamp  # reused, not embedded again
    assert list((tmp_path / "cache" / "teacher-embeddings").iterdir()) == entries  # and no second entry made
    text = corpus.read_bytes()
    at = text.index(b'"text": "') + len(b'"text": "')
    corpus.write_bytes(text[:at] + (b"Z" if text[at:at + 1] != b"Z" else b"Y") + text[at + 1:])  # same size
    os.utime(corpus, ns=(later + 10**9, later + 10**9))
    changed = cli(*args, input=RUN)
    assert changed.exit_code == 0, changed
    assert [p.name for p in (tmp_path / "cache" / "teacher-embeddings").iterdir()] == [entries[0].name]
    assert (entries[0] / "embeddings.npy").stat().st_mtime_ns != stamp and changed.stdout != first.stdout
