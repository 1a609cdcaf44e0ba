"""A study worker: claims trials from the Optuna storage and runs them until none are left.

Its one command line is ``mpbench worker`` (:mod:`mpbench.cli.study_cmds`): started by hand on
other machines, and by ``mpbench grid`` / ``search`` for each local worker
(:func:`mpbench.study.runner.worker_command`). The study's resolved spec is read from the storage,
so every worker runs the same study. A worker of a seeded search first takes a worker number from
the storage (:func:`mpbench.study.storage.register_worker`) and seeds its sampler with
``sampler_seed + number``: no two workers, local or on other machines, propose the same points.

Exactly once: grid cells are enqueued as WAITING trials that ``study.ask()`` pops atomically; a
trial that ``ask()`` makes up when the queue is dry, or a second trial for a cell that already
has one running (lower number) or complete, is told FAIL and marked, never run.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpbench import tracking as tk
from mpbench.outage import OutageError, is_stopping
from mpbench.study import storage as S

if TYPE_CHECKING:
    import optuna

    from mpbench.config import TrialConfig
    from mpbench.study.spec import StudySpec

log = logging.getLogger("mpbench.study.worker")


class TrialLost(RuntimeError):
    """Another worker declared this worker's trial stale (no heartbeat) and took it over."""

    trial_status = tk.TrialStatus.INTERRUPTED  # the cell runs again and continues this run


@dataclass(frozen=True)
class WorkerOptions:
    """Where a worker finds its study and how it runs trials.

    Args:
        storage: Optuna storage URL or journal file path.
        study: study name in that storage.
        run_folder: root of the study run folders (trial checkpoints under
            ``<run_folder>/<study>/trials/<cell key>``).
        experiment: MLflow experiment, or None for no MLflow logging.
        retries: automatic retries of a trial whose worker died.
        heartbeat_interval: seconds between heartbeats.
        grace_period: seconds without heartbeat after which a trial is stale.
        index: local worker number (names its log lines), None for a hand-started worker.
        parent_pid: stop claiming trials when this parent process is gone.
        poll: seconds between looks at the storage while other workers finish.
        max_trials: stop after running this many trials (None: until the study is done).
        log: where this worker's output goes, recorded on each trial it runs (None: its console).

    Example:
        >>> WorkerOptions(storage="runs/demo/optuna.journal", study="demo").retries
        2
    """

    storage: str
    study: str
    run_folder: str = "runs"
    experiment: str | None = tk.DEFAULT_EXPERIMENT
    retries: int = 2
    heartbeat_interval: float = 10.0
    grace_period: float = 60.0
    index: int | None = None
    parent_pid: int | None = None
    poll: float = 1.0
    max_trials: int | None = None
    log: str | None = None


@dataclass
class WorkerSummary:
    """What one worker did: trial numbers by outcome."""

    outcomes: dict[str, list[int]] = field(default_factory=dict)

    def add(self, outcome: str, number: int) -> None:
        """Record that trial ``number`` ended with ``outcome``."""
        self.outcomes.setdefault(outcome, []).append(number)


# --- the loop ----------------------------------------------------------------------------------


def run_worker(opts: WorkerOptions) -> WorkerSummary:
    """Claim and run trials until the study has nothing left to do (or the parent is gone)."""
    from mpbench.outage import scoped_timeout

    storage = S.open_storage(opts.storage)
    study, spec = join_study(storage, opts)
    with scoped_timeout(spec.execution.outage_timeout):
        return _claim_and_run(study, storage, spec, opts)


