"""rdistill retrieve: BM25 against rank_bm25 on cranfield, index reuse, query sources, shards, dense retrieval."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA, SAMPLE

CRAN = DATA / "cranfield"


def run_lines(text: str) -> list[list[str]]:
    return [line.split(" ") for line in text.splitlines()]


def test_tokenizer_is_stated() -> None:
    from rdistill.retrieval.tokenize import Tokenizer, TokenizerSettings

    assert Tokenizer()("The Boundary-Layers were flowing, a x2") == ["boundari", "layer", "were", "flow", "x2"]
    plain = Tokenizer(TokenizerSettings(stemmer="none", stopwords="none"))
    assert plain("The Boundary-Layers were flowing") == ["the", "boundary", "layers", "were", "flowing"]


def test_bm25_equals_rank_bm25_on_cranfield(cli, tmp_path: Path) -> None:
    """Same tokens, same parameters: every score equals BM25Okapi's, and the run is rank_bm25's ranking."""
    from rank_bm25 import BM25Okapi

    from rdistill.data import iter_corpus, load_queries
    from rdistill.io import format_run_query
    from rdistill.retrieval.bm25 import BM25Index, BM25Params
    from rdistill.retrieval.tokenize import Tokenizer

    result = cli("retrieve", "--corpus", CRAN, "--queries", CRAN, "--split", "test", "--k", "100",
                 "--index", tmp_path / "idx")
    assert result.exit_code == 0, result
    tokenize = Tokenizer()
    docs = list(iter_corpus(str(CRAN)))
    tokens = [tokenize(d.full_text) for d in docs]
    reference = BM25Okapi(tokens, k1=1.2, b=0.75, epsilon=0.25)
    index = BM25Index(tmp_path / "idx" / "bm25", BM25Params())
    expected = []
    for qid, text in load_queries(str(CRAN), "test").items():
        query = tokenize(text)
        want = reference.get_scores(query)
        got = index.scores(index.token_ids(text))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
        terms = set(query)
        matched = {d.doc_id: float(s) for d, t, s in zip(docs, tokens, want, strict=True) if terms.intersection(t)}
        expected.append(format_run_query(qid, matched, "bm25", 100))
    assert result.stdout == "".join(expected)


def test_lucene_variant_formula(cli) -> None:
    from rdistill.data import iter_corpus
    from rdistill.retrieval.tokenize import Tokenizer

    result = cli("retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", SAMPLE / "queries.jsonl",
                 "--bm25-variant", "lucene", "--k1", "0.9", "--b", "0.4", "--k", "5")
    assert result.exit_code == 0, result
    tokenize = Tokenizer()
    docs = {d.doc_id: tokenize(d.full_text) for d in iter_corpus(str(SAMPLE / "corpus.jsonl"))}
    n, avgdl = len(docs), sum(map(len, docs.values())) / len(docs)
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").open()}
    rows = run_lines(result.stdout)
    assert rows and all(row[5] == "bm25-lucene" for row in rows)
    for qid, _, doc, _, score, _ in rows:
        total = 0.0
        for term in tokenize(queries[qid]):
            df = sum(term in toks for toks in docs.values())
            tf = docs[doc].count(term)
            if df and tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                total += idf * tf / (tf + 0.9 * (1 - 0.4 + 0.4 * len(docs[doc]) / avgdl))
        assert float(score) == pytest.approx(total, rel=1e-9)


def test_index_reused_and_guarded(cli, tmp_path: Path) -> None:
    args = ["retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", SAMPLE / "queries.tsv", "--k", "3",
            "--index", tmp_path / "idx"]
    first = cli(*args)
    assert first.exit_code == 0, first
    meta = tmp_path / "idx" / "bm25" / "meta.json"
    built = json.loads(meta.read_text())
    assert built["build"]["tokenizer"]["stemmer"] == "english" and built["build"]["k1"] == 1.2
    stamp = meta.stat().st_mtime_ns
    again = cli(*args)
    assert again.stdout == first.stdout and meta.stat().st_mtime_ns == stamp  # reused, not rebuilt
    other = cli(*args, "--stemmer", "porter")
    assert other.exit_code == 2 and "--rebuild" in other.stderr and "stemmer" in other.stderr
    rebuilt = cli(*args, "--stemmer", "porter", "--rebuild")
    assert rebuilt.exit_code == 0 and json.loads(meta.read_text())["build"]["tokenizer"]["stemmer"] == "porter"


def test_queries_from_stdin_and_shards(cli, tmp_path: Path) -> None:
    base = ["retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--k", "4", "--index", tmp_path / "idx"]
    whole = cli(*base, "--queries", SAMPLE / "queries.jsonl")
    assert whole.exit_code == 0, whole
    piped = cli(*base, "--queries", "-", input=(SAMPLE / "queries.jsonl").read_text())
    assert piped.stdout == whole.stdout
    tsv = cli(*base, "--queries", SAMPLE / "queries.tsv")
    assert tsv.stdout == whole.stdout
    parts = [cli(*base, "--queries", SAMPLE / "queries.jsonl", "--shard", f"{i}/2").stdout for i in range(2)]
    assert sorted("".join(parts).splitlines()) == sorted(whole.stdout.splitlines())
    out = tmp_path / "run.trec"
    assert cli(*base, "--queries", SAMPLE / "queries.jsonl", "-o", out).exit_code == 0
    assert out.read_text() == whole.stdout and Path(f"{out}.meta.json").exists()


def test_usage_errors(cli) -> None:
    base = ["retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", SAMPLE / "queries.jsonl"]
    for extra, words in ((["--dense"], "--model"), (["--stemmer", "klingon"], "--stemmer"),
                         (["--bm25-variant", "bm42"], "--bm25-variant"), (["--approx"], "--dense")):
        result = cli(*base, *extra)
        assert result.exit_code == 2 and words in result.stderr, (extra, result)


def test_dense_tiny_model(cli, tmp_path: Path, tiny_bi: Path) -> None:
    args = ["retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", SAMPLE / "queries.jsonl", "--k", "5",
            "--index", tmp_path / "idx", "--dense", "--model", tiny_bi, "--pooling", "mean", "--device", "cpu"]
    exact = cli(*args)
    assert exact.exit_code == 0, exact
    rows = run_lines(exact.stdout)
    assert len(rows) == 4 * 5 and {r[5] for r in rows} == {tiny_bi.name}
    emb = np.load(tmp_path / "idx" / "dense" / "embeddings.npy", mmap_mode="r")
    assert emb.dtype == np.float32 and emb.shape == (12, 32)
    # Scores are inner products of the model's own embeddings.
    from rdistill.models import BiEncoder

    encoder = BiEncoder(str(tiny_bi), pooling="mean", device="cpu")
    q = encoder.encode(["how does BM25 score documents"])[0]
    top = rows[0]
    assert top[0] == "q1" and float(top[4]) == pytest.approx(float(emb[int(top[2][1:]) - 1] @ q), rel=1e-5)
    approx = cli(*args, "--approx")
    assert approx.exit_code == 0 and approx.stdout.splitlines()[0] == exact.stdout.splitlines()[0]
    other = cli(*args[:-7], "--dense", "--model", tiny_bi, "--pooling", "cls", "--device", "cpu")
    assert other.exit_code == 2 and "pooling" in other.stderr


def test_dense_minilm_finds_its_document(cli, tmp_path: Path, minilm_path: Path) -> None:
    """The real all-MiniLM-L6-v2 on 50 cranfield documents: a document's first sentence retrieves it."""
    lines = (CRAN / "corpus.jsonl").read_text().splitlines()[:50]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    picked = [json.loads(line) for line in lines[::5]]
    queries = "".join(f"{d['_id']}\t{d['text'].split(' . ')[0]}\n" for d in picked)
    result = cli("retrieve", "--corpus", corpus, "--queries", "-", "--k", "10", "--dense", "--model", minilm_path,
                 "--device", "cpu", input=queries)
    assert result.exit_code == 0, result
    rows = run_lines(result.stdout)
    firsts = {row[0]: row[2] for row in rows if row[3] == "1"}
    # Cranfield holds near-duplicate abstracts, so a few sentences rank a twin first; none misses its document.
    assert sum(firsts[d["_id"]] == d["_id"] for d in picked) >= 0.7 * len(picked)
    assert all((d["_id"], d["_id"]) in {(r[0], r[2]) for r in rows} for d in picked)
    assert all(0.0 < float(row[4]) <= 1.0 + 1e-6 for row in run_lines(result.stdout))  # normalised: cosine


