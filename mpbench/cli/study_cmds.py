"""``mpbench grid``, ``search``, ``worker`` and ``status``: run studies on Optuna storages.

Exit codes (``mpbench.study.runner.EXIT_*``): 0 every cell finished, 1 some cells failed (a table
lists them), 2 bad input or a failed pre-flight (nothing was enqueued or started), 130
interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mpbench._markdown import markdown_table
from mpbench._secrets import mask_url
from mpbench.cli._apps import app, command, console, err_console

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
EXIT_HELP = (
    "Exit codes: 0 every cell finished; 1 some cells failed (listed with their errors and "
    "logs; rerun them with --retry-failed); 2 bad input: the study file, an option or the "
    "pre-flight (nothing was enqueued or started); 130 interrupted (Ctrl-C, SIGTERM)."
)
PATHS_HELP = (
    "Relative paths in the study file (data_root, run_folder, a journal storage) are relative "
    "to its project folder (the folder above studies/, else the file's folder); paths given "
    "as options are relative to the current folder."
)
ProbeOpt = Annotated[
    int, typer.Option(help="Training steps timed by the --dry-run probe (0: no probe).", min=0)
]
LauncherOpt = Annotated[
    str | None,
    typer.Option(
        help="Submit the workers as submitit jobs instead of local processes: 'slurm' (one job "
        "array; resources from [execution.slurm]) or 'local' (the same jobs on this machine). "
        "Prints the job ids and returns unless --wait.",
        show_choices=True,
    ),
]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="With --launcher: follow the study to its end (progress bar, replacing jobs that "
        "were killed while cells remain) and exit with the study's exit code.",
    ),
]


PRE_FLIGHT_HELP = (
    "Before anything is enqueued or started (also with --dry-run) a pre-flight builds every "
    "remaining cell's dataset and model (a forward pass at batch 1, no training) and checks the "
    "GPUs and the run folder."
)


def _study_command(kind: str, doc: str) -> None:
    """Register ``mpbench grid`` or ``mpbench search``: the same options, another study kind."""

    def run_study(
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
        launcher: LauncherOpt = None,
        wait: WaitOpt = False,
    ) -> None:
        _run(kind, RunOptions(**{k: v for k, v in locals().items() if k != "kind"}))

    run_study.__doc__ = "\n\n".join([doc, PRE_FLIGHT_HELP, PATHS_HELP, EXIT_HELP])
    run_study.__name__ = kind
    command(app, kind)(run_study)


_study_command("grid", "Run every cell of a grid study exactly once (local worker processes).")
_study_command("search", "Run an Optuna search study (the trial budget is global across workers).")


LOCAL = "Set by mpbench grid / search for its local workers"
IndexOpt = Annotated[
    int | None,
    typer.Option(help="Local worker number (names its log lines).", min=0, rich_help_panel=LOCAL),
]
ParentOpt = Annotated[
    int | None,
    typer.Option(
        help="Stop claiming trials when this process is gone; it reports the study (this "
        "worker prints no summary and exits 0 unless interrupted).",
        rich_help_panel=LOCAL,
    ),
]
LogOpt = Annotated[
    str | None,
    typer.Option(
        help="The file this worker's output goes to (recorded on its trials).",
        rich_help_panel=LOCAL,
    ),
]
WorkerStorageOpt = Annotated[
    str,
    typer.Option(
        help="The study's shared storage URL. Omit it to read the URL from the environment "
        "variable MPBENCH_STORAGE, which keeps a password out of the command line (ps).",
        envvar="MPBENCH_STORAGE",
        show_envvar=True,
    ),
]
RetriesOpt = Annotated[
    int | None, typer.Option(help="Retries of a trial whose worker died (default: the study's).")
]
HeartbeatOpt = Annotated[
    float | None, typer.Option(help="Seconds between heartbeats (default: the study's).")
]
GraceOpt = Annotated[
    float | None,
    typer.Option(
        help="Seconds without a heartbeat before a trial is stale (default: the study's)."
    ),
]


@command(
    app,
    help="\n\n".join(
        [
            "Join a study from this machine: claim and run its trials until none are left.",
            "Trials run in the study's project folder when STUDY is a study file, else in the "
            "current folder.",
            "In a seeded search every worker takes a number from the storage and seeds its "
            "sampler with sampler_seed + number (logged), so workers never propose the same "
            "points. mpbench grid and search start their local workers with this command.",
            EXIT_HELP,
        ]
    ),
)
def worker(
    study: Annotated[str, typer.Argument(help="Study file or study name.")],
    storage: WorkerStorageOpt,
    experiment: ExperimentOpt = None,
    no_mlflow: NoMlflowOpt = False,
    run_folder: RunFolderOpt = None,
    max_trials: Annotated[
        int | None, typer.Option(help="Stop after this many trials.", min=1)
    ] = None,
    retries: RetriesOpt = None,
    heartbeat_interval: HeartbeatOpt = None,
    grace_period: GraceOpt = None,
    index: IndexOpt = None,
    parent_pid: ParentOpt = None,
    log: LogOpt = None,
) -> None:
    """Join a study from this machine (see the help text above for paths and exit codes)."""
    from mpbench.outage import OutageError
    from mpbench.study.plan import worker_options
    from mpbench.study.runner import EXIT_FAILED, exit_code, work_on_study

    spec, folder, p = _worker_plan(study, storage, run_folder=run_folder, parent_pid=parent_pid,
                                   experiment=None if no_mlflow else (experiment or ""),
                                   retries=retries, heartbeat_interval=heartbeat_interval,
                                   grace_period=grace_period)  # fmt: skip
    opts = worker_options(spec, p, index=index, parent_pid=parent_pid, max_trials=max_trials,
                          log=log)  # fmt: skip
    _worker_logging(index)
    try:
        joined = work_on_study(spec, opts, folder=folder)
    except KeyboardInterrupt:
        err_console.print("interrupted: the current trial was given back to the queue")
        raise typer.Exit(130) from None
    except OutageError as exc:  # the storage stayed away: the running trial is reaped later
        err_console.print(f"worker stopped: {mask_url(str(exc))}", highlight=False, markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    console.print(f"worker done: { {k: len(v) for k, v in joined.outcomes.items()} }")
    if joined.summary is None:
        return  # the parent summarises the study and sets the exit code
    retry = f"mpbench {spec.kind} <study file> --storage ... --retry-failed"
    print_summary(joined.summary, retry=retry)
    code = exit_code(joined.summary)
    if code:
        raise typer.Exit(code)


def _worker_plan(
    study: str, storage: str, *, run_folder: str | None, parent_pid: int | None, **overrides: Any
) -> tuple[Any, Path, Any]:
    """The worker's study (read from its storage), project folder and run plan."""
    from mpbench.study import storage as S
    from mpbench.study.plan import plan
    from mpbench.study.spec import check_study_name

    name, folder = _study_name(study)
    check_study_name(name)
    url = S.resolve_storage(storage, Path.cwd())
    if parent_pid is None:  # a parent checked its storage for the number of workers it starts
        S.check_workers(url, 2)
    spec = S.load_spec(S.open_study(name, S.open_storage(url))).with_folder(folder)
    return spec, folder, plan(spec, storage=url, run_folder=run_folder, workers=1, **overrides)


