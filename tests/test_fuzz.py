"""Property-based fuzzing of every reader and writer pair (hypothesis), in-process and through the CLI.

The properties, for every format (runs, qrels, groups, corpora, queries, the authors' triples and scores):

1. Every file a writer emits, its reader accepts and reads back equal.
2. No input yields a traceback: a reader either returns or raises one located ``InputError`` (one line, naming
   the file, and the line where there is one).
3. A benign mutation (a BOM, CRLF line ends, gzip, blank lines, tabs for spaces) reads back equal to the clean
   input; a detectable fault (a non-finite number, an id with whitespace / a NUL / a control character / a BOM
   inside it, the same id twice where ids are keys, another encoding) is refused; a mutation no reader can tell
   from valid data (a byte flipped into another digit, a line cut inside its tag) may be accepted, but what is
   accepted then reads back equal through the writer (never something its own writer cannot reproduce).

Seeded (``derandomize``) and bounded: the default profile keeps these to seconds; ``make fuzz`` runs the same
properties with many more examples (``RDISTILL_FUZZ=long``: 2000 a property).
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdistill.errors import InputError, RdistillError
from rdistill.schema import Document, Group, QrelRow, Query

LONG = os.environ.get("RDISTILL_FUZZ") == "long"
# Per test, not a global profile: the other modules' property tests keep their own settings.
FUZZ = settings(max_examples=2000 if LONG else 25, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLI_EXAMPLES = 300 if LONG else 4
ROOT = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------------------------- generators

# Ids as every reader must accept them: printable, no whitespace; short, some non-ASCII, now and then very long.
_ID_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"))
_short_id = st.text(_ID_CHARS, min_size=1, max_size=8).filter(lambda s: s.isprintable()
                                                               and not any(c.isspace() for c in s))
ids = st.one_of(_short_id, _short_id, _short_id, _short_id.map(lambda s: (s * 2000)[:3000]))
scores = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def runs(draw: Any) -> dict[str, dict[str, float]]:
    qids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    return {q: draw(st.dictionaries(ids, scores, min_size=1, max_size=5)) for q in qids}


@st.composite
def qrels(draw: Any) -> dict[str, dict[str, int]]:
    qids = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    return {q: draw(st.dictionaries(ids, st.integers(-1, 3), min_size=1, max_size=5)) for q in qids}


@st.composite
def groups(draw: Any) -> list[Group]:
    out = []
    for _ in range(draw(st.integers(1, 4))):
        docs = draw(st.lists(ids, min_size=2, max_size=5, unique=True))
        labels = [draw(st.integers(1, 3)), *draw(st.lists(st.integers(-1, 3), min_size=len(docs) - 1,
                                                         max_size=len(docs) - 1))]
        group_scores = draw(st.none() | st.lists(scores, min_size=len(docs), max_size=len(docs)))
        out.append(Group(draw(ids), docs, labels, group_scores, draw(st.dictionaries(_short_id, st.integers(-(1 << 63), (1 << 63) - 1),
                                                                                     max_size=2))))
    return out


@st.composite
def corpora(draw: Any) -> list[Document]:
    doc_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    return [Document(d, draw(texts), draw(texts)) for d in doc_ids]


@st.composite
def query_sets(draw: Any) -> list[Query]:
    qids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    return [Query(q, draw(texts)) for q in qids]


# ------------------------------------------------------------------------------------- writers and readers


def _beir(folder: Path, docs: list[Document] = (), queries: list[Query] = (),  # type: ignore[assignment]
          judged: list[QrelRow] = ()) -> None:  # type: ignore[assignment]
    from rdistill.datasets import Recipe, write_beir

    write_beir(folder, Recipe("fuzz", ("test",), split_of=lambda _q: "test", relevance=lambda r: r), docs, queries,
               {"test": judged})


def write_run_file(path: Path, run: dict[str, dict[str, float]]) -> None:
    from rdistill.io import open_output, write_run

    with open_output(path) as out:
        write_run(out, run, tag="fuzz")


def read_run_all(path: Path) -> dict[str, dict[str, float]]:
    """Every run reader on one file; they must agree."""
    from rdistill.io import iter_run_queries, read_run, read_run_table

    a = read_run(path)
    table = read_run_table(path)
    b: dict[str, dict[str, float]] = {}
    for i, doc, score in zip(table.query_index.tolist(), table.docs, table.scores.tolist(), strict=True):
        b.setdefault(table.queries[i], {})[doc] = score
    c = dict(iter_run_queries(path))
    assert a == b == c, "the run readers disagree"
    return a


def write_qrels_file(path: Path, judged: dict[str, dict[str, int]]) -> None:
    folder = path.parent / (path.name + ".beir")
    _beir(folder, judged=[QrelRow(q, d, r) for q, docs in judged.items() for d, r in docs.items()])
    path.write_bytes((folder / "qrels" / "test.tsv").read_bytes())


def read_qrels_file(path: Path) -> dict[str, dict[str, int]]:
    from rdistill.io import read_qrels

    return read_qrels(path)


def write_groups_file(path: Path, records: list[Group]) -> None:
    from rdistill.io import open_output
    from rdistill.sampling import write_groups

    with open_output(path) as out:
        write_groups(out, records)


def read_groups_file(path: Path) -> list[Group]:
    from rdistill.io import iter_groups

    return sorted((g for _, g in iter_groups(path)), key=lambda g: (g.query_id, g.doc_ids[0]))


def _sorted_groups(records: list[Group]) -> list[Group]:
    # write_groups orders by (query id, positive): the same key for two groups keeps their input order
    return sorted(records, key=lambda g: (g.query_id, g.doc_ids[0]))


def write_corpus_file(path: Path, docs: list[Document]) -> None:
    folder = path.parent / (path.name + ".beir")
    _beir(folder, docs=docs)
    path.write_bytes((folder / "corpus.jsonl").read_bytes())


def read_corpus_file(path: Path) -> list[Document]:
    """What the commands read: every document, and no id twice (BM25's and the docstore's check)."""
    from rdistill.data import check_unique_ids, iter_corpus
    from rdistill.docstore import id_hash

    docs = list(iter_corpus(str(path)))
    check_unique_ids(str(path), [id_hash(d.doc_id) for d in docs])
    return docs


def write_queries_file(path: Path, queries: list[Query]) -> None:
    folder = path.parent / (path.name + ".beir")
    _beir(folder, queries=queries)
    path.write_bytes((folder / "queries.jsonl").read_bytes())


def read_queries_file(path: Path) -> dict[str, str]:
    from rdistill.data import load_queries

    return load_queries(str(path))


FORMATS: dict[str, tuple[Any, Callable[[Path, Any], None], Callable[[Path], Any], Callable[[Any], Any]]] = {
    # name: (strategy, writer, reader, what the reader should give for the records written)
    "run": (runs(), write_run_file, read_run_all, lambda r: r),
    "qrels": (qrels(), write_qrels_file, read_qrels_file, lambda r: r),
    "groups": (groups(), write_groups_file, read_groups_file, _sorted_groups),
    "corpus": (corpora(), write_corpus_file, read_corpus_file, lambda d: d),
    "queries": (query_sets(), write_queries_file, read_queries_file, lambda q: {x.query_id: x.text for x in q}),
}
TREC = ("run", "qrels")  # line formats of whitespace-separated fields


def read_or_error(reader: Callable[[Path], Any], path: Path) -> tuple[Any, InputError | None]:
    """The reader's result, or its error, which must be one located line (anything else fails the test)."""
    try:
        return reader(path), None
    except RdistillError as exc:
        message = str(exc)
        assert "\n" not in message, f"a multi-line error: {message!r}"
        assert isinstance(exc, InputError) and message.startswith(str(path)), f"an error naming no file: {message}"
        return None, exc


