"""``rdistill convert``: a thin typer wrapper over :mod:`rdistill.interchange`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rdistill.commands._common import OutputOpt, SplitOpt
from rdistill.errors import InputError, UsageError
from rdistill.interchange import READ_FORMATS, WRITE_FORMATS

if TYPE_CHECKING:
    from rdistill.schema import Group


def command(
    source: Annotated[str, typer.Argument(help="The training file to convert; - for stdin.", metavar="INPUT")] = "-",
    from_: Annotated[str, typer.Option("--from", help="Input format: groups (rdistill sample), authors (triples "
                                       "JSONL), sentence-transformers (hard-negatives JSONL).")] = "groups",
    to: Annotated[str, typer.Option("--to", help="Output format: groups, authors, tevatron, flagembedding.")]
    = "groups",
    scores_json: Annotated[str | None, typer.Option("--scores-json", help="Teacher scores to attach, as the "
                                                    "authors' JSON {query_id: {doc_id: score}}.",
                                                    metavar="FILE")] = None,
    scores: Annotated[str | None, typer.Option("--scores", help="Teacher scores to attach, as a TREC run.",
                                               metavar="RUN")] = None,
    scores_out: Annotated[str | None, typer.Option("--scores-out", help="With --to authors: write the groups' "
                                                   "teacher scores here as {query_id: {doc_id: score}}.",
                                                   metavar="FILE")] = None,
    qrels: Annotated[str | None, typer.Option("--qrels", help="Judgments giving the groups' labels (default: "
                                              "the first document 1, the others 0).", metavar="SPEC")] = None,
    split: SplitOpt = None,
    queries: Annotated[str | None, typer.Option("--queries", help="Query texts (for tevatron and "
                                                "flagembedding).", metavar="SPEC")] = None,
    corpus: Annotated[str | None, typer.Option("--corpus", help="Document texts (for tevatron and "
                                               "flagembedding).", metavar="SPEC")] = None,
    prompt: Annotated[str, typer.Option("--prompt", help="FlagEmbedding's query instruction field.")] = "",
    output: OutputOpt = None,
) -> None:
    """Convert training groups to and from other tools' formats.

    Reads rdistill groups, the paper authors' triples ({"query_id", "doc_id_a": positive, "doc_id_b":
    [negatives]} with their scores JSON {query_id: {doc_id: score}} via --scores-json), or sentence-transformers
    hard negatives ({"qid", "pos": [...], "neg": {system: [...]}}: one group per positive, negatives of all
    systems deduplicated). Writes rdistill groups, the authors' triples (scores to --scores-out), Tevatron
    training JSONL or FlagEmbedding training JSONL (with pos_scores/neg_scores when there are teacher scores),
    joining texts from --queries and --corpus. Groups keep their order; nothing is sampled or cut.

    Every group written is one `rdistill train` accepts: a group whose positive --qrels does not judge
    relevant, or that lists a document twice, is refused at its input line, as is a query or document without
    its text in --queries/--corpus; an input that gives no group at all is refused, and a sentence-transformers
    line with no positive gives no group (a note counts them). Scores in --scores-json must be finite numbers.

    \b
    Example:
      rdistill convert --from authors --scores-json scores.json triples.jsonl > groups.jsonl
      rdistill convert --to authors --scores-out scores.json groups.jsonl > triples.jsonl
      rdistill convert --to tevatron --queries ../shared/data/scifact --corpus ../shared/data/scifact \\
          groups.jsonl > tevatron.jsonl
      rdistill convert --from authors --scores <(zcat teacher.trec.gz) triples.jsonl > groups.jsonl
    """
    from rdistill import interchange as ix
    from rdistill.commands._common import check_corpus, check_stdin
    from rdistill.io import dumps, open_output, read_run, source_name, write_text_atomic

    check_stdin({"INPUT": source, "--scores": scores, "--scores-json": scores_json, "--qrels": qrels,
                 "--queries": queries, "--corpus": corpus})
    check_corpus(corpus)
    if from_ not in READ_FORMATS:
        raise UsageError(f"--from {from_!r}: expected one of {', '.join(READ_FORMATS)}")
    if to not in WRITE_FORMATS:
        raise UsageError(f"--to {to!r}: expected one of {', '.join(WRITE_FORMATS)}")
    if scores_json is not None and scores is not None:
        raise UsageError("give the teacher scores once: --scores-json or --scores")
    if from_ == "groups" and (scores_json or scores):
        raise UsageError("groups carry their own scores; --scores/--scores-json are for authors or "
                         "sentence-transformers input")
    if to in ("tevatron", "flagembedding") and (queries is None or corpus is None):
        raise UsageError(f"--to {to} writes texts: give --queries and --corpus")
    if scores_out is not None and to != "authors":
        raise UsageError("--scores-out goes with --to authors")

    table = ix.load_score_json(scores_json) if scores_json else (read_run(scores) if scores else None)
    judged = None
    if qrels is not None:
        from rdistill.data import load_qrels

        judged = load_qrels(qrels, split)
    at: list[int | None] = [None]  # the input line of the group being converted, for errors about its texts

    def groups() -> Iterator[Group]:
        for lineno, group in ix.read_located(source, from_, table, judged):
            at[0] = lineno
            yield group

    query_text: dict[str, str] = {}
    store: Any = None
    if to in ("tevatron", "flagembedding"):
        from rdistill.data import load_queries
        from rdistill.docstore import DocStore

        query_text = load_queries(queries)  # type: ignore[arg-type]
        store = DocStore(corpus)  # type: ignore[arg-type]

    collected: dict[str, dict[str, float]] | None = {} if scores_out is not None else None
    with open_output(output) as out:
        try:
            for record in ix.convert(groups(), to, queries=query_text, queries_name=str(queries), store=store,
                                     prompt=prompt, scores_out=collected):
                out.write(dumps(record) + "\n")
        except ix.MissingText as exc:
            raise InputError(source_name(source), at[0], str(exc)) from None
        if collected is not None and not collected:  # inside the block: no triples file without its scores
            raise UsageError("--scores-out: the groups carry no teacher scores (\"scores\": null), so there is "
                             "nothing to write there; leave --scores-out out")
    if scores_out is not None:
        write_text_atomic(scores_out, dumps(collected) + "\n")
