"""``mpbench grid``, ``search``, ``worker`` and ``status``: run studies on Optuna storages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mpbench.cli._apps import app, console, err_console, user_errors

StudyArg = Annotated[Path, typer.Argument(help="Study file (studies/*.toml).")]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        help="Optuna storage: a journal file path or an RDB URL (postgresql+psycopg2://"
        "...). Default: <run folder>/<study>/optuna.journal."
    ),
]
WorkersOpt = Annotated[int | None, typer.Option(help="Local worker processes.", min=1)]
GpusOpt = Annotated[str | None, typer.Option(help="GPU ids, e.g. 0,1: one worker per GPU.")]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="List the trials and estimate the compute they need; run nothing."
    ),
]
RetryOpt = Annotated[bool, typer.Option("--retry-failed", help="Run failed cells again.")]
ExperimentOpt = Annotated[
    str | None, typer.Option(help="MLflow experiment (default: the study file's, else 'mpbench').")
]
NoMlflowOpt = Annotated[bool, typer.Option("--no-mlflow", help="Do not log to MLflow.")]
RunFolderOpt = Annotated[str | None, typer.Option(help="Root of the study run folders.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Pin a trial field, e.g. --set epochs=1 (removes it from the grid axes)."
    ),
]
ProbeOpt = Annotated[
    int, typer.Option(help="Training steps timed by the --dry-run probe (0: no probe).", min=0)
]


def _study_command(kind: str, doc: str) -> None:
    """Register ``mpbench grid`` or ``mpbench search``: the same options, another study kind."""

    def command(
        study: StudyArg,
        storage: StorageOpt = None,
        workers: WorkersOpt = None,
        gpus: GpusOpt = None,
        dry_run: DryRunOpt = False,
        retry_failed: RetryOpt = False,
        experiment: ExperimentOpt = None,
        no_mlflow: NoMlflowOpt = False,
        run_folder: RunFolderOpt = None,
        set_: SetOpt = None,
        probe_steps: ProbeOpt = 2,
    ) -> None:
        _run(kind, **{k: v for k, v in locals().items() if k != "kind"})

    command.__doc__ = doc
    command.__name__ = kind
    app.command(kind)(user_errors(command))


_study_command("grid", "Run every cell of a grid study exactly once (local worker processes).")
_study_command("search", "Run an Optuna search study (the trial budget is global across workers).")


@app.command()
@user_errors
def worker(
    study: Annotated[str, typer.Argument(help="Study file or study name.")],
    storage: Annotated[str, typer.Option(help="The study's shared storage URL.")],
    experiment: ExperimentOpt = None,
    no_mlflow: NoMlflowOpt = False,
    run_folder: RunFolderOpt = None,
    max_trials: Annotated[
        int | None, typer.Option(help="Stop after this many trials.", min=1)
    ] = None,
) -> None:
    """Join a study from this machine: claim and run its trials until none are left."""
    from mpbench.study import storage as S
    from mpbench.study.worker import WorkerOptions, interrupt_on_sigterm, run_worker

    name = _study_name(study)
    st = S.open_storage(storage)
    spec = S.load_spec(S.load_study(name, st))
    S.check_workers(storage, 2)
    ex = spec.execution
    opts = WorkerOptions(
        storage=storage,
        study=name,
        run_folder=run_folder or ex.run_folder,
        experiment=None if no_mlflow else (experiment or ex.experiment),
        retries=ex.retries,
        heartbeat_interval=ex.heartbeat_interval,
        grace_period=ex.grace_period,
        max_trials=max_trials,
    )
    _logging()
    try:
        with interrupt_on_sigterm():
            summary = run_worker(opts)
    except KeyboardInterrupt:
        err_console.print("interrupted: the current trial was given back to the queue")
        raise typer.Exit(130) from None
    console.print(f"worker done: { {k: len(v) for k, v in summary.outcomes.items()} }")


@app.command()
@user_errors
def status(
    study: StudyArg,
    storage: StorageOpt = None,
    run_folder: RunFolderOpt = None,
    set_: SetOpt = None,
) -> None:
    """Cells and trials by state, the best trial, time spent and an estimate of the rest."""
    from mpbench.study.runner import plan
    from mpbench.study.status import open_existing, summarize

    spec = _load(study, set_)
    p = plan(spec, storage=storage, run_folder=run_folder, workers=1)
    found = open_existing(spec, p.storage)
    if found is None:
        console.print(f"study {spec.name!r} has not started (storage {p.storage})")
        return
    print_summary(summarize(found, spec))


def _run(
    kind: str,
    *,
    study: Path,
    storage: str | None,
    workers: int | None,
    gpus: str | None,
    dry_run: bool,
    retry_failed: bool,
    experiment: str | None,
    no_mlflow: bool,
    run_folder: str | None,
    set_: list[str] | None,
    probe_steps: int,
) -> None:
    """Body of ``grid`` and ``search``."""
    from mpbench.study.runner import plan, run_study

    spec = _load(study, set_)
    if spec.kind != kind:
        raise ValueError(f"{study} is a {spec.kind} study: run it with `mpbench {spec.kind}`")
    p = plan(
        spec,
        storage=storage,
        workers=workers,
        gpus=_gpus(gpus),
        run_folder=run_folder,
        experiment=None if no_mlflow else (experiment or ""),
    )
    if dry_run:
        return print_dry_run(spec, p.storage, workers=p.workers, probe_steps=probe_steps)
    _logging()
    console.print(f"study {spec.name}: {p.workers} worker(s), storage {_describe(p.storage)}")
    result = run_study(spec, p, retry_failed=retry_failed)
    if not result.exit_codes:
        console.print("nothing to do: every cell has finished")
    print_summary(result.summary)
    if result.interrupted:
        raise typer.Exit(130)
    if any(c != 0 for c in result.exit_codes):
        err_console.print(f"worker exit codes: {result.exit_codes}")
        raise typer.Exit(1)


def _load(study: Path, set_: list[str] | None) -> Any:
    from mpbench.study.spec import load_study, parse_overrides

    return load_study(study, overrides=parse_overrides(set_ or []))


def _study_name(study: str) -> str:
    """The study name of a file argument, or the argument itself."""
    if study.endswith(".toml") or Path(study).is_file():
        return _load(Path(study), None).name
    return study


def _gpus(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise ValueError(f"--gpus takes comma-separated GPU ids like 0,1; got {text!r}") from None


def _describe(url: str) -> str:
    from mpbench.study.storage import describe_url

    return describe_url(url)


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def print_summary(s: Any) -> None:
    """Print a StudySummary as a small table."""
    from rich.table import Table

    from mpbench.study.status import format_seconds

    console.print(f"{s.kind} study {s.name}: {s.finished}/{s.total} finished", highlight=False)
    table = Table()
    for col in ("cells", "count"):
        table.add_column(col)
    for state, n in sorted(s.cells.items()):
        table.add_row(state, str(n))
    console.print(table)
    console.print("trials: " + ", ".join(f"{k} {v}" for k, v in sorted(s.trials.items())))
    if s.best is not None:
        b = s.best
        console.print(f"best: trial {b['number']} {b['metric']}={b['value']:.4f} {b['params']}")
    console.print(
        f"time spent {format_seconds(s.seconds_spent)}, mean trial "
        f"{format_seconds(s.mean_trial_seconds)}, left ~{format_seconds(s.eta_seconds)}"
    )
    if s.finished_twice:
        err_console.print(f"cells finished more than once: {s.finished_twice}")


def print_dry_run(spec: Any, url: str, *, workers: int, probe_steps: int) -> None:
    """Print the expanded trials and the compute estimate."""
    from rich.table import Table

    from mpbench.study.status import dry_run, format_seconds

    d = dry_run(spec, url, probe=probe_steps > 0, probe_steps=max(1, probe_steps))
    console.print(f"{spec.kind} study {spec.name}: {len(d.rows)} trial configs", highlight=False)
    table = Table()
    for col in d.rows[0]:
        table.add_column(col)
    for row in d.rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    console.print(f"done {d.done}, remaining {d.remaining}")
    for group, sec in d.seconds_per_step.items():
        console.print(f"probe {group}: {sec:.3f} s/step")
    if d.estimate_seconds is not None:
        console.print(
            f"estimated compute: {format_seconds(d.estimate_seconds)} on one device, "
            f"~{format_seconds(d.estimate_seconds / workers)} with {workers} worker(s)"
        )
    for note in d.notes:
        console.print(f"note: {note}")
