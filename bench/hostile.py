"""A hostile user's catalogue: ~150 kinds of bad input and OS fault against every command, through the real CLI.

Each case runs ``python -m rdistill ...`` in a subprocess on small files it writes itself (sample_data and tiny
random models) and is classified:

- handled: a bad input or fault ends with exit 2 and one ``rdistill: error: ...`` line, no traceback, and leaves
  nothing behind it should not (no model, no stray .partial, the device link intact); or a valid input with a
  harmless oddity (a BOM, CRLF, a stdout link as -o) gives the same output as the clean input;
- silent: exit 0 on bad input, or exit 0 with wrong output, or a post-condition broken (a stray file, a model
  written after a non-finite loss, code executed from a checkpoint);
- traceback: a Python traceback on stderr;
- crash: any other ending (another exit code, several error lines, a refused valid input, a timeout).

An "interrupt" case sends SIGINT once its condition holds (a journal chunk, a checkpoint written) and is handled
when the command ends with exit 130 and exactly one line on stderr.

Every case has a fault class (``FAULTS``: the classes of issue 29 and the older kinds of bad input), and the
summary counts the cases of each class: a new option or reader joins the catalogue by class, with cases of every
class that can reach it (DEVELOPING.md, "Fault classes").

Usage: ``python bench/hostile.py [-j 2] [-k SUBSTRING] [-v]`` (``make hostile``). It prints one line per case that
is not handled and the counts per class, and exits 1 if any case is not handled. Read-only and full file systems
are small tmpfs mounts when the process may mount (root); otherwise those cases are skipped and say so.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import gzip
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
sys.modules.setdefault("hostile", sys.modules[__name__])  # hostile_classes imports this module, not a second copy
MOUNTS: list[str] = []  # tmpfs mounts to undo at exit, whatever happens
Check = Callable[[subprocess.CompletedProcess, Path], bool]


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str = "reject"  # or "accept"
    stdin: bytes | None = None
    check: Check | None = None  # extra post-condition (both kinds)
    hold_lock: str | None = None  # a path this process holds an exclusive flock on while the case runs
    timeout: int = 300
    tags: list[str] = field(default_factory=list)
    fault: str = ""  # a key of FAULTS; "" is filled in from the name by fault_of
    sigint_when: Callable[[Path], bool] | None = None  # expect="interrupt": SIGINT once this holds (stdin kept open)


# The fault classes, in the order the summary prints them (1-7: issue 29's; the others: the catalogue's first kinds).
FAULTS = {
    "located": "1 errors name the file and line where the offending text or id stands",
    "contradiction": "2 input that contradicts itself: refused at its line, or accepted by a documented rule",
    "option": "3 options that cannot be honoured: refused, or the metadata records what happened",
    "roundtrip": "4 every file a writer emits its reader accepts; no silent empty result",
    "output": "5 output paths that are not plain files, and disk faults",
    "interrupt": "6 Ctrl-C and --resume: one line; never a mix of two inputs",
    "stdin": "7 inputs that both claim standard input",
    "malformed": "malformed input: syntax, encoding, types, ids, non-finite numbers",
    "benign": "harmless oddities (BOM, CRLF, gzip, stdin): the clean input's result",
    "model": "models and checkpoints",
    "lock": "two jobs on one output",
}


def fault_of(case: Case) -> str:
    """A case's class: its own, else read from the name of the catalogue's first cases (written before classes)."""
    if case.fault:
        return case.fault
    n = case.name
    for prefixes, fault in ((("resume/",), "interrupt"), (("lock/",), "lock"), (("output/",), "output"),
                            (("run/stdin-twice",), "stdin"), (("convert/",), "roundtrip"),
                            (("model/", "train/checkpoint", "train/pooling"), "model")):
        if n.startswith(prefixes):
            return fault
    if any(k in n for k in ("/duplicate-", "/named-twice", "/noncontiguous")):
        return "contradiction"
    if "/-" in n:  # train/--lr=nan, entropy/-T=0: an option's value
        return "option"
    return "benign" if case.expect == "accept" else "malformed"


# ---------------------------------------------------------------------------------------------------- fixtures


def _w(path: Path, data: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return str(path)


def groups_text() -> str:
    rows = [
        {"query_id": "q1", "doc_ids": ["d1", "d11", "d7", "d8"], "labels": [1, 0, 0, 0], "scores": [9.5, 6.25, 4.0, 1.5]},
        {"query_id": "q2", "doc_ids": ["d4", "d5", "d2", "d6"], "labels": [1, 0, 0, 0], "scores": [7.75, 3.5, 3.5, 0.5]},
        {"query_id": "q3", "doc_ids": ["d12", "d3", "d7", "d1"], "labels": [1, 0, 0, 0], "scores": [8.0, 5.5, 1.0, 0.1]},
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


class Payload:
    """Unpickling this runs a shell command that writes a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def build(work: Path) -> dict[str, str]:
    from tests.conftest import make_tiny_model

    f: dict[str, str] = {}
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.txt", "run.trec", "queries.tsv"):
        shutil.copy(SAMPLE / name, work / name)
        f[name] = str(work / name)
    f["groups"] = _w(work / "groups.jsonl", groups_text())
    f["cross"] = str(make_tiny_model(work / "tiny-cross", "cross"))
    f["bi"] = str(make_tiny_model(work / "tiny-bi", "bi"))
    # a model folder with its config but no weights, and one with corrupt weights
    nw = work / "no-weights"
    shutil.copytree(f["cross"], nw)
    for p in nw.glob("*.safetensors"):
        p.unlink()
    for p in nw.glob("*.bin"):
        p.unlink()
    f["no_weights"] = str(nw)
    bad = work / "bad-weights"
    shutil.copytree(f["cross"], bad)
    for p in bad.glob("*.safetensors"):
        p.write_bytes(b"\x00garbage, not a safetensors header" * 10)
    f["bad_weights"] = str(bad)
    f["dir"] = str(work / "a-folder")
    os.mkdir(f["dir"])
    f["file"] = _w(work / "a-file", "x\n")
    # mounts for EROFS / ENOSPC, when allowed
    f["ro"] = f["full"] = ""
    for key, opts in (("ro", "ro,size=64k"), ("full", "size=16k")):
        mnt = work / f"mnt-{key}"
        mnt.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], capture_output=True).returncode == 0:
            f[key] = str(mnt)
            MOUNTS.append(str(mnt))
    if f["full"]:
        with open(Path(f["full"]) / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            except OSError:
                pass
    # links that stand for device files: a buggy writer replaces the link in our folder, never /dev itself
    os.symlink("/dev/full", work / "full-link")
    f["full_link"] = str(work / "full-link")
    return f


# ------------------------------------------------------------------------------------------------- the catalogue


RUN = (SAMPLE / "run.trec").read_text()
QRELS = (SAMPLE / "qrels.txt").read_text()
CORPUS = (SAMPLE / "corpus.jsonl").read_text()
QUERIES = (SAMPLE / "queries.jsonl").read_text()
BOM = "\ufeff"

BAD_RUNS: dict[str, tuple[str, str | bytes]] = {
    # name: (expect, content)
    "empty": ("reject", ""),
    "blank-lines-only": ("reject", "\n\n  \n"),
    "nan-score": ("reject", RUN.replace("9.5", "nan", 1)),
    "inf-score": ("reject", RUN.replace("9.5", "inf", 1)),
    "overflow-score": ("reject", RUN.replace("9.5", "1e400", 1)),
    "five-fields": ("reject", RUN.replace(" bm25\n", "\n", 1)),
    "seven-fields": ("reject", RUN.replace(" bm25\n", " bm25 x\n", 1)),
    "duplicate-doc": ("reject", RUN.replace("d11", "d1", 1)),
    "not-utf8": ("reject", RUN.encode() + b"q3 Q0 d\xff 9 0.5 bm25\n"),
    "truncated-gzip": ("reject", gzip.compress(RUN.encode())[:-12]),
    "binary": ("reject", bytes(range(256)) * 4),
    "bom": ("accept", BOM + RUN),
    "crlf": ("accept", RUN.replace("\n", "\r\n")),
    "gzip": ("accept", gzip.compress(RUN.encode(), mtime=0)),
}


def run_commands(f: dict[str, str]) -> dict[str, list[str]]:
    """How to feed each run-reading command one run (the run's path is appended)."""
    return {
        "eval": ["eval", "--json", "--qrels", f["qrels.txt"]],
        "entropy": ["entropy"],
        "sample": ["sample", "--strategy", "window", "--window", "1:4", "-G", "3", "--qrels", f["qrels.txt"]],
        "locality": ["locality", "--coverage-against", f["run.trec"], "--corpus", f["corpus.jsonl"]],
        "score-teacher": ["score-teacher", "--model", f["cross"], "--queries", f["queries.jsonl"], "--corpus",
                          f["corpus.jsonl"], "--device", "cpu"],
    }


def groups_commands(f: dict[str, str], out: Path) -> dict[str, list[str]]:
    return {
        "entropy": ["entropy"],
        "locality": ["locality", "--coverage-against", f["run.trec"], "--corpus", f["corpus.jsonl"]],
        "convert": ["convert", "--to", "authors", "--scores-out", str(out / "scores.json")],
        "train": ["train", "--model", f["cross"], "--queries", f["queries.jsonl"], "--corpus", f["corpus.jsonl"],
                  "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1", "--device", "cpu", "--out",
                  str(out / "student")],
    }


def _same_as(reference: str, ref_input: str = "", case_input: str = "") -> Check:
    """Same stdout as the clean input gave, once each output's own input name (eval and locality print it) is
    taken out."""
    def check(proc: subprocess.CompletedProcess, _work: Path) -> bool:
        got, want = proc.stdout, Path(reference).read_bytes()
        for name in (case_input, "<stdin>"):
            if name:
                got = got.replace(name.encode(), b"INPUT")
        if ref_input:
            want = want.replace(ref_input.encode(), b"INPUT")
        return got == want
    return check


def catalogue(f: dict[str, str], work: Path) -> list[Case]:
    cases: list[Case] = []
    w = work
    py = [sys.executable, "-m", "rdistill"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*py, *args], capture_output=True, cwd=w, timeout=600)

    # reference outputs of the clean inputs, for the "accept" cases
    refs: dict[str, str] = {}
    for name, argv in run_commands(f).items():
        proc = cli(*argv, f["run.trec"])
        if proc.returncode != 0:
            raise SystemExit(f"{name} fails on the clean run: {proc.stderr.decode()[-800:]}")
        refs[name] = _w(w / "ref" / f"{name}.run.out", proc.stdout)
    gref: dict[str, str] = {}
    for name in ("entropy", "locality", "convert"):
        proc = cli(*groups_commands(f, w / "ref")[name], f["groups"])
        gref[name] = _w(w / "ref" / f"{name}.groups.out", proc.stdout)

    # 1. bad runs x run-reading commands (files and stdin)
    for kind, (expect, content) in BAD_RUNS.items():
        path = _w(w / "runs" / f"{kind}.trec", content)
        for name, argv in run_commands(f).items():
            if name == "score-teacher" and kind in ("binary", "crlf", "gzip", "five-fields"):
                continue  # covered by the cheaper commands
            check = _same_as(refs[name], f["run.trec"], path) if expect == "accept" else None
            cases.append(Case(f"run/{kind}/{name}", [*argv, path], expect, check=check, tags=["run"]))
        if kind in ("empty", "bom", "nan-score"):
            for name in ("eval", "entropy", "sample"):
                argv = run_commands(f)[name]
                check = _same_as(refs[name], f["run.trec"]) if expect == "accept" else None
                cases.append(Case(f"run-stdin/{kind}/{name}", [*argv, "-"], expect,
                                  stdin=content if isinstance(content, bytes) else content.encode(), check=check))
    noncontig = _w(w / "runs" / "noncontiguous.trec", RUN + "q1 Q0 d99 9 0.1 bm25\n")
    for name in ("entropy", "sample", "score-teacher"):
        cases.append(Case(f"run/noncontiguous/{name}", [*run_commands(f)[name], noncontig]))
    cases.append(Case("run/missing-file/eval", [*run_commands(f)["eval"], str(w / "nope.trec")]))
    cases.append(Case("run/folder/eval", [*run_commands(f)["eval"], f["dir"]]))
    cases.append(Case("run/folder/entropy", ["entropy", f["dir"]]))
    # a run named twice
    cases.append(Case("run/named-twice/eval", [*run_commands(f)["eval"], f["run.trec"], f["run.trec"]]))
    cases.append(Case("run/named-twice/sample", ["sample", "--strategy", "ensemble", "--qrels", f["qrels.txt"],
                                                 f["run.trec"], f["run.trec"]]))
    cases.append(Case("run/named-twice/locality", [*run_commands(f)["locality"], f["run.trec"], f["run.trec"]]))
    cases.append(Case("run/stdin-twice/eval", [*run_commands(f)["eval"], "-", "-"], stdin=RUN.encode()))

    # 2. qrels
    for kind, expect, content in (("bom", "accept", BOM + QRELS), ("empty", "reject", ""),
                                  ("float-rel", "reject", QRELS.replace(" 2\n", " 2.5\n", 1)),
                                  ("five-fields", "reject", QRELS.replace(" 2\n", " 2 x\n", 1)),
                                  ("not-utf8", "reject", QRELS.encode() + b"q9 0 \xff 1\n")):
        path = _w(w / "qrels" / f"{kind}.txt", content)
        for name in ("eval", "sample"):
            argv = [a if a != f["qrels.txt"] else path for a in run_commands(f)[name]]
            check = _same_as(refs[name], f["run.trec"], f["run.trec"]) if expect == "accept" else None
            cases.append(Case(f"qrels/{kind}/{name}", [*argv, f["run.trec"]], expect, check=check))

    # 3. corpus and query records: retrieve, score-teacher (cross: docstore; bi: corpus index), train, sample
    def corpus_line(doc_id: object, text: object = "some text about ranking", extra: str = "") -> str:
        obj: dict[str, object] = {"text": text} if doc_id is ... else {"_id": doc_id, "text": text}
        return json.dumps(obj) + "\n" + extra

    bad_records = {
        "missing-id": (..., "text"),
        "empty-id": ("", "text"),
        "null-id": (None, "text"),
        "list-id": (["d1"], "text"),
        "bool-id": (True, "text"),
        "space-in-id": ("d 13", "text"),
        "tab-in-id": ("d\t13", "text"),
        "null-text": ("d13", None),
        "list-text": ("d13", ["a", "b"]),
        "dict-text": ("d13", {"a": 1}),
    }
    for kind, (doc_id, text) in bad_records.items():
        cpath = _w(w / "corpus" / f"{kind}.jsonl", CORPUS + corpus_line(doc_id, text))
        qpath = _w(w / "queries" / f"{kind}.jsonl", QUERIES + corpus_line(doc_id, text))
        cases.append(Case(f"corpus/{kind}/retrieve", ["retrieve", "--corpus", cpath, "--queries", f["queries.jsonl"],
                                                      "--index", str(w / "idx" / kind)]))
        cases.append(Case(f"corpus/{kind}/score-teacher-cross",
                          [*run_commands(f)["score-teacher"][:-6], "--queries", f["queries.jsonl"], "--corpus", cpath,
                           "--device", "cpu", f["run.trec"]]))
        cases.append(Case(f"queries/{kind}/retrieve", ["retrieve", "--corpus", f["corpus.jsonl"], "--queries", qpath,
                                                       "--index", str(w / "idx" / f"q-{kind}")]))
        if kind in ("null-id", "space-in-id", "null-text", "list-text"):
            cases.append(Case(f"corpus/{kind}/score-teacher-bi",
                              ["score-teacher", "--model", f["bi"], "--queries", f["queries.jsonl"], "--corpus", cpath,
                               "--device", "cpu", "--embeddings-cache", str(w / "emb" / kind), f["run.trec"]]))
            cases.append(Case(f"queries/{kind}/score-teacher",
                              [*run_commands(f)["score-teacher"][:3], "--queries", qpath, "--corpus",
                               f["corpus.jsonl"], "--device", "cpu", f["run.trec"]]))
            cases.append(Case(f"corpus/{kind}/sample-random",
                              ["sample", "--strategy", "random", "-G", "3", "--corpus", cpath, "--qrels",
                               f["qrels.txt"], f["run.trec"]]))
            base = groups_commands(f, w / f"t-{kind}")["train"]
            cases.append(Case(f"corpus/{kind}/train", [*base[:5], "--corpus", cpath, *base[7:], f["groups"]],
                              check=lambda p, _w, k=kind: not (w / f"t-{k}" / "student" / "config.json").exists()))
    dup = _w(w / "corpus" / "duplicate-id.jsonl", CORPUS + corpus_line("d1", "again"))
    cases.append(Case("corpus/duplicate-id/retrieve", ["retrieve", "--corpus", dup, "--queries", f["queries.jsonl"],
                                                       "--index", str(w / "idx" / "dup")]))
    cases.append(Case("corpus/duplicate-id/score-teacher-cross",
                      [*run_commands(f)["score-teacher"][:3], "--queries", f["queries.jsonl"], "--corpus", dup,
                       "--device", "cpu", f["run.trec"]]))
    qdup = _w(w / "queries" / "duplicate-id.jsonl", QUERIES + corpus_line("q1", "again"))
    cases.append(Case("queries/duplicate-id/retrieve", ["retrieve", "--corpus", f["corpus.jsonl"], "--queries", qdup,
                                                        "--index", str(w / "idx" / "qdup")]))
    cases.append(Case("queries/duplicate-id/score-teacher", [*run_commands(f)["score-teacher"][:3], "--queries", qdup,
                                                             "--corpus", f["corpus.jsonl"], "--device", "cpu",
                                                             f["run.trec"]]))
    for kind, content in (("bom", BOM + CORPUS), ("crlf", CORPUS.replace("\n", "\r\n"))):
        cpath = _w(w / "corpus" / f"{kind}.jsonl", content)
        ref = cli("retrieve", "--corpus", f["corpus.jsonl"], "--queries", f["queries.jsonl"], "--index",
                  str(w / "idx" / "ref")).stdout
        refp = _w(w / "ref" / "retrieve.out", ref)
        cases.append(Case(f"corpus/{kind}/retrieve", ["retrieve", "--corpus", cpath, "--queries", f["queries.jsonl"],
                                                      "--index", str(w / "idx" / kind)], "accept",
                          check=_same_as(refp)))
        cases.append(Case(f"corpus/{kind}/score-teacher-cross",
                          [*run_commands(f)["score-teacher"][:3], "--queries", f["queries.jsonl"], "--corpus", cpath,
                           "--device", "cpu", f["run.trec"]], "accept", check=_same_as(refs["score-teacher"])))
        qpath = _w(w / "queries" / f"{kind}.jsonl", content.replace('"d', '"q') if False else
                   (BOM + QUERIES if kind == "bom" else QUERIES.replace("\n", "\r\n")))
        cases.append(Case(f"queries/{kind}/score-teacher",
                          [*run_commands(f)["score-teacher"][:3], "--queries", qpath, "--corpus", f["corpus.jsonl"],
                           "--device", "cpu", f["run.trec"]], "accept", check=_same_as(refs["score-teacher"])))
    tsv_bom = _w(w / "queries" / "bom.tsv", BOM + (SAMPLE / "queries.tsv").read_text())
    cases.append(Case("queries/bom-tsv/score-teacher",
                      [*run_commands(f)["score-teacher"][:3], "--queries", tsv_bom, "--corpus", f["corpus.jsonl"],
                       "--device", "cpu", f["run.trec"]], "accept", check=_same_as(refs["score-teacher"])))
    cases.append(Case("corpus/empty/retrieve", ["retrieve", "--corpus", _w(w / "corpus" / "empty.jsonl", ""),
                                                "--queries", f["queries.jsonl"], "--index", str(w / "idx" / "e")]))
    cases.append(Case("queries/empty/retrieve", ["retrieve", "--corpus", f["corpus.jsonl"], "--queries",
                                                 _w(w / "queries" / "empty.jsonl", ""), "--index",
                                                 str(w / "idx" / "qe")]))

    # 4. groups x groups-reading commands
    g = groups_text()
    first = json.loads(g.splitlines()[0])

    def with_first(**kw: object) -> str:
        return json.dumps({**first, **kw}) + "\n" + "".join(g.splitlines(True)[1:])

    bad_groups = {
        "empty": ("reject", ""),
        "not-json": ("reject", "{oops\n"),
        "null-query-id": ("reject", with_first(query_id=None)),
        "empty-query-id": ("reject", with_first(query_id="")),
        "space-in-query-id": ("reject", with_first(query_id="q 1")),
        "one-doc": ("reject", with_first(doc_ids=["d1"], labels=[1], scores=[1.0])),
        "null-doc-id": ("reject", with_first(doc_ids=["d1", None, "d7", "d8"])),
        "space-in-doc-id": ("reject", with_first(doc_ids=["d1", "d 11", "d7", "d8"])),
        "scores-too-short": ("reject", with_first(scores=[1.0, 2.0])),
        "bom": ("accept", BOM + g),
    }
    for kind, (expect, content) in bad_groups.items():
        path = _w(w / "groups" / f"{kind}.jsonl", content)
        for name, argv in groups_commands(f, w / f"g-{kind}").items():
            check: Check | None = None
            if expect == "accept" and name in gref:
                check = _same_as(gref[name], f["groups"], path)
            cases.append(Case(f"groups/{kind}/{name}", [*argv, path], expect, check=check))
    # stdin sniffing must not eat the first group/query
    for name in ("entropy", "locality"):
        cases.append(Case(f"groups-stdin/plain/{name}", [*groups_commands(f, w)[name], "-"], "accept",
                          stdin=g.encode(), check=_same_as(gref[name], f["groups"])))
        cases.append(Case(f"groups-stdin/bom/{name}", [*groups_commands(f, w)[name], "-"], "accept",
                          stdin=(BOM + g).encode(), check=_same_as(gref[name], f["groups"])))
    cases.append(Case("run-stdin/plain/locality", [*run_commands(f)["locality"], "-"], "accept",
                      stdin=RUN.encode(), check=_same_as(refs["locality"], f["run.trec"])))
    # authors' triples with an id a TREC line cannot hold: the writer must not emit it
    triples = _w(w / "triples.jsonl", json.dumps({"query_id": "q1", "doc_id_a": "d 1", "doc_id_b": ["d7"]}) + "\n")
    cases.append(Case("convert/space-in-id/authors", ["convert", "--from", "authors", triples]))

    # 5. training: non-finite numbers, float options, checkpoints
    def no_model(out: Path) -> Check:
        return lambda _p, _w: not (out / "config.json").exists() and not (out / "model.safetensors").exists()

    def train_argv(out: Path, *extra: str, groups: str | None = None, loss: str = "marginmse") -> list[str]:
        base = groups_commands(f, out)["train"]
        base = [a if a != str(out / "student") else str(out) for a in base]
        return [*base, "--loss", loss, *extra, groups or f["groups"]]

    overflow = _w(w / "groups" / "float32-overflow.jsonl", with_first(scores=[1e39, 0.0, 0.0, 0.0]))
    o = w / "train-overflow"
    cases.append(Case("train/float32-overflow-score", train_argv(o, groups=overflow), check=no_model(o)))
    for opt, values in {"--lr": ["nan", "inf", "-1", "1e12"], "--warmup": ["nan", "-0.5", "inf"],
                        "--temperature": ["nan", "inf", "0", "-1"], "--teacher-scale": ["nan", "-inf"],
                        "--weight-decay": ["nan", "-1"], "--max-grad-norm": ["nan", "-1"]}.items():
        for value in values:
            out = w / f"train{opt}={value}"
            extra = [opt, value]
            if opt == "--temperature":
                extra = [*extra]
            if value == "1e12":
                extra += ["--max-steps", "3"]
            cases.append(Case(f"train/{opt.lstrip('-')}={value}", train_argv(out, *extra, loss="kl"),
                              check=no_model(out)))
    for opt, value in (("-T", "nan"), ("-T", "inf"), ("-T", "0"), ("-T", "-1")):
        cases.append(Case(f"entropy/{opt}={value}", ["entropy", opt, value, f["run.trec"]]))
    for opt, value in (("--alpha", "nan"), ("--alpha", "-1"), ("--alpha", "2")):
        cases.append(Case(f"locality/{opt}={value}", ["locality", "--embeddings", str(w / "none.npz"), opt, value,
                                                      f["run.trec"]]))
    for opt, value in (("--k1", "nan"), ("--b", "nan"), ("--k1", "inf")):
        cases.append(Case(f"retrieve/{opt}={value}", ["retrieve", "--corpus", f["corpus.jsonl"], "--queries",
                                                      f["queries.jsonl"], opt, value]))
    for opt, value in (("--alpha", "nan"), ("--alpha", "0"), ("--equivalence-margin", "nan"),
                       ("--equivalence-margin", "-1"), ("--equivalence-alpha", "inf")):
        cases.append(Case(f"eval/{opt}={value}", [*run_commands(f)["eval"], "--tests", opt, value, f["run.trec"],
                                                  noncontig]))
    # eval --card: a run with no sidecar cannot be attributed; a folder that is no student is refused
    cases.append(Case("eval/--card=run-without-sidecar", [*run_commands(f)["eval"], "--card", f["dir"],
                                                          f["run.trec"]]))
    cases.append(Case("eval/--card=missing-folder", [*run_commands(f)["eval"], "--card", str(w / "no-student"),
                                                     f["run.trec"]]))
    cases.append(Case("sample/--margin=nan", [*run_commands(f)["sample"], "--filter", "margin", "--margin", "nan",
                                              "--scores", f["run.trec"], f["run.trec"]]))
    # checkpoints are data: a crafted state.pt must not run anything
    for kind in ("pickle-payload", "corrupt"):
        out = w / f"ckpt-{kind}"
        (out / "checkpoint").mkdir(parents=True)
        marker = w / f"PWNED-{kind}"
        for fname in ("state.pt", "rng-0.pt"):
            with open(out / "checkpoint" / fname, "wb") as fh:
                if kind == "pickle-payload":
                    import torch

                    torch.save({"fingerprint": {}, "x": Payload(str(marker))}, fh)
                else:
                    fh.write(b"PK\x03\x04 not a checkpoint")
        cases.append(Case(f"train/checkpoint-{kind}", train_argv(out, "--resume"),
                          check=lambda _p, _w, m=marker, o=out: not m.exists() and not (o / "config.json").exists()))
    # pooling round trip
    pout = w / "bi-mean"
    cases.append(Case("train/pooling-mean-saved", [*train_argv(pout, "--student", "bi", "--pooling", "mean",
                                                               loss="lce")[:0],
                                                   "train", "--model", f["bi"], "--queries", f["queries.jsonl"],
                                                   "--corpus", f["corpus.jsonl"], "--student", "bi", "--pooling",
                                                   "mean", "--max-steps", "1", "--batch-size", "2", "--device",
                                                   "cpu", "--out", str(pout), f["groups"]], "accept",
                      check=lambda _p, _w: json.loads((pout / "1_Pooling" / "config.json").read_text())
                      .get("pooling_mode_mean_tokens") is True))
    cases.append(Case("train/pooling-unknown", ["train", "--model", f["bi"], "--queries", f["queries.jsonl"],
                                                "--corpus", f["corpus.jsonl"], "--student", "bi", "--pooling", "max",
                                                "--max-steps", "1", "--device", "cpu", "--out",
                                                str(w / "bi-max"), f["groups"]]))

    # 5b. label-free groups and the listwise losses (issues 24 and 28): each a located line and exit 2, or the
    # documented rule (ADR-MSE's average ranks, ListMLE's Breslow ties, LambdaLoss's no pair) trains
    def as_kind(kind: str, **kw: object) -> str:
        rows = [json.loads(line) for line in g.splitlines()]
        for r in rows:
            r.update({"positives": kind, "labels": [0] * len(r["doc_ids"]) if kind == "none" else r["labels"]}, **kw)
        return "".join(json.dumps(r) + "\n" for r in rows)

    none_groups = _w(w / "groups" / "positives-none.jsonl", as_kind("none"))
    pseudo_groups = _w(w / "groups" / "positives-pseudo.jsonl", as_kind("pseudo"))
    tied_groups = _w(w / "groups" / "all-ties.jsonl", as_kind("none", scores=[2.5] * 4))
    one_doc = _w(w / "groups" / "none-one-doc.jsonl", json.dumps({"query_id": "q1", "doc_ids": ["d1"], "labels": [0],
                                                                  "scores": [1.0], "positives": "none"}) + "\n")
    for loss in ("lce", "marginmse"):
        out = w / f"none-{loss}"
        cases.append(Case(f"losses/positive-free/{loss}", train_argv(out, groups=none_groups, loss=loss),
                          check=no_model(out)))
    out = w / "pseudo-lce"
    cases.append(Case("losses/pseudo-positive/lce", train_argv(out, groups=pseudo_groups, loss="lce"),
                      check=no_model(out)))
    cases.append(Case("losses/pseudo-positive/marginmse", train_argv(w / "pseudo-mm", groups=pseudo_groups),
                      "accept"))
    for loss in ("adrmse", "listmle", "lambdaloss", "kl", "ranknet"):
        cases.append(Case(f"losses/all-ties/{loss}", train_argv(w / f"ties-{loss}", groups=tied_groups, loss=loss),
                          "accept"))
        out = w / f"one-doc-{loss}"
        cases.append(Case(f"losses/one-doc/{loss}", train_argv(out, groups=one_doc, loss=loss), check=no_model(out)))
    cases.append(Case("losses/positive-free-unscored/adrmse", train_argv(
        w / "none-null", groups=_w(w / "groups" / "none-null.jsonl", as_kind("none", scores=None)), loss="adrmse")))
    for value in ("nan", "inf", "0", "-1"):
        out = w / f"alpha={value}"
        cases.append(Case(f"losses/--alpha={value}", train_argv(out, "--alpha", value, loss="adrmse"),
                          check=no_model(out)))
    out = w / "in-batch-cross"
    cases.append(Case("losses/in-batch-negatives-cross", train_argv(out, "--in-batch-negatives", loss="kl"),
                      check=no_model(out)))
    cases.append(Case("losses/in-batch-negatives-bi-positive-free", [
        "train", "--model", f["bi"], "--queries", f["queries.jsonl"], "--corpus", f["corpus.jsonl"], "--student",
        "bi", "--in-batch-negatives", "--loss", "adrmse", "--max-steps", "1", "--batch-size", "3", "--device", "cpu",
        "--out", str(w / "in-batch-bi"), none_groups], "accept"))

    # 6. models
    st = run_commands(f)["score-teacher"]
    for kind in ("no_weights", "bad_weights"):
        cases.append(Case(f"model/{kind}/score-teacher", [*[a if a != f["cross"] else f[kind] for a in st],
                                                          f["run.trec"]]))
        cases.append(Case(f"model/{kind}/train", [*[a if a != f["cross"] else f[kind] for a in
                                                    groups_commands(f, w / f"m-{kind}")["train"]], f["groups"]]))
        cases.append(Case(f"model/{kind}/retrieve-dense", ["retrieve", "--dense", "--model", f[kind], "--corpus",
                                                           f["corpus.jsonl"], "--queries", f["queries.jsonl"],
                                                           "--index", str(w / "idx" / f"dense-{kind}")]))
    cases.append(Case("model/missing/score-teacher", [*[a if a != f["cross"] else str(w / "no-model") for a in st],
                                                      f["run.trec"]]))
    cases.append(Case("model/kind-cross-on-encoder", ["score-teacher", "--model", f["bi"], "--kind", "cross",
                                                      "--queries", f["queries.jsonl"], "--corpus", f["corpus.jsonl"],
                                                      "--device", "cpu", f["run.trec"]]))
    cases.append(Case("model/kind-cross-on-encoder-allowed",
                      ["score-teacher", "--model", f["bi"], "--kind", "cross", "--allow-new-head", "--queries",
                       f["queries.jsonl"], "--corpus", f["corpus.jsonl"], "--device", "cpu", f["run.trec"]],
                      "accept"))

    # 7. resume journals and locks
    other = _w(w / "runs" / "other.trec", RUN.replace("9.5", "9.25"))

    # A crash leaves the chunks before it journaled (bad input would remove the journal): a job fed one query on
    # stdin and killed -9 once that chunk is in the journal.
    jout = w / "journal" / "x.trec"
    jout.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*py, *st, "--chunk-pairs", "2", "-o", str(jout), "-"], stdin=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=w)
    assert proc.stdin is not None
    proc.stdin.write("".join(RUN.splitlines(True)[:5]).encode())  # q1's lines and q2's first: q1 is complete
    proc.stdin.flush()
    journal = Path(f"{jout}.partial")
    deadline = time.time() + 300
    while time.time() < deadline and not (journal.exists() and b"#chunk" in journal.read_bytes()):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    if not (journal.exists() and b"#chunk" in journal.read_bytes()):
        raise SystemExit(f"score-teacher left no journal to resume in {journal}")
    cases.append(Case("resume/other-input", [*st, "--chunk-pairs", "2", "-o", str(jout), "--resume", other],
                      check=lambda _p, _w: not jout.exists()))
    bad_q = _w(w / "queries" / "missing-q3.jsonl", "".join(QUERIES.splitlines(True)[:2]))
    fout = w / "fail" / "out.trec"
    cases.append(Case("resume/failed-run-leaves-no-stray-partial",
                      [*st[:3], "--queries", bad_q, "--corpus", f["corpus.jsonl"], "--device", "cpu",
                       "--chunk-pairs", "2", "-o", str(fout), f["run.trec"]],
                      check=lambda p, _w: not Path(str(fout) + ".partial").exists() or b"--resume" in p.stderr))
    lout = w / "locked" / "out.trec"
    lout.parent.mkdir()
    cases.append(Case("lock/score-teacher-same-o", [*st, "-o", str(lout), f["run.trec"]],
                      hold_lock=str(lout.with_name(f".{lout.name}.lock")), check=lambda _p, _w: not lout.exists()))
    tl = w / "locked-train"
    tl.mkdir()
    cases.append(Case("lock/train-same-out", groups_commands(f, tl)["train"] + [f["groups"]],
                      hold_lock=str(tl / ".student.lock"),
                      check=lambda _p, _w: not (tl / "student" / "config.json").exists()))

    # 8. outputs: a folder, under a file, full and read-only file systems, device links
    outputs = {
        "eval": [*run_commands(f)["eval"], f["run.trec"]],
        "entropy": ["entropy", f["run.trec"]],
        "sample": [*run_commands(f)["sample"], f["run.trec"]],
        "retrieve": ["retrieve", "--corpus", f["corpus.jsonl"], "--queries", f["queries.jsonl"], "--index",
                     str(w / "idx" / "out")],
        "convert": ["convert", f["groups"]],
        # with a model, so that it has rows to write (coverage alone refuses -o)
        "locality": [*run_commands(f)["locality"], "--model", f["bi"], "--device", "cpu", f["run.trec"]],
        "score-teacher": [*st, f["run.trec"]],
    }
    for name, argv in outputs.items():
        cases.append(Case(f"output/folder/{name}", [*argv, "-o", f["dir"]],
                          check=lambda _p, _w: Path(f["dir"]).is_dir()))
        cases.append(Case(f"output/under-a-file/{name}", [*argv, "-o", f["file"] + "/out"]))
        cases.append(Case(f"output/full-link/{name}", [*argv, "-o", f["full_link"]],
                          check=lambda _p, _w: Path(f["full_link"]).is_symlink()))
        if f["full"]:
            cases.append(Case(f"output/enospc/{name}", [*argv, "-o", f["full"] + f"/{name}.out"],
                              # only this case's own files: cases run in parallel on the one full mount
                              check=lambda _p, _w, n=name: not any(f"{n}.out" in p.name
                                                                   for p in Path(f["full"]).iterdir())))
        if f["ro"]:
            cases.append(Case(f"output/erofs/{name}", [*argv, "-o", f["ro"] + f"/{name}.out"]))
    for name in ("eval", "entropy", "score-teacher"):
        link = w / f"stdout-link-{name}"
        os.symlink("/proc/self/fd/1", link)
        cases.append(Case(f"output/stdout-link/{name}", [*outputs[name], "-o", str(link)], "accept",
                          check=lambda p, _w, n=name, lk=link: lk.is_symlink()
                          and (n not in refs or p.stdout == Path(refs[n]).read_bytes())))
    # coverage alone has no rows to write: -o is refused, not left as an empty file that looks like a result
    cov_out = w / "coverage-only.jsonl"
    cases.append(Case("output/locality-coverage-only", [*run_commands(f)["locality"], "-o", str(cov_out),
                                                        f["run.trec"]], check=lambda _p, _w: not cov_out.exists()))
    cases.append(Case("output/train-out-is-file", [*groups_commands(f, w)["train"][:-1], f["file"], f["groups"]]))
    if f["ro"]:
        cases.append(Case("output/train-out-erofs", [*groups_commands(f, w)["train"][:-1], f["ro"] + "/student",
                                                     f["groups"]]))
    cases += unix_cases(f, w, refs, outputs)
    from hostile_classes import class_cases  # the cases by fault class (issue 29)

    cases += class_cases(f, w, refs, journal)
    cases += sampler_cases(f, w)
    cases += lead_cases(f, w)
    return cases


