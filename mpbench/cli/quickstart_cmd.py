"""`mpbench quickstart`: the main job on the embedded defaults (synthetic data, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mpbench.cli._apps import app, command, console

StudyOpt = Annotated[Path, typer.Option(help="The grid study to run.")]
WorkersOpt = Annotated[int | None, typer.Option(help="Local worker processes.", min=1)]
ResultsOpt = Annotated[Path, typer.Option(help="Where tables and figures go.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Pin a trial field, e.g. --set epochs=1.")
]


@command(app)
def quickstart(
    study: StudyOpt = Path("studies/quickstart.toml"),
    workers: WorkersOpt = None,
    results: ResultsOpt = Path("results"),
    set_: SetOpt = None,
) -> None:
    """Synthetic data -> the quickstart ablation grid -> table and figures under results/."""
    import time

    from rich.progress import Progress

    from mpbench.cli.study_cmds import _logging, ui_command
    from mpbench.quickstart import (
        QuickstartFailed,
        prepare_data,
        run_quickstart,
        write_results_readme,
    )
    from mpbench.study.spec import parse_overrides

    _check_study(study)
    _logging()
    t0 = time.perf_counter()
    overrides = parse_overrides(set_ or [])

    def prepare(spec: Any) -> Path:
        with Progress(console=console, transient=True) as bar:

            def stage(text: str) -> Any:
                task = bar.add_task(text, total=None)
                return lambda done, total: bar.update(task, completed=done, total=total)

            return prepare_data(spec, bar=stage)

    try:
        result = run_quickstart(
            study_file=study,
            workers=workers,
            results_dir=results,
            overrides=overrides,
            on_stage=lambda s: console.print(f"[bold]>[/] {s}"),
            prepare=prepare,
        )
    except QuickstartFailed as exc:
        console.print(f"[bold red]quickstart failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    console.print(result.table.read_text())
    wall = time.perf_counter() - t0
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
    readme, answer = write_results_readme(result, wall=wall)
    _print_done(result, readme=readme, answer=answer, wall=wall, stages=stages)
    console.print(
        f"browse every run and trial: `{ui_command(study)}` (mlflow ui and optuna-dashboard)",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip


def _check_study(study: Path) -> None:
    """FileNotFoundError naming the study file and where it is found, when it is missing."""
    if not study.is_file():
        raise FileNotFoundError(
            f"study file {study} does not exist: run `mpbench quickstart` from a clone of the "
            "mpbench repository (it reads studies/quickstart.toml) or pass --study"
        )


def _print_done(result: Any, *, readme: Path, answer: Any, wall: float, stages: str) -> None:
    """The answer, the shift, the controls, the time and where the files went."""
    from mpbench.quickstart import certificate, shift_lines

    verdict, variant = answer.verdict(), answer.variant
    console.print(f"[bold]answer:[/] {verdict}")
    for line in [*shift_lines(result, variant), *certificate(result).lines()]:
        console.print(line, highlight=False, markup=False)
    console.print(f"[bold green]quickstart done[/] in {wall:.0f} s ({stages})")
    console.print(f"summary: {readme}")
    console.print(f"table:   {result.table} (+ .tex, .csv)")
    console.print(f"figures: {', '.join(str(p) for p in result.figures if p.suffix == '.png')}")
