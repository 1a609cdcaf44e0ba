"""The paper table: rows backbone x label (x each varied field, e.g. ``lr``), columns dataset x
split, cells ``mean ± std``.

Each dataset gets one column per split that the metric was logged on (``val`` then ``test``);
a caption line above the table names each split's metric and its role, e.g. ``test top-1 %
(test split, reported only)``. Accuracy-like metrics (fractions) are shown in percent. The best
mean of each column (ties on the displayed value included) is bold in Markdown and LaTeX; ``*``
marks a Holm-adjusted paired t-test p < 0.05 against the baseline of the same backbone, dataset
and split (one Holm family per split). The ``excluded`` column counts the trials of the row that
did not finish (failed, diverged, pruned), which are never averaged in; a footnote lists them
per cell. The aggregate summary (:func:`aggregate_markdown`) gives per split and label the IQM
and the probability of improvement over the baseline with their bootstrap CIs. All text is built
from sorted rows with fixed float formats, so the same runs give byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from mpbench._markdown import markdown_table
from mpbench.report.stats import (
    ALPHA,
    BASELINE,
    BOOT_SEED,
    FRACTION_METRICS,
    RESAMPLES,
    SPLIT_NOTES,
    SPLITS,
    higher_is_better,
    metric_label,
    split_of,
)

MARK: Final = "*"
WAIT: Final = "data wait %"  # the column of each dataset with the loader's share of the loop
WAIT_NOTE: Final = (
    "data wait %: the share of the training loop spent waiting for the loader (mean over the "
    "finished runs, whole trial); above 10 % the device starved: more workers, the decoded-clip "
    "cache or a smaller short side."
)
CSV_FLOAT: Final = "%.10g"


@dataclass(frozen=True)
class PaperTable:
    """The display table and what it was built from.

    Args:
        cells: display strings (no markup), index (backbone, label, *varied fields), columns
            (dataset, split) plus ``("excluded", "")``.
        best: booleans of the same shape, True where a cell is the best of its column.
        notes: footnote lines.
        metrics: the metrics shown, one per split, in column order (val before test).
        caption: the line above the table naming each split's metric.

    Example:
        >>> table = paper_table(summary)  # doctest: +SKIP
        >>> table.markdown().splitlines()[2]  # doctest: +SKIP
        '| backbone | variant | synth (val) | synth (test) | excluded |'
    """

    cells: pd.DataFrame
    best: pd.DataFrame
    notes: tuple[str, ...]
    metrics: tuple[str, ...]
    caption: str

    def headers(self) -> list[str]:
        """Flat column names: ``dataset (split)``; the dataset alone for metrics of no split."""
        return [d if sp in ("", "none") else f"{d} ({sp})" for d, sp in self.cells.columns]

    @property
    def row_names(self) -> list[str]:
        """The names of the row columns: backbone, variant and the varied fields."""
        return ["backbone", "variant", *self.cells.index.names[2:]]

    def markdown(self) -> str:
        """The table as GitHub Markdown: caption, table (best cells bold), notes."""
        rows = []
        for key, row in self.cells.iterrows():
            texts = [f"**{t}**" if self.best.loc[key, c] and t else t for c, t in row.items()]
            rows.append([*map(str, key), *texts])
        lines = markdown_table([*self.row_names, *self.headers()], rows)
        return "\n".join([self.caption, "", *lines, "", *self.notes]) + "\n"

    def latex(self) -> str:
        """The table as booktabs LaTeX (pandas Styler), dataset over split, best cells bold."""
        cells = self.cells.map(lambda t: t.replace("±", r"$\pm$").replace(MARK, r"$^{*}$"))
        cells.index = cells.index.set_names(self.row_names)
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
            multicol_align="c",
            clines=None,
        )
        return f"% {self.caption}\n" + body + "".join(f"% {n}\n" for n in self.notes)

    def csv_rows(self) -> pd.DataFrame:
        """The display table as a flat frame (for printing)."""
        flat = self.cells.set_axis(self.headers(), axis=1)
        return flat.reset_index()


def _unit(metric: str) -> str:
    """`` %`` for fractions shown in percent, else nothing."""
    return " %" if metric in FRACTION_METRICS else ""


def _scale(metric: str) -> float:
    """Display factor of ``metric``: 100 for fractions, else 1."""
    return 100.0 if metric in FRACTION_METRICS else 1.0


def split_caption(metrics: list[str] | tuple[str, ...]) -> str:
    """``val top-1 % (val split: ...); test top-1 % (test split, reported only)``."""
    return "; ".join(f"{metric_label(m)}{_unit(m)} ({SPLIT_NOTES[split_of(m)]})" for m in metrics)


def _cell(mean: float, std: float, scale: float, sig: bool) -> str:
    """``mean ± std`` with two decimals, ``*`` when significant; empty when no data."""
    if math.isnan(mean):
        return ""
    spread = "n/a" if math.isnan(std) else f"{std * scale:.2f}"
    return f"{mean * scale:.2f} ± {spread}" + (MARK if sig else "")


def _note(row: pd.Series, fields: list[str]) -> str | None:
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
    setting = "".join(f" {f}={row[f]}" for f in fields)
    return f"{row['backbone']} / {row['label']}{setting} / {row['dataset']}: " + ", ".join(parts)


def _texts(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``text`` (the cell) and ``shown`` (the displayed mean) columns."""
    scale = summary["metric"].map(_scale)
    sig = summary["p_holm"].lt(ALPHA).fillna(False)
    text = [
        _cell(m, s, f, g)
        for m, s, f, g in zip(summary["mean"], summary["std"], scale, sig, strict=True)
    ]
    return summary.assign(text=text, shown=(summary["mean"] * scale).round(2))


