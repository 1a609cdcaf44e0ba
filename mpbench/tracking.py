"""The MLflow layout of mpbench, defined once: tag names, metric keys, artifact paths.

Every module that writes or reads MLflow runs uses these names; reports are computed from MLflow
alone. mlflow itself is imported inside functions only.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple

DEFAULT_EXPERIMENT: Final = "mpbench"

# --- tags (strings on every trial run) ---------------------------------------------------------
TAG_STUDY: Final = "mpbench.study"  # study name, absent for a lone `mpbench train`
TAG_CELL: Final = "mpbench.cell"  # TrialConfig.key() of the trial
TAG_VARIANT: Final = "mpbench.variant"
TAG_BACKBONE: Final = "mpbench.backbone"
TAG_DATASET: Final = "mpbench.dataset"
TAG_SEED: Final = "mpbench.seed"
TAG_OPTUNA_TRIAL: Final = "mpbench.optuna_trial"  # Optuna trial number
TAG_KIND: Final = "mpbench.kind"  # "grid", "search" or "train"
TAG_STATUS: Final = "mpbench.status"  # "finished", "failed", "diverged", "pruned"
TAG_ERROR: Final = "mpbench.error"  # one-line error text of a failed trial
TAG_GIT_COMMIT: Final = "mpbench.git_commit"
TAG_VERSION: Final = "mpbench.version"
TAG_DESIGN: Final = "mpbench.design"  # JSON of a sequential grid's design (looks, alpha, ...)
TAG_DEVICE: Final = "mpbench.device"  # e.g. "cpu", "NVIDIA H100 80GB HBM3"
# How the run's frames were made (mpbench.data.provenance; the whole record: A_PROVENANCE)
TAG_FRAMES: Final = "mpbench.frames"  # one of the three values below (cache: decoded-clip cache)
FRAMES_DECODED, FRAMES_CACHED, FRAMES_RENDERED = "decoded", "cache", "rendered"
TAG_DECODER: Final = "mpbench.decoder"  # e.g. "pyav 18.1.0 (mpbench decoder 2)"
TAG_FFMPEG: Final = "mpbench.ffmpeg"  # the FFmpeg libraries PyAV links, "libavcodec 62.28.102, ..."
TAG_SHORT_SIDE: Final = "mpbench.short_side"  # pixels the short side is scaled down to
TAG_RESIZE: Final = "mpbench.resize"  # the scaler
TAG_CACHE_BUILD: Final = "mpbench.cache_build"  # build id of the cache that served the clips
TAG_FRAMES_DIGEST: Final = "mpbench.frames_digest"  # SHA-256 of the first validation clips' frames
# provenance record field -> its tag
PROVENANCE_TAGS: Final = {
    "frames": TAG_FRAMES,
    "decoder": TAG_DECODER,
    "ffmpeg": TAG_FFMPEG,
    "short_side": TAG_SHORT_SIDE,
    "resize": TAG_RESIZE,
    "frames_digest": TAG_FRAMES_DIGEST,
}

# MLflow's own tags, filled so that the runs table's Source column names mpbench
TAG_SOURCE_NAME: Final = "mlflow.source.name"  # "mpbench"
TAG_SOURCE_TYPE: Final = "mlflow.source.type"  # "LOCAL"
TAG_SOURCE_COMMIT: Final = "mlflow.source.git.commit"
SOURCE_NAME: Final = "mpbench"
ERROR_TAG_CHARS: Final = 4000  # the first line of a failed run's error, cut to this
PARAM_CHARS: Final = 6000  # MLflow's limit on a param value


class TrialStatus(StrEnum):
    """Every status a trial (Optuna attribute) or its run (MLflow tag) carries, and a worker's
    outcome of a claimed trial."""

    FINISHED = "finished"
    FAILED = "failed"
    DIVERGED = "diverged"  # a NaN/inf loss (DivergenceError)
    PRUNED = "pruned"
    INTERRUPTED = "interrupted"  # stopped by a signal, an outage or a takeover: run again later
    LOST = "lost"  # no heartbeat within the grace period: another worker took the cell over
    OUTAGE = "outage"  # stopped by a storage/tracking outage longer than the outage timeout
    SPURIOUS = "spurious"  # a trial ask() created although the grid queue / budget was spent
    DUPLICATE = "duplicate"  # a second trial for a cell that already has one running or complete


STATUS_FINISHED: Final = TrialStatus.FINISHED
STATUS_FAILED: Final = TrialStatus.FAILED
STATUS_DIVERGED: Final = TrialStatus.DIVERGED
STATUS_PRUNED: Final = TrialStatus.PRUNED
STATUS_INTERRUPTED: Final = TrialStatus.INTERRUPTED
STATUS_LOST: Final = TrialStatus.LOST


def status_of(exc: BaseException) -> TrialStatus:
    """The status of a trial that raised ``exc``: the one its class declares (``trial_status``:
    DivergenceError diverged; OutageError and a takeover interrupted, the cell runs again and
    continues its run), pruned for Optuna's TrialPruned, interrupted for a signal, else failed."""
    declared = getattr(type(exc), "trial_status", None)
    if declared is not None:
        return TrialStatus(declared)
    if type(exc).__name__ == "TrialPruned":
        return TrialStatus.PRUNED
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, SIGTERM, a preempted job: resumed later
        return TrialStatus.INTERRUPTED
    return TrialStatus.FAILED


