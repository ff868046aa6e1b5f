"""The study's report: markdown tables (loss x sampling source; entropy cuts) with equivalence groups, and the plot
of per-query teacher entropy against student effectiveness, all computed from the run files a study leaves.

Layout read (what the Makefile writes)::

    RUNS/COLLECTION/SOURCE.LOSS.sSEED.trec        a student's re-ranking of a test collection
    RUNS/COLLECTION/SOURCE~CUT.LOSS.sSEED.trec    a student trained on an entropy cut of SOURCE's groups
    BASELINES/COLLECTION/NAME.trec                e.g. bm25.trec, teacher.trec

Several seeds of one system are averaged per query before anything is tested, so a row is one system.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rdistill.errors import UsageError
from rdistill.io import read_run
from rdistill.schema import Qrels, Run

NAME = re.compile(r"^(?P<source>[^.~]+)(?:~(?P<cut>[^.]+))?\.(?P<loss>[^.]+)\.s(?P<seed>\d+)$")
MAIN_STUDY = "Sampling source x loss"
CUT_STUDY = "Entropy cuts"


@dataclass(frozen=True)
class System:
    source: str
    loss: str
    cut: str | None = None

    @property
    def label(self) -> str:
        return f"{self.source}~{self.cut}.{self.loss}" if self.cut else f"{self.source}.{self.loss}"


@dataclass(frozen=True)
class Collection:
    name: str
    qrels: Qrels


def parse_student(stem: str) -> tuple[System, int] | None:
    match = NAME.match(stem)
    if match is None:
        return None
    return System(match["source"], match["loss"], match["cut"]), int(match["seed"])


def discover(runs_dir: Path, collection: str) -> dict[System, list[Path]]:
    """Student runs of one collection, grouped by system (one path per seed)."""
    found: dict[System, list[Path]] = defaultdict(list)
    folder = runs_dir / collection
    if not folder.is_dir():
        return {}
    for path in sorted(folder.glob("*.trec")):
        parsed = parse_student(path.stem)
        if parsed is not None:
            found[parsed[0]].append(path)
    return dict(found)


def mean_over_seeds(per_seed: Iterable[dict[str, float]]) -> dict[str, float]:
    """Average per-query values over seeds; a query missing from one seed's run counts as 0 there."""
    seeds = list(per_seed)
    queries = sorted(set().union(*seeds))
    return {q: float(np.mean([s.get(q, 0.0) for s in seeds])) for q in queries}


def load_runs(paths: list[Path]) -> list[Run]:
    return [read_run(p) for p in paths]