def _best(shown: pd.DataFrame, metrics: dict[str, str]) -> pd.DataFrame:
    """True where a displayed mean is the best of its (dataset, split) column."""
    best = shown.copy()
    for col in shown.columns:
        values = shown[col]
        target = values.max() if higher_is_better(metrics[col[1]]) else values.min()
        best[col] = values.eq(target) & values.notna()
    return best.astype(bool)


def _excluded(first: pd.DataFrame, index: pd.MultiIndex) -> list[str]:
    """Per row: the number of trials not averaged in (counted once, from one split)."""
    names = list(index.names)
    counts = first.groupby(names)[["n_failed", "n_diverged", "n_pruned", "n_other"]]
    return counts.sum().sum(axis=1).reindex(index).astype(int).astype(str).tolist()


def _wait_cells(first: pd.DataFrame, rows: list[str], index: pd.MultiIndex) -> pd.DataFrame:
    """Per row and dataset, the mean data_wait_share of the finished runs in percent: one
    ``(dataset, WAIT)`` column per dataset, none when no run logged the share."""
    if "data_wait_share" not in first or first["data_wait_share"].isna().all():
        return pd.DataFrame(index=index)
    wide = first.pivot(index=rows, columns="dataset", values="data_wait_share").reindex(index)
    text = wide.map(lambda v: "" if pd.isna(v) else f"{100 * v:.1f}")
    text.columns = pd.MultiIndex.from_tuples([(d, WAIT) for d in text.columns])
    return text


def varied_columns(summary: pd.DataFrame) -> list[str]:
    """The varied-field columns of a stats table (between ``label`` and ``split``)."""
    columns = list(summary.columns)
    return columns[columns.index("label") + 1 : columns.index("split")]


