"""One catalogue of hostile inputs applied to every command, in the style of csvkit's shared test mixins.

A command joins the catalogue by one line in a table (how to feed it a run, groups, queries or a corpus); it then
gets every check for free: bad input ends with exit 2 and one ``rdistill: error: FILE...`` line naming the file,
never a traceback; a harmless oddity (a UTF-8 BOM, CRLF) gives the clean input's output. Faults (a folder or a full
device as -o, a crafted checkpoint, a non-finite loss, a second job on the same output) follow.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE

RUN = (SAMPLE / "run.trec").read_text()
QRELS = (SAMPLE / "qrels.txt").read_text()
CORPUS = (SAMPLE / "corpus.jsonl").read_text()
QUERIES = (SAMPLE / "queries.jsonl").read_text()
BOM = "\ufeff"
GROUPS = "".join(json.dumps(g) + "\n" for g in (
    {"query_id": "q1", "doc_ids": ["d1", "d11", "d7", "d8"], "labels": [1, 0, 0, 0], "scores": [9.5, 6.25, 4.0, 1.5]},
    {"query_id": "q2", "doc_ids": ["d4", "d5", "d2", "d6"], "labels": [1, 0, 0, 0], "scores": [7.75, 3.5, 3.5, 0.5]},
    {"query_id": "q3", "doc_ids": ["d12", "d3", "d7", "d1"], "labels": [1, 0, 0, 0], "scores": [8.0, 5.5, 1.0, 0.1]},
))

# ------------------------------------------------------------------------------------------- the command tables

# name -> argv before the run's path (the run is the last argument)
RUN_READERS: dict[str, Callable[[dict[str, Path]], list[str]]] = {
    "eval": lambda f: ["eval", "--json", "--qrels", str(SAMPLE / "qrels.txt")],
    "entropy": lambda f: ["entropy"],
    "sample": lambda f: ["sample", "--strategy", "window", "--window", "1:4", "-G", "3", "--qrels",
                         str(SAMPLE / "qrels.txt")],
    "locality": lambda f: ["locality", "--coverage-against", str(SAMPLE / "run.trec"), "--corpus",
                           str(SAMPLE / "corpus.jsonl")],
    "score-teacher": lambda f: ["score-teacher", "--model", str(f["cross"]), "--queries", str(SAMPLE / "queries.jsonl"),
                                "--corpus", str(SAMPLE / "corpus.jsonl"), "--device", "cpu"],
}
GROUPS_READERS: dict[str, Callable[[dict[str, Path]], list[str]]] = {
    "entropy": lambda f: ["entropy"],
    "locality": lambda f: ["locality", "--coverage-against", str(SAMPLE / "run.trec"), "--corpus",
                           str(SAMPLE / "corpus.jsonl")],
    "convert": lambda f: ["convert"],
    "train": lambda f: ["train", "--model", str(f["cross"]), "--queries", str(SAMPLE / "queries.jsonl"), "--corpus",
                        str(SAMPLE / "corpus.jsonl"), "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1",
                        "--device", "cpu", "--out", str(f["tmp"] / "student")],
}
# name -> argv with {corpus} / {queries} placeholders
TEXT_READERS: dict[str, list[str]] = {
    "retrieve": ["retrieve", "--corpus", "{corpus}", "--queries", "{queries}", "--index", "{tmp}/idx"],
    "score-teacher": ["score-teacher", "--model", "{cross}", "--queries", "{queries}", "--corpus", "{corpus}",
                      "--device", "cpu", str(SAMPLE / "run.trec")],
}

# ------------------------------------------------------------------------------------------------ the catalogue

BAD_RUNS = {
    "empty": "",
    "blank-lines": "\n \n",
    "nan-score": RUN.replace("9.5", "nan", 1),
    "inf-score": RUN.replace("9.5", "inf", 1),
    "overflow-score": RUN.replace("9.5", "1e400", 1),
    "five-fields": RUN.replace(" bm25\n", "\n", 1),
    "duplicate-doc": RUN.replace("d11", "d1", 1),
    "not-utf8": RUN.encode() + b"q3 Q0 d\xff 9 0.5 bm25\n",
}
HARMLESS_RUNS = {"bom": BOM + RUN, "crlf": RUN.replace("\n", "\r\n")}


def _with_first(**kw: object) -> str:
    lines = GROUPS.splitlines(True)
    return json.dumps({**json.loads(lines[0]), **kw}) + "\n" + "".join(lines[1:])


BAD_GROUPS = {
    "empty": "",
    "not-json": "{oops\n",
    "null-query-id": _with_first(query_id=None),
    "empty-query-id": _with_first(query_id=""),
    "space-in-query-id": _with_first(query_id="q 1"),
    "one-doc": _with_first(doc_ids=["d1"], labels=[1], scores=[1.0]),
    "space-in-doc-id": _with_first(doc_ids=["d1", "d 11", "d7", "d8"]),
}


def _record(**obj: object) -> str:
    return json.dumps(obj) + "\n"


BAD_RECORDS = {
    "missing-id": _record(text="t"),
    "empty-id": _record(_id="", text="t"),
    "null-id": _record(_id=None, text="t"),
    "list-id": _record(_id=["x"], text="t"),
    "bool-id": _record(_id=True, text="t"),
    "space-in-id": _record(_id="x 1", text="t"),
    "null-text": _record(_id="x1", text=None),
    "list-text": _record(_id="x1", text=["a", "b"]),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_cross: Path) -> dict[str, Path]:
    return {"cross": tiny_cross, "tmp": tmp_path_factory.mktemp("hostile")}


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def assert_handled(result, name: str | None = None) -> None:  # noqa: ANN001 - the cli fixture's result
    """Exit 2, one error line (naming the file when given), no traceback."""
    assert result.exception is None, result
    assert result.exit_code == 2, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("rdistill: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    if name is not None:
        assert name in errors[0], errors[0]


# ------------------------------------------------------------------------------------------------------ the tests


@pytest.mark.parametrize("kind", sorted(BAD_RUNS))
@pytest.mark.parametrize("command", sorted(set(RUN_READERS) - {"score-teacher"}))
def test_bad_run(cli, files, tmp_path: Path, command: str, kind: str) -> None:
    path = _write(tmp_path / f"{kind}.trec", BAD_RUNS[kind])
    assert_handled(cli(*RUN_READERS[command](files), path), str(path))


@pytest.mark.parametrize("kind", ["empty", "nan-score"])
def test_bad_run_score_teacher(cli, files, tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path / f"{kind}.trec", BAD_RUNS[kind])
    assert_handled(cli(*RUN_READERS["score-teacher"](files), path), str(path))


@pytest.mark.parametrize("kind", sorted(HARMLESS_RUNS))
@pytest.mark.parametrize("command", sorted(RUN_READERS))
def test_harmless_run(cli, files, tmp_path: Path, command: str, kind: str) -> None:
    clean = cli(*RUN_READERS[command](files), "-", input=RUN)
    assert clean.exit_code == 0, clean
    odd = cli(*RUN_READERS[command](files), "-", input=HARMLESS_RUNS[kind])
    assert odd.exit_code == 0, odd
    assert odd.stdout == clean.stdout


@pytest.mark.parametrize("command", ["eval", "sample", "locality"])
def test_run_named_twice(cli, files, command: str) -> None:
    argv = RUN_READERS[command](files) if command != "sample" else ["sample", "--strategy", "ensemble", "--qrels",
                                                                    str(SAMPLE / "qrels.txt")]
    assert_handled(cli(*argv, SAMPLE / "run.trec", SAMPLE / "run.trec"))


@pytest.mark.parametrize("kind", sorted(BAD_GROUPS))
@pytest.mark.parametrize("command", sorted(GROUPS_READERS))
def test_bad_groups(cli, files, tmp_path: Path, command: str, kind: str) -> None:
    path = _write(tmp_path / f"{kind}.jsonl", BAD_GROUPS[kind])
    assert_handled(cli(*GROUPS_READERS[command](files), path), str(path))
    assert not (files["tmp"] / "student" / "config.json").exists()


@pytest.mark.parametrize("command", ["entropy", "locality", "convert"])
def test_groups_bom_and_stdin_keep_every_group(cli, files, command: str) -> None:
    clean = cli(*GROUPS_READERS[command](files), "-", input=GROUPS)
    assert clean.exit_code == 0, clean
    for stdin in (BOM + GROUPS,):
        odd = cli(*GROUPS_READERS[command](files), "-", input=stdin)
        assert odd.exit_code == 0, odd
        assert odd.stdout == clean.stdout
    if command == "locality":  # sniffing the input kind on stdin must not eat the first group (summary on stderr)
        assert json.loads(clean.stderr.strip().splitlines()[-1])["queries"] == 3


@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
@pytest.mark.parametrize("what", ["corpus", "queries"])
@pytest.mark.parametrize("command", sorted(TEXT_READERS))
def test_bad_records(cli, files, tmp_path: Path, command: str, what: str, kind: str) -> None:
    base = CORPUS if what == "corpus" else QUERIES
    bad = _write(tmp_path / f"{what}.jsonl", BOM + base + BAD_RECORDS[kind])
    good = {"corpus": SAMPLE / "corpus.jsonl", "queries": SAMPLE / "queries.jsonl", what: bad}
    argv = [a.format(corpus=good["corpus"], queries=good["queries"], cross=files["cross"], tmp=tmp_path)
            for a in TEXT_READERS[command]]
    assert_handled(cli(*argv), f"{bad}:{len(base.splitlines()) + 1}")


@pytest.mark.parametrize("what", ["corpus", "queries"])
def test_duplicate_ids(cli, tmp_path: Path, what: str) -> None:
    base = CORPUS if what == "corpus" else QUERIES
    first = json.loads(base.splitlines()[0])["_id"]
    bad = _write(tmp_path / f"{what}.jsonl", base + _record(_id=first, text="again"))
    good = {"corpus": SAMPLE / "corpus.jsonl", "queries": SAMPLE / "queries.jsonl", what: bad}
    assert_handled(cli("retrieve", "--corpus", good["corpus"], "--queries", good["queries"], "--index",
                       tmp_path / "idx"), str(bad))


# ----------------------------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("argv", [
    ["entropy", "-T", "nan"], ["entropy", "-T", "inf"],
    ["eval", "--qrels", str(SAMPLE / "qrels.txt"), "--tests", "--alpha", "nan"],
    # Out of range rather than non-finite: a level of 0 or 1 makes every test say the same thing, silently.
    ["eval", "--qrels", str(SAMPLE / "qrels.txt"), "--alpha", "0"],
    ["eval", "--qrels", str(SAMPLE / "qrels.txt"), "--equivalence-alpha", "1"],
    ["retrieve", "--corpus", str(SAMPLE / "corpus.jsonl"), "--queries", str(SAMPLE / "queries.jsonl"), "--k1", "nan"],
], ids=lambda a: "-".join(a[:1] + a[-2:]))
def test_non_finite_options(cli, argv: list[str]) -> None:
    assert_handled(cli(*argv, *([] if argv[0] == "retrieve" else [SAMPLE / "run.trec"])))


@pytest.mark.parametrize("option", [("--lr", "nan"), ("--lr", "-1"), ("--lr", "1e12"), ("--warmup", "-0.5"),
                                    ("--temperature", "nan"), ("--temperature", "0"), ("--weight-decay", "inf"),
                                    ("--max-grad-norm", "-1")], ids="=".join)
def test_train_float_options(cli, files, tmp_path: Path, option: tuple[str, str]) -> None:
    groups = _write(tmp_path / "groups.jsonl", GROUPS)
    argv = [a if a != str(files["tmp"] / "student") else str(tmp_path / "out") for a in GROUPS_READERS["train"](files)]
    assert_handled(cli(*argv, "--loss", "kl", *option, groups), option[0])
    assert not (tmp_path / "out" / "config.json").exists()


def test_train_float32_overflow_is_refused_and_writes_no_model(cli, files, tmp_path: Path) -> None:
    groups = _write(tmp_path / "groups.jsonl", _with_first(scores=[1e39, 0.0, 0.0, 0.0]))
    argv = [a if a != str(files["tmp"] / "student") else str(tmp_path / "out") for a in GROUPS_READERS["train"](files)]
    assert_handled(cli(*argv, "--loss", "marginmse", groups), f"{groups}:1")
    assert not (tmp_path / "out" / "config.json").exists()


def test_train_non_finite_loss_stops_keeps_checkpoint(cli, files, tmp_path: Path) -> None:
    # 1e30 is finite in float32, but its square in MarginMSE is not: the loss overflows during training.
    groups = _write(tmp_path / "groups.jsonl", _with_first(scores=[1e30, 0.0, 0.0, 0.0]))
    out = tmp_path / "out"
    argv = [a if a != str(files["tmp"] / "student") else str(out) for a in GROUPS_READERS["train"](files)]
    argv = [a if a != "1" or argv[i - 1] != "--max-steps" else "4" for i, a in enumerate(argv)]
    result = cli(*argv, "--loss", "marginmse", "--checkpoint-every", "1", groups)
    assert_handled(result, "not finite")
    assert "step" in result.stderr and "No model was written" in result.stderr
    assert not (out / "config.json").exists()
    if (out / "checkpoint" / "state.pt").exists():
        assert "last good checkpoint" in result.stderr


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["pickle-payload", "corrupt"])
def test_crafted_checkpoint_runs_nothing(cli, files, tmp_path: Path, kind: str) -> None:
    import torch

    out = tmp_path / "out"
    (out / "checkpoint").mkdir(parents=True)
    marker = tmp_path / "PWNED"
    for name in ("state.pt", "rng-0.pt"):
        if kind == "pickle-payload":
            torch.save({"fingerprint": {}, "x": _Payload(marker)}, out / "checkpoint" / name)
        else:
            _write(out / "checkpoint" / name, b"PK\x03\x04 not a checkpoint")
    groups = _write(tmp_path / "groups.jsonl", GROUPS)
    argv = [a if a != str(files["tmp"] / "student") else str(out) for a in GROUPS_READERS["train"](files)]
    assert_handled(cli(*argv, "--resume", groups), "state.pt")
    assert not marker.exists()


def test_no_weights_anywhere_loads_code() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "rdistill").rglob("*.py"))
    assert "weights_only=False" not in sources


# ------------------------------------------------------------------------------------------------------ models


def test_model_folder_without_weights(cli, files, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "no-weights"
    shutil.copytree(files["cross"], folder)
    for p in folder.glob("*.safetensors"):
        p.unlink()
    assert_handled(cli(*RUN_READERS["score-teacher"](files)[:2], folder, *RUN_READERS["score-teacher"](files)[3:],
                       SAMPLE / "run.trec"), str(folder))
    for p in (files["cross"]).glob("*.safetensors"):
        _write(folder / p.name, b"\x00 corrupt safetensors header" * 8)
    assert_handled(cli(*RUN_READERS["score-teacher"](files)[:2], folder, *RUN_READERS["score-teacher"](files)[3:],
                       SAMPLE / "run.trec"), str(folder))


@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_kind_cross_needs_a_trained_head(cli, tiny_bi: Path, dtype: str) -> None:
    # int8 too: its graph is exported (and cached) from the same checkpoint, so it must not dodge the check.
    if dtype == "int8":
        pytest.importorskip("onnxruntime", reason="--dtype int8 needs the [models] extra")
    argv = ["score-teacher", "--model", tiny_bi, "--kind", "cross", "--queries", SAMPLE / "queries.jsonl",
            "--corpus", SAMPLE / "corpus.jsonl", "--device", "cpu", "--dtype", dtype, SAMPLE / "run.trec"]
    assert_handled(cli(*argv), "classification head")
    allowed = cli(*argv, "--allow-new-head")
    assert allowed.exit_code == 0, allowed
    assert "NEW RANDOM head" in allowed.stderr
    assert_handled(cli(*argv), "classification head")  # a graph cached under the flag does not serve without it


# ----------------------------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", ["eval", "entropy", "score-teacher"])
def test_output_faults(cli, files, tmp_path: Path, command: str) -> None:
    argv = [*RUN_READERS[command](files), SAMPLE / "run.trec"]
    assert_handled(cli(*argv, "-o", tmp_path), str(tmp_path))
    blocker = _write(tmp_path / "a-file", "x")
    assert_handled(cli(*argv, "-o", blocker / "out"), str(blocker))
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    assert_handled(cli(*argv, "-o", full), "no space left")
    assert full.is_symlink()  # the link is not replaced by a regular file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_full_output_keeps_the_scored_chunks_for_resume(cli, files, tmp_path: Path, monkeypatch) -> None:
    """Every chunk scored but the output's disk full when the journal is copied out: the journal is kept (hours
    of scoring are not thrown away), and --resume writes the output once there is room, without rescoring.
    (An output linked to /dev/full is a device now, streamed to with no journal: test_output_faults has it; the
    full disk at the final copy is simulated where the journal opens its output.)"""
    import contextlib

    import rdistill.journal
    from rdistill.errors import UsageError

    @contextlib.contextmanager
    def full_disk(target):  # what io.open_output raises on ENOSPC
        raise UsageError(f"{target}: no space left on device")
        yield

    out = tmp_path / "scored.trec"
    argv = [*RUN_READERS["score-teacher"](files), "--chunk-pairs", "2", "-o", out]
    with monkeypatch.context() as patch:
        patch.setattr(rdistill.journal, "open_output", full_disk)
        result = cli(*argv, SAMPLE / "run.trec")
    assert_handled(result, "no space left")
    assert "--resume" in result.stderr and not out.exists()
    journal = Path(f"{out}.partial")
    assert journal.read_text().count("#chunk") == 3  # a chunk per query (4 pairs each, over --chunk-pairs 2)
    resumed = cli(*argv, "--resume", SAMPLE / "run.trec")
    assert resumed.exit_code == 0, resumed
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    assert meta["resumed_chunks"] == 3  # nothing rescored
    whole = cli(*RUN_READERS["score-teacher"](files), SAMPLE / "run.trec")
    assert out.read_text() == whole.stdout
    assert not journal.exists()


def test_stdout_link_as_output_writes_to_stdout(tmp_path: Path) -> None:
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "rdistill", "entropy", str(SAMPLE / "run.trec"), "-o", str(link)],
                          capture_output=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(b"\n") == 3
    assert link.is_symlink()


# ---------------------------------------------------------------------------------------------- journals, locks


def _kill_after_first_chunk(files: dict[str, Path], output: Path) -> None:
    """Start a journaled score-teacher on stdin, feed it one query and the first line of the next, and kill -9 it
    once the first chunk is in the journal: the state a crash leaves."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "rdistill", *RUN_READERS["score-teacher"](files), "--chunk-pairs", "1", "-o",
            str(output), "-"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None
    lines = RUN.splitlines(True)
    proc.stdin.write("".join(lines[:5]).encode())
    proc.stdin.flush()
    journal = Path(str(output) + ".partial")
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.exists() and b"#chunk" in journal.read_bytes()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert b"#chunk" in journal.read_bytes()


