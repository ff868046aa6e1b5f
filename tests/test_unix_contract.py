"""The Unix contract (issue 30), through the real CLI in subprocesses under bash.

Every command reads each of its inputs as a path, from stdin (``-`` fed by a pipe), from a FIFO, from /dev/fd/N (a
real bash process substitution) or gzipped through a pipe, and writes its data with -o, to stdout redirected to a
file or a pipe, to -o /dev/stdout, or into ``head`` that stops reading early. Each cell equals the plain-file run
byte for byte (input names spelled differently are the one difference allowed), or is refused up front with one
line that says the input must be a file and why (a corpus: documents are looked up by id in an index over it).

Bounded (see :func:`cells`): five runs a command, a Latin square over its inputs' modes and its outputs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE

INPUT_MODES = ("path", "stdin", "fifo", "procsub", "gzip-pipe")
OUTPUT_MODES = ("o", "stdout-file", "stdout-pipe", "dev-stdout", "head")
REFUSED = "must be a file"


@dataclass(frozen=True)
class Spec:
    """A command line with ``@NAME`` for each input under test (``main`` names the command's principal one)."""

    argv: tuple[str, ...]
    main: str
    refused: tuple[str, ...] = ()  # inputs a stream of which is refused (a corpus, indexed by position)
    outputs: tuple[str, ...] = OUTPUT_MODES
    output_file: str | None = None  # the data is a file in a folder (train --out), not stdout
    extra: dict[str, str] = field(default_factory=dict)

    def inputs(self) -> list[str]:
        return [a[1:] for a in self.argv if a.startswith("@")]


def groups_text() -> str:
    rows = [{"query_id": "q1", "doc_ids": ["d1", "d11", "d7", "d8"], "labels": [1, 0, 0, 0],
             "scores": [9.5, 6.25, 4.0, 1.5]},
            {"query_id": "q2", "doc_ids": ["d4", "d5", "d2", "d6"], "labels": [1, 0, 0, 0],
             "scores": [7.75, 3.5, 3.5, 0.5]},
            {"query_id": "q3", "doc_ids": ["d12", "d3", "d7", "d1"], "labels": [1, 0, 0, 0],
             "scores": [8.0, 5.5, 1.0, 0.1]}]
    return "".join(json.dumps(r) + "\n" for r in rows)


SPECS: dict[str, Spec] = {
    "eval": Spec(("eval", "--json", "--qrels", "@qrels", "@run"), "run"),
    "entropy": Spec(("entropy", "@run"), "run"),
    "entropy-groups": Spec(("entropy", "--definition", "pairwise", "@groups"), "groups"),
    # a cut reads its input twice: a stream is spooled once
    "entropy-keep": Spec(("entropy", "--keep", "below-median", "@groups"), "groups"),
    "fuse": Spec(("fuse", "--method", "rrf", "@run", "@run2"), "run"),
    "sample": Spec(("sample", "--strategy", "window", "--window", "1:4", "-G", "3", "--seed", "1", "--qrels",
                    "@qrels", "--scores", "@scores", "@run"), "run"),
    "locality": Spec(("locality", "--embeddings", "{emb}", "--corpus", "@corpus", "--coverage-against", "@cov",
                      "--test-k", "3", "--summary", "{summary}", "@groups"), "groups", refused=("corpus",)),
    "convert": Spec(("convert", "--to", "tevatron", "--queries", "@queries", "--corpus", "@corpus", "@groups"),
                    "groups", refused=("corpus",)),
    "retrieve": Spec(("retrieve", "--corpus", "@corpus", "--queries", "@queries", "--k", "5", "--index", "{index}"),
                     "queries", refused=("corpus",)),
    "report": Spec(("report", "--runs", "{study}/runs", "--baselines", "{study}/baselines", "--qrels",
                    "sample={qrels}", "--entropy", "@entropy", "--plot", "{scratch}/plot.png"), "entropy"),
    "score-teacher": Spec(("score-teacher", "--model", "{cross}", "--device", "cpu", "--queries", "@queries",
                           "--corpus", "@corpus", "--qrels", "@qrels", "@run"), "run",
                          refused=("corpus",), outputs=("o", "dev-stdout", "head")),
    "train": Spec(("train", "--model", "{cross}", "--device", "cpu", "--queries", "@queries", "--corpus", "@corpus",
                   "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1", "--seed", "1", "--out",
                   "{scratch}/student", "@groups"), "groups", refused=("corpus",), outputs=(),
                  output_file="student/model.safetensors"),
}
# `rdistill data export` reads an ir_datasets id (a download) and writes a folder: it has no stream to test here.


STREAMS = INPUT_MODES[1:]
OUTPUTS = ("o", "stdout-pipe", "dev-stdout", "head")


def cells() -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    """(command, ((input, mode), ...), output) for each cell.

    Each cell is a run of its own (a Python start and the command's imports, about 1 s of CPU), so the modes are
    crossed as a Latin square rather than one at a time: in cell k, input i is given in mode (k + i) mod 4 (so no
    two inputs claim stdin) and the output is the k-th output mode. Four cells per command give every input in
    every stream mode and every output mode once, against the plain-file run (paths in, stdout to a file). An
    input refused as a stream gets its own cells."""
    out: list[tuple[str, tuple[tuple[str, str], ...], str]] = []
    for name, spec in SPECS.items():
        streamed = [source for source in spec.inputs() if source not in spec.refused]
        for k in range(len(STREAMS)):
            modes = tuple((source, STREAMS[(k + i) % len(STREAMS)]) for i, source in enumerate(streamed))
            out.append((name, modes, OUTPUTS[k] if spec.outputs else "folder"))
        for source in spec.refused:
            for mode in STREAMS if name == "retrieve" else ("procsub",):
                out.append((name, ((source, mode),), "stdout-file" if spec.outputs else "folder"))
    return out


def cell_id(cell: tuple[str, tuple[tuple[str, str], ...], str]) -> str:
    name, modes, output = cell
    return f"{name}/{','.join(f'{s}={m}' for s, m in modes)}/{output}"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_cross: Path) -> dict[str, str]:
    import numpy as np

    from tests.test_report import make_study

    work = tmp_path_factory.mktemp("unix")
    f = {name: str(SAMPLE / file) for name, file in (("run", "run.trec"), ("qrels", "qrels.txt"),
                                                    ("queries", "queries.jsonl"), ("corpus", "corpus.jsonl"))}
    (work / "scores.trec").write_bytes((SAMPLE / "run.trec").read_bytes())
    f["scores"] = str(work / "scores.trec")
    f["cov"] = f["scores"]
    run2 = [line.split() for line in (SAMPLE / "run.trec").read_text().splitlines() if line.strip()]
    (work / "run2.trec").write_text("".join(f"{q} Q0 {d} {r} {-float(s)!r} rev\n" for q, _, d, r, s, _ in run2))
    f["run2"] = str(work / "run2.trec")
    (work / "groups.jsonl").write_text(groups_text())
    f["groups"] = str(work / "groups.jsonl")
    (work / "entropy.jsonl").write_text("".join(
        f'{{"query_id": "{q}", "entropy": {i / 2}, "n": 4, "definition": "softmax", "temperature": 1.0}}\n'
        for i, q in enumerate(["q1", "q2", "q3"])))
    f["entropy"] = str(work / "entropy.jsonl")
    ids = [json.loads(line)["_id"] for line in (SAMPLE / "corpus.jsonl").read_text().splitlines()]
    np.savez(work / "emb.npz", ids=np.array(ids), vectors=np.random.default_rng(0).normal(size=(len(ids), 8)))
    f["emb"] = str(work / "emb.npz")
    make_study(work / "study")
    f["study"] = str(work / "study")
    f["index"] = str(work / "index")
    f["cross"] = str(tiny_cross)
    return f


