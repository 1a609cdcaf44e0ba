"""run_trial: one training run from a TrialConfig to logged metrics (readable top to bottom)."""

from __future__ import annotations

import itertools
import logging
import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mpbench import tracking as tk
from mpbench.config import TrialConfig
from mpbench.data.provenance import data_provenance
from mpbench.engine.build import (
    Loaders,
    autocast_factory,
    build_data_for,
    build_loaders,
    build_model_for,
    build_optimizer,
    make_loader,
    resolve_device,
)
from mpbench.engine.distributed import DistContext
from mpbench.engine.errors import DivergenceError
from mpbench.engine.figures import validation_strip
from mpbench.engine.logging import (
    TrialRecorder,
    dataset_inputs,
    device_name,
    epoch_progress,
    model_cost,
)
from mpbench.engine.metrics import ClassificationMeter
from mpbench.engine.schedule import trial_lr_factor
from mpbench.engine.state import (
    CHECKPOINT,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    torch_settings,
)
from mpbench.engine.step import LoopClock, grad_scaler, train_step, trial_rates, wait_share

__all__ = ["Callback", "DivergenceError", "TrialResult", "run_trial"]

log = logging.getLogger("mpbench.trial")


class Callback(Protocol):
    """Called after every epoch; may raise optuna.TrialPruned to stop the trial."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


@dataclass
class TrialResult:
    """What a finished trial returns: final metrics, the per-epoch history and its MLflow run."""

    config: TrialConfig
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: str | None = None
    seconds: float = 0.0


@dataclass
class Trainer:
    """The live objects of one trial (built by :func:`_setup`)."""

    config: TrialConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loaders: Loaders
    device: torch.device
    autocast: Any
    dist: DistContext
    data: Any  # the DataBundle (its .test() builds the multi-view set)
    step: int = 0

    @property
    def module(self) -> nn.Module:
        """The model without its DDP / compile wrappers."""
        m = self.model
        m = getattr(m, "module", m)
        return getattr(m, "_orig_mod", m)


def run_trial(
    config: TrialConfig,
    *,
    callbacks: Sequence[Callback] = (),
    experiment: str | None = tk.DEFAULT_EXPERIMENT,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
    progress: bool = True,
) -> TrialResult:
    """Train and evaluate one trial; log it to MLflow experiment ``experiment`` (None: no logging).

    Resumes from the last checkpoint in ``config.trial_dir()`` when one exists; ``run_id``
    continues an existing MLflow run (a retried trial keeps one run per cell). The process's
    torch settings (threads, cudnn, TF32) and the ``mpbench`` logger level are restored after.
    """
    dist_ctx = DistContext.from_env()
    recorder = TrialRecorder(
        config, experiment=experiment if dist_ctx.is_main else None, tags=tags, run_id=run_id
    )
    with recorder:  # a device that is not there is a failed run too
        device = resolve_device(config.device, dist_ctx)
        cuda = device.type == "cuda"
        with torch_settings(
            threads=config.threads, cuda=cuda, cudnn_benchmark=config.cudnn_benchmark
        ):
            trainer = _setup(config, dist_ctx, device)
            _log_start(trainer, recorder)
            history = _fit(trainer, callbacks=callbacks, recorder=recorder, progress=progress)
            metrics, confusion = _final_evaluation(trainer, history)
            _log_final(trainer, recorder, metrics, confusion)
    dist_ctx.close()
    return TrialResult(
        config=config,
        metrics=metrics,
        history=history,
        run_id=recorder.run_id,
        seconds=recorder.seconds,
    )


def _setup(config: TrialConfig, dist_ctx: DistContext, device: torch.device) -> Trainer:
    """Seed, then build data, model, optimiser and loaders on the trial's device."""
    dist_ctx.init(device)
    seed_everything(config.data_seed_value)  # augmentation; the weights: build_model_for
    data = build_data_for(config)
    model = build_model_for(config, num_classes=data.num_classes, mean=data.mean, std=data.std).to(
        device
    )
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = build_optimizer(model, config)
    if dist_ctx.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        model = torch.compile(model)
    return Trainer(
        config=config,
        model=model,
        optimizer=optimizer,
        scaler=grad_scaler(config.amp, device),
        loaders=build_loaders(data, config, dist_ctx=dist_ctx, device=device),
        device=device,
        autocast=autocast_factory(config.amp, device),
        dist=dist_ctx,
        data=data,
    )