def _stderr_has(text: str) -> Check:
    return lambda proc, _w: text.encode() in proc.stderr


def sampler_cases(f: dict[str, str], w: Path) -> list[Case]:
    """Issues 24 and 28: stratified and top sampling, the relative margin, sampling without judgments
    (--positives teacher:K / none) and entropy --select. A rule that skips and counts (a query too small for its
    strata or its K) is an accepted input whose stderr must say so."""
    cases: list[Case] = []
    run, qrels = f["run.trec"], f["qrels.txt"]
    judged = ["sample", "--qrels", qrels]
    for value in ("0", "1", "-0.05", "nan", "inf", "x"):
        cases.append(Case(f"sampler/--relative-margin={value}", [*judged, "--relative-margin", value, run]))
    logprob = _w(w / "runs" / "logprob.trec", "".join(
        f"{q} Q0 {d} {r} {float(s) - 20.0!r} t\n" for q, _, d, r, s, _ in (line.split() for line in RUN.splitlines())))
    cases.append(Case("sampler/relative-margin-negative-scores",
                      [*judged, "-G", "2", "--relative-margin", "0.05", "--scores", logprob, run]))
    cases.append(Case("sampler/relative-margin-random",
                      [*judged, "--strategy", "random", "--corpus", f["corpus.jsonl"], "--relative-margin", "0.1"]))
    for strategy in ("stratified", "top"):
        cases.append(Case(f"sampler/{strategy}/G-larger-than-window",
                          [*judged, "--strategy", strategy, "-G", "6", "--window", "1:4", run]))
        cases.append(Case(f"sampler/{strategy}/empty-strata", [*judged, "--strategy", strategy, "-G", "4", run],
                          "accept", check=_stderr_has("too few candidates")))
    ties = _w(w / "runs" / "ties.trec", "".join(f"q1 Q0 d{j} {j} 1.0 t\n" for j in range(1, 7)))
    cases.append(Case("sampler/positives/no-qrels-no-positives", ["sample", run]))
    cases.append(Case("sampler/positives/with-qrels", [*judged, "--positives", "teacher:1", run]))
    cases.append(Case("sampler/positives/no-teacher-scores",
                      ["sample", "--strategy", "random", "--positives", "teacher:1", "--corpus", f["corpus.jsonl"]]))
    cases.append(Case("sampler/positives/no-scores", ["sample", "--positives", "none", "--no-scores", run]))
    for value in ("teacher:0", "teacher:", "teacher:x", "judge", "teacher:-1"):
        cases.append(Case(f"sampler/positives={value}", ["sample", "--positives", value, run]))
    cases.append(Case("sampler/positives/K-not-below-G", ["sample", "--positives", "teacher:3", "-G", "3", run]))
    cases.append(Case("sampler/positives/K-larger-than-pool", ["sample", "--positives", "teacher:5", "-G", "6", run],
                      "accept", check=_stderr_has("too few candidates")))
    # every score tied: trec_eval's order (doc id descending) picks the pseudo-positive
    cases.append(Case("sampler/positives/all-ties", ["sample", "--positives", "teacher:1", "-G", "3", ties],
                      "accept", check=lambda p, _w: json.loads(p.stdout.splitlines()[0])["doc_ids"][0] == "d6"))
    cases.append(Case("sampler/positives/lists-of-one", ["sample", "--positives", "none", "-G", "1", run]))
    cases.append(Case("sampler/positives/none-ensemble-filter",
                      ["sample", "--strategy", "ensemble", "--positives", "none", "--scores", run, "--corpus",
                       f["corpus.jsonl"], run]))
    cases.append(Case("sampler/positives/none-relative-margin",
                      ["sample", "--positives", "none", "--relative-margin", "0.1", run]))
    for name, extra in (("bad-select", ["--select", "best"]), ("size-1", ["--select", "greedy", "--size", "1"]),
                        ("bad-objective", ["--select", "greedy", "--objective", "mid"]),
                        ("max-variance-max", ["--select", "max-variance", "--objective", "max"]),
                        ("with-keep", ["--select", "greedy", "--keep", "inner"]),
                        ("k-below-size", ["--select", "greedy", "--size", "4", "--k", "2"])):
        cases.append(Case(f"sampler/entropy-select/{name}", ["entropy", *extra, run]))
    cases.append(Case("sampler/entropy-select/groups-input", ["entropy", "--select", "greedy", f["groups"]]))
    cases.append(Case("sampler/entropy-select/pool-smaller-than-size", ["entropy", "--select", "greedy", "--size",
                                                                        "4", run], "accept",
                      check=_stderr_has("fewer than 4 documents (q3)")))
    return cases