def test_bm25_segments_merge_to_the_same_index(cli, tmp_path: Path) -> None:
    """Many small segments (forced) and the default budget give the same index files, byte for byte."""
    from rdistill.retrieval.bm25 import BM25Params, build_bm25

    build_bm25(str(CRAN), tmp_path / "many", BM25Params(), show_progress=False, segment_postings=3000)
    result = cli("retrieve", "--corpus", CRAN, "--queries", CRAN, "--split", "test", "--k", "10",
                 "--index", tmp_path / "idx", "--memory", "300M")
    assert result.exit_code == 0, result
    one = tmp_path / "idx" / "bm25"
    assert json.loads((tmp_path / "many" / "meta.json").read_text())["stats"]["segments"] > 20
    assert json.loads((one / "meta.json").read_text())["stats"]["segments"] == 1
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file() and p.name != "meta.json")
    assert files and not any("segment" in f.name for f in (tmp_path / "many").rglob("*"))
    for name in files:
        assert (tmp_path / "many" / name).read_bytes() == (one / name).read_bytes(), name
    bad = cli("retrieve", "--corpus", CRAN, "--queries", CRAN, "--split", "test", "--memory", "lots")
    assert bad.exit_code == 2 and "--memory" in bad.stderr


def test_bm25_hits_equal_full_scores(tmp_path: Path) -> None:
    """Search's sparse and dense paths give the matching documents and their full-array scores, bit for bit."""
    from rdistill.data import load_queries
    from rdistill.retrieval.bm25 import BM25Index, BM25Params

    index = BM25Index.open(str(CRAN), tmp_path / "idx", BM25Params(), show_progress=False)
    n_docs, paths = len(index.ids), set()
    import bm25s

    # The reference: bm25s reading the same files (rdistill reads them itself, without importing bm25s).
    engine = bm25s.BM25.load(tmp_path / "idx" / "bm25s", mmap=True, show_progress=False)
    assert engine.vocab_dict == index.vocab
    indptr, indices = engine.scores["indptr"], engine.scores["indices"]
    rare = np.flatnonzero(np.diff(indptr) < 5)[:3].astype(np.int32)  # terms of a few documents: the sparse path
    queries = [index.token_ids(text) for text in load_queries(str(CRAN), "test").values()]
    for token_ids in [*queries, rare, rare[[0, 0, 1]], np.r_[rare, queries[0][:1]]]:
        docs, values = index.hits(token_ids)
        full = index.scores(token_ids)
        assert np.array_equal(full, engine.get_scores_from_ids(token_ids))
        holding = np.unique(np.concatenate([indices[indptr[t]:indptr[t + 1]] for t in token_ids]))
        assert np.array_equal(docs, holding) and np.array_equal(values, full[docs])
        paths.add(sum(int(indptr[t + 1] - indptr[t]) for t in token_ids) > n_docs // 8)
    assert paths == {True, False}  # both the sparse and the dense path ran


@pytest.mark.parametrize("ids", [
    [f"doc{i}" for i in range(300)],  # ASCII: the fixed-width table
    ["é-1", "doc-2", "日本-3", *[f"d{i}" for i in range(100)]],  # not ASCII: the gather
    ["x", "a-much-longer-id-than-the-others" * 4, *[f"d{i}" for i in range(100)]],  # ragged widths
])
def test_doc_ids_table_and_gather_decode_alike(tmp_path: Path, ids: list[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way of decoding ids (one by one, the fixed-width table, the gather when the table is refused) gives
    the ids the index was built with, in the order asked, repeats included."""
    from rdistill.retrieval import store

    writer = store.DocIdWriter(tmp_path)
    for doc_id in ids:
        writer.add(doc_id)
    writer.close()
    rng = np.random.default_rng(0)
    picks = [np.arange(len(ids)), rng.integers(0, len(ids), 500), np.array([3, 3, 0]), np.zeros(0, dtype=np.int64)]
    table = store.DocIds(tmp_path)
    assert (table.table() is not None) == all(i.isascii() for i in ids)
    monkeypatch.setattr(store, "TABLE_BYTES", 0)  # no table: the gather (and the id-by-id path under 32)
    gather = store.DocIds(tmp_path)
    assert gather.table() is None
    for p in picks:
        want = [ids[i] for i in p.tolist()]
        assert table.many(p) == want and gather.many(p) == want and [table[int(i)] for i in p] == want


@pytest.mark.parametrize("prefix", ["d", "é"])  # ASCII ids: the id table and lexsort; others: the Python sort
def test_bm25_run_is_in_trec_eval_order_whichever_ids(cli, tmp_path: Path, prefix: str) -> None:
    """Ties at every score and at the k-th: the run lists each query's documents by score, then docno, both
    descending, cut at k, the same with or without the id table."""
    from rdistill.retrieval.store import DocIds

    corpus = tmp_path / "corpus.jsonl"
    texts = ["wing lift", "wing lift", "wing", "lift", "wing lift wing", "drag", "wing lift", "lift"]
    corpus.write_text("".join(json.dumps({"_id": f"{prefix}{i}", "text": t}) + "\n" for i, t in enumerate(texts)),
                      encoding="utf-8")
    query = '{"_id": "q", "text": "wing lift"}\n'
    runs = {}
    for k in (4, 100):
        result = cli("retrieve", "--corpus", corpus, "--queries", "-", "--k", k, "--index", tmp_path / "idx",
                     input=query)
        assert result.exit_code == 0, result
        runs[k] = [(r[2], float(r[4])) for r in run_lines(result.stdout)]
    assert (DocIds(tmp_path / "idx" / "bm25").table() is None) == (prefix == "é")
    assert runs[100] == sorted(runs[100], key=lambda r: (r[1], r[0]), reverse=True)
    assert len(runs[100]) == 7 and runs[4] == runs[100][:4]  # "drag" holds no query term


def test_english_stopwords_are_bm25s_list() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    from rdistill.retrieval.tokenize import ENGLISH_STOPWORDS

    assert frozenset(STOPWORDS_EN) == ENGLISH_STOPWORDS


def test_searching_a_built_index_does_not_import_bm25s(tmp_path: Path) -> None:
    # bm25s imports numba and scipy.sparse (~0.2 s of start-up): searching reads its files without it.
    import subprocess
    import sys

    args = ["retrieve", "--corpus", str(SAMPLE / "corpus.jsonl"), "--queries", str(SAMPLE / "queries.jsonl"),
            "--k", "5", "--index", str(tmp_path / "idx")]
    code = ("import sys; from rdistill.cli import main; sys.argv = ['rdistill', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('bm25s', 'numba', 'scipy') if m in sys.modules), file=sys.stderr)")
    built = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    searched = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert searched.stdout == built.stdout and searched.stdout.count("\n") > 0
    assert searched.stderr.strip().splitlines()[-1] == "[]", searched.stderr


def test_trec_order_breaks_score_ties_by_docno_descending() -> None:
    # Many ties (five distinct scores), ids that share prefixes: the order must be sorted()'s on (score, docno).
    from rdistill.retrieval.store import trec_order

    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 60))
        values = rng.integers(0, 5, size=n).astype(np.float64)
        names = np.array([f"d{rng.integers(0, 40)}x{i}" for i in range(n)])
        want = sorted(range(n), key=lambda i: (values[i], names[i]), reverse=True)
        assert trec_order(names, values).tolist() == want


def test_bm25_ranking_arrays_are_search_in_order(tmp_path: Path) -> None:
    from rdistill.data import load_queries
    from rdistill.retrieval.bm25 import BM25Index, BM25Params

    index = BM25Index.open(str(SAMPLE / "corpus.jsonl"), tmp_path / "idx", BM25Params(), show_progress=False)
    for text in load_queries(str(SAMPLE / "queries.jsonl")).values():
        names, scores = index.ranking(text, 3)
        assert list(zip(names.tolist(), scores.tolist(), strict=True)) == list(index.search(text, 3).items())


def test_a_corrupt_index_file_is_a_one_line_error(cli, tmp_path: Path) -> None:
    # Search reads bm25s's files itself, so it must say which one is broken instead of raising a traceback.
    args = ["retrieve", "--corpus", SAMPLE / "corpus.jsonl", "--queries", SAMPLE / "queries.jsonl", "--k", "3",
            "--index", tmp_path / "idx"]
    assert cli(*args).exit_code == 0
    for name, junk in (("vocab.index.json", b"{not json"), ("data.csc.index.npy", b"not an array")):
        [file] = list((tmp_path / "idx").rglob(name))
        saved = file.read_bytes()
        file.write_bytes(junk)
        result = cli(*args)
        assert result.exit_code == 2 and "Traceback" not in result.stderr, result
        assert result.stderr.startswith(f"rdistill: error: {file}: not a readable BM25 index file"), result.stderr
        assert result.stderr.count("\n") == 1
        file.write_bytes(saved)


def test_index_kept_for_a_touched_corpus_refused_for_a_changed_one(cli, tmp_path: Path) -> None:
    """A corpus copied, re-synced or re-downloaded gets a new modification time with the same bytes: its index is
    reused (the content digest recorded at build time says so), not refused mid-pipeline. The same size with other
    bytes is still a changed corpus."""
    corpus = tmp_path / "corpus.jsonl"
    shutil.copy(SAMPLE / "corpus.jsonl", corpus)
    args = ["retrieve", "--corpus", corpus, "--queries", SAMPLE / "queries.jsonl", "--k", "3",
            "--index", tmp_path / "idx"]
    first = cli(*args)
    assert first.exit_code == 0, first
    folder = tmp_path / "idx" / "bm25"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["corpus_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    data = folder / "docids.bin"
    stamp = data.stat().st_mtime_ns
    later = corpus.stat().st_mtime_ns + 5 * 10**9
    os.utime(corpus, ns=(later, later))
    again = cli(*args)
    assert again.exit_code == 0 and again.stdout == first.stdout, again
    assert data.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert json.loads((folder / "meta.json").read_text())["build"]["mtime_ns"] == later  # the next check is free
    text = corpus.read_bytes()
    at = text.index(b"a")
    corpus.write_bytes(text[:at] + b"e" + text[at + 1:])  # same size, other content
    os.utime(corpus, ns=(later + 10**9, later + 10**9))
    changed = cli(*args)
    assert changed.exit_code == 2 and "built with other settings" in changed.stderr and "mtime_ns" in changed.stderr