def _claim_and_run(
    study: optuna.Study, storage: Any, spec: StudySpec, opts: WorkerOptions
) -> WorkerSummary:
    """The worker loop of :func:`run_worker`."""
    summary = WorkerSummary()
    ran = 0
    while opts.parent_pid is None or os.getppid() == opts.parent_pid:
        if is_stopping():  # a signal whose KeyboardInterrupt was lost in a library's cleanup
            raise KeyboardInterrupt
        if opts.max_trials is not None and ran >= opts.max_trials:
            break
        S.reap_stale(study, storage, grace_period=opts.grace_period, retries=opts.retries)
        action = next_action(study, spec)
        if action is Action.DONE:
            break
        if action is Action.WAIT:
            time.sleep(opts.poll)
            continue
        if action is Action.ENQUEUE:
            enqueue_next_look(study, spec)
            continue
        trial = study.ask()
        outcome = run_claimed(study, storage, spec, trial, opts)
        summary.add(outcome, trial.number)
        ran += outcome not in (S.SPURIOUS, S.DUPLICATE)
    return summary


def join_study(storage: Any, opts: WorkerOptions) -> tuple[optuna.Study, StudySpec]:
    """Load the study and its spec with this worker's sampler (its own seed in a seeded search)."""
    spec = S.load_spec(S.open_study(opts.study, storage))
    if not S.is_seeded(spec):
        return S.open_study(opts.study, storage, spec=spec), spec
    me = opts.log or f"console of pid {os.getpid()} on {_host()}"
    number = S.register_worker(storage, opts.study, log=me)
    log.info(
        "worker number %d: sampler seed %d (%s)", number, spec.search.sampler_seed + number, me
    )
    return S.open_study(opts.study, storage, spec=spec, worker=number), spec


class Action(enum.Enum):
    """What a worker does next (:func:`next_action`)."""

    CLAIM = "claim"  # a trial is waiting, or the search budget has room
    WAIT = "wait"  # nothing to claim, but trials are running (they may fail and be retried)
    ENQUEUE = "enqueue"  # a sequential grid's look is done and undecided cells need seeds
    DONE = "done"  # nothing waiting, nothing running, no budget left


def next_action(study: optuna.Study, spec: StudySpec) -> Action:
    """Whether a worker should claim a trial, wait for running ones, enqueue a sequential
    grid's next look, or stop."""
    from optuna.trial import TrialState

    from mpbench.study.sequential import missing_cells

    trials = study.get_trials(deepcopy=False)
    states = {t.state for t in trials}
    if TrialState.WAITING in states:
        return Action.CLAIM
    if spec.search is not None and budget_used(trials, before=None) < spec.search.n_trials:
        return Action.CLAIM
    if TrialState.RUNNING in states:
        return Action.WAIT
    if spec.schedule is not None and missing_cells(spec, trials):
        return Action.ENQUEUE
    return Action.DONE


def enqueue_next_look(study: optuna.Study, spec: StudySpec) -> int:
    """Enqueue the cells a sequential grid needs after its finished trials (every worker may;
    a cell enqueued twice runs once, the second trial is told ``duplicate``)."""
    from mpbench.study.sequential import missing_cells

    cells = missing_cells(spec, study.get_trials(deepcopy=False))
    added = S.enqueue_grid(study, cells)
    log.info("sequential grid %s: %d cell(s) of the next look enqueued", spec.name, added)
    return added


def budget_used(trials: list[Any], *, before: int | None) -> int:
    """Search trials that use the budget (not retries, spurious or duplicate ones)."""
    return sum(
        1
        for t in trials
        if (before is None or t.number < before)
        and S.ATTR_RETRY_OF not in t.user_attrs
        and t.user_attrs.get(S.ATTR_STATUS) not in (S.SPURIOUS, S.DUPLICATE)
    )


