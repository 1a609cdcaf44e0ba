"""Reports from MLflow runs: ``report``, ``export``, ``figures``, ``viz`` and ``bench report``.

Heavy libraries (mlflow, pandas, matplotlib, torch) are imported inside the command bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from mpbench.cli._apps import app, bench_app, command, console
from mpbench.tracking import DEFAULT_EXPERIMENT, M_TEST_TOP1

StudyArg = Annotated[str, typer.Argument(help="Study name (the mpbench.study tag of its runs).")]
ExperimentOpt = Annotated[str, typer.Option(help="MLflow experiment holding the runs.")]
ResultsOpt = Annotated[Path, typer.Option(help="Folder that gets <study>/ with the outputs.")]
MetricOpt = Annotated[
    str,
    typer.Option(
        help="Final metric to report (an MLflow metric key); a val/test metric is shown with its "
        "counterpart on the other split."
    ),
]
ResamplesOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        show_default=False,
        help="Bootstrap resamples of the CIs; seeded, so the same runs give the same CIs "
        "(default: mpbench.report.stats.RESAMPLES).",
    ),
]


def _boot(resamples: int | None) -> dict[str, int]:
    """The bootstrap keyword arguments given on the command line (library defaults otherwise)."""
    return {} if resamples is None else {"resamples": resamples}


def _study_options(
    metric: str, experiment: str, results_dir: Path, resamples: int | None
) -> dict[str, Any]:
    """The options ``report`` and ``figures`` share, as keyword arguments of ``make_report`` and
    ``make_figures``."""
    options = {"metric": metric, "experiment": experiment, "results_dir": results_dir}
    return options | _boot(resamples)


def _wrote(paths: list[Path]) -> None:
    """Say which files were written."""
    for path in paths:
        console.print(f"wrote {path}", highlight=False)


@command(app)
def report(
    study: StudyArg,
    metric: MetricOpt = M_TEST_TOP1,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    results_dir: ResultsOpt = Path("results"),
    refresh: Annotated[bool, typer.Option(help="Rebuild the run cache from MLflow.")] = False,
    resamples: ResamplesOpt = None,
) -> None:
    """Write table.md/.tex/.csv and aggregate.md/.csv of a study and print its table."""
    from rich.markup import escape

    from mpbench.report.build import make_report
    from mpbench.report.table import rich_table

    options = _study_options(metric, experiment, results_dir, resamples)
    with console.status(f"loading the runs of {study!r} from MLflow"):
        result = make_report(study, refresh=refresh, **options)
    console.print(rich_table(result.table))
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    _wrote(result.paths)


@command(app)
def export(
    study: StudyArg,
    format: Annotated[
        Literal["csv", "parquet"], typer.Option("--format", help="File format.")
    ] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output file [results/<study>/runs.EXT]")] = None,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    results_dir: ResultsOpt = Path("results"),
) -> None:
    """Write a study's runs as a long table (run x metric) in CSV or Parquet."""
    from mpbench.report.load import export_study

    path = export_study(study, fmt=format, out=out, experiment=experiment, results_dir=results_dir)
    _wrote([path])


@command(app)
def figures(
    study: StudyArg,
    metric: MetricOpt = M_TEST_TOP1,
    experiment: ExperimentOpt = DEFAULT_EXPERIMENT,
    results_dir: ResultsOpt = Path("results"),
    resamples: ResamplesOpt = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage of a search (journal file or RDB URL, as given to mpbench "
            "search): the search history and parameter importances read the study there."
        ),
    ] = None,
) -> None:
    """Draw a study's figures (PNG and PDF) into results/<study>/."""
    from mpbench.report.build import make_figures

    with console.status(f"drawing the figures of {study!r}"):
        paths = make_figures(
            study,
            note=lambda text: console.print(f"note: {text}", highlight=False),
            storage=storage,
            **_study_options(metric, experiment, results_dir, resamples),
        )
    _wrote(paths)


@command(app)
def viz(
    video: Annotated[Path, typer.Argument(help="Any video file PyAV can decode.")],
    run: Annotated[str | None, typer.Option(help="MLflow run id to take slope/shift from.")] = None,
    slope: Annotated[float | None, typer.Option(help="Sigmoid slope a in [9.09, 50].")] = None,
    shift: Annotated[float | None, typer.Option(help="Sigmoid shift b in [-0.6, 0.6].")] = None,
    frames: Annotated[int, typer.Option(help="Frames in the clip (T+1 give T maps).")] = 9,
    rate: Annotated[
        int, typer.Option(help="Sampling rate: every RATE-th frame (training's sampling_rate).")
    ] = 2,
    start: Annotated[
        float | None,
        typer.Option(help="Clip start in seconds (default: centred, like the validation clip)."),
    ] = None,
    size: Annotated[int, typer.Option(help="Square frame size in pixels.")] = 112,
    out: Annotated[Path | None, typer.Option(help="PNG to write [VIDEO.attention.png]")] = None,
) -> None:
    """Draw the attention strip (frames, differences, attention, prompts) of one clip of a video.

    The clip: FRAMES samples, every RATE-th frame from START; only that window is decoded.
    """
    from mpbench.report.viz import run_slope_shift, visualize_video

    if run is not None and (slope is not None or shift is not None):
        raise ValueError("give either --run RUN_ID or --slope A --shift B, not both")
    if run is not None:
        slope, shift = run_slope_shift(run)
    if slope is None or shift is None:
        raise ValueError("give --run RUN_ID, or both --slope A and --shift B")
    path = visualize_video(
        video, slope=slope, shift=shift, frames=frames, rate=rate, start=start, size=size, out=out
    )
    _wrote([path])


@command(bench_app, "report")
def bench_report_cmd(
    runs: Annotated[int, typer.Option(help="Number of synthetic runs to log.")] = 10_000,
    keep: Annotated[Path | None, typer.Option(help="Keep the store in this folder.")] = None,
) -> None:
    """Log many small runs to a temporary MLflow store and time ``mpbench report`` on them."""
    from rich.progress import Progress

    from mpbench.bench.report import bench_report

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("logging runs", total=runs)
        result = bench_report(
            runs=runs, keep=keep, progress=lambda done: progress.update(task, completed=done)
        )
    console.print(
        f"runs {result.runs}: logged in {result.log_s:.2f} s; report cold (no cache) "
        f"{result.cold_s:.2f} s, warm (cache) {result.warm_s:.2f} s; {result.rows} table rows",
        highlight=False,
    )
