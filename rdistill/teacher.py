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

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdistill.errors import InputError, Interrupted, RdistillError, UsageError
from rdistill.io import (
    Source,
    dumps,
    exclusive,
    format_run_query,
    iter_run_queries_located,
    open_output,
    os_fault,
    source_name,
)
from rdistill.schema import Qrels

JOURNAL_MAGIC = "#rdistill-score-teacher"
CHUNK_END = "#chunk"


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

    def __init__(self, s: TeacherSettings) -> None:
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
        from rdistill.docstore import cache_root
        from rdistill.models import BiEncoder
        from rdistill.retrieval.dense import DenseIndex, build_key

        if s.max_query_length is not None and s.max_doc_length is not None and s.max_query_length != s.max_doc_length:
            raise UsageError("a bi-encoder teacher encodes queries and documents with one length limit: give "
                             "--max-doc-length only, or equal limits")
        self.encoder = BiEncoder(s.model, max_length=s.max_doc_length or s.max_query_length, device=s.device,
                                 dtype=s.dtype)
        if s.similarity not in ("dot", "cos"):
            raise UsageError(f"--similarity {s.similarity!r}: expected dot or cos")
        self.similarity = s.similarity
        self.batch_size = s.batch_size
        self.needs_texts = s.doc_embeddings == "run"
        self.index: Any = None
        if self.needs_texts:
            return
        key = build_key(corpus, self.encoder, False)
        folder = (Path(s.embeddings_cache) if s.embeddings_cache else
                  cache_root() / "teacher-embeddings" / hashlib.sha1(dumps(key).encode()).hexdigest()[:16])
        self.index = DenseIndex.open(corpus, folder, self.encoder, batch_size=s.batch_size)
        self.rows = _IdRows(folder, self.index.ids)

    def settings(self) -> dict[str, Any]:
        return {"kind": "bi", "similarity": self.similarity, **self.encoder.settings()}

    def _embed_unique(self, keys: list[str], texts: list[str]) -> np.ndarray:
        """Embeddings of texts[i] for each i, each distinct key encoded once."""
        where: dict[str, int] = {}
        unique: list[str] = []
        for key, text in zip(keys, texts, strict=True):
            if key not in where:
                where[key] = len(unique)
                unique.append(text)
        emb = self.encoder.encode(unique, batch_size=self.batch_size)
        return emb[[where[k] for k in keys]].astype(np.float64)

    def score(self, queries: list[str], doc_ids: list[str], texts: list[str]) -> np.ndarray:
        q = self._embed_unique(queries, queries)
        if self.index is None:
            d = self._embed_unique(doc_ids, texts)
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
        from rdistill.docstore import cache_root
        from rdistill.retrieval.bm25 import BM25Index, BM25Params, build_key

        params = BM25Params(variant=s.bm25_variant)
        folder = (Path(s.index) / "bm25" if s.index else
                  cache_root() / "bm25" / hashlib.sha1(dumps(build_key(corpus, params)).encode()).hexdigest()[:16])
        self.index = BM25Index.open(corpus, folder, params)
        self.rows = _IdRows(folder, self.index.ids)

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


class MissingDocument(UsageError):
    """A document of a chunk that the teacher's index lacks; ``position`` is its place in the chunk's pairs, so
    :func:`score_chunk` can name the run line it came from."""

    def __init__(self, doc_id: str, position: int) -> None:
        super().__init__(f"document {doc_id!r} is not in the corpus")
        self.doc_id = doc_id
        self.position = position


class _IdRows:
    """Document id -> embedding row through :class:`rdistill.docstore.HashIndex`, its table saved memory-mapped."""

    def __init__(self, folder: Path, ids: Any) -> None:
        from rdistill.docstore import HashIndex, id_hash

        self.ids = ids
        path = folder / "idhash.npy"
        if not path.exists() or (folder / "meta.json").stat().st_mtime_ns > path.stat().st_mtime_ns:
            h = np.fromiter((id_hash(ids[i]) for i in range(len(ids))), dtype=np.uint64, count=len(ids))
            tmp = folder / f".idhash.tmp{os.getpid()}.npy"
            np.save(tmp, np.stack(HashIndex.sorted_table(h, np.arange(len(ids), dtype=np.uint64))))
            os.replace(tmp, path)
        table = np.load(path, mmap_mode="r")
        self.lookup = HashIndex(table[0], table[1])

    def rows(self, doc_ids: list[str]) -> np.ndarray:
        out = np.empty(len(doc_ids), dtype=np.int64)
        for n, doc_id in enumerate(doc_ids):
            for row in self.lookup.candidates(doc_id):
                if self.ids[row] == doc_id:
                    out[n] = row
                    break
            else:
                raise MissingDocument(doc_id, n)
        return out


def load_teacher(settings: TeacherSettings, corpus: str) -> CrossTeacher | BiTeacher | BM25Teacher:
    if settings.model == BM25_MODEL:  # before importing torch: BM25 needs none of it
        return BM25Teacher(settings, corpus)
    from rdistill.models import detect_kind, resolve_model

    # Checked here, whatever the kind, so a cross-encoder run with a mistyped value fails as a bi-encoder run would.
    if settings.doc_embeddings not in ("corpus", "run"):
        raise UsageError(f"--doc-embeddings {settings.doc_embeddings!r}: expected corpus or run")
    kind = settings.kind or detect_kind(resolve_model(settings.model))
    if kind == "cross":
        return CrossTeacher(settings)
    if kind == "bi":
        return BiTeacher(settings, corpus)
    raise UsageError(f"--kind {kind!r}: expected cross or bi")


class JournalMismatch(UsageError):
    """--resume with input other than the journal was made from."""