def run_claimed(
    study: optuna.Study, storage: Any, spec: StudySpec, trial: optuna.Trial, opts: WorkerOptions
) -> str:
    """Validate a claimed trial (spurious? duplicate?), run it and tell Optuna the outcome."""
    reason = _reject_reason(study, spec, trial)
    if reason is not None:
        trial.set_user_attr(S.ATTR_STATUS, reason)
        study.tell(trial, state=_fail())
        log.info("trial %d: %s, not run", trial.number, reason)
        return reason
    try:
        configs = trial_configs(spec, trial)
        trial.set_user_attr(S.ATTR_LOG, opts.log or f"console of pid {os.getpid()} on {_host()}")
        tid = S.trial_id(study, storage, trial.number)
        log.info("trial %d: cell %s (%d seed(s))", trial.number, configs[0].key(), len(configs))
        with S.Heartbeat(storage, tid, interval=opts.heartbeat_interval) as beat:
            value = _run_seeds(study, spec, trial, configs, beat, opts)
    except KeyboardInterrupt:
        _give_back(study, trial)
        raise
    except Exception as exc:
        if is_stopping():  # the cleanup after a signal failed (an outage): still a give-back
            _give_back(study, trial)
            raise KeyboardInterrupt from exc
        return _tell_outcome(study, trial, exc, opts)
    return _tell(study, trial, state=None, value=value, status=tk.STATUS_FINISHED)


def _tell_outcome(
    study: optuna.Study, trial: optuna.Trial, exc: Exception, opts: WorkerOptions
) -> str:
    """Record a trial that raised ``exc``: lost, handed back after an outage, or failed."""
    if isinstance(exc, TrialLost):
        log.warning("trial %d: %s", trial.number, exc)
        return tk.STATUS_LOST
    if isinstance(exc, OutageError):  # the infrastructure, not the config: the cell runs again
        return _hand_back_after_outage(study, trial, exc, retries=opts.retries)
    return _tell_failure(study, trial, exc)  # recorded on the trial; the study goes on


def _reject_reason(study: optuna.Study, spec: StudySpec, trial: optuna.Trial) -> str | None:
    """``spurious`` or ``duplicate`` when the claimed trial must not run, else None."""
    attrs = trial.user_attrs
    if spec.grid is not None and S.ATTR_CELL not in attrs:
        return S.SPURIOUS  # the queue ran dry between our look and ask(): a sampler trial
    if spec.search is not None and S.ATTR_RETRY_OF not in attrs:
        trials = study.get_trials(deepcopy=False)
        if budget_used(trials, before=trial.number) >= spec.search.n_trials:
            return S.SPURIOUS
    if spec.grid is None:
        return None
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or other.user_attrs.get(S.ATTR_CELL) != attrs[S.ATTR_CELL]:
            continue
        if not S.is_counted(other):
            continue
        if other.state.name == "COMPLETE" or (
            other.state.name == "RUNNING" and other.number < trial.number
        ):
            return S.DUPLICATE
    return None


def trial_configs(spec: StudySpec, trial: optuna.Trial) -> list[TrialConfig]:
    """The configs a claimed trial trains: the grid cell, or the k seeds of sampled params."""
    from mpbench.config import TrialConfig
    from mpbench.study.spec import search_configs

    if spec.grid is not None:
        return [TrialConfig.model_validate_json(trial.user_attrs[S.ATTR_CONFIG])]
    params = {name: suggest(trial, name, p) for name, p in spec.search.space.items()}
    configs = search_configs(spec, params)
    if S.ATTR_CELL not in trial.user_attrs:
        trial.set_user_attr(S.ATTR_CELL, configs[0].key())
        trial.set_user_attr(S.ATTR_KIND, "search")
        trial.set_user_attr(S.ATTR_VERSION, S.code_version())
        trial.set_user_attr(S.ATTR_ATTEMPT, 0)
    return configs


def suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    """Sample one search dimension (a retried trial gets its fixed value back)."""
    if param.type == "categorical":
        return trial.suggest_categorical(name, param.choices)
    if param.type == "int":
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)


# --- running one claimed trial -------------------------------------------------------------------


class _EpochReporter:
    """Engine callback of a claimed trial: each epoch's value to Optuna (for the pruner), and a
    stop when another worker has failed the trial as stale."""

    def __init__(
        self, trial: optuna.Trial, *, metric: str, offset: int, prune: bool, lost: Any
    ) -> None:
        self.trial, self.metric, self.offset, self.prune, self.lost = (
            trial,
            metric,
            offset,
            prune,
            lost,
        )

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """Report the epoch's value; raise TrialPruned / TrialLost to stop the trial."""
        import optuna

        if self.lost.is_set():
            raise TrialLost(f"trial {self.trial.number} was failed as stale by another worker")
        value = metrics.get(self.metric)
        if value is not None and math.isfinite(value):
            self.trial.report(value, step=self.offset + epoch)
        if self.prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch} ({self.metric}={value})")


