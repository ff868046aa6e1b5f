"""``rdistill train``: a thin typer wrapper over :func:`rdistill.training.train`."""

from __future__ import annotations

from typing import Annotated

import typer

from rdistill.commands._common import CorpusOpt, DeviceOpt, QueriesOpt, SeedOpt
from rdistill.training.losses import kinds_help, loss_names, losses_help


def command(
    queries: QueriesOpt,
    corpus: CorpusOpt,
    out: Annotated[str, typer.Option("--out", help="Folder to write the trained model into (a Hugging Face "
                                     "folder, plus rdistill_train.json).", metavar="DIR")],
    groups: Annotated[str, typer.Argument(help="Training groups JSONL (from rdistill sample); - for stdin.",
                                          metavar="GROUPS")] = "-",
    model: Annotated[str, typer.Option("--model", help="Initial checkpoint: a folder or all-MiniLM-L6-v2.")]
    = "all-MiniLM-L6-v2",
    student: Annotated[str, typer.Option("--student", help="cross (query and document in one input, 2-label "
                                         "head) or bi (tied encoder, dot product).")] = "cross",
    loss: Annotated[str, typer.Option("--loss", help=f"{loss_names()} (see above); "
                                      f"{loss_names(lambda row: row.needs_teacher, 'and')} need the groups' teacher "
                                      "scores. Groups by kind (their positives field): " + kinds_help())] = "lce",
    temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature T of --loss kl. The loss "
                                               "is multiplied by T^2 (Hinton's convention, as sentence-transformers "
                                               "does), so the gradient keeps its size as T changes; recorded as "
                                               "loss_formula in rdistill_train.json.")] = 1.0,
    alpha: Annotated[float, typer.Option("--alpha", help="--loss adrmse: steepness of the sigmoid in the student's "
                                         "approximate ranks, 1 + sum_j sigmoid(alpha (s_j - s_i)).")] = 1.0,
    teacher_scale: Annotated[float, typer.Option("--teacher-scale", help="Multiply the teacher's scores by this "
                                                 "before the loss: 20 for a cosine (bi-encoder) teacher such as "
                                                 "all-MiniLM-L6-v2, whose margins are otherwise tiny; 1 for a "
                                                 "cross-encoder's logits.")] = 1.0,
    init_layers: Annotated[int | None, typer.Option("--init-layers", min=1, help="Keep only the first N "
                                                    "layers of the initial encoder (a smaller student).")] = None,
    group_size: Annotated[int | None, typer.Option("--group-size", min=2, help="Documents per query: the "
                                                   "positive and G-1 negatives, drawn once per query (seeded) from "
                                                   "larger groups; a smaller group trains whole (a note counts "
                                                   "them), and a G that no group reaches is refused. "
                                                   "rdistill_train.json records the sizes trained on. Default: "
                                                   "the groups as given.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Queries per micro-batch (each with "
                                            "its group).")] = 8,
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="Micro-batches per optimizer step.")] = 2,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate of AdamW.")] = 1e-5,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")] = 0.01,
    warmup: Annotated[float, typer.Option("--warmup", help="Fraction of the steps spent warming up linearly, "
                                          "then the rate decays linearly to 0.")] = 0.1,
    max_grad_norm: Annotated[float, typer.Option("--max-grad-norm", help="Clip the gradient norm (0: off).")]
    = 1.0,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Optimizer steps to train for "
                                                  "(passing over the groups as often as needed).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Passes over the groups (default 1 "
                                               "when --max-steps is not given).")] = None,
    max_query_length: Annotated[int, typer.Option("--max-query-length", min=1, help="Query tokens kept.")] = 30,
    max_doc_length: Annotated[int, typer.Option("--max-doc-length", min=1, help="Document tokens kept.")] = 200,
    pooling: Annotated[str, typer.Option("--pooling", help="Bi-encoder pooling: cls or mean.")] = "cls",
    in_batch_negatives: Annotated[bool, typer.Option("--in-batch-negatives", help="Bi-encoder with "
                                                     f"{loss_names(lambda row: row.in_batch)}: also "
                                                     "use the other queries' documents of the batch as "
                                                     "negatives, as Tevatron and sentence-transformers train. "
                                                     "Each takes the teacher's score for the query where the groups "
                                                     "file has one, else (a label-0 negative) the query's lowest "
                                                     "teacher score. Memory: no extra encoder pass (each document "
                                                     "is embedded once); the scores grow from B x G to B x (B G) "
                                                     "per micro-batch, and the pairwise and listwise losses' "
                                                     "B x G x G terms to B x (B G)^2 (B 8, G 16: 131k floats).")]
    = False,
    frozen_documents: Annotated[bool, typer.Option("--frozen-documents", help="Bi-encoder: train the query "
                                                   "tower only; every document keeps --model's embedding (the "
                                                   "corpus is embedded once, cached, and shared with a bi-encoder "
                                                   "teacher of the same model and --max-doc-length: all-MiniLM-L6-v2 "
                                                   "scores at 256 tokens), so a step encodes only queries. The "
                                                   "folder records the document tower; score-teacher uses it.")]
    = False,
    doc_index: Annotated[str | None, typer.Option("--doc-index", help="With --frozen-documents: the dense index "
                                                  "folder to take the document embeddings from (built there if "
                                                  "absent; refused if made by another model or settings). "
                                                  "Default: the shared cache.", metavar="DIR")] = None,
    seed: SeedOpt = 42,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=0, help="Save resumable state to "
                                                  "OUT/checkpoint every N steps (0: never).")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue exactly from OUT/checkpoint (same "
                                         "arguments and data).")] = False,
    stop_after: Annotated[int | None, typer.Option("--stop-after", min=1, help="Stop after step N, leaving a "
                                                   "checkpoint to --resume from (e.g. for time-limited jobs).")]
    = None,
    device: DeviceOpt = "auto",
    amp: Annotated[str, typer.Option("--amp", help="Mixed precision on a GPU: none, bf16 or fp16; losses are "
                                     "computed in fp32 either way.")] = "none",
) -> None:
    """Train a student ranker on training groups, by distillation or from labels.

    Reads groups (one JSON object a line: query_id, doc_ids with the positive first, labels, teacher scores;
    a group listing a document twice, or a label that is not an integer grade, is refused at its line),
    looks up the texts in --queries and --corpus, and trains a cross-encoder or bi-encoder student from --model
    with AdamW, a linear schedule with warmup and gradient accumulation. The result in --out is a Hugging Face
    folder that `rdistill score-teacher --model OUT` (cross) or `rdistill retrieve --dense --model OUT` (bi)
    loads directly, with OUT/rdistill_train.json recording the arguments, data hash, group sizes, versions and
    losses. Ctrl-C prints one line saying whether a checkpoint (--checkpoint-every) is kept for --resume. The
    same seed gives the same weights on the CPU. Under `torchrun --nproc-per-node N -m rdistill train ... GROUPS`
    it trains data-parallel (gloo on CPU, nccl on GPU) with the same global batch.

    \b
    Losses (one fp32 loss per query, averaged over the global batch):
    LOSSES_HELP

    Groups come in three kinds (the "positives" field `rdistill sample` writes): judged (column 0 a judged
    positive), pseudo (the teacher's top documents as positives) and none (a positive-free list, teacher scores
    only). Which losses take which: KINDS_HELP A group of another kind is refused with its line.
    Groups of different lengths in one batch are masked: padding never enters a loss.

    \b
    Example:
      rdistill train --student cross --model all-MiniLM-L6-v2 --init-layers 2 --loss marginmse \\
          --queries ../shared/data/scifact --corpus ../shared/data/scifact --group-size 8 \\
          --max-steps 200 --seed 1 --out student < groups.jsonl
      mkfifo groups.fifo
      rdistill sample --strategy window --window 1:100 --qrels ../shared/data/scifact --split train \\
          < teacher.trec > groups.fifo &
      rdistill train --student cross --model all-MiniLM-L6-v2 --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact --out student groups.fifo
      rdistill score-teacher --model student --queries ../shared/data/scifact \\
          --corpus ../shared/data/scifact < bm25.test.trec > student.trec
    """
    from rdistill.commands._common import check_corpus, check_stdin
    from rdistill.training import TrainConfig, train

    check_stdin({"the groups": groups, "--queries": queries, "--corpus": corpus})
    check_corpus(corpus)

    train(TrainConfig(
        model=model, queries=queries, corpus=corpus, out=out, groups=groups, student=student, loss=loss,
        temperature=temperature, alpha=alpha, teacher_scale=teacher_scale, group_size=group_size, batch_size=batch_size,
        grad_accum=grad_accum, lr=lr,
        weight_decay=weight_decay, warmup=warmup, max_grad_norm=max_grad_norm, max_steps=max_steps, epochs=epochs,
        max_query_length=max_query_length, max_doc_length=max_doc_length, init_layers=init_layers,
        pooling=pooling, in_batch_negatives=in_batch_negatives, frozen_documents=frozen_documents,
        doc_index=doc_index, seed=seed, checkpoint_every=checkpoint_every,
        resume=resume, stop_after=stop_after, device=None if device == "auto" else device, amp=amp))


# The losses' entries, one a row of the table (see LOSSES_HELP above).
command.__doc__ = (command.__doc__ or "").replace("    LOSSES_HELP", losses_help("    ")).replace(
    "KINDS_HELP", kinds_help())