def test_resume_with_other_input_is_refused_and_keeps_the_journal(cli, files, tmp_path: Path) -> None:
    out = tmp_path / "scored.trec"
    _kill_after_first_chunk(files, out)
    argv = [*RUN_READERS["score-teacher"](files), "--chunk-pairs", "1", "-o", out, "--resume"]
    other = _write(tmp_path / "other.trec", RUN.replace("9.5", "9.25"))
    assert_handled(cli(*argv, other), "other input")
    assert Path(str(out) + ".partial").exists()
    done = cli(*argv, SAMPLE / "run.trec")
    assert done.exit_code == 0, done
    whole = cli(*RUN_READERS["score-teacher"](files), "--chunk-pairs", "1", SAMPLE / "run.trec")
    assert out.read_text() == whole.stdout
    assert not Path(str(out) + ".partial").exists()


def test_failed_run_leaves_no_stray_partial(cli, files, tmp_path: Path) -> None:
    out = tmp_path / "scored.trec"
    bad = _write(tmp_path / "run.trec", RUN + "q9 Q0 d9 1 1.0 bm25\n")  # q9 is in no --queries
    assert_handled(cli(*RUN_READERS["score-teacher"](files), "--chunk-pairs", "2", "-o", out, bad), "q9")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.trec"]


