"""Statistics of a study: aggregates over seeds, paired tests against the baseline, costs.

Rows of the stats table are *settings*: backbone x dataset x label, where the label is the
variant name, suffixed with ``λ=<tav_weight>`` when one variant ran with several ``tav_weight``
values (a lambda sweep). Only runs whose ``status`` tag is ``finished`` and that logged the
metric are averaged; the others are counted in ``n_failed``, ``n_diverged``, ``n_pruned`` and
``n_other``. When a seed ran more than once for one setting, the run that ended last is used.

Each non-baseline setting is paired by seed with the ``baseline`` variant of the same backbone
and dataset: paired t-test and Wilcoxon signed-rank test (two-sided, scipy), Holm correction of
the t-test p values across all comparisons of the table, and the number of seeds a paired t-test
(alpha 0.05, power 0.8, two-sided) would need to detect the observed mean difference at the
observed standard deviation of the differences (noncentral t).
"""

from __future__ import annotations

import math
import warnings
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from mpbench import tracking as tk

BASELINE: Final = "baseline"
ALPHA: Final = 0.05
POWER: Final = 0.8
MAX_SEEDS: Final = 10_000
KEYS: Final = ["backbone", "dataset", "label"]
FRACTION_METRICS: Final = frozenset(
    {tk.M_TEST_TOP1, tk.M_TEST_TOP5, tk.M_TEST_MCA, tk.M_VAL_TOP1, tk.M_VAL_TOP5, tk.M_VAL_MCA}
)
COST_METRICS: Final = {
    "prompt_params": tk.M_PROMPT_PARAMS,
    "backbone_params": tk.M_BACKBONE_PARAMS,
    "prompt_gflops": tk.M_PROMPT_GFLOPS,
    "backbone_gflops": tk.M_BACKBONE_GFLOPS,
    "clips_per_s": tk.M_CLIPS_PER_S,
    "peak_mem_mb": tk.M_PEAK_MEM_MB,
}


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (losses, times and costs are not)."""
    lower = ("loss", "seconds", "params", "gflops", "mem")
    return not any(word in metric for word in lower)


def _fmt_weight(weight: float) -> str:
    """A tav_weight as a short label text."""
    return "λ=?" if math.isnan(weight) else f"λ={weight:g}"


def add_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (wide) with a ``label`` column: the variant, plus λ where it varies."""
    runs = runs.copy()
    weights = runs["tav_weight"].fillna(-1.0)
    n_weights = weights.groupby([runs["backbone"], runs["dataset"], runs["variant"]]).transform(
        "nunique"
    )
    sweep = (n_weights > 1) & (runs["variant"] != BASELINE)
    runs["label"] = runs["variant"].astype(object)
    runs.loc[sweep, "label"] = [
        f"{v} {_fmt_weight(w)}"
        for v, w in zip(runs.loc[sweep, "variant"], runs.loc[sweep, "tav_weight"], strict=True)
    ]
    return runs