def _log_start(trainer: Trainer, recorder: TrialRecorder) -> None:
    """Log the trial's dataset, device, model cost and where its frames come from."""
    cfg = trainer.config
    recorder.log_start(
        inputs=dataset_inputs(cfg, trainer.data),
        device=device_name(trainer.device),
        cost=model_cost(trainer.module, frames=cfg.frames, crop=cfg.crop, device=trainer.device),
        provenance=data_provenance(trainer.data) if recorder.active else None,
    )


def _log_final(
    trainer: Trainer, recorder: TrialRecorder, metrics: dict[str, float], confusion: torch.Tensor
) -> None:
    """Log the final metrics, the test confusion matrix and validation clip 0's attention."""
    if not recorder.active:
        return
    val, item = trainer.data.val, trainer.data.val[0]  # the model input of validation clip 0
    clip = None
    if item is not None:
        clip = validation_strip(
            trainer.module.prompt, item[0], mean=val.mean, std=val.std, device=trainer.device
        )
    recorder.log_final(
        metrics, confusion=confusion.numpy(), class_names=trainer.data.class_names, clip=clip
    )


def _fit(
    trainer: Trainer, *, callbacks: Sequence[Callback], recorder: TrialRecorder, progress: bool
) -> list[dict[str, float]]:
    """Train epoch by epoch from the last checkpoint; evaluate, log and checkpoint each epoch."""
    cfg = trainer.config
    history, start = _resume(trainer)
    with epoch_progress(cfg, enabled=progress and trainer.dist.is_main, start=start) as bar:
        for epoch in range(start, cfg.epochs):
            t0 = time.perf_counter()
            train = _train_epoch(trainer, epoch, on_step=bar.step)
            val, _ = evaluate(trainer, trainer.loaders.val)
            metrics = _epoch_metrics(trainer, train, val, seconds=time.perf_counter() - t0)
            history.append(metrics)
            recorder.log_epoch(epoch, metrics)
            _save(trainer, epoch, history)
            bar.epoch_done(epoch, metrics)
            for cb in callbacks:
                cb.on_epoch_end(epoch, metrics)
    return history


def _train_epoch(trainer: Trainer, epoch: int, *, on_step: Any) -> dict[str, float]:
    """One pass over the training loader (truncated to the step budget), timing how long the
    loop waits for each batch against its step (:class:`LoopClock`)."""
    cfg, model = trainer.config, trainer.model
    trainer.loaders.set_epoch(epoch, cfg.data_seed_value)
    model.train()
    window: list[torch.Tensor] = []  # per-step (ce, reg) on device: checked every log_every steps
    sums, steps, clips = torch.zeros(2, device=trainer.device), 0, 0
    clock = LoopClock(trainer.device)
    for batch in itertools.islice(trainer.loaders.train, trainer.loaders.steps_per_epoch):
        if batch["label"].numel() == 0:  # every clip of the batch failed to decode
            continue
        x = batch["video"].to(trainer.device, non_blocking=True)  # B x 3 x (T+1) x H x W
        y = batch["label"].to(trainer.device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        clock.lap("data")  # since the last step ended: the loop waited for this batch
        _set_lr(trainer)
        losses = train_step(
            model,
            x,
            y,
            optimizer=trainer.optimizer,
            scaler=trainer.scaler,
            autocast=trainer.autocast,
            label_smoothing=cfg.label_smoothing,
            grad_clip=cfg.grad_clip,
        )
        window.append(losses)  # (ce, reg), on device
        trainer.step, steps, clips = trainer.step + 1, steps + 1, clips + len(y)
        if len(window) == cfg.log_every:
            sums += _check_finite(window, epoch=epoch, last_step=trainer.step - 1)
            on_step(float(window[-1][0]))
            window = []
        clock.lap("step")
    if window:
        sums += _check_finite(window, epoch=epoch, last_step=trainer.step - 1)
        on_step(float(window[-1][0]))
    clock.lap("step")
    n = max(1, steps)
    return {
        "train_loss": float(sums[0]) / n,
        "tav_loss": float(sums[1]) / n,
        "clips_per_s": clips * trainer.dist.world_size / clock.total,
        "data_s": clock.seconds["data"],
        "step_s": clock.seconds["step"],
    }


def _set_lr(trainer: Trainer) -> None:
    """Set every parameter group's learning rate for the trainer's current step."""
    cfg, per_epoch = trainer.config, trainer.loaders.steps_per_epoch
    factor = trial_lr_factor(cfg, trainer.step, steps_per_epoch=per_epoch)
    for group in trainer.optimizer.param_groups:
        group["lr"] = cfg.lr * factor * group["lr_mult"]


def _check_finite(window: list[torch.Tensor], *, epoch: int, last_step: int) -> torch.Tensor:
    """Sum of the window's losses; DivergenceError names the first non-finite step."""
    losses = torch.stack(window)  # steps x 2 (ce, reg)
    finite = torch.isfinite(losses).all(dim=1)
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0])
        bad = float(losses[first].sum())
        raise DivergenceError(epoch=epoch, step=last_step - len(window) + 1 + first, loss=bad)
    return losses.sum(dim=0)


