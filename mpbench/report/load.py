"""Load a study's MLflow runs into pandas, with an incremental Parquet cache.

Three frames, all built from MLflow alone (names from :mod:`mpbench.tracking`):

- *runs* (wide, one row per run): ``run_id``, the tag columns of :data:`TAG_COLUMNS`,
  ``run_status`` (MLflow's), ``start_time``/``end_time`` (ms), ``tav_weight`` (from the param),
  the ``decode.<field>`` columns of :data:`DECODE_COLUMNS` (how the run's frames were made),
  one ``param.<name>`` column per param and one ``metric.<key>`` column per metric (its latest
  value, as ``MlflowClient.search_runs`` returns it).
- *long* (one row per run x metric x step): the id columns of *runs* plus ``metric``, ``step``
  and ``value``. Rows built from latest values carry ``step = LATEST_STEP`` (-1); rows from
  :func:`load_history` carry the logged epoch.
- *history*: like *long*, with every logged step of a few metrics (learning curves).

The cache lives in ``results/<study>/cache/``: ``runs.parquet``, ``history.parquet`` and
``meta.json`` (tracking URI, experiment id, schema version). A refresh asks MLflow only for the
runs that ended since the newest cached end time (minus a one-minute overlap for clock skew) and
for the runs still RUNNING; those replace their cached rows. Runs deleted in MLflow after being
cached stay in the cache until ``refresh=True`` rebuilds it.

Reading never creates a store: a local tracking URI (sqlite file or folder) that names nothing
is a ValueError (:func:`read_client`), where MLflow would create an empty store.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from mpbench import tracking as tk

CACHE_VERSION: Final = 3  # 2: the decode.* columns; 3: the design column
LATEST_STEP: Final = -1
OVERLAP_MS: Final = 60_000
PAGE_SIZE: Final = 50_000

# column name in the frames -> MLflow tag
TAG_COLUMNS: Final = {
    "study": tk.TAG_STUDY,
    "kind": tk.TAG_KIND,
    "cell": tk.TAG_CELL,
    "backbone": tk.TAG_BACKBONE,
    "variant": tk.TAG_VARIANT,
    "dataset": tk.TAG_DATASET,
    "seed": tk.TAG_SEED,
    "status": tk.TAG_STATUS,
    "optuna_trial": tk.TAG_OPTUNA_TRIAL,
    "device": tk.TAG_DEVICE,
    "design": tk.TAG_DESIGN,
}
# how each run's frames were made (mpbench.data.provenance tags) -> wide-frame column
DECODE_COLUMNS: Final = {f"decode.{field}": tag for field, tag in tk.PROVENANCE_TAGS.items()}
ID_COLUMNS: Final = (
    "run_id",
    *TAG_COLUMNS,
    "run_status",
    "start_time",
    "end_time",
    "tav_weight",
)
LONG_COLUMNS: Final = (*ID_COLUMNS, "metric", "step", "value")
CARRIED_COLUMNS: Final = ("setting",)
HISTORY_METRICS: Final = (tk.M_VAL_TOP1, tk.M_TRAIN_LOSS, tk.M_SLOPE, tk.M_SHIFT)


def default_cache_dir(study: str, *, results_dir: str | Path = "results") -> Path:
    """Where the Parquet cache of ``study`` lives: ``results/<study>/cache``."""
    return Path(results_dir) / study / "cache"


def local_store(uri: str) -> Path | None:
    """The file (sqlite) or folder (file store) a local tracking URI names; None for a server.

    >>> local_store("sqlite:////tmp/x/mlflow.db"), local_store("http://host:5000")
    (PosixPath('/tmp/x/mlflow.db'), None)
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if scheme == "sqlite":
        path = uri.partition("?")[0].removeprefix("sqlite:///")
        return Path(path) if path and not path.startswith(("sqlite:", ":memory:")) else None
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlparse(uri).path))
    return Path(uri) if scheme == "" else None


