"""Statistics of a study: aggregates over seeds, paired tests against the baseline, costs.

Rows of the stats table are *settings*: backbone x dataset x label x the other varied fields,
where the label is the variant name, suffixed with ``λ=<tav_weight>`` when one variant ran with
several ``tav_weight`` values (a lambda sweep), and the *varied fields* (:func:`varied_fields`)
are every other config field (MLflow param) that takes more than one value among the runs of one
backbone x dataset x label, except the seed and execution settings: each becomes a column (``lr``
for a grid over learning rates), so runs whose configs differ are never averaged together. Only
runs whose ``status`` tag is ``finished`` and that logged the metric are averaged; the others are
counted in ``n_failed``, ``n_diverged``, ``n_pruned`` and ``n_other``. When a seed ran more than
once for one setting, the run that ended last is used.

Each non-baseline setting is paired by seed with the ``baseline`` variant of the same backbone
and dataset (and the same value of each varied field on which the baselines themselves differ,
e.g. the same ``lr``): paired t-test and Wilcoxon signed-rank test (two-sided, scipy), Holm
correction of the t-test p values across all comparisons of the table, and the number of seeds
a paired t-test (alpha 0.05, power 0.8, two-sided) would need to detect the observed mean
difference at the observed standard deviation of the differences (noncentral t).

Splits: every number names the split it comes from (``split`` column: ``val``, ``test``,
``train`` or ``none`` for metrics of no split, such as costs). A val/test metric is reported
together with its counterpart on the other split (``test_top1`` with ``val_top1``, ...), each
with its own paired tests and its own Holm family. The val value of a run is the one of its last
epoch; val serves early stopping, pruning and searches, test is reported only.

Bootstrap (Bouthillier et al. 2021; Agarwal et al. 2021), :data:`RESAMPLES` resamples by default:

- ``boot_low``/``boot_high``: 95% percentile CI of a cell's mean over seeds (seeds resampled
  with replacement); the 2.5% and 97.5% quantiles (numpy's linear interpolation) of the
  resampled means.
- :func:`aggregate`, per label (and varied fields), over the *tasks* (backbone x dataset) it ran
  on: the
  interquartile mean (IQM, :func:`iqm`) of all its finished runs pooled over tasks and seeds,
  and the probability of improvement over the baseline (:func:`prob_greater`, averaged over the
  tasks both ran), each with a 95% *stratified* bootstrap CI: the runs of each task are
  resampled with replacement within that task, independently of the other tasks.

Each bootstrap draws from its own ``numpy`` Generator seeded with ``seed`` and a CRC-32 of the
cell's (or label's) names, so the same runs give identical numbers and one cell's CI does not
change when other cells are added.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from mpbench import tracking as tk
from mpbench._conventions import ALPHA, BASELINE, POWER
from mpbench.report import sequential
from mpbench.report.load import latest_runs
from mpbench.study.pairing import (  # the pairing a sequential grid's runner shares
    KEYS,
    _baseline_runs,
    add_labels,
    add_settings,
    baseline_pairs,
    higher_is_better,
    varied_fields,  # noqa: F401 (part of this module's API: tests and docs name it here)
)

MAX_SEEDS: Final = 10_000
"""Past this many seeds needed, a difference is reported as undetectable (``inf``)."""
RESAMPLES: Final = 2000
"""Bootstrap resamples of an interval (``--resamples``)."""
BOOT_SEED: Final = 0
"""Seed of the bootstrap's generator: a table is the same on every rerun."""
IQM_CUT: Final = 0.25
"""Fraction cut from each end for the interquartile mean (Agarwal et al. 2021)."""
SPLITS: Final = ("train", "val", "test", "test_shift", "none")
SPLIT_OF: Final = {k: m.split for k, m in tk.METRICS.items() if m.split != "none"}
SPLIT_NOTES: Final = {
    "train": "train split, mean over the last epoch",
    "val": "val split: early stopping, pruning and searches; last epoch",
    "test": "test split, reported only",
    "test_shift": "appearance-shifted test split, reported only",
    "none": "no data split",
}
# test metric -> its val counterpart (the same label on the val split)
SPLIT_PAIRS: Final = {
    t.key: v.key
    for t in tk.METRICS.values()
    for v in tk.METRICS.values()
    if t.split == "test" and v.split == "val" and t.label == v.label
}
# test metric -> its counterpart on the appearance-shifted test split
SHIFT_PAIRS: Final = {
    tk.M_TEST_TOP1: tk.M_TEST_SHIFT_TOP1,
    tk.M_TEST_TOP5: tk.M_TEST_SHIFT_TOP5,
    tk.M_TEST_MCA: tk.M_TEST_SHIFT_MCA,
}
FRACTION_METRICS: Final = frozenset(k for k, m in tk.METRICS.items() if m.unit == "fraction")
COST_METRICS: Final = {
    "prompt_params": tk.M_PROMPT_PARAMS,
    "backbone_params": tk.M_BACKBONE_PARAMS,
    "prompt_gflops": tk.M_PROMPT_GFLOPS,
    "backbone_gflops": tk.M_BACKBONE_GFLOPS,
    "clips_per_s": tk.M_CLIPS_PER_S,
    "peak_mem_mb": tk.M_PEAK_MEM_MB,
    "data_wait_share": tk.M_DATA_WAIT_SHARE,  # the loader's share of the training loop
}