@torch.no_grad()
def evaluate(
    trainer: Trainer, loader: Any, *, views: bool = False
) -> tuple[dict[str, float], torch.Tensor]:
    """top1/top5/mean-class accuracy and loss over ``loader``, and its K x K confusion matrix
    (true class by row); with ``views``, logits are the mean softmax over the V views of each
    clip (B x V x 3 x (T+1) x H x W batches)."""
    model = trainer.model
    model.eval()
    meter = ClassificationMeter(num_classes=trainer.data.num_classes)
    for batch in loader:
        if batch["label"].numel() == 0:
            continue
        x = batch["video"].to(trainer.device, non_blocking=True)
        y = batch["label"].to(trainer.device, non_blocking=True)
        with trainer.autocast():
            if views:
                b, v = x.shape[:2]
                logits = model(x.flatten(0, 1)).logits.float().view(b, v, -1)
                probs = logits.softmax(-1).mean(1)
                logits = probs.clamp_min(1e-12).log()
            else:
                logits = model(x).logits.float()
        meter.update(logits, y, loss_sum=float(F.cross_entropy(logits, y, reduction="sum")))
    if trainer.dist.enabled:
        meter.load_state(trainer.dist.all_sum(meter.state()))
    return meter.compute(), meter.confusion


def _epoch_metrics(
    trainer: Trainer, train: dict[str, float], val: dict[str, float], *, seconds: float
) -> dict[str, float]:
    """The per-epoch metric dict under the keys of mpbench.tracking."""
    prompt = trainer.module.prompt
    return {
        tk.M_TRAIN_LOSS: train["train_loss"],
        tk.M_TAV_LOSS: train["tav_loss"],
        tk.M_VAL_TOP1: val["top1"],
        tk.M_VAL_TOP5: val["top5"],
        tk.M_VAL_MCA: val["mean_class_acc"],
        tk.M_VAL_LOSS: val["loss"],
        tk.M_SLOPE: getattr(prompt, "slope", math.nan),  # nan for the baseline (no prompt)
        tk.M_SHIFT: getattr(prompt, "shift", math.nan),
        tk.M_CLIPS_PER_S: train["clips_per_s"],
        tk.M_PEAK_MEM_MB: peak_memory_mb(trainer.device),
        tk.M_SKIPPED: float(sum(trainer.data.skipped().values())),  # distinct broken videos
        tk.M_LR: trainer.optimizer.param_groups[0]["lr"],
        tk.M_EPOCH_SECONDS: seconds,
        tk.M_DATA_WAIT_SHARE: wait_share(train["data_s"], train["step_s"]),
        tk.M_DATA_WAIT_SECONDS: train["data_s"],
        tk.M_STEP_SECONDS: train["step_s"],
    }


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA memory allocated on ``device``, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _final_evaluation(
    trainer: Trainer, history: list[dict[str, float]]
) -> tuple[dict[str, float], torch.Tensor]:
    """Multi-view test metrics (test_clips x test_crops, and on test_shift when the dataset has
    one) plus the last epoch's metrics, and the test confusion matrix."""
    cfg = trainer.config
    loader = _test_loader(trainer)
    test, confusion = evaluate(trainer, loader, views=True)
    shifted = _test_loader(trainer, split="test_shift")
    metrics = {**history[-1], **trial_rates(history)} if history else {}
    metrics.update(
        {
            tk.M_TEST_TOP1: test["top1"],
            tk.M_TEST_TOP5: test["top5"],
            tk.M_TEST_MCA: test["mean_class_acc"],
        }
    )
    if shifted is not None:
        shift, _ = evaluate(trainer, shifted, views=True)
        metrics[tk.M_TEST_SHIFT_TOP1] = shift["top1"]
        metrics[tk.M_TEST_SHIFT_TOP5] = shift["top5"]
        metrics[tk.M_TEST_SHIFT_MCA] = shift["mean_class_acc"]
    log.info(
        "trial %s finished: test top-1 %.4f over %d views",
        cfg.key(),
        test["top1"],
        cfg.test_clips * cfg.test_crops,
    )
    return metrics, confusion


