"""Figures of a study: every ``plot_*(df, ...)`` returns a matplotlib Figure and reads no files.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot state) under one seaborn theme
(:func:`theme`). A plot without data raises :class:`NoData` (a ValueError), which
``mpbench figures`` reports as a skipped figure. Error bars and bands are 95% t confidence
intervals over seeds, computed with :func:`mpbench.report.stats.mean_ci`, except in
:func:`plot_aggregate`, whose intervals are the stratified bootstrap CIs of
:func:`mpbench.report.stats.aggregate`. Axis labels name the split of the metric
(``test top-1 (%)``).

Figures that average over seeds show the runs the table averages
(:func:`mpbench.report.load.latest_runs`: a re-run seed replaces the earlier run). Each label
(variant, with λ and the varied fields where they vary) has one colour: pass the figures of one
report the same :func:`study_palette`; without one, a figure colours its own labels, all distinct.

The search figures take the ``optuna.Study`` itself: :func:`plot_optimization_history` and
:func:`plot_param_importances` are ``optuna.visualization.matplotlib``'s (the best value follows
the study's direction), drawn so that neither its style sheet nor its pyplot figure outlives the
call; :func:`param_importances` is ``optuna.importance``'s.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mpbench import plots
from mpbench import tracking as tk
from mpbench.report.load import latest_runs
from mpbench.report.stats import (
    BASELINE,
    FRACTION_METRICS,
    KEYS,
    add_labels,
    axis_label,
    mean_ci,
    metric_label,
    split_of,
    with_setting,
)

if TYPE_CHECKING:
    import optuna

P = ParamSpec("P")
R = TypeVar("R")

PANEL_SIZE: Final = (3.6, 2.8)
MANY_LABELS: Final = 8  # more settings in a panel: horizontal bars or a side legend, taller
BAR_HEIGHT: Final = 0.28  # inches per horizontal bar
NUISANCE_DODGE: Final = 0.08  # x offset between the variants of one nuisance level
D_GRID: Final = np.linspace(-1.0, 1.0, 401)  # frame differences of the attention-function panel
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


def _grid(rows: int, cols: int, *, bars: int = 0) -> tuple[Figure, np.ndarray]:
    """A figure with a rows x cols array of axes (panels of ``bars`` horizontal bars: taller,
    and wider for their labels)."""
    width, height = PANEL_SIZE
    if bars:
        width, height = 2 * width, max(height, BAR_HEIGHT * bars)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _many(labels: int) -> int:
    """``labels`` where a panel shows more than :data:`MANY_LABELS` settings, else 0 (the
    ``bars`` of :func:`_grid`)."""
    return labels if labels > MANY_LABELS else 0


def _most_labels(data: pd.DataFrame) -> int:
    """The most labels one backbone x dataset panel of ``data`` shows."""
    return int(data.groupby(["backbone", "dataset"])["label"].nunique().max())


def _scale(metric: str) -> tuple[float, str]:
    """Display factor and axis label (naming the split) of ``metric``; fractions in percent."""
    return (100.0 if metric in FRACTION_METRICS else 1.0), axis_label(metric)


def _latest(rows: pd.DataFrame) -> pd.DataFrame:
    """Labelled long ``rows`` of the runs the table averages: per metric, backbone, dataset,
    label and seed the last finished run that logged the metric (re-run seeds dropped)."""
    runs = rows.drop_duplicates(["run_id", "metric"])
    kept = latest_runs(runs, column="value", keys=["metric", *KEYS])
    pairs = pd.MultiIndex.from_frame(kept[["run_id", "metric"]])
    return rows[pd.MultiIndex.from_frame(rows[["run_id", "metric"]]).isin(pairs)]


def _finished(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The values of ``metric`` that the table averages, with a ``label`` column."""
    rows = df[df["metric"] == metric]
    if rows.empty:
        return rows.assign(label=pd.Series(dtype=object))
    return _latest(add_labels(rows))


def _label_order(labels: Iterable[str]) -> list[str]:
    """Labels sorted with the baseline first."""
    return sorted(set(labels), key=lambda s: (s != BASELINE, s))


