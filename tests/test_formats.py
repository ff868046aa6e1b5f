"""Readers and writers of the schema module: strict writing, lenient reading, located errors."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rdistill.errors import InputError
from rdistill.io import format_run_query, iter_run_queries, open_output, read_qrels, read_run, score_texts
from tests.conftest import CONFORMANCE, SAMPLE


def test_run_writer_orders_as_trec_eval_and_reads_back_bit_identical(tmp_path: Path) -> None:
    docs = {"b": 0.1 + 0.2, "a": 0.1 + 0.2, "c": 1e-17, "d": -3.0}
    text = format_run_query("7", docs, "tag")
    assert text.splitlines() == [
        f"7 Q0 b 1 {0.1 + 0.2!r} tag", f"7 Q0 a 2 {0.1 + 0.2!r} tag", "7 Q0 c 3 1e-17 tag", "7 Q0 d 4 -3.0 tag"]
    path = tmp_path / "r.trec"
    path.write_text(text)
    assert read_run(path) == {"7": docs}


def test_score_texts_are_exactly_repr() -> None:
    # The writer's fast float formatting must print what repr prints, digit for digit and notation for notation:
    # random bit patterns cover every exponent, plus BM25-like values, float32-rounded teacher scores, tiny
    # probabilities and the notation boundaries (1e-4, 1e16).
    import numpy as np

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64, size=300_000, dtype=np.uint64).view(np.float64)
    values = np.concatenate([bits[np.isfinite(bits)], rng.random(50_000) * 40, rng.standard_normal(50_000) * 1e-4,
                             (rng.random(50_000) * 40).astype(np.float32).astype(np.float64),
                             [0.0, -0.0, 1e-4, 9.999999999999999e-05, -1e-05, 1e16, 9999999999999998.0, 1e15,
                              5e-324, 1.7976931348623157e308, 0.5, 3.0]]).tolist()
    for start in range(0, len(values), 1000):
        chunk = values[start:start + 1000]
        assert score_texts(chunk) == list(map(repr, chunk))
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="non-finite"):
            score_texts([1.0, bad])


@given(st.dictionaries(st.text("abcxyz0123", min_size=1, max_size=6),
                       st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_run_round_trip_property(docs: dict[str, float]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.trec"
        path.write_text(format_run_query("q", docs, "t"))
        assert read_run(path) == {"q": docs}


def test_reader_accepts_tabs_padding_and_gzip(tmp_path: Path) -> None:
    run = read_run(CONFORMANCE / "results.test")
    assert len(run) == 3 and sum(len(d) for d in run.values()) == 1500
    gz = tmp_path / "r.gz"
    gz.write_bytes(gzip.compress((CONFORMANCE / "results.test").read_bytes()))
    assert read_run(gz) == run
    qrels = read_qrels(CONFORMANCE / "qrels.test")
    assert sum(1 for d in qrels.values() for r in d.values() if r > 0) == 561


@pytest.mark.parametrize("content, message", [
    ("q1 Q0 d1 1 2.0\n", "6 fields"),
    ("q1 Q0 d1 1 abc t\n", "numeric score"),
    ("q1 Q0 d1 1 nan t\n", "finite score"),
    ("q1 Q0 d1 1 1.0 t\nq1 Q0 d1 2 0.5 t\n", "appears twice"),
    ("", "empty input"),
])
def test_bad_runs_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.trec"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_run(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_truncated_gzip_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.trec.gz"
    path.write_bytes(gzip.compress((SAMPLE / "run.trec").read_bytes() * 50)[:-30])
    with pytest.raises(InputError, match="gzip"):
        read_run(path)


def test_streaming_reader_refuses_split_queries(tmp_path: Path) -> None:
    path = tmp_path / "r.trec"
    path.write_text("a Q0 d1 1 1 t\nb Q0 d1 1 1 t\na Q0 d2 2 0 t\n")
    with pytest.raises(InputError, match=r"r.trec:3: query 'a' appears again"):
        list(iter_run_queries(path))


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.trec"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), open_output(target) as out:
        out.write("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.trec"]
    with open_output(tmp_path / "new.trec.gz") as out:
        out.write("x\n")
    assert gzip.decompress((tmp_path / "new.trec.gz").read_bytes()) == b"x\n"


@pytest.mark.parametrize("line, message", [
    ('{"query_id": "q", "doc_ids": ["a"]}', "at least 2 document ids"),
    ('{"query_id": "q", "doc_ids": ["a", "b"], "labels": [0, 1]}', "first document must be the positive"),
    ('{"query_id": "q", "doc_ids": ["a", "b"], "scores": [1.0]}', "null or 2 numbers"),
    ('{"doc_ids": ["a", "b"]}', "missing field 'query_id'"),
])
def test_group_reader_locates_bad_groups(tmp_path: Path, line: str, message: str) -> None:
    from rdistill.io import iter_groups

    path = tmp_path / "g.jsonl"
    path.write_text('{"query_id": 7, "doc_ids": ["a", 2], "scores": [1, 0.5]}\n' + line + "\n")
    with pytest.raises(InputError, match=message) as err:
        list(iter_groups(path))
    assert f"{path}:2:" in str(err.value)


def test_group_reader_fills_labels_and_keeps_ids_as_strings(tmp_path: Path) -> None:
    from rdistill.io import iter_groups

    path = tmp_path / "g.jsonl"
    path.write_text('{"query_id": 7, "doc_ids": ["a", 2], "scores": null}\n')
    [(lineno, group)] = list(iter_groups(path))
    assert (lineno, group.query_id, group.doc_ids, group.labels, group.scores, group.meta) == (
        1, "7", ["a", "2"], [1, 0], None, {})
