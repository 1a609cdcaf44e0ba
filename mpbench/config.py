"""TrialConfig: every setting of one trial, validated, frozen, with a stable semantic key.

The config is translated into keyword arguments for layers, models and loaders in one place
(``mpbench.engine.build``); nothing below the engine takes a config object.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mpbench._files import load_toml_model, validate

# The closed choices, each written once: the trial schema, the prompt layer, the model registry,
# the CLI (Typer reads a Literal's values) and the benchmarks use these; lists are get_args().
Device = Literal["auto", "cpu", "cuda"]
Amp = Literal["none", "bf16", "fp16"]
Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["cosine", "step", "epoch_steps", "constant"]
# "split": backbone weights decayed, norms, biases and the prompt not, the prompt at its own lr;
# "single": one group, every parameter (m and n too) at lr and weight_decay (the reference code)
ParamGroups = Literal["split", "single"]
Size = Literal["tiny", "full"]
Layout = Literal["BCTHW", "BTCHW"]  # a backbone's input layout
ChannelOrder = Literal["RGB", "BGR"]
Granularity = Literal["scalar", "frame", "pixel"]  # of the prompt's learnable slope and shift
Preset = Literal["easy", "medium", "hard"]  # the synthetic benchmark's presets (data/synth.py)
DEVICES: tuple[str, ...] = get_args(Device)
AMPS: tuple[str, ...] = get_args(Amp)
SIZES: tuple[str, ...] = get_args(Size)

# Fields that change how fast a trial runs but not what it measures: left out of the cell key.
EXECUTION_FIELDS = frozenset(
    {
        "device",
        "workers",
        "threads",
        "compile",
        "channels_last",
        "cudnn_benchmark",
        "run_dir",
        "log_every",
    }
)
# Dataset options that change where the pixels come from but not the pixels: left out of the key.
EXECUTION_DATASET_OPTIONS = frozenset({"cache"})
# Fields added after studies had run: left out of the key while at their default, so that the
# cell keys of those studies stay what they were.
KEY_OMITTED_AT_DEFAULT = frozenset(
    {"step_epochs", "step_lrs", "nesterov", "param_groups", "dropout", "drop_path"}
)


def semantic_options(options: dict[str, Any]) -> dict[str, Any]:
    """Dataset ``options`` without the execution-only ones (:data:`EXECUTION_DATASET_OPTIONS`)."""
    return {k: v for k, v in options.items() if k not in EXECUTION_DATASET_OPTIONS}


class TrialConfig(BaseModel):
    """One training run: backbone x variant x dataset x seed x hyperparameters.

    Args:
        backbone: registered backbone name (``mpbench list backbones``).
        variant: registered prompt variant (``mpbench list variants``).
        dataset: registered dataset name (``mpbench list datasets``).

    Example:
        >>> cfg = TrialConfig(backbone="x3d_xs", variant="learnable_tav", size="tiny")
        >>> len(cfg.key())
        12
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # what is measured
    backbone: str = "x3d_xs"
    size: Size = "tiny"
    pretrained: bool = False
    weights: str | None = None
    variant: str = "learnable_tav"
    tav_weight: float | None = Field(default=None, ge=0.0, description="overrides the variant's")
    init_m: float | None = None
    init_n: float | None = None
    dataset: str = "synth"
    data_root: str | None = None
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    frames: int = Field(default=8, ge=1, description="T frames into the backbone (T+1 decoded)")
    sampling_rate: int = Field(default=1, ge=1)
    crop: int = Field(default=64, ge=8)
    seed: int = Field(default=0, ge=0)
    data_seed: int | None = Field(
        default=None, ge=0, description="pins data order and augmentation (None: the seed's)"
    )
    # optimisation
    epochs: int = Field(default=4, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many steps")
    batch_size: int = Field(default=8, ge=1)
    optimizer: Optimizer = "adamw"
    lr: float = Field(default=2e-3, gt=0.0)
    prompt_lr_mult: float = Field(default=1.0, ge=0.0)
    weight_decay: float = Field(default=0.05, ge=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    schedule: Schedule = "cosine"
    warmup_epochs: float = Field(default=0.0, ge=0.0)
    step_milestones: tuple[float, ...] = (0.6, 0.85)
    step_gamma: float = Field(default=0.1, gt=0.0)
    step_epochs: tuple[float, ...] = Field(
        default=(), description="epoch_steps: the epochs from which each factor of step_lrs holds"
    )
    step_lrs: tuple[float, ...] = Field(
        default=(), description="epoch_steps: the lr factor from each of step_epochs on"
    )
    nesterov: bool = False
    param_groups: ParamGroups = "split"
    dropout: float | None = Field(
        default=None, ge=0.0, lt=1.0, description="head dropout (None: the backbone's own)"
    )
    drop_path: float | None = Field(
        default=None, ge=0.0, lt=1.0, description="stochastic depth (None: the backbone's own)"
    )
    grad_clip: float | None = Field(default=None, gt=0.0)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    test_clips: int = Field(default=1, ge=1)
    test_crops: int = Field(default=1, ge=1)
    # execution (not part of the key)
    device: Device = "auto"
    amp: Amp = "none"
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = True
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes")
    threads: int | None = Field(default=None, ge=1, description="torch CPU threads (None: torch's)")
    log_every: int = Field(default=10, ge=1)
    run_dir: str | None = None

    @field_validator("step_milestones")
    @classmethod
    def _milestones_in_unit_interval(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0.0 < m < 1.0 for m in v) or list(v) != sorted(v):
            raise ValueError(f"step_milestones must be increasing fractions in (0, 1), got {v}")
        return v

    @model_validator(mode="after")
    def _check_optimiser(self) -> TrialConfig:
        check_epoch_steps(self.schedule, self.step_epochs, self.step_lrs)
        if self.param_groups == "single" and self.prompt_lr_mult != 1.0:
            raise ValueError(
                f"param_groups 'single' trains every parameter at lr, so prompt_lr_mult must be "
                f"1.0; got {self.prompt_lr_mult} (use param_groups 'split' for a prompt lr)"
            )
        if self.nesterov and self.optimizer != "sgd":
            raise ValueError(f"nesterov is an SGD option; optimizer is {self.optimizer!r}")
        return self

    def semantic_dict(self) -> dict[str, Any]:
        """The fields that define what the trial measures (everything but execution settings)."""
        defaults = {k: TrialConfig.model_fields[k].default for k in KEY_OMITTED_AT_DEFAULT}
        out = {
            k: v
            for k, v in self.model_dump(mode="json").items()
            if k not in EXECUTION_FIELDS and not (k in defaults and getattr(self, k) == defaults[k])
        }
        out["dataset_options"] = semantic_options(out["dataset_options"])
        if out["data_seed"] is None:  # the seed's: the key of every config before data_seed
            del out["data_seed"]
        return out

    @property
    def data_seed_value(self) -> int:
        """The seed of the data (synthetic clips, order, augmentation): ``data_seed``, else the
        seed; :attr:`seed` alone initialises the weights."""
        return self.seed if self.data_seed is None else self.data_seed

    def key(self) -> str:
        """A stable 12-hex-digit hash of :meth:`semantic_dict` (the grid cell key)."""
        blob = json.dumps(self.semantic_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def flat_params(self) -> dict[str, str]:
        """Every field as a string, for MLflow params."""
        return {
            k: json.dumps(v) if isinstance(v, dict | list) else str(v)
            for k, v in self.model_dump(mode="json").items()
        }

    def with_updates(self, **changes: Any) -> TrialConfig:
        """A validated copy with ``changes`` applied (unknown fields are an error)."""
        return TrialConfig.model_validate({**self.model_dump(), **changes})

    def trial_dir(self, root: str | Path = "runs") -> Path:
        """Where this trial keeps its checkpoints: ``run_dir`` or ``root/<key>``."""
        return Path(self.run_dir) if self.run_dir else Path(root) / self.key()


def check_epoch_steps(
    schedule: str, epochs_at: tuple[float, ...], factors: tuple[float, ...]
) -> None:
    """The ``epoch_steps`` schedule's two lists: one factor per epoch, from epoch 0, increasing
    (an epoch past the run's end is never reached, as in a shortened run); the lists are refused
    with any other schedule (they would be ignored)."""
    if schedule != "epoch_steps":
        if epochs_at or factors:
            raise ValueError(
                f"step_epochs and step_lrs belong to schedule 'epoch_steps'; schedule is "
                f"{schedule!r} (set schedule = 'epoch_steps' or remove them)"
            )
        return
    if not epochs_at or len(epochs_at) != len(factors):
        raise ValueError(
            f"schedule 'epoch_steps' needs step_epochs and step_lrs of one length (one lr factor "
            f"from each epoch on), e.g. [0, 11, 14] and [1, 0.1, 0.01]; got {list(epochs_at)} "
            f"and {list(factors)}"
        )
    if epochs_at[0] != 0 or list(epochs_at) != sorted(set(epochs_at)):
        raise ValueError(f"step_epochs must start at 0 and increase; got {list(epochs_at)}")
    if any(f <= 0 for f in factors):
        raise ValueError(f"step_lrs must be positive; got {list(factors)}")


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["lr=0.01", "dataset_options={classes=4}"]`` -> ``{"lr": 0.01, ...}`` (TOML values;
    a bare word that is not valid TOML is taken as a string)."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def load_trial_config(path: str | Path | None = None, **overrides: Any) -> TrialConfig:
    """A TrialConfig from a TOML file (top-level keys or a ``[trial]`` table) plus overrides.

    Errors name the file, the field, the bad value and what was expected.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if path is None:
        return validate(TrialConfig, given, source="command line", known_keys=_trial_keys)
    return load_toml_model(
        path,
        TrialConfig,
        what="trial config file",
        table="trial",
        updates=given,
        known_keys=_trial_keys,
    )


def _trial_keys(loc: list[str]) -> list[str]:
    """The keys a trial config allows (for the close matches of an unknown one)."""
    return sorted(TrialConfig.model_fields)


def without_cache(cfg: TrialConfig) -> TrialConfig:
    """``cfg`` reading the files themselves: a decoded-clip cache would be built (minutes) by
    build_data; the trial builds it, and it holds the same pixels. Without a data_root the
    option stays, so that its misuse on the in-memory synth is still found."""
    if cfg.data_root is None:
        return cfg
    return cfg.with_updates(dataset_options=semantic_options(cfg.dataset_options))