def variant_palette(labels: Iterable[str]) -> dict[str, str]:
    """A distinct colour per label (baseline first, then sorted): seaborn's colorblind palette
    for up to 10 labels, evenly spaced husl hues for more."""
    import seaborn as sns
    from matplotlib.colors import to_hex

    order = _label_order(labels)
    colors = sns.color_palette("colorblind" if len(order) <= 10 else "husl", len(order))
    return {label: to_hex(c) for label, c in zip(order, colors, strict=True)}


def study_palette(*frames: pd.DataFrame) -> dict[str, str]:
    """One palette for the figures of one report: every label the runs of ``frames`` (wide or
    long) can show, the variant (with λ) alone and with the varied fields (``setting``, given or
    as :func:`mpbench.report.stats.with_setting` finds them)."""
    labels: list[str] = []
    for frame in (f for f in frames if len(f)):
        plain = frame.drop(columns="setting", errors="ignore")
        for runs in (plain, frame, with_setting(plain)):
            labels += add_labels(runs)["label"].tolist()
    return variant_palette(labels)


def _colors(labels: Sequence[str], palette: Mapping[str, str] | None) -> list[str]:
    """The colour of each of ``labels``: from ``palette``, else from a palette of ``labels``."""
    palette = variant_palette(labels) if palette is None else palette
    missing = sorted(set(labels) - set(palette))
    if missing:
        raise ValueError(
            f"the palette has no colour for {missing}; build it with study_palette() from every "
            "run the figures show"
        )
    return [palette[label] for label in labels]


@_themed
def plot_ablation(
    df: pd.DataFrame,
    *,
    metric: str = tk.M_TEST_TOP1,
    palette: Mapping[str, str] | None = None,
) -> Figure:
    """Bars of ``metric`` per variant with 95% CIs; one panel per backbone x dataset."""
    data = _finished(df, metric)
    if data.empty:
        raise NoData(f"no finished run logged {metric!r}")
    scale, ylabel = _scale(metric)
    backbones, datasets = sorted(set(data["backbone"])), sorted(set(data["dataset"]))
    bars = _many(_most_labels(data))
    flat = bars > 0  # many settings: bars lie down, labels read across
    fig, axes = _grid(len(backbones), len(datasets), bars=bars)
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
        colors = _colors(labels, palette)
        at = np.arange(len(labels))
        bar = ax.barh if flat else ax.bar
        bar(at, means, **{"xerr" if flat else "yerr": err}, color=colors, capsize=3, alpha=0.85)
        for k, lb in enumerate(labels):  # the seeds themselves: with few seeds the CI is wide
            values = cell.loc[cell["label"] == lb, "value"].to_numpy(float) * scale
            where = np.full(len(values), k)
            ax.scatter(*((values, where) if flat else (where, values)), color="k", s=12, zorder=3)
        limit = ax.set_xlim if flat else ax.set_ylim
        if metric in FRACTION_METRICS:  # an accuracy lives in [0, 100] %, whatever the CI says
            limit(0, 100)
        if flat:
            ax.set_yticks(at, labels)
            ax.invert_yaxis()  # the baseline on top
            ax.set_xlabel(ylabel)
        else:
            ax.set_xticks(at, labels, rotation=30, ha="right")
            ax.set_ylabel(ylabel)
        ax.set_title(f"{backbone} · {dataset}")
    return fig


def _errorbar(
    ax: Any,
    rows: pd.DataFrame,
    cols: tuple[str, str, str],
    scale: float,
    palette: Mapping[str, str] | None,
) -> None:
    """Points with horizontal CI bars, one row per label (top to bottom, colour by label)."""
    y = np.arange(len(rows))[::-1]
    colors = _colors(rows["label"].tolist(), palette)
    ax.set_yticks(y, rows["label"])
    ax.set_ylim(-0.5, len(rows) - 0.5)
    point, low, high = (rows[c].to_numpy(float) * scale for c in cols)
    shown = ~np.isnan(point)  # the baseline has no probability of improvement
    ax.hlines(y[shown], low[shown], high[shown], colors=np.array(colors)[shown], linewidth=2.5)
    ax.scatter(point[shown], y[shown], c=np.array(colors)[shown], s=25, zorder=3, edgecolors="k")


