"""Shipped students (issue 31): what a practitioner takes away loads in sentence-transformers and transformers as
they are, ranks as rdistill scores it, exports to ONNX with the same order, and carries a model card that says
what it is. The chain is the demo's, tiny: BM25 on a cranfield slice, a tiny cross teacher, window sampling,
marginmse students (cross and bi) trained a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rdistill.io import read_run
from tests.conftest import DATA
from tests.test_train import _one_thread  # noqa: F401 - autouse, module scope: tiny models on one thread

CRAN = DATA / "cranfield"
st = pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, tiny_cross: Path, tiny_bi: Path) -> dict[str, Path]:
    """retrieve -> score-teacher -> sample -> train (cross and bi), every stage through the CLI with -o, so the
    sidecars that the card reads are the real ones; and the test split re-ranked by each student."""
    from typer.testing import CliRunner

    from rdistill.cli import app

    runner = CliRunner()
    root = tmp_path_factory.mktemp("chain")

    def run(*args: object) -> None:
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    data = ("--queries", CRAN, "--corpus", CRAN)
    run("retrieve", "--corpus", CRAN, "--queries", CRAN, "--split", "train", "--k", "20", "--index", root / "idx",
        "-o", root / "bm25.train.trec")
    head = "\n".join(open(root / "bm25.train.trec").read().splitlines()[:20 * 16]) + "\n"
    (root / "bm25.head.trec").write_text(head)
    run("score-teacher", "--model", tiny_cross, *data, "--qrels", CRAN, "--split", "train", "-o", root / "teacher.trec",
        root / "bm25.head.trec")
    run("sample", "--strategy", "window", "--window", "1:20", "--scores", root / "teacher.trec", "--qrels", CRAN,
        "--split", "train", "--group-size", "4", "--seed", "1", "-o", root / "groups.jsonl", root / "bm25.head.trec")
    out = {"root": root, "groups": root / "groups.jsonl"}
    for kind, model in (("cross", tiny_cross), ("bi", tiny_bi)):
        out[kind] = root / kind
        run("train", "--student", kind, "--model", model, "--loss", "marginmse", *data, out["groups"],
            "--max-steps", "3", "--batch-size", "4", "--lr", "1e-3", "--seed", "1", "--out", out[kind])
    test = "\n".join(open(root / "bm25.train.trec").read().splitlines()[:20 * 5]) + "\n"
    (root / "pairs.trec").write_text(test)
    run("score-teacher", "--model", out["cross"], *data, "-o", root / "cross.trec", root / "pairs.trec")
    run("score-teacher", "--model", out["bi"], *data, "-o", root / "bi.trec", root / "pairs.trec")
    return out


def pairs(chain: dict[str, Path], scored: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    from rdistill.data import load_queries
    from rdistill.docstore import DocStore

    queries, store = load_queries(str(CRAN)), DocStore(str(CRAN))
    run = read_run(chain["root"] / scored)
    texts = [(queries[q], store.text(d)) for q, docs in run.items() for d in docs]
    return texts, np.array([s for docs in run.values() for s in docs.values()])


def within_cuts(folder: Path, texts: list[tuple[str, str]]) -> np.ndarray:
    """The pairs rdistill does not cut (query <= 30, document <= 200 tokens): there a loader that cuts the pair
    as a whole to their sum sees exactly rdistill's tokens. Longer documents keep more tokens outside rdistill."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    q = tok([t[0] for t in texts], add_special_tokens=False)["input_ids"]
    d = tok([t[1] for t in texts], add_special_tokens=False)["input_ids"]
    return np.array([len(a) <= 30 and len(b) <= 200 for a, b in zip(q, d, strict=True)])


def same_order(a: np.ndarray, b: np.ndarray, tie: float = 0.0) -> bool:
    """Identical order on every pair whose rdistill scores are not tied (ties may break either way). ``tie``: how
    close two fp32 scores computed in different batches count as tied (padding changes the sums' rounding)."""
    i, j = np.triu_indices(len(a), 1)
    untied = np.abs(a[i] - a[j]) > tie
    return bool((np.sign(a[i] - a[j])[untied] == np.sign(b[i] - b[j])[untied]).all())


