"""The authors' MPII Cooking 2 recipe (studies/reference_mpii.toml) and the knobs it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpbench.config import TrialConfig
from mpbench.data.transforms import train_transform
from mpbench.engine.build import build_model_for, build_optimizer
from mpbench.engine.schedule import trial_lr_factor
from mpbench.study.dryrun import dry_run, shared_settings
from mpbench.study.spec import expand_grid, read_study

STUDY = Path(__file__).resolve().parents[1] / "studies" / "reference_mpii.toml"
# configs/MPII/VMPs.yaml of q1xiangchen/VMPs (with timesformer/config/defaults.py)
REFERENCE = {
    "backbone": "timesformer_k600",
    "size": "full",
    "pretrained": True,
    "dataset": "mpii_cooking2",
    "frames": 8,  # NUM_FRAMES 9 = T + 1
    "sampling_rate": 32,
    "crop": 224,
    "dataset_options": {"jitter_scales": [256, 320]},
    "optimizer": "sgd",
    "lr": 0.005,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-4,
    "param_groups": "single",
    "prompt_lr_mult": 1.0,
    "schedule": "epoch_steps",
    "step_epochs": (0, 11, 14),
    "step_lrs": (1, 0.1, 0.01),
    "warmup_epochs": 0.0,
    "epochs": 25,
    "dropout": 0.0,  # DROPOUT_RATE 0.5 is not read by the ViT, which sets drop_path_rate 0.1
    "drop_path": 0.1,
    "batch_size": 8,
    "test_clips": 1,
    "test_crops": 3,
    "tav_weight": 0.0,
    "amp": "none",
}


def _cells(tmp_path: Path) -> list[TrialConfig]:
    spec = read_study(STUDY, overrides={"data_root": str(tmp_path)})
    return expand_grid(spec)


def test_the_study_is_the_authors_recipe(tmp_path: Path) -> None:
    cells = _cells(tmp_path)
    reference = [c for c in cells if c.variant == "learnable" and c.seed == 0]
    assert len(reference) == 1 and reference[0].data_root == str(tmp_path)
    for field, value in REFERENCE.items():
        assert getattr(reference[0], field) == value, field
    assert {c.variant for c in cells} >= {"baseline", "learnable", "learnable_tav", "fixed_mpii"}
    assert sorted({c.seed for c in cells}) == [0, 1, 2] and len(cells) == 21
    for cell in cells:  # every cell is the recipe, but for the variant, its lambda and the seed
        same = {k: v for k, v in REFERENCE.items() if k != "tav_weight"}
        assert {k: getattr(cell, k) for k in same} == same
        assert cell.tav_weight == (1.0 if cell.variant == "learnable_tav" else 0.0)


def test_the_dry_run_lists_the_recipe(tmp_path: Path) -> None:
    spec = read_study(STUDY, overrides={"data_root": str(tmp_path)})
    shared = shared_settings(spec)
    assert shared["step_epochs"] == [0, 11, 14] and shared["param_groups"] == "single"
    assert "variant" not in shared and "seed" not in shared
    rows = dry_run(spec, str(tmp_path / "journal.log"), probe=False).rows
    assert len(rows) == 21 and {r["state"] for r in rows} == {"pending"}


def test_epoch_steps_schedule_is_steps_with_relative_lrs() -> None:
    cfg = TrialConfig(
        epochs=25, schedule="epoch_steps", step_epochs=(0, 11, 14), step_lrs=(1, 0.1, 0.01)
    )
    per_epoch = 10
    factors = {e: trial_lr_factor(cfg, e * per_epoch, steps_per_epoch=per_epoch) for e in range(25)}
    assert factors[0] == factors[10] == 1 and factors[11] == factors[13] == 0.1
    assert factors[14] == factors[24] == 0.01
    assert trial_lr_factor(cfg, 109, steps_per_epoch=per_epoch) == 1  # epoch 10.9


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"step_epochs": (0, 11)}, "belong to schedule 'epoch_steps'"),
        ({"schedule": "epoch_steps", "step_epochs": (0, 11), "step_lrs": (1,)}, "of one length"),
        ({"schedule": "epoch_steps", "step_epochs": (1,), "step_lrs": (1,)}, "start at 0"),
        ({"schedule": "epoch_steps", "step_epochs": (0, 9, 5), "step_lrs": (1, 1, 1)}, "increase"),
        ({"param_groups": "single", "prompt_lr_mult": 10.0}, "prompt_lr_mult must be 1.0"),
        ({"nesterov": True}, "nesterov is an SGD option"),
    ],
)
def test_recipe_fields_are_validated(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrialConfig(**changes)


def test_new_fields_at_their_defaults_keep_the_cell_keys() -> None:
    assert "nesterov" not in TrialConfig().semantic_dict()
    assert TrialConfig(optimizer="sgd", nesterov=True).key() != TrialConfig(optimizer="sgd").key()


def test_single_param_group_decays_everything_at_one_lr() -> None:
    cfg = TrialConfig(
        backbone="timesformer_k600", variant="learnable", optimizer="sgd", nesterov=True,
        weight_decay=1e-4, param_groups="single", frames=2, crop=32,
    )  # fmt: skip
    model = build_model_for(cfg, num_classes=3)
    opt = build_optimizer(model, cfg)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 1e-4
    assert opt.param_groups[0]["nesterov"] is True
    ids = {id(p) for p in opt.param_groups[0]["params"]}
    assert ids == {id(p) for p in model.parameters()} and id(model.prompt.m) in ids
    split = build_optimizer(model, cfg.with_updates(param_groups="split"))
    assert [g["weight_decay"] for g in split.param_groups] == [1e-4, 0.0, 0.0]


def test_timesformer_dropout_and_drop_path() -> None:
    cfg = TrialConfig(backbone="timesformer_k600", variant="baseline", frames=2, crop=32)
    net = build_model_for(cfg.with_updates(dropout=0.5, drop_path=0.1), num_classes=3).backbone
    layers = net.net.timesformer.encoder.layer
    assert [getattr(x.drop_path, "drop_prob", 0.0) for x in layers] == pytest.approx([0.0, 0.1])
    assert net.net.classifier.p == 0.5 and "classifier.weight" in net.net.state_dict()
    with pytest.raises(TypeError, match="x3d_xs takes no option 'drop_path'"):
        build_model_for(TrialConfig(drop_path=0.1), num_classes=3)


def test_jitter_scales_resize_the_short_side_then_crop() -> None:
    frames = torch.zeros(3, 40, 60, 3, dtype=torch.uint8)
    out = train_transform(crop=24, jitter=(28, 36))(frames)
    assert out.shape == (3, 3, 24, 24)
    with pytest.raises(ValueError, match="crop \\(24\\) <= min"):
        train_transform(crop=24, jitter=(16, 36))


def test_jitter_scales_option() -> None:
    from mpbench.data import build_data
    from mpbench.data.catalog import decode_short_side

    assert decode_short_side(None, 224, jitter=(256, 320)) == 320
    assert decode_short_side(None, 224) == 256
    kw = {"frames": 2, "sampling_rate": 1, "crop": 32, "seed": 0}
    bundle = build_data("synth", options={"jitter_scales": [32, 40]}, **kw)
    assert bundle.train[0][0].shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="drop the scale option"):
        build_data("synth", options={"jitter_scales": [32, 40], "scale": [0.5, 1]}, **kw)
    with pytest.raises(ValueError, match="jitter_scales must be"):
        build_data("synth", options={"jitter_scales": [40]}, **kw)


def _fake_mpii(root: Path) -> Path:
    """A tiny MPII Cooking 2 layout: train/val/test lists of real tiny videos."""
    from mpbench.data.sets._fake import write_video

    for split, count in (("train", 10), ("val", 2), ("test", 2)):
        lines = []
        for i in range(count):
            rel = f"s{8 + i % 4:02d}-d0{i % 3}-cam-002/{split}_{i:03d}.avi"
            write_video(root / "videos" / rel, seed=i)
            lines.append(f"{rel} {i % 2}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("offline", [False, True])
def test_grid_dry_run_lists_the_recipe(tmp_path: Path, offline: bool) -> None:
    """Online, weights that are not cached are no problem for a dry run (the run fetches them);
    offline they are the pre-flight's problem, with the command that fetches them."""
    import os
    import subprocess
    import sys

    data = _fake_mpii(tmp_path / "mpii")
    env = {k: v for k, v in os.environ.items() if k not in ("MPBENCH_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(PYTHONPATH=str(STUDY.parents[1]), HF_HOME=str(tmp_path / "hf"))
    env.update(TORCH_HOME=str(tmp_path / "torch"), **({"HF_HUB_OFFLINE": "1"} if offline else {}))
    cmd = [sys.executable, "-m", "mpbench", "grid", str(STUDY), "--dry-run", "--probe-steps", "0"]
    cmd += ["--set", f"data_root={data}", "--storage", str(tmp_path / "journal.log")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if offline:
        assert out.returncode == 2
        assert "mpbench weights fetch timesformer_k600" in out.stderr
        return
    assert out.returncode == 0, out.stderr
    assert "pre-flight ok: 21 cell(s), 1 dataset(s), 7 model(s)" in out.stdout
    for line in ('backbone = "timesformer_k600"', "step_epochs = [0.0, 11.0, 14.0]",
                 "step_lrs = [1.0, 0.1, 0.01]", 'param_groups = "single"', "nesterov = true",
                 "drop_path = 0.1", "test_crops = 3", "sampling_rate = 32",
                 'dataset_options = {"jitter_scales": [256, 320]}'):  # fmt: skip
        assert line in out.stdout
    assert "grid study reference_mpii: 21 trial configs" in out.stdout