@pytest.mark.parametrize("command", ["score-teacher", "train"])
def test_second_job_on_the_same_output_refuses(cli, files, tmp_path: Path, command: str) -> None:
    out = tmp_path / ("scored.trec" if command == "score-teacher" else "student")
    with open(tmp_path / f".{out.name}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if command == "score-teacher":
            result = cli(*RUN_READERS["score-teacher"](files), "-o", out, SAMPLE / "run.trec")
        else:
            groups = _write(tmp_path / "groups.jsonl", GROUPS)
            argv = [a if a != str(files["tmp"] / "student") else str(out) for a in GROUPS_READERS["train"](files)]
            result = cli(*argv, groups)
    assert_handled(result, "another rdistill job")
    assert not out.exists()


def test_train_pooling_is_saved(cli, tiny_bi: Path, tmp_path: Path) -> None:
    from rdistill.models import SentenceTransformerSettings

    groups = _write(tmp_path / "groups.jsonl", GROUPS)
    out = tmp_path / "bi"
    result = cli("train", "--model", tiny_bi, "--student", "bi", "--pooling", "mean", "--queries",
                 SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl", "--max-steps", "1", "--batch-size",
                 "2", "--device", "cpu", "--out", out, groups)
    assert result.exit_code == 0, result
    assert SentenceTransformerSettings.read(str(out)).pooling == "mean"