def split_of(metric: str) -> str:
    """The data split ``metric`` is measured on: train, val, test or none."""
    return SPLIT_OF.get(metric, "none")


def split_metrics(metric: str) -> list[str]:
    """``metric`` and its counterparts on the other splits: val, test, test_shift (or
    ``metric`` alone)."""
    for test, val in SPLIT_PAIRS.items():
        if metric in (test, val, SHIFT_PAIRS[test]):
            return [val, test, SHIFT_PAIRS[test]]
    return [metric]


def metric_label(metric: str) -> str:
    """A display name that names the split, e.g. ``test top-1`` (unknown keys as they are)."""
    entry = tk.METRICS.get(metric)
    return f"{entry.split} {entry.label}" if entry and entry.label != metric else metric


def axis_label(metric: str) -> str:
    """An axis label naming split and unit, e.g. ``test top-1 (%)``."""
    return f"{metric_label(metric)} (%)" if metric in FRACTION_METRICS else metric_label(metric)


def with_setting(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``setting`` column, ``field=value ...`` of the varied fields ("" when
    none vary): figures append it to the label, so they never pool differing configs either."""
    labelled, keys = add_settings(add_labels(runs))
    fields = keys[len(KEYS) :]
    text = [
        " ".join(f"{f}={v}" for f, v in zip(fields, row, strict=True))
        for row in labelled[fields].itertuples(index=False, name=None)
    ]
    return runs.assign(setting=text if fields else "")


def _finished(runs: pd.DataFrame, column: str, keys: list[str] = KEYS) -> pd.DataFrame:
    """One finished run per setting and seed (the last to end) that logged ``column``."""
    return latest_runs(runs, column=column, keys=keys)


def _counts(runs: pd.DataFrame, keys: list[str] = KEYS) -> pd.DataFrame:
    """Number of runs per setting by status tag (failed, diverged, pruned, other)."""
    status = runs["status"].fillna("unknown")
    named = {
        tk.STATUS_FAILED: "n_failed",
        tk.STATUS_DIVERGED: "n_diverged",
        tk.STATUS_PRUNED: "n_pruned",
        tk.STATUS_FINISHED: "n_finished",
    }
    col = status.map(named).fillna("n_other")
    counts = pd.crosstab([runs[k] for k in keys], col)
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
    with warnings.catch_warnings():  # identical values: scipy warns, the interval is the mean
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_1samp(values, 0.0).confidence_interval(1 - ALPHA)
    return mean, std, float(ci.low), float(ci.high)


def check_resamples(resamples: int) -> int:
    """``resamples`` if it is a positive int; ValueError otherwise."""
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be a positive int (e.g. {RESAMPLES}), got {resamples!r}")
    return resamples


def boot_rng(seed: int, *names: object) -> np.random.Generator:
    """The bootstrap Generator of one cell or label: ``seed`` plus a CRC-32 of ``names``."""
    text = "\x1f".join(map(str, names)).encode()
    return np.random.default_rng([seed, zlib.crc32(text)])


def resample(values: np.ndarray, *, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` draws with replacement of ``values``: shape [resamples, len(values)]."""
    return values[rng.integers(0, len(values), size=(resamples, len(values)))]


def percentile_ci(stat: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% quantiles of bootstrap statistics (a 95% percentile CI)."""
    low, high = np.quantile(stat, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def boot_mean_ci(
    values: np.ndarray, *, resamples: int = RESAMPLES, rng: np.random.Generator
) -> tuple[float, float]:
    """95% bootstrap percentile CI of the mean of ``values`` (NaN when empty)."""
    if len(values) == 0:
        return math.nan, math.nan
    return percentile_ci(resample(values, resamples=resamples, rng=rng).mean(axis=1))


def iqm(values: np.ndarray) -> np.ndarray | float:
    """Interquartile mean along the last axis (``scipy.stats.trim_mean(values, 0.25)``): drop
    floor(n/4) values at each end and average; with n = 7 the middle 5, with n < 4 all."""
    out = stats.trim_mean(values, IQM_CUT, axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def prob_greater(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): mean over all pairs of [x_i > y_j] + 0.5 [x_i = y_j] (Mann-Whitney form)."""
    return float(np.mean(_pair_kernel(x, y)))


def _pair_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Matrix [x_i > y_j] + 0.5 [x_i = y_j], shape [len(x), len(y)]."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _counts_of(values: np.ndarray, *, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``values`` is drawn in each resample: shape [resamples, len(values)]."""
    n = len(values)
    idx = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * n).reshape(resamples, n)


def _boot_prob_greater(
    x: np.ndarray, y: np.ndarray, *, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """P(X > Y) of ``resamples`` bootstrap draws of x and of y (independent, with replacement)."""
    cx = _counts_of(x, resamples=resamples, rng=rng)
    cy = _counts_of(y, resamples=resamples, rng=rng)
    # sum_ij cx_bi K_ij cy_bj / (n m): the pair mean of the resampled multisets
    weighted = (cx @ _pair_kernel(x, y)) * cy  # [resamples, m]
    return weighted.sum(axis=1) / (len(x) * len(y))


def stratified_iqm(
    tasks: list[np.ndarray], *, resamples: int = RESAMPLES, rng: np.random.Generator
) -> tuple[float, float, float]:
    """IQM of the runs of all ``tasks`` pooled and its 95% stratified bootstrap CI."""
    point = iqm(np.concatenate(tasks))
    boot = np.concatenate([resample(t, resamples=resamples, rng=rng) for t in tasks], axis=1)
    return float(point), *percentile_ci(iqm(boot))


def stratified_prob_greater(
    pairs: list[tuple[np.ndarray, np.ndarray]],
    *,
    resamples: int = RESAMPLES,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Mean over tasks of P(X > Y) of the (x, y) ``pairs`` and its stratified bootstrap CI."""
    if not pairs:
        return math.nan, math.nan, math.nan
    point = float(np.mean([prob_greater(x, y) for x, y in pairs]))
    boot = np.mean(
        [_boot_prob_greater(x, y, resamples=resamples, rng=rng) for x, y in pairs], axis=0
    )
    return point, *percentile_ci(boot)


def paired_power(effect: float, n: int, *, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t-test with ``n`` pairs at standardized effect ``effect``."""
    return sequential.paired_power(effect, n, alpha=alpha)


def seeds_needed(diffs: np.ndarray, *, alpha: float = ALPHA, power: float = POWER) -> float:
    """Fewest seeds for a paired t-test to detect the mean of ``diffs`` (NaN if undefined)."""
    if len(diffs) < 2 or float(np.mean(diffs)) == 0.0:
        return math.nan
    mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    return sequential.fixed_seeds_for_power(mean, sd, alpha, power, limit=MAX_SEEDS)


def paired_tests(variant: pd.Series, base: pd.Series) -> dict[str, float]:
    """Paired comparison of two seed-indexed series: mean diff with its 95 % paired t interval
    (delta_low, delta_high), t-test and Wilcoxon p values."""
    both = pd.concat([variant.rename("v"), base.rename("b")], axis=1, join="inner").sort_index()
    diffs = (both["v"] - both["b"]).to_numpy(float)
    out = {
        "n_pairs": float(len(diffs)),
        "delta": math.nan,
        "delta_std": math.nan,
        "delta_low": math.nan,
        "delta_high": math.nan,
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
        ci = t.confidence_interval(1 - ALPHA)
        out["delta_low"], out["delta_high"] = float(ci.low), float(ci.high)
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


def _costs(ok: pd.DataFrame, runs: pd.DataFrame, keys: list[str] = KEYS) -> pd.DataFrame:
    """Cost columns per setting: means of the cost metrics, compute hours and device kind."""
    cols = {name: f"metric.{key}" for name, key in COST_METRICS.items()}
    present = {name: c for name, c in cols.items() if c in ok}
    means = ok.groupby(keys)[list(present.values())].mean()
    means.columns = list(present)
    for name in cols:
        if name not in means:
            means[name] = math.nan
    seconds = f"metric.{tk.M_TRAIN_SECONDS}"
    spent = runs[seconds] if seconds in runs else pd.Series(math.nan, index=runs.index)
    hours = (spent.fillna(0.0) / 3600.0).groupby([runs[k] for k in keys]).sum()
    device = runs["device"].fillna("unknown").map(lambda d: "cpu" if d == "cpu" else "gpu")
    kinds = device.groupby([runs[k] for k in keys]).agg(lambda s: "+".join(sorted(set(s))))
    means["params_ratio"] = means["prompt_params"] / means["backbone_params"]
    means["gflops_ratio"] = means["prompt_gflops"] / means["backbone_gflops"]
    means = means.reindex(hours.index)
    means["compute_hours"] = hours
    means["compute_device"] = kinds
    return means


def _check_metric(runs: pd.DataFrame, metric: str) -> None:
    """ValueError naming the logged metrics when no run logged ``metric``."""
    if f"metric.{metric}" not in runs:
        known = sorted(c.removeprefix("metric.") for c in runs if c.startswith("metric."))
        raise ValueError(f"metric {metric!r} was not logged by any run; logged metrics: {known}")


def _logged(runs: pd.DataFrame, metric: str) -> list[str]:
    """``metric`` and its split counterpart, those that some run logged, val first."""
    return [
        m
        for m in split_metrics(metric)
        if m == metric or (f"metric.{m}" in runs and runs[f"metric.{m}"].notna().any())
    ]


def summarize_cells(
    runs: pd.DataFrame,
    *,
    metric: str = tk.M_TEST_TOP1,
    resamples: int = RESAMPLES,
    seed: int = BOOT_SEED,
) -> pd.DataFrame:
    """The long stats table of ``runs`` (wide frame): one row per backbone x dataset x label x
    split, for ``metric`` and its counterpart on the other split (when logged)."""
    _check_metric(runs, metric)
    check_resamples(resamples)
    runs, keys = add_settings(add_labels(runs))
    counts = _counts(runs, keys)
    parts = [
        _summarize_metric(runs, counts, m, keys, resamples=resamples, seed=seed)
        for m in _logged(runs, metric)
    ]
    return _order(pd.concat(parts, ignore_index=True), keys)


SUMMARY_COLUMNS: Final = [
    *KEYS,
    "split",
    "variant",
    "tav_weight",
    "metric",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "boot_low",
    "boot_high",
]


def _seed_rows(
    ok: pd.DataFrame, metric: str, keys: list[str], *, resamples: int, seed: int
) -> pd.DataFrame:
    """Mean, std, t CI and bootstrap CI of ``metric`` over seeds, one row per setting."""
    column = f"metric.{metric}"
    rows = []
    for key, group in ok.groupby(keys, sort=True):
        values = group[column].to_numpy(float)
        mean, std, low, high = mean_ci(values)
        rng = boot_rng(seed, metric, *key)
        boot_low, boot_high = boot_mean_ci(values, resamples=resamples, rng=rng)
        first = group.iloc[0]
        head = [*key, split_of(metric), first["variant"], first["tav_weight"], metric]
        rows.append([*head, len(group), mean, std, low, high, boot_low, boot_high])
    columns = [*keys, *SUMMARY_COLUMNS[len(KEYS) :]]
    return pd.DataFrame(rows, columns=columns).set_index(keys)


def _summarize_metric(
    runs: pd.DataFrame,
    counts: pd.DataFrame,
    metric: str,
    keys: list[str],
    *,
    resamples: int,
    seed: int,
) -> pd.DataFrame:
    """The stats rows of one metric (one split): seeds, counts, paired tests, Holm, costs."""
    column = f"metric.{metric}"
    ok = _finished(runs, column, keys)
    table = _seed_rows(ok, metric, keys, resamples=resamples, seed=seed)
    table = table.reindex(counts.index.union(table.index))
    table["metric"] = metric
    table["split"] = split_of(metric)
    labels = runs.drop_duplicates(keys).set_index(keys)
    table["variant"] = labels["variant"].reindex(table.index)
    table["tav_weight"] = labels["tav_weight"].reindex(table.index)
    table["n"] = table["n"].fillna(0).astype(int)
    table = table.join(counts).join(_comparisons(ok, column, keys)).join(_costs(ok, runs, keys))
    table["p_holm"] = holm(table["p_t"])
    return table.reset_index()


GAP_COLUMNS: Final = ["n", "gap", "gap_std", "gap_low", "gap_high"]


def appearance_gap(runs: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> pd.DataFrame:
    """Per setting: ``metric``'s test value minus its test_shift value (the appearance gap),
    mean over the seeds that logged both, std and 95 % t interval; no rows when no run logged
    test_shift."""
    test = next((t for t in SPLIT_PAIRS if metric in split_metrics(t)), metric)
    columns = [f"metric.{test}", f"metric.{SHIFT_PAIRS.get(test, test)}"]
    runs, keys = add_settings(add_labels(runs))
    rows = []
    if test in SHIFT_PAIRS and columns[1] in runs and runs[columns[1]].notna().any():
        ok = latest_runs(runs, column=columns[1], keys=keys).dropna(subset=columns)
        for key, group in ok.groupby(keys, sort=False):
            gaps = (group[columns[0]] - group[columns[1]]).to_numpy(float)
            variant = group["variant"].iloc[0]
            rows.append([*key, variant, "test", test, len(gaps), *mean_ci(gaps)])
    table = pd.DataFrame(rows, columns=[*keys, "variant", "split", "metric", *GAP_COLUMNS])
    return _order(table, keys).drop(columns=["split"])


def _comparisons(ok: pd.DataFrame, column: str, keys: list[str] = KEYS) -> pd.DataFrame:
    """Paired tests of each non-baseline setting against its backbone x dataset baseline."""
    rows = {}
    for key, group, base in baseline_pairs(ok, keys):
        last = base.sort_values(["end_time", "run_id"]).groupby(level=0).last()[column]
        rows[key] = paired_tests(group[column], last)
    cols = [
        "n_pairs",
        "delta",
        "delta_std",
        "delta_low",
        "delta_high",
        "t_stat",
        "p_t",
        "p_wilcoxon",
        "seeds_needed",
    ]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    frame.index = (
        pd.MultiIndex.from_tuples(list(rows), names=keys)
        if rows
        else pd.MultiIndex(levels=[[]] * len(keys), codes=[[]] * len(keys), names=keys)
    )
    return frame


def _numeric(values: pd.Series) -> pd.Series:
    """Values as numbers where they are numbers (for sorting ``lr`` 1e-3 before 1e-2)."""
    return pd.to_numeric(values, errors="coerce")


def _order(table: pd.DataFrame, keys: list[str] = KEYS) -> pd.DataFrame:
    """Rows sorted by backbone, dataset, baseline first, label, the varied fields (numbers by
    value), then split (train, val, test)."""
    fields = keys[len(KEYS) :]
    table = table.assign(
        _base=(table["variant"] != BASELINE).astype(int),
        _split=table["split"].map(SPLITS.index),
        **{f"_num_{f}": _numeric(table[f]) for f in fields},
    )
    by = ["backbone", "dataset", "_base", "label"]
    by += [c for f in fields for c in (f"_num_{f}", f)] + ["_split"]
    table = table.sort_values(by, kind="stable")
    helpers = ["_base", "_split", *(f"_num_{f}" for f in fields)]
    return table.drop(columns=helpers).reset_index(drop=True)


AGGREGATE_COLUMNS: Final = [
    "split",
    "metric",
    "label",
    "variant",
    "n_tasks",
    "n_runs",
    "iqm",
    "iqm_low",
    "iqm_high",
    "p_tasks",
    "p_improve",
    "p_low",
    "p_high",
    "resamples",
    "boot_seed",
]


def _task_values(
    ok: pd.DataFrame, column: str, sign: float, keys: list[str]
) -> dict[tuple, dict[tuple, np.ndarray]]:
    """(label, *varied values) -> (backbone, dataset) -> the finished runs' values (x ``sign``)."""
    out: dict[tuple, dict[tuple, np.ndarray]] = {}
    for key, group in ok.groupby(keys, sort=True):
        out.setdefault(tuple(key[2:]), {})[tuple(key[:2])] = sign * group[column].to_numpy(float)
    return out


def _aggregate_label(
    tasks: dict[tuple, np.ndarray],
    base: dict[tuple, np.ndarray] | None,
    *,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """IQM and P(improvement over ``base``) of one label, with stratified bootstrap CIs."""
    point, low, high = stratified_iqm(list(tasks.values()), resamples=resamples, rng=rng)
    pairs = [(x, base[t]) for t, x in tasks.items() if base and t in base]
    p, p_low, p_high = stratified_prob_greater(pairs, resamples=resamples, rng=rng)
    return {
        "n_tasks": len(tasks),
        "n_runs": sum(len(v) for v in tasks.values()),
        "iqm": point,
        "iqm_low": low,
        "iqm_high": high,
        "p_tasks": len(pairs) if base is not None else 0,
        "p_improve": p,
        "p_low": p_low,
        "p_high": p_high,
    }


def _base_tasks(
    ok: pd.DataFrame, column: str, sign: float, keys: list[str], setting: tuple
) -> dict[tuple, np.ndarray] | None:
    """Per task, the baseline runs a setting (label, *varied values) is compared with (the same
    value of each varied field on which the baselines differ); None when there is none."""
    base = ok[ok["variant"] == BASELINE]
    if base.empty:
        return None
    bases = {task: b for task, b in base.groupby(["backbone", "dataset"], sort=True)}
    fields = keys[len(KEYS) :]
    out = {}
    for task in bases:
        rows = _baseline_runs(bases, (*task, *setting), fields)
        if rows is not None:
            out[task] = sign * rows[column].to_numpy(float)
    return out


def _aggregate_metric(
    runs: pd.DataFrame, metric: str, keys: list[str], *, resamples: int, seed: int
) -> list[dict[str, object]]:
    """The aggregate rows of one metric (one split), baseline first."""
    column = f"metric.{metric}"
    ok = _finished(runs, column, keys)
    sign = 1.0 if higher_is_better(metric) else -1.0  # improvement = lower loss
    by_setting = _task_values(ok, column, sign, keys)
    variants = ok.drop_duplicates("label").set_index("label")["variant"]
    fields = keys[len(KEYS) :]
    rows = []
    for setting in sorted(by_setting, key=lambda st: (variants[st[0]] != BASELINE, *st)):
        label = setting[0]
        is_base = variants[label] == BASELINE
        base = None if is_base else _base_tasks(ok, column, sign, keys, setting)
        rng = boot_rng(seed, metric, *setting)
        agg = _aggregate_label(by_setting[setting], base, resamples=resamples, rng=rng)
        for name in ("iqm", "iqm_low", "iqm_high"):
            agg[name] *= sign
        if sign < 0:
            agg["iqm_low"], agg["iqm_high"] = agg["iqm_high"], agg["iqm_low"]
        row = {"split": split_of(metric), "metric": metric, "label": label}
        row |= dict(zip(fields, setting[1:], strict=True))
        rows.append({**row, "variant": variants[label], **agg})
    return rows


def aggregate(
    runs: pd.DataFrame,
    *,
    metric: str = tk.M_TEST_TOP1,
    resamples: int = RESAMPLES,
    seed: int = BOOT_SEED,
) -> pd.DataFrame:
    """Per label and split: IQM over tasks and seeds and P(label > baseline), with stratified
    bootstrap 95% CIs; for ``metric`` and its counterpart on the other split."""
    _check_metric(runs, metric)
    check_resamples(resamples)
    runs, keys = add_settings(add_labels(runs))
    rows = [
        row
        for m in _logged(runs, metric)
        for row in _aggregate_metric(runs, m, keys, resamples=resamples, seed=seed)
    ]
    at = AGGREGATE_COLUMNS.index("label") + 1
    columns = [*AGGREGATE_COLUMNS[:at], *keys[len(KEYS) :], *AGGREGATE_COLUMNS[at:]]
    return pd.DataFrame(rows, columns=columns).assign(resamples=resamples, boot_seed=seed)
