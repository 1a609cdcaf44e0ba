"""One-call report and figure builders used by the CLI (``mpbench report`` / ``figures``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from mpbench import tracking as tk
from mpbench._env import scoped_env
from mpbench.plots import save_figure
from mpbench.report.decisions import Decisions, add_verdicts, decide_runs, run_design
from mpbench.report.decoding import decoding_warnings, readme_section
from mpbench.report.load import (
    default_cache_dir,
    load_history,
    load_runs,
    long_form,
    open_search_study,
    read_client,
)
from mpbench.report.stats import (
    BOOT_SEED,
    RESAMPLES,
    aggregate,
    appearance_gap,
    summarize_cells,
    with_setting,
)
from mpbench.report.table import (
    CSV_FLOAT,
    PaperTable,
    paper_table,
    write_aggregate,
    write_gap,
    write_tables,
)
from mpbench.report.variance import seed_variance, variance_markdown


@dataclass(frozen=True)
class Report:
    """What ``mpbench report`` produced.

    Args:
        summary: the long stats table, one row per setting and split (also table.csv).
        table: the paper table (val and test columns per dataset).
        aggregate: IQM and probability of improvement per split and label (aggregate.csv).
        paths: the files written.
        warnings: runs of one dataset decoded differently (:mod:`mpbench.report.decoding`);
            also table notes and, when results/<study>/README.md exists, a section of it.
        decisions: a sequential grid's verdicts (None for a fixed-seed grid).
        variance: the seed variance by source (variance.csv; empty unless data_seed was set).

    Example:
        >>> report = make_report("quickstart")  # doctest: +SKIP
        >>> [p.name for p in report.paths]  # doctest: +SKIP
        ['table.md', 'table.tex', 'table.csv', 'aggregate.md', 'aggregate.csv']
    """

    summary: pd.DataFrame
    table: PaperTable
    aggregate: pd.DataFrame
    paths: list[Path]
    warnings: tuple[str, ...] = ()
    decisions: Decisions | None = None
    variance: pd.DataFrame | None = None
    gap: pd.DataFrame | None = None  # the appearance gap per setting (rows when test_shift ran)


def make_report(
    study: str,
    *,
    metric: str = tk.M_TEST_TOP1,
    experiment: str = tk.DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    results_dir: str | Path = "results",
    refresh: bool = False,
    resamples: int = RESAMPLES,
    seed: int = BOOT_SEED,
) -> Report:
    """Load ``study`` (cached), compute its stats and write table.md/.tex/.csv and
    aggregate.md/.csv; ``metric`` is reported with its counterpart on the other split."""
    runs = load_runs(
        study,
        experiment=experiment,
        tracking_uri=tracking_uri,
        refresh=refresh,
        cache_dir=default_cache_dir(study, results_dir=results_dir),
    )
    summary = summarize_cells(runs, metric=metric, resamples=resamples, seed=seed)
    agg = aggregate(runs, metric=metric, resamples=resamples, seed=seed)
    warnings = tuple(decoding_warnings(runs))
    table = paper_table(summary)
    table = replace(table, notes=(*table.notes, *(f"Warning: {w}." for w in warnings)))
    summary, decisions = _decided(runs, summary, resamples=resamples, seed=seed)
    variance = seed_variance(runs[runs["kind"] == "grid"], metric=metric)
    out = Path(results_dir) / study
    md, tex = _under(decisions, variance)
    gap = appearance_gap(runs, metric=metric)
    paths = write_tables(summary, table, out, under=(md, tex)) + write_aggregate(agg, out)
    paths += write_gap(gap, out)
    if len(variance):
        paths.append(out / "variance.csv")
        variance.to_csv(paths[-1], index=False, float_format=CSV_FLOAT, lineterminator="\n")
    readme = out / "README.md"
    if readme.is_file():
        readme.write_text(readme_section(readme.read_text(encoding="utf-8"), list(warnings)))
    return Report(
        summary=summary,
        table=table,
        aggregate=agg,
        paths=paths,
        warnings=warnings,
        decisions=decisions,
        variance=variance,
        gap=gap,
    )


def _under(decisions: Decisions | None, variance: pd.DataFrame) -> tuple[str, str]:
    """Markdown and LaTeX under the table: the verdicts and design, the variance by source."""
    md = tex = ""
    if decisions is not None:
        md, tex = "\n" + decisions.markdown(), decisions.latex()
    if len(variance):
        text = variance_markdown(variance)
        md += "\n" + text
        tex += "".join(f"% {line}\n" for line in text.splitlines())
    return md, tex


def _decided(
    runs: pd.DataFrame, summary: pd.DataFrame, *, resamples: int, seed: int
) -> tuple[pd.DataFrame, Decisions | None]:
    """The stats table with a sequential grid's verdicts (and the rows of its metric when the
    report shows another one), and the decisions; a fixed-seed grid's table as it is."""
    grid = runs[runs["kind"] == "grid"]
    design = run_design(grid)
    if design is None:
        return summary, None
    decisions = decide_runs(grid, design)
    if decisions.metric not in set(summary["metric"]):
        extra = summarize_cells(runs, metric=decisions.metric, resamples=resamples, seed=seed)
        summary = pd.concat([summary, extra[extra["metric"] == decisions.metric]])
    return add_verdicts(summary.reset_index(drop=True), decisions), decisions