# --- per-epoch metrics (step = epoch index, starting at 0) --------------------------------------
M_TRAIN_LOSS: Final = "train_loss"  # cross-entropy part, mean over the epoch
M_TAV_LOSS: Final = "tav_loss"  # prompt regulariser part (already multiplied by lambda)
M_VAL_TOP1: Final = "val_top1"  # fractions in [0, 1]
M_VAL_TOP5: Final = "val_top5"
M_VAL_MCA: Final = "val_mean_class_acc"
M_VAL_LOSS: Final = "val_loss"
M_SLOPE: Final = "slope"  # the prompt's current a
M_SHIFT: Final = "shift"  # the prompt's current b
M_CLIPS_PER_S: Final = "clips_per_s"  # training throughput of the epoch
M_PEAK_MEM_MB: Final = "peak_mem_mb"  # CUDA max allocated, or process max RSS on CPU
M_SKIPPED: Final = "skipped_videos"  # cumulative count of videos that failed to decode
M_LR: Final = "lr"
M_EPOCH_SECONDS: Final = "epoch_seconds"  # wall time of the epoch (training + validation)
# The training loop's wall time split in two (CUDA synchronised): waiting for the loader (from
# asking for the next batch until it is on the device) and the step; the share is wait / both.
# Also logged at step = number of epochs over the whole trial (OVER_TRIAL_METRICS).
M_DATA_WAIT_SHARE: Final = "data_wait_share"  # in [0, 1]; above DATA_WAIT_LIMIT: a warning
M_DATA_WAIT_SECONDS: Final = "data_wait_seconds"
M_STEP_SECONDS: Final = "step_seconds"
DATA_WAIT_LIMIT: Final = 0.10

# per-epoch metrics logged again at step = number of epochs, over the whole trial
OVER_TRIAL_METRICS: Final = (M_DATA_WAIT_SHARE, M_CLIPS_PER_S)

# --- final metrics (logged once, step = number of epochs) ---------------------------------------
M_TEST_TOP1: Final = "test_top1"  # multi-view evaluation (test_clips x test_crops)
M_TEST_TOP5: Final = "test_top5"
M_TEST_MCA: Final = "test_mean_class_acc"
# the same on the appearance-shifted test split, when the dataset has one (never chooses models)
M_TEST_SHIFT_TOP1: Final = "test_shift_top1"
M_TEST_SHIFT_TOP5: Final = "test_shift_top5"
M_TEST_SHIFT_MCA: Final = "test_shift_mean_class_acc"
SHIFT_METRICS: Final = (M_TEST_SHIFT_TOP1, M_TEST_SHIFT_TOP5, M_TEST_SHIFT_MCA)
M_TRAIN_SECONDS: Final = "train_seconds"  # wall time of the whole trial
M_PROMPT_PARAMS: Final = "prompt_params"
M_BACKBONE_PARAMS: Final = "backbone_params"
M_PROMPT_GFLOPS: Final = "prompt_gflops"  # per clip, forward
M_BACKBONE_GFLOPS: Final = "backbone_gflops"


