"""Figures of a study: every ``plot_*(df, ...)`` returns a matplotlib Figure and reads no files.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state) under one seaborn theme
(:func:`theme`). A plot without data raises :class:`NoData` (a ValueError), which
``mpbench figures`` reports as a skipped figure. Error bars and bands are 95% t confidence
intervals over seeds, computed with :func:`mpbench.report.stats.mean_ci`, except in
:func:`plot_aggregate`, whose intervals are the stratified bootstrap CIs of
:func:`mpbench.report.stats.aggregate`. Axis labels name the split of the metric
(``test top-1 (%)``).

Parameter importances (:func:`param_importances`) are a simple, deterministic estimate, not
fANOVA: for each parameter that varies across the finished search trials, the share of the
objective's variance explained by grouping the trials by that parameter (eta squared; numeric
parameters are cut into at most four quantile bins), normalised to sum to one.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import Any, Final, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mpbench import plots
from mpbench import tracking as tk
from mpbench.report.stats import (
    BASELINE,
    FRACTION_METRICS,
    add_labels,
    axis_label,
    mean_ci,
    metric_label,
    split_of,
)

P = ParamSpec("P")
R = TypeVar("R")

PANEL_SIZE: Final = (3.6, 2.8)
IGNORED_PARAMS: Final = frozenset(
    {
        "seed",
        "device",
        "workers",
        "compile",
        "channels_last",
        "cudnn_benchmark",
        "run_dir",
        "log_every",
        "data_root",
    }
)
STRIP_ROWS: Final = plots.STRIP_ROWS


class NoData(ValueError):
    """A figure has nothing to draw (its runs, metrics or artifacts are absent)."""


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The one seaborn theme of all mpbench figures (whitegrid, paper context, colorblind)."""
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.1)}
    rc["axes.prop_cycle"] = mpl.cycler(color=sns.color_palette("colorblind"))
    rc["svg.hashsalt"] = "mpbench"
    with mpl.rc_context(rc):
        yield