def paper_table(summary: pd.DataFrame) -> PaperTable:
    """Pivot the stats table of :func:`mpbench.report.stats.summarize` to the paper layout."""
    splits = sorted(set(summary["split"]), key=SPLITS.index)
    metrics = {sp: str(summary.loc[summary["split"] == sp, "metric"].iloc[0]) for sp in splits}
    fields = varied_columns(summary)
    rows = ["backbone", "label", *fields]
    summary = _texts(summary)
    first = summary[summary["split"] == splits[0]]
    order = first.drop_duplicates(rows)[rows]
    index = pd.MultiIndex.from_frame(order.sort_values(["backbone"], kind="stable"))
    columns = pd.MultiIndex.from_product([sorted(set(summary["dataset"])), splits])
    wide = {
        name: summary.pivot(index=rows, columns=["dataset", "split"], values=name).reindex(
            index=index, columns=columns
        )
        for name in ("text", "shown")
    }
    cells = wide["text"].fillna("")
    best = _best(wide["shown"], metrics)
    waits = _wait_cells(first, rows, index)
    for col in waits.columns:
        cells[col], best[col] = waits[col], False
    cells[("excluded", "")] = _excluded(first, index)
    best[("excluded", "")] = False
    cells.columns.names = best.columns.names = [None, None]
    notes = [n for n in (_note(r, fields) for _, r in first.iterrows()) if n]
    if notes:
        notes = ["Not averaged in (counted in 'excluded'):", *notes]
    shown = tuple(metrics.values())
    caption = (
        f"Columns per dataset: {split_caption(shown)}. Cells: mean ± std over seeds; bold: best "
        f"per column; {MARK}: Holm-adjusted paired t-test p < {ALPHA} vs the baseline of the "
        "same split."
    )
    if len(waits.columns):
        caption += f" {WAIT_NOTE}"
    return PaperTable(cells=cells, best=best, notes=tuple(notes), metrics=shown, caption=caption)


def _interval(point: float, low: float, high: float, scale: float) -> str:
    """``point [low, high]`` with two decimals; ``n/a`` when undefined."""
    if math.isnan(point):
        return "n/a"
    return f"{point * scale:.2f} [{low * scale:.2f}, {high * scale:.2f}]"


def _aggregate_rows(part: pd.DataFrame, fields: list[str]) -> list[list[str]]:
    """The cells of the rows of one split of the aggregate table."""
    scale = _scale(str(part["metric"].iloc[0]))
    lines = []
    for _, r in part.iterrows():
        iqm = _interval(r["iqm"], r["iqm_low"], r["iqm_high"], scale)
        is_base = r["variant"] == BASELINE
        p = "—" if is_base else _interval(r["p_improve"], r["p_low"], r["p_high"], 1.0)
        cells = [r["label"], *(str(r[f]) for f in fields), str(r["n_tasks"]), str(r["n_runs"])]
        lines.append([*cells, iqm, p, str(r["p_tasks"])])
    return lines


def aggregate_markdown(agg: pd.DataFrame) -> str:
    """The aggregate table of :func:`mpbench.report.stats.aggregate` as Markdown, one table
    per split, each under a line naming its metric and split."""
    columns = list(agg.columns)
    fields = columns[columns.index("label") + 1 : columns.index("variant")]
    names = ["variant", *fields, "tasks", "runs", "IQM [95% CI]", "P(improvement) [95% CI]"]
    lines: list[str] = []
    for metric, part in agg.groupby("metric", sort=False):
        lines += [f"Aggregate over tasks (backbone x dataset): {split_caption([str(metric)])}.", ""]
        lines += [*markdown_table([*names, "P tasks"], _aggregate_rows(part, fields)), ""]
    resamples = int(agg["resamples"].iloc[0]) if len(agg) else RESAMPLES
    seed = int(agg["boot_seed"].iloc[0]) if len(agg) else BOOT_SEED
    notes = (
        "IQM: mean of the middle 50% of the finished runs pooled over tasks and seeds "
        "(floor(n/4) runs cut at each end). P(improvement): P(variant > baseline) over all pairs "
        "of runs of a task, ties counting 1/2, averaged over the 'P tasks' both ran on (lower is "
        "better for losses). [ ]: 95% stratified bootstrap percentile CI (runs resampled within "
        f"each task), {resamples} resamples, seed {seed}."
    )
    return "\n".join([*lines, notes]) + "\n"


