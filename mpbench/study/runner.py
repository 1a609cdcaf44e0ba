"""Running a study on this machine: prepare the storage, start local workers, show progress.

``run_study`` runs the pre-flight (:mod:`mpbench.study.preflight`), creates or loads the Optuna
study, enqueues the grid cells that have no trial yet, creates the MLflow experiment once, and
starts ``workers`` worker processes (``mpbench worker``, :func:`worker_command`), one per GPU with
``gpus``. A study with nothing left to do starts no worker. Ctrl-C interrupts the workers' current
trials, which give their cells back to the queue; no process is left behind.

Paths: relative paths of a study file (``data_root``, ``weights``, ``[execution] run_folder`` and
a journal ``storage``) are relative to its project folder (:func:`mpbench.study.spec.
project_folder`), and the workers run in that folder; paths given on the command line are
relative to the current folder. The plan holds absolute paths, so the study's state is found from
its file whatever the current folder. The MLflow store is the current folder's (MLflow's rule:
``MLFLOW_TRACKING_URI``, else ``./mlflow.db``); workers get its absolute URI.

Exit codes of ``mpbench grid``, ``search`` and ``worker`` (:func:`exit_code`): :data:`EXIT_OK`
every cell finished, :data:`EXIT_FAILED` some cells failed (or a worker crashed),
:data:`EXIT_USAGE` bad input (study file, options, pre-flight; nothing was started),
:data:`EXIT_INTERRUPTED` interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpbench import tracking as tk
from mpbench._secrets import has_password
from mpbench.study import storage as S
from mpbench.study.plan import RunPlan, worker_options
from mpbench.study.preflight import PreflightResult
from mpbench.study.sequential import needed_cells
from mpbench.study.spec import StudySpec
from mpbench.study.status import StudySummary

if TYPE_CHECKING:
    from mpbench.study.worker import WorkerOptions

log = logging.getLogger("mpbench.study")

EXIT_OK = 0  # every cell ended well (finished; pruned in a search)
EXIT_FAILED = 1  # some cells failed or diverged, or a worker process crashed
EXIT_USAGE = 2  # bad input: study file, options or pre-flight; nothing was enqueued or started
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: running cells were given back to the queue


@dataclass
class StudyRun:
    """What ``run_study`` did: trials enqueued, worker exit codes, the final cell summary."""

    enqueued: int
    exit_codes: list[int]
    summary: StudySummary | None  # None only after an outage before the first poll
    interrupted: bool = False
    preflight: PreflightResult | None = None  # when it ran
    restarts: list[str] = field(default_factory=list)  # workers that died and were restarted
    outage: str | None = None  # the storage stayed away: summary is the last one read

    @property
    def exit_code(self) -> int:
        """The command's exit code (:func:`exit_code`); an outage is a failure (1)."""
        if self.outage is not None and not self.interrupted:
            return EXIT_FAILED
        return exit_code(self.summary, self.exit_codes, interrupted=self.interrupted)


