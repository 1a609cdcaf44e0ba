"""``mpbench plan``: simulate a sequential grid's design before anything runs (torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mpbench.cli._apps import app, command, console

EffectOpt = Annotated[
    float | None,
    typer.Option(
        help="True difference to detect, in the metric's units (default: twice the margin)."
    ),
]
SdOpt = Annotated[
    float | None,
    typer.Option(
        show_default=False,
        help="Standard deviation of the paired per-seed differences (default: the largest at "
        "which a fixed design with the max seeds has the study's power).",
    ),
]
HoursOpt = Annotated[
    float | None,
    typer.Option(show_default=False, help="Compute of one trial, in hours (> 0)."),
]
ProbeOpt = Annotated[
    bool,
    typer.Option(help="Time the trials with the dry run's probe (needs torch; slower)."),
]


def probe_hours(spec: Any) -> float:
    """Mean hours of one trial over the grid points, from the dry run's throughput probe."""
    from mpbench.config import without_cache
    from mpbench.study.dryrun import estimate
    from mpbench.study.spec import grid_points, local_config

    points = [without_cache(local_config(c, spec.folder)) for c in grid_points(spec)]
    seconds, _, notes = estimate(points)
    if seconds is None:
        raise ValueError("cannot time the trials here: " + "; ".join(notes))
    return seconds / len(points) / 3600.0


def _table(title: str, rows: list[dict[str, str]], columns: list[str]) -> Any:
    """A rich table of ``columns`` of ``rows``."""
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        left = column == "design"
        table.add_column(column, justify="left" if left else "right", no_wrap=left)
    for row in rows:
        table.add_row(*(row.get(c, "") for c in columns))
    return table


@command(app)
def plan(
    study: Annotated[Path, typer.Argument(help="Study file with seeds = { min, max, step }.")],
    effect: EffectOpt = None,
    sd: SdOpt = None,
    hours_per_trial: HoursOpt = None,
    probe: ProbeOpt = False,
) -> None:
    """Simulate a sequential grid: per comparison the chance of each verdict, expected and
    maximum seeds, and trials (trial-hours) beside the fixed design of equal power."""
    from mpbench.report.planner import plan as make_plan
    from mpbench.report.planner import plan_notes, plan_rows, study_design
    from mpbench.study.spec import read_study

    if hours_per_trial is not None and not hours_per_trial > 0:
        raise ValueError(f"--hours-per-trial must be > 0, got {hours_per_trial}")
    spec = read_study(study)
    design, baselines = study_design(spec, str(study))
    hours = probe_hours(spec) if probe and hours_per_trial is None else hours_per_trial
    schedule = spec.schedule
    with console.status("simulating the design"):
        result = make_plan(
            design, effect=effect, sd=sd, power=spec.resolve.power, baselines=baselines,
            min_step=(schedule.min, schedule.step), hours_per_trial=hours,
        )  # fmt: skip
    rows = plan_rows(result)
    verdicts = ["design", "true diff", "better", "worse", "equivalent", "undecided"]
    costs = ["design", "true diff", "mean seeds", "max seeds", "mean trials", "max trials"]
    title = f"plan of {spec.name}: {design.comparisons} comparison(s)"
    console.print(_table(f"{title}, chance of each verdict", rows[:-1], verdicts))
    console.print(_table(f"{title}, compute", rows, [*costs, "mean trial-h"]))
    for line in plan_notes(result):
        console.print(line, highlight=False)