def _test_loader(trainer: Trainer, *, split: str = "test") -> Any:
    """A loader over the multi-view test (or test_shift) set of the trial's dataset; None for a
    test_shift the dataset does not have."""
    cfg = trainer.config
    build = trainer.data.test if split == "test" else trainer.data.test_shift
    test_set = build(num_clips=cfg.test_clips, num_crops=cfg.test_crops)
    if test_set is None:
        return None
    return make_loader(test_set, cfg, train=False, dist_ctx=trainer.dist, device=trainer.device)


def _save(trainer: Trainer, epoch: int, history: list[dict[str, float]]) -> None:
    """Checkpoint everything needed to resume after ``epoch`` (rank 0 only)."""
    if not trainer.dist.is_main:
        return
    payload = {
        "epoch": epoch,
        "step": trainer.step,
        "model": trainer.module.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "rng": rng_state(),
        "history": history,
        "key": trainer.config.key(),
    }
    save_checkpoint(trainer.config.trial_dir() / CHECKPOINT, payload)


def _resume(trainer: Trainer) -> tuple[list[dict[str, float]], int]:
    """Load the trial's last checkpoint if present: (history so far, first epoch to run). A
    checkpoint of another trial is moved aside and the trial starts fresh."""
    path = trainer.config.trial_dir() / CHECKPOINT
    ckpt = load_checkpoint(path)  # weights only: a code-executing file is refused, not moved
    if ckpt is None:
        return [], 0
    if not isinstance(ckpt, dict) or ckpt.get("key") != trainer.config.key():
        if trainer.dist.is_main:  # one rank renames; every rank starts fresh
            owner = ckpt.get("key") if isinstance(ckpt, dict) else None
            _move_aside(path, owner, trainer.config)
        return [], 0
    trainer.module.load_state_dict(ckpt["model"])
    trainer.optimizer.load_state_dict(ckpt["optimizer"])
    trainer.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    trainer.step = ckpt["step"]
    log.info("resumed trial %s after epoch %d", trainer.config.key(), ckpt["epoch"])
    return list(ckpt["history"]), ckpt["epoch"] + 1


def _move_aside(path: Path, owner: Any, config: TrialConfig) -> Path:
    """Rename the checkpoint of another trial at ``path`` to ``<name>.foreign-<time>`` in the
    same folder (kept, never overwritten) with a warning naming both paths."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.foreign-{stamp}")
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{path.name}.foreign-{stamp}-{n}"), n + 1
    os.replace(path, aside)
    log.warning(
        "checkpoint %s belongs to trial %s, not %s: moved aside to %s; trial %s starts fresh",
        path,
        owner if owner is not None else "(unknown)",
        config.key(),
        aside,
        config.key(),
    )
    return aside
