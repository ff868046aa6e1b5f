"""Asymmetric bi-encoders: a trained query tower scored against a frozen document tower.

``rdistill train --student bi --frozen-documents`` trains only the query encoder; every document keeps the
embedding the initial model gives it. Those embeddings are the same ones a bi-encoder teacher of that model already
computed (one dense index of the corpus, cached under the same key), so a training step encodes only a few short
queries, the corpus is never re-encoded for a new student, and scoring a test collection costs one query encoding
per query. The document tower is recorded in the student's folder (``rdistill_documents.json``: the model as it
was named, its settings and a digest of its weights); ``score-teacher --model STUDENT`` embeds documents with it
and refuses, in one line, a tower whose weights or settings differ from the ones the student was trained against.

Queries are not L2-normalised even when the document tower is: the query's norm is then a learned temperature
(scores are |q| cos(q, d)), which lets the student match a teacher's sharpness without a fixed scale, and it does
not change any query's ranking.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rdistill.errors import UsageError

DOCUMENTS_FILE = "rdistill_documents.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")


def weights_digest(path: str) -> str:
    """sha256 of a model folder's weights file: the tower's identity beyond its path (a package upgrade or a
    retrained folder at the same place gives other embeddings)."""
    from rdistill.meta import file_sha256

    folder = Path(path)
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return file_sha256(folder / name)
    raise UsageError(f"model {path}: no weights file ({', '.join(WEIGHT_FILES)}) to fix the document tower by")


@dataclass(frozen=True)
class DocumentTower:
    """The frozen document encoder of an asymmetric student: what embeds its documents, exactly."""

    model: str  # as the user named it: a folder, or a name that resolves offline (all-MiniLM-L6-v2)
    max_length: int
    pooling: str
    normalize: bool
    weights_sha256: str

    @classmethod
    def of(cls, model: str, max_length: int | None, device: str | None = None) -> tuple[DocumentTower, Any]:
        """The tower a student starting from ``model`` is trained against, and its encoder (loaded once)."""
        from rdistill.models import BiEncoder, resolve_model

        encoder = BiEncoder(model, max_length=max_length, device=device)
        tower = cls(model, encoder.max_length, encoder.pooling, encoder.normalize, weights_digest(resolve_model(model)))
        return tower, encoder

    def encoder(self, device: str | None = None, dtype: str | None = None) -> Any:
        """The document encoder, checked to be the one the student was trained against."""
        from rdistill.models import BiEncoder, resolve_model

        path = resolve_model(self.model)
        digest = weights_digest(path)
        if digest != self.weights_sha256:
            raise UsageError(f"document tower {self.model}: its weights ({path}) are not the ones the student was "
                             f"trained against (sha256 {digest[:12]}, recorded {self.weights_sha256[:12]}); "
                             "documents must be embedded by the same model")
        return BiEncoder(self.model, pooling=self.pooling, normalize=self.normalize,  # type: ignore[arg-type]
                         max_length=self.max_length, device=device, dtype=dtype)

    def save(self, folder: Path) -> None:
        (folder / DOCUMENTS_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, folder: str | Path) -> DocumentTower | None:
        """The tower a student folder records, or None for a symmetric model."""
        path = Path(folder) / DOCUMENTS_FILE
        if not path.is_file():
            return None
        try:
            obj = json.loads(path.read_text())
            return cls(str(obj["model"]), int(obj["max_length"]), str(obj["pooling"]), bool(obj["normalize"]),
                       str(obj["weights_sha256"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not a readable document-tower record ({type(exc).__name__}: {exc}); "
                             "retrain the student or restore the file") from None


def check_length(tower: DocumentTower, max_doc_length: int | None) -> None:
    """A document length other than the tower's would embed documents unlike training did."""
    if max_doc_length is not None and max_doc_length != tower.max_length:
        raise UsageError(f"--max-doc-length {max_doc_length}: this student's documents are embedded by "
                         f"{tower.model} at {tower.max_length} tokens, as in training; leave the option out")
