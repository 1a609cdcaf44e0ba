"""The verdicts of a sequential grid in its report (table.csv / .md / .tex).

The runs of a sequential grid carry their design in the ``mpbench.design`` tag (seed schedule,
``[resolve]`` metric, alpha and margin); the report decides every comparison from the finished
runs with the same rule and pairing as the runner (:mod:`mpbench.study.sequential`), so it shows
the verdicts the study stopped on. A fixed-seed grid has no design and its report is unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from mpbench._markdown import markdown_table
from mpbench.report.stats import higher_is_better, metric_label

# columns table.csv gains on the rows of the design's metric
VERDICT_COLUMNS: Final = ["verdict", "seeds_used", "alpha_spent", "seq_low", "seq_high"]
HEADERS: Final = ["comparison", "verdict", "seeds used", "difference [repeated CI]"]


@dataclass(frozen=True)
class Decisions:
    """A sequential grid's verdicts as report columns, with the design stated in words.

    Args:
        metric: the metric the comparisons are decided on.
        rows: one row per comparison: the setting keys and :data:`VERDICT_COLUMNS`.
        design: the sentence stating the design (under the table).
        looks: the seed counts at which the design decides.
    """

    metric: str
    rows: pd.DataFrame
    design: str
    looks: tuple[int, ...] = ()

    def cells(self) -> pd.DataFrame:
        """The comparisons as display strings, one row each."""
        body = [comparison_cells(r) for _, r in self.rows.iterrows()]
        return pd.DataFrame(body, columns=HEADERS)

    def markdown(self) -> str:
        """The comparisons as a Markdown table under the design sentence."""
        lines = markdown_table(HEADERS, self.cells().itertuples(index=False))
        return "\n".join([self.design, "", *lines]) + "\n"

    def latex(self) -> str:
        """The comparisons as a booktabs tabular, the design as a comment above it."""
        styler = self.cells().style.hide(axis="index").format(escape="latex")
        styler = styler.format_index(escape="latex", axis=1)
        return f"% {self.design}\n" + styler.to_latex(hrules=True, column_format="lllr")


def comparison_cells(row: pd.Series) -> list[str]:
    """Name, verdict, seeds used and ``diff [low, high]`` of one comparison row."""
    fields = [f"{c}={row[c]}" for c in row.index if c not in (*VERDICT_COLUMNS, *NAME_COLUMNS)]
    where = f"vs baseline ({row['backbone']}, {row['dataset']})"
    name = " ".join([str(row["label"]), *fields, where])
    diff = "n/a"
    if not math.isnan(row["seq_low"]):
        diff = f"{row['delta_seq']:.4g} [{row['seq_low']:.4g}, {row['seq_high']:.4g}]"
    return [name, str(row["verdict"]), str(int(row["seeds_used"])), diff]


NAME_COLUMNS: Final = ("backbone", "dataset", "label", "delta_seq")


def run_design(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The design recorded on a study's grid runs (None for a fixed-seed grid); runs made
    under different designs are a ValueError."""
    if "design" not in runs:
        return None
    found = set(runs["design"].dropna())
    if len(found) > 1:
        raise ValueError(
            f"the runs were made under {len(found)} different sequential designs "
            f"({sorted(found)}); report them as separate studies"
        )
    return json.loads(found.pop()) if found else None


def decide_runs(runs: pd.DataFrame, design: dict[str, Any]) -> Decisions:
    """Decide every comparison of ``runs`` under ``design`` (the ``mpbench.design`` tag)."""
    from mpbench.report.sequential import Design
    from mpbench.study.sequential import resolve_runs

    looks = tuple(range(design["min"], design["max"] + 1, design["step"]))

    def make(n: int) -> Design:
        return Design(
            looks, alpha=design["alpha"], margin=design["margin"], comparisons=max(1, n),
            spending=design.get("spending", "obf"),  # runs tagged before the choice: OBF
        )  # fmt: skip

    metric = design["metric"]
    states = resolve_runs(runs, metric=metric, looks=looks, design=make)
    sign = 1.0 if higher_is_better(metric) else -1.0
    rows = [_row(st, sign) for st in states]
    names = list(states[0].names) if states else ["backbone", "dataset", "label"]
    frame = pd.DataFrame(rows, columns=[*names, "delta_seq", *VERDICT_COLUMNS])
    return Decisions(metric, frame, design_sentence(make(len(states)), metric), looks)


def _row(state: Any, sign: float) -> list[Any]:
    """One comparison as report values: the difference variant - baseline in the metric's
    units and its repeated interval (the rule's interval is oriented so that + is better)."""
    look = state.look
    if look is None:
        values = [math.nan, state.verdict, state.pairs, 0.0, math.nan, math.nan]
    else:
        low, high = sorted((sign * look.low + 0.0, sign * look.high + 0.0))  # + 0.0: no -0
        values = [sign * look.mean + 0.0, state.verdict, look.n, look.alpha_spent, low, high]
    return [*state.key, *values]


def design_sentence(design: Any, metric: str) -> str:
    """The design stated under the table."""
    from mpbench.report.sequential import spending_words

    looks = ", ".join(map(str, design.looks))
    return (
        f"Sequential design: verdicts on {metric_label(metric)} ({metric}), paired by seed with "
        f"the baseline, looked at after {looks} seeds; two-sided "
        f"{spending_words(design.spending)} alpha spending and an equivalence stop at margin "
        f"{design.margin:g}; family-wise alpha {design.alpha:g} over {design.comparisons} "
        f"comparison(s) (Bonferroni, {design.alpha_per_comparison:.4g} each). Difference = "
        f"variant - baseline; repeated CI: simultaneous {100 * (1 - design.alpha):g}% over "
        "all comparisons and looks."
    )


def add_verdicts(summary: pd.DataFrame, decisions: Decisions) -> pd.DataFrame:
    """``summary`` (the stats table) with :data:`VERDICT_COLUMNS` filled on the rows of the
    decided metric (empty on the others)."""
    on = [c for c in decisions.rows.columns if c not in (*VERDICT_COLUMNS, "delta_seq")]
    rows = decisions.rows.assign(metric=decisions.metric)[[*on, "metric", *VERDICT_COLUMNS]]
    return summary.merge(rows, on=[*on, "metric"], how="left")
