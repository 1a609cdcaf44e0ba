"""Synthetic studies with known numbers, logged to a real MLflow store (for report tests)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from mpbench import tracking as tk

# test_top1 per (dataset, variant) by seed: the numbers the hand computations use
ABLATION: dict[tuple[str, str], list[float]] = {
    ("synth", "baseline"): [0.50, 0.52, 0.48, 0.51],
    ("synth", "learnable_tav"): [0.56, 0.55, 0.53, 0.58],
    ("synth", "gamma"): [0.49, 0.53, 0.50, 0.50],
    ("synth_b", "baseline"): [0.30, 0.32, 0.31],
    ("synth_b", "learnable_tav"): [0.35, 0.33, 0.36],
}
SLOPE = {"baseline": None, "learnable_tav": 12.0, "gamma": 20.0}
SHIFT = {"baseline": None, "learnable_tav": -0.1, "gamma": 0.2}
EPOCHS = 3


def make_client(tmp: Path) -> tuple[MlflowClient, str]:
    """A client on a fresh SQLite store in ``tmp``; returns (client, tracking URI)."""
    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    client.create_experiment(tk.DEFAULT_EXPERIMENT, artifact_location=str(tmp / "artifacts"))
    return client, uri


def log_run(
    client: MlflowClient,
    *,
    study: str,
    variant: str,
    dataset: str,
    seed: int,
    status: str = tk.STATUS_FINISHED,
    final: float | None = None,
    backbone: str = "x3d_xs",
    kind: str = "grid",
    params: dict[str, str] | None = None,
    slope: float | None = None,
    shift: float | None = None,
    trial: int | None = None,
    clip: dict[str, np.ndarray] | None = None,
    extra_tags: dict[str, str] | None = None,
) -> str:
    """Log one trial run the way the engine does (tags, params, epochs, final metrics)."""
    exp = client.get_experiment_by_name(tk.DEFAULT_EXPERIMENT).experiment_id
    tags = {
        tk.TAG_STUDY: study,
        tk.TAG_VARIANT: variant,
        tk.TAG_DATASET: dataset,
        tk.TAG_BACKBONE: backbone,
        tk.TAG_SEED: str(seed),
        tk.TAG_KIND: kind,
        tk.TAG_STATUS: status,
        tk.TAG_CELL: f"{variant}-{dataset}-{seed}",
        tk.TAG_DEVICE: "cpu",
    }
    if trial is not None:
        tags[tk.TAG_OPTUNA_TRIAL] = str(trial)
    tags |= extra_tags or {}
    run_id = client.create_run(exp, tags=tags).info.run_id
    metrics = []
    for epoch in range(EPOCHS):
        metrics.append(Metric(tk.M_VAL_TOP1, 0.2 + 0.1 * epoch + 0.01 * seed, 0, epoch))
        metrics.append(Metric(tk.M_TRAIN_LOSS, 2.0 - 0.5 * epoch, 0, epoch))
        metrics.append(Metric(tk.M_CLIPS_PER_S, 100.0, 0, epoch))
        metrics.append(Metric(tk.M_PEAK_MEM_MB, 500.0, 0, epoch))
        if slope is not None and shift is not None:
            metrics.append(Metric(tk.M_SLOPE, slope + epoch - (EPOCHS - 1), 0, epoch))
            metrics.append(Metric(tk.M_SHIFT, shift, 0, epoch))
    if final is not None:
        prompt = 0.0 if variant == "baseline" else 2.0
        for key, value in (
            (tk.M_TEST_TOP1, final),
            (tk.M_TRAIN_SECONDS, 1800.0),
            (tk.M_PROMPT_PARAMS, prompt),
            (tk.M_BACKBONE_PARAMS, 1000.0),
            (tk.M_PROMPT_GFLOPS, prompt / 100),
            (tk.M_BACKBONE_GFLOPS, 4.0),
        ):
            metrics.append(Metric(key, value, 0, EPOCHS))
    all_params = {"variant": variant, "seed": str(seed), **(params or {})}
    client.log_batch(
        run_id,
        metrics=metrics,
        params=[Param(k, v) for k, v in all_params.items()],
        tags=[RunTag("mlflow.runName", f"{variant}-{seed}")],
    )
    if clip is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / tk.A_ATTENTION_CLIP
            np.savez(path, **clip)
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED" if status == tk.STATUS_FINISHED else "FAILED")
    return run_id


def make_clip(t: int = 4, size: int = 8) -> dict[str, np.ndarray]:
    """A small attention clip with the artifact's array layout."""
    rng = np.random.default_rng(0)
    frames = rng.random((t + 1, size, size, 3))
    grey = frames @ np.array([0.299, 0.587, 0.114])
    diffs = grey[1:] - grey[:-1]
    attention = 1.0 / (1.0 + np.exp(-10.0 * diffs))
    return {
        "frames": frames,
        "diffs": diffs,
        "attention": attention,
        "prompts": attention[..., None] * frames[1:],
    }