def test_cross_student_is_a_single_logit_crossencoder(chain: dict[str, Path]) -> None:
    texts, rdistill_scores = pairs(chain, "cross.trec")
    keep = within_cuts(chain["cross"], texts)
    assert keep.sum() >= 50
    texts, rdistill_scores = [t for t, k in zip(texts, keep, strict=True) if k], rdistill_scores[keep]
    model = st.CrossEncoder(str(chain["cross"]), device="cpu")
    assert model.num_labels == 1
    predicted = model.predict(texts, batch_size=16)
    assert predicted.ndim == 1 and ((predicted > 0) & (predicted < 1)).all()
    # predict's sigmoid(logit) is the trained 2-label head's P(relevant), and the logit is rdistill's score. The
    # tiny student's scores lie within 1e-4 of each other, where fp32 probabilities near 0.5 round ties together:
    # the order is compared on the logits.
    np.testing.assert_allclose(predicted, 1 / (1 + np.exp(-rdistill_scores)), atol=1e-6)
    logits = model.predict(texts, batch_size=16, activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(logits, rdistill_scores, atol=1e-6)
    assert same_order(rdistill_scores, logits, tie=1e-6)
    first = [i for i, t in enumerate(texts) if t[0] == texts[0][0]]
    ranked = model.rank(texts[0][0], [texts[i][1] for i in first], activation_fn=torch.nn.Identity())
    assert same_order(rdistill_scores[first], np.array([r["score"] for r in sorted(ranked, key=lambda r: r["corpus_id"])]),
                      tie=1e-6)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    hf = AutoModelForSequenceClassification.from_pretrained(chain["cross"]).eval()
    tok = AutoTokenizer.from_pretrained(chain["cross"])
    with torch.no_grad():
        logits = hf(**tok([q for q, _ in texts], [d for _, d in texts], padding=True, truncation=True,
                          return_tensors="pt")).logits
    assert logits.shape == (len(texts), 1)
    np.testing.assert_allclose(logits[:, 0].numpy(), rdistill_scores, atol=1e-6)


def test_folding_the_head_keeps_the_trained_order(tiny_cross: Path) -> None:
    """The fold itself: a 2-label head and its 1-logit save rank 200 pairs identically (log P vs logit1-logit0)."""
    from rdistill.models import cross_encoder_scores, encode_pairs
    from rdistill.training.students import CrossStudent, single_logit

    student = CrossStudent(str(tiny_cross))
    student.model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        student.model.classifier.weight.normal_(0, 2.0)
    folded = single_logit(student.model)
    assert student.model.config.num_labels == 2 and folded.config.num_labels == 1  # the training model untouched
    rng = np.random.default_rng(0)
    words = "wing flow boundary layer heat transfer pressure shock supersonic plate".split()
    qs = [" ".join(rng.choice(words, 3)) for _ in range(200)]
    ds = [" ".join(rng.choice(words, 12)) for _ in range(200)]
    batch = encode_pairs(student.tokenizer, qs, ds, 30, 200)
    with torch.no_grad():
        two = cross_encoder_scores(student.model(**batch).logits).numpy()
        one = cross_encoder_scores(folded(**batch).logits).numpy()
    assert same_order(two, one)
    np.testing.assert_allclose(-np.logaddexp(0, -one), two, atol=1e-5)  # log P = -softplus(-logit)


def test_two_label_folders_from_before_still_score_as_before(tiny_cross: Path) -> None:
    from rdistill.models import CrossEncoder

    model = CrossEncoder(str(tiny_cross))
    assert model.model.config.num_labels == 2
    scores = model.score(["wing flow"] * 2, ["boundary layer", "heat transfer"])
    assert (scores < 0).all()  # still log P(relevant)


def test_bi_student_loads_in_sentence_transformers_with_the_same_scores(chain: dict[str, Path]) -> None:
    texts, rdistill_scores = pairs(chain, "bi.trec")
    keep = within_cuts(chain["bi"], texts)  # sentence-transformers cuts queries at 200 tokens too, not 30
    texts, rdistill_scores = [t for t, k in zip(texts, keep, strict=True) if k], rdistill_scores[keep]
    model = st.SentenceTransformer(str(chain["bi"]), device="cpu")
    assert model.similarity_fn_name == "dot"
    q = model.encode([t[0] for t in texts], convert_to_tensor=True)
    d = model.encode([t[1] for t in texts], convert_to_tensor=True)
    dots = (q * d).sum(-1).numpy()
    np.testing.assert_allclose(dots, rdistill_scores, atol=1e-4)
    assert same_order(rdistill_scores, dots, tie=2e-5)  # fp32 rounding at these scores (~32) is ~4e-6


def test_train_writes_a_model_card_that_parses(chain: dict[str, Path]) -> None:
    import yaml

    for kind in ("cross", "bi"):
        text = (chain[kind] / "README.md").read_text()
        assert text.startswith("---\n")
        header = yaml.safe_load(text.split("---\n")[1])
        assert header["library_name"] == "sentence-transformers" and "rdistill" in header["tags"]
        assert header["datasets"] == ["cranfield"] and "model-index" not in header  # nothing measured yet
        assert f"\n# {kind}\n" in text  # named as the folder it ended in, not the one it was written in
        body = text.split("---\n", 2)[2]
        teacher = json.loads((chain["root"] / "teacher.trec.meta.json").read_text())["settings"]["model"]
        assert f"- Teacher: {teacher}" in body and "- Loss: marginmse" in body and "- Sampling: window" in body
        train = json.loads((chain[kind] / "rdistill_train.json").read_text())
        assert f"- Groups (sha256): {train['groups_sha256']}" in body and "- Seed: 1" in body
        assert "- Steps: 3" in body


def test_eval_adds_measured_ndcg_to_the_card(cli, chain: dict[str, Path]) -> None:
    import yaml

    root = chain["root"]
    result = cli("eval", "--qrels", CRAN, "--split", "train", "--json", "--card", chain["cross"],
                 root / "cross.trec", root / "teacher.trec")
    assert result.exit_code == 0, result
    means = [json.loads(line) for line in result.stdout.splitlines()]
    text = (chain["cross"] / "README.md").read_text()
    header = yaml.safe_load(text.split("---\n")[1])
    metric = header["model-index"][0]["results"][0]["metrics"][0]
    assert metric["type"] == "ndcg_at_10" and metric["value"] == means[0]["ndcg@10"]
    kept = 100 * means[0]["ndcg@10"] / means[1]["ndcg@10"]
    assert f"{kept:.1f}% of the teacher's" in text
    # A run the card cannot attribute (BM25's, or another student's) is refused before anything is written.
    refused = cli("eval", "--qrels", CRAN, "--split", "train", "--card", chain["cross"], root / "bi.trec")
    assert refused.exit_code == 2 and "neither this student nor the teacher" in refused.stderr


def test_onnx_student_ranks_as_the_pytorch_one(chain: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from rdistill.export import export_student
    from rdistill.models import BiEncoder, CrossEncoder

    texts, _ = pairs(chain, "cross.trec")
    qs, ds = [t[0] for t in texts], [t[1] for t in texts]
    torch_cross, onnx_cross = CrossEncoder(str(chain["cross"])), CrossEncoder(str(export_student(chain["cross"],
                                                                                                 tmp_path / "cx")))
    assert onnx_cross.engine == "onnxruntime"
    a, b = torch_cross.score(qs, ds), onnx_cross.score(qs, ds)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert same_order(a, b, tie=1e-6)
    torch_bi, onnx_bi = BiEncoder(str(chain["bi"])), BiEncoder(str(export_student(chain["bi"], tmp_path / "bx")))
    assert onnx_bi.engine == "onnxruntime" and (onnx_bi.pooling, onnx_bi.max_length) == ("cls", 200)
    ea, eb = torch_bi.encode(ds[:20]), onnx_bi.encode(ds[:20])
    np.testing.assert_allclose(ea, eb, atol=1e-4)
    assert (tmp_path / "cx" / "README.md").is_file() and not (tmp_path / "cx" / "model.safetensors").exists()
