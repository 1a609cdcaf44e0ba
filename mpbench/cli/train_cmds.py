"""`mpbench train`: one trial from flags or a TOML file, logged to MLflow."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from mpbench.cli._apps import app, command, console


@command(app, "train")
def train(
    config: Annotated[Path | None, typer.Option(help="TOML file of TrialConfig fields.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone (mpbench list backbones).")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Prompt variant (mpbench list variants).")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset (mpbench list datasets).")] = None,
    data_root: Annotated[
        str | None, typer.Option(help="Dataset folder (synth: in memory if unset).")
    ] = None,
    size: Annotated[str | None, typer.Option(help="Backbone size: tiny or full.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (data order, init, augmentation).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    amp: Annotated[str | None, typer.Option(help="none, bf16 or fp16.")] = None,
    run_dir: Annotated[
        str | None, typer.Option(help="Checkpoint folder (default runs/<key>).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Any other field, KEY=VALUE (repeatable).")
    ] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "mpbench",
) -> None:
    """Train and evaluate one trial; log it to MLflow (MLFLOW_TRACKING_URI or ./mlflow.db)."""
    from mpbench import tracking as tk
    from mpbench.config import load_trial_config, parse_assignments
    from mpbench.engine import run_trial

    flags = dict(
        backbone=backbone,
        variant=variant,
        dataset=dataset,
        data_root=data_root,
        size=size,
        epochs=epochs,
        seed=seed,
        device=device,
        amp=amp,
        run_dir=run_dir,
    )
    given = {k: v for k, v in flags.items() if v is not None}
    cfg = load_trial_config(config, **{**parse_assignments(set_ or []), **given})
    check_trial_folder(cfg.trial_dir())
    with warnings_printed():
        result = run_trial(cfg, experiment=experiment)
    m = result.metrics
    console.print(
        f"[bold green]done[/] {cfg.variant} / {cfg.backbone} / {cfg.dataset} seed {cfg.seed}: "
        f"val top-1 {100 * m['val_top1']:.1f}%, test top-1 {100 * m['test_top1']:.1f}% "
        f"({cfg.test_clips}x{cfg.test_crops} views), {m['clips_per_s']:.1f} clips/s, "
        f"data wait {100 * m.get(tk.M_DATA_WAIT_SHARE, 0.0):.1f} % of the training loop, "
        f"{result.seconds:.1f} s"
    )
    console.print(f"MLflow run {result.run_id} in experiment {experiment!r}: `mlflow ui` to browse")


@contextlib.contextmanager
def warnings_printed() -> Iterator[None]:
    """mpbench's warnings (a loader that starves the device, a cache being built) printed on
    stderr while the block runs; they always go to the trial's log file too."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("mpbench")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def check_trial_folder(folder: Path) -> None:
    """ValueError (exit 2) naming ``folder`` when the trial's checkpoints and log cannot be
    written there, before anything is built or logged."""
    from mpbench.study.preflight import unwritable

    folder = folder.absolute()
    reason = unwritable(folder)
    if reason is not None:
        raise ValueError(
            f"cannot write the trial folder {folder} (checkpoints and trial.log): {reason}. "
            "Nothing was started: pass --run-dir with a folder you can write to, or run from "
            "one (the default trial folder is runs/<key> under the current folder)."
        )