@_themed
def plot_aggregate(
    df: pd.DataFrame,
    *,
    metric: str = tk.M_TEST_TOP1,
    palette: Mapping[str, str] | None = None,
) -> Figure:
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
    fig, axes = _grid(1, 2, bars=_many(len(rows)))
    _errorbar(axes[0, 0], rows, ("iqm", "iqm_low", "iqm_high"), scale, palette)
    axes[0, 0].set_title("IQM over tasks and seeds")
    axes[0, 0].set_xlabel(f"IQM of {xlabel}")
    _errorbar(axes[0, 1], rows, ("p_improve", "p_low", "p_high"), 1.0, palette)
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
    data = df[keep & (df["variant"] != BASELINE)]
    data = _latest(add_labels(data)).copy() if len(data) else data.copy()
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
def plot_learning_curves(
    history: pd.DataFrame,
    *,
    metric: str = tk.M_VAL_TOP1,
    palette: Mapping[str, str] | None = None,
) -> Figure:
    """Per-epoch ``metric`` (mean and 95% CI over seeds) per variant; panel per backbone x
    dataset. ``history`` is the frame of :func:`mpbench.report.load.load_history`."""
    data = history[(history["metric"] == metric) & (history["step"] >= 0)]
    if data.empty:
        raise NoData(f"no per-epoch history of {metric!r}")
    data = _latest(add_labels(data))
    scale, ylabel = _scale(metric)
    panels = sorted(set(zip(data["backbone"], data["dataset"], strict=True)))
    bars = _many(_most_labels(data))  # a long legend: beside the panel, the panel taller
    fig, axes = _grid(1, len(panels), bars=bars)
    for ax, (backbone, dataset) in zip(axes[0], panels, strict=True):
        cell = data[(data["backbone"] == backbone) & (data["dataset"] == dataset)]
        labels = _label_order(cell["label"])
        for label, color in zip(labels, _colors(labels, palette), strict=True):
            part = cell[cell["label"] == label]
            stats = [
                (step, *mean_ci(g["value"].to_numpy(float) * scale))
                for step, g in part.groupby("step", sort=True)
            ]
            steps, means, _, lows, highs = (
                np.array(v, dtype=float) for v in zip(*stats, strict=True)
            )
            ax.plot(steps, means, marker="o", color=color, label=label)
            ax.fill_between(steps, lows, highs, color=color, alpha=0.2)
        if metric in FRACTION_METRICS:  # CIs of few seeds overshoot; accuracy is in [0, 100] %
            ax.set_ylim(0, 100)
        ax.set_title(f"{backbone} · {dataset}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        where = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)} if bars else {}
        ax.legend(fontsize="small", **where)
    return fig


def attention_function(variant: str, d: np.ndarray, *, slope: float, shift: float) -> np.ndarray:
    """The attention that ``variant``'s layer gives frame differences ``d`` at strength
    ``slope`` and shift ``shift``: the layer itself (its own power normalisation) applied to a
    two-frame video whose grey difference is ``d``."""
    import torch

    from mpbench._ranges import SHIFT_LIMIT
    from mpbench.prompt import MotionPrompt
    from mpbench.variants import get_variant

    spec = get_variant(variant)
    if not spec.prompt:
        raise ValueError(f"variant {variant!r} has no prompt, so no attention function")
    b = min(max(float(shift), -SHIFT_LIMIT), SHIFT_LIMIT)  # 0.6 tanh n in float32 can pass 0.6
    layer = MotionPrompt(pn=spec.pn, slope=float(slope), shift=b, mean=0.0, std=1.0)
    x = torch.zeros(1, 3, 2, 1, len(d), dtype=torch.float64)  # B x C x T+1 x H x W
    x[:, :, 1, 0] = torch.as_tensor(d, dtype=torch.float64)  # grey weights sum to 1: D = d
    with torch.no_grad():
        return layer(x).attention[0, 0, 0].numpy()


def _attention_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Mean final slope and shift per dataset, backbone, label and variant (registered variants
    only: the function of an unknown one is unknown)."""
    from mpbench.variants import VARIANTS

    rows = df[df["metric"].isin([tk.M_SLOPE, tk.M_SHIFT]) & df["variant"].isin(VARIANTS.names())]
    if rows.empty:
        raise NoData("no finished run of a registered variant logged the learned slope and shift")
    rows = _latest(add_labels(rows))
    index = ["dataset", "backbone", "label", "variant"]
    ab = rows.pivot_table(index=index, columns="metric", values="value", aggfunc="mean")
    if ab.empty or tk.M_SLOPE not in ab or tk.M_SHIFT not in ab or ab.dropna().empty:
        raise NoData("no finished run logged both the slope and the shift")
    return ab.dropna()


@_themed
def plot_attention_functions(
    df: pd.DataFrame, *, palette: Mapping[str, str] | None = None
) -> Figure:
    """Attention against frame difference D in [-1, 1], each variant's own function (its power
    normalisation) at the mean final slope and shift; one panel per dataset."""
    from mpbench.prompt import POWER_NORMS
    from mpbench.variants import get_variant

    ab = _attention_rows(df)
    datasets = sorted(set(ab.index.get_level_values("dataset")))
    fig, axes = _grid(1, len(datasets))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = ab.loc[dataset]
        colors = _colors(part.index.get_level_values("label").tolist(), palette)
        for ((backbone, label, variant), row), color in zip(part.iterrows(), colors, strict=True):
            a, b = float(row[tk.M_SLOPE]), float(row[tk.M_SHIFT])
            symbol = POWER_NORMS.get(get_variant(variant).pn).symbol
            ax.plot(
                D_GRID,
                attention_function(variant, D_GRID, slope=a, shift=b),
                color=color,
                label=f"{backbone} / {label} ({symbol}={a:.2f}, b={b:.2f})",
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


def _check_search(study: optuna.Study, *, least: int = 1) -> None:
    """NoData unless ``study`` has ``least`` complete trials with parameters."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < least or not any(t.params for t in done):
        raise NoData(
            f"Optuna study {study.study_name!r} has {len(done)} complete trials "
            f"(needs {least} with parameters)"
        )