def write_tables(
    summary: pd.DataFrame,
    table: PaperTable,
    out_dir: str | Path,
    *,
    under: tuple[str, str] = ("", ""),
) -> list[Path]:
    """Write table.md, table.tex and table.csv (the full stats table) into ``out_dir``;
    ``under`` is Markdown and LaTeX that go under the table (a sequential grid's verdicts)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "table.md", out / "table.tex", out / "table.csv"]
    paths[0].write_text(table.markdown() + under[0], encoding="utf-8")
    paths[1].write_text(table.latex() + under[1], encoding="utf-8")
    summary.to_csv(paths[2], index=False, float_format=CSV_FLOAT, lineterminator="\n")
    return paths


def write_aggregate(agg: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write aggregate.md and aggregate.csv into ``out_dir``."""
    return _write_md_csv(Path(out_dir), "aggregate", aggregate_markdown(agg), agg)


def _write_md_csv(out: Path, name: str, markdown: str, frame: pd.DataFrame) -> list[Path]:
    """Write ``name``.md (``markdown``) and ``name``.csv (``frame``) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.md", out / f"{name}.csv"]
    paths[0].write_text(markdown, encoding="utf-8")
    frame.to_csv(paths[1], index=False, float_format=CSV_FLOAT, lineterminator="\n")
    return paths


def gap_markdown(gap: pd.DataFrame) -> str:
    """The appearance gap of :func:`mpbench.report.stats.appearance_gap` as Markdown."""
    columns = list(gap.columns)
    fields = columns[columns.index("label") + 1 : columns.index("variant")]
    metric = str(gap["metric"].iloc[0])
    scale = _scale(metric)
    lines = [
        f"Appearance gap: {metric_label(metric)} minus the same on the appearance-shifted "
        f"test split (test_shift){_unit(metric)}, per seed, then mean ± std and 95% t interval "
        "over seeds (positive: the unseen appearance costs accuracy).",
        "",
        "| "
        + " | ".join(["backbone", "dataset", "label", *fields, "seeds", "gap [95% CI]"])
        + " |",
        "|" + "---|" * (5 + len(fields)),
    ]
    for _, r in gap.iterrows():
        cell = f"{r['gap'] * scale:.2f} ± {r['gap_std'] * scale:.2f} " + (
            f"[{r['gap_low'] * scale:.2f}, {r['gap_high'] * scale:.2f}]"
            if not math.isnan(r["gap_low"])
            else "[n/a]"
        )
        keys = [str(r[c]) for c in ("backbone", "dataset", "label", *fields)]
        lines.append("| " + " | ".join([*keys, str(int(r["n"])), cell]) + " |")
    return "\n".join(lines) + "\n"


def write_gap(gap: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write appearance_gap.md and .csv into ``out_dir`` (nothing when ``gap`` has no rows)."""
    if gap.empty:
        return []
    return _write_md_csv(Path(out_dir), "appearance_gap", gap_markdown(gap), gap)


def rich_table(table: PaperTable) -> object:
    """A rich Table of the paper table (best cells bold) for the console."""
    from rich.markup import escape
    from rich.table import Table

    title = " | ".join(metric_label(m) + _unit(m) for m in table.metrics)
    caption = "\n".join([table.caption, *table.notes])
    out = Table(title=title, caption=escape(caption), caption_justify="left")
    for name in table.row_names:
        out.add_column(escape(name))
    for header in table.headers():
        out.add_column(escape(header), justify="right")
    for key, row in table.cells.iterrows():
        texts = [f"[bold]{t}[/bold]" if table.best.loc[key, c] and t else t for c, t in row.items()]
        out.add_row(*(escape(str(k)) for k in key), *texts)
    return out