def format_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def parse_collection_arg(text: str) -> tuple[str, str, str | None]:
    """'NAME=SPEC[:SPLIT]' -> (name, spec, split)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise UsageError(f"--qrels {text!r}: expected NAME=SPEC[:SPLIT], e.g. scifact=../shared/data/scifact:test")
    spec, colon, split = rest.rpartition(":")
    if not colon or "/" in split:
        return name, rest, None
    return name, spec, split


@dataclass
class StudyTable:
    title: str
    systems: list[System]
    # column label -> system label -> mean over queries (of the seed-averaged per-query values)
    columns: dict[str, dict[str, float]]
    # column label -> labels statistically equivalent to that column's best (TOST), best included
    equivalent: dict[str, set[str]]
    best: dict[str, str]
    baselines: dict[str, dict[str, float]]
    # How a row without a cut is named in this table: the entropy-cut table holds the uncut students of the cut
    # source as its reference ("trained on all queries"), so a cut is read against what it removed queries from.
    uncut_note: str = ""
    # system label -> seeds averaged in its row (rows of one table can differ when some systems were rerun)
    seeds: dict[str, int] = field(default_factory=dict)

    def best_baseline(self, column: str) -> str | None:
        """The baseline above every student of the column (bold goes to the best row, baselines included)."""
        best_student = self.columns[column].get(self.best.get(column, ""), float("-inf"))
        above = [(values[column], name) for name, values in self.baselines.items()
                 if column in values and values[column] > best_student]
        return max(above)[1] if above else None

    def markdown(self) -> str:
        header = ["loss", "sampling", "seeds", *self.columns]
        rows = []
        top_baseline = {column: self.best_baseline(column) for column in self.columns}
        for system in sorted(self.systems, key=lambda s: (s.loss, s.source, s.cut or "")):
            cells = [system.loss, system.source + (f" ({system.cut})" if system.cut else self.uncut_note),
                     str(self.seeds.get(system.label, "-"))]
            for column, values in self.columns.items():
                value = values.get(system.label)
                if value is None:
                    cells.append("-")
                    continue
                text = f"{value:.4f}"
                if self.best.get(column) == system.label and top_baseline[column] is None:
                    text = f"**{text}**"
                if system.label in self.equivalent.get(column, set()):
                    text += " ≈"
                cells.append(text)
            rows.append(cells)
        for name, values in self.baselines.items():
            rows.append(["(baseline)", name, "-",
                         *((f"**{values[c]:.4f}**" if top_baseline[c] == name else f"{values[c]:.4f}")
                           if c in values else "-" for c in self.columns)])
        return f"### {self.title}\n\n" + format_table(header, rows)


def evaluate_systems(systems: dict[System, list[Path]], qrels: Qrels, measure: str) -> dict[System, dict[str, float]]:
    """Per-query values of one measure for each system, averaged over its seeds."""
    from rdistill.evaluation import evaluate

    out = {}
    for system, paths in systems.items():
        per_seed = [evaluate(qrels, run, [measure], name=system.label).per_query[measure] for run in load_runs(paths)]
        out[system] = mean_over_seeds(per_seed)
    return out


def build_tables(runs_dir: Path, collections: list[Collection], baselines_dir: Path | None, *,
                 margin: float, alpha: float) -> tuple[list[StudyTable], dict[System, dict[str, float]]]:
    """The study tables and, for the plot, every system's per-query nDCG@10 on the in-domain collection."""
    from rdistill.evaluation import evaluate
    from rdistill.stats import compare

    in_domain = collections[0]
    columns: list[tuple[Collection, str, str]] = [(in_domain, "ndcg@10", f"{in_domain.name} nDCG@10"),
                                                  (in_domain, "map", f"{in_domain.name} AP")]
    columns += [(c, "ndcg@10", f"{c.name} nDCG@10") for c in collections[1:]]
    per_column: dict[str, dict[System, dict[str, float]]] = {}
    seeds: dict[str, int] = {}
    for collection, measure, label in columns:
        systems = discover(runs_dir, collection.name)
        for system, paths in systems.items():
            seeds[system.label] = max(seeds.get(system.label, 0), len(paths))
        per_column[label] = evaluate_systems(systems, collection.qrels, measure) if systems else {}
    all_systems = sorted({s for values in per_column.values() for s in values}, key=lambda s: s.label)
    if not all_systems:
        raise UsageError(f"{runs_dir}: no student runs found (expected COLLECTION/SOURCE.LOSS.sSEED.trec)")
    baselines: dict[str, dict[str, float]] = defaultdict(dict)
    if baselines_dir is not None:
        for collection, measure, label in columns:
            for path in sorted((baselines_dir / collection.name).glob("*.trec")):
                ev = evaluate(collection.qrels, read_run(path), [measure], name=path.stem)
                baselines[path.stem][label] = ev.mean[measure]
    tables = []
    cut = [s for s in all_systems if s.cut is not None]
    reference = [s for s in all_systems if s.cut is None and any((c.source, c.loss) == (s.source, s.loss) for c in cut)]
    for title, members, note in ((MAIN_STUDY, [s for s in all_systems if s.cut is None], ""),
                                 (CUT_STUDY, cut + reference if cut else [], " (all queries)")):
        if not members:
            continue
        means: dict[str, dict[str, float]] = {}
        equivalent: dict[str, set[str]] = {}
        best: dict[str, str] = {}
        for label, values in per_column.items():
            present = [s for s in members if s in values]
            means[label] = {s.label: float(np.mean(list(values[s].values()))) for s in present}
            if len(present) >= 2:
                comparison = compare({s.label: {label: values[s]} for s in present}, [label], present[0].label,
                                     margin=margin, tost_alpha=alpha)
                groups = comparison.groups()[label]
                best[label] = groups[0]
                equivalent[label] = set(groups[1:])
            elif present:
                best[label] = present[0].label
        tables.append(StudyTable(title, members, means, equivalent, best, dict(baselines), note,
                                 {s.label: seeds[s.label] for s in members}))
    first_label = columns[0][2]
    return tables, per_column[first_label]


