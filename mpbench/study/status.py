"""Where a study stands: cells and trials by state, the failed cells with their errors, the best
so far, time spent and left (the dry run is :mod:`mpbench.study.dryrun`)."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mpbench import tracking as tk
from mpbench.outage import ERROR_LINE_CHARS
from mpbench.study import storage as S
from mpbench.study.spec import StudySpec, expand_grid

FINAL = ("complete", "pruned", "fail", "stopped")  # stopped: a decided sequential grid's cells


LOST = "worker lost (no heartbeat within the grace period) and no retries left"


@dataclass(frozen=True)
class FailedCell:
    """A cell whose latest trial failed: where to look and what went wrong.

    Args:
        cell: the cell key.
        trial: the Optuna trial number of the failed attempt.
        status: ``failed``, ``diverged`` or ``lost``.
        config: the cell's config where it differs from the study's base (``lr=0.1 seed=2``).
        error: the last line of the error.
        log: the log of the worker that ran it (or where that worker's output went).

    Example:
        >>> FailedCell("1a2b3c4d5e6f", 3, "failed", "seed=1", "ValueError: bad", "w.log").cell
        '1a2b3c4d5e6f'
    """

    cell: str
    trial: int
    status: str
    config: str
    error: str
    log: str


@dataclass
class StudySummary:
    """Cells and trials of a study by state, the best trial and the time spent and left."""

    name: str
    kind: str
    total: int  # grid: cells in the study file; search: the trial budget
    cells: dict[str, int]  # state -> cells (pending = no trial yet)
    trials: dict[str, int]  # Optuna state -> trials (spurious/duplicate trials excluded)
    best: dict[str, Any] | None
    seconds_spent: float
    mean_trial_seconds: float | None
    eta_seconds: float | None
    finished_twice: list[str] = field(default_factory=list)  # cells with > 1 COMPLETE trial
    failed: list[FailedCell] = field(default_factory=list)  # cells whose latest trial failed
    comparisons: list[Any] = field(default_factory=list)  # a sequential grid's ComparisonStates
    max_seeds: int = 0  # a sequential grid's largest look
    design: str = ""  # a sequential grid's design in words (looks, spending, alpha)

    @property
    def finished(self) -> int:
        """Cells whose latest trial ended (complete, pruned or failed for good)."""
        return sum(self.cells.get(s, 0) for s in FINAL)

    @property
    def running(self) -> int:
        """Cells being trained now."""
        return self.cells.get("running", 0)


def summarize_study(study: Any, spec: StudySpec) -> StudySummary:
    """Summarise the study's trials in its storage."""
    trials = study.get_trials(deepcopy=False)
    groups = S.cells(trials)
    states = Counter(c.state for c in groups.values())
    keys = list(groups)
    comparisons, stopped = _sequential(spec, trials)
    if spec.grid is not None:
        keys = [c.key() for c in expand_grid(spec)]
        total = len(keys)
        states = Counter(
            groups[k].state if k in groups else "stopped" if k in stopped else "pending"
            for k in keys
        )
    else:
        total = spec.search.n_trials
        states["pending"] = max(0, total - sum(states.values()))
    counted = [t for t in trials if S.is_counted(t)]
    spent, mean = _durations(counted)
    left = states.get("pending", 0) + states.get("waiting", 0) + states.get("running", 0)
    workers = max(1, states.get("running", 0))
    return StudySummary(
        name=spec.name,
        kind=spec.kind,
        total=total,
        cells=dict(states),
        trials=dict(Counter(t.state.name.lower() for t in counted)),
        best=_best(study, spec),
        seconds_spent=spent,
        mean_trial_seconds=mean,
        eta_seconds=None if mean is None else left * mean / workers,
        finished_twice=sorted(k for k, c in groups.items() if c.completed > 1),
        failed=[
            failed_cell(groups[k], spec) for k in keys if k in groups and groups[k].state == "fail"
        ],
        comparisons=comparisons,
        max_seeds=spec.schedule.max if spec.schedule is not None else 0,
        design=design_words(spec, len(comparisons)),
    )


def design_words(spec: StudySpec, comparisons: int) -> str:
    """A sequential grid's design in words ("" for any other study)."""
    if spec.schedule is None or spec.resolve is None:
        return ""
    from mpbench.report.sequential import spending_words

    looks = ", ".join(map(str, spec.schedule.looks))
    return (
        f"looks after {looks} seeds, {spending_words(spec.resolve.spending)} alpha spending, "
        f"family-wise alpha {spec.resolve.alpha:g} over {max(1, comparisons)} comparison(s)"
    )


def _sequential(spec: StudySpec, trials: list[Any]) -> tuple[list[Any], set[str]]:
    """A sequential grid's comparisons and the cells it will never run (none otherwise)."""
    if spec.schedule is None:
        return [], set()
    from mpbench.study.sequential import stopped_cells, study_comparisons

    comparisons = study_comparisons(spec, trials)
    return comparisons, stopped_cells(spec, comparisons)


def failed_cell(cell: S.CellState, spec: StudySpec) -> FailedCell:
    """The :class:`FailedCell` of a cell whose latest trial failed."""
    t = cell.latest
    attrs = t.user_attrs
    error = last_line(str(attrs.get(S.ATTR_ERROR, "")))
    fallback = tk.STATUS_LOST if not error else tk.STATUS_FAILED
    status = str(attrs.get(S.ATTR_STATUS, fallback))
    return FailedCell(
        cell=cell.key,
        trial=t.number,
        status=status,
        config=config_difference(t, spec),
        error=error or LOST,
        log=str(attrs.get(S.ATTR_LOG, "-")),
    )


def last_line(text: str, *, width: int = ERROR_LINE_CHARS) -> str:
    """The last non-empty line of ``text``, cut to ``width`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def config_difference(trial: Any, spec: StudySpec) -> str:
    """``field=value`` for each field of the trial's config that differs from the base (a
    search trial: its sampled params)."""
    if S.ATTR_CONFIG in trial.user_attrs:
        base = spec.base.model_dump(mode="json")
        cfg = S.config_of(trial)
        diff = {k: v for k, v in cfg.items() if k != "run_dir" and base.get(k) != v}
    else:
        diff = dict(trial.params)
    return " ".join(f"{k}={_short(v)}" for k, v in diff.items()) or "(the base config)"


def _short(value: Any) -> str:
    """A config value as compact text (tables as inline TOML-like JSON)."""
    import json

    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _durations(trials: list[Any]) -> tuple[float, float | None]:
    """Total seconds of the trials (running ones so far) and the mean of complete ones."""
    now, spent, done = time.time(), 0.0, []
    for t in trials:
        if t.datetime_start is None:
            continue
        end = t.datetime_complete.timestamp() if t.datetime_complete else now
        spent += end - t.datetime_start.timestamp()
        if t.state.name == "COMPLETE":
            done.append(end - t.datetime_start.timestamp())
    return spent, (sum(done) / len(done) if done else None)


def _best(study: Any, spec: StudySpec) -> dict[str, Any] | None:
    """The best COMPLETE trial: number, value, cell and params."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name == "COMPLETE"
        and t.value is not None
        and math.isfinite(t.value)
        and S.is_counted(t)
    ]
    if not complete:
        return None
    pick = max if spec.objective.direction == "maximize" else min
    t = pick(complete, key=lambda t: t.value)
    cfg = S.config_of(t) if S.ATTR_CONFIG in t.user_attrs else t.params
    return {
        "number": t.number,
        "value": t.value,
        "metric": spec.objective.metric,
        "cell": t.user_attrs.get(S.ATTR_CELL),
        "params": _describe(cfg, spec),
    }


def _describe(cfg: dict[str, Any], spec: StudySpec) -> dict[str, Any]:
    """The fields of a config that the study varies."""
    varied = set(spec.search.space) if spec.search else varied_fields(spec)
    return {k: v for k, v in cfg.items() if k in varied}


def varied_fields(spec: StudySpec) -> list[str]:
    """The trial fields a grid varies (axis fields and the seed)."""
    from mpbench.study.spec import _axis_fields

    out = [f for a, vs in spec.grid.axes.items() for f in sorted(_axis_fields(a, vs))]
    return [*dict.fromkeys(out), "seed"]


def format_seconds(s: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12.3s`` or ``?``."""
    if s is None:
        return "?"
    if s >= 3600:
        return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{s:.1f}s"
