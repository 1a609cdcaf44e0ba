"""Where a study stands (cells and trials by state, the failed cells with their errors, best so
far, time spent and left) and the dry run (the expanded trials and a compute estimate from a short
throughput probe)."""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpbench.config import EXECUTION_DATASET_OPTIONS, TrialConfig
from mpbench.study import storage as S
from mpbench.study.spec import StudySpec, expand_grid, local_config, seeds

FINAL = ("complete", "pruned", "fail")
EVAL_OVERHEAD = 1.25  # validation + test forward passes on top of the training steps (rough)


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
    if spec.grid is not None:
        keys = [c.key() for c in expand_grid(spec)]
        total = len(keys)
        states = Counter(groups[k].state if k in groups else "pending" for k in keys)
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
    )


def failed_cell(cell: S.CellState, spec: StudySpec) -> FailedCell:
    """The :class:`FailedCell` of a cell whose latest trial failed."""
    t = cell.latest
    attrs = t.user_attrs
    error = last_line(str(attrs.get(S.ATTR_ERROR, "")))
    status = str(attrs.get(S.ATTR_STATUS, "lost" if not error else "failed"))
    return FailedCell(
        cell=cell.key,
        trial=t.number,
        status=status,
        config=config_difference(t, spec),
        error=error or LOST,
        log=str(attrs.get(S.ATTR_LOG, "-")),
    )


def last_line(text: str, *, width: int = 300) -> str:
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
    varied = set(spec.search.space) if spec.search else _varied_fields(spec)
    return {k: v for k, v in cfg.items() if k in varied}


def _varied_fields(spec: StudySpec) -> list[str]:
    """The trial fields a grid varies (axis fields and the seed)."""
    from mpbench.study.spec import _axis_fields

    out = [f for a, vs in spec.grid.axes.items() for f in sorted(_axis_fields(a, vs))]
    return [*dict.fromkeys(out), "seed"]


def open_existing(spec: StudySpec, url: str) -> Any | None:
    """The study in ``url`` if it exists (nothing is created for a missing journal file)."""
    import optuna

    if S.is_journal(url) and not Path(url).exists():
        return None
    try:
        return optuna.load_study(study_name=spec.name, storage=S.open_storage(url))
    except KeyError:
        return None


# --- dry run -----------------------------------------------------------------------------------


@dataclass
class DryRun:
    """The expanded trials with their state, and the compute the rest needs."""

    rows: list[dict[str, Any]]
    done: int
    remaining: int
    seconds_per_step: dict[str, float]  # probe group -> measured seconds per training step
    estimate_seconds: float | None  # compute of the remaining trials (one device)
    notes: list[str]


def dry_run(spec: StudySpec, url: str, *, probe: bool = True, probe_steps: int = 2) -> DryRun:
    """List the trials (grid cells, or the search's seed configs) and estimate what is left."""
    study = open_existing(spec, url)
    groups = S.cells(study.get_trials(deepcopy=False)) if study is not None else {}
    configs = (
        expand_grid(spec) if spec.grid else [spec.base.with_updates(seed=s) for s in seeds(spec)]
    )
    fields = _varied_fields(spec) if spec.grid else ["seed"]
    rows = [
        {
            "cell": c.key(),
            **{f: getattr(c, f) for f in fields},
            "state": groups[c.key()].state if c.key() in groups else "pending",
        }
        for c in configs
    ]
    if spec.grid:
        todo = [c for c, r in zip(configs, rows, strict=True) if r["state"] not in FINAL]
        done = len(configs) - len(todo)
    else:
        done = sum(1 for g in groups.values() if g.state in FINAL)
        todo = configs * max(0, spec.search.n_trials - done)
    est, per_step, notes = (None, {}, ["throughput probe skipped"])
    if probe and todo:
        from mpbench.study.preflight import without_cache

        local = [without_cache(local_config(c, spec.folder)) for c in todo]
        est, per_step, notes = estimate(local, steps=probe_steps)
    return DryRun(
        rows=rows,
        done=done,
        remaining=len(todo),
        seconds_per_step=per_step,
        estimate_seconds=est,
        notes=notes,
    )