class Metric(NamedTuple):
    """One metric a trial logs: its key, the split it is measured on (train, val, test, none),
    whether it is logged every epoch (else once, at the end), which way is better (higher,
    lower, none), its unit and its display name."""

    key: str
    split: str
    per_epoch: bool
    direction: Literal["higher", "lower", "none"]
    unit: str  # "fraction" (shown as %), "share", "count", "s", "clips/s", "MB", "GFLOPs", ""
    label: str


def _accuracies(split: str, per_epoch: bool, top1: str, top5: str, mca: str) -> list[Metric]:
    """The top-1, top-5 and mean class accuracy of ``split`` (fractions, higher is better)."""
    labels = {top1: "top-1", top5: "top-5", mca: "mean class accuracy"}
    return [Metric(k, split, per_epoch, "higher", "fraction", lab) for k, lab in labels.items()]


def _unsplit(
    key: str, per_epoch: bool, direction: Literal["higher", "lower", "none"], unit: str = ""
) -> Metric:
    """A metric of no split, shown under its key."""
    return Metric(key, "none", per_epoch, direction, unit, key)


# The one table of metrics: every list below, the report's directions, units and labels and the
# study file's checks are read from it.
METRICS: Final = {
    m.key: m
    for m in (
        Metric(M_TRAIN_LOSS, "train", True, "lower", "", "loss"),
        Metric(M_TAV_LOSS, "train", True, "lower", "", "TAV loss"),
        *_accuracies("val", True, M_VAL_TOP1, M_VAL_TOP5, M_VAL_MCA),
        Metric(M_VAL_LOSS, "val", True, "lower", "", "loss"),
        _unsplit(M_SLOPE, True, "none"),
        _unsplit(M_SHIFT, True, "none"),
        _unsplit(M_CLIPS_PER_S, True, "higher", "clips/s"),
        _unsplit(M_PEAK_MEM_MB, True, "lower", "MB"),
        _unsplit(M_SKIPPED, True, "lower", "count"),
        _unsplit(M_LR, True, "none"),
        _unsplit(M_EPOCH_SECONDS, True, "lower", "s"),
        _unsplit(M_DATA_WAIT_SHARE, True, "lower", "share"),
        _unsplit(M_DATA_WAIT_SECONDS, True, "lower", "s"),
        _unsplit(M_STEP_SECONDS, True, "lower", "s"),
        *_accuracies("test", False, M_TEST_TOP1, M_TEST_TOP5, M_TEST_MCA),
        *_accuracies("test_shift", False, M_TEST_SHIFT_TOP1, M_TEST_SHIFT_TOP5, M_TEST_SHIFT_MCA),
        _unsplit(M_TRAIN_SECONDS, False, "lower", "s"),
        _unsplit(M_PROMPT_PARAMS, False, "lower", "count"),
        _unsplit(M_BACKBONE_PARAMS, False, "lower", "count"),
        _unsplit(M_PROMPT_GFLOPS, False, "lower", "GFLOPs"),
        _unsplit(M_BACKBONE_GFLOPS, False, "lower", "GFLOPs"),
    )
}
EPOCH_METRICS: Final = tuple(k for k, m in METRICS.items() if m.per_epoch)
FINAL_METRICS: Final = tuple(k for k, m in METRICS.items() if not m.per_epoch)


def metric(key: str) -> Metric:
    """The table entry of ``key``; an unknown key is a ValueError naming the known ones."""
    try:
        return METRICS[key]
    except KeyError:
        from mpbench._files import unknown_message

        raise ValueError(unknown_message(f"metric {key!r}", key, list(METRICS))) from None