def _run_seeds(
    study: optuna.Study,
    spec: StudySpec,
    trial: optuna.Trial,
    configs: list[TrialConfig],
    beat: S.Heartbeat,
    opts: WorkerOptions,
) -> float:
    """Train every seed config of the trial (finished seeds skipped); the mean objective."""
    from mpbench.engine import run_trial

    runs: dict[str, str] = dict(trial.user_attrs.get(S.ATTR_RUNS, {}))
    done: dict[str, float] = dict(trial.user_attrs.get(S.ATTR_SEED_VALUES, {}))
    for i, cfg in enumerate(configs):
        key = cfg.key()
        if key in done:
            continue
        cfg = cfg.with_updates(run_dir=str(cell_dir(opts, key)))
        tags = {
            tk.TAG_STUDY: spec.name,
            tk.TAG_CELL: key,
            tk.TAG_KIND: spec.kind,
            tk.TAG_OPTUNA_TRIAL: str(trial.number),
        }
        if spec.schedule is not None:
            tags[tk.TAG_DESIGN] = design_tag(spec)
        if opts.experiment is not None and key not in runs:
            runs[key] = _new_run(cfg, opts.experiment, tags)
            trial.set_user_attr(S.ATTR_RUNS, runs)
        report = _EpochReporter(
            trial,
            metric=spec.objective.intermediate,
            offset=i * cfg.epochs,
            prune=spec.search is not None,
            lost=beat.lost,
        )
        try:
            result = run_trial(
                cfg,
                callbacks=[report],
                experiment=opts.experiment,
                tags=tags,
                run_id=runs.get(key),
                progress=False,
            )
        except BaseException as exc:  # end the run if the trial ended before its recorder could
            if runs.get(key):
                tk.close_run(runs[key], tk.status_of(exc), f"{type(exc).__name__}: {exc}")
            raise
        done[key] = float(result.metrics.get(spec.objective.metric, math.nan))
        trial.set_user_attr(S.ATTR_SEED_VALUES, done)
        if spec.schedule is not None:
            value = float(result.metrics.get(spec.resolve_metric, math.nan))
            trial.set_user_attr(S.ATTR_RESOLVE, {spec.resolve_metric: _finite(value)})
    return sum(done[c.key()] for c in configs) / len(configs)


def design_tag(spec: StudySpec) -> str:
    """The MLflow tag of a sequential grid's runs: its design, which the report decides by
    (``spending`` only when it is not the default ``"obf"``: runs made before the choice
    existed carry the same tag as later OBF runs)."""
    import json

    assert spec.schedule is not None and spec.resolve is not None
    design = spec.schedule.model_dump() | spec.resolve.model_dump()
    if design["spending"] == "obf":  # the default: the tag of runs made before the choice
        del design["spending"]
    return json.dumps(design | {"metric": spec.resolve_metric}, sort_keys=True)


def _finite(value: float) -> float | None:
    """``value``, or None when it is NaN or infinite (JSON has no NaN)."""
    return value if math.isfinite(value) else None


def _host() -> str:
    """This machine's host name."""
    import socket

    return socket.gethostname()


def cell_dir(opts: WorkerOptions, key: str) -> Path:
    """Checkpoint folder of one cell: ``<run_folder>/<study>/trials/<key>``."""
    return Path(opts.run_folder) / opts.study / "trials" / key


def _new_run(cfg: TrialConfig, experiment: str, tags: dict[str, str]) -> str:
    """Create the cell's MLflow run up front, so that a retry can continue it (one run a cell)."""
    writer = tk.RunWriter(
        experiment=experiment,
        tags=tags,
        run_name=tk.run_name(cfg),
    )
    return writer.run_id


