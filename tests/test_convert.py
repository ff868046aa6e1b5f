"""`rdistill convert`: the authors' triples and sentence-transformers hard negatives in, Tevatron and FlagEmbedding
out, round trips without loss (tests on cranfield ids and texts)."""

from __future__ import annotations

import orjson

from tests.conftest import DATA

CRAN = DATA / "cranfield"
TRIPLES = [
    {"query_id": "1", "doc_id_a": "184", "doc_id_b": ["29", "31", "12"]},
    {"query_id": "1", "doc_id_a": "185", "doc_id_b": ["51", "29"]},
    {"query_id": "2", "doc_id_a": "12", "doc_id_b": ["13", "14", "15"]},
]
SCORES = {"1": {"184": -0.25, "185": -1.5, "29": -3.0, "31": -2.125, "12": -7.0, "51": -0.5},
          "2": {"12": 0.1, "13": -0.3, "14": 1e-9, "15": -12.75}}


def jsonl(objs: list[dict]) -> str:
    return "".join(orjson.dumps(o).decode() + "\n" for o in objs)


def lines(text: str) -> list[dict]:
    return [orjson.loads(x) for x in text.splitlines()]


def test_authors_round_trip_loses_nothing(cli, tmp_path):
    triples, scores = tmp_path / "triples.jsonl", tmp_path / "scores.json"
    triples.write_text(jsonl(TRIPLES))
    scores.write_bytes(orjson.dumps(SCORES))
    ours = cli("convert", "--from", "authors", "--scores-json", scores, triples)
    assert ours.exit_code == 0, ours
    groups = lines(ours.stdout)
    assert [g["doc_ids"] for g in groups] == [[t["doc_id_a"], *t["doc_id_b"]] for t in TRIPLES]
    assert groups[0]["scores"] == [-0.25, -3.0, -2.125, -7.0] and groups[0]["labels"] == [1, 0, 0, 0]
    (tmp_path / "groups.jsonl").write_text(ours.stdout)
    back = cli("convert", "--to", "authors", "--scores-out", tmp_path / "back.json", tmp_path / "groups.jsonl")
    assert back.exit_code == 0, back
    assert lines(back.stdout) == TRIPLES
    assert orjson.loads((tmp_path / "back.json").read_bytes()) == SCORES
    # And ours -> authors -> ours gives the same groups (the authors' format has no meta: it says where it came from).
    again = cli("convert", "--from", "authors", "--scores-json", tmp_path / "back.json", "-", input=back.stdout)
    assert lines(again.stdout) == groups
    # Scores are never dropped silently.
    assert cli("convert", "--to", "authors", tmp_path / "groups.jsonl").exit_code == 2


def test_labels_from_qrels_and_missing_scores(cli, tmp_path):
    triples = tmp_path / "t.jsonl"
    triples.write_text(jsonl(TRIPLES))
    judged = lines(cli("convert", "--from", "authors", "--qrels", CRAN, "--split", "train", triples).stdout)
    assert judged[0]["labels"][0] > 0 and judged[0]["scores"] is None
    partial = tmp_path / "s.json"
    partial.write_bytes(orjson.dumps({"1": {"184": 1.0}}))
    result = cli("convert", "--from", "authors", "--scores-json", partial, triples)
    assert result.exit_code == 2 and "t.jsonl:1" in result.stderr and "'29'" in result.stderr


def test_sentence_transformers_hard_negatives(cli, tmp_path):
    st = tmp_path / "hard.jsonl"
    st.write_text(jsonl([{"qid": 1, "pos": [184, 185], "neg": {"bm25": [29, 185, 31], "dense": [31, 12]}}]))
    result = cli("convert", "--from", "sentence-transformers", st)
    assert result.exit_code == 0, result
    groups = lines(result.stdout)
    assert [g["doc_ids"] for g in groups] == [["184", "29", "31", "12"], ["185", "29", "31", "12"]]
    assert groups[0]["meta"] == {"source": "sentence-transformers", "systems": ["bm25", "dense"]}


def test_tevatron_and_flagembedding_join_texts(cli, tmp_path):
    from rdistill.data import load_queries
    from rdistill.docstore import DocStore

    groups = tmp_path / "g.jsonl"
    triples = tmp_path / "t.jsonl"
    triples.write_text(jsonl(TRIPLES[:1]))
    scores = tmp_path / "s.json"
    scores.write_bytes(orjson.dumps(SCORES))
    groups.write_text(cli("convert", "--from", "authors", "--scores-json", scores, triples).stdout)
    store, queries = DocStore(str(CRAN)), load_queries(str(CRAN))
    tev = lines(cli("convert", "--to", "tevatron", "--queries", CRAN, "--corpus", CRAN, groups).stdout)[0]
    assert tev["query_id"] == "1" and tev["query"] == queries["1"]
    doc = store.get("184")
    assert tev["positive_passages"] == [{"docid": "184", "title": doc.title, "text": doc.text}]
    assert [p["docid"] for p in tev["negative_passages"]] == ["29", "31", "12"]
    flag = lines(cli("convert", "--to", "flagembedding", "--queries", CRAN, "--corpus", CRAN, groups).stdout)[0]
    assert flag["query"] == queries["1"] and flag["pos"] == [doc.full_text]
    assert flag["neg"] == [store.text(d) for d in ("29", "31", "12")]
    assert flag["pos_scores"] == [-0.25] and flag["neg_scores"] == [-3.0, -2.125, -7.0]
    assert cli("convert", "--to", "tevatron", groups).exit_code == 2  # texts need --queries and --corpus
