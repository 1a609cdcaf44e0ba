"""Sequential grids: where each comparison stands, and the seeds its cells need next.

A *comparison* is a non-baseline setting against the ``baseline`` variant with the same seed and
every other axis equal: the pairing of the report's paired tests
(:func:`mpbench.report.stats.baseline_pairs`), so the runner and the report decide the same
comparisons. Its paired differences (variant minus baseline, negated for a metric where lower is
better, so that a positive difference means the variant is better) over the seeds finished on
both sides, in seed order, are decided by :func:`mpbench.report.sequential.look_state` at the
largest look reached. A comparison at ``continue`` needs the next look's seeds; a decided one
needs no more. A grid point needs the most seeds any of its comparisons needs (a point in no
comparison runs every seed).

Everything here is derived from finished runs only (COMPLETE trials of the Optuna storage, or
the finished MLflow runs of the report), so a study that is killed and run again takes the same
decisions and enqueues the same cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mpbench.study import storage as S
from mpbench.study.spec import StudySpec, expand_grid, grid_points, point_key

if TYPE_CHECKING:
    import pandas as pd

    from mpbench.report.sequential import Design, LookResult

PENDING = "pending"  # the status of a planned cell that has not finished (never averaged)


@dataclass(frozen=True)
class ComparisonState:
    """One comparison of a sequential grid after the runs finished so far.

    Args:
        key: the setting (backbone, dataset, label, varied field values) of the variant.
        names: the names of the key's parts (``backbone``, ``dataset``, ``label``, fields).
        variant_points: grid point keys of the variant's cells (empty for MLflow runs).
        baseline_points: grid point keys of the baseline cells it is paired with.
        pairs: seeds finished on both sides.
        look: the decision at the largest look reached (None before the first look).
        need: seeds its cells need so far (the next look's, or those of its decision).
    """

    key: tuple
    names: tuple[str, ...]
    variant_points: tuple[str, ...]
    baseline_points: tuple[str, ...]
    pairs: int
    look: LookResult | None
    need: int

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, ``equivalent``, ``undecided`` or ``continue``."""
        return str(self.look.verdict) if self.look is not None else "continue"

    @property
    def name(self) -> str:
        """``<label> [field=value ...] vs baseline (<backbone>, <dataset>)``."""
        backbone, dataset, label, *values = map(str, self.key)
        return " ".join([label, *values, f"vs baseline ({backbone}, {dataset})"])


def design_of(spec: StudySpec, comparisons: int) -> Design:
    """The group-sequential design of a sequential grid with ``comparisons`` comparisons."""
    from mpbench.report.sequential import Design

    assert spec.schedule is not None and spec.resolve is not None
    s, r = spec.schedule, spec.resolve
    assert r.margin is not None
    return Design.from_seeds(
        s.min, s.max, s.step, alpha=r.alpha, margin=r.margin, comparisons=max(1, comparisons),
        spending=r.spending,
    )  # fmt: skip


def resolve_runs(
    runs: pd.DataFrame, *, metric: str, looks: tuple[int, ...], design: Any
) -> list[ComparisonState]:
    """The comparisons of ``runs`` (a wide frame of MLflow-like runs; a ``point`` column names
    the grid point of each) decided under ``design(comparisons)`` (a function of the number of
    comparisons, which share the family-wise alpha)."""
    from mpbench.study.pairing import add_labels, add_settings, baseline_pairs, higher_is_better

    labelled, keys = add_settings(add_labels(runs))
    pairs = list(baseline_pairs(labelled, keys))
    made = design(len(pairs))
    sign = 1.0 if higher_is_better(metric) else -1.0
    column = f"metric.{metric}"
    return [
        _state(key, tuple(keys), group, base, column=column, sign=sign, looks=looks, design=made)
        for key, group, base in pairs
    ]


def _values(runs: pd.DataFrame, column: str) -> pd.Series:
    """The finished values of ``column`` by seed (the run that ended last per seed)."""
    ok = runs[(runs["status"] == "finished") & runs[column].notna()]
    return ok.sort_values(["end_time", "run_id"]).groupby(level=0).last()[column]


def _state(
    key: tuple,
    names: tuple[str, ...],
    group: pd.DataFrame,
    base: pd.DataFrame,
    *,
    column: str,
    sign: float,
    looks: tuple[int, ...],
    design: Design,
) -> ComparisonState:
    """Where one comparison stands after its finished paired seeds."""
    from mpbench.report.sequential import Verdict, look_state

    v, b = _values(group, column), _values(base, column)
    diffs = (sign * (v - b)).dropna().sort_index().to_numpy(float)
    reached = [n for n in looks if n <= len(diffs)]
    look = look_state(design, diffs[: reached[-1]]) if reached else None
    if look is None:
        need = looks[0]
    elif look.verdict is Verdict.CONTINUE:
        need = looks[len(reached)]
    else:
        need = look.n
    points = (tuple(_points(group)), tuple(_points(base)))
    return ComparisonState(key, names, *points, pairs=len(diffs), look=look, need=need)


def _points(runs: pd.DataFrame) -> list[str]:
    """The grid point keys of ``runs`` (none for a frame without a ``point`` column)."""
    return sorted(runs["point"].unique()) if "point" in runs else []


# --- the runner's side: Optuna trials ------------------------------------------------------------


def trial_value(trial: Any, metric: str) -> float | None:
    """The value of ``metric`` a COMPLETE grid trial recorded (None when it did not)."""
    value = trial.user_attrs.get(S.ATTR_RESOLVE, {}).get(metric)
    return None if value is None else float(value)


def planned_runs(spec: StudySpec, trials: list[Any]) -> pd.DataFrame:
    """Every cell of the full design as a run row (MLflow's columns): finished with its value
    of the resolve metric when its trial is COMPLETE, else pending."""
    import pandas as pd

    metric = spec.resolve_metric
    done = {
        key: trial_value(c.latest, metric)
        for key, c in S.cells(trials).items()
        if c.state == "complete"
    }
    rows = []
    for cfg in expand_grid(spec):
        value = done.get(cfg.key())
        row = {f"param.{k}": v for k, v in cfg.flat_params().items()}
        row |= {"backbone": cfg.backbone, "dataset": cfg.dataset, "variant": cfg.variant}
        row |= {"tav_weight": math.nan if cfg.tav_weight is None else cfg.tav_weight}
        row |= {"seed": cfg.seed, "point": point_key(cfg), "run_id": cfg.key(), "end_time": 0}
        row |= {"status": "finished" if value is not None else PENDING}
        rows.append(row | {f"metric.{metric}": math.nan if value is None else value})
    return pd.DataFrame(rows)


def study_comparisons(spec: StudySpec, trials: list[Any]) -> list[ComparisonState]:
    """The comparisons of a sequential grid after its finished trials."""
    assert spec.schedule is not None
    return resolve_runs(
        planned_runs(spec, trials),
        metric=spec.resolve_metric,
        looks=spec.schedule.looks,
        design=lambda n: design_of(spec, n),
    )


def seed_counts(spec: StudySpec, states: list[ComparisonState]) -> dict[str, int]:
    """Seeds each grid point needs so far: the most of its comparisons, every seed if none."""
    assert spec.schedule is not None
    counts: dict[str, int] = {}
    for state in states:
        for point in (*state.variant_points, *state.baseline_points):
            counts[point] = max(counts.get(point, 0), state.need)
    return {point_key(p): counts.get(point_key(p), spec.schedule.max) for p in grid_points(spec)}


def stopped_cells(spec: StudySpec, states: list[ComparisonState]) -> set[str]:
    """Keys of the cells that will never run: seeds beyond the need of points whose every
    comparison is decided."""
    counts = seed_counts(spec, states)
    open_points = {
        p
        for st in states
        if st.verdict == "continue"
        for p in (*st.variant_points, *st.baseline_points)
    }
    needed = {c.key() for c in expand_grid(spec, counts=counts)}
    return {
        c.key()
        for c in expand_grid(spec)
        if c.key() not in needed and point_key(c) not in open_points
    }


def needed_cells(spec: StudySpec, trials: list[Any]) -> list[Any]:
    """The cells of a grid needed so far: every cell of a fixed grid; a sequential grid's
    points up to the seeds their comparisons need."""
    if spec.schedule is None:
        return expand_grid(spec)
    return expand_grid(spec, counts=seed_counts(spec, study_comparisons(spec, trials)))


def missing_cells(spec: StudySpec, trials: list[Any]) -> list[Any]:
    """Needed cells that have no trial yet (what the next look enqueues)."""
    known = S.cells(trials)
    return [c for c in needed_cells(spec, trials) if c.key() not in known]
