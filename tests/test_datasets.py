"""`rdistill data export`: ir_datasets collections written as BEIR folders with ../shared/data's split rules.

ir_datasets reads a collection from the files it cached on first use ($IR_DATASETS_HOME/NAME/docs.txt, ...), so
the tests write small cranfield- and NPL-format files of their own there and let ir_datasets' real parsers read
them: the whole path runs offline. Downloads are pointed at a closed local port, so no test ever reaches the
internet, even on a machine that could. The comparison with ../shared/data runs where ir_datasets' own files of
the real collections have been fetched (`make data` online), and skips otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from rdistill.data import iter_corpus, load_qrels, load_queries
from tests.conftest import DATA, ROOT

# Cranfield's format (cran.all.1400, cran.qry, cranqrel): query ids in the file are not 1..n, the .W text repeats
# the title with line breaks inside sentences, one document has no abstract, and judgments use codes 1..4 and -1.
CRAN_DOCS = """.I 1
.T
lift of a wing
in a slipstream .
.A
doe,j.
.B
j. test 1, 2026, 1.
.W
lift of a wing
in a slipstream .
  measured   lift increases
with the slipstream velocity .
.I 2
.T
empty abstract
.A
roe,r.
.B
j. test 2, 2026, 2.
.W
.I 3
.T
heat transfer
.A
poe,p.
.B
j. test 3, 2026, 3.
.W
heat transfer in boundary layers .
"""
CRAN_QUERIES = """.I 001
.W
what is the lift of a wing in a
slipstream .
.I 002
.W
how is heat transferred .
.I 004
.W
boundary layers .
.I 007
.W
which wing lifts most .
"""
CRAN_QRELS = "1 1 1\n1 2 4\n1 3 -1\n2 3 2\n3 3 3\n3 1 -1\n4 1 -1\n"
# NPL's format (doc-text, query-text, rlv-ass): records end with "   /" (queries with "/"), capitals.
NPL_DOCS = "1\nLIFT OF A WING  IN A\nSLIPSTREAM\n   /\n2\nHEAT TRANSFER\n   /\n"
NPL_QUERIES = "1\nWING LIFT\n/\n2\nHEAT\n/\n"
NPL_QRELS = "1\n 1 2\n   /\n2\n2\n   /\n"

# BEIR's layout, zipped as BEIR serves it (scifact/corpus.jsonl, ...): texts kept verbatim, metadata dropped.
BEIR_FILES = {
    "scifact/corpus.jsonl": '{"_id": "10", "title": "A claim", "text": "Evidence  for it.", "metadata": {}}\n'
                            '{"_id": "20", "title": "Other", "text": "Unrelated text.", "metadata": {}}\n',
    "scifact/queries.jsonl": '{"_id": "1", "text": "a  claim", "metadata": {}}\n'
                             '{"_id": "2", "text": "other", "metadata": {}}\n{"_id": "3", "text": "unjudged"}\n',
    "scifact/qrels/train.tsv": "query-id\tcorpus-id\tscore\n1\t10\t1\n",
    "scifact/qrels/test.tsv": "query-id\tcorpus-id\tscore\n2\t20\t1\n",
}

OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


def export(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real program in a subprocess: ir_datasets reads IR_DATASETS_HOME when it is imported."""
    env = {**os.environ, **OFFLINE, "IR_DATASETS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rdistill", "data", "export", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    pytest.importorskip("ir_datasets", reason="ir_datasets is not installed (pip install -e '.[irds]')")
    home = tmp_path / "irds"
    for name, files in (("cranfield", (CRAN_DOCS, CRAN_QUERIES, CRAN_QRELS)),
                        ("vaswani", (NPL_DOCS, NPL_QUERIES, NPL_QRELS))):
        (home / name).mkdir(parents=True)
        for stem, text in zip(("docs", "queries", "qrels"), files, strict=True):
            (home / name / f"{stem}.txt").write_text(text)
    (home / "beir" / "scifact").mkdir(parents=True)
    with zipfile.ZipFile(home / "beir" / "scifact" / "source.zip", "w") as archive:
        for name, text in BEIR_FILES.items():
            archive.writestr(name, text)
    return home


def test_cranfield_through_ir_datasets_split_and_relevance(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cranfield"
    proc = export(home, "irds:cranfield", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip() == (f"data export: irds:cranfield -> {out}: 3 documents, 4 queries; qrels train "
                                   "2 queries / 3 judgments, test 1 queries / 1 judgments")
    assert jsonl(out / "corpus.jsonl") == [
        {"_id": "1", "title": "", "text": "lift of a wing in a slipstream . measured lift increases with the "
                                          "slipstream velocity ."},
        {"_id": "2", "title": "", "text": ""},
        {"_id": "3", "title": "", "text": "heat transfer in boundary layers ."}]
    # Ids 1..n in file order (cranqrel's numbering), not the file's 001, 002, 004, 007.
    assert [q["_id"] for q in jsonl(out / "queries.jsonl")] == ["1", "2", "3", "4"]
    assert jsonl(out / "queries.jsonl")[0]["text"] == "what is the lift of a wing in a slipstream ."
    # test = ids divisible by 3; codes 1..4 -> 4..1; -1 dropped (query 4 has only a -1: judged nowhere).
    assert (out / "qrels" / "train.tsv").read_text() == "query-id\tcorpus-id\tscore\n1\t1\t4\n1\t2\t1\n2\t3\t3\n"
    assert (out / "qrels" / "test.tsv").read_text() == "query-id\tcorpus-id\tscore\n3\t3\t2\n"
    # What the stages read back.
    assert load_qrels(str(out), "train") == {"1": {"1": 4, "2": 1}, "2": {"3": 3}}
    assert load_queries(str(out), "test") == {"3": "boundary layers ."}
    assert [d.doc_id for d in iter_corpus(str(out))] == ["1", "2", "3"]


def test_vaswani_test_split_only_and_the_folder_feeds_the_stages(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "vaswani"
    proc = export(home, "irds:vaswani", str(out))
    assert proc.returncode == 0, proc.stderr
    assert jsonl(out / "corpus.jsonl") == [{"_id": "1", "title": "", "text": "lift of a wing in a slipstream"},
                                           {"_id": "2", "title": "", "text": "heat transfer"}]
    assert jsonl(out / "queries.jsonl") == [{"_id": "1", "text": "wing lift"}, {"_id": "2", "text": "heat"}]
    assert sorted(p.name for p in (out / "qrels").iterdir()) == ["test.tsv"]
    assert load_qrels(str(out), "test") == {"1": {"1": 1, "2": 1}, "2": {"2": 1}}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "rdistill", "retrieve", "--corpus", str(out), "--queries", str(out),
                          "--split", "test", "--k", "2", "--index", str(tmp_path / "idx")],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert run.splitlines()[0].split()[:3] == ["1", "Q0", "1"]
    ev = subprocess.run([sys.executable, "-m", "rdistill", "eval", "--qrels", str(out), "--split", "test", "-m",
                         "map", "--json"], input=run, capture_output=True, text=True, env=env, check=True)
    assert orjson.loads(ev.stdout)["map"] > 0.5


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_data_exports_the_three_collections(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    env = {**os.environ, **OFFLINE, "IR_DATASETS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(["make", "-C", str(ROOT), "data", f"BIN={Path(sys.executable).parent}",
                           f"DATA_OUT={out}"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cranfield", "scifact", "vaswani"]
    assert jsonl(out / "scifact" / "corpus.jsonl") == [
        {"_id": "10", "title": "A claim", "text": "Evidence  for it."},
        {"_id": "20", "title": "Other", "text": "Unrelated text."}]
    assert [q["_id"] for q in jsonl(out / "scifact" / "queries.jsonl")] == ["1", "2", "3"]
    assert load_qrels(str(out / "scifact"), "train") == {"1": {"10": 1}}
    assert load_qrels(str(out / "scifact"), "test") == {"2": {"20": 1}}
    assert load_qrels(str(out / "cranfield"), "test") == {"3": {"3": 2}}
    assert sorted(p.name for p in (out / "vaswani" / "qrels").iterdir()) == ["test.tsv"]


# BEIR's documents go through ir_datasets' docstore (a progress bar), NPL's do not.
@pytest.mark.parametrize("name", ["beir/scifact", "vaswani"])
def test_offline_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, name: str) -> None:
    pytest.importorskip("ir_datasets", reason="ir_datasets is not installed (pip install -e '.[irds]')")
    out = tmp_path / "out"
    proc = export(tmp_path / "empty-home", f"irds:{name}", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"rdistill: error: irds:{name}: ir_datasets could not fetch the collection")
    assert "where the internet is reachable" in proc.stderr
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_without_ir_datasets_or_with_an_unknown_id(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli("data", "export", "irds:msmarco-passage", tmp_path / "x")
    assert result.exit_code == 2
    assert result.stderr == ("rdistill: error: irds:msmarco-passage: no export recipe for this collection (known: "
                             "irds:beir/scifact, irds:cranfield, irds:vaswani)\n")
    monkeypatch.setitem(sys.modules, "ir_datasets", None)  # import ir_datasets now raises ImportError
    result = cli("data", "export", "irds:cranfield", tmp_path / "x")
    assert result.exit_code == 2
    assert result.stderr == ("rdistill: error: rdistill data export needs the ir_datasets package: "
                             "pip install -e '.[irds]'\n")
    assert not (tmp_path / "x").exists()


def _irds_files(name: str) -> list[Path]:
    """ir_datasets' own cached files of a real collection: what it reads without downloading."""
    home = Path(os.environ.get("IR_DATASETS_HOME", Path.home() / ".ir_datasets"))
    if name == "beir/scifact":
        return [home / "beir" / "scifact" / "source.zip"]
    archive = home / name / {"cranfield": "cran.tar.gz", "vaswani": "npl.tar.gz"}[name]
    texts = [home / name / f"{stem}.txt" for stem in ("docs", "queries", "qrels")]
    return [archive] if archive.exists() else texts


@pytest.mark.parametrize("name, folder", [("beir/scifact", "scifact"), ("cranfield", "cranfield"),
                                          ("vaswani", "vaswani")])
def test_export_equals_shared_data(cli, tmp_path: Path, name: str, folder: str) -> None:
    pytest.importorskip("ir_datasets", reason="ir_datasets is not installed (pip install -e '.[irds]')")
    missing = [str(p) for p in _irds_files(name) if not p.exists()]
    if missing:
        pytest.skip(f"ir_datasets has not fetched {name} (missing {missing[0]}); `make data` online fetches it")
    result = cli("data", "export", f"irds:{name}", tmp_path / folder)
    assert result.exit_code == 0, result
    shared = DATA / folder
    for stem in ("corpus.jsonl", "queries.jsonl"):
        assert jsonl(tmp_path / folder / stem) == jsonl(shared / stem), stem
    splits = sorted(p.name for p in (shared / "qrels").iterdir())
    assert sorted(p.name for p in (tmp_path / folder / "qrels").iterdir()) == splits
    for split in splits:
        ours = (tmp_path / folder / "qrels" / split).read_text().splitlines()
        assert sorted(ours) == sorted((shared / "qrels" / split).read_text().splitlines()), split