def log_ablation(client: MlflowClient, *, study: str = "demo") -> dict[str, Any]:
    """The ablation study of ABLATION plus a failed, a pruned and a diverged trial."""
    ids = []
    for (dataset, variant), values in ABLATION.items():
        weight = "None" if variant == "baseline" else "1.0"
        for seed, value in enumerate(values):
            clip = (
                make_clip() if (dataset, variant, seed) == ("synth", "learnable_tav", 0) else None
            )
            ids.append(
                log_run(
                    client,
                    study=study,
                    variant=variant,
                    dataset=dataset,
                    seed=seed,
                    final=value,
                    params={"tav_weight": weight},
                    slope=SLOPE[variant],
                    shift=SHIFT[variant],
                    clip=clip,
                )
            )
    # not finished: must be counted, never averaged (the failed one even logged a test_top1)
    log_run(
        client,
        study=study,
        variant="learnable_tav",
        dataset="synth",
        seed=4,
        status=tk.STATUS_FAILED,
        final=0.99,
        params={"tav_weight": "1.0"},
    )
    log_run(
        client,
        study=study,
        variant="gamma",
        dataset="synth",
        seed=4,
        status=tk.STATUS_PRUNED,
        params={"tav_weight": "1.0"},
    )
    log_run(
        client,
        study=study,
        variant="baseline",
        dataset="synth",
        seed=5,
        status=tk.STATUS_DIVERGED,
        params={"tav_weight": "None"},
    )
    return {"run_ids": ids}


def log_sweep(client: MlflowClient, *, study: str = "sweep") -> None:
    """A lambda sweep: learnable_tav at three tav_weight values x two seeds, plus baselines."""
    for seed in range(2):
        log_run(
            client,
            study=study,
            variant="baseline",
            dataset="synth",
            seed=seed,
            final=0.5,
            params={"tav_weight": "None"},
        )
        for k, weight in enumerate((0.0, 0.5, 1.0)):
            log_run(
                client,
                study=study,
                variant="learnable_tav",
                dataset="synth",
                seed=seed,
                final=0.5 + 0.02 * k + 0.01 * seed,
                params={"tav_weight": str(weight)},
                slope=10.0 + k,
                shift=-0.1 * k,
            )


def log_search(client: MlflowClient, *, study: str = "search") -> None:
    """A search of six trials over lr (matters) and optimizer (does not)."""
    for trial in range(6):
        lr = 10.0 ** (-4 + trial % 3)
        log_run(
            client,
            study=study,
            variant="learnable_tav",
            dataset="synth",
            seed=0,
            kind="search",
            trial=trial,
            final=0.4 + 0.05 * (trial % 3),
            params={
                "tav_weight": "1.0",
                "lr": str(lr),
                "optimizer": "adamw" if trial < 3 else "sgd",
            },
            slope=10.0,
            shift=0.0,
        )