def _worker_logging(index: int | None) -> None:
    """Warnings from libraries; mpbench's own progress (trials, the sampler seed) at INFO."""
    import logging

    who = "worker" if index is None else f"w{index}"
    logging.basicConfig(
        level=logging.WARNING, format=f"%(asctime)s {who} %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("mpbench").setLevel(logging.INFO)


@command(app)
def status(
    study: StudyArg,
    storage: StorageOpt = None,
    run_folder: RunFolderOpt = None,
    set_: SetOpt = None,
) -> None:
    """Cells and trials by state, the failed cells with their errors, the best trial, time spent
    and an estimate of the rest. The study's state is found from its file whatever the current
    folder."""
    from mpbench.study.plan import plan
    from mpbench.study.status import summarize_study
    from mpbench.study.storage import open_existing

    spec = _load(study, set_)
    p = plan(spec, storage=storage, run_folder=run_folder, workers=1)
    found = open_existing(spec, p.storage)
    if found is None:
        console.print(
            f"study {spec.name!r} has not started (storage {mask_url(p.storage)})",
            highlight=False,
            soft_wrap=True,
        )
        return
    print_summary(summarize_study(found, spec), retry=_retry_command(spec, study, storage))
    print_jobs(spec.run_folder(p.run_folder))


def print_jobs(study_folder: Path) -> None:
    """The study's submitit jobs (``--launcher``) and their states, when it has any."""
    from mpbench.study.launch import job_state, load_jobs

    records = load_jobs(study_folder)
    if not records:
        return
    rows = [[r["id"], r["launcher"], str(r["index"]), job_state(r), r["log"]] for r in records]
    lines = markdown_table(["job", "launcher", "worker", "state", "log"], rows)
    console.print(
        "\n".join([f"jobs: {len(records)}", *lines]), highlight=False, markup=False, soft_wrap=True
    )


@dataclass(frozen=True)
class RunOptions:
    """The command line of ``mpbench grid`` / ``mpbench search``, as given."""

    study: Path
    storage: str | None = None
    workers: int | None = None
    gpus: str | None = None
    dry_run: bool = False
    retry_failed: bool = False
    experiment: str | None = None
    no_mlflow: bool = False
    run_folder: str | None = None
    set_: list[str] | None = None
    probe_steps: int = 2
    launcher: str | None = None
    wait: bool = False


def _run(kind: str, o: RunOptions) -> None:
    """Body of ``grid`` and ``search``: pre-flight, then the dry run, the jobs or the workers."""
    from mpbench.study.preflight import preflight

    spec, p = _run_plan(kind, o)
    checked = preflight(spec, p, retry_failed=o.retry_failed, fetch=not o.dry_run)
    console.print(checked.describe(), highlight=False)
    if o.dry_run:
        return print_dry_run(spec, p.storage, workers=p.workers, probe_steps=o.probe_steps)
    _logging()
    if o.launcher is not None:
        return _launch(spec, p, o.launcher, study=o.study, storage=o.storage, workers=o.workers,
                       wait=o.wait, retry_failed=o.retry_failed)  # fmt: skip
    _run_local(spec, p, o)


def _run_plan(kind: str, o: RunOptions) -> tuple[Any, Any]:
    """The study file and its run plan, with the launcher's own checks."""
    from mpbench.study.plan import plan

    spec = _load(o.study, o.set_)
    if spec.kind != kind:
        raise ValueError(f"{o.study} is a {spec.kind} study: run it with `mpbench {spec.kind}`")
    p = plan(spec, storage=o.storage, workers=o.workers, gpus=_gpus(o.gpus),
             run_folder=o.run_folder,
             experiment=None if o.no_mlflow else (o.experiment or ""))  # fmt: skip
    if o.launcher is not None:
        _check_launcher(spec, p, o.launcher)
    elif o.wait:
        raise ValueError(
            "--wait follows jobs of --launcher local or slurm; without --launcher "
            "mpbench grid/search always wait for their local workers"
        )
    return spec, p


def _run_local(spec: Any, p: Any, o: RunOptions) -> None:
    """Run the study with local workers; print its summary, exit with its code."""
    from mpbench.study.runner import log_folder, run_study

    console.print(
        f"study {spec.name}: {p.workers} worker(s), storage {mask_url(p.storage)}",
        highlight=False,
        soft_wrap=True,
    )
    result = run_study(spec, p, retry_failed=o.retry_failed, check=False)
    if result.outage is not None:
        _end_after_outage(result, rerun=_rerun_command(spec, o.study, o.storage))
    if not result.exit_codes:
        console.print(nothing_to_do(result.summary), highlight=False)
    print_summary(result.summary, retry=_retry_command(spec, o.study, o.storage))
    ui = ui_command(o.study, storage=o.storage, run_folder=o.run_folder, experiment=o.experiment)
    console.print(
        "browse its runs and trials: " + ui, highlight=False, markup=False, soft_wrap=True
    )
    if not result.interrupted and any(c != 0 for c in result.exit_codes):
        logs = log_folder(spec, p)
        err_console.print(
            f"worker exit codes: {result.exit_codes} (logs: {logs}/worker-N.log)", highlight=False
        )
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _check_launcher(spec: Any, p: Any, launcher: str) -> None:
    """The launcher's own rules, before the pre-flight: a known name, submitit installed, and
    for Slurm the run folder and a journal on a shared filesystem."""
    from mpbench.study.launch import LAUNCHERS, check_cluster_paths, require_submitit

    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    require_submitit()
    if launcher == "slurm":
        check_cluster_paths(spec, p)


def _launch(
    spec: Any,
    p: Any,
    launcher: str,
    *,
    study: Path,
    storage: str | None,
    workers: int | None,
    wait: bool,
    retry_failed: bool,
) -> None:
    """``--launcher``: submit the worker jobs, print their ids; with --wait follow them."""
    from mpbench.study.launch import follow_study, launch_study

    result = launch_study(spec, p, launcher, workers=workers, retry_failed=retry_failed)
    if result.launched is None:
        console.print(nothing_to_do(result.summary), highlight=False)
    else:
        jobs = result.launched
        console.print(
            f"study {spec.name}: submitted {len(jobs.ids)} {launcher} job(s): "
            f"{', '.join(jobs.ids)} (logs: {jobs.folder}/<job id>/); storage "
            f"{mask_url(p.storage)}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            "browse its runs and trials: "
            + ui_command(study, storage=storage, experiment=_unless_default(p.experiment, spec)),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        if not wait:
            console.print(f"follow it with: mpbench status {study}", highlight=False)
            return
        result = follow_study(spec, p, result)
        f = result.followed
        if f is not None and f.replaced:
            err_console.print(f"jobs replaced after they were lost: {', '.join(f.replaced)}")
        if f is not None and f.interrupted:
            err_console.print(f"stopped following; the jobs run on: mpbench status {study}")
    if result.summary is not None:
        print_summary(result.summary, retry=_retry_command(spec, study, storage))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def nothing_to_do(summary: Any) -> str:
    """The line of a run that found no cell to run."""
    n = len(summary.failed)
    if n:
        return f"nothing to do: every cell has ended; {n} failed — rerun with --retry-failed"
    return "nothing to do: every cell has finished"


def _rerun_command(spec: Any, study: Path, storage: str | None) -> str:
    """The command line that runs the study again (its unfinished cells)."""
    extra = f" --storage {mask_url(storage)}" if storage else ""
    return f"mpbench {spec.kind} {study}{extra}"


def _retry_command(spec: Any, study: Path, storage: str | None) -> str:
    """The command line that reruns the study's failed cells."""
    return _rerun_command(spec, study, storage) + " --retry-failed"


def _end_after_outage(result: Any, *, rerun: str) -> None:
    """End like the workers after an outage: one line naming it and its timeout, the last
    summary read, the rerun command; exit 1 (the cells that were running are retried then)."""
    err_console.print(
        f"study stopped by an outage: {result.outage}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if result.summary is not None:
        console.print("as last read from the storage:", highlight=False)
        print_summary(result.summary, retry=rerun + " --retry-failed")
    console.print(
        f"rerun it when the storage is back: {rerun}", highlight=False, markup=False, soft_wrap=True
    )
    raise typer.Exit(result.exit_code)


def ui_command(
    study: Path | str,
    *,
    storage: str | None = None,
    run_folder: str | None = None,
    experiment: str | None = None,
) -> str:
    """The ``mpbench ui`` command line that serves the study (a storage password masked)."""
    options = {"--storage": storage, "--run-folder": run_folder, "--experiment": experiment}
    extra = "".join(f" {k} {mask_url(v)}" for k, v in options.items() if v)
    return f"mpbench ui {study}{extra}"


def _load(study: Path, set_: list[str] | None) -> Any:
    from mpbench.study.spec import parse_overrides, read_study

    return read_study(study, overrides=parse_overrides(set_ or []))


def _study_name(study: str) -> tuple[str, Path]:
    """The study name and project folder of a file argument, or the argument itself and the
    current folder."""
    if study.endswith(".toml") or Path(study).is_file():
        spec = _load(Path(study), None)
        return spec.name, spec.folder
    return study, Path.cwd()


def _gpus(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise ValueError(f"--gpus takes comma-separated GPU ids like 0,1; got {text!r}") from None


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def print_summary(s: Any, *, retry: str = "--retry-failed") -> None:
    """Print a StudySummary: cells by state, the failed cells (a table), best, time."""
    from rich.table import Table

    from mpbench.study.status import format_seconds

    done = (
        f"{s.finished}/{s.total} ended, {len(s.failed)} failed"
        if s.failed
        else (f"{s.finished}/{s.total} finished")
    )
    console.print(f"{s.kind} study {s.name}: {done}", highlight=False)
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
    if s.comparisons:
        print_comparisons(s.comparisons, max_seeds=s.max_seeds, design=s.design)
    if s.failed:
        print_failed(s.failed, retry=retry)


def print_comparisons(states: list[Any], *, max_seeds: int, design: str = "") -> None:
    """A sequential grid's comparisons: verdict, seeds run, alpha spent, seeds left at most."""
    head = ["comparison", "verdict", "seeds run", "alpha spent", "seeds still to run at most"]
    rows = []
    for st in states:
        spent = f"{st.look.alpha_spent:.4g}" if st.look is not None else "0"
        left = max_seeds - st.pairs if st.verdict == "continue" else 0
        rows.append([st.name, st.verdict, str(st.pairs), spent, str(left)])
    title = f"comparisons: {len(states)}" + (f" ({design})" if design else "")
    text = "\n".join([title, *markdown_table(head, rows)])
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def print_failed(failed: list[Any], *, retry: str) -> None:
    """The failed cells as a Markdown table (one line each, never wrapped) and the rerun hint."""
    head = ["cell", "trial", "status", "config (vs base)", "error (last line)", "log"]
    rows = [[f.cell, str(f.trial), f.status, f.config, f.error, f.log] for f in failed]
    lines = markdown_table(head, rows)
    text = "\n".join([f"failed cells: {len(failed)} (rerun them with: {retry})", *lines])
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def print_dry_run(spec: Any, url: str, *, workers: int, probe_steps: int) -> None:
    """Print the expanded trials and the compute estimate."""
    import json

    from rich.table import Table

    from mpbench.study.dryrun import dry_run, shared_settings
    from mpbench.study.status import format_seconds

    d = dry_run(spec, url, probe=probe_steps > 0, probe_steps=max(1, probe_steps))
    console.print(f"{spec.kind} study {spec.name}: {len(d.rows)} trial configs", highlight=False)
    shared = shared_settings(spec)
    if shared:
        console.print("every trial (fields not at their defaults):", highlight=False)
        for key, value in shared.items():
            console.print(f"  {key} = {json.dumps(value)}", highlight=False, soft_wrap=True)
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
    if d.looks is not None:
        from mpbench.report.planner import expected_cells

        expected = expected_cells(spec)
        for line in look_range_lines(d.looks, spec.schedule.looks, expected=expected):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    for note in d.notes:
        console.print(f"note: {note}")


def look_range_lines(
    r: Any, looks: tuple[int, ...], *, expected: tuple[float | None, str]
) -> list[str]:
    """A sequential grid's cost in the dry run: its first look, at most, and ``expected`` (the
    planner's expected cells, or None, and its note)."""

    def cost(cells: float, seconds: float | None, *, digits: str = "d") -> str:
        hours = "trial-hours unknown" if seconds is None else f"{seconds / 3600:.3g} trial-hours"
        return f"{cells:{digits}} cells, {hours}"

    head = f"sequential design, looks after {', '.join(map(str, looks))} seeds:"
    cells, note = expected
    mean = note if cells is None else f"{cost(cells, r.seconds_of(cells), digits='.1f')} ({note})"
    return [
        head,
        f"  first look ({looks[0]} seeds): {cost(r.first_cells, r.first_seconds)}",
        f"  at most ({looks[-1]} seeds): {cost(r.max_cells, r.max_seconds)}",
        f"  expected: {mean}",
    ]


def _unless_default(experiment: str | None, spec: Any) -> str | None:
    """The experiment for a printed command line: None when it is the study file's own."""
    return None if experiment == spec.execution.experiment else experiment