# ------------------------------------------------------------------------------------------------ mutations


def benign(fmt: str, data: bytes, how: str) -> bytes:
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "blank-lines":
        return b"\n" + data.replace(b"\n", b"\n\n", 2) + b"\n  \n"
    if how == "tabs" and fmt in TREC:
        return data.replace(b" ", b"\t")
    if how == "trailing-space" and fmt in TREC:
        return data.replace(b"\n", b" \t\n")
    return data


BENIGN = ("bom", "crlf", "gzip", "blank-lines", "tabs", "trailing-space")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def refused(fmt: str, data: bytes, how: str, pick: int, junk: str) -> bytes | None:
    """A mutation every reader must refuse, or None where it cannot apply to this file."""
    lines = _lines(data)
    body = [i for i, line in enumerate(lines) if line and not line.startswith(b"query-id\t")]
    if not body:
        return None
    i = body[pick % len(body)]
    line = lines[i]
    if how == "non-finite":
        if fmt == "run":
            fields = line.split(b" ")
            fields[4] = junk.encode()
            lines[i] = b" ".join(fields)
        elif fmt == "groups":
            obj = orjson.loads(line)
            if obj["scores"] is None:
                return None
            lines[i] = orjson.dumps(obj).replace(b'"scores":[', b'"scores":[' + junk.replace("nan", "NaN").encode()
                                                 + b",", 1)
        else:
            return None
    elif how in ("space-in-id", "tab-in-id", "nul-in-id", "bom-in-id", "control-in-id"):
        char = {"space-in-id": " ", "tab-in-id": "\t", "nul-in-id": "\0", "bom-in-id": "\ufeff",
                "control-in-id": "\x07"}[how]
        if fmt == "qrels" and char.isspace():
            return None  # "q x d 1" is a valid TREC qrels line: a space in a BEIR id cannot be told from a field
        if fmt in TREC:
            fields = line.decode().split()
            fields[0] = fields[0][:1] + char + (fields[0][1:] or "x")  # inside the id, never at its end
            lines[i] = " ".join(fields).encode()
        else:
            obj = orjson.loads(line)
            key = "query_id" if fmt == "groups" else "_id"
            obj[key] = obj[key][:1] + char + (obj[key][1:] or "x")
            lines[i] = orjson.dumps(obj)
    elif how == "duplicate":
        if fmt in ("run", "corpus", "queries"):  # ids are keys: the same one twice is ambiguous
            lines.insert(i + 1, line)
        elif fmt == "qrels":  # the same pair again with another grade
            fields = line.split(b"\t")
            fields[-1] = str(int(fields[-1]) + 1).encode()
            lines.insert(i + 1, b"\t".join(fields))
        else:  # a group listing its positive again among its negatives
            obj = orjson.loads(line)
            obj["doc_ids"].append(obj["doc_ids"][0])
            obj["labels"].append(0)
            if obj["scores"] is not None:
                obj["scores"].append(0.0)
            lines[i] = orjson.dumps(obj)
    elif how == "utf-16":
        return data.decode("utf-8").encode("utf-16")
    elif how == "fractional-label":
        if fmt == "qrels":
            fields = line.split(b"\t")
            fields[-1] += b".5"
            lines[i] = b"\t".join(fields)
        elif fmt == "groups":
            obj = orjson.loads(line)
            obj["labels"][-1] = 0.5
            lines[i] = orjson.dumps(obj)
        else:
            return None
    return b"\n".join(lines) + b"\n"


