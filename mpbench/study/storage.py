"""Optuna storages for studies: opening them, heartbeats, stale-trial retry and cell bookkeeping.

Optuna 5.0's JournalStorage has no heartbeat and its RDB heartbeat thread runs only inside
``study.optimize``; our workers use ask/tell, so mpbench keeps one storage-agnostic heartbeat:
a worker writes the time into a system attribute of its RUNNING trial every
``heartbeat_interval`` seconds; a trial whose last beat is older than ``grace_period`` (or whose
worker process is gone, on the same host) is failed by whichever worker notices first (the
storage makes that transition atomic) and re-enqueued with the same cell until ``retries``.

Trial bookkeeping lives in user attributes (``ATTR_*``); a cell's state is the state of its
latest trial (retries and re-runs append trials, they never edit old ones).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mpbench import tracking as tk
from mpbench._process import pid_alive
from mpbench._secrets import mask_url

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from mpbench.study.spec import StudySpec

log = logging.getLogger(__name__)

# Names a trial attribute shares with an MLflow tag are defined once, in mpbench.tracking.
ATTR_CELL: Final = tk.TAG_CELL  # TrialConfig.key() (seed 0 config for a k-seed search)
ATTR_CONFIG: Final = "mpbench.config"  # JSON of the grid cell's TrialConfig
ATTR_KIND: Final = tk.TAG_KIND  # "grid" or "search": set on every trial mpbench owns
ATTR_VERSION: Final = tk.TAG_VERSION  # code version that enqueued / ran the trial
ATTR_ATTEMPT: Final = "mpbench.attempt"  # 0 for the first run of a cell, +1 per automatic retry
ATTR_RETRY_OF: Final = "mpbench.retry_of"  # number of the trial this one repeats
ATTR_STATUS: Final = tk.TAG_STATUS  # finished/failed/diverged/pruned/spurious/duplicate
ATTR_ERROR: Final = tk.TAG_ERROR
ATTR_RUNS: Final = "mpbench.mlflow_runs"  # {cell key of each seed config: MLflow run id}
ATTR_SEED_VALUES: Final = "mpbench.seed_values"  # {cell key: objective value} of finished seeds
ATTR_RESOLVE: Final = "mpbench.resolve_values"  # {metric: value} a sequential grid decides on
ATTR_LOG: Final = "mpbench.log"  # log of the worker that ran the trial (or where it went)
SYS_HEARTBEAT: Final = "mpbench.heartbeat"  # unix time of the last beat
SYS_HOST: Final = "mpbench.host"
SYS_PID: Final = "mpbench.pid"
STUDY_SPEC: Final = "mpbench.spec"  # study attribute: the StudySpec the study was created from
# Attributes a retry inherits from the trial it repeats.
INHERITED = (ATTR_CELL, ATTR_CONFIG, ATTR_KIND, ATTR_VERSION, ATTR_RUNS, ATTR_SEED_VALUES)
SPURIOUS: Final = tk.TrialStatus.SPURIOUS
DUPLICATE: Final = tk.TrialStatus.DUPLICATE
OUTAGE: Final = tk.TrialStatus.OUTAGE
ERROR_ATTR_CHARS: Final = 2000  # a failed trial's error text (ATTR_ERROR), cut to this
# a storage URL that carries a password goes to workers, jobs and the dashboard by this
# variable, never on a command line
STORAGE_ENV: Final = "MPBENCH_STORAGE"


def code_version() -> str:
    """``<package version>+<git short hash>`` when the source is a git checkout."""
    from mpbench import __version__
    from mpbench._git import git_commit

    rev = git_commit(short=True)
    return f"{__version__}+{rev}" if rev else __version__


# --- storage URLs ------------------------------------------------------------------------------


def default_storage(spec: StudySpec, *, run_folder: str | Path | None = None) -> str:
    """The journal file under the study's run folder (an absolute path)."""
    return str(spec.run_folder(run_folder) / "optuna.journal")