def exit_code(
    summary: StudySummary, worker_codes: list[int] = (), *, interrupted: bool = False
) -> int:
    """130 when interrupted, 1 when a cell failed for good or a worker crashed, else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    if summary.failed or any(c != 0 for c in worker_codes):
        return EXIT_FAILED
    return EXIT_OK


def prepare(spec: StudySpec, p: RunPlan, *, retry_failed: bool = False) -> tuple[Any, Any, int]:
    """Create/load the study and enqueue missing grid cells: (study, storage, enqueued)."""
    storage = S.open_storage(p.storage)
    study = S.create_or_load(spec, storage)
    if spec.grid is not None:
        cells = needed_cells(spec, study.get_trials(deepcopy=False))
        added = S.enqueue_grid(study, cells, retry_failed=retry_failed)
    else:
        added = S.retry_failed_search(study) if retry_failed else 0
    return study, storage, added


def run_study(
    spec: StudySpec,
    p: RunPlan,
    *,
    retry_failed: bool = False,
    progress: bool = True,
    check: bool = True,
) -> StudyRun:
    """Check the study (the pre-flight, unless ``check`` is False), prepare it, run local
    workers until it is done, and summarise it. A failed pre-flight raises PreflightError
    before anything is enqueued or started."""
    from mpbench.outage import scoped_timeout

    with scoped_timeout(spec.execution.outage_timeout):  # the workers inherit it
        return _run_study(spec, p, retry_failed=retry_failed, progress=progress, check=check)


def _run_study(
    spec: StudySpec, p: RunPlan, *, retry_failed: bool, progress: bool, check: bool
) -> StudyRun:
    """The body of :func:`run_study`."""
    from mpbench.study.preflight import preflight
    from mpbench.study.status import summarize_study

    checked = preflight(spec, p, retry_failed=retry_failed) if check else None
    study, storage, added = prepare(spec, p, retry_failed=retry_failed)
    S.reap_stale(study, storage, grace_period=p.grace_period, retries=p.retries)
    if not has_work(study, spec):
        return StudyRun(added, [], summarize_study(study, spec), preflight=checked)
    if p.experiment is not None:
        tk.get_or_create_experiment(p.experiment)  # once, before workers race to create it
    from mpbench.outage import OutageError
    from mpbench.study.worker import interrupt_on_sigterm

    interrupted = False
    # SIGTERM like Ctrl-C, and SIGINT even when a shell started us in the background (where it
    # arrives ignored): the workers give their cells back, nothing is left running
    procs: list[subprocess.Popen[bytes]] = []
    restarts: list[str] = []
    seen: list[StudySummary] = []
    with interrupt_on_sigterm():
        try:
            start_workers(spec, p, procs)
            restarts = watch(
                study,
                spec,
                procs,
                progress=progress,
                logs=log_folder(spec, p),
                restart=lambda i: start_worker(spec, p, i),
                budget=p.retries * p.workers,
                seen=seen,
            )
        except KeyboardInterrupt:
            interrupted = True
            stop_workers(procs)
        except OutageError as exc:  # the storage stayed away as long as the workers wait
            stop_workers(procs)
            return _after_outage(added, procs, exc, seen, preflight=checked)
    codes = [proc.wait() for proc in procs]
    try:
        if interrupted:  # a worker killed because it did not stop in time: its trial is RUNNING
            S.give_back_orphans(study, storage, (proc.pid for proc in procs))
        end_open_runs(study, spec, p.experiment)
        summary = summarize_study(study, spec)
    except OutageError as exc:
        return _after_outage(added, procs, exc, seen, preflight=checked)
    interrupted = interrupted or any(c in (130, -signal.SIGINT) for c in codes)
    return StudyRun(
        added, codes, summary, interrupted=interrupted, preflight=checked, restarts=restarts
    )


def _after_outage(
    added: int,
    procs: list[subprocess.Popen[bytes]],
    exc: Exception,
    seen: list[StudySummary],
    *,
    preflight: PreflightResult | None,
) -> StudyRun:
    """The run that an outage ended: the workers stopped, the last summary that could be read;
    the trials left RUNNING are reaped by the next run (they are retries, not failures)."""
    from mpbench._secrets import mask_url

    codes = [proc.wait() for proc in procs]
    return StudyRun(
        added, codes, seen[-1] if seen else None, preflight=preflight, outage=mask_url(str(exc))
    )


def end_open_runs(study: Any, spec: StudySpec, experiment: str | None) -> list[str]:
    """End the study's MLflow runs left RUNNING by workers that died (no RUNNING trial of their
    cell any more): no run stays RUNNING after its trial ended. The run ids ended."""
    if experiment is None:
        return []
    states = S.cells(study.get_trials(deepcopy=False))
    keep = {k for k, c in states.items() if c.state == "running"}
    failed = {k for k, c in states.items() if c.state == "fail"}
    ended = tk.close_orphan_runs(experiment, spec.name, keep_cells=keep, failed_cells=failed)
    if ended:
        log.warning("ended %d MLflow run(s) left RUNNING by workers that died", len(ended))
    return ended


def log_folder(spec: StudySpec, p: RunPlan) -> Path:
    """Where local workers write their logs: ``<run folder>/<study>/logs``."""
    return spec.run_folder(p.run_folder) / "logs"


def has_work(study: Any, spec: StudySpec) -> bool:
    """Whether a worker would find anything to claim or wait for."""
    from mpbench.study.worker import Action, next_action

    return next_action(study, spec) is not Action.DONE


def worker_command(spec: StudySpec, p: RunPlan, *, index: int) -> list[str]:
    """The command line of local worker ``index``: ``mpbench worker``, the one worker command
    line (the same as on a hand-started machine, with the local options filled in). A storage
    URL with a password is left out: the worker reads it from ``MPBENCH_STORAGE``
    (:func:`worker_env`), so that ``ps`` never shows it."""
    log = str(log_folder(spec, p) / f"worker-{index}.log")
    opts = worker_options(spec, p, index=index, parent_pid=os.getpid(), log=log)
    return [sys.executable, "-m", "mpbench", "worker", spec.name, *worker_args(opts)]


def worker_args(opts: WorkerOptions) -> list[str]:
    """The ``mpbench worker`` options that give a worker ``opts`` (storage with a password and
    options at their defaults left out)."""
    args = [] if has_password(opts.storage) else ["--storage", opts.storage]
    args += ["--run-folder", opts.run_folder, "--retries", str(opts.retries)]
    args += ["--heartbeat-interval", str(opts.heartbeat_interval)]
    args += ["--grace-period", str(opts.grace_period)]
    for flag, value in (("--index", opts.index), ("--parent-pid", opts.parent_pid),
                        ("--max-trials", opts.max_trials), ("--log", opts.log)):  # fmt: skip
        if value is not None:
            args += [flag, str(value)]
    if opts.experiment is None:
        return [*args, "--no-mlflow"]
    return [*args, "--experiment", opts.experiment]


@dataclass
class Joined:
    """What :func:`work_on_study` did: the worker's trials by outcome, and the study's summary
    (None for a worker of a local parent, which summarises the study itself)."""

    outcomes: dict[str, list[int]]
    summary: StudySummary | None


def work_on_study(spec: StudySpec, opts: WorkerOptions, *, folder: str | Path) -> Joined:
    """Run a worker of ``spec`` until it finds nothing more to do, in ``folder`` (its project
    folder) with a local MLflow store's path made absolute; the working folder and the
    environment are restored afterwards. A hand-started worker also ends the MLflow runs left
    open and summarises the study."""
    import contextlib

    from mpbench._env import scoped_env
    from mpbench.study.status import summarize_study
    from mpbench.study.worker import interrupt_on_sigterm, run_worker

    with contextlib.ExitStack() as scope:
        if opts.experiment is not None:  # before leaving this folder
            uri = worker_tracking_uri()
            scope.enter_context(scoped_env("MLFLOW_TRACKING_URI", uri, override=True))
        scope.enter_context(contextlib.chdir(folder))
        with interrupt_on_sigterm():
            done = run_worker(opts)
        if opts.parent_pid is not None:
            return Joined(done.outcomes, None)
        found = S.open_study(spec.name, S.open_storage(opts.storage), spec=spec)
        end_open_runs(found, spec, opts.experiment)
        return Joined(done.outcomes, summarize_study(found, spec))


def worker_env(p: RunPlan) -> dict[str, str]:
    """The environment of a local worker: this process's, with a storage URL that carries a
    password in ``MPBENCH_STORAGE`` (never on the command line). The MLflow tracking URI goes
    through ``MLFLOW_TRACKING_URI`` (:func:`start_workers`)."""
    env = dict(os.environ)
    if has_password(p.storage):
        env[S.STORAGE_ENV] = p.storage
    return env


def start_workers(
    spec: StudySpec, p: RunPlan, procs: list[subprocess.Popen[bytes]] | None = None
) -> list[subprocess.Popen[bytes]]:
    """Start the local worker processes, appending each to ``procs`` as it starts (an
    interrupt halfway leaves the caller the ones to stop)."""
    procs = [] if procs is None else procs
    for i in range(p.workers):
        procs.append(start_worker(spec, p, i))
    return procs


def start_worker(spec: StudySpec, p: RunPlan, index: int) -> subprocess.Popen[bytes]:
    """Start local worker ``index`` in the project folder; its output is appended to
    ``<study folder>/logs/worker-<index>.log``."""
    logs = log_folder(spec, p)
    logs.mkdir(parents=True, exist_ok=True)
    threads = str(max(1, (os.cpu_count() or 1) // p.workers))
    env = worker_env(p)
    if p.experiment is not None:  # the current folder's store, not the project's
        env["MLFLOW_TRACKING_URI"] = worker_tracking_uri()
    # torch's default (all cores per process) oversubscribes the CPU many times over
    # with several workers: measured 5x slower trials on 2 cores with 2 workers
    env.setdefault("OMP_NUM_THREADS", threads)
    env.setdefault("MKL_NUM_THREADS", threads)
    if p.gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(p.gpus[index % len(p.gpus)])
    with open(logs / f"worker-{index}.log", "ab") as out:
        return subprocess.Popen(
            worker_command(spec, p, index=index),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=p.project_folder,
        )


def worker_tracking_uri() -> str:
    """This process's MLflow tracking URI with a local store's path made absolute, so that
    workers running in another folder write to the same store."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + os.path.abspath(uri.removeprefix("sqlite:///"))
    if ":" not in uri:  # a plain folder of a file store
        return os.path.abspath(uri)
    return uri