REFUSED = ("non-finite", "space-in-id", "tab-in-id", "nul-in-id", "bom-in-id", "control-in-id", "duplicate",
           "utf-16", "fractional-label")


def blind(data: bytes, how: str, pick: int, value: int) -> bytes:
    """A mutation a reader may or may not be able to tell from valid data."""
    if not data:
        return data
    at = pick % len(data)
    if how == "flip":
        return data[:at] + bytes([data[at] ^ (1 << (value % 8))]) + data[at + 1:]
    if how == "byte":
        return data[:at] + bytes([value % 256]) + data[at + 1:]
    if how == "cut":
        return data[:at]
    if how == "drop-line":
        lines = data.split(b"\n")
        del lines[pick % len(lines)]
        return b"\n".join(lines)
    if how == "swap-fields":
        lines = data.split(b"\n")
        n = pick % len(lines)
        fields = lines[n].split()
        if len(fields) > 2:
            a, b = value % len(fields), (value // 7) % len(fields)
            fields[a], fields[b] = fields[b], fields[a]
            lines[n] = b" ".join(fields)
        return b"\n".join(lines)
    if how == "latin-1":
        return data.decode("utf-8").encode("latin-1", "replace")
    return data


BLIND = ("flip", "byte", "cut", "drop-line", "swap-fields", "latin-1")


# ----------------------------------------------------------------------------------------------- properties


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data())
def test_every_file_a_writer_emits_its_reader_reads_back_equal(fmt: str, data: Any) -> None:
    strategy, write, read, expected = FORMATS[fmt]
    records = data.draw(strategy)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clean.{fmt}"
        write(path, records)
        got, err = read_or_error(read, path)
        assert err is None, f"the writer emitted what its reader refuses: {err}"
        assert got == expected(records)


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data(), how=st.sampled_from(BENIGN))
def test_a_benign_mutation_reads_as_the_clean_input(fmt: str, data: Any, how: str) -> None:
    strategy, write, read, expected = FORMATS[fmt]
    records = data.draw(strategy)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        write(path, records)
        path.write_bytes(benign(fmt, path.read_bytes(), how))
        got, err = read_or_error(read, path)
        assert err is None, f"{how}: a harmless change was refused: {err}"
        assert got == expected(records), how


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data(), how=st.sampled_from(REFUSED), pick=st.integers(0, 1 << 16),
       junk=st.sampled_from(["nan", "inf", "-inf", "1e999"]))