def read_entropy(path: str | Path) -> dict[str, float]:
    """Per-query entropy from `rdistill entropy`'s JSONL (fields query_id and entropy)."""
    from rdistill.io import iter_jsonl, require, source_name

    name = source_name(path)
    out: dict[str, float] = {}
    for lineno, obj in iter_jsonl(path):
        out[require(obj, "query_id", name, lineno)] = float(require(obj, "entropy", name, lineno, (int, float)))
    return out


def plot_entropy_vs_effectiveness(entropy: dict[str, float], per_query: dict[System, dict[str, float]],
                                  path: str | Path, measure: str = "nDCG@10") -> None:
    """One point per (query, student): the teacher's entropy on that query against the student's effectiveness,
    with each student's binned means as a line, so a trend with entropy is visible through the noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A grid has dozens of students: their points would bury each other, so past a handful only the quintile-mean
    # lines are drawn, over the points of all students in grey, with the legend beside the axes.
    many = len(per_query) > 8
    fig, ax = plt.subplots(figsize=(10, 5) if many else (7, 4.5), dpi=110)
    edges = np.quantile(list(entropy.values()), np.linspace(0, 1, 6)) if entropy else np.array([0, 1])
    for system in sorted(per_query, key=lambda s: s.label):
        values = per_query[system]
        queries = [q for q in values if q in entropy]
        if not queries:
            continue
        x = np.array([entropy[q] for q in queries])
        y = np.array([values[q] for q in queries])
        bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        centres = [(edges[b] + edges[b + 1]) / 2 for b in range(len(edges) - 1) if np.any(bins == b)]
        means = [y[bins == b].mean() for b in range(len(edges) - 1) if np.any(bins == b)]
        if many:
            ax.scatter(x, y, s=4, alpha=0.05, color="grey")
            ax.plot(centres, means, linewidth=1.5, marker="o", markersize=3, label=system.label)
        else:
            points = ax.scatter(x, y, s=8, alpha=0.35, label=system.label)
            ax.plot(centres, means, color=points.get_facecolor()[0][:3], linewidth=2)  # type: ignore[index]
    ax.set_xlabel("teacher entropy of the query's ranking (softmax, nats)")
    ax.set_ylabel(f"student {measure} on the query")
    ax.set_title("Per-query teacher entropy against student effectiveness (lines: quintile means)")
    if many:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + len(per_query) // 20)
    else:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    # Through open_output_bytes, as every rdistill output: atomic (a failure leaves no half PNG), a folder refused,
    # a symlink followed, a FIFO or device streamed to.
    from rdistill.io import open_output_bytes

    with open_output_bytes(path) as out:
        fig.savefig(out, format="png")
    plt.close(fig)


def render(tables: list[StudyTable], collections: list[Collection], margin: float, alpha: float,
           plot: str | None, costs: str | None = None) -> str:
    lines = ["# rdistill study report", "",
             f"In-domain: {collections[0].name}; out-of-domain: "
             f"{', '.join(c.name for c in collections[1:]) or 'none'}. Students re-rank BM25's candidates; a row "
             "averages its seeds per query.", "",
             "Every table ends with the references: BM25 (the candidates re-ranked), the teacher, and student-init "
             "(the student before training).", "",
             f"**Bold**: the best row of a column, baselines included. ≈: a student statistically equivalent to the "
             f"best student by two one-sided paired t-tests (TOST, margin ±{margin} absolute, alpha {alpha}, "
             "Holm-corrected).", ""]
    for table in tables:
        lines += [table.markdown(), ""]
    if costs:
        lines += [costs, ""]
    if plot:
        lines += [f"![per-query teacher entropy against student nDCG@10]({Path(plot).name})", ""]
    return "\n".join(lines)
