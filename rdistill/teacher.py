"""Score every (query, document) pair of a run with a teacher (or any trained student) and re-rank by it.

The run is processed query by query in bounded memory. Consecutive queries are grouped into *chunks* of about
``chunk_pairs`` pairs; a chunk is the unit of batching (pairs sorted by length across the chunk, so each batch pads
only to its own longest pair) and of journaling. With an output file, every finished chunk is appended to
``OUTPUT.partial`` and fsynced before the next one starts; ``resume`` skips the chunks the journal holds and the
canonical output is written atomically from the journal at the end. Chunk boundaries depend only on the input and
the settings, never on where a job was interrupted, so every pair is scored in the same batch as in an
uninterrupted run and the resumed output is byte-identical to it (padding can change a float's last bits).

A bi-encoder teacher's document embeddings are by default computed once for the whole corpus, in corpus order, into
a dense index folder (the same format ``rdistill retrieve --dense`` writes, so its ``--index DIR/dense`` can be
reused). With ``doc_embeddings="run"`` only the run's documents are embedded, chunk by chunk and never cached: the
right choice for a model scored once on a small re-ranking (a freshly trained student on BM25's top 20 of a large
corpus). A chunk embeds its own documents whatever was embedded before, so resumed output stays byte-identical.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.errors import InputError, RdistillError, UsageError
from rdistill.io import (
    Source,
    dumps,
    exclusive,
    format_run_query,
    is_plain_output,
    iter_run_queries_located,
    open_output,
    source_name,
    stdout_text,
)
from rdistill.journal import Journal, JournalMismatch, header, identity, journal_path, open_journal
from rdistill.retrieval.store import MissingDocument
from rdistill.schema import Qrels

JOURNAL_MAGIC = "#rdistill-score-teacher"  # the first word of this job's journal (rdistill.journal)


@dataclass(frozen=True)
class TeacherSettings:
    """Everything that changes a teacher's scores; recorded in the sidecar and checked on --resume."""

    model: str
    kind: str | None = None  # None: detected from the checkpoint
    batch_size: int = 64
    max_query_length: int | None = None  # cross: 30; bi: the folder's max_seq_length
    max_doc_length: int | None = None  # cross: 200; bi: the folder's max_seq_length
    similarity: str = "dot"  # bi only: dot of the (config-normalised) embeddings, or cos
    device: str = "auto"
    dtype: str = "fp32"
    chunk_pairs: int = 4096
    embeddings_cache: str | None = None
    doc_embeddings: str = "corpus"  # bi only: "corpus" (cached index of every document) or "run" (per chunk)
    allow_new_head: bool = False  # cross only: score even when the checkpoint has no trained classification head
    bm25_variant: str = "okapi"  # --model bm25 only
    index: str | None = None  # --model bm25 only: retrieve's --index DIR (the index is DIR/bm25)


class CrossTeacher:
    needs_texts = True

    def __init__(self, s: TeacherSettings, corpus: str = "") -> None:  # the corpus: only a bi-encoder reads it
        from rdistill.models import CrossEncoder

        self.model = CrossEncoder(s.model, max_query_length=s.max_query_length or 30,
                                  max_doc_length=s.max_doc_length or 200, device=s.device, dtype=s.dtype,
                                  allow_new_head=s.allow_new_head)
        self.batch_size = s.batch_size

    def settings(self) -> dict[str, Any]:
        return {"kind": "cross", **self.model.settings()}

    def score(self, queries: list[str], doc_ids: list[str], texts: list[str]) -> np.ndarray:
        from rdistill.models import cut_texts

        del doc_ids
        # Cut first so the length sort sees what the model will see: a 5,000-character abstract cut to 200 tokens
        # is as long as a 1,000-character one. Cutting again inside encode_pairs gives the same tokens.
        m = self.model
        unique = list(dict.fromkeys(queries))
        cut = dict(zip(unique, cut_texts(m.tokenizer, unique, m.max_query_length), strict=True))
        docs = cut_texts(m.tokenizer, texts, m.max_doc_length)
        return m.score([cut[q] for q in queries], docs, self.batch_size)


