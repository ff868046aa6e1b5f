"""``rdistill entropy``: a thin typer wrapper over :mod:`rdistill.entropy`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rdistill.commands._common import OutputOpt
from rdistill.errors import UsageError


def command(
    source: Annotated[str, typer.Argument(help="A scored TREC run, or training groups (JSONL) from rdistill "
                                          "sample; - (default) reads stdin.", metavar="INPUT")] = "-",
    definition: Annotated[str, typer.Option("--definition", help="softmax (of scores / T; nats, --bits for bits), "
                                            "pairwise (mean binary entropy of sigmoid((ti - tj) / T) over pairs; "
                                            "bits) or sumnorm (p = t / sum t; same-sign scores only).")] = "softmax",
    temperature: Annotated[float, typer.Option("--temperature", "-T", min=1e-9, help="Scores are divided by T "
                                               "(softmax, pairwise).")] = 1.0,
    k: Annotated[int | None, typer.Option("--k", "-k", min=1, help="Only each query's top k candidates by score. "
                                          "Default: all (a whole group).")] = None,
    bits: Annotated[bool, typer.Option("--bits", help="softmax and sumnorm in bits instead of nats.")] = False,
    keep: Annotated[str | None, typer.Option("--keep", help="Cut queries by entropy and emit the kept part of the "
                                             "input: below-median, above-median, below-q3, above-q1, inner (within "
                                             "the 1.5 IQR fences), outer, or percentile:LO:HI.")] = None,
    entropy_out: Annotated[str | None, typer.Option("--entropy-out", help="With --keep: write the per-query "
                                                    "entropy JSONL here.", metavar="FILE")] = None,
    output: OutputOpt = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Save a histogram of per-query entropy (with the "
                                             "cut marked) as a PNG.", metavar="FILE.png")] = None,
    select: Annotated[str | None, typer.Option("--select", help="Instead of measuring: per query, the --size "
                                               "sub-ranking chosen by entropy, written as training groups: greedy "
                                               "(swaps from the top --size, --objective min or max) or "
                                               "max-variance.", show_default=False)] = None,
    size: Annotated[int, typer.Option("--size", "-c", min=2, help="With --select: documents per "
                                      "sub-ranking.")] = 8,
    objective: Annotated[str, typer.Option("--objective", help="With --select greedy: min or max "
                                           "entropy.")] = "min",
) -> None:
    """Per-query entropy of a teacher's ranking; optionally keep only the queries of an entropy cut.

    Reads a scored TREC run (one candidate set per query, its top --k) or training groups from rdistill sample
    (one set per group, told apart by a first character '{'), and writes one JSON line per query (per group):
    query_id, entropy, n (candidates), definition, temperature. A summary (quartiles, mean) goes to stderr.

    Definitions: softmax H = -sum p log p, p = softmax(t / T) (default; nats); pairwise: the mean over pairs of
    the binary entropy of sigmoid((ti - tj) / T), in bits (the authors' training-set statistic); sumnorm:
    p = t / sum t (the authors' cut code), refused when scores mix signs.

    --keep cuts across queries by numpy percentiles of their entropy, named by what it keeps (below-X keeps
    H < X, above-X keeps H >= X; inner keeps Q1 - 1.5 IQR <= H <= Q3 + 1.5 IQR, outer the rest) and writes the
    kept part of the input, unchanged, so it pipes on; the entropy JSONL then goes to --entropy-out.

    --select picks, per query of a scored run, the sub-ranking of --size documents (of its top --k) whose
    entropy (--definition, -T) is lowest or highest, and writes it as positive-free training groups
    ("positives": "none", labels 0, the teacher's scores; meta: entropy, pool) that rdistill train reads.
    greedy starts from the teacher's top --size and makes the best single swap (one document out, one in) while
    it lowers (--objective min) or raises (max) the entropy: a local optimum, deterministic. max-variance takes
    the --size scores of largest variance (always a top i plus a bottom --size - i, compared exactly), a
    closed-form stand-in for the lowest entropy. Queries with fewer than --size documents are skipped and named.

    \b
    Example:
      rdistill entropy < scored.trec > entropy.jsonl
      rdistill entropy --definition pairwise --k 100 --plot entropy.png < scored.trec > entropy.jsonl
      rdistill entropy --keep below-q3 --entropy-out entropy.jsonl < groups.jsonl > groups.below-q3.jsonl
      rdistill entropy <(zcat scored.trec.gz) > entropy.jsonl
      rdistill entropy --select greedy --size 8 --objective min -T 0.2 --k 100 < teacher.trec > low.jsonl
    """
    import contextlib

    from rdistill import entropy as ent
    from rdistill.io import open_output, rereadable, write_jsonl

    if definition not in ent.DEFINITIONS:
        raise UsageError(f"--definition {definition!r}: expected one of {', '.join(ent.DEFINITIONS)}")
    if entropy_out is not None and keep is None:
        raise UsageError("--entropy-out goes with --keep (without a cut, the entropy JSONL is the output)")
    if bits and definition == "pairwise":
        raise UsageError("pairwise entropy is always in bits; --bits applies to softmax and sumnorm")
    if select is not None:
        _select(source, select, size, objective, definition, temperature, k, bits,
                [name for name, value in (("--keep", keep), ("--entropy-out", entropy_out), ("--plot", plot))
                 if value is not None], output)
        return
    # The input's kind is peeked at (one open); only a cut needs a second pass, to emit the kept part: then a
    # stream (stdin, a pipe, /dev/fd/N) is spooled once to a temporary file.
    with rereadable(source) if keep is not None else contextlib.nullcontext(source) as path:
        measured = ent.measure(path, definition, temperature, k, bits)
        values = measured.values
        bounds = ent.cut_bounds(values, keep) if keep is not None else None
        unit = "bits" if bits or definition == "pairwise" else "nats"
        _report(ent.summary(values), definition, unit, keep, bounds,
                sum(ent.kept(v, bounds) for v in values) if bounds else None)
        if plot is not None:
            ent.plot(values, plot, f"Per-query teacher entropy ({definition}, T={temperature:g}, "
                     f"{len(values)} {'groups' if measured.groups else 'queries'})"
                     + (f"; keep {keep}" if keep else ""), bounds, f"entropy ({unit})")
        if bounds is None:
            with open_output(output) as out:
                write_jsonl(out, measured.records)
            return
        if entropy_out is not None:
            with open_output(entropy_out) as out:
                write_jsonl(out, measured.records)
        with open_output(output) as out:
            ent.cut(path, measured, bounds, out)


def _select(source: str, select: str, size: int, objective: str, definition: str, temperature: float,
            k: int | None, bits: bool, others: list[str], output: str | None) -> None:
    from rdistill.entropy_select import SelectStats
    from rdistill.entropy_select import select as choose
    from rdistill.io import dumps, open_output, peek_line, source_name

    if others:
        raise UsageError(f"--select writes groups: leave out {', '.join(others)} (for measuring or cutting)")
    if k is not None and k < size:
        raise UsageError(f"--k {k} leaves fewer documents than --size {size}")
    first = peek_line(source)  # stdin is not used up
    if first is not None and first.lstrip().startswith("{"):
        raise UsageError(f"{source_name(source)}: --select reads a scored TREC run (each query's pool), not "
                         "training groups")
    stats = SelectStats()
    with open_output(output) as out:
        for group in choose(source, select, size, objective, definition, temperature, k, bits, stats):
            out.write(dumps(group.record()) + "\n")
    line = f"entropy --select {select}: {stats.written} groups of {size} from {stats.queries} queries"
    if stats.too_small:
        shown = ", ".join(stats.too_small[:5]) + (", ..." if len(stats.too_small) > 5 else "")
        line += f"; {len(stats.too_small)} queries skipped: fewer than {size} documents ({shown})"
    print(line, file=sys.stderr)


def _report(stats: dict[str, float], definition: str, unit: str, keep: str | None, bounds: Any,
            kept: int | None) -> None:
    line = (f"entropy ({definition}, {unit}) over {int(stats['queries'])}: mean {stats['mean']:.4f}  "
            f"min {stats['min']:.4f}  Q1 {stats['q1']:.4f}  median {stats['median']:.4f}  Q3 {stats['q3']:.4f}  "
            f"max {stats['max']:.4f}")
    print(line, file=sys.stderr)
    if keep is not None:
        low, high, inside = bounds
        where = f"[{low:.4f}, {high:.4f})" if inside else f"outside [{low:.4f}, {high:.4f})"
        print(f"keep {keep}: entropy {where}: {kept} of {int(stats['queries'])} kept", file=sys.stderr)
