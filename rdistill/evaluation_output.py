"""How ``rdistill eval`` writes its results: the table, trec_eval -q's per-query layout, JSON, and the tests.

Kept apart from :mod:`rdistill.evaluation` (the measures) so a Python user can print an evaluation exactly as the
command does: ``write_evaluations(sys.stdout, evaluate_many(...), ["ndcg@10"])``.
"""

from __future__ import annotations

from typing import Any, TextIO

from rdistill.evaluation import Evaluation
from rdistill.schema import is_finite
from rdistill.stats import Comparison


def write_evaluations(out: TextIO, evaluations: list[Evaluation], keys: list[str], digits: int = 4, *,
                      per_query: bool = False, json: bool = False, comparison: Comparison | None = None) -> None:
    """Write ``evaluations`` as the command does: per query (trec_eval -q, or JSON Lines), JSON, or an aligned
    table followed by the comparison's tests when there is one."""
    if per_query:
        _write_per_query(out, evaluations, keys, digits, json)
    elif json:
        _write_json(out, evaluations, comparison)
    else:
        _write_table(out, evaluations, keys, digits)
        if comparison is not None:
            _write_tests(out, comparison, digits)


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _write_per_query(out: TextIO, evaluations: list[Evaluation], keys: list[str], digits: int, json: bool) -> None:
    from rdistill.io import dumps

    several = len(evaluations) > 1
    for e in evaluations:
        if json:
            for q in e.queries:
                record: dict[str, Any] = {"run": e.name} if several else {}
                record["query_id"] = q
                record.update({k: e.per_query[k][q] for k in keys})
                out.write(dumps(record) + "\n")
            continue
        if several:  # trec_eval's own header line, so that blocks of several runs can be told apart
            out.write(f"runid\tall\t{e.name}\n")
        for q in e.queries:
            for k in keys:
                out.write(f"{k}\t{q}\t{_fmt(e.per_query[k][q], digits)}\n")
        out.write(f"num_q\tall\t{len(e.queries)}\n")
        for k in keys:
            out.write(f"{k}\tall\t{_fmt(e.mean[k], digits)}\n")


def _write_json(out: TextIO, evaluations: list[Evaluation], comparison: Comparison | None) -> None:
    from rdistill.io import dumps

    if len(evaluations) == 1:
        out.write(dumps(evaluations[0].to_json()) + "\n")
        return
    for e in evaluations:
        record: dict[str, Any] = {"run": e.name, **e.to_json()}
        if comparison is not None:
            if e.name == comparison.baseline:
                record["baseline"] = True
            record["vs_baseline"] = {t.measure: {"t": _finite(t.t), "p": t.p, "p_adjusted": t.p_adjusted,
                                                 "significant": t.significant}
                                     for t in comparison.paired if t.run == e.name}
            record["equivalence"] = {t.measure: {"best": t.best, "difference": t.difference, "p": t.p,
                                                 "p_adjusted": t.p_adjusted, "equivalent": t.equivalent}
                                     for t in comparison.equivalence if t.run == e.name}
        out.write(dumps(record) + "\n")


def _finite(value: float) -> float | None:
    return value if is_finite(value) else None


def _table(out: TextIO, header: list[str], rows: list[list[str]], text_columns: int = 1) -> None:
    """Aligned columns: the first ``text_columns`` (names) to the left, the numbers to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell.ljust(width) if i < text_columns else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        out.write("  ".join(cells).rstrip() + "\n")


def _write_table(out: TextIO, evaluations: list[Evaluation], keys: list[str], digits: int) -> None:
    rows = [[e.name, *(_fmt(e.mean[k], digits) for k in keys), str(len(e.queries))] for e in evaluations]
    _table(out, ["run", *keys, "queries"], rows)


def _p(value: float) -> str:
    return f"{value:.3g}" if value >= 1e-3 or value == 0 else f"{value:.1e}"


def _write_tests(out: TextIO, c: Comparison, digits: int) -> None:
    n_runs = len({t.run for t in c.paired}) or 1
    out.write(f"\nPaired t-test (two-sided) of each run against the baseline {c.baseline}; p-values of each measure "
              f"corrected over {n_runs} run(s) ({c.correction}); significant: corrected p < {c.alpha:g}\n")
    _table(out, ["measure", "run", "queries", "mean", "baseline", "t", "p", f"p_{c.correction}", "significant"],
           [[t.measure, t.run, str(t.n), _fmt(t.mean, digits), _fmt(t.baseline_mean, digits), f"{t.t:.3f}",
             _p(t.p), _p(t.p_adjusted), "yes" if t.significant else "no"] for t in c.paired], text_columns=2)
    out.write(f"\nTOST equivalence to the best run of each measure (two one-sided paired t-tests), margin "
              f"+-{c.margin:g}, alpha {c.tost_alpha:g}, {c.correction} correction; p = max(p_lower, p_upper)\n")
    _table(out, ["measure", "run", "best", "queries", "difference", "p_lower", "p_upper", "p", f"p_{c.correction}",
                 "equivalent"],
           [[e.measure, e.run, e.best, str(e.n), f"{e.difference:+.{digits}f}", _p(e.p_lower), _p(e.p_upper),
             _p(e.p), _p(e.p_adjusted), "yes" if e.equivalent else "no"] for e in c.equivalence], text_columns=3)
    out.write("\nEquivalence groups (the best run, then the runs equivalent to it):\n")
    for measure, members in c.groups().items():
        out.write(f"{measure}: {', '.join(members)}\n")