# --- dataset inputs (one per split: the runs table's Dataset column) ----------------------------
DATASET_CONTEXT: Final = "mlflow.data.context"  # the input tag MLflow shows next to the dataset
CONTEXT_TRAINING: Final = "training"  # the train split
CONTEXT_EVALUATION: Final = "evaluation"  # the val and test splits
SOURCE_LOCAL: Final = "local"  # a dataset folder: source {"uri": "file:///..."}
SOURCE_CODE: Final = "code"  # clips rendered in memory: source {"tags": {preset, seed, ...}}

# --- artifacts -----------------------------------------------------------------------------------
A_CONFIG: Final = "config.json"  # the resolved TrialConfig
A_LOG: Final = "trial.log"  # the trial's log output
A_CONFUSION: Final = "figures/confusion_matrix.png"
A_ATTENTION: Final = "figures/attention.png"
A_ATTENTION_CLIP: Final = "attention_clip.npz"  # frames, diffs, attention, prompts of one val clip
A_PROVENANCE: Final = "provenance.json"  # how the frames were made, the cache header included


def run_name(config: object) -> str:
    """The display name of a trial's run: ``<variant>-<backbone>-<dataset>-s<seed>``."""
    c = config
    return f"{c.variant}-{c.backbone}-{c.dataset}-s{c.seed}"  # type: ignore[attr-defined]


def tracking_uri() -> str | None:
    """MLFLOW_TRACKING_URI if set, else None (MLflow's default: sqlite:///mlflow.db)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or None


# --- writing (used by the engine; MlflowClient, so that no global active run is involved) --------


def mlflow_client() -> Any:
    """An MlflowClient on :func:`tracking_uri` whose calls wait out outages of the store (a
    locked sqlite file, an unreachable server: :mod:`mpbench.outage`)."""
    from mlflow.tracking import MlflowClient

    from mpbench.outage import Retrying

    return Retrying(MlflowClient(tracking_uri()), what="MLflow")


def get_or_create_experiment(name: str) -> str:
    """The id of experiment ``name``, created if missing (tolerates a concurrent creation)."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another process created it between our look-up and create
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class RunWriter:
    """Writes one trial's MLflow run: params, per-epoch and final metrics, tags, artifacts.

    Args:
        experiment: experiment name (created if missing).
        run_id: an existing run to continue (a resumed trial), or None for a new run.
        run_name: display name of a new run.
        tags: tags set on the run at start.

    Example:
        >>> w = RunWriter(experiment="demo", tags={TAG_SEED: "0"})  # doctest: +SKIP
        >>> w.log_metrics({M_VAL_TOP1: 0.5}, step=0); w.finish(STATUS_FINISHED)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        experiment: str,
        run_id: str | None = None,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.client = mlflow_client()
        if run_id is None:
            exp_id = get_or_create_experiment(experiment)
            run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        self.set_tags(tags or {})

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set string tags on the run."""
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params: dict[str, str]) -> None:
        """Log params once (a resumed run already has them: skipped if present)."""
        from mlflow.entities import Param

        have = self.client.get_run(self.run_id).data.params
        new = [Param(k, v[:PARAM_CHARS]) for k, v in params.items() if k not in have]
        for i in range(0, len(new), 100):
            self.client.log_batch(self.run_id, params=new[i : i + 100])

    def log_inputs(self, datasets: list[dict[str, Any]]) -> int:
        """Log dataset inputs, each a dict with ``name``, ``digest``, ``source_type``, ``source``
        (a dict), ``context`` and ``profile`` (a dict); one already on the run (same name, digest
        and context: a resumed trial) is skipped. Returns how many were logged."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        have = {
            (i.dataset.name, i.dataset.digest, _context(i.tags))
            for i in self.client.get_run(self.run_id).inputs.dataset_inputs
        }
        new = [
            DatasetInput(
                Dataset(
                    name=d["name"],
                    digest=d["digest"],
                    source_type=d["source_type"],
                    source=json.dumps(d["source"], sort_keys=True),
                    profile=json.dumps(d["profile"], sort_keys=True, default=str),
                ),
                tags=[InputTag(DATASET_CONTEXT, d["context"])],
            )
            for d in datasets
            if (d["name"], d["digest"], d["context"]) not in have
        ]
        if new:
            _log_inputs(self.client, self.run_id, new)
        return len(new)

    def log_metrics(self, metrics: dict[str, float], *, step: int) -> None:
        """Log a dict of metrics at ``step`` in one batch."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        """Upload a local file into the run's artifacts (under ``artifact_path``)."""
        self.client.log_artifact(self.run_id, path, artifact_path)

    def finish(self, status: str, error: str | None = None) -> None:
        """Tag the mpbench status (and error) and end the run as FINISHED or FAILED."""
        tags = {TAG_STATUS: status}
        if error:
            tags[TAG_ERROR] = error.splitlines()[0][:ERROR_TAG_CHARS] if error.strip() else error
        self.set_tags(tags)
        self.client.set_terminated(self.run_id, status=mlflow_status(status))


