"""The paper table: rows backbone x label, columns datasets, cells ``mean ± std``.

Accuracy-like metrics (fractions) are shown in percent. The best mean of each column (ties on
the displayed value included) is bold in Markdown and LaTeX; ``*`` marks a Holm-adjusted paired
t-test p < 0.05 against the baseline of the same backbone and dataset. The ``excluded`` column
counts the trials of the row that did not finish (failed, diverged, pruned), which are never
averaged in; a footnote lists them per cell. All text is built from sorted rows with fixed float
formats, so the same runs give byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from mpbench.report.stats import ALPHA, FRACTION_METRICS, higher_is_better

MARK: Final = "*"
CSV_FLOAT: Final = "%.10g"


@dataclass(frozen=True)
class PaperTable:
    """The display table and what it was built from.

    Args:
        cells: display strings (no markup), index (backbone, label), columns datasets + excluded.
        best: booleans of the same shape, True where a cell is the best of its column.
        notes: footnote lines.
        metric: the metric shown.

    Example:
        >>> table = paper_table(summary)  # doctest: +SKIP
        >>> table.markdown().splitlines()[0]  # doctest: +SKIP
        '| backbone | variant | synth | excluded |'
    """

    cells: pd.DataFrame
    best: pd.DataFrame
    notes: tuple[str, ...]
    metric: str

    def markdown(self) -> str:
        """The table as GitHub Markdown, best cells bold, notes below."""
        head = ["backbone", "variant", *map(str, self.cells.columns)]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (backbone, label), row in self.cells.iterrows():
            texts = [
                f"**{t}**" if self.best.loc[(backbone, label), c] and t else t
                for c, t in row.items()
            ]
            lines.append("| " + " | ".join([backbone, label, *texts]) + " |")
        return "\n".join([*lines, "", *self.notes]) + "\n"

    def latex(self) -> str:
        """The table as booktabs LaTeX (pandas Styler), best cells bold."""
        cells = self.cells.map(lambda t: t.replace("±", r"$\pm$").replace(MARK, r"$^{*}$"))
        cells.index = cells.index.set_names(["backbone", "variant"])
        best = self.best
        styler = cells.style.apply(
            lambda col: ["font-weight: bold;" if b else "" for b in best[col.name]], axis=0
        )
        styler = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
        body = styler.to_latex(
            hrules=True,
            convert_css=True,
            column_format="ll" + "r" * len(cells.columns),
            multirow_align="t",
            clines=None,
        )
        notes = "".join(f"% {n}\n" for n in self.notes)
        return body + notes

    def csv_rows(self) -> pd.DataFrame:
        """The display table as a flat frame (for printing)."""
        return self.cells.reset_index()


def _cell(mean: float, std: float, scale: float, sig: bool) -> str:
    """``mean ± std`` with two decimals, ``*`` when significant; empty when no data."""
    if math.isnan(mean):
        return ""
    spread = "n/a" if math.isnan(std) else f"{std * scale:.2f}"
    return f"{mean * scale:.2f} ± {spread}" + (MARK if sig else "")


def _note(row: pd.Series) -> str | None:
    """A footnote on the trials of one setting that were not averaged in (or None)."""
    parts = [
        f"{int(row[c])} {name}"
        for c, name in (
            ("n_failed", "failed"),
            ("n_diverged", "diverged"),
            ("n_pruned", "pruned"),
            ("n_other", "other"),
        )
        if row[c]
    ]
    if not parts:
        return None
    return f"{row['backbone']} / {row['label']} / {row['dataset']}: " + ", ".join(parts)


def paper_table(summary: pd.DataFrame) -> PaperTable:
    """Pivot the stats table of :func:`mpbench.report.stats.summarize` to the paper layout."""
    metric = str(summary["metric"].iloc[0])
    scale = 100.0 if metric in FRACTION_METRICS else 1.0
    sig = summary["p_holm"].lt(ALPHA).fillna(False)
    summary = summary.assign(
        text=[
            _cell(m, s, scale, g)
            for m, s, g in zip(summary["mean"], summary["std"], sig, strict=True)
        ],
        shown=(summary["mean"] * scale).round(2),
    )
    order = summary.drop_duplicates(["backbone", "label"])[["backbone", "label"]]
    index = pd.MultiIndex.from_frame(order.sort_values(["backbone"], kind="stable"))
    cells = summary.pivot(index=["backbone", "label"], columns="dataset", values="text")
    cells = cells.reindex(index).fillna("")
    shown = summary.pivot(index=["backbone", "label"], columns="dataset", values="shown")
    shown = shown.reindex(index)
    target = shown.max() if higher_is_better(metric) else shown.min()
    best = shown.eq(target, axis=1) & shown.notna()
    excluded = (
        summary.groupby(["backbone", "label"])[["n_failed", "n_diverged", "n_pruned", "n_other"]]
        .sum()
        .sum(axis=1)
    )
    cells["excluded"] = excluded.reindex(index).astype(int).astype(str).to_numpy()
    best["excluded"] = False
    cells.columns.name = best.columns.name = None
    notes = [n for n in (_note(r) for _, r in summary.iterrows()) if n]
    unit = " (%)" if scale == 100.0 else ""
    head = (
        f"Metric: {metric}{unit}, mean ± std over seeds; bold: best per column; "
        f"{MARK}: Holm-adjusted paired t-test p < {ALPHA} vs baseline."
    )
    if notes:
        notes = ["Not averaged in (counted in 'excluded'):", *notes]
    return PaperTable(cells=cells, best=best, notes=(head, *notes), metric=metric)


def write_tables(summary: pd.DataFrame, table: PaperTable, out_dir: str | Path) -> list[Path]:
    """Write table.md, table.tex and table.csv (the full stats table) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "table.md", out / "table.tex", out / "table.csv"]
    paths[0].write_text(table.markdown(), encoding="utf-8")
    paths[1].write_text(table.latex(), encoding="utf-8")
    summary.to_csv(paths[2], index=False, float_format=CSV_FLOAT, lineterminator="\n")
    return paths


def rich_table(table: PaperTable) -> object:
    """A rich Table of the paper table (best cells bold) for the console."""
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=f"{table.metric}", caption="\n".join(table.notes), caption_justify="left")
    out.add_column("backbone")
    out.add_column("variant")
    for column in table.cells.columns:
        out.add_column(str(column), justify="right")
    for (backbone, label), row in table.cells.iterrows():
        texts = [
            f"[bold]{t}[/bold]" if table.best.loc[(backbone, label), c] and t else t
            for c, t in row.items()
        ]
        out.add_row(escape(str(backbone)), escape(str(label)), *texts)
    return out