def _probe_group(cfg: TrialConfig) -> str:
    """Configs with the same cost per step share one probe."""
    amp = "" if cfg.amp == "none" else f" amp={cfg.amp}"
    return f"{cfg.backbone}/{cfg.size} T={cfg.frames} crop={cfg.crop} batch={cfg.batch_size}{amp}"


def estimate(todo: list[TrialConfig], *, steps: int = 2) -> tuple[float | None, dict, list[str]]:
    """Seconds the configs need on this device: probe each cost group, times its step count."""
    per_step: dict[str, float] = {}
    counted: dict[str, tuple[int | None, str]] = {}
    notes: list[str] = []
    unprobed: set[str] = set()
    total = 0.0
    for cfg in todo:
        group = _probe_group(cfg)
        if group not in per_step and group not in unprobed:
            try:
                per_step[group] = probe_seconds_per_step(cfg, steps=steps)
            except ValueError as exc:  # e.g. amp 'fp16' on a machine without CUDA
                unprobed.add(group)
                notes.append(f"{group}: not probed here ({exc})")
        if group in unprobed:
            continue
        data_key = cfg.model_copy(update={"seed": 0, "variant": "baseline"}).key()
        if data_key not in counted:
            counted[data_key] = steps_of(cfg)
        n_steps, why = counted[data_key]
        if n_steps is None:
            notes.append(f"{cfg.dataset}: {why}")
            continue
        total += n_steps * per_step[group] * EVAL_OVERHEAD
    return (total if not notes else None), per_step, sorted(set(notes))


def steps_of(cfg: TrialConfig) -> tuple[int | None, str]:
    """Training steps of a trial (from max_steps or the dataset size), or None and why not."""
    if cfg.max_steps is not None:
        return cfg.max_steps, ""
    try:
        from mpbench.engine.build import build_data_for

        # counting the videos must not build a decoded-clip cache (the dry run would decode)
        data = build_data_for(cfg.with_updates(dataset_options=_without_cache(cfg)))
    except (ImportError, ValueError, FileNotFoundError, OSError) as exc:
        return None, f"steps per epoch unknown ({str(exc).splitlines()[0]})"
    return cfg.epochs * max(1, len(data.train) // cfg.batch_size), ""


def _without_cache(cfg: TrialConfig) -> dict:
    """The config's dataset options without the execution-only ones (the cache)."""
    return {k: v for k, v in cfg.dataset_options.items() if k not in EXECUTION_DATASET_OPTIONS}


def probe_seconds_per_step(cfg: TrialConfig, *, steps: int = 2, batch: int = 2) -> float:
    """Time ``steps`` training steps (after one warm-up) of the config's model on random input,
    scaled from a batch of ``batch`` clips to the config's batch size. The step is the trial's
    (:func:`mpbench.engine.step.train_step`), under the config's ``amp``."""
    import torch

    from mpbench.engine.build import (
        autocast_factory,
        build_model_for,
        build_optimizer,
        resolve_device,
    )
    from mpbench.engine.distributed import DistContext
    from mpbench.engine.step import grad_scaler, train_step

    device = resolve_device(cfg.device, DistContext.from_env())
    autocast = autocast_factory(cfg.amp, device)  # fp16 without CUDA: ValueError, before a build
    cfg = cfg.with_updates(pretrained=False, weights=None)  # the speed does not need the weights
    model = build_model_for(cfg, num_classes=10).to(device).train()
    step = functools.partial(
        train_step,
        optimizer=build_optimizer(model, cfg),
        scaler=grad_scaler(cfg.amp, device),
        autocast=autocast,
        label_smoothing=cfg.label_smoothing,
        grad_clip=cfg.grad_clip,
    )
    b = min(batch, cfg.batch_size)
    x = torch.randn(b, 3, cfg.frames + 1, cfg.crop, cfg.crop, device=device)
    y = torch.zeros(b, dtype=torch.long, device=device)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        step(model, x, y)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return min(times[1:]) * cfg.batch_size / b


def format_seconds(s: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12.3s`` or ``?``."""
    if s is None:
        return "?"
    if s >= 3600:
        return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"
    if s >= 60:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{s:.1f}s"