class BiTeacher:
    """Query embeddings per chunk; document embeddings looked up in a dense index built once for the corpus, or
    (doc_embeddings="run") computed per chunk for the chunk's documents only."""

    def __init__(self, s: TeacherSettings, corpus: str) -> None:
        from rdistill.models import BiEncoder, resolve_model
        from rdistill.retrieval.dense import corpus_embeddings
        from rdistill.towers import DocumentTower, check_length

        tower = DocumentTower.read(resolve_model(s.model))
        if tower is not None:
            # An asymmetric student (train --frozen-documents): its own query tower, the recorded document tower.
            check_length(tower, s.max_doc_length)
            self.query_encoder = BiEncoder(s.model, max_length=s.max_query_length, device=s.device, dtype=s.dtype)
            self.encoder = tower.encoder(s.device, s.dtype)
        else:
            if (s.max_query_length is not None and s.max_doc_length is not None
                    and s.max_query_length != s.max_doc_length):
                raise UsageError("a bi-encoder teacher encodes queries and documents with one length limit: give "
                                 "--max-doc-length only, or equal limits")
            self.encoder = BiEncoder(s.model, max_length=s.max_doc_length or s.max_query_length, device=s.device,
                                     dtype=s.dtype)
            self.query_encoder = self.encoder
        if s.similarity not in ("dot", "cos"):
            raise UsageError(f"--similarity {s.similarity!r}: expected dot or cos")
        self.similarity = s.similarity
        self.batch_size = s.batch_size
        self.needs_texts = s.doc_embeddings == "run"
        self.index: Any = None
        if self.needs_texts:
            return
        self.index, self.rows = corpus_embeddings(corpus, self.encoder, s.embeddings_cache, s.batch_size)

    def settings(self) -> dict[str, Any]:
        # The model named is the one scoring queries (for an asymmetric student, the student itself, so that its
        # runs are attributed to it); an asymmetric student's document tower is named beside it.
        settings = {"kind": "bi", "similarity": self.similarity, **self.query_encoder.settings()}
        if self.query_encoder is not self.encoder:
            settings["document_tower"] = self.encoder.settings()
        return settings

    def _embed_unique(self, keys: list[str], texts: list[str], encoder: Any) -> np.ndarray:
        """Embeddings of texts[i] for each i, each distinct key encoded once."""
        where: dict[str, int] = {}
        unique: list[str] = []
        for key, text in zip(keys, texts, strict=True):
            if key not in where:
                where[key] = len(unique)
                unique.append(text)
        emb = encoder.encode(unique, batch_size=self.batch_size)
        return emb[[where[k] for k in keys]].astype(np.float64)

    def score(self, queries: list[str], doc_ids: list[str], texts: list[str]) -> np.ndarray:
        q = self._embed_unique(queries, queries, self.query_encoder)
        if self.index is None:
            d = self._embed_unique(doc_ids, texts, self.encoder)
        else:
            d = np.asarray(self.index.embeddings[self.rows.rows(doc_ids)], dtype=np.float64)
        if self.similarity == "cos":
            q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", q, d)


BM25_MODEL = "bm25"  # --model bm25: BM25 itself as the teacher, not a checkpoint


class BM25Teacher:
    """BM25 as a teacher: each pair's score from the index ``rdistill retrieve`` builds (the same folder and
    settings, so a pair in BM25's top k gets exactly retrieve's score); a document with no query term gets 0."""

    needs_texts = False

    def __init__(self, s: TeacherSettings, corpus: str) -> None:
        from rdistill.cache import cache_dir, short_hash
        from rdistill.retrieval.bm25 import BM25Index, BM25Params, build_key
        from rdistill.retrieval.store import IdRows

        params = BM25Params(variant=s.bm25_variant)
        folder = (Path(s.index) / "bm25" if s.index else
                  cache_dir("bm25", short_hash(dumps(build_key(corpus, params)))))
        self.index = BM25Index.open(corpus, folder, params)
        self.rows = IdRows(folder, self.index.ids)

    def settings(self) -> dict[str, Any]:
        return {"kind": "bm25", **self.index.params.as_dict()}

    def score(self, queries: list[str], doc_ids: list[str], texts: list[str]) -> np.ndarray:
        del texts
        rows = self.rows.rows(doc_ids)
        out = np.zeros(len(doc_ids), dtype=np.float64)
        at: dict[str, list[int]] = {}
        for i, query in enumerate(queries):
            at.setdefault(query, []).append(i)
        for query, where in at.items():  # one pass over the postings per query, then a lookup per pair
            token_ids = self.index.token_ids(query)
            if len(token_ids):
                out[where] = self.index.scores(token_ids)[rows[where]]
        return out