def mlflow_status(status: str) -> str:
    """MLflow's run status for an mpbench status: FINISHED, KILLED (interrupted) or FAILED."""
    if status in (STATUS_FINISHED, STATUS_PRUNED):
        return "FINISHED"
    return "KILLED" if status == STATUS_INTERRUPTED else "FAILED"


def close_run(run_id: str, status: str, error: str | None = None) -> bool:
    """End run ``run_id`` with ``status`` if it is still RUNNING (a trial that ended before its
    recorder could, or whose worker died); whether it was. Best effort: an unreachable store is
    logged, not raised."""
    import logging

    try:
        client = mlflow_client()
        if client.get_run(run_id).info.status != "RUNNING":
            return False
        error_tag = {TAG_ERROR: error.splitlines()[0][:ERROR_TAG_CHARS]} if error else {}
        tags = {TAG_STATUS: status, **error_tag}
        for k, v in tags.items():
            client.set_tag(run_id, k, v)
        client.set_terminated(run_id, status=mlflow_status(status))
    except Exception as exc:
        logging.getLogger("mpbench.tracking").warning(
            "could not end MLflow run %s: %s: %s", run_id, type(exc).__name__, exc
        )
        return False
    return True


def _log_inputs(client: Any, run_id: str, inputs: list[Any], *, attempts: int = 5) -> None:
    """Log dataset inputs, tolerating the race of workers that log the same dataset at once:
    MLflow creates a dataset row per (experiment, name, digest) without a lock, so the loser of
    the race gets a unique-constraint error and succeeds on the next try, which finds the row.
    Inputs are metadata: if they cannot be logged the trial goes on (a warning)."""
    import logging
    import time

    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except Exception as exc:
            if "unique" not in str(exc).lower():
                raise
            if attempt == attempts - 1:
                logging.getLogger("mpbench.tracking").warning(
                    "dataset inputs of run %s not logged: %s", run_id, str(exc).splitlines()[0]
                )
                return
            time.sleep(0.2 * (attempt + 1))


def _context(tags: list[Any]) -> str | None:
    """The ``mlflow.data.context`` value among a dataset input's tags."""
    return next((t.value for t in tags if t.key == DATASET_CONTEXT), None)


def close_orphan_runs(
    experiment: str, study: str, *, keep_cells: set[str], failed_cells: set[str]
) -> list[str]:
    """End the runs of ``study`` still RUNNING in MLflow whose cell is not in ``keep_cells``
    (the cells with a RUNNING trial): runs whose worker died. FAILED for ``failed_cells``,
    else interrupted (KILLED: the cell is enqueued again and its retry resumes the run). The
    run ids ended; best effort, like :func:`close_run`."""
    try:
        client = mlflow_client()
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return []
        runs = client.search_runs(
            [exp.experiment_id],
            f"tags.`{TAG_STUDY}` = '{study}' and attributes.status = 'RUNNING'",
        )
    except Exception as exc:
        import logging

        logging.getLogger("mpbench.tracking").warning("could not look for open runs: %s", exc)
        return []
    ended = []
    for run in runs:
        if run.data.tags.get(TAG_CELL) in keep_cells:
            continue
        cell = run.data.tags.get(TAG_CELL)
        status = STATUS_FAILED if cell in failed_cells else STATUS_INTERRUPTED
        if close_run(run.info.run_id, status, "its worker stopped before the trial ended"):
            ended.append(run.info.run_id)
    return ended
