"""Seed variance by its source (Bouthillier et al. 2021): weight initialisation vs data.

A trial's ``seed`` initialises the weights; its data seed (``data_seed``, else the seed) fixes
the synthetic clips, the data order and the augmentation. When a setting's finished runs cross
at least two seeds with at least two data seeds, every (seed, data seed) pair present once, the
variance of the metric splits by a two-way random-effects ANOVA without replication (method of
moments, negative components set to 0):

- ``var_init = (MS_seed - MS_residual) / J``, ``var_data = (MS_data - MS_residual) / I``,
- ``var_residual = MS_residual`` (their interaction and everything else),

for ``I`` seeds and ``J`` data seeds; ``share_*`` are each component over their sum. A setting
whose data seed is held fixed while the seeds vary measures initialisation alone
(``var_init`` = the variance over seeds, ``share_init`` = 1).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from mpbench._markdown import markdown_table
from mpbench.report.load import latest_runs
from mpbench.report.stats import add_labels, add_settings

SOURCES: Final = ("init", "data", "residual")
COLUMNS: Final = [
    "metric",
    "n_seeds",
    "n_data_seeds",
    "n_runs",
    "var_total",
    *(f"var_{s}" for s in SOURCES),
    *(f"share_{s}" for s in SOURCES),
]


def data_seeds(runs: pd.DataFrame) -> pd.Series:
    """Each run's data seed: its ``data_seed`` param, else its seed."""
    logged = pd.to_numeric(runs["param.data_seed"], errors="coerce")
    return logged.where(logged.notna(), runs["seed"].astype(float))


def components(y: np.ndarray) -> dict[str, float]:
    """Variance components of a seeds x data seeds table ``y`` (one run per cell)."""
    n_i, n_j = y.shape
    grand = y.mean()
    rows, cols = y.mean(axis=1), y.mean(axis=0)
    ms_i = n_j * float(((rows - grand) ** 2).sum()) / (n_i - 1)
    ms_j = n_i * float(((cols - grand) ** 2).sum()) / (n_j - 1)
    resid = y - rows[:, None] - cols[None, :] + grand
    ms_e = float((resid**2).sum()) / ((n_i - 1) * (n_j - 1))
    return {
        "init": max(0.0, (ms_i - ms_e) / n_j),
        "data": max(0.0, (ms_j - ms_e) / n_i),
        "residual": ms_e,
    }


def seed_variance(runs: pd.DataFrame, *, metric: str) -> pd.DataFrame:
    """Per setting whose data seeds were set apart from its seeds: the variance of ``metric``
    by source (see the module doc); empty when no run set ``data_seed``."""
    if "param.data_seed" not in runs or not runs["param.data_seed"].map(_is_set).any():
        return pd.DataFrame(columns=COLUMNS)
    labelled, keys = add_settings(add_labels(runs.assign(_data_seed=data_seeds(runs))))
    keys = [k for k in keys if k != "data_seed"]
    column = f"metric.{metric}"
    ok = latest_runs(labelled, column=column, keys=[*keys, "_data_seed"])
    rows = []
    for key, group in ok.groupby(keys, sort=True):
        table = group.pivot_table(index="seed", columns="_data_seed", values=column)
        row = _decompose(table)
        if row is not None:
            rows.append({**dict(zip(keys, key, strict=True)), "metric": metric, **row})
    return pd.DataFrame(rows, columns=[*keys, *COLUMNS])


def _is_set(value: object) -> bool:
    """Whether a logged ``data_seed`` param holds a number (not ``None``)."""
    return value is not None and str(value) not in ("None", "", "nan")


def _decompose(table: pd.DataFrame) -> dict[str, float] | None:
    """The variance row of one setting's seeds x data seeds table (None when it cannot split:
    one seed, or a crossing with holes)."""
    y = table.to_numpy(float)
    n_i, n_j = y.shape
    if n_i < 2 or np.isnan(y).any():
        return None
    if n_j == 1:  # data held fixed: the spread over seeds is initialisation alone
        var = {"init": float(np.var(y[:, 0], ddof=1)), "data": 0.0, "residual": 0.0}
    else:
        var = components(y)
    total = sum(var.values())
    shares = {s: (var[s] / total if total > 0 else math.nan) for s in SOURCES}
    return {
        "n_seeds": n_i,
        "n_data_seeds": n_j,
        "n_runs": n_i * n_j,
        "var_total": total,
        **{f"var_{s}": var[s] for s in SOURCES},
        **{f"share_{s}": shares[s] for s in SOURCES},
    }


def variance_markdown(table: pd.DataFrame) -> str:
    """The variance table under a line naming its metric (for table.md)."""
    metric = str(table["metric"].iloc[0])
    keys = list(table.columns[: list(table.columns).index("metric")])
    head = [*keys, "seeds x data seeds", "variance", "init %", "data %", "residual %"]
    rows = []
    for _, r in table.iterrows():
        shares = [f"{100 * r[f'share_{s}']:.1f}" for s in SOURCES]
        cells = [*(str(r[k]) for k in keys), f"{r['n_seeds']} x {r['n_data_seeds']}"]
        rows.append([*cells, f"{r['var_total']:.4g}", *shares])
    lines = [
        f"Seed variance of {metric} by source (two-way random-effects ANOVA over seeds x data "
        "seeds; init: weight initialisation, data: clips, order and augmentation):",
        "",
        *markdown_table(head, rows),
    ]
    return "\n".join(lines) + "\n"
