"""Running a study on this machine: prepare the storage, start local workers, show progress.

``run_study`` creates or loads the Optuna study, enqueues the grid cells that have no trial yet,
creates the MLflow experiment once, and starts ``workers`` worker processes
(``python -m mpbench.study.worker``), one per GPU with ``gpus``. A study with nothing left to do
starts no worker. Ctrl-C interrupts the workers' current trials, which give their cells back to
the queue; no process is left behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpbench import tracking as T
from mpbench.study import storage as S
from mpbench.study.spec import StudySpec, expand_grid

log = logging.getLogger("mpbench.study")


@dataclass(frozen=True)
class RunPlan:
    """Resolved execution settings of one ``mpbench grid/search`` call."""

    storage: str
    workers: int
    gpus: tuple[int, ...]
    run_folder: str
    experiment: str | None
    retries: int
    heartbeat_interval: float
    grace_period: float


def plan(
    spec: StudySpec,
    *,
    storage: str | None = None,
    workers: int | None = None,
    gpus: list[int] | None = None,
    run_folder: str | None = None,
    experiment: str | None = "",
    retries: int | None = None,
) -> RunPlan:
    """Command-line values over the study file's [execution] over the defaults."""
    ex = spec.execution
    folder = run_folder or ex.run_folder
    gpus = list(gpus if gpus is not None else ex.gpus)
    n = workers or (len(gpus) if gpus else ex.workers)
    if n < 1:
        raise ValueError(f"--workers must be >= 1, got {n}")
    url = storage or ex.storage or S.default_storage(spec, run_folder=folder)
    S.check_workers(url, n)
    return RunPlan(
        storage=url,
        workers=n,
        gpus=tuple(gpus),
        run_folder=folder,
        experiment=ex.experiment if experiment == "" else experiment,
        retries=ex.retries if retries is None else retries,
        heartbeat_interval=ex.heartbeat_interval,
        grace_period=ex.grace_period,
    )


@dataclass
class StudyRun:
    """What ``run_study`` did: trials enqueued, worker exit codes, the final cell summary."""

    enqueued: int
    exit_codes: list[int]
    summary: Any  # mpbench.study.status.StudySummary
    interrupted: bool = False


def prepare(spec: StudySpec, p: RunPlan, *, retry_failed: bool = False) -> tuple[Any, Any, int]:
    """Create/load the study and enqueue missing grid cells: (study, storage, enqueued)."""
    storage = S.open_storage(p.storage)
    study = S.create_or_load(spec, storage)
    if spec.grid is not None:
        added = S.enqueue_grid(study, expand_grid(spec), retry_failed=retry_failed)
    else:
        added = S.retry_failed_search(study) if retry_failed else 0
    return study, storage, added


def run_study(
    spec: StudySpec, p: RunPlan, *, retry_failed: bool = False, progress: bool = True
) -> StudyRun:
    """Prepare the study, run local workers until it is done, and summarise it."""
    from mpbench.study.status import summarize

    study, storage, added = prepare(spec, p, retry_failed=retry_failed)
    S.reap_stale(study, storage, grace_period=p.grace_period, retries=p.retries)
    if not has_work(study, spec):
        return StudyRun(enqueued=added, exit_codes=[], summary=summarize(study, spec))
    if p.experiment is not None:
        T.get_or_create_experiment(p.experiment)  # once, before workers race to create it
    procs = start_workers(spec, p)
    interrupted = False
    try:
        watch(study, spec, procs, progress=progress, logs=spec.run_folder(p.run_folder) / "logs")
    except KeyboardInterrupt:
        interrupted = True
        stop_workers(procs)
    codes = [proc.wait() for proc in procs]
    interrupted = interrupted or any(c in (130, -signal.SIGINT) for c in codes)
    return StudyRun(
        enqueued=added, exit_codes=codes, summary=summarize(study, spec), interrupted=interrupted
    )


def has_work(study: Any, spec: StudySpec) -> bool:
    """Whether a worker would find anything to claim or wait for."""
    from mpbench.study.worker import next_action

    return next_action(study, spec) != "done"


def worker_command(spec: StudySpec, p: RunPlan, *, index: int) -> list[str]:
    """The command line of local worker ``index``."""
    cmd = [
        sys.executable,
        "-m",
        "mpbench.study.worker",
        "--storage",
        p.storage,
        "--study",
        spec.name,
        "--run-folder",
        p.run_folder,
        "--retries",
        str(p.retries),
        "--heartbeat-interval",
        str(p.heartbeat_interval),
        "--grace-period",
        str(p.grace_period),
        "--index",
        str(index),
        "--parent-pid",
        str(os.getpid()),
    ]
    if p.experiment is None:
        return [*cmd, "--no-mlflow"]
    return [*cmd, "--experiment", p.experiment]


def start_workers(spec: StudySpec, p: RunPlan) -> list[subprocess.Popen[bytes]]:
    """Start the local worker processes; their output goes to ``<study folder>/logs``."""
    logs = spec.run_folder(p.run_folder) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    threads = str(max(1, (os.cpu_count() or 1) // p.workers))
    for i in range(p.workers):
        env = dict(os.environ)
        # torch's default (all cores per process) oversubscribes the CPU many times over
        # with several workers: measured 5x slower trials on 2 cores with 2 workers
        env.setdefault("OMP_NUM_THREADS", threads)
        env.setdefault("MKL_NUM_THREADS", threads)
        if p.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(p.gpus[i % len(p.gpus)])
        with open(logs / f"worker-{i}.log", "ab") as out:
            procs.append(
                subprocess.Popen(
                    worker_command(spec, p, index=i), env=env, stdout=out, stderr=subprocess.STDOUT
                )
            )
    return procs


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
) -> None:
    """Poll the storage and show cells done / total until every worker has exited."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mpbench.study.status import summarize

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(spec.name, total=None, detail="")
        while True:
            alive = sum(proc.poll() is None for proc in procs)
            s = summarize(study, spec)
            bar.update(
                task,
                total=s.total,
                completed=s.finished,
                detail=f"{s.running} running, {alive} worker(s)",
            )
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