class JournalKept(UsageError):
    """The output could not be written, but the journal of scored chunks is good and kept for --resume."""


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


def journal_path(output: str | Path) -> Path:
    path = Path(output)
    return path.with_name(path.name + ".partial")


def _open_journal(path: Path, header: str, resume: bool) -> tuple[Any, list[str]]:
    """Open the journal for appending; on resume keep its committed chunks (cut any torn tail) and return their
    input digests."""
    done: list[str] = []
    if resume and path.exists():
        keep = 0
        with open(path, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").rstrip("\n")
            if first != header:
                raise UsageError(f"{path}: this partial output was made with other settings, queries, corpus or "
                                 "model; delete it or run without --resume to start over")
            keep = fh.tell()
            for line in fh:
                if line.startswith(CHUNK_END.encode()) and line.endswith(b"\n"):
                    fields = line.decode("utf-8", "replace").split()
                    keep = fh.tell()
                    done.append(fields[2] if len(fields) > 2 else "")
        fh = open(path, "r+b")  # type: ignore[assignment]  # noqa: SIM115 - the caller closes it
        fh.truncate(keep)
        fh.seek(keep)
        return fh, done
    if path.exists() and not resume:
        print(f"rdistill: note: {path} exists; starting over (use --resume to continue it)", file=sys.stderr)
    fh = open(path, "wb")  # type: ignore[assignment]  # noqa: SIM115 - the caller closes it
    try:
        with os_fault(path):
            fh.write((header + "\n").encode())
            _sync(fh)
    except BaseException:  # a full or failing disk before any work: leave no empty journal behind
        _close_quietly(fh)
        path.unlink(missing_ok=True)
        raise
    return fh, done


def _identity(spec: str) -> Any:
    """A file or folder as it is now (path, sizes, modification times): a changed corpus or retrained model gives
    another journal fingerprint, without hashing gigabytes."""
    path = Path(spec)
    if not path.exists():
        return spec  # a hub name or irds: id
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def _close_quietly(fh: Any) -> None:
    """Close a journal whose buffer may not be writable (a full disk): what is lost is a torn tail, which
    --resume cuts off, and the fault that matters has already been raised."""
    with contextlib.suppress(OSError):
        fh.close()


def _sync(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def score_run(run: Source, queries: dict[str, str], corpus: str, settings: TeacherSettings,
              output: str | None = None, resume: bool = False, shard: tuple[int, int] = (0, 1),
              positives: Qrels | None = None, tag: str | None = None) -> dict[str, Any]:
    """Re-score ``run`` with the teacher; write the TREC run to ``output`` (atomically, resumable) or stdout.

    Returns what the job did (teacher settings, counts), for the metadata sidecar.
    """
    from rdistill.docstore import DocStore

    if resume and output is None:
        raise UsageError("--resume needs -o FILE (the partial work is kept beside it)")
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
                         "corpus": _identity(corpus), "model_files": _identity(settings.model)})
    header = f"{JOURNAL_MAGIC} {hashlib.sha1(fingerprint.encode()).hexdigest()}"
    if output is None:
        return _score(run, queries, teacher, store, settings, info, name, None, [], shard, positives)
    with exclusive(output):
        path = journal_path(output)
        journal, done = _open_journal(path, header, resume)
        try:
            return _score(run, queries, teacher, store, settings, info, name, journal, done, shard, positives,
                          output)
        except (JournalMismatch, JournalKept):
            _close_quietly(journal)  # the journal is good; the input, or the output's disk, is not
            raise
        except RdistillError:
            # Bad input: a rerun needs other input, which this journal would refuse anyway. Leave nothing behind.
            _close_quietly(journal)
            path.unlink(missing_ok=True)
            raise
        except BaseException as exc:
            # A crash, Ctrl-C or a device fault: the finished chunks are good and the same command can go on.
            _close_quietly(journal)
            kept = path.exists() and path.stat().st_size > len(header) + 1
            if not kept:
                path.unlink(missing_ok=True)  # nothing finished: no journal to resume
            if isinstance(exc, KeyboardInterrupt):  # one line: what was kept and how to go on
                raise Interrupted("interrupted; " + (
                    f"the finished chunks are kept in {path}: the same command with --resume continues from them"
                    if kept else "no chunk had finished, so nothing was kept")) from None
            if kept:
                print(f"rdistill: note: finished chunks are kept in {path}; the same command with --resume "
                      "continues from them", file=sys.stderr)
            with os_fault(path):  # a full disk under the journal is one line naming it
                raise


def _score(run: Source, queries: dict[str, str], teacher: CrossTeacher | BiTeacher | BM25Teacher, store: Any,
           settings: TeacherSettings, info: dict[str, Any], name: str, journal: Any, done: list[str],
           shard: tuple[int, int], positives: Qrels | None, output: str | None = None) -> dict[str, Any]:
    from rdistill.progress import progress  # not models': BM25 scoring imports no torch

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
                sys.stdout.write(lines)
            else:
                journal.write((lines + f"{CHUNK_END} {len(chunk)} {digest}\n").encode())
                _sync(journal)
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
    if output is not None:
        path = journal_path(output)
        try:
            with open(path, encoding="utf-8") as src, open_output(output) as out:
                for line in src:
                    if not line.startswith("#"):
                        out.write(line)
        except UsageError as exc:  # the output's disk (full, read-only): every chunk is scored; keep them
            raise JournalKept(f"{exc}; the scores are kept in {path}: free the space and run the same command "
                              "with --resume to write them") from None
        path.unlink()
    info.update({"queries": n_queries, "pairs": n_pairs, "resumed_chunks": skip})
    return info