def stop_workers(procs: list[subprocess.Popen[bytes]], *, timeout: float = 60.0) -> None:
    """SIGTERM the workers (they give back their trials), then SIGKILL whatever is left."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def watch(
    study: Any,
    spec: StudySpec,
    procs: list[subprocess.Popen[bytes]],
    *,
    progress: bool,
    logs: Path,
    poll: float = 1.0,
    restart: Any = None,
    budget: int = 0,
    seen: list[StudySummary] | None = None,
) -> list[str]:
    """Poll the storage and show cells done / total until every worker has exited. A worker
    that died (killed by a signal, crashed) while cells remain is started again by
    ``restart(index)``, at most ``budget`` times; what was restarted, as lines. ``seen`` gets
    each summary read (the last one is what is known when the storage goes away)."""
    from mpbench.study.status import summarize_study

    restarts: list[str] = []
    with study_progress(disable=not progress) as bar:
        task = bar.add_task(spec.name, total=None, detail="")
        while True:
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code in (None, 0, 130, -signal.SIGINT) or restart is None or budget < 1:
                    continue
                if not has_work(study, spec):
                    continue
                budget -= 1
                why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
                restarts.append(f"worker {i} {why} (log: {logs / f'worker-{i}.log'}): restarted")
                log.warning("%s while cells remain", restarts[-1])
                procs[i] = restart(i)
            alive = sum(proc.poll() is None for proc in procs)
            summary = summarize_study(study, spec)
            if seen is not None:
                seen[:] = [summary]
            show_cells(bar, task, summary, f"{alive} worker(s)")
            if not alive:
                break
            time.sleep(poll)
    for i, proc in enumerate(procs):
        if proc.returncode not in (0, None):
            log.warning(
                "worker %d exited with code %s (log: %s)",
                i,
                proc.returncode,
                logs / f"worker-{i}.log",
            )
    return restarts


def study_progress(*, disable: bool) -> Any:
    """The progress bar of a running study: cells done / total, a detail field, time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        disable=disable,
        transient=False,
    )


def show_cells(bar: Any, task: Any, summary: Any, processes: str) -> None:
    """Cells finished of the total on the study's progress bar, with what runs them."""
    bar.update(
        task,
        total=summary.total,
        completed=summary.finished,
        detail=f"{summary.running} running, {processes}",
    )
