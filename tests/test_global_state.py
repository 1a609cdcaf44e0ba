"""A trial or a command leaves no process-wide state behind: torch's threads, cudnn and TF32
flags, the ``mpbench`` logger level, the environment."""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
import pytest
import torch

from mpbench import tracking as tk
from mpbench.config import TrialConfig
from mpbench.engine import DivergenceError, run_trial
from mpbench.engine.state import torch_settings
from mpbench.report.build import _PROGRESS_ENV, _best_run_clip, _no_download_bar


def _flags() -> dict[str, object]:
    return {
        "threads": torch.get_num_threads(),
        "benchmark": torch.backends.cudnn.benchmark,
        "deterministic": torch.backends.cudnn.deterministic,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "level": logging.getLogger("mpbench").level,
    }


@pytest.fixture
def odd_settings():
    """Process settings a trial would not choose; the originals are put back afterwards."""
    before = _flags()
    torch.set_num_threads(2)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    logging.getLogger("mpbench").setLevel(logging.WARNING)
    yield _flags()
    torch.set_num_threads(before["threads"])
    torch.backends.cudnn.benchmark = before["benchmark"]
    torch.backends.cuda.matmul.allow_tf32 = before["matmul_tf32"]
    torch.backends.cudnn.allow_tf32 = before["cudnn_tf32"]
    logging.getLogger("mpbench").setLevel(before["level"])


class _Spy:
    """Records the settings in force during the trial."""

    def __init__(self) -> None:
        self.during: dict[str, object] = {}

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.during = _flags()


def _tiny(tmp_path, **kw) -> TrialConfig:
    base = dict(
        backbone="x3d_xs", size="tiny", variant="learnable", dataset="synth", frames=4, crop=32,
        dataset_options={"classes": 4, "train_clips": 8, "val_clips": 4}, epochs=1, max_steps=2,
        batch_size=4, device="cpu", threads=1, run_dir=str(tmp_path / "trial"),
    )  # fmt: skip
    return TrialConfig(**{**base, **kw})


def test_a_trial_restores_threads_flags_and_logger_level(tmp_path, odd_settings) -> None:
    spy = _Spy()
    run_trial(_tiny(tmp_path), callbacks=[spy], experiment=None, progress=False)
    assert spy.during["threads"] == 1 and spy.during["level"] == logging.INFO
    assert _flags() == odd_settings


def test_a_failed_trial_restores_them_too(tmp_path, odd_settings) -> None:
    cfg = _tiny(tmp_path, optimizer="sgd", lr=1e30, schedule="constant", variant="baseline")
    with pytest.raises(DivergenceError):
        run_trial(cfg, experiment=None, progress=False)
    assert _flags() == odd_settings


def test_torch_settings_set_the_cuda_flags_and_restore_them(odd_settings) -> None:
    settings = torch_settings(threads=1, cuda=True, cudnn_benchmark=True)
    with pytest.raises(RuntimeError, match="boom"), settings:
        assert torch.get_num_threads() == 1 and torch.backends.cudnn.benchmark
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        raise RuntimeError("boom")
    assert _flags() == odd_settings


def test_reading_the_attention_clip_leaves_the_environment_alone(tmp_path, mlflow_uri) -> None:
    import mlflow

    np.savez(tmp_path / "attention_clip.npz", frames=np.zeros((2, 4, 4, 3)))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "attention_clip.npz"))
    runs = pd.DataFrame({"run_id": [run.info.run_id], "status": [tk.STATUS_FINISHED]})
    before = dict(os.environ)
    clip = _best_run_clip(runs, tk.M_TEST_TOP1, mlflow_uri)
    assert clip is not None and clip["frames"].shape == (2, 4, 4, 3)
    assert dict(os.environ) == before


def test_the_download_bar_switch_is_scoped_and_keeps_a_users_choice(monkeypatch) -> None:
    monkeypatch.delenv(_PROGRESS_ENV, raising=False)
    with _no_download_bar():
        assert os.environ[_PROGRESS_ENV] == "false"
    assert _PROGRESS_ENV not in os.environ
    monkeypatch.setenv(_PROGRESS_ENV, "true")
    with _no_download_bar():
        assert os.environ[_PROGRESS_ENV] == "true"
    assert os.environ[_PROGRESS_ENV] == "true"