def _fail() -> Any:
    from optuna.trial import TrialState

    return TrialState.FAIL


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    *,
    state: Any,
    value: float | None,
    status: str,
    error: str | None = None,
) -> str:
    """Record status/error on the trial and tell Optuna; a trial failed as stale meanwhile is
    left as it is (its retry runs the cell)."""
    import optuna

    try:
        trial.set_user_attr(S.ATTR_STATUS, status)
        if error:
            trial.set_user_attr(S.ATTR_ERROR, error[: S.ERROR_ATTR_CHARS])
        if state is None and value is not None and not math.isfinite(value):
            state, error = _fail(), f"objective is {value}"
            trial.set_user_attr(S.ATTR_ERROR, error)
        study.tell(trial, None if state is not None else value, state=state)
    except optuna.exceptions.UpdateFinishedTrialError:
        log.warning("trial %d was failed as stale by another worker; result dropped", trial.number)
        return tk.STATUS_LOST
    return status


def _tell_failure(study: optuna.Study, trial: optuna.Trial, exc: Exception) -> str:
    """Tell a trial that raised: pruned, diverged or failed (with its error text)."""
    status = tk.status_of(exc)
    if status is tk.STATUS_PRUNED:
        from optuna.trial import TrialState

        return _tell(study, trial, state=TrialState.PRUNED, value=None, status=status)
    log.error("trial %d %s:\n%s", trial.number, status, traceback.format_exc())
    return _tell(
        study, trial, state=_fail(), value=None, status=status, error=f"{type(exc).__name__}: {exc}"
    )


def _hand_back_after_outage(
    study: optuna.Study, trial: optuna.Trial, exc: OutageError, *, retries: int
) -> str:
    """A trial stopped by an outage that outlasted the outage timeout: fail it as ``outage`` and
    enqueue its cell again as a retry (bounded by ``retries``, so that a permanent outage ends).
    If the storage itself is down this raises, the worker exits, and the trial, left RUNNING,
    is reaped as stale by whichever worker comes next."""
    log.error("trial %d: %s", trial.number, exc)
    trial.set_user_attr(S.ATTR_STATUS, S.OUTAGE)
    trial.set_user_attr(S.ATTR_ERROR, f"{type(exc).__name__}: {exc}"[: S.ERROR_ATTR_CHARS])
    study.tell(trial, state=_fail())
    frozen = study.get_trials(deepcopy=False)[trial.number]
    attempt = int(frozen.user_attrs.get(S.ATTR_ATTEMPT, 0)) + 1
    if attempt <= retries:
        S.requeue(study, frozen, attempt=attempt)
        log.warning(
            "trial %d: its cell is enqueued again (retry %d of %d)", trial.number, attempt, retries
        )
    return S.OUTAGE


def _give_back(study: optuna.Study, trial: optuna.Trial) -> None:
    """An interrupted trial: fail it and enqueue its cell again (not counted as a retry)."""
    import optuna

    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr(S.ATTR_STATUS, tk.STATUS_INTERRUPTED)
        study.tell(trial, state=_fail())
        frozen = study.get_trials(deepcopy=False)[trial.number]
        S.requeue(study, frozen, attempt=int(frozen.user_attrs.get(S.ATTR_ATTEMPT, 0)))
        log.warning("trial %d interrupted; its cell is enqueued again", trial.number)


# --- process entry point -------------------------------------------------------------------------


def interrupt_on_sigterm() -> contextlib.AbstractContextManager[None]:
    """SIGTERM raises KeyboardInterrupt (like Ctrl-C), so that a trial is given back cleanly;
    from the first signal on, outages are waited out only briefly (:func:`outage.stopping`)."""
    from mpbench._process import raising_signals

    return raising_signals({signal.SIGTERM: KeyboardInterrupt, signal.SIGINT: KeyboardInterrupt})
