"""The dry run: the trials a study expands to, with their state, and the compute the rest needs,
from a short throughput probe of the trial's own training step on this device."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from mpbench._conventions import BASELINE
from mpbench.config import TrialConfig, semantic_options, without_cache
from mpbench.study import storage as S
from mpbench.study.spec import StudySpec, expand_grid, grid_points, local_config, point_key, seeds
from mpbench.study.status import FINAL, varied_fields

EVAL_OVERHEAD = 1.25  # validation + test forward passes on top of the training steps (rough)


@dataclass(frozen=True)
class LookRange:
    """What a sequential grid's design costs at its first look and at most (cells, and
    compute on one device in seconds where the probe ran; the planner's expectation is
    :func:`mpbench.report.planner.expected_cells`).

    Args:
        first_cells: cells of the first look (every grid point at ``min`` seeds).
        max_cells: cells when every comparison runs to the last look (``max`` seeds).
        first_seconds: compute of the first look's cells (None: not probed).
        max_seconds: compute of every cell of the design (None: not probed).
    """

    first_cells: int
    max_cells: int
    first_seconds: float | None
    max_seconds: float | None

    def seconds_of(self, cells: float) -> float | None:
        """Compute of ``cells`` cells at the mean cost of a cell (None: not probed)."""
        return None if self.max_seconds is None else self.max_seconds * cells / self.max_cells


@dataclass
class DryRun:
    """The expanded trials with their state, and the compute the rest needs."""

    rows: list[dict[str, Any]]
    done: int
    remaining: int
    seconds_per_step: dict[str, float]  # probe group -> measured seconds per training step
    estimate_seconds: float | None  # compute of the remaining trials (one device)
    notes: list[str]
    looks: LookRange | None = None  # a sequential grid's range of cost (None: any other study)


def dry_run(spec: StudySpec, url: str, *, probe: bool = True, probe_steps: int = 2) -> DryRun:
    """List the trials (grid cells, or the search's seed configs) and estimate what is left."""
    study = S.open_existing(spec, url)
    groups = S.cells(study.get_trials(deepcopy=False)) if study is not None else {}
    configs = (
        expand_grid(spec) if spec.grid else [spec.base.with_updates(seed=s) for s in seeds(spec)]
    )
    fields = varied_fields(spec) if spec.grid else ["seed"]
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
    each: dict[str, float] | None = None  # a sequential grid: seconds of every cell
    if probe and spec.schedule is not None:
        each, per_step, notes = _cell_seconds(spec, configs, steps=probe_steps)
        est = None if each is None or not todo else sum(each[c.key()] for c in todo)
    elif probe and todo:
        local = [without_cache(local_config(c, spec.folder)) for c in todo]
        est, per_step, notes = estimate(local, steps=probe_steps)
    return DryRun(
        rows=rows,
        done=done,
        remaining=len(todo),
        seconds_per_step=per_step,
        estimate_seconds=est,
        notes=notes,
        looks=look_range(spec, each) if spec.schedule is not None else None,
    )


def _cell_seconds(
    spec: StudySpec, configs: list[TrialConfig], *, steps: int
) -> tuple[dict[str, float] | None, dict[str, float], list[str]]:
    """Seconds of each cell (by key) on this device, probed once per cost group (None with
    the notes when some cell cannot be timed here)."""
    local = [without_cache(local_config(c, spec.folder)) for c in configs]
    seconds, per_step, notes = seconds_each(local, steps=steps)
    if notes:
        return None, per_step, notes
    keys = [c.key() for c in configs]
    return dict(zip(keys, seconds, strict=True)), per_step, notes  # type: ignore[arg-type]


def look_range(spec: StudySpec, each: dict[str, float] | None) -> LookRange:
    """The cells and compute of a sequential grid's first look and at most (``each``: seconds
    of every cell by key, None when not probed)."""
    assert spec.schedule is not None
    first = {point_key(p): spec.schedule.min for p in grid_points(spec)}
    first_keys = [c.key() for c in expand_grid(spec, counts=first)]
    every = [c.key() for c in expand_grid(spec)]
    first_s = None if each is None else sum(each[k] for k in first_keys)
    max_s = None if each is None else sum(each[k] for k in every)
    return LookRange(len(first_keys), len(every), first_s, max_s)


def shared_settings(spec: StudySpec) -> dict[str, Any]:
    """The base fields every trial shares that differ from TrialConfig's defaults (a dry run
    prints them: the recipe, where the table shows what varies)."""
    varied = set(varied_fields(spec)) if spec.grid else {"seed"}
    defaults = TrialConfig().model_dump(mode="json")
    return {
        k: v
        for k, v in spec.base.model_dump(mode="json").items()
        if k not in varied and v != defaults[k]
    }


def _probe_group(cfg: TrialConfig) -> str:
    """Configs with the same cost per step share one probe."""
    amp = "" if cfg.amp == "none" else f" amp={cfg.amp}"
    return f"{cfg.backbone}/{cfg.size} T={cfg.frames} crop={cfg.crop} batch={cfg.batch_size}{amp}"


def estimate(todo: list[TrialConfig], *, steps: int = 2) -> tuple[float | None, dict, list[str]]:
    """Seconds the configs need on this device: probe each cost group, times its step count."""
    seconds, per_step, notes = seconds_each(todo, steps=steps)
    total = sum(s for s in seconds if s is not None)
    return (total if not notes else None), per_step, notes


def seconds_each(
    todo: list[TrialConfig], *, steps: int = 2
) -> tuple[list[float | None], dict[str, float], list[str]]:
    """Seconds each config needs on this device (None where it cannot be timed, and why in
    the notes): probe each cost group once, times the config's step count."""
    per_step: dict[str, float] = {}
    counted: dict[str, tuple[int | None, str]] = {}
    notes: list[str] = []
    unprobed: set[str] = set()
    seconds: list[float | None] = []
    for cfg in todo:
        group = _probe_group(cfg)
        if group not in per_step and group not in unprobed:
            try:
                per_step[group] = probe_seconds_per_step(cfg, steps=steps)
            except ValueError as exc:  # e.g. amp 'fp16' on a machine without CUDA
                unprobed.add(group)
                notes.append(f"{group}: not probed here ({exc})")
        if group in unprobed:
            seconds.append(None)
            continue
        data_key = cfg.model_copy(update={"seed": 0, "variant": BASELINE}).key()
        if data_key not in counted:
            counted[data_key] = steps_of(cfg)
        n_steps, why = counted[data_key]
        if n_steps is None:
            notes.append(f"{cfg.dataset}: {why}")
            seconds.append(None)
            continue
        seconds.append(n_steps * per_step[group] * EVAL_OVERHEAD)
    return seconds, per_step, sorted(set(notes))


def steps_of(cfg: TrialConfig) -> tuple[int | None, str]:
    """Training steps of a trial (from max_steps or the dataset size), or None and why not."""
    if cfg.max_steps is not None:
        return cfg.max_steps, ""
    try:
        from mpbench.engine.build import build_data_for

        # counting the videos must not build a decoded-clip cache (the dry run would decode)
        data = build_data_for(
            cfg.with_updates(dataset_options=semantic_options(cfg.dataset_options))
        )
    except (ImportError, ValueError, FileNotFoundError, OSError) as exc:
        return None, f"steps per epoch unknown ({str(exc).splitlines()[0]})"
    return cfg.epochs * max(1, len(data.train) // cfg.batch_size), ""


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
    from mpbench.engine.step import grad_scaler, timed, train_step

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
    fastest = min(timed(lambda: step(model, x, y)) for _ in range(steps))  # each one warm
    return fastest * cfg.batch_size / b


__all__ = [
    "DryRun",
    "LookRange",
    "dry_run",
    "estimate",
    "look_range",
    "probe_seconds_per_step",
    "seconds_each",
    "steps_of",
]