def _target_name(study: optuna.Study) -> str:
    """The objective's name as the study stores it (``Objective Value`` when unnamed)."""
    names = study.metric_names
    return names[0] if names else "Objective Value"


def _from_optuna(draw: Callable[[], Any]) -> Figure:
    """The figure of an ``optuna.visualization.matplotlib`` plot, leaving no state behind: its
    ggplot style sheet stays inside an rc_context and its figure leaves pyplot's registry."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    import optuna

    with mpl.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = draw()
    fig = ax.figure
    plt.close(fig)
    return fig


def plot_optimization_history(study: optuna.Study) -> Figure:
    """Objective of each complete trial and the best so far in the study's direction (Optuna's
    figure)."""
    from optuna.visualization.matplotlib import plot_optimization_history as plot

    _check_search(study)
    return _from_optuna(lambda: plot(study, target_name=_target_name(study)))


def param_importances(study: optuna.Study) -> pd.DataFrame:
    """Importance of each parameter for the objective (``optuna.importance``), largest first."""
    import optuna

    _check_search(study, least=2)
    values = optuna.importance.get_param_importances(study)
    return pd.DataFrame({"param": list(values), "importance": list(values.values())})


def plot_param_importances(study: optuna.Study) -> Figure:
    """Horizontal bars of :func:`param_importances` (Optuna's figure)."""
    from optuna.visualization.matplotlib import plot_param_importances as plot

    _check_search(study, least=2)
    return _from_optuna(lambda: plot(study, target_name=_target_name(study)))


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
    "study_palette",
    "theme",
    "variant_palette",
]