def _bash(script: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("RDISTILL_VERBOSE", None)
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, timeout=timeout)


RD = f"{shlex.quote(sys.executable)} -m rdistill"


def script(spec: Spec, f: dict[str, str], scratch: Path, modes: dict[str, str], output: str) -> str:
    """The bash line of one cell: each input in its mode (``modes``), the others as paths."""
    pre: list[str] = []
    feed = ""
    words: list[str] = []
    values = {**f, "scratch": str(scratch), "summary": str(scratch / "summary.jsonl")}
    for arg in spec.argv:
        if not arg.startswith("@"):
            words.append(shlex.quote(arg.format(**values)))
            continue
        path = shlex.quote(f[arg[1:]])
        mode = modes.get(arg[1:], "path")
        if mode == "path":
            words.append(path)
        elif mode == "stdin":
            words.append("-")
            feed = f"cat {path} | "
        elif mode == "gzip-pipe" and "stdin" not in modes.values():
            words.append("-")
            feed = f"gzip -c {path} | "
        elif mode == "gzip-pipe":  # stdin is another input's: the gzip stream comes through a pipe at /dev/fd/N
            words.append(f"<(gzip -c {path})")
        elif mode == "procsub":
            words.append(f"<(cat {path})")
        elif mode == "fifo":
            fifo = shlex.quote(str(scratch / f"{arg[1:]}.fifo"))
            # the writer's open blocks until rdistill opens the FIFO: bounded, and detached from our pipes
            pre.append(f"mkfifo {fifo}; timeout 600 sh -c 'cat {path} > {fifo}' </dev/null >/dev/null 2>&1 &")
            words.append(fifo)
    line = f"{feed}{RD} {' '.join(words)}"
    out = shlex.quote(str(scratch / "out"))
    tail = {"o": f" -o {out}", "stdout-file": f" > {out}", "stdout-pipe": f" | cat > {out}",
            "dev-stdout": f" -o /dev/stdout | cat > {out}", "head": f" | head -n 1 > {out}",
            "folder": ""}[output]
    return "\n".join([*pre, line + tail, 'exit "${PIPESTATUS[' + ("1" if feed else "0") + ']}"'])