# ------------------------------------------------------------------------- the Unix contract (issue 29: 1, 5, 7)
# Kept in one block of its own: another engineer appends the other classes above.


def _one_line_saying(*words: str) -> Check:
    def check(proc: subprocess.CompletedProcess, _work: Path) -> bool:
        err = proc.stderr.decode("utf-8", "replace")
        return all(word in err for word in words)
    return check


def unix_cases(f: dict[str, str], w: Path, refs: dict[str, str], outputs: dict[str, list[str]]) -> list[Case]:
    cases: list[Case] = []
    st = run_commands(f)["score-teacher"]
    bad_run = RUN + "q9 Q0 d1 1\n"  # five fields on the last line (line 12)
    bad_groups = groups_text() + '{"query_id": "q9", "doc_ids": ["d1"]}\n'
    says_stdin = _one_line_saying("<stdin>:", "rdistill: error:")

    # Class 1: input from stdin is named <stdin> (and its line), never a temporary file, in every command.
    for name, argv in run_commands(f).items():
        cases.append(Case(f"unix/stdin-name/run/{name}", [*argv, "-"], stdin=bad_run.encode(), check=says_stdin))
    cases.append(Case("unix/stdin-name/run/entropy-keep", ["entropy", "--keep", "inner", "-"],
                      stdin=bad_run.encode(), check=says_stdin))  # spooled for its second pass
    cases.append(Case("unix/stdin-name/run/fuse", ["fuse", "-", f["run.trec"]], stdin=bad_run.encode(),
                      check=says_stdin))
    for name, argv in groups_commands(f, w / "unix-stdin").items():
        cases.append(Case(f"unix/stdin-name/groups/{name}", [*argv, "-"], stdin=bad_groups.encode(),
                          check=says_stdin))
    cases.append(Case("unix/stdin-name/groups/entropy-keep", ["entropy", "--keep", "inner", "-"],
                      stdin=bad_groups.encode(), check=says_stdin))
    cases.append(Case("unix/stdin-name/queries/retrieve", ["retrieve", "--corpus", f["corpus.jsonl"], "--queries",
                                                           "-"], stdin=b'{"_id": "q1"}\n', check=says_stdin))
    cases.append(Case("unix/stdin-name/qrels/eval", ["eval", "--qrels", "-", f["run.trec"]],
                      stdin=(QRELS + "q1 0 d1\n").encode(), check=says_stdin))
    cases.append(Case("unix/stdin-name/scores/sample", [*run_commands(f)["sample"], "--scores", "-", f["run.trec"]],
                      stdin=bad_run.encode(), check=says_stdin))

    # Class 5: output paths that are not plain files, for every output option.
    def link_to(name: str) -> tuple[str, Path]:
        target = w / "unix-links" / f"{name}.target"
        _w(target, "stale\n")
        link = w / "unix-links" / f"{name}.link"
        os.symlink(target, link)
        return str(link), target

    def kept_link(link: str, target: Path, ref: str | None = None) -> Check:
        def check(_proc: subprocess.CompletedProcess, _work: Path) -> bool:
            body = target.read_bytes()
            return Path(link).is_symlink() and body != b"stale\n" and (ref is None or body == Path(ref).read_bytes())
        return check

    for name, argv in outputs.items():
        link, target = link_to(f"o-{name}")
        cases.append(Case(f"unix/output-symlink/{name}", [*argv, "-o", link], "accept",
                          check=kept_link(link, target, refs.get(name) if name in ("entropy", "eval") else None)))
    for name in ("eval", "entropy", "sample", "convert", "score-teacher"):
        cases.append(Case(f"unix/output-dev-stdout/{name}", [*outputs[name], "-o", "/dev/stdout"], "accept",
                          check=lambda p, _w, n=name: Path("/dev/stdout").is_symlink()
                          and (n not in refs or p.stdout == Path(refs[n]).read_bytes())))
    folder = f["dir"]
    no_png = lambda _p, _w: Path(folder).is_dir() and not Path(folder + ".png").exists()  # noqa: E731
    run_ = f["run.trec"]
    for label, argv in {
        "entropy--plot": ["entropy", "--plot", folder, run_],
        "entropy--entropy-out": ["entropy", "--keep", "inner", "--entropy-out", folder, run_],
        "locality--summary": [*run_commands(f)["locality"], "--summary", folder, run_],
        "convert--scores-out": ["convert", "--to", "authors", "--scores-out", folder, f["groups"]],
        "report--plot": [*report_argv(f, w), "--plot", folder],
        "report-o": [*report_argv(f, w), "-o", folder],
    }.items():
        cases.append(Case(f"unix/output-folder/{label}", argv, check=no_png))
    for label, argv, option in (("entropy--plot", ["entropy", run_], "--plot"),
                                ("entropy--entropy-out", ["entropy", "--keep", "inner", run_], "--entropy-out"),
                                ("locality--summary", [*run_commands(f)["locality"], run_], "--summary"),
                                ("convert--scores-out", ["convert", "--to", "authors", f["groups"]], "--scores-out"),
                                ("report--plot", report_argv(f, w), "--plot")):
        link, target = link_to(label)
        cases.append(Case(f"unix/output-symlink/{label}", [*argv, option, link], "accept",
                          check=kept_link(link, target)))

    # Class 7: two inputs that both claim standard input are refused up front, saying so.
    both = _one_line_saying("both read standard input")
    for label, argv in {
        "eval--qrels": ["eval", "--qrels", "-", "-"],
        "eval-dev-stdin": ["eval", "--qrels", f["qrels.txt"], "-", "/dev/stdin"],
        "fuse-dev-stdin": ["fuse", "-", "/dev/stdin"],
        "sample--scores": [*run_commands(f)["sample"], "--scores", "-", "-"],
        "sample--qrels": ["sample", "--strategy", "window", "--window", "1:4", "--qrels", "-", "-"],
        "convert--scores": ["convert", "--from", "authors", "--scores", "-", "-"],
        "convert--queries": ["convert", "--to", "tevatron", "--queries", "-", "--corpus", f["corpus.jsonl"], "-"],
        "locality--coverage-against": ["locality", "--corpus", f["corpus.jsonl"], "--coverage-against", "-", "-"],
        "retrieve--corpus": ["retrieve", "--queries", "-", "--corpus", "-"],
        "score-teacher--queries": [*st[:3], "--queries", "-", *st[5:], "-"],
        "score-teacher--qrels": [*st, "--qrels", "/dev/stdin", "-"],
        "train--queries": [*groups_commands(f, w / "unix-both")["train"][:3], "--queries", "-",
                           *groups_commands(f, w / "unix-both")["train"][5:], "-"],
    }.items():
        cases.append(Case(f"unix/stdin-twice/{label}", argv, stdin=RUN.encode(), check=both))
    return cases