def test_a_detectable_fault_is_refused_at_its_line(fmt: str, data: Any, how: str, pick: int, junk: str) -> None:
    strategy, write, read, _ = FORMATS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        write(path, data.draw(strategy))
        mutated = refused(fmt, path.read_bytes(), how, pick, junk)
        if mutated is None:
            return
        path.write_bytes(mutated)
        got, err = read_or_error(read, path)
        assert err is not None, f"{how}: accepted, as {got!r}"
        if how != "utf-16":  # refused at its first bytes or its first NUL, wherever the line
            assert err.line is not None, f"{how}: refused without a line: {err}"


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data(), how=st.sampled_from(BLIND), pick=st.integers(0, 1 << 16), value=st.integers(0, 1 << 16))
def test_no_input_yields_a_traceback_and_what_is_read_rewrites_equal(fmt: str, data: Any, how: str, pick: int,
                                                                     value: int) -> None:
    strategy, write, read, _ = FORMATS[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        write(path, data.draw(strategy))
        path.write_bytes(blind(path.read_bytes(), how, pick, value))
        got, err = read_or_error(read, path)  # any exception but a located InputError fails here
        if err is not None:
            return
        # What was accepted is data the format can hold: its writer writes it and its reader reads that back.
        again = Path(tmp) / f"again.{fmt}"
        if fmt == "run":
            write(again, got)
        elif fmt == "qrels":
            write(again, got)
        elif fmt == "groups":
            write(again, got)
        elif fmt == "corpus":
            write(again, got)
        else:
            write(again, [Query(q, t) for q, t in got.items()])
        back, err2 = read_or_error(read, again)
        assert err2 is None, f"{how}: read, but its writer's copy is refused: {err2}"
        assert back == got


# The authors' triples and scores: convert's writer (to authors) and reader (from authors), in-process


@FUZZ
@given(records=groups())
def test_authors_triples_and_scores_read_back_as_the_groups(records: list[Group]) -> None:
    from rdistill.interchange import convert, load_score_json, read
    from rdistill.io import dumps

    records = [g for g in records if g.scores is not None] or [records[0]._replace(scores=[0.0] * len(records[0]
                                                                                                    .doc_ids))]
    # one group per query: the scores JSON is keyed by (query, document), so two groups of a query share it
    by_query = {g.query_id: g for g in records}
    records = list(by_query.values())
    with tempfile.TemporaryDirectory() as tmp:
        triples, table = Path(tmp) / "t.jsonl", Path(tmp) / "s.json"
        collected: dict[str, dict[str, float]] = {}
        triples.write_text("".join(dumps(r) + "\n" for r in convert(records, "authors", scores_out=collected)))
        table.write_text(dumps(collected))
        back = list(read(str(triples), "authors", load_score_json(str(table))))
        assert [(g.query_id, g.doc_ids, g.scores) for g in back] == [(g.query_id, g.doc_ids, g.scores)
                                                                      for g in records]


@FUZZ
@given(value=st.one_of(st.text(max_size=5), st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
                       st.just(1e300 * 10), st.floats()))
def test_a_scores_json_value_is_a_finite_number_or_a_located_error(value: Any) -> None:
    from rdistill.interchange import load_score_json

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.json"
        path.write_text('{"q1": {"d1": ' + (orjson.dumps(value).decode() if not isinstance(value, float) or
                                             math.isfinite(value) else str(value)) + "}}")
        got, err = read_or_error(load_score_json, path)
        good = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        assert (err is None) == good, (value, got, err)


# ------------------------------------------------------------------------------------------ through the CLI


def _cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "rdistill", *args], input=stdin, capture_output=True, env=env,
                          timeout=120)


