"""The hostile catalogue's cases by fault class (issue 29): each class closed in every command it can reach.

Imported by bench/hostile.py (``class_cases``), which owns the fixtures, the runner and the summary; kept apart so
the catalogue grows by classes rather than by cases. Each case names its class (``fault``); the summary counts
them. Classes 5 and 7 (output paths, inputs both on stdin) are the unix-contract block's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hostile import (
    CORPUS,
    QRELS,
    QUERIES,
    RUN,
    Case,
    Check,
    _same_as,
    _w,
    groups_commands,
    groups_text,
    run_commands,
)


def located(path: str, line: int | None) -> Check:
    """The one error line names ``path`` and, when given, the line: where the offending id stands."""
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    return lambda proc, _w: where.encode() in proc.stderr


def noted(word: str, then: Check | None = None) -> Check:
    """Accepted by a documented rule: a note on stderr says which (and the output is still right)."""
    return lambda proc, w: b"rdistill: note:" in proc.stderr and word.encode() in proc.stderr and \
        (then is None or then(proc, w))


def both(*checks: Check) -> Check:
    return lambda proc, w: all(c(proc, w) for c in checks)


def class_cases(f: dict[str, str], w: Path, refs: dict[str, str], journal: Path) -> list[Case]:
    """``refs``: the clean run's stdout per run command; ``journal``: a score-teacher journal with one finished
    chunk of the clean run (cross teacher, --chunk-pairs 2), made by a killed job."""
    cases: list[Case] = []
    d = w / "classes"
    d.mkdir()
    st = run_commands(f)["score-teacher"]  # score-teacher --model CROSS --queries Q --corpus C --device cpu
    teachers = {"cross": st, "bi": [st[0], "--model", f["bi"], *st[3:], "--embeddings-cache", str(d / "emb")],
                "bm25": [st[0], "--model", "bm25", *st[3:], "--index", str(d / "bm25")]}
    g = groups_text()
    first = json.loads(g.splitlines()[0])

    def groups_with(**kw: object) -> str:
        return json.dumps({**first, **kw}) + "\n" + "".join(g.splitlines(True)[1:])

    def no_model(out: Path) -> Check:
        return lambda _p, _w: not (out / "config.json").exists()

    # ---------------------------------------------------------------- 1. errors locate the offending id
    run_q9 = _w(d / "run-q9.trec", RUN + "q9 Q0 d1 1 1.0 x\n")  # q9 is in no query file: line 12
    run_dx = _w(d / "run-dX.trec", RUN + "q3 Q0 dX 4 0.5 x\n")  # dX is in no corpus: line 12
    for name, argv in teachers.items():
        cases.append(Case(f"located/query-missing/score-teacher-{name}", [*argv, run_q9], fault="located",
                          check=located(run_q9, 12)))
        cases.append(Case(f"located/doc-missing/score-teacher-{name}", [*argv, run_dx], fault="located",
                          check=located(run_dx, 12)))
    cases.append(Case("located/query-missing-stdin/score-teacher-cross", [*st, "-"], fault="located",
                      stdin=(RUN + "q9 Q0 d1 1 1.0 x\n").encode(), check=located("<stdin>", 12)))
    cases.append(Case("located/doc-missing/score-teacher-bi-run-embeddings",
                      [*teachers["bi"][:-2], "--doc-embeddings", "run", run_dx], fault="located",
                      check=located(run_dx, 12)))
    qmiss = _w(d / "groups-q9.jsonl", g + json.dumps({**first, "query_id": "q9"}) + "\n")  # line 4
    dmiss = _w(d / "groups-dX.jsonl", g + json.dumps({**first, "doc_ids": ["d1", "dX", "d7", "d8"]}) + "\n")
    for kind, path in (("query-missing", qmiss), ("doc-missing", dmiss)):
        out = d / f"train-{kind}"
        cases.append(Case(f"located/{kind}/train", [*groups_commands(f, out)["train"], path], fault="located",
                          check=both(located(path, 4), no_model(out / "student"))))
        for to in ("tevatron", "flagembedding"):
            cases.append(Case(f"located/{kind}/convert-{to}", ["convert", "--to", to, "--queries", f["queries.jsonl"],
                                                               "--corpus", f["corpus.jsonl"], path],
                              fault="located", check=located(path, 4)))
    qdup = _w(d / "queries-dup.jsonl", QUERIES + json.dumps({"_id": "q2", "text": "again"}) + "\n")  # line 5
    for cmd, argv in (("retrieve", ["retrieve", "--corpus", f["corpus.jsonl"], "--index", str(d / "idx-qdup")]),
                      ("score-teacher", [*st[:3], "--corpus", f["corpus.jsonl"], "--device", "cpu", f["run.trec"]]),
                      ("train", [*groups_commands(f, d / "t-qdup")["train"][:3], *groups_commands(f, d / "t-qdup")
                                 ["train"][5:], f["groups"]])):
        cases.append(Case(f"located/queries-duplicate/{cmd}", [*argv, "--queries", qdup], fault="located",
                          check=located(qdup, 5)))
    tsv_dup = _w(d / "queries-dup.tsv", "q1\tone\nq2\ttwo\nq1\tagain\n")
    cases.append(Case("located/queries-duplicate-tsv/convert",
                      ["convert", "--to", "tevatron", "--queries", tsv_dup, "--corpus", f["corpus.jsonl"],
                       f["groups"]], fault="located", check=located(tsv_dup, 3)))

    # ---------------------------------------------------------------- 2. input that contradicts itself
    regraded = _w(d / "qrels-regraded.txt", QRELS + "q2 0 d4 1\n")  # line 10 grades (q2, d4) again, 1 after 2
    for cmd in ("eval", "sample"):
        argv = [a if a != f["qrels.txt"] else regraded for a in run_commands(f)[cmd]]
        cases.append(Case(f"contradiction/qrels-regraded/{cmd}", [*argv, f["run.trec"]], fault="contradiction",
                          check=located(regraded, 10)))
    cases.append(Case("contradiction/qrels-regraded/score-teacher-qrels", [*teachers["bm25"], "--qrels", regraded,
                                                                          f["run.trec"]],
                      fault="contradiction", check=located(regraded, 10)))
    triples = _w(d / "triples.jsonl", json.dumps({"query_id": "q2", "doc_id_a": "d4", "doc_id_b": ["d5", "d6"]})
                 + "\n")
    cases.append(Case("contradiction/qrels-regraded/convert-qrels",
                      ["convert", "--from", "authors", "--qrels", regraded, triples], fault="contradiction",
                      check=located(regraded, 10)))
    cases.append(Case("contradiction/qrels-regraded-beir/eval",
                      [*run_commands(f)["eval"][:2], "--qrels", _w(d / "qrels-regraded.tsv",
                                                                   "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n"),
                       f["run.trec"]], fault="contradiction", check=located(str(d / "qrels-regraded.tsv"), 3)))
    repeated = _w(d / "qrels-repeated.txt", QRELS + "q2 0 d4 2\n")  # the same grade again: counts once
    for cmd in ("eval", "sample"):
        argv = [a if a != f["qrels.txt"] else repeated for a in run_commands(f)[cmd]]
        cases.append(Case(f"contradiction/qrels-same-grade-twice/{cmd}", [*argv, f["run.trec"]], "accept",
                          fault="contradiction", check=noted("judged twice", _same_as(refs[cmd], f["run.trec"],
                                                                                      f["run.trec"]))))
    bad_groups = {
        "positive-among-negatives": groups_with(doc_ids=["d1", "d11", "d1", "d8"]),
        "negative-twice": groups_with(doc_ids=["d1", "d11", "d7", "d11"]),
        "fractional-label": groups_with(labels=[1, 0.5, 0, 0]),
        "fractional-positive": groups_with(labels=[1.5, 0, 0, 0]),
    }
    for kind, content in bad_groups.items():
        path = _w(d / f"groups-{kind}.jsonl", content)
        for cmd, argv in groups_commands(f, d / f"g-{kind}").items():
            check = located(path, 1)
            if cmd == "train":
                check = both(check, no_model(d / f"g-{kind}" / "student"))
            cases.append(Case(f"contradiction/groups-{kind}/{cmd}", [*argv, path], fault="contradiction",
                              check=check))
    integral = _w(d / "groups-integral-float-label.jsonl", groups_with(labels=[1.0, 0.0, 0, 0]))
    cases.append(Case("contradiction/groups-integral-float-label/entropy", ["entropy", integral], "accept",
                      fault="contradiction", check=_same_as(str(w / "ref" / "entropy.groups.out"), f["groups"],
                                                            integral)))
    dupc = _w(d / "corpus-dup.jsonl", CORPUS + json.dumps({"_id": "d4", "text": "again"}) + "\n")  # line 13
    for cmd, argv in (
            ("sample-random", ["sample", "--strategy", "random", "-G", "3", "--corpus", dupc, "--qrels",
                               f["qrels.txt"], f["run.trec"]]),
            ("locality", ["locality", "--coverage-against", f["run.trec"], "--corpus", dupc, f["run.trec"]]),
            ("score-teacher-bm25", [*teachers["bm25"][:5], "--corpus", dupc, "--index", str(d / "bm25-dup"),
                                    f["run.trec"]]),
            ("score-teacher-bi", [*teachers["bi"][:5], "--corpus", dupc, "--device", "cpu", "--embeddings-cache",
                                  str(d / "emb-dup"), f["run.trec"]]),
            ("convert-tevatron", ["convert", "--to", "tevatron", "--queries", f["queries.jsonl"], "--corpus", dupc,
                                  f["groups"]]),
            ("train", [*groups_commands(f, d / "t-dupc")["train"][:5], "--corpus", dupc,
                       *groups_commands(f, d / "t-dupc")["train"][7:], f["groups"]])):
        cases.append(Case(f"contradiction/corpus-duplicate-id/{cmd}", argv, fault="contradiction",
                          check=located(dupc, 13)))
    for kind, obj in (("positive-among-negatives", {"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d7", "d1"]}),
                      ("negative-twice", {"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d7", "d7"]})):
        path = _w(d / f"triples-{kind}.jsonl", json.dumps(obj) + "\n")
        cases.append(Case(f"contradiction/triples-{kind}/convert", ["convert", "--from", "authors", path],
                          fault="contradiction", check=located(path, 1)))
    st_dup = _w(d / "st-negative-is-positive.jsonl", json.dumps({"qid": "q1", "pos": ["d1", "d1"],
                                                                  "neg": {"bm25": ["d7", "d1"], "x": ["d7"]}}) + "\n")
    cases.append(Case("contradiction/st-duplicates-by-rule/convert", ["convert", "--from", "sentence-transformers",
                                                                      st_dup], "accept", fault="contradiction",
                      check=lambda p, _w: [json.loads(x)["doc_ids"] for x in p.stdout.splitlines()] == [["d1", "d7"]]))

    # ---------------------------------------------------------------- 3. options that cannot be honoured
    train = groups_commands(f, d / "opt")["train"]
    for value in ("5", "99"):
        out = d / f"opt-g{value}"
        cases.append(Case(f"option/group-size-above-groups={value}/train",
                          [*[a if a != str(d / "opt" / "student") else str(out) for a in train], "--group-size", value,
                           f["groups"]], fault="option", check=no_model(out)))
    mixed = _w(d / "groups-mixed-sizes.jsonl", g + json.dumps({"query_id": "q1", "doc_ids": ["d7", "d8", "d11"],
                                                              "labels": [1, 0, 0], "scores": [2.0, 1.0, 0.5]}) + "\n")
    mout = d / "opt-mixed"

    def records_sizes(_p: subprocess.CompletedProcess, _w: Path) -> bool:
        meta = json.loads((mout / "rdistill_train.json").read_text())
        return meta.get("group_sizes") == {"min": 3, "max": 4}
    cases.append(Case("option/group-size-above-some-groups/train",
                      [*[a if a != str(d / "opt" / "student") else str(mout) for a in train], "--group-size", "4",
                       mixed], "accept", fault="option", check=noted("fewer than --group-size", records_sizes)))
    cases.append(Case("option/init-layers-above-model/train",
                      [*[a if a != str(d / "opt" / "student") else str(d / "opt-layers") for a in train],
                       "--init-layers", "99", f["groups"]], fault="option", check=no_model(d / "opt-layers")))
    for value in ("0", "-1"):
        cases.append(Case(f"option/min-relevance={value}/sample", [*run_commands(f)["sample"], "--min-relevance",
                                                                   value, f["run.trec"]], fault="option"))
    for value in ("3/3", "1/0", "a/b"):
        cases.append(Case(f"option/shard={value}/score-teacher", [*teachers["bm25"], "--shard", value,
                                                                  f["run.trec"]], fault="option"))

    # ---------------------------------------------------------------- 4. writers and readers agree
    unjudged = _w(d / "triples-unjudged.jsonl", json.dumps({"query_id": "q1", "doc_id_a": "d8",
                                                             "doc_id_b": ["d7"]}) + "\n")  # d8: not judged for q1
    cases.append(Case("roundtrip/qrels-positive-unjudged/convert-authors",
                      ["convert", "--from", "authors", "--qrels", f["qrels.txt"], unjudged], fault="roundtrip",
                      check=located(unjudged, 1)))
    st_unjudged = _w(d / "st-unjudged.jsonl", json.dumps({"qid": "q1", "pos": ["d11"], "neg": ["d7"]}) + "\n")
    cases.append(Case("roundtrip/qrels-positive-grade-0/convert-st",
                      ["convert", "--from", "sentence-transformers", "--qrels", f["qrels.txt"], st_unjudged],
                      fault="roundtrip", check=located(st_unjudged, 1)))
    empty = _w(d / "empty.jsonl", "")
    for fmt in ("authors", "sentence-transformers", "groups"):
        cases.append(Case(f"roundtrip/empty-input/convert-{fmt}", ["convert", "--from", fmt, empty],
                          fault="roundtrip"))
    no_pos = _w(d / "st-no-positive.jsonl", json.dumps({"qid": "q1", "pos": [], "neg": ["d7"]}) + "\n")
    cases.append(Case("roundtrip/no-positive/convert-st", ["convert", "--from", "sentence-transformers", no_pos],
                      fault="roundtrip"))
    no_neg = _w(d / "st-no-negative.jsonl", json.dumps({"qid": "q1", "pos": ["d1"], "neg": []}) + "\n")
    cases.append(Case("roundtrip/no-negative/convert-st", ["convert", "--from", "sentence-transformers", no_neg],
                      fault="roundtrip", check=located(no_neg, 1)))
    one = _w(d / "triples-one.jsonl", json.dumps({"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d7"]}) + "\n")
    for kind, scores in (("string", '{"q1": {"d1": "high", "d7": 1}}'), ("null", '{"q1": {"d1": null, "d7": 1}}'),
                         ("bool", '{"q1": {"d1": true, "d7": 1}}'), ("huge", '{"q1": {"d1": 1e400, "d7": 1}}'),
                         ("list", '{"q1": {"d1": [1], "d7": 1}}'), ("empty", "{}")):
        path = _w(d / f"scores-{kind}.json", scores + "\n")
        cases.append(Case(f"roundtrip/scores-json-{kind}/convert", ["convert", "--from", "authors", "--scores-json",
                                                                    path, one], fault="roundtrip"))
    unscored = _w(d / "groups-unscored.jsonl", "".join(json.dumps({**json.loads(x), "scores": None}) + "\n"
                                                       for x in g.splitlines()))
    so, to = d / "unscored.scores.json", d / "unscored.triples.jsonl"
    cases.append(Case("roundtrip/scores-out-without-scores/convert",
                      ["convert", "--to", "authors", "--scores-out", str(so), "-o", str(to), unscored],
                      fault="roundtrip", check=lambda _p, _w: not so.exists() and not to.exists()))
    # A writer's output, read back by its reader: authors' triples and scores back to the same groups
    back_t, back_s = d / "back.triples.jsonl", d / "back.scores.json"

    def reads_back(_p: subprocess.CompletedProcess, _w: Path) -> bool:
        proc = subprocess.run([sys.executable, "-m", "rdistill", "convert", "--from", "authors", "--scores-json",
                               str(back_s), str(back_t)], capture_output=True, cwd=_w)
        got = [(r["query_id"], r["doc_ids"], r["scores"]) for r in map(json.loads, proc.stdout.splitlines())]
        want = [(r["query_id"], r["doc_ids"], r["scores"]) for r in map(json.loads, g.splitlines())]
        return proc.returncode == 0 and got == want
    cases.append(Case("roundtrip/authors-and-back/convert", ["convert", "--to", "authors", "--scores-out",
                                                             str(back_s), "-o", str(back_t), f["groups"]], "accept",
                      fault="roundtrip", check=reads_back))
    # what convert writes from triples and qrels, train reads
    conv = d / "from-triples.jsonl"
    tri = _w(d / "triples-judged.jsonl", "".join(json.dumps(x) + "\n" for x in (
        {"query_id": "q1", "doc_id_a": "d1", "doc_id_b": ["d11", "d8"]},
        {"query_id": "q2", "doc_id_a": "d4", "doc_id_b": ["d5", "d6"]})))

    def train_reads(_p: subprocess.CompletedProcess, _w: Path) -> bool:
        out = d / "from-triples-student"
        proc = subprocess.run([sys.executable, "-m", "rdistill", *groups_commands(f, d)["train"][:-1], str(out),
                               "--loss", "lce", str(conv)], capture_output=True, cwd=_w)
        return proc.returncode == 0 and (out / "config.json").exists()
    cases.append(Case("roundtrip/convert-then-train", ["convert", "--from", "authors", "--qrels", f["qrels.txt"],
                                                       "-o", str(conv), tri], "accept", fault="roundtrip",
                      check=train_reads))
    nul_run = _w(d / "run-nul.trec", RUN.replace("d11", "d1\x001", 1))
    for cmd in ("eval", "entropy", "sample"):
        cases.append(Case(f"roundtrip/nul-in-id/{cmd}", [*run_commands(f)[cmd], nul_run], fault="roundtrip",
                          check=located(nul_run, 2)))
    for kind, ident in (("nul", "d1\x003"), ("bom", "d\ufeff13"), ("control", "d\x0713")):
        cpath = _w(d / f"corpus-{kind}-id.jsonl", CORPUS + json.dumps({"_id": ident, "text": "t"}) + "\n")
        cases.append(Case(f"roundtrip/{kind}-in-id/retrieve", ["retrieve", "--corpus", cpath, "--queries",
                                                               f["queries.jsonl"], "--index", str(d / f"i-{kind}")],
                          fault="roundtrip", check=located(cpath, 13)))
        gpath = _w(d / f"groups-{kind}-id.jsonl", groups_with(query_id="q" + ident[1:]))
        cases.append(Case(f"roundtrip/{kind}-in-id/entropy-groups", ["entropy", gpath], fault="roundtrip",
                          check=located(gpath, 1)))

    # ---------------------------------------------------------------- 6. interrupts and resumes
    def chunk_in(path: Path) -> Callable[[Path], bool]:
        return lambda _w: path.exists() and b"#chunk" in path.read_bytes()

    def after(seconds: float) -> Callable[[Path], bool]:
        """True once ``seconds`` have passed since the first call (made as the process starts)."""
        t0: list[float] = []

        def cond(_w: Path) -> bool:
            t0.append(time.time())
            return t0[-1] - t0[0] >= seconds
        return cond

    lines = RUN.splitlines(True)
    io = d / "int" / "out.trec"
    io.parent.mkdir()
    cases.append(Case("interrupt/ctrl-c-with-journal/score-teacher", [*st, "--chunk-pairs", "2", "-o", str(io), "-"],
                      "interrupt", stdin="".join(lines[:5]).encode(), fault="interrupt",
                      sigint_when=chunk_in(Path(f"{io}.partial")),
                      check=lambda p, _w: b"--resume" in p.stderr and Path(f"{io}.partial").exists()
                      and not io.exists()))
    cases.append(Case("interrupt/ctrl-c-stdout/score-teacher", [*st, "-"], "interrupt",
                      stdin="".join(lines[:5]).encode(), fault="interrupt",
                      sigint_when=after(1.5)))
    tout = d / "int-train"
    cases.append(Case("interrupt/ctrl-c-after-checkpoint/train",
                      [*groups_commands(f, d)["train"][:-1], str(tout), "--max-steps", "100000",
                       "--checkpoint-every", "1", f["groups"]], "interrupt", fault="interrupt", timeout=300,
                      sigint_when=lambda _w: (tout / "checkpoint" / "state.pt").exists(),
                      check=lambda p, _w: b"--resume" in p.stderr and not (tout / "config.json").exists()))
    # Resumes from a journal of the clean run's first chunk (copied: each case its own output)
    head = journal.read_bytes()

    def resume(name: str, argv_tail: list[str], expect: str = "reject", stdin: bytes | None = None,
               check: Check | None = None, queries: str | None = None) -> None:
        out = d / "resume" / name / "x.trec"
        _w(Path(f"{out}.partial"), head)
        argv = [*st[:3], "--queries", queries or f["queries.jsonl"], *st[5:], "--chunk-pairs", "2", "-o", str(out),
                "--resume", *argv_tail]
        cases.append(Case(f"interrupt/resume-{name}/score-teacher", argv, expect, stdin=stdin, fault="interrupt",
                          check=check or (lambda _p, _w: not out.exists())))
    other_first = _w(d / "run-other-first-query.trec", RUN.replace("6.25", "6.0", 1))
    resume("first-chunk-other-scores", [other_first])
    resume("stdin-other-input", ["-"], stdin=RUN.replace("d11", "d5", 1).encode())
    resume("other-queries-text", [f["run.trec"]],
           queries=_w(d / "queries-other-text.jsonl", QUERIES.replace("BM25", "bm25")))
    resume("fewer-queries", [_w(d / "run-q1-only.trec", "".join(lines[:2]))])
    same = d / "resume" / "same-input" / "x.trec"

    def same_bytes(_p: subprocess.CompletedProcess, _w: Path) -> bool:
        clean = subprocess.run([sys.executable, "-m", "rdistill", *st, "--chunk-pairs", "2", f["run.trec"]],
                               capture_output=True, cwd=_w)
        return same.read_bytes() == clean.stdout
    resume("same-input", [f["run.trec"]], "accept", check=same_bytes)
    return cases