def report_argv(f: dict[str, str], w: Path) -> list[str]:
    """``rdistill report`` over a small study folder (tests/test_report.py's), built once."""
    from tests.test_report import make_study

    study = w / "unix-study"
    if not study.exists():
        make_study(study)
        _w(study / "entropy.jsonl", "".join(f'{{"query_id": "{q}", "entropy": {i / 2}, "n": 4, '
                                            f'"definition": "softmax", "temperature": 1.0}}\n'
                                            for i, q in enumerate(["q1", "q2", "q3"])))
    return ["report", "--runs", str(study / "runs"), "--baselines", str(study / "baselines"), "--qrels",
            f"sample={f['qrels.txt']}", "--entropy", str(study / "entropy.jsonl")]


# ------------------------------------------------------------------------------------------------------ running


def classify(case: Case, proc: subprocess.CompletedProcess | None, work: Path) -> tuple[str, str]:
    if proc is None:
        return "crash", "timeout"
    err = proc.stderr.decode("utf-8", "replace")
    if "Traceback" in err:
        return "traceback", err.strip().splitlines()[-1][:160]
    if case.expect == "interrupt":
        lines = [line for line in err.splitlines() if line.strip()]
        ok = case.check(proc, work) if case.check else True
        if proc.returncode == 130 and len(lines) == 1 and ok:
            return "handled", lines[0]
        return ("silent" if proc.returncode == 0 else "crash"), f"exit {proc.returncode}, {len(lines)} stderr " \
            f"line(s), post-condition {'held' if ok else 'broken'}: {err.strip()[-200:]!r}"
    errors = [line for line in err.splitlines() if line.startswith("rdistill: error:")]
    try:
        ok = case.check(proc, work) if case.check else True
    except Exception as exc:  # noqa: BLE001 - a failed post-condition is an outcome, not a bench bug
        ok = False
        err += f" [check raised {exc!r}]"
    if case.expect == "reject":
        if proc.returncode == 0:
            return "silent", "exit 0" + ("" if ok else "; post-condition broken")
        if proc.returncode == 2 and len(errors) == 1:
            return ("handled", errors[0]) if ok else ("silent", "exit 2 but post-condition broken: " + errors[0])
        return "crash", f"exit {proc.returncode}: {err.strip()[-160:]!r}"
    if proc.returncode == 0:
        return ("handled", "ok") if ok else ("silent", "exit 0 with wrong output or state")
    return "crash", f"valid input refused, exit {proc.returncode}: {(errors or [err.strip()[-160:]])[0]}"