def _themed(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a plot function under :func:`theme`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with theme():
            return fn(*args, **kwargs)

    return wrapper


def _grid(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    """A figure with a rows x cols array of axes."""
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _scale(metric: str) -> tuple[float, str]:
    """Display factor and axis label (naming the split) of ``metric``; fractions in percent."""
    return (100.0 if metric in FRACTION_METRICS else 1.0), axis_label(metric)


def _finished(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Latest values of ``metric`` of finished runs, with a ``label`` column."""
    rows = df[(df["metric"] == metric) & (df["status"] == tk.STATUS_FINISHED)]
    return add_labels(rows) if len(rows) else rows.assign(label=pd.Series(dtype=object))


def _color(label: str, k: int) -> str:
    """One colour per variant across every figure (its registry position); ``k`` otherwise."""
    from mpbench.variants import VARIANTS

    names = VARIANTS.names()
    return f"C{names.index(label) % 10}" if label in names else f"C{k % 10}"


def _label_order(labels: pd.Series) -> list[str]:
    """Labels sorted with the baseline first."""
    return sorted(set(labels), key=lambda s: (s != BASELINE, s))


@_themed
def plot_ablation(df: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> Figure:
    """Bars of ``metric`` per variant with 95% CIs; one panel per backbone x dataset."""
    data = _finished(df, metric)
    if data.empty:
        raise NoData(f"no finished run logged {metric!r}")
    scale, ylabel = _scale(metric)
    backbones, datasets = sorted(set(data["backbone"])), sorted(set(data["dataset"]))
    fig, axes = _grid(len(backbones), len(datasets))
    for (i, backbone), (j, dataset) in (
        (b, d) for b in enumerate(backbones) for d in enumerate(datasets)
    ):
        ax = axes[i, j]
        cell = data[(data["backbone"] == backbone) & (data["dataset"] == dataset)]
        labels = _label_order(cell["label"])
        stats = [
            mean_ci(cell.loc[cell["label"] == lb, "value"].to_numpy(float) * scale) for lb in labels
        ]
        means = [s[0] for s in stats]
        err = [
            [m - s[2] if not math.isnan(s[2]) else 0.0 for m, s in zip(means, stats, strict=True)],
            [s[3] - m if not math.isnan(s[3]) else 0.0 for m, s in zip(means, stats, strict=True)],
        ]
        colors = [_color(lb, k) for k, lb in enumerate(labels)]
        ax.bar(range(len(labels)), means, yerr=err, color=colors, capsize=3, alpha=0.85)
        for k, lb in enumerate(labels):  # the seeds themselves: with few seeds the CI is wide
            values = cell.loc[cell["label"] == lb, "value"].to_numpy(float) * scale
            ax.scatter(np.full(len(values), k), values, color="black", s=12, zorder=3)
        if metric in FRACTION_METRICS:  # an accuracy lives in [0, 100] %, whatever the CI says
            ax.set_ylim(0, 100)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_title(f"{backbone} · {dataset}")
        ax.set_ylabel(ylabel)
    return fig


def _errorbar(ax: Any, rows: pd.DataFrame, cols: tuple[str, str, str], scale: float) -> None:
    """Points with horizontal CI bars, one row per label (top to bottom, colour by label)."""
    y = np.arange(len(rows))[::-1]
    colors = [_color(lb, k) for k, lb in enumerate(rows["label"])]
    ax.set_yticks(y, rows["label"])
    ax.set_ylim(-0.5, len(rows) - 0.5)
    point, low, high = (rows[c].to_numpy(float) * scale for c in cols)
    shown = ~np.isnan(point)  # the baseline has no probability of improvement
    ax.hlines(y[shown], low[shown], high[shown], colors=np.array(colors)[shown], linewidth=2.5)
    ax.scatter(point[shown], y[shown], c=np.array(colors)[shown], s=25, zorder=3, edgecolors="k")


@_themed
def plot_aggregate(df: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> Figure:
    """Aggregate over tasks per label: IQM and P(improvement over the baseline), each with its
    95% stratified bootstrap CI; ``df`` is :func:`mpbench.report.stats.aggregate`'s frame."""
    rows = df[df["metric"] == metric]
    if rows.empty:
        raise NoData(f"no aggregate of {metric!r}")
    columns = list(df.columns)
    fields = columns[columns.index("label") + 1 : columns.index("variant")]  # varied fields
    if fields:
        text = [
            " ".join(f"{f}={v}" for f, v in zip(fields, r, strict=True))
            for r in rows[fields].itertuples(index=False, name=None)
        ]
        rows = rows.assign(label=rows["label"] + " " + pd.Series(text, index=rows.index))
    scale, xlabel = _scale(metric)
    fig, axes = _grid(1, 2)
    _errorbar(axes[0, 0], rows, ("iqm", "iqm_low", "iqm_high"), scale)
    axes[0, 0].set_title("IQM over tasks and seeds")
    axes[0, 0].set_xlabel(f"IQM of {xlabel}")
    _errorbar(axes[0, 1], rows, ("p_improve", "p_low", "p_high"), 1.0)
    axes[0, 1].axvline(0.5, color="grey", linestyle="--", linewidth=1)
    axes[0, 1].set_xlim(-0.03, 1.03)
    axes[0, 1].set_title("probability of improvement")
    axes[0, 1].set_xlabel(f"P(variant > baseline), {split_of(metric)} split")
    fig.suptitle(f"{metric_label(metric)}: 95% stratified bootstrap CIs")
    return fig


def _sweep_stats(data: pd.DataFrame, metric: str, scale: float) -> pd.DataFrame:
    """Mean and CI of ``metric`` per sweep line and tav_weight."""
    rows = []
    part = data[data["metric"] == metric]
    for (line, weight), group in part.groupby(["line", "tav_weight"], sort=True):
        mean, _, low, high = mean_ci(group["value"].to_numpy(float) * scale)
        rows.append((line, weight, mean, low, high))
    return pd.DataFrame(rows, columns=["line", "tav_weight", "mean", "low", "high"])


@_themed
def plot_lambda_sweep(df: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> Figure:
    """``metric``, learned slope a and shift b against tav_weight (lambda); three panels."""
    keep = (df["status"] == tk.STATUS_FINISHED) & df["tav_weight"].notna()
    data = df[keep & (df["variant"] != BASELINE)].copy()
    data["line"] = data["backbone"] + " / " + data["dataset"] + " / " + data["variant"]
    n_weights = data.groupby("line")["tav_weight"].nunique()
    data = data[data["line"].isin(n_weights[n_weights > 1].index)]
    if data.empty or not (data["metric"] == metric).any():
        raise NoData("no variant ran with two or more tav_weight values")
    scale, ylabel = _scale(metric)
    fig, axes = _grid(1, 3)
    panels = ((metric, scale, ylabel), (tk.M_SLOPE, 1.0, "slope a"), (tk.M_SHIFT, 1.0, "shift b"))
    for ax, (key, factor, title) in zip(axes[0], panels, strict=True):
        stats = _sweep_stats(data, key, factor)
        for line, part in stats.groupby("line", sort=True):
            low = (part["mean"] - part["low"]).fillna(0.0)
            high = (part["high"] - part["mean"]).fillna(0.0)
            ax.errorbar(
                part["tav_weight"],
                part["mean"],
                yerr=[low, high],
                marker="o",
                capsize=3,
                label=line,
            )
        ax.set_title(title)
        ax.set_xlabel("tav_weight λ")
    axes[0, 0].set_ylabel(ylabel)
    axes[0, 0].legend(fontsize="small")
    return fig


@_themed
def plot_learning_curves(history: pd.DataFrame, *, metric: str = tk.M_VAL_TOP1) -> Figure:
    """Per-epoch ``metric`` (mean and 95% CI over seeds) per variant; panel per backbone x
    dataset. ``history`` is the frame of :func:`mpbench.report.load.load_history`."""
    data = history[(history["metric"] == metric) & (history["step"] >= 0)]
    if data.empty:
        raise NoData(f"no per-epoch history of {metric!r}")
    data = add_labels(data)
    scale, ylabel = _scale(metric)
    panels = sorted(set(zip(data["backbone"], data["dataset"], strict=True)))
    fig, axes = _grid(1, len(panels))
    for ax, (backbone, dataset) in zip(axes[0], panels, strict=True):
        cell = data[(data["backbone"] == backbone) & (data["dataset"] == dataset)]
        for k, label in enumerate(_label_order(cell["label"])):
            part = cell[cell["label"] == label]
            stats = [
                (step, *mean_ci(g["value"].to_numpy(float) * scale))
                for step, g in part.groupby("step", sort=True)
            ]
            steps, means, _, lows, highs = (
                np.array(v, dtype=float) for v in zip(*stats, strict=True)
            )
            ax.plot(steps, means, marker="o", color=_color(label, k), label=label)
            ax.fill_between(steps, lows, highs, color=_color(label, k), alpha=0.2)
        if metric in FRACTION_METRICS:  # CIs of few seeds overshoot; accuracy is in [0, 100] %
            ax.set_ylim(0, 100)
        ax.set_title(f"{backbone} · {dataset}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    return fig


def attention_function(d: np.ndarray, *, slope: float, shift: float) -> np.ndarray:
    """The paper's attention A = 1 / (1 + exp(-a (D - b))) of frame differences ``d``."""
    return 1.0 / (1.0 + np.exp(-slope * (d - shift)))


@_themed
def plot_attention_functions(df: pd.DataFrame) -> Figure:
    """Attention against frame difference D in [-1, 1], from the mean final slope and shift of
    each variant; one panel per dataset."""
    rows = df[(df["status"] == tk.STATUS_FINISHED) & df["metric"].isin([tk.M_SLOPE, tk.M_SHIFT])]
    if rows.empty:
        raise NoData("no finished run logged the learned slope and shift")
    rows = add_labels(rows)
    ab = rows.pivot_table(
        index=["dataset", "backbone", "label"], columns="metric", values="value", aggfunc="mean"
    ).dropna()
    if ab.empty or tk.M_SLOPE not in ab or tk.M_SHIFT not in ab:
        raise NoData("no finished run logged both the slope and the shift")
    datasets = sorted(set(ab.index.get_level_values("dataset")))
    fig, axes = _grid(1, len(datasets))
    d = np.linspace(-1.0, 1.0, 401)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for k, ((backbone, label), row) in enumerate(ab.loc[dataset].iterrows()):
            a, b = float(row[tk.M_SLOPE]), float(row[tk.M_SHIFT])
            ax.plot(
                d,
                attention_function(d, slope=a, shift=b),
                color=_color(label, k),
                label=f"{backbone} / {label} (a={a:.2f}, b={b:.2f})",
            )
        ax.set_title(dataset)
        ax.set_xlabel("frame difference D")
        ax.set_ylabel("attention A")
        ax.legend(fontsize="x-small")
    return fig


@_themed
def plot_attention_strip(clip: dict[str, np.ndarray] | None) -> Figure:
    """The attention strip of one clip (:func:`mpbench.plots.plot_attention_strip`) in the
    report's theme; NoData without a clip."""
    if clip is None:
        raise NoData(f"no finished run has the artifact {tk.A_ATTENTION_CLIP!r}")
    return plots.plot_attention_strip(clip)


def _objective(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Finished search trials with their objective, ordered by Optuna trial number."""
    rows = df[(df["metric"] == metric) & (df["status"] == tk.STATUS_FINISHED)]
    rows = rows.assign(
        trial=rows["optuna_trial"]
        .astype("Float64")
        .fillna(rows["start_time"].rank(method="first") - 1)
        .astype(float)
    )
    return rows.sort_values(["trial", "run_id"], kind="stable")


@_themed
def plot_optimization_history(df: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> Figure:
    """Objective of each finished search trial and the best so far, by trial number."""
    rows = _objective(df, metric)
    if rows.empty:
        raise NoData(f"no finished search trial logged {metric!r}")
    scale, ylabel = _scale(metric)
    values = rows["value"].to_numpy(float) * scale
    best = np.maximum.accumulate(values) if "loss" not in metric else np.minimum.accumulate(values)
    fig, axes = _grid(1, 1)
    ax = axes[0, 0]
    ax.scatter(rows["trial"], values, label="trial", color="C0")
    ax.step(rows["trial"], best, where="post", label="best so far", color="C1")
    ax.set_title("optimisation history")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return fig


def _eta_squared(x: pd.Series, y: np.ndarray) -> float:
    """Share of the variance of ``y`` explained by the groups of ``x`` (numbers: <= 4 bins)."""
    numeric = pd.to_numeric(x, errors="coerce")
    if numeric.notna().all() and numeric.nunique() > 4:
        groups = pd.qcut(numeric, q=4, duplicates="drop").astype(str)
    else:
        groups = x.astype(str)
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0.0:
        return 0.0
    frame = pd.DataFrame({"g": groups.to_numpy(), "y": y})
    means = frame.groupby("g")["y"].agg(["mean", "size"])
    return float(np.sum(means["size"] * (means["mean"] - y.mean()) ** 2) / total)


def param_importances(runs: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1) -> pd.DataFrame:
    """Importance of each varying param of finished search runs (wide frame) for ``metric``."""
    column = f"metric.{metric}"
    if column not in runs:
        raise NoData(f"no search run logged {metric!r}")
    ok = runs[(runs["status"] == tk.STATUS_FINISHED) & runs[column].notna()]
    params = [
        c
        for c in sorted(runs.columns)
        if c.startswith("param.")
        and c.removeprefix("param.") not in IGNORED_PARAMS
        and ok[c].astype(str).nunique() > 1
    ]
    if len(ok) < 3 or not params:
        raise NoData("fewer than 3 finished search trials or no param that varies")
    y = ok[column].to_numpy(float)
    raw = {c.removeprefix("param."): _eta_squared(ok[c], y) for c in params}
    total = sum(raw.values())
    out = pd.DataFrame(
        {"param": list(raw), "importance": [v / total if total > 0 else 0.0 for v in raw.values()]}
    )
    out = out.sort_values(["importance", "param"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


@_themed
def plot_param_importances(importances: pd.DataFrame) -> Figure:
    """Horizontal bars of the parameter importances of :func:`param_importances`."""
    if importances.empty:
        raise NoData("no parameter importances")
    fig, axes = _grid(1, 1)
    ax = axes[0, 0]
    ordered = importances.iloc[::-1]
    ax.barh(ordered["param"], ordered["importance"], color="C0")
    ax.set_title("parameter importances (eta squared)")
    ax.set_xlabel("share of explained variance")
    return fig


def figure_titles(fig: Figure) -> list[str]:
    """Titles of the visible axes of ``fig`` (for tests and logs)."""
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


__all__: Any = [
    "NoData",
    "attention_function",
    "figure_titles",
    "param_importances",
    "plot_ablation",
    "plot_aggregate",
    "plot_attention_functions",
    "plot_attention_strip",
    "plot_learning_curves",
    "plot_lambda_sweep",
    "plot_optimization_history",
    "plot_param_importances",
    "theme",
]
