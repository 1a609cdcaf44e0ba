"""The authors' MPII Cooking 2 recipe (studies/reference_mpii.toml) and the knobs it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpbench.config import TrialConfig
from mpbench.data.transforms import train_transform
from mpbench.engine.build import build_model_for, build_optimizer
from mpbench.engine.schedule import trial_lr_factor
from mpbench.study.spec import expand_grid, read_study
from mpbench.study.dryrun import dry_run, shared_settings

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
        ({"schedule": "epoch_steps", "step_epochs": (0, 30), "step_lrs": (1, 0.1)}, "below"),
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