def read_client(tracking_uri: str | None = None) -> Any:
    """An MlflowClient for reading ``tracking_uri`` (or the environment's / MLflow's default);
    ValueError when the URI names a local store that does not exist, which MLflow would
    otherwise create empty."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri or tk.tracking_uri() or mlflow.get_tracking_uri()
    store = local_store(uri)
    if store is not None and not store.exists():
        raise ValueError(
            f"no MLflow store at {store.absolute()} (tracking URI {uri!r}): no run has been "
            "logged there, so there is nothing to report; set MLFLOW_TRACKING_URI to the store "
            "the study logged to, or run from the folder that holds its mlflow.db"
        )
    return MlflowClient(tracking_uri=uri)


def open_search_study(name: str, *, storage: str) -> Any:
    """The ``optuna.Study`` called ``name`` in ``storage`` (a journal file or an RDB URL), for
    the search figures; ValueError for a journal file that does not exist or a missing study."""
    import optuna

    from mpbench.study.storage import is_journal, mask_url, open_storage

    if is_journal(storage) and not Path(storage).is_file():
        raise ValueError(f"no Optuna journal at {Path(storage).absolute()}")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        raise ValueError(f"no Optuna study {name!r} in storage {mask_url(storage)}") from None


def _experiment_id(client: Any, experiment: str) -> str:
    """The id of ``experiment``; ValueError naming the known experiments when it is missing."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(
            f"unknown MLflow experiment {experiment!r} at tracking URI "
            f"{client.tracking_uri!r}; known experiments: {names or 'none'} "
            "(set --experiment or MLFLOW_TRACKING_URI)"
        )
    return str(exp.experiment_id)


def _quote(value: str) -> str:
    """``value`` as a quoted literal of MLflow's search syntax."""
    if "'" in value:
        raise ValueError(f"study names may not contain a single quote, got {value!r}")
    return f"'{value}'"