def _one_located_line_or_ok(proc: subprocess.CompletedProcess, path: str) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 2), (proc.returncode, err)
    if proc.returncode == 2:
        errors = [line for line in err.splitlines() if line.startswith("rdistill: error: ")]
        assert len(errors) == 1 and (path in errors[0] or "<stdin>" in errors[0]), err


CLI_CASES = {
    # format: (command line before the input, strategy, writer)
    "run": (["entropy"], runs(), write_run_file),
    "groups": (["convert", "--to", "authors", "--scores-out", "/dev/null"], groups(), write_groups_file),
}


@pytest.mark.parametrize("fmt", list(CLI_CASES))
@settings(FUZZ, max_examples=CLI_EXAMPLES)
@given(data=st.data(), how=st.sampled_from(BLIND + REFUSED), pick=st.integers(0, 1 << 16),
       value=st.integers(0, 1 << 16))
def test_cli_ends_in_exit_0_or_one_located_line(fmt: str, data: Any, how: str, pick: int, value: int) -> None:
    argv, strategy, write = CLI_CASES[fmt]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        write(path, data.draw(strategy))
        clean = path.read_bytes()
        mutated = blind(clean, how, pick, value) if how in BLIND else refused(fmt, clean, how, pick, "nan")
        if mutated is None:
            return
        path.write_bytes(mutated)
        proc = _cli(*argv, str(path))
        _one_located_line_or_ok(proc, str(path))
        if how in REFUSED:
            assert proc.returncode == 2, f"{how}: exit 0 on a fault every reader must refuse"


@settings(FUZZ, max_examples=max(3, CLI_EXAMPLES // 2))  # two processes an example
@given(judged=qrels(), how=st.sampled_from(BENIGN))
def test_cli_eval_reads_a_benign_qrels_mutation_as_the_clean_one(judged: dict[str, dict[str, int]],
                                                                 how: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clean, mutated, run = Path(tmp) / "clean.tsv", Path(tmp) / "mutated.tsv", Path(tmp) / "run.trec"
        write_qrels_file(clean, judged)
        mutated.write_bytes(benign("qrels", clean.read_bytes(), how))
        write_run_file(run, {q: {d: float(i) for i, d in enumerate(docs)} for q, docs in judged.items()})
        a = _cli("eval", "--json", "--qrels", str(clean), str(run))
        b = _cli("eval", "--json", "--qrels", str(mutated), str(run))
        assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout


@FUZZ
@given(lines=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30), max_size=12))
def test_numbered_queries_read_back_as_written(lines: list[str]) -> None:
    """`data queries` (a query log to queries JSONL): whatever it writes, the queries reader reads back, one query
    per distinct non-blank line, ids that trace to the line, text with its whitespace collapsed."""
    import io

    from rdistill.data import load_queries, number_queries

    with tempfile.TemporaryDirectory() as tmp:
        log, out = Path(tmp) / "log.txt", Path(tmp) / "queries.jsonl"
        log.write_text("".join(line.replace("\r", " ") + "\n" for line in lines), encoding="utf-8")
        expected: dict[str, str] = {}
        for lineno, line in enumerate(lines, 1):
            text = " ".join(line.replace("\r", " ").split())
            if text and text not in expected.values():
                expected[f"q{lineno}"] = text
        buffer = io.StringIO()
        try:
            number_queries(log, buffer)
        except InputError as exc:
            assert not expected or not all(t.isprintable() for t in expected.values()), exc
            return
        out.write_text(buffer.getvalue(), encoding="utf-8")
        assert load_queries(str(out)) == expected