def _finished(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """One finished run per setting and seed (the last to end) that logged ``column``."""
    ok = runs[(runs["status"] == tk.STATUS_FINISHED) & runs[column].notna()]
    ok = ok.sort_values([*KEYS, "seed", "end_time", "run_id"], kind="stable")
    return ok.drop_duplicates([*KEYS, "seed"], keep="last")


def _counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Number of runs per setting by status tag (failed, diverged, pruned, other)."""
    status = runs["status"].fillna("unknown")
    named = {
        tk.STATUS_FAILED: "n_failed",
        tk.STATUS_DIVERGED: "n_diverged",
        tk.STATUS_PRUNED: "n_pruned",
        tk.STATUS_FINISHED: "n_finished",
    }
    col = status.map(named).fillna("n_other")
    counts = pd.crosstab([runs[k] for k in KEYS], col)
    for name in ("n_failed", "n_diverged", "n_pruned", "n_other", "n_finished"):
        if name not in counts:
            counts[name] = 0
    counts["n_runs"] = counts.sum(axis=1)
    return counts[["n_runs", "n_finished", "n_failed", "n_diverged", "n_pruned", "n_other"]]


def mean_ci(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof 1) and the 95% t confidence interval of ``values``."""
    n = len(values)
    mean = float(np.mean(values)) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(np.std(values, ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def paired_power(effect: float, n: int, *, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs at standardized effect ``effect``."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n)
    upper, lower = float(stats.nct.sf(crit, df, nc)), float(stats.nct.cdf(-crit, df, nc))
    # scipy returns NaN for far tails: the opposite tail of a large effect is ~0
    return float(np.nan_to_num(upper) + np.nan_to_num(lower))


def seeds_needed(diffs: np.ndarray, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Fewest seeds for a paired t-test to detect the mean of ``diffs`` (NaN if undefined)."""
    if len(diffs) < 2:
        return math.nan
    mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    if mean == 0.0:
        return math.nan
    if sd == 0.0:
        return 2.0
    effect = abs(mean) / sd
    if paired_power(effect, MAX_SEEDS, alpha=alpha) < power:
        return math.inf
    low, high = 1, 2  # power grows with n: double until enough, then bisect (low fails)
    while paired_power(effect, high, alpha=alpha) < power:
        low, high = high, 2 * high
    high = min(high, MAX_SEEDS)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if paired_power(effect, mid, alpha=alpha) >= power else (mid, high)
    return float(high)


def paired_tests(variant: pd.Series, base: pd.Series) -> dict[str, float]:
    """Paired comparison of two seed-indexed series: mean diff, t-test and Wilcoxon p values."""
    both = pd.concat([variant.rename("v"), base.rename("b")], axis=1, join="inner").sort_index()
    diffs = (both["v"] - both["b"]).to_numpy(float)
    out = {
        "n_pairs": float(len(diffs)),
        "delta": math.nan,
        "delta_std": math.nan,
        "t_stat": math.nan,
        "p_t": math.nan,
        "p_wilcoxon": math.nan,
        "seeds_needed": seeds_needed(diffs),
    }
    if len(diffs) == 0:
        return out
    out["delta"] = float(np.mean(diffs))
    if len(diffs) < 2:
        return out
    out["delta_std"] = float(np.std(diffs, ddof=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = stats.ttest_rel(both["v"].to_numpy(float), both["b"].to_numpy(float))
        out["t_stat"], out["p_t"] = float(t.statistic), float(t.pvalue)
        if np.any(diffs != 0):
            out["p_wilcoxon"] = float(stats.wilcoxon(diffs).pvalue)
    return out


def holm(pvalues: pd.Series) -> pd.Series:
    """Holm-Bonferroni adjusted p values (NaN entries are left out and stay NaN)."""
    valid = pvalues.dropna()
    order = np.argsort(valid.to_numpy(), kind="stable")
    m = len(valid)
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(valid.iloc[idx])))
        adjusted[idx] = running
    return pd.Series(adjusted, index=valid.index).reindex(pvalues.index)


def _costs(ok: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Cost columns per setting: means of the cost metrics, compute hours and device kind."""
    cols = {name: f"metric.{key}" for name, key in COST_METRICS.items()}
    present = {name: c for name, c in cols.items() if c in ok}
    means = ok.groupby(KEYS)[list(present.values())].mean()
    means.columns = list(present)
    for name in cols:
        if name not in means:
            means[name] = math.nan
    seconds = f"metric.{tk.M_TRAIN_SECONDS}"
    spent = runs[seconds] if seconds in runs else pd.Series(math.nan, index=runs.index)
    hours = (spent.fillna(0.0) / 3600.0).groupby([runs[k] for k in KEYS]).sum()
    device = runs["device"].fillna("unknown").map(lambda d: "cpu" if d == "cpu" else "gpu")
    kinds = device.groupby([runs[k] for k in KEYS]).agg(lambda s: "+".join(sorted(set(s))))
    means["params_ratio"] = means["prompt_params"] / means["backbone_params"]
    means["gflops_ratio"] = means["prompt_gflops"] / means["backbone_gflops"]
    means = means.reindex(hours.index)
    means["compute_hours"] = hours
    means["compute_device"] = kinds
    return means


def summarize(runs: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> pd.DataFrame:
    """The long stats table of ``runs`` (wide frame): one row per backbone x dataset x label."""
    column = f"metric.{metric}"
    if column not in runs:
        known = sorted(c.removeprefix("metric.") for c in runs if c.startswith("metric."))
        raise ValueError(f"metric {metric!r} was not logged by any run; logged metrics: {known}")
    runs = add_labels(runs)
    ok = _finished(runs, column)
    rows = []
    for key, group in ok.groupby(KEYS, sort=True):
        mean, std, low, high = mean_ci(group[column].to_numpy(float))
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "variant": group["variant"].iloc[0],
                "tav_weight": group["tav_weight"].iloc[0],
                "metric": metric,
                "n": len(group),
                "mean": mean,
                "std": std,
                "ci_low": low,
                "ci_high": high,
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[*KEYS, "variant", "tav_weight", "metric", "n", "mean", "std", "ci_low", "ci_high"],
    ).set_index(KEYS)
    counts = _counts(runs)
    table = table.reindex(counts.index.union(table.index))
    table["metric"] = metric
    labels = runs.drop_duplicates(KEYS).set_index(KEYS)
    table["variant"] = labels["variant"].reindex(table.index)
    table["tav_weight"] = labels["tav_weight"].reindex(table.index)
    table["n"] = table["n"].fillna(0).astype(int)
    table = table.join(counts).join(_comparisons(ok, column)).join(_costs(ok, runs))
    table["p_holm"] = holm(table["p_t"])
    return _order(table.reset_index())


def _comparisons(ok: pd.DataFrame, column: str) -> pd.DataFrame:
    """Paired tests of each non-baseline setting against its backbone x dataset baseline."""
    rows = {}
    by_seed = ok.set_index("seed")
    for key, group in by_seed.groupby(KEYS, sort=True):
        backbone, dataset, _ = key
        if group["variant"].iloc[0] == BASELINE:
            continue
        base = by_seed[
            (by_seed["backbone"] == backbone)
            & (by_seed["dataset"] == dataset)
            & (by_seed["variant"] == BASELINE)
        ]
        if base.empty:
            continue
        base = base.sort_values(["end_time", "run_id"]).groupby(level=0).last()
        rows[key] = paired_tests(group[column], base[column])
    cols = ["n_pairs", "delta", "delta_std", "t_stat", "p_t", "p_wilcoxon", "seeds_needed"]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    frame.index = (
        pd.MultiIndex.from_tuples(list(rows), names=KEYS)
        if rows
        else pd.MultiIndex(levels=[[], [], []], codes=[[], [], []], names=KEYS)
    )
    return frame


def _order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by backbone, dataset, baseline first then label; fixed column order."""
    table = table.assign(_base=(table["variant"] != BASELINE).astype(int))
    table = table.sort_values(["backbone", "dataset", "_base", "label"], kind="stable")
    return table.drop(columns="_base").reset_index(drop=True)