def _names(data: bytes, f: dict[str, str], scratch: Path) -> bytes:
    """Inputs named in the output (locality names each input) spelled one way; a binary output (weights) as is."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    for name in sorted(f.values(), key=len, reverse=True):
        text = text.replace(name, "INPUT")
    return re.sub(r"/dev/fd/\d+|<stdin>|" + re.escape(str(scratch)) + r"/\w+\.fifo", "INPUT", text).encode()


_references: dict[str, bytes] = {}


def reference(name: str, f: dict[str, str], tmp: Path) -> bytes:
    if name not in _references:
        spec = SPECS[name]
        scratch = tmp / f"ref-{name}"
        scratch.mkdir(exist_ok=True)
        proc = _bash(script(spec, f, scratch, {}, "stdout-file" if spec.outputs else "folder"), scratch)
        assert proc.returncode == 0, proc.stderr.decode()
        _references[name] = _names(read_output(spec, scratch), f, scratch)
    return _references[name]


def read_output(spec: Spec, scratch: Path) -> bytes:
    return (scratch / (spec.output_file or "out")).read_bytes()


@pytest.mark.parametrize(("name", "modes", "output"), cells(), ids=[cell_id(c) for c in cells()])
def test_cell(files: dict[str, str], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, name: str,
              modes: tuple[tuple[str, str], ...], output: str) -> None:
    spec = SPECS[name]
    want = reference(name, files, tmp_path_factory.getbasetemp())
    proc = _bash(script(spec, files, tmp_path, dict(modes), output), tmp_path)
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    if any(source in spec.refused for source, _ in modes):
        errors = [line for line in err.splitlines() if line.startswith("rdistill: error:")]
        assert proc.returncode == 2 and len(errors) == 1 and REFUSED in errors[0], err
        return
    if output == "head":
        assert proc.returncode in (0, 141), err  # done before head closed, or stopped quietly by SIGPIPE
        assert (tmp_path / "out").read_bytes() == want.split(b"\n", 1)[0] + b"\n"
        return
    assert proc.returncode == 0, err
    assert _names(read_output(spec, tmp_path), files, tmp_path) == want
    if output == "dev-stdout":
        assert Path("/dev/stdout").is_symlink()  # written through, never replaced by a file


# ------------------------------------------------------------------------------------------ standard streams


@pytest.mark.parametrize("closed", ["<&-", ">&-"])
def test_closed_standard_stream_is_one_line(files: dict[str, str], tmp_path: Path, closed: str) -> None:
    source = "" if closed == "<&-" else shlex.quote(files["run"])
    proc = _bash(f"{RD} entropy {source} {closed}", tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.startswith("rdistill: error:")] == [
        "rdistill: error: standard " + ("input" if closed == "<&-" else "output") + " is closed; "
        + ("give the input as a file, or open stdin (< FILE)" if closed == "<&-"
           else "give -o FILE, or open stdout (> FILE)")]


def test_stdout_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "q\u00e9", "text": "boundary layer"}\n', encoding="utf-8")
    base = f"{RD} retrieve --corpus {shlex.quote(str(SAMPLE / 'corpus.jsonl'))} --queries {queries} --k 2"
    c_locale = _bash(f"LC_ALL=C LANG=C PYTHONIOENCODING= PYTHONUTF8=0 {base} > a; {base} -o b; cmp a b", tmp_path)
    assert c_locale.returncode == 0, c_locale.stderr.decode()
    assert "q\u00e9 Q0".encode() in (tmp_path / "a").read_bytes()


def test_stdin_errors_say_stdin_not_a_temporary_file(tmp_path: Path) -> None:
    """A cut spools stdin to a temporary file; its errors still name <stdin> (issue 29, class 1)."""
    proc = _bash(f"printf 'q1 Q0 d1 1 1.0 t\\nbroken line\\n' | {RD} entropy --keep inner", tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[-1].startswith("rdistill: error: <stdin>:2: expected a TREC run line")