def load_teacher(settings: TeacherSettings, corpus: str) -> CrossTeacher | BiTeacher | BM25Teacher:
    if settings.model == BM25_MODEL:  # before importing torch: BM25 needs none of it
        return BM25Teacher(settings, corpus)
    from rdistill.models import detect_kind, resolve_model

    # Checked here, whatever the kind, so a cross-encoder run with a mistyped value fails as a bi-encoder run would.
    if settings.doc_embeddings not in ("corpus", "run"):
        raise UsageError(f"--doc-embeddings {settings.doc_embeddings!r}: expected corpus or run")
    kind = settings.kind or detect_kind(resolve_model(settings.model))
    if kind not in TEACHERS:
        raise UsageError(f"--kind {kind!r}: expected {' or '.join(TEACHERS)}")
    return TEACHERS[kind](settings, corpus)


# The teachers a checkpoint can be (--kind, or detected from the folder): a new kind is one class with needs_texts,
# settings() and score(queries, doc_ids, texts), and one row here. BM25 is chosen by --model bm25 instead.
TEACHERS: dict[str, type[CrossTeacher] | type[BiTeacher]] = {"cross": CrossTeacher, "bi": BiTeacher}


class Chunk(list):  # type: ignore[type-arg]
    """A chunk's (query id, pool) pairs, with ``digest``: what it was made from (each query's run lines: ids and
    scores, in file order, and its added positives). --resume compares it with the journal's, so a journal is only
    ever continued with the input it began with, even on stdin."""

    digest: str = ""
    # Per (query id, pool): the run line of each of the pool's documents (0 for a positive added from --qrels),
    # the query's own line being its first document's.
    where: list[list[int]]


def chunks(run: Source, shard: tuple[int, int], positives: Qrels | None,
           chunk_pairs: int) -> Iterator[Chunk]:
    """The run's queries in this shard, each pool with its judged positives added, grouped into chunks."""
    from rdistill.shards import in_shard

    chunk = _new_chunk()
    digest = hashlib.sha1()
    size = 0
    for qid, docs, lines in iter_run_queries_located(run):
        if not in_shard(qid, shard):
            continue
        pool = list(docs)
        if positives is not None:
            seen = set(pool)
            pool += [d for d, rel in sorted(positives.get(qid, {}).items()) if rel > 0 and d not in seen]
        chunk.append((qid, pool))
        chunk.where.append(lines + [0] * (len(pool) - len(lines)))
        digest.update(f"{qid}\t{dumps(docs)}\t{' '.join(pool)}\n".encode())
        size += len(pool)
        if size >= chunk_pairs:
            chunk.digest = digest.hexdigest()
            yield chunk
            chunk, size, digest = _new_chunk(), 0, hashlib.sha1()
    if chunk:
        chunk.digest = digest.hexdigest()
        yield chunk


def _new_chunk() -> Chunk:
    chunk = Chunk()
    chunk.where = []
    return chunk


def score_chunk(teacher: CrossTeacher | BiTeacher | BM25Teacher, chunk: list[tuple[str, list[str]]],
                queries: dict[str, str], store: Any, tag: str, run_name: str = "the run") -> str:
    """The canonical TREC lines of a chunk's queries, re-scored and re-sorted by the teacher.

    A query missing from ``queries`` or a document missing from the corpus is an error at the run line where its
    id stands (``run_name``:line), when the chunk knows its lines (see :class:`Chunk`)."""
    where: list[list[int]] = getattr(chunk, "where", None) or [[] for _ in chunk]
    lines = [n for pool_lines in where for n in pool_lines]

    def missing_doc(position: int, doc_id: str) -> RdistillError:
        line = lines[position] if position < len(lines) else None
        if line == 0:  # added from --qrels: no run line to point at
            return UsageError(f"document {doc_id!r}, a judged positive added from --qrels, is not in the corpus")
        return InputError(run_name, line, f"document {doc_id!r} is not in the corpus")

    q_texts: list[str] = []
    doc_ids: list[str] = []
    for (qid, pool), pool_lines in zip(chunk, where, strict=True):
        if qid not in queries:
            raise InputError(run_name, pool_lines[0] if pool_lines else None,
                             f"query {qid!r} of the run is not in --queries")
        q_texts += [queries[qid]] * len(pool)
        doc_ids += pool
    texts: list[str] = []
    if teacher.needs_texts:
        for n, doc_id in enumerate(doc_ids):
            doc = store.find(doc_id)
            if doc is None:
                raise missing_doc(n, doc_id)
            texts.append(doc.full_text)
    try:
        scores = teacher.score(q_texts, doc_ids, texts)
    except MissingDocument as exc:
        raise missing_doc(exc.position, exc.doc_id) from None
    out = []
    start = 0
    for qid, pool in chunk:
        part = scores[start:start + len(pool)]
        out.append(format_run_query(qid, zip(pool, (float(x) for x in part), strict=True), tag))
        start += len(pool)
    return "".join(out)


