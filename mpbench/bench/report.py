"""``mpbench bench report``: time ``mpbench report`` on many synthetic runs.

Logging 10,000 runs through ``MlflowClient`` costs about 17 ms a run on SQLite (three calls each:
create, log_batch, terminate), almost three minutes. The benchmark therefore writes the runs in
bulk, straight into the tables of a fresh MLflow SQLite store with MLflow's own SQLAlchemy models
(``mlflow.store.tracking.dbmodels.models``): the rows are exactly what the client would write
(runs, tags, params, metrics, latest_metrics), and the report reads them back through the public
``MlflowClient.search_runs``.

Synthetic layout: run i has backbone ``i % 2``, dataset ``(i // 2) % 5``, variant ``(i // 10) %
10`` (variant 0 is the baseline) and seed ``i // 100``; 2% of the runs failed and 1% were pruned.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from mpbench import tracking as tk
from mpbench._conventions import BASELINE

STUDY: Final = "bench"
EPOCHS: Final = 2
CHUNK: Final = 1000


@dataclass(frozen=True)
class ReportBench:
    """Timings of one report benchmark, in seconds.

    Args:
        runs: number of runs logged.
        log_s: time to log them.
        cold_s: ``make_report`` without a cache.
        warm_s: ``make_report`` again, with the cache and no new runs.
        rows: rows of the stats table (one per setting and split).

    Example:
        >>> bench_report(runs=200).rows  # doctest: +SKIP
        200
    """

    runs: int
    log_s: float
    cold_s: float
    warm_s: float
    rows: int


def _run_rows(i: int, experiment_id: int, now: int, rng: np.random.Generator) -> dict[str, list]:
    """The table rows of synthetic run ``i``."""
    run_id = uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i).hex
    variant = (i // 10) % 10
    name = BASELINE if variant == 0 else f"variant{variant}"
    draw = rng.random()
    status = (
        tk.STATUS_FAILED if draw < 0.02 else tk.STATUS_PRUNED if draw < 0.03 else tk.STATUS_FINISHED
    )
    tags = {
        tk.TAG_STUDY: STUDY,
        tk.TAG_KIND: "grid",
        tk.TAG_BACKBONE: f"backbone{i % 2}",
        tk.TAG_DATASET: f"dataset{(i // 2) % 5}",
        tk.TAG_VARIANT: name,
        tk.TAG_SEED: str(i // 100),
        tk.TAG_STATUS: status,
        tk.TAG_CELL: f"cell{i}",
        tk.TAG_DEVICE: "cpu",
    }
    params = {"tav_weight": "None" if variant == 0 else "1.0", "lr": "0.002"}
    top1 = float(np.clip(0.5 + 0.004 * variant + 0.02 * rng.standard_normal(), 0.0, 1.0))
    final = {
        tk.M_TEST_TOP1: top1,
        tk.M_TEST_TOP5: min(1.0, top1 + 0.2),
        tk.M_TRAIN_SECONDS: 60.0,
        tk.M_PROMPT_PARAMS: 2.0,
        tk.M_BACKBONE_PARAMS: 1e6,
        tk.M_PROMPT_GFLOPS: 0.01,
        tk.M_BACKBONE_GFLOPS: 1.0,
    }
    epoch = {
        tk.M_VAL_TOP1: top1,
        tk.M_SLOPE: 12.0,
        tk.M_SHIFT: -0.1,
        tk.M_CLIPS_PER_S: 100.0,
        tk.M_PEAK_MEM_MB: 500.0,
    }
    if status != "finished":
        final = {}
    metrics = [
        dict(key=k, value=v, timestamp=now, step=EPOCHS, is_nan=False, run_uuid=run_id)
        for k, v in final.items()
    ]
    history = [
        dict(
            key=k, value=v * (s + 1) / EPOCHS, timestamp=now, step=s, is_nan=False, run_uuid=run_id
        )
        for s in range(EPOCHS)
        for k, v in epoch.items()
    ]
    run = dict(
        run_uuid=run_id,
        name=f"run{i}",
        source_type="LOCAL",
        source_name="",
        entry_point_name="",
        user_id="bench",
        status="FINISHED",
        start_time=now + 1000 * i - 500,
        end_time=now + 1000 * i,
        source_version="",
        lifecycle_stage="active",
        artifact_uri=f"bench/{run_id}",
        experiment_id=experiment_id,
    )
    return {
        "runs": [run],
        "tags": [dict(key=k, value=v, run_uuid=run_id) for k, v in tags.items()],
        "params": [dict(key=k, value=v, run_uuid=run_id) for k, v in params.items()],
        "metrics": metrics + history,
        "latest_metrics": metrics + history[-len(epoch) :],
    }


def log_synthetic_runs(
    *,
    tracking_uri: str,
    runs: int,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Bulk-write ``runs`` synthetic trial runs into a new SQLite MLflow store; experiment id."""
    import sqlalchemy as sa
    from mlflow import MlflowClient
    from mlflow.store.tracking.dbmodels import models

    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if not tracking_uri.startswith("sqlite:///"):
        raise ValueError(f"bulk logging needs a sqlite:/// tracking URI, got {tracking_uri!r}")
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(tk.DEFAULT_EXPERIMENT)
    tables = {
        "runs": models.SqlRun,
        "tags": models.SqlTag,
        "params": models.SqlParam,
        "metrics": models.SqlMetric,
        "latest_metrics": models.SqlLatestMetric,
    }
    rng, now = np.random.default_rng(seed), int(time.time() * 1000) - 1000 * runs
    engine = sa.create_engine(tracking_uri)
    for start in range(0, runs, CHUNK):
        batch: dict[str, list[Any]] = {name: [] for name in tables}
        for i in range(start, min(runs, start + CHUNK)):
            for name, rows in _run_rows(i, int(experiment_id), now, rng).items():
                batch[name].extend(rows)
        with engine.begin() as conn:
            for name, model in tables.items():
                conn.execute(sa.insert(model.__table__), batch[name])
        if progress is not None:
            progress(min(runs, start + CHUNK))
    engine.dispose()
    return experiment_id


def bench_report(
    *,
    runs: int = 10_000,
    keep: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReportBench:
    """Log ``runs`` synthetic runs to a temporary store, then time a cold and a warm report."""
    from mpbench.report.build import make_report

    tmp = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="mpbench-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{tmp.resolve()}/mlflow.db"
    try:
        start = time.perf_counter()
        log_synthetic_runs(tracking_uri=uri, runs=runs, progress=progress)
        log_s = time.perf_counter() - start
        results = tmp / "results"
        start = time.perf_counter()
        make_report(STUDY, tracking_uri=uri, results_dir=results)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        report = make_report(STUDY, tracking_uri=uri, results_dir=results)
        warm_s = time.perf_counter() - start
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return ReportBench(
        runs=runs, log_s=log_s, cold_s=cold_s, warm_s=warm_s, rows=len(report.summary)
    )