def _save(fig: Any, out_dir: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``name``.png and ``name``.pdf (no timestamps in either)."""
    return [save_figure(fig, out_dir / f"{name}{suffix}") for suffix in (".png", ".pdf")]


_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def _no_download_bar() -> contextlib.AbstractContextManager[None]:
    """MLflow's artifact progress bar off inside the block unless the user set it, and the
    environment as it was afterwards (MLflow's only switch for it is this variable)."""
    return scoped_env(_PROGRESS_ENV, "false")


def _best_run_clip(
    runs: pd.DataFrame, metric: str, tracking_uri: str | None, *, tries: int = 20
) -> dict[str, Any] | None:
    """The attention clip artifact of the best finished run that has one (or None).

    Looks at the ``tries`` best finished runs by ``metric`` only, so large studies stay fast.
    """
    import numpy as np

    client = read_client(tracking_uri)
    ok = runs[runs["status"] == tk.STATUS_FINISHED]
    column = f"metric.{metric}"
    if column in ok:
        ok = ok.sort_values([column, "run_id"], ascending=[False, True], na_position="last")
    for run_id in ok["run_id"].head(tries):
        names = {a.path for a in client.list_artifacts(run_id)}
        if tk.A_ATTENTION_CLIP not in names:
            continue
        with _no_download_bar():
            path = client.download_artifacts(run_id, tk.A_ATTENTION_CLIP)
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    return None


def _plot_aggregate(
    runs: pd.DataFrame, *, metric: str, resamples: int, palette: dict[str, str]
) -> Any:
    """The aggregate figure of ``runs`` (NoData when no run logged ``metric``)."""
    from mpbench.report import figures as fg

    if f"metric.{metric}" not in runs:
        raise fg.NoData(f"no run logged {metric!r}")
    agg = aggregate(runs, metric=metric, resamples=resamples)
    return fg.plot_aggregate(agg, metric=metric, palette=palette)


def _search_study(name: str, search: pd.DataFrame, storage: str | None) -> Any:
    """The Optuna study of a search (NoData without search runs or without its storage)."""
    from mpbench.report import figures as fg

    if search.empty:
        raise fg.NoData("no search run")
    if storage is None:
        raise fg.NoData("the search figures read the Optuna study: give its storage (--storage)")
    return open_search_study(name, storage=storage)


def make_figures(
    study: str,
    *,
    metric: str = tk.M_TEST_TOP1,
    experiment: str = tk.DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    results_dir: str | Path = "results",
    note: Callable[[str], None] = print,
    resamples: int = RESAMPLES,
    storage: str | None = None,
) -> list[Path]:
    """Draw every figure of ``study`` that has data into results/<study>/ (PNG and PDF); the
    search figures read the Optuna study in ``storage``."""
    from mpbench.report import figures as fg

    cache = default_cache_dir(study, results_dir=results_dir)
    runs = load_runs(study, experiment=experiment, tracking_uri=tracking_uri, cache_dir=cache)
    df = long_form(runs)
    out = Path(results_dir) / study
    out.mkdir(parents=True, exist_ok=True)
    grid = runs[runs["kind"] != "search"]
    search = runs[runs["kind"] == "search"]
    # grid runs whose configs differ in more than variant and seed get their own bars and curves
    grid = with_setting(grid) if len(grid) else grid
    curves = pd.concat([grid, search]) if len(search) else grid
    palette = fg.study_palette(runs, grid)  # one colour per label in every figure
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("ablation", lambda: fg.plot_ablation(long_form(grid), metric=metric, palette=palette)),
        (
            "aggregate",
            lambda: _plot_aggregate(runs, metric=metric, resamples=resamples, palette=palette),
        ),
        ("lambda_sweep", lambda: fg.plot_lambda_sweep(df, metric=metric)),
        (
            "nuisance",
            lambda: fg.plot_nuisance(
                runs[runs["kind"] != "search"], metric=metric, palette=palette
            ),
        ),
        (
            "learning_curves",
            lambda: fg.plot_learning_curves(
                load_history(
                    curves[curves["status"] == tk.STATUS_FINISHED],
                    metrics=(tk.M_VAL_TOP1,),
                    tracking_uri=tracking_uri,
                    cache_dir=cache,
                ),
                palette=palette,
            ),
        ),
        ("attention_function", lambda: fg.plot_attention_functions(df, palette=palette)),
        (
            "attention_strip",
            lambda: fg.plot_attention_strip(_best_run_clip(runs, metric, tracking_uri)),
        ),
        (
            "search_history",
            lambda: fg.plot_optimization_history(_search_study(study, search, storage)),
        ),
        (
            "param_importances",
            lambda: fg.plot_param_importances(_search_study(study, search, storage)),
        ),
    ]
    paths: list[Path] = []
    with fg.theme():
        for name, make in makers:
            try:
                fig = make()
            except fg.NoData as exc:
                note(f"skipped {name}: {exc}")
                continue
            paths += _save(fig, out, name)
    return paths