def nuisance_levels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (wide) whose dataset_options name a nuisance ladder, with ``ladder`` and
    ``level`` columns (NoData when none does)."""
    import json

    def parse(text: object) -> tuple[Any, Any]:
        try:
            opts = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            opts = {}
        opts = opts if isinstance(opts, dict) else {}
        return opts.get("ladder"), opts.get("level", 0)

    column = "param.dataset_options"
    if column not in runs:
        raise NoData("no run logged dataset_options")
    parsed = runs[column].map(parse)
    out = runs.assign(ladder=parsed.str[0], level=parsed.str[1])
    out = out[out["ladder"].notna()]
    if out.empty:
        raise NoData("no run trained on a nuisance ladder (dataset option ladder)")
    return out


@_themed
def plot_nuisance(
    runs: pd.DataFrame, *, metric: str = tk.M_TEST_TOP1, palette: Mapping[str, str] | None = None
) -> Figure:
    """Accuracy vs nuisance strength per variant (mean and 95 % t interval over seeds), one
    column per ladder: ``metric`` on test, on test_shift, and the appearance gap between them."""
    data = add_labels(nuisance_levels(runs.drop(columns="setting", errors="ignore")))
    shift = f"metric.{tk.M_TEST_SHIFT_TOP1 if metric == tk.M_TEST_TOP1 else metric}"
    test = f"metric.{metric}"
    if shift in data:
        data = data.assign(_gap=data[test] - data[shift])
    rows = [(test, axis_label(metric))]
    if shift in data and data[shift].notna().any():
        rows += [(shift, axis_label(tk.M_TEST_SHIFT_TOP1)), ("_gap", "appearance gap (points)")]
    ladders = sorted(set(data["ladder"]))
    fig, axes = _grid(len(rows), len(ladders))
    for col, ladder in enumerate(ladders):
        part = latest_runs(data[data["ladder"] == ladder], column=test, keys=["label", "level"])
        labels = sorted(set(part["label"]))
        for row, (key, ylabel) in enumerate(rows):
            ax = axes[row, col]
            for k, label in enumerate(labels):
                line = part[part["label"] == label]
                dodge = (k - (len(labels) - 1) / 2) * NUISANCE_DODGE  # variants side by side
                colour = None if palette is None else palette.get(str(label))
                _nuisance_line(ax, line, key, dodge=dodge, label=str(label), colour=colour)
            seeds = 100 * part[key].dropna().to_numpy(float)
            if key != "_gap":  # an accuracy lives in [0, 100] %, whatever a 2-seed CI says
                ax.set_ylim(0, 100)
            elif len(seeds):  # the gap: the seeds' own range (wider intervals are cut)
                ax.set_ylim(seeds.min() - 10, seeds.max() + 10)
            ax.set_xlabel(f"{ladder} level")
            ax.set_xticks(sorted(set(part["level"])))
            if col == 0:
                ax.set_ylabel(ylabel)
        axes[0, col].set_title(f"nuisance: {ladder}")
    axes[0, 0].legend(fontsize="small")
    return fig


def _nuisance_line(
    ax: Any, line: pd.DataFrame, key: str, *, dodge: float, label: str, colour: str | None
) -> None:
    """One variant's mean and 95 % t interval per level, and its seeds as dots."""
    stats = [
        (level, *mean_ci(100 * g[key].dropna().to_numpy(float)))
        for level, g in line.groupby("level", sort=True)
    ]
    xs, means, _, lows, highs = np.array(stats, dtype=float).T
    err = [np.nan_to_num(means - lows), np.nan_to_num(highs - means)]
    drawn = ax.errorbar(
        xs + dodge, means, yerr=err, marker="o", capsize=3, label=label, color=colour
    )
    seeds = line.dropna(subset=[key])
    ax.scatter(
        seeds["level"].to_numpy(float) + dodge,
        100 * seeds[key].to_numpy(float),
        s=9,
        color=drawn.lines[0].get_color(),
        alpha=0.6,
        zorder=3,
    )
