"""How the runs of a table are labelled and paired (the rule the report and a sequential grid
share): each run's label (the variant, with λ where one variant ran several ``tav_weight``),
its varied fields (config fields that take more than one value within a backbone x dataset x
label, seed and execution settings aside), and each non-baseline setting paired by seed with
the ``baseline`` runs of the same backbone and dataset and the same value of each varied field
on which the baselines differ. pandas only (imported by the report and, inside functions, by
the study's sequential decisions)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import pandas as pd

from mpbench import tracking as tk
from mpbench._conventions import BASELINE
from mpbench.config import EXECUTION_FIELDS, TrialConfig, semantic_options

KEYS: Final = ["backbone", "dataset", "label"]
# Config fields that never become a setting column: the keys themselves, the seed (averaged over),
# tav_weight (in the label) and settings that change how fast a trial runs, not what it measures.
NOT_VARIED: Final = frozenset({"backbone", "dataset", "variant", "seed", "tav_weight"}) | (
    EXECUTION_FIELDS
)
UNKNOWN: Final = "?"  # a varied field that a run did not log


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (the metric table's direction)."""
    return tk.metric(metric).direction == "higher"


def _fmt_weight(weight: float) -> str:
    """A tav_weight as a short label text."""
    return "λ=?" if math.isnan(weight) else f"λ={weight:g}"


def add_labels(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (wide) with a ``label`` column: the variant, plus λ where it varies."""
    runs = runs.copy()
    weights = runs["tav_weight"].fillna(-1.0)
    n_weights = weights.groupby([runs["backbone"], runs["dataset"], runs["variant"]]).transform(
        "nunique"
    )
    sweep = (n_weights > 1) & (runs["variant"] != BASELINE)
    runs["label"] = runs["variant"].astype(object)
    runs.loc[sweep, "label"] = [
        f"{v} {_fmt_weight(w)}"
        for v, w in zip(runs.loc[sweep, "variant"], runs.loc[sweep, "tav_weight"], strict=True)
    ]
    if "setting" in runs:  # the varied fields, for figures (see with_setting)
        named = runs["setting"].fillna("").astype(str) != ""
        runs.loc[named, "label"] = runs.loc[named, "label"] + " " + runs.loc[named, "setting"]
    return runs


def _param_values(runs: pd.DataFrame, field: str) -> pd.Series:
    """The logged values of config ``field`` (MLflow param strings; dataset options without
    execution options), a run that did not log it taking the value of another run of its cell."""
    values = runs[f"param.{field}"].astype(object)
    if field == "dataset_options":
        values = values.map(semantic_options_text)
    values = values.where(values.notna(), None)
    if "cell" in runs and values.isna().any():
        filled = values.groupby(runs["cell"].fillna("")).transform("first")
        values = values.where(values.notna(), filled)
    return values


def semantic_options_text(text: object) -> object:
    """A dataset_options param (JSON text) without the options that change no pixel
    (``cache``), as canonical JSON; anything else as it is."""
    import json

    if not isinstance(text, str):
        return text
    try:
        opts = json.loads(text)
    except ValueError:
        return text
    if not isinstance(opts, dict):
        return text
    return json.dumps(semantic_options(opts), sort_keys=True)


def varied_fields(runs: pd.DataFrame) -> list[str]:
    """The config fields that take more than one value among the runs of one backbone x dataset
    x label (``runs`` with labels), seed and execution settings aside, in TrialConfig order."""
    out = []
    for field in TrialConfig.model_fields:
        if field in NOT_VARIED or f"param.{field}" not in runs:
            continue
        values = _param_values(runs, field)
        counts = values.groupby([runs[k] for k in KEYS], dropna=False).nunique(dropna=True)
        if (counts > 1).any():
            out.append(field)
    return out


def add_settings(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``runs`` (with labels) plus one column per varied field, and the setting keys
    (``KEYS`` then the varied fields)."""
    fields = varied_fields(runs)
    columns = {f: _param_values(runs, f).fillna(UNKNOWN).astype(str) for f in fields}
    if "dataset_options" in columns:
        columns["dataset_options"] = varied_options(columns["dataset_options"])
    return runs.assign(**columns), [*KEYS, *fields]


def varied_options(values: pd.Series) -> pd.Series:
    """Dataset options (canonical JSON) as the options that differ between them, ``k=v, ...``
    (a nuisance study's ``ladder=flicker, level=2``), so that a table shows what was varied; the
    values stay as distinct as the options, whose other keys are the same everywhere."""
    import json

    try:
        parsed = [json.loads(v) for v in values]
    except ValueError:
        return values
    if not all(isinstance(p, dict) for p in parsed):
        return values
    keys = sorted({k for p in parsed for k in p})
    varied = [k for k in keys if len({json.dumps(p.get(k, UNKNOWN)) for p in parsed}) > 1]
    shown = [
        ", ".join(f"{k}={_option_text(p[k])}" for k in varied if k in p) or "{}" for p in parsed
    ]
    return pd.Series(shown, index=values.index)


def _option_text(value: object) -> str:
    """An option's value as written in a study file (strings bare, lists as JSON)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _baseline_runs(
    bases: dict[tuple, pd.DataFrame], key: tuple, fields: list[str]
) -> pd.DataFrame | None:
    """The baseline runs that a setting ``key`` (backbone, dataset, label, *fields values) is
    compared with: same task, and the same value of each field on which the baselines differ."""
    base = bases.get(key[:2])
    if base is None:
        return None
    for field, value in zip(fields, key[len(KEYS) :], strict=True):
        if base[field].nunique() > 1:
            base = base[base[field] == value]
    return base if len(base) else None


def baseline_pairs(
    runs: pd.DataFrame, keys: list[str] = KEYS
) -> Iterator[tuple[tuple, pd.DataFrame, pd.DataFrame]]:
    """The comparisons of a table: each non-baseline setting's runs and the baseline runs it is
    paired with (both indexed by seed), in setting order (``runs`` with labels and settings)."""
    by_seed = runs.set_index("seed")
    is_base = by_seed["variant"] == BASELINE
    bases = {task: b for task, b in by_seed[is_base].groupby(["backbone", "dataset"], sort=True)}
    fields = keys[len(KEYS) :]
    for key, group in by_seed[~is_base].groupby(keys, sort=True):
        base = _baseline_runs(bases, key, fields)
        if base is not None:
            yield key, group, base