def resolve_storage(url: str, folder: str | Path) -> str:
    """A journal file path made absolute from ``folder``; an RDB URL as it is."""
    return os.path.abspath(Path(folder) / url) if is_journal(url) else url


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` to psycopg2 when psycopg 3 is missing (SQLAlchemy 2.1 wants v3)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def is_journal(url: str) -> bool:
    """A journal file path (anything that is not a SQLAlchemy URL)."""
    return "://" not in url


def check_workers(url: str, workers: int) -> None:
    """Refuse SQLite for more than one worker: concurrent workers double-claim enqueued trials."""
    if url.startswith("sqlite") and workers > 1:
        raise ValueError(
            f"SQLite storage {url!r} cannot serve {workers} workers: concurrent workers "
            "double-claim enqueued trials. Use the default journal file (omit --storage), a "
            "journal path (e.g. runs/study/optuna.journal) or PostgreSQL "
            "(postgresql+psycopg2://user:pw@host/db)."
        )


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """A journal storage for a file path, else an RDB storage for the URL."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from mpbench.study.retrying import RetryingStorage

    if is_journal(url):
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        check_journal_lock(url)
        return RetryingStorage(JournalStorage(JournalFileBackend(url)))
    url = normalise_url(url)
    check_driver(url)
    return RetryingStorage(optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}))


def check_journal_lock(url: str) -> None:
    """Refuse a journal whose lock (Optuna's ``<journal>.lock`` symlink) points at a file that
    does not exist: the journal was deleted while locked, and Optuna would wait for the lock
    forever (its stale-lock check reads the missing target)."""
    lock = Path(url + ".lock")
    if lock.is_symlink() and not lock.exists():
        raise ValueError(
            f"the journal lock {lock} points at {os.readlink(lock)}, which does not exist "
            "(the journal was deleted while locked); Optuna would wait for it forever. If no "
            f"mpbench process uses this study any more, remove the lock: rm {lock}"
        )


POSTGRES_EXTRA = "pip install 'mpbench[postgres]'"


def check_driver(url: str) -> None:
    """A clear error (ValueError) when a PostgreSQL URL's driver is not installed, instead of
    SQLAlchemy's traceback."""
    scheme = url.split("://", 1)[0]
    if not scheme.startswith("postgres"):
        return
    module = "psycopg" if scheme.endswith("+psycopg") else "psycopg2"
    try:
        __import__(module)
    except ImportError:
        raise ValueError(
            f"PostgreSQL storage {mask_url(url)} needs the {module} driver, which is not "
            f"installed: {POSTGRES_EXTRA}"
        ) from None


# --- studies -----------------------------------------------------------------------------------


WORKERS_SUFFIX = ":workers"  # the side study numbering a study's workers (':' is in no study name)


def register_worker(storage: Any, study: str, *, log: str) -> int:
    """A worker number no other worker of ``study`` has had, on any machine: the number of a new
    trial of the side study ``<study>:workers``, which records the worker's host, pid and log.

    Optuna numbers the trials of a study atomically in every storage (journal appends under its
    lock; RDB locks the study row); study user attributes are not atomic, so they cannot be used.
    """
    import optuna
    from optuna.trial import TrialState, create_trial

    name = study + WORKERS_SUFFIX
    try:
        sid = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
    except optuna.exceptions.DuplicatedStudyError:  # another worker created it first
        sid = storage.get_study_id_from_name(name)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "log": log, "time": time.time()}
    tid = storage.create_new_trial(
        sid, template_trial=create_trial(state=TrialState.COMPLETE, value=0.0, user_attrs=me)
    )
    return storage.get_trial_number_from_id(tid)


def is_seeded(spec: StudySpec) -> bool:
    """Whether the study's sampler is seeded (a search with ``sampler_seed``)."""
    return spec.search is not None and spec.search.sampler_seed is not None


def make_sampler(spec: StudySpec, *, worker: int = 0) -> optuna.samplers.BaseSampler:
    """The search's sampler; worker ``n`` (:func:`register_worker`) seeds it with
    ``sampler_seed + n``, so that no two workers propose the same points."""
    import optuna

    s = spec.search
    name = s.sampler if s is not None else "random"
    seed = None if s is None or s.sampler_seed is None else s.sampler_seed + worker
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The search's pruner; grids never prune."""
    import optuna

    name = spec.search.pruner if spec.search is not None else "none"
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.base.epochs)
    return optuna.pruners.NopPruner()


def create_or_load(spec: StudySpec, storage: Any) -> optuna.Study:
    """Create the Optuna study (or load it) and store the resolved spec in its user attributes."""
    import optuna

    study = optuna.create_study(
        study_name=spec.name,
        storage=storage,
        direction=spec.objective.direction,
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
        load_if_exists=True,
    )
    stored = study.user_attrs.get(STUDY_SPEC)
    if stored is None:
        study.set_user_attr(STUDY_SPEC, spec.model_dump(mode="json"))
        study.set_user_attr(ATTR_VERSION, code_version())
    elif stored != spec.model_dump(mode="json"):
        study.set_user_attr(STUDY_SPEC, spec.model_dump(mode="json"))
        log.warning("study %s: the study file changed since it was created", spec.name)
    if study.metric_names != [spec.objective.metric]:  # names the axis in dashboards and plots
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([spec.objective.metric])
    return study


def load_spec(study: optuna.Study) -> StudySpec:
    """The spec stored with the study (what remote workers run)."""
    from mpbench.study.spec import StudySpec, validate_study

    data = study.user_attrs.get(STUDY_SPEC)
    if data is None:
        raise ValueError(f"Optuna study {study.study_name!r} was not created by mpbench")
    spec = StudySpec.model_validate(data)
    # the rules of today apply to a study stored by an older mpbench (e.g. a search on test_*)
    validate_study(spec, source=f"study {study.study_name!r} in its Optuna storage")
    return spec


def open_study(
    name: str, storage: Any, *, spec: StudySpec | None = None, worker: int = 0
) -> optuna.Study:
    """Load an existing study with the spec's sampler and pruner; a missing study is an error."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise ValueError(
            f"no study {name!r} in this storage; create it first with `mpbench grid` or "
            "`mpbench search` (same --storage)"
        ) from None
    spec = spec or load_spec(study)
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(spec, worker=worker),
        pruner=make_pruner(spec),
    )


def open_existing(spec: StudySpec, url: str) -> optuna.Study | None:
    """The study in ``url`` if it exists (nothing is created for a missing journal file)."""
    import optuna

    if is_journal(url) and not Path(url).exists():
        return None
    try:
        return optuna.load_study(study_name=spec.name, storage=open_storage(url))
    except KeyError:
        return None


# --- cells -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellState:
    """The trials of one cell, oldest first, and the state of the latest."""

    key: str
    trials: tuple[FrozenTrial, ...]

    @property
    def latest(self) -> FrozenTrial:
        """The newest trial of the cell."""
        return self.trials[-1]

    @property
    def state(self) -> str:
        """``complete``, ``pruned``, ``fail``, ``running`` or ``waiting``."""
        return self.latest.state.name.lower()

    @property
    def completed(self) -> int:
        """How many trials of this cell finished COMPLETE (exactly-once means at most 1)."""
        return sum(t.state.name == "COMPLETE" for t in self.trials)


def is_counted(trial: FrozenTrial) -> bool:
    """A trial that belongs to a cell (not a spurious or duplicate one)."""
    return ATTR_CELL in trial.user_attrs and trial.user_attrs.get(ATTR_STATUS) not in (
        SPURIOUS,
        DUPLICATE,
    )


def cells(trials: Iterable[FrozenTrial]) -> dict[str, CellState]:
    """Group counted trials by cell key, in trial-number order."""
    groups: dict[str, list[FrozenTrial]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if is_counted(t):
            groups.setdefault(t.user_attrs[ATTR_CELL], []).append(t)
    return {k: CellState(k, tuple(v)) for k, v in groups.items()}


def enqueue_grid(study: optuna.Study, configs: list[Any], *, retry_failed: bool = False) -> int:
    """Enqueue every cell that has no trial yet (and failed cells with ``retry_failed``)."""
    known = cells(study.get_trials(deepcopy=False))
    version = code_version()
    added = 0
    for cfg in configs:
        state = known.get(cfg.key())
        if state is not None and not (retry_failed and state.state == "fail"):
            continue
        attrs = {
            ATTR_CELL: cfg.key(),
            ATTR_CONFIG: cfg.model_dump_json(),
            ATTR_KIND: "grid",
            ATTR_VERSION: version,
            ATTR_ATTEMPT: 0,
        }
        if state is not None:
            attrs |= {
                k: state.latest.user_attrs[k] for k in INHERITED if k in state.latest.user_attrs
            } | {ATTR_RETRY_OF: state.latest.number}
            attrs[ATTR_VERSION] = version
        study.enqueue_trial(params={}, user_attrs=attrs)
        added += 1
    return added


def retry_failed_search(study: optuna.Study) -> int:
    """Re-enqueue search trials whose latest attempt failed (same params, same cell)."""
    added = 0
    for state in cells(study.get_trials(deepcopy=False)).values():
        if state.state == "fail":
            requeue(study, state.latest, attempt=0)
            added += 1
    return added


def requeue(study: optuna.Study, trial: FrozenTrial, *, attempt: int) -> None:
    """Add a WAITING copy of ``trial`` (same params and cell) that the next worker will claim."""
    import optuna

    attrs = {k: trial.user_attrs[k] for k in INHERITED if k in trial.user_attrs}
    attrs |= {ATTR_ATTEMPT: attempt, ATTR_RETRY_OF: trial.number}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=attrs,
        )
    )


# --- heartbeats --------------------------------------------------------------------------------


def trial_id(study: optuna.Study, storage: Any, number: int) -> int:
    """The storage id of trial ``number`` (public storage API only)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def last_beat(trial: FrozenTrial) -> float:
    """Unix time of the trial's last sign of life (heartbeat or start)."""
    start = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
    return max(float(trial.system_attrs.get(SYS_HEARTBEAT, 0.0)), start)


def is_stale(trial: FrozenTrial, *, grace_period: float, now: float | None = None) -> bool:
    """A RUNNING trial whose worker is gone: dead pid on this host, or no beat for grace_period."""
    host, pid = trial.system_attrs.get(SYS_HOST), trial.system_attrs.get(SYS_PID)
    if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return True
    return (now or time.time()) - last_beat(trial) > grace_period


def reap_stale(
    study: optuna.Study, storage: Any, *, grace_period: float, retries: int
) -> list[int]:
    """Fail stale RUNNING trials and re-enqueue each below the retry limit; their numbers."""
    import optuna

    reaped = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if not is_stale(t, grace_period=grace_period):
            continue
        try:
            if not storage.set_trial_state_values(
                trial_id(study, storage, t.number), state=optuna.trial.TrialState.FAIL
            ):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker failed it first, or it just finished
        reaped.append(t.number)
        attempt = int(t.user_attrs.get(ATTR_ATTEMPT, 0)) + 1
        if is_counted(t) and attempt <= retries:
            requeue(study, t, attempt=attempt)
            log.warning(
                "trial %d (cell %s) is stale: retry %d of %d",
                t.number,
                t.user_attrs.get(ATTR_CELL),
                attempt,
                retries,
            )
        else:
            log.warning("trial %d is stale and has no retries left", t.number)
    return reaped


def give_back_orphans(study: optuna.Study, storage: Any, pids: Iterable[int]) -> list[int]:
    """RUNNING trials of local worker processes ``pids`` that are gone (stopped by the user and
    killed when they did not stop in time): failed as ``interrupted`` and their cells enqueued
    again, not counted as a retry (the study was stopped, the config did not fail). Their
    numbers."""
    import optuna

    host, pids = socket.gethostname(), set(pids)
    given = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.system_attrs.get(SYS_PID)
        if t.system_attrs.get(SYS_HOST) != host or pid not in pids or pid_alive(pid):
            continue
        tid = trial_id(study, storage, t.number)
        try:
            storage.set_trial_user_attr(tid, ATTR_STATUS, tk.STATUS_INTERRUPTED)
            if not storage.set_trial_state_values(tid, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        requeue(study, t, attempt=int(t.user_attrs.get(ATTR_ATTEMPT, 0)))
        given.append(t.number)
        log.warning("trial %d: its worker was stopped; its cell is enqueued again", t.number)
    return given


class Heartbeat:
    """Writes the time into a RUNNING trial every ``interval`` s; ``lost`` is set if it was failed.

    Args:
        storage: the study's storage.
        trial_id: storage id of the trial.
        interval: seconds between beats.

    Example:
        >>> with Heartbeat(storage, trial_id, interval=10.0) as beat:  # doctest: +SKIP
        ...     train(stop_if=beat.lost.is_set)
    """

    def __init__(self, storage: Any, trial_id: int, *, interval: float) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mpbench-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.set_trial_system_attr(self.trial_id, SYS_HOST, socket.gethostname())
        self.storage.set_trial_system_attr(self.trial_id, SYS_PID, os.getpid())
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        """Record one heartbeat; a finished trial (failed as stale by another worker) sets lost."""
        import optuna

        try:
            self.storage.set_trial_system_attr(self.trial_id, SYS_HEARTBEAT, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            self.lost.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and not self.lost.is_set():
            try:
                self.beat()
            except Exception:  # a storage hiccup must not kill the trial; the next beat retries
                log.exception("heartbeat of trial id %d failed", self.trial_id)


def config_of(trial: FrozenTrial) -> dict[str, Any]:
    """The stored TrialConfig JSON of a grid trial as a dict."""
    return json.loads(trial.user_attrs[ATTR_CONFIG])