def run_case(case: Case, work: Path) -> tuple[Case, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "RDISTILL_CACHE": str(work / "cache")}
    env.pop("RDISTILL_VERBOSE", None)
    lock_fh = None
    if case.hold_lock:
        Path(case.hold_lock).parent.mkdir(parents=True, exist_ok=True)
        lock_fh = open(case.hold_lock, "a")  # noqa: SIM115
        fcntl.flock(lock_fh, fcntl.LOCK_EX)
    try:
        proc: subprocess.CompletedProcess | None
        if case.sigint_when is not None:
            proc = _interrupted(case, work, env)
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "rdistill", *case.argv], input=case.stdin if case.stdin is not None else b"",
                capture_output=True, cwd=work, env=env, timeout=case.timeout)
    except subprocess.TimeoutExpired:
        proc = None
    finally:
        if lock_fh is not None:
            lock_fh.close()
    outcome, detail = classify(case, proc, work)
    return case, outcome, detail


def _interrupted(case: Case, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess | None:
    """Run a case, keep its stdin open (so a job reading it waits, as a user's pipe would), and send SIGINT once
    its condition holds, as Ctrl-C does."""
    import signal

    assert case.sigint_when is not None
    popen = subprocess.Popen([sys.executable, "-m", "rdistill", *case.argv], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work, env=env)
    assert popen.stdin is not None
    if case.stdin:
        popen.stdin.write(case.stdin)
        popen.stdin.flush()
    deadline = time.time() + case.timeout
    while time.time() < deadline and popen.poll() is None and not case.sigint_when(work):
        time.sleep(0.05)
    if popen.poll() is None and time.time() < deadline:
        popen.send_signal(signal.SIGINT)
    try:
        out, err = popen.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.communicate()
        return None
    return subprocess.CompletedProcess(popen.args, popen.returncode, out, err)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("-k", "--filter", default="")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list the handled cases")
    parser.add_argument("--fault", default="", help="only the cases of these fault classes (comma-separated keys "
                        "of FAULTS, e.g. located,interrupt)")
    parser.add_argument("--light", action="store_true", help="only the cases that load no model (no score-teacher, "
                        "train or dense retrieval): minutes instead of most of an hour on a loaded machine")
    parser.add_argument("--heavy", action="store_true", help="only the cases that load a model")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["RDISTILL_CACHE"] = ""
    work = Path(tempfile.mkdtemp(prefix="rdistill-hostile-"))
    os.environ["RDISTILL_CACHE"] = str(work / "cache")
    try:
        files = build(work)
        cases = [c for c in catalogue(files, work) if args.filter in c.name
                 and (not args.fault or fault_of(c) in args.fault.split(","))]
        heavy = [c for c in cases if c.argv[0] in ("score-teacher", "train") or "--dense" in c.argv]
        if args.light:
            cases = [c for c in cases if c not in heavy]
        elif args.heavy:
            cases = heavy
        if not files["full"]:
            print("note: cannot mount tmpfs here; ENOSPC and EROFS cases skipped", file=sys.stderr)
        counts: Counter[str] = Counter()
        by_fault: dict[str, Counter[str]] = {k: Counter() for k in FAULTS}
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for case, outcome, detail in pool.map(lambda c: run_case(c, work), cases):
                counts[outcome] += 1
                by_fault.setdefault(fault_of(case), Counter())[outcome] += 1
                if outcome != "handled" or args.verbose:
                    print(f"{outcome:9} [{fault_of(case)}] {case.name}: {detail}", flush=True)
        total = sum(counts.values())
        print("\nby fault class (handled / cases):")
        for fault, tally in by_fault.items():
            if tally:
                print(f"  {tally['handled']:4} / {sum(tally.values()):<4} {fault:13} {FAULTS.get(fault, '')}")
        print(f"\n{total} cases: " + ", ".join(f"{k} {counts[k]}" for k in ("handled", "silent", "traceback", "crash")))
        failed = total - counts["handled"]
    finally:
        for mnt in MOUNTS:
            subprocess.run(["umount", mnt], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    if failed:  # a gate for CI (make hostile): any case not handled fails it
        sys.exit(1)


def lead_cases(f: dict[str, str], w: Path) -> list[Case]:
    """`data split` and `train --frozen-documents` (issue 22): a split that cannot be made, an output folder that is
    the source or holds real files where the links go, a document tower that is absent, of another length, or
    crafted."""
    cases: list[Case] = []
    beir = w / "lead" / "beir"
    (beir / "qrels").mkdir(parents=True)
    shutil.copy(f["corpus.jsonl"], beir / "corpus.jsonl")
    shutil.copy(f["queries.jsonl"], beir / "queries.jsonl")
    (beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td4\t1\nq3\td9\t1\n")
    split = ["data", "split", str(beir)]
    for dev in ("0", "3", "-1", "x"):
        cases.append(Case(f"lead/data-split/dev={dev}", [*split, str(w / "lead" / f"out-{dev}"), "--dev", dev],
                          fault="option"))
    cases.append(Case("lead/data-split/into-source", [*split, str(beir), "--dev", "1"], fault="output"))
    cases.append(Case("lead/data-split/not-beir", ["data", "split", f["run.trec"], str(w / "lead" / "o"), "--dev",
                                                   "1"], fault="malformed"))
    cases.append(Case("lead/data-split/no-such-split", [*split, str(w / "lead" / "o2"), "--from", "dev"],
                      fault="malformed"))
    occupied = w / "lead" / "occupied"
    occupied.mkdir()
    (occupied / "corpus.jsonl").write_text("mine\n")
    cases.append(Case("lead/data-split/real-file-in-the-way", [*split, str(occupied), "--dev", "1"], fault="output",
                      check=lambda _p, _w: (occupied / "corpus.jsonl").read_text() == "mine\n"))
    # `data queries` (issue 28): a query log with a control character, bad bytes, nothing in it, a bad prefix.
    log = w / "lead" / "log.txt"
    log.write_bytes(b"first query\nsecond\x07query\n")
    cases.append(Case("lead/data-queries/control-character", ["data", "queries", str(log)], fault="located"))
    cases.append(Case("lead/data-queries/not-utf8", ["data", "queries"], stdin=b"ok\n\xc3\x28\n", fault="located"))
    cases.append(Case("lead/data-queries/only-blank-lines", ["data", "queries"], stdin=b"\n  \n\t\n",
                      fault="roundtrip"))
    cases.append(Case("lead/data-queries/prefix-with-space", ["data", "queries", "--prefix", "my q", str(log)],
                      fault="option"))
    cases.append(Case("lead/data-queries/plain-file-as-queries", ["retrieve", "--corpus", f["corpus.jsonl"],
                                                                  "--queries", str(log), "--index",
                                                                  str(w / "lead" / "ix-plain")], fault="located"))
    train = ["train", "--student", "bi", "--frozen-documents", "--model", f["bi"], "--queries", f["queries.jsonl"],
             "--corpus", f["corpus.jsonl"], "--max-steps", "1", "--batch-size", "2", "--grad-accum", "1",
             "--max-doc-length", "32", "--device", "cpu", f["groups"]]
    index = w / "lead" / "index"
    cases.append(Case("lead/frozen/cross-student", [*train[:2], "cross", *train[3:], "--out",
                                                      str(w / "lead" / "s-cross")], fault="option"))
    cases.append(Case("lead/frozen/doc-index-alone", ["train", "--student", "bi", "--doc-index", str(index),
                                                       *train[5:], "--out", str(w / "lead" / "s-alone")],
                      fault="option"))
    cases.append(Case("lead/frozen/doc-index-is-a-file", [*train, "--doc-index", f["run.trec"], "--out",
                                                          str(w / "lead" / "s-file")], fault="output"))
    return cases


if __name__ == "__main__":
    pickle.DEFAULT_PROTOCOL  # noqa: B018 - pickle is what torch.save uses for the payload
    main()

