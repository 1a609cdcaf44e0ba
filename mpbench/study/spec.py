"""Study files: a strict schema, loading with file/key-path errors, and expansion into trials.

A study file (TOML) names a base :class:`~mpbench.config.TrialConfig` and either a ``[grid]`` of
axes times seeds or a ``[search]`` space for Optuna. Grids are expanded into concrete configs
before anything runs (the pycls way); Optuna's GridSampler is never used.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from mpbench import tracking as tk
from mpbench._conventions import ALPHA, POWER
from mpbench._files import format_validation_error, load_toml_model, unknown_message, validate
from mpbench.config import TrialConfig, parse_assignments

Sampler = Literal["tpe", "random", "cmaes", "gp"]
Pruner = Literal["median", "hyperband", "none"]
Direction = Literal["maximize", "minimize"]
Kind = Literal["grid", "search"]
Spending = Literal["obf", "pocock"]  # mpbench.report.sequential.SPENDINGS (torch- and scipy-free)
# Fields whose values must be names in a registry: field -> (kind, module, list function).
REGISTRY_FIELDS = {"variant": "variant", "backbone": "backbone", "dataset": "dataset"}
EPOCH_METRIC_DEFAULT = tk.M_VAL_TOP1
# A study file in a folder of this name belongs to the project folder above it (the repository's
# layout: studies/*.toml next to data/, runs/ and results/).
STUDIES_FOLDER = "studies"
NAME_RULE = "letters, digits, '_', '-' and '.', not starting with '.'"
SEEDS_RULE = "seeds must be a list of non-negative integers such as [0, 1, 2], or a count >= 1"
SCHEDULE_RULE = (
    "seeds = { min = 3, max = 12, step = 3 }: integers, 2 <= min <= max, "
    "max - min a multiple of step"
)


class StudyFileError(ValueError):
    """A study file that cannot be used: the message names the file, the key path and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatParam(_Strict):
    """A float search dimension (``log`` for a log-uniform scale, ``step`` for a grid of values)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Strict):
    """An integer search dimension."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class CategoricalParam(_Strict):
    """A categorical search dimension over ``choices``."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool | None] = Field(min_length=1)


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"log=true needs low > 0, got low={low}")
    if log and step is not None:
        raise ValueError("log=true and step cannot be used together")


class SeedSchedule(_Strict):
    """A sequential grid's seeds: a decision after ``min``, ``min + step``, ... ``max`` seeds
    (seeds ``0 .. max - 1``); only comparisons still undecided get the next ``step`` seeds."""

    min: int = Field(ge=2)
    max: int
    step: int = Field(ge=1)

    @model_validator(mode="after")
    def _check_looks(self) -> SeedSchedule:
        if self.max < self.min or (self.max - self.min) % self.step:
            raise ValueError(SCHEDULE_RULE)
        return self

    @property
    def looks(self) -> tuple[int, ...]:
        """The seed counts at which the comparisons are decided."""
        return tuple(range(self.min, self.max + 1, self.step))


def _seeds_kind(value: Any) -> str:
    """The tag of a ``seeds`` value: a table is a schedule, anything else a list (or a count)."""
    return "tagged-schedule" if isinstance(value, dict | SeedSchedule) else "tagged-list"


# a tagged union, so that an error names only the form that was given (the tags leave the key
# path: mpbench._files drops "tagged-*")
GridSeeds = Annotated[
    Annotated[list[int], Tag("tagged-list")] | Annotated[SeedSchedule, Tag("tagged-schedule")],
    Discriminator(_seeds_kind),
]


class GridSpec(_Strict):
    """Axes (trial field -> list of values, or a label -> list of field tables) times seeds
    (a list, a count, or a :class:`SeedSchedule` for a sequential grid)."""

    axes: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: GridSeeds | None = None

    @model_validator(mode="before")
    @classmethod
    def _collect_axes(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "axes" in data:
            return data
        axes = {k: v for k, v in data.items() if k != "seeds"}
        return {"axes": axes, **({"seeds": data["seeds"]} if "seeds" in data else {})}

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, seeds: Any) -> Any:
        if not isinstance(seeds, int) or isinstance(seeds, bool):
            return seeds
        if seeds < 1:
            raise ValueError(SEEDS_RULE)
        return list(range(seeds))

    @field_validator("seeds")
    @classmethod
    def _non_negative(
        cls, seeds: list[int] | SeedSchedule | None
    ) -> list[int] | SeedSchedule | None:
        if isinstance(seeds, list) and (not seeds or min(seeds) < 0):
            raise ValueError(SEEDS_RULE)
        return seeds

    @property
    def schedule(self) -> SeedSchedule | None:
        """The seed schedule of a sequential grid, None for a fixed one."""
        return self.seeds if isinstance(self.seeds, SeedSchedule) else None


class ResolveSpec(_Strict):
    """``[resolve]``: how a sequential grid decides its comparisons (see docs/studies.md).

    ``metric`` defaults to the objective's; ``alpha`` is the family-wise error over all the
    comparisons of the table; ``margin`` the equivalence margin in the metric's units (required
    with ``seeds = { min, max, step }``); ``power`` is used by the planner; ``spending`` the
    Lan-DeMets alpha-spending function, ``"obf"`` (O'Brien-Fleming type) or ``"pocock"``
    (Pocock type, see docs/statistics.md)."""

    metric: str | None = None
    alpha: float = Field(default=ALPHA, gt=0.0, lt=1.0)
    margin: float | None = Field(default=None, gt=0.0)
    power: float = Field(default=POWER, gt=0.0, lt=1.0)
    spending: Spending = "obf"


class SearchSpec(_Strict):
    """An Optuna search: space, sampler, pruner, global trial budget and seeds per trial."""

    space: dict[str, Param] = Field(min_length=1)
    sampler: Sampler = "tpe"
    pruner: Pruner = "median"
    n_trials: int = Field(default=20, ge=1)
    seeds_per_trial: int = Field(default=1, ge=1)
    sampler_seed: int | None = Field(default=None, ge=0)


class ObjectiveSpec(_Strict):
    """The metric Optuna optimises; ``intermediate`` is the per-epoch metric used for pruning.

    A search may name only metrics of the train and val splits (test is reported only); a grid
    optimises nothing, so its ``metric`` may be a test metric (the one its status shows best).
    """

    metric: str = EPOCH_METRIC_DEFAULT
    direction: Direction = "maximize"
    intermediate: str = EPOCH_METRIC_DEFAULT


def parse_minutes(value: int | str) -> int:
    """A Slurm time limit in whole minutes (seconds round up). Slurm's forms: ``MM``, ``MM:SS``,
    ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``; or an int of minutes.

        >>> [parse_minutes(t) for t in (45, "90", "30:00", "4:00:00", "1-02", "1-02:30:00")]
        [45, 90, 30, 240, 1560, 1590]
    """
    if isinstance(value, int):
        minutes = value
    else:
        text = value.strip()
        days, _, clock = text.rpartition("-") if "-" in text else ("0", "", text)
        try:
            fields = [int(f) for f in clock.split(":")]
            d = int(days)
        except ValueError:
            raise ValueError(
                f"expected minutes or a Slurm time (MM:SS, HH:MM:SS, D-HH:MM:SS), got {value!r}"
            ) from None
        if len(fields) > 3 or min([*fields, d]) < 0:
            raise ValueError(f"expected a Slurm time like 4:00:00 or 1-00:00:00, got {value!r}")
        if "-" in text:  # D-HH[:MM[:SS]]
            h, m, s = ([*fields, 0, 0])[:3]
        elif len(fields) == 3:  # HH:MM:SS
            h, m, s = fields
        else:  # MM or MM:SS
            h, m, s = 0, fields[0], ([*fields, 0])[1]
        minutes = d * 1440 + h * 60 + m + (s > 0)
    if minutes < 1:
        raise ValueError(f"a time limit must be at least 1 minute, got {value!r}")
    return minutes


class SlurmSpec(_Strict):
    """``[execution.slurm]``: the job array ``--launcher slurm`` submits (one worker a job).

    ``time`` is minutes or a Slurm time (``"4:00:00"``); ``signal_delay`` is how many seconds
    before the time limit Slurm sends the signal on which a worker gives its cell back and the
    job is requeued; ``max_requeues`` bounds the requeues of one job for its time limit
    (preemptions are not counted); ``additional`` holds extra sbatch options
    (``{ mail-type = "END" }``); ``setup`` shell lines run before the worker (``module load``,
    ``source venv/bin/activate``). ``shared_fs_check = false`` allows a run folder or journal on
    a local filesystem (a one-node cluster)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = 240
    workers: int | None = Field(default=None, ge=1)
    gpus_per_worker: int = Field(default=1, ge=0)
    cpus_per_worker: int = Field(default=8, ge=1)
    mem_gb: float | None = Field(default=None, gt=0)
    constraint: str | None = None
    signal_delay: int = Field(default=120, ge=10)
    max_requeues: int = Field(default=10, ge=0)
    setup: list[str] = Field(default_factory=list)
    additional: dict[str, str | int | bool] = Field(default_factory=dict)
    shared_fs_check: bool = True

    @field_validator("time", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> int:
        if not isinstance(value, int | str) or isinstance(value, bool):
            raise ValueError(f"expected minutes or HH:MM:SS, got {value!r}")
        return parse_minutes(value)

    @model_validator(mode="after")
    def _signal_before_limit(self) -> SlurmSpec:
        if self.signal_delay >= self.time * 60:
            raise ValueError(
                f"signal_delay ({self.signal_delay} s) must be shorter than the time limit "
                f"({self.time} min = {self.time * 60} s)"
            )
        return self


class ExecutionSpec(_Strict):
    """Defaults for running a study; every field can be overridden on the command line."""

    storage: str | None = None
    workers: int = Field(default=1, ge=1)
    gpus: list[int] = Field(default_factory=list)
    retries: int = Field(default=2, ge=0)
    heartbeat_interval: float = Field(default=10.0, gt=0)
    grace_period: float = Field(default=60.0, gt=0)
    run_folder: str = "runs"
    experiment: str = "mpbench"
    outage_timeout: float = Field(default=300.0, gt=0)
    slurm: SlurmSpec = Field(default_factory=SlurmSpec)


class StudySpec(_Strict):
    """A validated study file.

    Args:
        name: the study name (Optuna study name, MLflow tag, run folder).
        base: the TrialConfig every trial starts from.
        grid: the axes of a grid study (exactly one of grid and search).
        search: the space of an Optuna search.
        objective: the metric reported to Optuna.
        execution: storage, workers, GPUs, retries and heartbeat defaults.

    Example:
        >>> spec = StudySpec(name="demo", base=TrialConfig(), grid=GridSpec(variant=["baseline"]))
        >>> [c.variant for c in expand_grid(spec)]
        ['baseline']
    """

    name: str
    description: str = ""
    base: TrialConfig = Field(default_factory=TrialConfig)
    grid: GridSpec | None = None
    search: SearchSpec | None = None
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    resolve: ResolveSpec | None = None
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    _folder: Path | None = PrivateAttr(default=None)
    _source: str | None = PrivateAttr(default=None)
    _pinned: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not is_safe_name(name):
            raise ValueError(f"a study name must be a safe file name: {NAME_RULE}")
        return name

    @model_validator(mode="after")
    def _one_kind(self) -> StudySpec:
        if (self.grid is None) == (self.search is None):
            raise ValueError("a study needs exactly one of [grid] and [search]")
        return self

    @property
    def schedule(self) -> SeedSchedule | None:
        """The seed schedule of a sequential grid (None: fixed seeds, or a search)."""
        return self.grid.schedule if self.grid is not None else None

    @property
    def resolve_metric(self) -> str:
        """The metric a sequential grid decides on: ``[resolve] metric``, else the objective's."""
        chosen = self.resolve.metric if self.resolve is not None else None
        return chosen or self.objective.metric

    @property
    def kind(self) -> Kind:
        """``"grid"`` or ``"search"``."""
        return "grid" if self.grid is not None else "search"

    @property
    def folder(self) -> Path:
        """The project folder: relative paths of the study file are relative to it (see
        :func:`project_folder`); the current folder for a spec that was not read from a file."""
        return self._folder if self._folder is not None else Path.cwd()

    @property
    def source(self) -> str:
        """The study file as it was named (for messages), or ``study '<name>'``."""
        return self._source if self._source is not None else f"study {self.name!r}"

    @property
    def pinned(self) -> tuple[str, ...]:
        """The base fields pinned on the command line (``--set``)."""
        return self._pinned

    def with_folder(self, folder: str | Path, *, source: str | None = None) -> StudySpec:
        """A copy whose relative paths are relative to ``folder`` (``source``: its file)."""
        spec = self.model_copy()
        spec._folder = Path(os.path.abspath(folder))
        spec._source = source if source is not None else self._source
        return spec

    def local_path(self, path: str | Path) -> Path:
        """``path`` of the study file as an absolute path (relative ones from :attr:`folder`)."""
        return Path(os.path.abspath(self.folder / path))

    def run_folder(self, root: str | Path | None = None) -> Path:
        """The study's folder: ``<run_folder>/<name>`` (journal, trial checkpoints); the study
        file's ``run_folder`` is relative to :attr:`folder`, ``root`` to the current folder."""
        base = Path(os.path.abspath(root)) if root else self.local_path(self.execution.run_folder)
        return base / self.name

    def with_base_updates(self, **changes: Any) -> StudySpec:
        """A copy with base fields pinned to ``changes``: pinned fields leave the grid axes (and
        the tables of bundle axes) and the search space."""
        base = self.base.with_updates(**changes)
        grid, search = self.grid, self.search
        if grid is not None:
            axes = {}
            for axis, values in grid.axes.items():
                kept = [
                    {k: v for k, v in axis_updates(axis, x).items() if k not in changes}
                    for x in values
                ]
                if any(kept):  # tables back to plain values only where every one can go
                    plain = all(list(k) == [axis] for k in kept)
                    axes[axis] = [k[axis] for k in kept] if plain else kept
            grid = GridSpec(axes=axes, seeds=None if "seed" in changes else grid.seeds)
        if search is not None:
            space = {k: v for k, v in search.space.items() if k not in changes}
            if not space:
                raise ValueError(f"the overrides {sorted(changes)} remove every search dimension")
            search = search.model_copy(update={"space": space})
        spec = self.model_copy(update={"base": base, "grid": grid, "search": search})
        spec._pinned = tuple(dict.fromkeys([*self._pinned, *changes]))
        return spec


def is_safe_name(name: object) -> bool:
    """Whether ``name`` can name a folder: no separator, not empty, no leading dot (``..``)."""
    return (
        isinstance(name, str)
        and re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None
        and (not name.startswith("."))
    )


def check_study_name(name: str) -> str:
    """``name`` if it is a safe file name (it names the run and results folders)."""
    if not is_safe_name(name):
        raise ValueError(f"a study name must be a safe file name: {NAME_RULE} (got {name!r})")
    return name


def project_folder(study_file: str | Path) -> Path:
    """The folder that relative paths of ``study_file`` are relative to: the folder holding
    its ``studies/`` folder for ``<project>/studies/x.toml``, else the file's own folder."""
    folder = Path(os.path.abspath(study_file)).parent
    return folder.parent if folder.name == STUDIES_FOLDER else folder


def local_config(cfg: TrialConfig, folder: str | Path) -> TrialConfig:
    """``cfg`` with its relative file paths (data_root, weights, a cache folder) made absolute
    from ``folder``, for checks run outside the project folder (the cell key changes)."""

    def absolute(value: Any) -> Any:
        return value if not isinstance(value, str) else os.path.abspath(Path(folder) / value)

    opts = dict(cfg.dataset_options)
    if isinstance(opts.get("cache"), str):
        opts["cache"] = absolute(opts["cache"])
    return cfg.with_updates(
        data_root=absolute(cfg.data_root), weights=absolute(cfg.weights), dataset_options=opts
    )


def axis_updates(axis: str, value: Any) -> dict[str, Any]:
    """The trial fields one axis value sets: a table sets several fields (a bundle such as
    ``{backbone = "x3d_s", frames = 13}``) unless the axis is itself a table-valued field
    (``dataset_options``) whose tables do not name the axis."""
    bundle = isinstance(value, dict) and (axis not in TrialConfig.model_fields or axis in value)
    return dict(value) if bundle else {axis: value}


def _axis_fields(name: str, values: list[Any]) -> set[str]:
    """The trial fields an axis sets."""
    return {k for v in values for k in axis_updates(name, v)} or {name}


# --- loading ---------------------------------------------------------------------------------


def read_study(path: str | Path, *, overrides: dict[str, Any] | None = None) -> StudySpec:
    """Read and validate a study file; ``overrides`` pin base fields (e.g. for smoke runs)."""
    path = Path(path)
    spec = load_toml_model(
        path, StudySpec, what="study file", error=StudyFileError, known_keys=_known_keys
    )
    if overrides:
        spec = _wrap(str(path), "--set", lambda: spec.with_base_updates(**overrides))
    validate_study(spec, source=str(path))
    return spec.with_folder(project_folder(path), source=str(path))


def parse_study(data: dict[str, Any], *, source: str = "<study>") -> StudySpec:
    """Validate a parsed study table into a :class:`StudySpec` (errors name ``source``)."""
    return validate(StudySpec, data, source=source, error=StudyFileError, known_keys=_known_keys)


def _known_keys(loc: list[str]) -> list[str]:
    """The keys allowed at ``loc`` (an unknown key's path), for the close matches."""
    owners = {"base": TrialConfig, "objective": ObjectiveSpec, "execution": ExecutionSpec}
    owners |= {"search": SearchSpec, "resolve": ResolveSpec, "": StudySpec}
    model = owners.get(loc[0] if len(loc) > 1 else "")
    if loc[0] == "grid" or loc[:1] == ["--set"]:
        model = TrialConfig
    return sorted(model.model_fields) if model is not None else []


def _wrap(source: str, where: str, fn: Any) -> Any:
    """Call ``fn`` and turn its ValueError/ValidationError into a StudyFileError at ``where``."""
    try:
        return fn()
    except ValidationError as exc:
        prefix = tuple(where.split(" -> "))
        msg = format_validation_error(exc, source, prefix=prefix, known_keys=_known_keys)
        raise StudyFileError(msg) from None
    except StudyFileError:
        raise
    except ValueError as exc:
        raise StudyFileError(f"{source}: [{where}] {exc}") from None


# --- semantic validation (field names, registry names, values) --------------------------------


def validate_study(spec: StudySpec, *, source: str = "<study>") -> None:
    """Check axis/space field names, registry names and values; nothing is run."""
    _check_names(spec.base.model_dump(), source, "base")
    if spec.grid is not None:
        for axis, values in spec.grid.axes.items():
            _check_axis(spec.base, axis, values, source)
        # every cell is a valid config (a seed or a combination of axes) or the error names it
        _check_variant_settings(_wrap(source, "grid", lambda: expand_grid(spec)), source)
    if spec.search is not None:
        for name, param in spec.search.space.items():
            _check_param(spec.base, name, param, source)
    _check_objective(spec, source)
    _check_resolve(spec, source)


def _check_resolve(spec: StudySpec, source: str) -> None:
    """A sequential grid needs a margin; ``[resolve]`` belongs to grids and names a metric."""
    from mpbench import tracking as tk

    r = spec.resolve
    if r is not None and spec.kind == "search":
        raise StudyFileError(f"{source}: [resolve] decides the comparisons of a grid, not a search")
    if spec.schedule is not None and (r is None or r.margin is None):
        raise StudyFileError(
            f"{source}: [resolve -> margin] is required with seeds = {{ min, max, step }}: "
            "the equivalence margin in the metric's units (e.g. margin = 0.02 for 2 points of "
            "top-1)"
        )
    known = list(tk.EPOCH_METRICS) + list(tk.FINAL_METRICS)
    if r is not None and r.metric is not None and r.metric not in known:
        msg = unknown_message(f"metric {r.metric!r}", r.metric, known)
        raise StudyFileError(f"{source}: [resolve -> metric] {msg}")


def _check_axis(base: TrialConfig, axis: str, values: list[Any], source: str) -> None:
    """An axis must be non-empty, name trial fields, and give valid configs."""
    where = f"grid -> {axis}"
    if not values:
        raise StudyFileError(f"{source}: [{where}] an axis needs at least one value (got [])")
    bundles = [axis_updates(axis, v) != {axis: v} for v in values]
    if any(bundles) and not all(bundles):
        raise StudyFileError(f"{source}: [{where}] mix of tables and plain values (got {values!r})")
    if not any(bundles):
        _check_field(axis, source, where)
    for i, value in enumerate(values):
        updates = axis_updates(axis, value)
        for field in updates:
            _check_field(field, source, f"{where} -> {i}")
        _check_names(updates, source, where)
        _wrap(source, f"{where} -> {i}", lambda u=updates: base.with_updates(**u))


def _check_variant_settings(configs: list[TrialConfig], source: str) -> None:
    """Each cell's variant must accept its tav_weight / init overrides (e.g. no TAV on a fixed
    attention), so a bad combination stops the study before any cell runs."""
    from mpbench.variants import get_variant

    seen = {(c.variant, c.tav_weight, c.init_m, c.init_n) for c in configs}
    for variant, tav_weight, init_m, init_n in sorted(seen, key=repr):
        try:
            get_variant(variant).with_overrides(tav_weight=tav_weight, init_m=init_m, init_n=init_n)
        except ValidationError as exc:
            msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise StudyFileError(f"{source}: [grid -> variant] {msg}") from None
        except ValueError as exc:
            raise StudyFileError(f"{source}: [grid -> variant] {exc}") from None


def _check_param(base: TrialConfig, name: str, param: Any, source: str) -> None:
    """A search dimension must name a trial field whose bounds/choices are valid values."""
    where = f"search -> space -> {name}"
    _check_field(name, source, where)
    values = param.choices if isinstance(param, CategoricalParam) else [param.low, param.high]
    for v in values:
        _check_names({name: v}, source, where)
        _wrap(source, where, lambda v=v: base.with_updates(**{name: v}))


def _check_field(field: str, source: str, where: str) -> None:
    """``field`` must be a TrialConfig field."""
    if field not in TrialConfig.model_fields:
        msg = unknown_message(f"trial field {field!r}", field, TrialConfig.model_fields)
        raise StudyFileError(f"{source}: [{where}] {msg}")


def _check_names(values: dict[str, Any], source: str, where: str) -> None:
    """Variant, backbone and dataset names must be registered."""
    for field, kind in REGISTRY_FIELDS.items():
        if field not in values:
            continue
        known = registered_names(kind)
        name = values[field]
        if known is not None and name not in known:
            sub = where if where.endswith(field) else f"{where} -> {field}"
            msg = unknown_message(f"{kind} {name!r}", str(name), known)
            raise StudyFileError(f"{source}: [{sub}] {msg}")


def registered_names(kind: str) -> list[str] | None:
    """Registered variant/backbone/dataset names, or None if that registry is not available."""
    try:
        if kind == "variant":
            from mpbench.variants import list_variants

            return [v.name for v in list_variants()]
        if kind == "backbone":
            from mpbench.models import list_backbones

            return [b.name for b in list_backbones()]
        from mpbench.data import list_datasets

        return [d.name for d in list_datasets()]
    except ImportError:
        return None


def is_test_metric(metric: str) -> bool:
    """Whether ``metric`` is computed on the test split: grids may report it, a search may not
    optimise it (val chooses, test reports; see docs/studies.md)."""
    return tk.metric(metric).split == "test"


def _check_objective(spec: StudySpec, source: str) -> None:
    """The objective metrics must be metric keys that trials log; a search optimises val ones."""
    known = list(tk.EPOCH_METRICS) + list(tk.FINAL_METRICS)
    for field in ("metric", "intermediate"):
        value = getattr(spec.objective, field)
        if value not in known:
            msg = unknown_message(f"metric {value!r}", value, known)
            raise StudyFileError(f"{source}: [objective -> {field}] {msg}")
        if spec.kind == "search" and is_test_metric(value):
            raise StudyFileError(
                f"{source}: [objective -> {field}] {value!r} is computed on the test split, "
                "which is reported only; a search must optimise a validation metric such as "
                f"{EPOCH_METRIC_DEFAULT!r}"
            )
    if spec.objective.intermediate not in tk.EPOCH_METRICS:
        raise StudyFileError(
            f"{source}: [objective -> intermediate] must be a per-epoch metric "
            f"(got {spec.objective.intermediate!r}; allowed: {', '.join(tk.EPOCH_METRICS)})"
        )


# --- expansion ---------------------------------------------------------------------------------


def seeds(spec: StudySpec) -> list[int]:
    """The seeds of each grid point or search trial."""
    if spec.schedule is not None:
        return list(range(spec.schedule.max))
    if spec.grid is not None:
        return list(spec.grid.seeds) if spec.grid.seeds is not None else [spec.base.seed]
    assert spec.search is not None
    return [spec.base.seed + i for i in range(spec.search.seeds_per_trial)]


def expand_grid(spec: StudySpec, *, counts: Mapping[str, int] | None = None) -> list[TrialConfig]:
    """Every cell of a grid study, in a stable order, duplicates (same key) removed; ``counts``
    (point key -> seeds) limits a point to its first seeds (a sequential grid's looks)."""
    cells: dict[str, TrialConfig] = {}
    for point in grid_points(spec):
        n = None if counts is None else counts.get(point_key(point), 0)
        for seed in seeds(spec)[:n]:
            cfg = point.with_updates(seed=seed)
            cells.setdefault(cfg.key(), cfg)
    return list(cells.values())


def grid_points(spec: StudySpec) -> list[TrialConfig]:
    """One config per combination of the axes (seed: the base's), in a stable order."""
    if spec.grid is None:
        raise ValueError(f"study {spec.name!r} is a search, not a grid")
    value_lists = [[axis_updates(a, v) for v in vs] for a, vs in spec.grid.axes.items()]
    points: dict[str, TrialConfig] = {}
    for combo in itertools.product(*value_lists):
        updates: dict[str, Any] = {}
        for part in combo:
            updates |= part
        cfg = spec.base.with_updates(**updates)
        points.setdefault(point_key(cfg), cfg)
    return list(points.values())


def point_key(cfg: TrialConfig) -> str:
    """The key of a config's grid point: its cell key with the seed left out (seed 0)."""
    return cfg.with_updates(seed=0).key()


def search_configs(spec: StudySpec, params: dict[str, Any]) -> list[TrialConfig]:
    """The k seed configs of one search trial with sampled ``params``."""
    base = spec.base.with_updates(**params)
    return [base.with_updates(seed=s) for s in seeds(spec)]


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=1", "dataset=synth"]`` -> ``{"epochs": 1, "dataset": "synth"}`` (TOML values)."""
    return parse_assignments(list(items))
