"""The run plan of one ``mpbench grid/search`` call: the study file's [execution] settings with
the command line's over them, resolved to absolute paths (:func:`plan` -> :class:`RunPlan`).

The pre-flight, the local runner, the Slurm launcher and ``mpbench ui`` read the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mpbench._fields import same_named
from mpbench.study import storage as S
from mpbench.study.spec import StudySpec

if TYPE_CHECKING:
    from mpbench.study.worker import WorkerOptions


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
    project_folder: str = "."  # where the workers run (relative paths of the study file)
    gpus_key: str = "execution -> gpus"  # where each setting came from, for messages
    run_folder_key: str = "execution -> run_folder"
    storage_key: str = "execution -> storage"


def plan(
    spec: StudySpec,
    *,
    storage: str | None = None,
    workers: int | None = None,
    gpus: list[int] | None = None,
    run_folder: str | None = None,
    experiment: str | None = "",
    retries: int | None = None,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
) -> RunPlan:
    """Command-line values over the study file's [execution] over the defaults; paths given
    here are relative to the current folder, the study file's to its project folder."""
    ex = spec.execution
    folder = spec.run_folder(run_folder).parent
    gpus_key = "--gpus" if gpus is not None else "execution -> gpus"
    gpus = list(gpus if gpus is not None else ex.gpus)
    n = workers or (len(gpus) if gpus else ex.workers)
    if n < 1:
        raise ValueError(f"--workers must be >= 1, got {n}")
    if storage:
        url = S.resolve_storage(storage, Path.cwd())
    elif ex.storage:
        url = S.resolve_storage(ex.storage, spec.folder)
    else:
        url = S.default_storage(spec, run_folder=folder)
    S.check_workers(url, n)
    return RunPlan(
        storage=url,
        workers=n,
        gpus=tuple(gpus),
        run_folder=str(folder),
        experiment=ex.experiment if experiment == "" else experiment,
        retries=ex.retries if retries is None else retries,
        heartbeat_interval=ex.heartbeat_interval
        if heartbeat_interval is None
        else heartbeat_interval,
        grace_period=ex.grace_period if grace_period is None else grace_period,
        project_folder=str(spec.folder),
        gpus_key=gpus_key,
        run_folder_key="--run-folder" if run_folder else "execution -> run_folder",
        storage_key="--storage" if storage else "execution -> storage",
    )


# the RunPlan fields a worker takes as its options of the same names
_FROM_PLAN = (
    "storage",
    "run_folder",
    "experiment",
    "retries",
    "heartbeat_interval",
    "grace_period",
)


def worker_options(
    spec: StudySpec,
    p: RunPlan,
    *,
    index: int | None = None,
    parent_pid: int | None = None,
    max_trials: int | None = None,
    log: str | None = None,
) -> WorkerOptions:
    """The options of a worker of ``spec`` under plan ``p``: the one place they are built, for
    ``mpbench worker``, the local runner's worker command lines and the launcher's jobs."""
    from mpbench.study.worker import WorkerOptions

    return WorkerOptions(
        study=spec.name,
        **same_named(p, *_FROM_PLAN),
        index=index,
        parent_pid=parent_pid,
        max_trials=max_trials,
        log=log,
    )


__all__ = ["RunPlan", "plan", "worker_options"]
