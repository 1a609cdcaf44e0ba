"""What a trial leaves behind: its MLflow run (params, metrics, tags, artifacts), its log file,
and the progress bar on the terminal."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpbench import __version__, _git
from mpbench import tracking as tk
from mpbench.config import TrialConfig
from mpbench.engine.distributed import DistContext

log = logging.getLogger("mpbench.trial")


def git_commit() -> str:
    """The commit of the mpbench checkout (``unknown`` outside a git checkout)."""
    return _git.git_commit() or "unknown"


def trial_tags(config: TrialConfig) -> dict[str, str]:
    """The tags every trial run carries (MLflow's source tags too: the runs table's Source)."""
    commit = git_commit()
    return {
        tk.TAG_CELL: config.key(),
        tk.TAG_VARIANT: config.variant,
        tk.TAG_BACKBONE: config.backbone,
        tk.TAG_DATASET: config.dataset,
        tk.TAG_SEED: str(config.seed),
        tk.TAG_VERSION: __version__,
        tk.TAG_GIT_COMMIT: commit,
        tk.TAG_SOURCE_NAME: tk.SOURCE_NAME,
        tk.TAG_SOURCE_TYPE: "LOCAL",
        tk.TAG_SOURCE_COMMIT: commit,
    }


SPLIT_CONTEXTS = {
    "train": tk.CONTEXT_TRAINING,
    "val": tk.CONTEXT_EVALUATION,
    "test": tk.CONTEXT_EVALUATION,
    "test_shift": tk.CONTEXT_EVALUATION,
}


def dataset_inputs(config: TrialConfig, data: Any) -> list[dict[str, Any]]:
    """The trial's dataset as one MLflow input per split (:meth:`mpbench.tracking.RunWriter.
    log_inputs`): ``<dataset>/<split>``, its source (the data root, or the in-memory synth's
    preset and seed), a content digest and the context (training or evaluation)."""
    root = data.info.get("root")
    facts = {
        k: v for k, v in data.info.items() if k != "root" and not k.startswith(("num_", "cache"))
    }
    if root is None:  # clips rendered in memory: a pure function of the knobs and the seed
        facts["seed"] = config.data_seed_value
        tags = {
            "mpbench.synth.preset": str(facts.get("preset")),
            "mpbench.synth.seed": str(config.data_seed_value),
        }
        source_type, source = tk.SOURCE_CODE, {"tags": tags}
    else:
        root = Path(root).expanduser().resolve()
        source_type, source = tk.SOURCE_LOCAL, {"uri": root.as_uri()}
    splits = {"train": data.train.source, "val": data.val.source, "test": data.test().source}
    shifted = data.test_shift()
    if shifted is not None:
        splits["test_shift"] = shifted.source
    return [
        {
            "name": f"{config.dataset}/{split}",
            "digest": split_digest(src, facts={**facts, "split": split}, root=root),
            "source_type": source_type,
            "source": source,
            "context": SPLIT_CONTEXTS[split],
            "profile": {"split": split, "videos": len(src), "classes": data.num_classes, **facts},
        }
        for split, src in splits.items()
    ]


def split_digest(source: Any, *, facts: dict[str, Any], root: Path | None) -> str:
    """12 hex digits of a hash of ``facts`` and, for files under ``root``, the sorted list of
    (path relative to root, label, size, mtime) of the split's videos: cheap, nothing decoded."""
    h = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode())
    if root is not None:
        lines = sorted(
            _file_line(source.describe(i), source.label(i), root) for i in range(len(source))
        )
        h.update("\n".join(lines).encode())
    return h.hexdigest()[:12]


def _file_line(path: str, label: int, root: Path) -> str:
    """``<path relative to root> <label> <size> <mtime s>`` of one video, tab-separated."""
    try:
        st = os.stat(path)
        stamp = f"{st.st_size}\t{int(st.st_mtime)}"
    except OSError:
        stamp = "missing"
    return f"{os.path.relpath(Path(path).resolve(), root)}\t{label}\t{stamp}"


class TrialRecorder:
    """Context manager around one trial: log file, MLflow run, status on success or failure.

    Args:
        config: the trial.
        experiment: MLflow experiment, or None to log nothing to MLflow (the log file stays).
        tags: extra tags (study, cell, Optuna trial number ...).
        run_id: continue this MLflow run instead of starting a new one.

    Example:
        >>> with TrialRecorder(TrialConfig(), experiment=None) as rec:  # doctest: +SKIP
        ...     rec.log_epoch(0, {"val_top1": 0.5})
    """

    def __init__(
        self,
        config: TrialConfig,
        *,
        experiment: str | None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.config, self.experiment = config, experiment
        self.tags = {**trial_tags(config), tk.TAG_KIND: "train", **(tags or {})}
        self.run_id = run_id
        self.writer: tk.RunWriter | None = None
        rank = DistContext.from_env().rank  # torchrun: one log file per process
        self.log_path = config.trial_dir() / (tk.A_LOG if rank == 0 else f"trial.rank{rank}.log")
        self.seconds = 0.0
        self._handler: logging.Handler | None = None
        self._level = logging.NOTSET  # the mpbench logger's level before the trial
        self._t0 = 0.0
        self._warned_wait = False  # the data-wait warning is given once per trial

    @property
    def active(self) -> bool:
        """Whether the trial is logged to an MLflow run (not on other ranks, not offline)."""
        return self.writer is not None

    def __enter__(self) -> TrialRecorder:
        self._t0 = time.perf_counter()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.FileHandler(self.log_path)
        self._handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root = logging.getLogger("mpbench")
        root.addHandler(self._handler)
        self._level = root.level
        root.setLevel(logging.INFO)
        if self.experiment is not None:
            self.writer = tk.RunWriter(
                experiment=self.experiment,
                run_id=self.run_id,
                run_name=tk.run_name(self.config),
                tags=self.tags,
            )
            self.run_id = self.writer.run_id
        log.info("trial %s: %s", self.config.key(), self.config.model_dump_json())
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.seconds = time.perf_counter() - self._t0
        status = tk.STATUS_FINISHED if exc is None else tk.status_of(exc)
        if exc is not None:
            log.error(
                "trial %s %s: %s\n%s",
                self.config.key(),
                status,
                exc,
                "".join(traceback.format_exception(exc_type, exc, tb)),
            )
        root = logging.getLogger("mpbench")
        root.removeHandler(self._handler)  # type: ignore[arg-type]
        root.setLevel(self._level)
        self._handler.close()  # type: ignore[union-attr]
        if self.writer is not None:
            self.writer.log_artifact(str(self.log_path))
            self.writer.finish(
                status, error=None if exc is None else f"{type(exc).__name__}: {exc}"
            )
        return False

    def log_start(
        self,
        *,
        inputs: list[dict[str, Any]],
        device: str,
        cost: dict[str, float],
        provenance: dict[str, Any] | None = None,
    ) -> None:
        """Params, the resolved config, the dataset ``inputs`` (:func:`dataset_inputs`), the
        ``device`` name, the model's ``cost`` (:func:`model_cost`) and the frames'
        ``provenance`` (:func:`mpbench.data.provenance.data_provenance`: tags and a file)."""
        if self.writer is None:
            return
        self.writer.log_params(self.config.flat_params())
        self.writer.log_inputs(inputs)
        self.writer.set_tags({tk.TAG_DEVICE: device, **provenance_tags(provenance or {})})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / tk.A_CONFIG
            path.write_text(self.config.model_dump_json(indent=2))
            self.writer.log_artifact(str(path))
            if provenance is not None:
                path = Path(tmp) / tk.A_PROVENANCE
                path.write_text(json.dumps(provenance, indent=2, sort_keys=True, default=str))
                self.writer.log_artifact(str(path))
        self.writer.log_metrics(cost, step=0)

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Per-epoch metrics at step = epoch (NaN values, e.g. the baseline's slope, skipped);
        the first epoch whose loop waited on the loader too long is warned of."""
        log.info("epoch %d: %s", epoch, json.dumps({k: round(v, 5) for k, v in metrics.items()}))
        share = metrics.get(tk.M_DATA_WAIT_SHARE, 0.0)
        if share > tk.DATA_WAIT_LIMIT and not self._warned_wait:
            self._warned_wait = True
            log.warning(data_wait_warning(self.config, epoch=epoch, share=share))
        if self.writer is not None:
            finite = {k: v for k, v in metrics.items() if not math.isnan(v)}
            self.writer.log_metrics(finite, step=epoch)

    def log_final(
        self,
        metrics: dict[str, float],
        *,
        confusion: np.ndarray | None,
        class_names: list[str],
        clip: dict[str, np.ndarray] | None,
    ) -> None:
        """Final metrics, the test ``confusion`` matrix (K x K counts) as a figure, and one
        validation ``clip``'s attention arrays (:func:`mpbench.engine.figures.validation_strip`)
        as data and as a figure."""
        if self.writer is None:
            return
        keys = (
            tk.M_TEST_TOP1,
            tk.M_TEST_TOP5,
            tk.M_TEST_MCA,
            *tk.SHIFT_METRICS,
            *tk.OVER_TRIAL_METRICS,
        )
        final = {k: metrics[k] for k in keys if k in metrics}
        final[tk.M_TRAIN_SECONDS] = time.perf_counter() - self._t0
        self.writer.log_metrics(final, step=self.config.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            files = write_figures(
                Path(tmp), confusion=confusion, class_names=class_names, clip=clip
            )
            for name, path in files.items():
                folder = str(Path(name).parent)
                self.writer.log_artifact(str(path), None if folder == "." else folder)


def provenance_tags(provenance: dict[str, Any]) -> dict[str, str]:
    """The tags of a provenance record: its fields that are set, and the cache's build id."""
    tags = {
        tag: str(provenance[field])
        for field, tag in tk.PROVENANCE_TAGS.items()
        if provenance.get(field) is not None
    }
    if provenance.get("cache"):
        tags[tk.TAG_CACHE_BUILD] = str(provenance["cache"].get("build_id"))
    return tags


def data_wait_warning(config: TrialConfig, *, epoch: int, share: float) -> str:
    """The warning of a training loop that spent ``share`` of epoch ``epoch`` waiting for data,
    naming the fixes with the trial's current values."""
    from mpbench.data.catalog import decode_short_side

    opts = dict(config.dataset_options)
    fixes = [f"more DataLoader workers (workers = {config.workers} now)"]
    if config.dataset == "synth" and config.data_root is None:
        fixes.append("clips written once (`mpbench data synth ROOT`, data_root) and cache = true")
    else:
        if opts.get("cache") in (None, False):
            fixes.append("the decoded-clip cache (dataset option cache = true)")
        side = decode_short_side(opts.get("short_side"), config.crop)
        fixes.append(f"a smaller short side (dataset option short_side, {side} now, >= crop)")
    return (
        f"trial {config.key()} epoch {epoch}: the training loop waited for data "
        f"{100 * share:.0f} % of its time (data_wait_share {share:.3f} > "
        f"{tk.DATA_WAIT_LIMIT:g}), so the device sat idle; try " + ", ".join(fixes)
    )


def device_name(device: torch.device) -> str:
    """A readable device name for the tags (the GPU model on CUDA)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def prompt_flops(*, frames_in: int, height: int, width: int, has_prompt: bool) -> float:
    """Analytical FLOPs of the prompt layer per clip (FlopCounterMode counts only matmuls/convs).

    Per pixel: grey with folded normalisation (6 per input frame), difference (1), modified sigmoid
    (sub, mul, exp, add, reciprocal: 5), prompt product (3 channels) per output frame.
    """
    if not has_prompt:
        return 0.0
    t = frames_in - 1
    return float(height * width * (6 * frames_in + 9 * t))


def model_cost(
    module: torch.nn.Module, *, frames: int, crop: int, device: torch.device
) -> dict[str, float]:
    """Parameters of prompt and backbone of ``module`` (a PromptedVideoModel, unwrapped) and
    their forward GFLOPs for one clip of T=``frames`` x ``crop``^2."""
    from torch.utils.flop_counter import FlopCounterMode

    from mpbench.prompt import NoPrompt

    prompt_params = sum(p.numel() for p in module.prompt.parameters())
    backbone_params = sum(p.numel() for p in module.parameters()) - prompt_params
    x = torch.zeros(1, 3, frames + 1, crop, crop, device=device)
    counter = FlopCounterMode(display=False)
    was_training = module.training
    module.eval()
    with torch.no_grad(), counter:
        module(x)
    module.train(was_training)
    p_flops = prompt_flops(
        frames_in=frames + 1,
        height=crop,
        width=crop,
        has_prompt=not isinstance(module.prompt, NoPrompt),
    )
    return {
        tk.M_PROMPT_PARAMS: float(prompt_params),
        tk.M_BACKBONE_PARAMS: float(backbone_params),
        tk.M_PROMPT_GFLOPS: p_flops / 1e9,
        tk.M_BACKBONE_GFLOPS: counter.get_total_flops() / 1e9,
    }


def write_figures(
    out: Path,
    *,
    confusion: np.ndarray | None,
    class_names: list[str],
    clip: dict[str, np.ndarray] | None,
) -> dict[str, Path]:
    """Write the confusion figure, the attention clip's arrays and its figure into ``out``;
    artifact name -> file (a figure without its data is left out)."""
    from mpbench.plots import plot_attention_strip, plot_confusion, save_figure

    files: dict[str, Path] = {}
    if confusion is not None:
        fig = plot_confusion(confusion, class_names)
        files[tk.A_CONFUSION] = save_figure(fig, out / tk.A_CONFUSION, dpi=120, tight=True)
    if clip is not None:
        files[tk.A_ATTENTION_CLIP] = out / tk.A_ATTENTION_CLIP
        np.savez_compressed(files[tk.A_ATTENTION_CLIP], **clip)
        fig = plot_attention_strip(clip)
        files[tk.A_ATTENTION] = save_figure(fig, out / tk.A_ATTENTION, dpi=120, tight=True)
    return files


class _Bar:
    """The epoch/step progress bar of one trial (rich), or a silent stand-in."""

    def __init__(self, progress: Any, task: Any) -> None:
        self.progress, self.task = progress, task

    def step(self, loss: float) -> None:
        """Show the running loss."""
        if self.progress is not None:
            self.progress.update(self.task, loss=f"{loss:.3f}")

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        """Advance one epoch and show its validation accuracy."""
        if self.progress is not None:
            self.progress.update(
                self.task, advance=1, epoch=epoch + 1, acc=f"{100 * metrics[tk.M_VAL_TOP1]:.1f}%"
            )


@contextlib.contextmanager
def epoch_progress(config: TrialConfig, *, enabled: bool, start: int) -> Iterator[_Bar]:
    """A rich progress bar over the trial's epochs showing loss and validation accuracy."""
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val top-1 {task.fields[acc]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(
            f"{config.variant} / {config.backbone}",
            total=config.epochs,
            completed=start,
            epoch=start,
            loss="-",
            acc="-",
        )
        yield _Bar(progress, task)
