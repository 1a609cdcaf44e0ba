"""The training engine: schedules, metrics, learning, determinism, resume, divergence, MLflow."""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.config import TrialConfig, load_trial_config, parse_assignments
from mpbench.engine import DivergenceError, run_trial
from mpbench.engine.metrics import ClassificationMeter
from mpbench.engine.schedule import lr_factor

SYNTH = {"classes": 4, "train_clips": 64, "val_clips": 32}
# metrics that measure the machine, not the training: they differ from run to run
TIMING = ("clips_per_s", "epoch_seconds", "peak_mem_mb", "data_wait_share", "data_wait_seconds",
          "step_seconds")  # fmt: skip


def tiny(tmp_path, **kw) -> TrialConfig:
    """A trial that runs in a few seconds on 2 CPU cores."""
    base = dict(
        backbone="x3d_xs",
        size="tiny",
        variant="learnable_tav",
        dataset="synth",
        dataset_options=SYNTH,
        frames=8,
        crop=32,
        epochs=2,
        batch_size=8,
        lr=3e-3,
        run_dir=str(tmp_path / "trial"),
        device="cpu",
    )
    base.update(kw)
    return TrialConfig(**base)


def test_lr_factor_warmup_cosine_and_step():
    kw = dict(total=100, warmup=10)
    assert lr_factor(0, schedule="cosine", **kw) == pytest.approx(0.1)
    assert lr_factor(9, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(10, schedule="cosine", **kw) == pytest.approx(1.0)
    assert lr_factor(55, schedule="cosine", **kw) == pytest.approx(0.5)
    assert lr_factor(100, schedule="cosine", **kw) == pytest.approx(0.0)
    step = dict(total=100, warmup=0, schedule="step", milestones=(0.5, 0.8), gamma=0.1)
    assert [lr_factor(s, **step) for s in (49, 50, 80)] == pytest.approx([1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        lr_factor(0, total=10, warmup=0, schedule="linear")


def test_meter_matches_hand_computation():
    logits = torch.tensor([[3.0, 1, 0, 2], [0, 2, 1, 3], [1, 0, 3, 2], [0, 1, 2, 3], [3, 2, 1, 0]])
    labels = torch.tensor([0, 1, 2, 2, 1])
    m = ClassificationMeter(num_classes=4)
    m.update(logits[:2], labels[:2], loss_sum=1.0)
    m.update(logits[2:], labels[2:], loss_sum=2.0)
    got = m.compute()
    assert got["top1"] == pytest.approx(2 / 5)  # rows 0 and 2 are right
    assert got["top5"] == pytest.approx(1.0)  # k = min(5, 4): every label is in the top 4
    # class 0: 1/1, class 1: 0/2, class 2: 1/2 (class 3 never occurs, left out)
    assert got["mean_class_acc"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert got["loss"] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="no samples were evaluated"):
        ClassificationMeter(num_classes=2).compute()


@pytest.mark.slow
def test_tiny_trial_learns(tmp_path):
    # the quickstart's setting (studies/quickstart.toml) cut to 240 of its 330 steps of batch 32
    # of the tiny X3D on 4 motion-only synthetic classes (about 100 s on 2 CPU cores)
    from mpbench.quickstart import QUICKSTART_DATA

    data = {k: v for k, v in QUICKSTART_DATA.items() if k != "preset"}
    cfg = tiny(
        tmp_path,
        variant="learnable",
        epochs=16,
        batch_size=32,
        lr=3e-3,
        warmup_epochs=1,
        weight_decay=0.0,
        channels_last=True,
        dataset_options={**data, "val_clips": 48, "test_clips": 48},
    )
    result = run_trial(cfg, experiment=None, progress=False)
    chance = 1 / 4
    assert result.metrics[tk.M_VAL_TOP1] >= chance + 0.15, result.history
    assert result.metrics[tk.M_TEST_TOP1] >= chance + 0.15
    assert len(result.history) == 16
    # the prompt learnt: its slope and shift moved, and the final metrics are the last epoch's
    for key in (tk.M_SLOPE, tk.M_SHIFT):
        first, last = result.history[0][key], result.history[-1][key]
        assert first != last and result.metrics[key] == last, key
    assert result.metrics[tk.M_CLIPS_PER_S] > 0 and result.metrics[tk.M_PEAK_MEM_MB] > 0


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(tmp_path):
    cfg = tiny(tmp_path, epochs=2, max_steps=6)
    a = run_trial(cfg, experiment=None, progress=False)
    b = run_trial(
        cfg.with_updates(run_dir=str(tmp_path / "again")), experiment=None, progress=False
    )
    strip = [{k: v for k, v in h.items() if k not in TIMING} for h in a.history]
    again = [{k: v for k, v in h.items() if k not in TIMING} for h in b.history]
    assert strip == again  # bit for bit
    c = run_trial(
        cfg.with_updates(seed=1, run_dir=str(tmp_path / "other")), experiment=None, progress=False
    )
    assert c.history[0][tk.M_TRAIN_LOSS] != a.history[0][tk.M_TRAIN_LOSS]


@pytest.mark.slow
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    cfg = tiny(tmp_path, epochs=3, max_steps=9)
    whole = run_trial(
        cfg.with_updates(run_dir=str(tmp_path / "whole")), experiment=None, progress=False
    )

    class Interrupt:
        def on_epoch_end(self, epoch, metrics):
            if epoch == 0:
                raise KeyboardInterrupt

    cut = cfg.with_updates(run_dir=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        run_trial(cut, callbacks=[Interrupt()], experiment=None, progress=False)
    resumed = run_trial(cut, experiment=None, progress=False)
    timing = TIMING

    def strip(d):
        return {k: v for k, v in d.items() if k not in timing}

    assert [strip(h) for h in resumed.history] == [strip(h) for h in whole.history]
    assert strip(resumed.metrics) == strip(whole.metrics)
    ckpt = torch.load(cut.trial_dir() / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["key"] == cut.key()


class _CodeOnLoad:
    """Pickles to a call of print: a checkpoint that runs code when unpickled."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_foreign_checkpoint_is_moved_aside_and_the_trial_starts_fresh(tmp_path, caplog):
    """Another cell's last.pt in a trial folder is renamed to last.pt.foreign-<time> with a
    warning naming both paths, and the trial runs from epoch 0 to the end (it used to fail
    for good with "use another run_dir"); a code-executing checkpoint is still refused."""
    few = {"classes": 4, "train_clips": 16, "val_clips": 8, "test_clips": 8}
    quick = dict(epochs=1, max_steps=1, dataset_options=few)
    other = run_trial(tiny(tmp_path, seed=1, **quick), experiment=None, progress=False)
    cfg = tiny(tmp_path, **{**quick, "epochs": 2, "max_steps": 2}, run_dir=str(tmp_path / "cell"))
    foreign = cfg.trial_dir() / "last.pt"
    foreign.parent.mkdir(parents=True)
    data = (other.config.trial_dir() / "last.pt").read_bytes()
    foreign.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="mpbench.trial"):
        result = run_trial(cfg, experiment=None, progress=False)
    assert len(result.history) == 2
    (aside,) = cfg.trial_dir().glob("last.pt.foreign-*")
    assert re.fullmatch(r"last\.pt\.foreign-\d{8}-\d{6}", aside.name)
    assert aside.read_bytes() == data
    ckpt = torch.load(foreign, weights_only=True)
    assert ckpt["key"] == cfg.key() and ckpt["epoch"] == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # only the checkpoint warnings: the data-wait warning of a tiny trial depends on the load
    assert [w for w in warned if "checkpoint" in w] == [
        f"checkpoint {foreign} belongs to trial {other.config.key()}, not {cfg.key()}: moved "
        f"aside to {aside}; trial {cfg.key()} starts fresh"
    ]
    unsafe = tiny(tmp_path, **quick, run_dir=str(tmp_path / "unsafe"))
    unsafe.trial_dir().mkdir()
    torch.save({"key": unsafe.key(), "obj": _CodeOnLoad()}, unsafe.trial_dir() / "last.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        run_trial(unsafe, experiment=None, progress=False)
    assert sorted(p.name for p in unsafe.trial_dir().glob("last.pt*")) == ["last.pt"]


def test_same_seed_pairs_variants_backbone_init_and_data(tmp_path):
    from mpbench.engine.build import build_model_for

    base = tiny(tmp_path)
    nets = [
        build_model_for(base.with_updates(variant=v), num_classes=4)
        for v in ("baseline", "learnable", "learnable_tav", "fixed")
    ]
    ref = nets[0].backbone.state_dict()
    for net in nets[1:]:
        for k, v in net.backbone.state_dict().items():
            assert torch.equal(v, ref[k]), k
    other = build_model_for(base.with_updates(seed=1), num_classes=4).backbone.state_dict()
    assert any(not torch.equal(v, ref[k]) for k, v in other.items())


def test_divergence_is_detected_with_epoch_and_step(tmp_path, mlflow_uri):
    cfg = tiny(tmp_path, optimizer="sgd", lr=1e30, schedule="constant", variant="baseline")
    with pytest.raises(DivergenceError, match=r"at epoch 0, step \d+") as info:
        run_trial(cfg, experiment="div", progress=False)
    assert info.value.epoch == 0 and info.value.step >= 0
    assert not math.isfinite(info.value.loss)
    from mlflow.tracking import MlflowClient

    run = MlflowClient(mlflow_uri).search_runs(
        [MlflowClient(mlflow_uri).get_experiment_by_name("div").experiment_id]
    )[0]
    assert run.info.status == "FAILED"
    assert run.data.tags[tk.TAG_STATUS] == tk.STATUS_DIVERGED
    assert "DivergenceError" in run.data.tags[tk.TAG_ERROR]


def test_mlflow_run_holds_params_metrics_tags_artifacts(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    cfg = tiny(tmp_path, epochs=2, max_steps=4)
    result = run_trial(cfg, experiment="demo", tags={tk.TAG_STUDY: "s1"}, progress=False)
    client = MlflowClient(mlflow_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags[tk.TAG_STATUS] == tk.STATUS_FINISHED and tags[tk.TAG_STUDY] == "s1"
    assert (
        tags[tk.TAG_VARIANT],
        tags[tk.TAG_BACKBONE],
        tags[tk.TAG_DATASET],
        tags[tk.TAG_SEED],
    ) == (
        "learnable_tav",
        "x3d_xs",
        "synth",
        "0",
    )
    assert tags[tk.TAG_CELL] == cfg.key() and tags[tk.TAG_VERSION] and tags[tk.TAG_GIT_COMMIT]
    assert run.data.params["lr"] == "0.003" and run.data.params["backbone"] == "x3d_xs"
    for key in tk.EPOCH_METRICS:
        history = client.get_metric_history(result.run_id, key)
        steps = [0, 1, 2] if key in tk.OVER_TRIAL_METRICS else [0, 1]  # 2: the whole trial
        assert [m.step for m in history] == steps, key
    for key in tk.FINAL_METRICS:
        assert key in run.data.metrics, key
    assert run.data.metrics[tk.M_PROMPT_PARAMS] == 2  # the paper's two scalars m, n
    assert run.data.metrics[tk.M_BACKBONE_GFLOPS] > 0
    arts = {a.path for a in client.list_artifacts(result.run_id)}
    arts |= {a.path for a in client.list_artifacts(result.run_id, "figures")}
    assert {tk.A_CONFIG, tk.A_LOG, tk.A_ATTENTION_CLIP, tk.A_CONFUSION, tk.A_ATTENTION} <= arts
    assert tk.A_PROVENANCE in arts and tags[tk.TAG_FRAMES] == "rendered"
    local = client.download_artifacts(result.run_id, tk.A_CONFIG, str(tmp_path))
    assert json.loads(Path(local).read_text())["variant"] == "learnable_tav"


def test_load_trial_config_errors_name_file_field_and_value(tmp_path):
    bad = tmp_path / "t.toml"
    bad.write_text('[trial]\nbackbone = "x3d_xs"\nepochs = 0\n')
    with pytest.raises(
        ValueError, match=r"t\.toml: \[epochs\] .*greater than or equal to 1.*got 0"
    ):
        load_trial_config(bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.toml does not exist"):
        load_trial_config(tmp_path / "missing.toml")
    assert parse_assignments(["lr=0.5", "variant=fixed", "dataset_options={classes=3}"]) == {
        "lr": 0.5,
        "variant": "fixed",
        "dataset_options": {"classes": 3},
    }
    with pytest.raises(ValueError, match="--set expects KEY=VALUE, got 'lr'"):
        parse_assignments(["lr"])


def test_train_cli_logs_a_run(tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    from mpbench.cli import app

    args = [
        "train",
        "--backbone",
        "x3d_xs",
        "--variant",
        "learnable",
        "--size",
        "tiny",
        "--epochs",
        "1",
        "--run-dir",
        str(tmp_path / "r"),
        "--set",
        "crop=32",
        "--set",
        "max_steps=2",
        "--set",
        "dataset_options={classes=3, train_clips=16, val_clips=8}",
        "--experiment",
        "cli",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "val top-1" in res.output and "clips/s" in res.output
    runs = MlflowClient(mlflow_uri).search_runs(
        [MlflowClient(mlflow_uri).get_experiment_by_name("cli").experiment_id]
    )
    assert len(runs) == 1 and runs[0].data.tags[tk.TAG_VARIANT] == "learnable"
    bad = CliRunner().invoke(app, ["train", "--set", "epochs=-1"])
    assert bad.exit_code == 2 and "[epochs]" in bad.output


def test_train_cli_unwritable_run_folder_is_one_paragraph_exit_2(tmp_path, mlflow_uri):
    """A trial folder that cannot be created (here under a regular file, since tests run as
    root) is one error naming the folder, exit 2, before any MLflow run or build."""
    from mpbench.cli import app

    (tmp_path / "afile").write_text("")
    folder = tmp_path / "afile" / "runs" / "x"
    res = CliRunner().invoke(app, ["train", "--run-dir", str(folder), "--set", "max_steps=1"])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(
        f"error: cannot write the trial folder {folder} (checkpoints and trial.log): "
        f"{tmp_path / 'afile'} is not a folder. Nothing was started: pass --run-dir"
    )
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_torchrun_two_processes_log_one_run(tmp_path, mlflow_uri):
    """DDP on CPU (gloo): one trial on 2 processes, one MLflow run, exact evaluation counts."""
    import os
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mpbench",
        "train",
        "--backbone",
        "x3d_xs",
        "--size",
        "tiny",
        "--variant",
        "learnable_tav",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--run-dir",
        str(tmp_path / "r"),
        "--set",
        "crop=32",
        "--set",
        "max_steps=2",
        "--set",
        "threads=1",
        "--set",
        "dataset_options={classes=3, train_clips=32, val_clips=9}",
        "--experiment",
        "ddp",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # rank 0 logs, rank 1 does not
    # 9 validation clips over 2 ranks (5 + 4, no padding): accuracy is a multiple of 1/9
    top1 = runs[0].data.metrics[tk.M_VAL_TOP1]
    assert abs(top1 * 9 - round(top1 * 9)) < 1e-9
    assert (tmp_path / "r" / "trial.rank1.log").is_file()


def test_shard_sampler_covers_each_clip_once():
    from mpbench.engine.build import ShardSampler

    shards = [list(ShardSampler(11, rank=r, world=3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))
    assert [len(s) for s in shards] == [4, 4, 3]


def test_param_groups_give_the_prompt_its_own_lr_and_no_decay(tmp_path):
    from mpbench.engine.build import build_model_for, build_optimizer

    cfg = tiny(tmp_path, optimizer="sgd", lr=0.1, prompt_lr_mult=10.0, weight_decay=1e-4)
    model = build_model_for(cfg, num_classes=4)
    opt = build_optimizer(model, cfg)
    prompt_ids = {id(p) for p in model.prompt.parameters()}
    (prompt_group,) = [g for g in opt.param_groups if {id(p) for p in g["params"]} <= prompt_ids]
    assert prompt_group["lr_mult"] == 10.0 and prompt_group["weight_decay"] == 0.0
    assert len(prompt_group["params"]) == 2  # m and n
    decayed = [g for g in opt.param_groups if g["weight_decay"] > 0]
    assert all(p.ndim > 1 for g in decayed for p in g["params"])  # no decay on norms and biases
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len([p for p in model.parameters() if p.requires_grad])


@pytest.mark.parametrize(
    "options",
    [
        {"amp": "bf16", "channels_last": True},
        {
            "optimizer": "sgd",
            "schedule": "step",
            "warmup_epochs": 0.5,
            "grad_clip": 1.0,
            "label_smoothing": 0.1,
        },
    ],
    ids=["bf16-channels-last", "sgd-step-clip-smoothing"],
)
def test_training_options_run_on_cpu(tmp_path, options):
    cfg = tiny(tmp_path, epochs=2, max_steps=4, **options)
    result = run_trial(cfg, experiment=None, progress=False)
    assert all(math.isfinite(h[tk.M_TRAIN_LOSS]) for h in result.history)
    lrs = [h[tk.M_LR] for h in result.history]
    if options.get("schedule") == "step":  # the lr of each epoch's last step (1 and 3) of 4;
        assert lrs == pytest.approx([cfg.lr, cfg.lr * 0.1])  # milestones at steps 2.4 and 3.4


def test_fp16_on_cpu_is_refused(tmp_path):
    with pytest.raises(ValueError, match="amp 'fp16' needs CUDA"):
        run_trial(tiny(tmp_path, amp="fp16"), experiment=None, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_trial_with_amp(tmp_path, amp):
    cfg = tiny(tmp_path, device="cuda", amp=amp, channels_last=True, epochs=2, max_steps=6)
    result = run_trial(cfg, experiment=None, progress=False)
    assert all(math.isfinite(h[tk.M_TRAIN_LOSS]) for h in result.history)
    assert result.metrics[tk.M_PEAK_MEM_MB] > 0