def _search(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    """Every active run of ``experiment_id`` matching ``filter_string`` (all pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string, max_results=PAGE_SIZE, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _run_row(run: Any) -> dict[str, Any]:
    """One wide row (tags, params, latest metrics) of an MLflow Run."""
    tags, params = run.data.tags, run.data.params
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "run_status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
    }
    for column, tag in TAG_COLUMNS.items():
        row[column] = tags.get(tag)
    row["tav_weight"] = params.get("tav_weight")
    row.update({column: tags.get(tag) for column, tag in DECODE_COLUMNS.items()})
    row.update({f"param.{k}": v for k, v in params.items()})
    row.update({f"metric.{k}": v for k, v in run.data.metrics.items()})
    return row


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Fixed dtypes and column order, rows sorted by run id (deterministic output)."""
    frame = frame.copy()
    for column in (*ID_COLUMNS, *DECODE_COLUMNS):
        if column not in frame:
            frame[column] = None
    for column in ("seed", "optuna_trial", "start_time", "end_time"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    frame["tav_weight"] = pd.to_numeric(frame["tav_weight"], errors="coerce").astype(float)
    for column in ("run_id", *TAG_COLUMNS, "run_status", *DECODE_COLUMNS):
        if column not in ("seed", "optuna_trial"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    params = sorted(c for c in frame.columns if c.startswith("param."))
    metrics = sorted(c for c in frame.columns if c.startswith("metric."))
    for column in metrics:
        frame[column] = frame[column].astype(float)
    for column in params:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame = frame[[*ID_COLUMNS, *DECODE_COLUMNS, *params, *metrics]]
    return frame.sort_values("run_id", kind="stable").reset_index(drop=True)


def _rows_to_frame(runs: Iterable[Any]) -> pd.DataFrame:
    """A normalised wide frame of MLflow Runs."""
    rows = [_run_row(r) for r in runs]
    return _normalise(pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(ID_COLUMNS)))


def _read_cache(cache_dir: Path, meta: dict[str, Any]) -> pd.DataFrame | None:
    """The cached wide frame, or None when absent or written for another store."""
    path = cache_dir / "runs.parquet"
    meta_path = cache_dir / "meta.json"
    if not path.exists() or not meta_path.exists():
        return None
    if json.loads(meta_path.read_text()) != meta:
        return None
    return _normalise(pd.read_parquet(path))


def _write_cache(cache_dir: Path, name: str, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Write ``frame`` to ``cache_dir/name`` and the store's meta.json."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(cache_dir / name, index=False)
    (cache_dir / "meta.json").write_text(json.dumps(meta, sort_keys=True))


def _refresh(client: Any, experiment_id: str, base: str, cached: pd.DataFrame) -> pd.DataFrame:
    """``cached`` updated with the runs that ended since it was written or are still running."""
    ended = cached["end_time"].dropna()
    since = int(ended.max()) - OVERLAP_MS if len(ended) else 0
    fresh = _search(client, experiment_id, f"{base} and attributes.end_time >= {since}")
    fresh += _search(client, experiment_id, f"{base} and attributes.status = 'RUNNING'")
    if not fresh:
        return cached
    new = _rows_to_frame({r.info.run_id: r for r in fresh}.values())
    kept = cached[~cached["run_id"].isin(new["run_id"])]
    return _normalise(pd.concat([kept, new], ignore_index=True))


def _known_studies(client: Any, experiment_id: str) -> list[str]:
    """Study names found on (up to 1000) runs of the experiment, for error messages."""
    runs = client.search_runs([experiment_id], max_results=1000)
    return sorted({r.data.tags[tk.TAG_STUDY] for r in runs if tk.TAG_STUDY in r.data.tags})


def load_runs(
    study: str,
    *,
    experiment: str = tk.DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """The wide frame (one row per run) of the runs tagged ``TAG_STUDY == study``.

    With ``cache_dir`` the frame is cached there and refreshed incrementally; ``refresh=True``
    rebuilds the cache from MLflow. ValueError for an unknown experiment or a study without runs.
    """
    if not study:
        raise ValueError("study name must be a non-empty string, got ''")
    from mpbench.study.spec import check_study_name

    check_study_name(study)  # it names results/<study>/: no '..', no '/'
    client = read_client(tracking_uri)
    experiment_id = _experiment_id(client, experiment)
    base = f"tags.`{tk.TAG_STUDY}` = {_quote(study)}"
    meta = {"version": CACHE_VERSION, "uri": client.tracking_uri, "experiment_id": experiment_id}
    cache = Path(cache_dir) if cache_dir is not None else None
    cached = None if cache is None or refresh else _read_cache(cache, meta)
    if cached is None:
        runs = _rows_to_frame(_search(client, experiment_id, base))
    else:
        runs = _refresh(client, experiment_id, base, cached)
    if runs.empty:
        known = _known_studies(client, experiment_id)
        raise ValueError(
            f"no runs of study {study!r} in MLflow experiment {experiment!r} "
            f"(tracking URI {client.tracking_uri!r}); studies found: {known or 'none'}"
        )
    if cache is not None and runs is not cached:
        _write_cache(cache, "runs.parquet", runs, meta)
    return runs


def _carried(runs: pd.DataFrame) -> list[str]:
    """Extra id columns that the long frames carry when ``runs`` has them (``setting``: the
    varied fields of :func:`mpbench.report.stats.with_setting`)."""
    return [c for c in CARRIED_COLUMNS if c in runs]


def latest_runs(runs: pd.DataFrame, *, column: str, keys: Sequence[str]) -> pd.DataFrame:
    """The runs averaged over seeds: finished, with ``column`` logged, one per setting (``keys``)
    and seed, the last to end; a re-run seed replaces the earlier run. The table and the figures
    both select with this, so after a retry they show the same runs.

    ``runs`` is a wide frame (``column`` e.g. ``metric.test_top1``) or a long frame of one metric
    (``column="value"``).
    """
    ok = runs[(runs["status"] == tk.STATUS_FINISHED) & runs[column].notna()]
    ok = ok.sort_values([*keys, "seed", "end_time", "run_id"], kind="stable")
    return ok.drop_duplicates([*keys, "seed"], keep="last")


def long_form(runs: pd.DataFrame) -> pd.DataFrame:
    """Melt the wide frame into one row per run x metric (``step = LATEST_STEP``)."""
    metric_cols = [c for c in runs.columns if c.startswith("metric.")]
    ids = [*ID_COLUMNS, *_carried(runs)]
    long = runs[[*ids, *metric_cols]].melt(id_vars=ids, var_name="metric", value_name="value")
    long = long[long["value"].notna()].copy()
    long["metric"] = long["metric"].str.removeprefix("metric.")
    long["step"] = np.int64(LATEST_STEP)
    long = long[[*LONG_COLUMNS, *_carried(runs)]]
    return long.sort_values(["run_id", "metric"], kind="stable").reset_index(drop=True)


def load_long_runs(study: str, **options: Any) -> pd.DataFrame:
    """The long frame (run x metric, latest values) of ``study``; ``options`` are those of
    :func:`load_runs` (experiment, tracking_uri, cache_dir, refresh)."""
    return long_form(load_runs(study, **options))


def _fetch_history(client: Any, runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Every logged step of ``metrics`` for the runs of ``runs`` (one MLflow call each)."""
    rows = []
    for run_id, end_time in zip(runs["run_id"], runs["end_time"], strict=True):
        for key in metrics:
            for m in client.get_metric_history(run_id, key):
                rows.append((run_id, end_time, key, int(m.step), float(m.value)))
    return pd.DataFrame(rows, columns=["run_id", "cached_end_time", "metric", "step", "value"])


def load_history(
    runs: pd.DataFrame,
    *,
    metrics: Sequence[str] = HISTORY_METRICS,
    tracking_uri: str | None = None,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Per-epoch values of ``metrics`` for ``runs`` (long form with real steps), cached.

    Only runs that are new, still running, or ended since they were cached are fetched.
    """
    cache = Path(cache_dir) / "history.parquet" if cache_dir is not None else None
    old = pd.read_parquet(cache) if cache is not None and cache.exists() else None
    wanted = runs[["run_id", "end_time", "run_status"]]
    if old is not None:
        old = old[old["metric"].isin(metrics)]
        seen = old.drop_duplicates("run_id").set_index("run_id")["cached_end_time"]
        same = wanted["run_id"].map(seen).astype("Int64").eq(wanted["end_time"]).fillna(False)
        stale = wanted[~same.to_numpy(bool) | (wanted["run_status"] == "RUNNING").to_numpy()]
        old = old[old["run_id"].isin(wanted["run_id"]) & ~old["run_id"].isin(stale["run_id"])]
    else:
        stale = wanted
    fresh = _fetch_history(read_client(tracking_uri), stale, metrics) if len(stale) else None
    parts = [p for p in (old, fresh) if p is not None and len(p)]
    hist = pd.concat(parts, ignore_index=True) if parts else _fetch_history(None, stale[:0], [])
    hist["cached_end_time"] = hist["cached_end_time"].astype("Int64")
    hist = hist.sort_values(["run_id", "metric", "step"], kind="stable").reset_index(drop=True)
    if cache is not None and fresh is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        hist.to_parquet(cache, index=False)
    ids = runs[[*ID_COLUMNS, *_carried(runs)]]
    out = hist.drop(columns="cached_end_time").merge(ids, on="run_id", how="inner")
    return out[[*LONG_COLUMNS, *_carried(runs)]].reset_index(drop=True)


def export_study(
    study: str,
    *,
    fmt: str = "csv",
    out: str | Path | None = None,
    experiment: str = tk.DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    results_dir: str | Path = "results",
) -> Path:
    """Write the long frame of ``study`` as CSV or Parquet; returns the file written."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format must be 'csv' or 'parquet', got {fmt!r}")
    df = load_long_runs(
        study,
        experiment=experiment,
        tracking_uri=tracking_uri,
        cache_dir=default_cache_dir(study, results_dir=results_dir),
    )
    path = Path(out) if out is not None else Path(results_dir) / study / f"runs.{fmt}"
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
    else:
        df.to_parquet(path, index=False)
    return path