def score_run(run: Source, queries: dict[str, str], corpus: str, settings: TeacherSettings,
              output: str | None = None, resume: bool = False, shard: tuple[int, int] = (0, 1),
              positives: Qrels | None = None, tag: str | None = None) -> dict[str, Any]:
    """Re-score ``run`` with the teacher; write the TREC run to ``output`` (atomically, resumable) or stdout.

    Returns what the job did (teacher settings, counts), for the metadata sidecar.
    """
    from rdistill.docstore import DocStore

    if resume and (output is None or not is_plain_output(output)):
        raise UsageError("--resume needs -o FILE naming a regular file (the partial work is kept beside it)")
    if output is not None and Path(output).is_dir():
        raise UsageError(f"{output}: is a folder; give a file name for the output")
    teacher = load_teacher(settings, corpus)
    store = DocStore(corpus) if teacher.needs_texts else None
    name = tag or Path(settings.model.rstrip("/")).name  # as the user named it (a hub name, not its cache path)
    info: dict[str, Any] = {"teacher": teacher.settings(), "settings": asdict(settings), "shard": list(shard),
                            "tag": name, "input": source_name(run)}
    # The journal is bound to its job: settings, positives, the queries' texts, the corpus and the model files
    # here, and each chunk's input (see Chunk) as it is replayed.
    fingerprint = dumps({k: v for k, v in info.items() if k != "input"} |
                        {"positives": None if positives is None else sorted((q, sorted(d.items()))
                                                                            for q, d in positives.items()),
                         "queries": hashlib.sha1(dumps(sorted(queries.items())).encode()).hexdigest(),
                         "corpus": identity(corpus), "model_files": identity(settings.model)})
    if output is None:
        return _score(run, queries, teacher, store, settings, info, name, None, shard, positives)
    if not is_plain_output(output):  # a FIFO, a device, /dev/stdout: streamed to, no journal beside it
        with open_output(output) as sink:
            return _score(run, queries, teacher, store, settings, info, name, None, shard, positives, sink=sink)
    with exclusive(output), open_journal(output, header(JOURNAL_MAGIC, fingerprint), resume) as journal:
        return _score(run, queries, teacher, store, settings, info, name, journal, shard, positives, output)


def _score(run: Source, queries: dict[str, str], teacher: CrossTeacher | BiTeacher | BM25Teacher, store: Any,
           settings: TeacherSettings, info: dict[str, Any], name: str, journal: Journal | None,
           shard: tuple[int, int], positives: Qrels | None, output: str | None = None,
           sink: Any = None) -> dict[str, Any]:
    from rdistill.progress import progress  # not models': BM25 scoring imports no torch

    done = journal.done if journal is not None else []
    skip = len(done)
    bar = progress(None, "scoring", "pair")  # type: ignore[arg-type]  # total unknown while streaming
    n_queries = n_pairs = n_chunks = 0
    try:
        for i, chunk in enumerate(chunks(run, shard, positives, settings.chunk_pairs)):
            n_chunks += 1
            pairs = sum(len(pool) for _, pool in chunk)
            n_queries += len(chunk)
            n_pairs += pairs
            digest = chunk.digest
            if i < skip:
                if digest != done[i]:
                    raise JournalMismatch(f"{journal_path(output or '')}: --resume with other input: chunk {i + 1} of "
                                     f"this partial output was made from other queries or documents than "
                                     f"{source_name(run)} gives; delete it or run without --resume")
                continue
            lines = score_chunk(teacher, chunk, queries, store, name, source_name(run))
            if journal is None:
                (sink or stdout_text()).write(lines)
            else:
                journal.commit(lines, len(chunk), digest)
            bar.update(pairs)
    finally:
        bar.close()
    if journal is not None:
        journal.close()
    if skip > n_chunks:
        raise JournalMismatch(f"{journal_path(output or '')}: --resume with other input: this partial output holds "
                         f"{skip} chunks, more than {source_name(run)} gives; delete it or run without --resume")
    if n_queries == 0:  # a valid, empty share of a small run
        print(f"rdistill: note: no query of the run falls in shard {shard[0]}/{shard[1]}", file=sys.stderr)
    if journal is not None and output is not None:
        journal.write_output(output)
    info.update({"queries": n_queries, "pairs": n_pairs, "resumed_chunks": skip})
    return info
