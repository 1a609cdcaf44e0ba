"""Issue 24: files that keep the motion-only property, the test_shift split, nuisance ladders,
the HOG / orientation probes and the static / shuffled controls with their certificate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data import build_data
from mpbench.data.probe import hog_features, orient_features, probe_clips, probe_ladders
from mpbench.data.synth import (
    LADDERS,
    preset_spec,
    render_clip,
    write_mp4,
    write_synth_dataset,
)

runner = CliRunner()


def _files(root: Path, **options: object) -> object:
    """build_data on synth files at ``root`` (4 + 1 frames at 32 px)."""
    return build_data(
        "synth", root=root, frames=4, sampling_rate=1, crop=32, seed=0, options=options
    )


TOY = {"classes": 4, "train_clips": 8, "val_clips": 4, "test_clips": 4, "video_frames": 6}


def _frames_of(path: Path) -> tuple[np.ndarray, list[bool]]:
    import av

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return np.stack([f.to_ndarray(format="rgb24") for f in frames]), [f.key_frame for f in frames]


def test_written_frames_are_intra_coded_and_depend_on_their_own_frame_only(tmp_path: Path) -> None:
    """Frame k of two clips that share only frame k decodes to the same pixels: no motion of
    the other frames can reach a single decoded frame (the leak of inter-coded files)."""
    spec = preset_spec("easy", size=32, video_frames=6)
    a, _ = render_clip(spec, seed=0, split="train", index=0)
    b, _ = render_clip(spec, seed=0, split="train", index=1)
    b[3] = a[3]
    for name, clip in (("a", a), ("b", b)):
        write_mp4(tmp_path / f"{name}.mp4", clip, fps=8)
    (da, keys), (db, _) = _frames_of(tmp_path / "a.mp4"), _frames_of(tmp_path / "b.mp4")
    assert all(keys) and len(keys) == 6
    np.testing.assert_array_equal(da[3], db[3])
    assert not np.array_equal(da[2], db[2])
    # inter-coded (the previous files) the shared frame decodes differently
    for name, clip in (("ia", a), ("ib", b)):
        write_mp4(tmp_path / f"{name}.mp4", clip, fps=8, intra_only=False)
    (ia, ikeys), (ib, _) = _frames_of(tmp_path / "ia.mp4"), _frames_of(tmp_path / "ib.mp4")
    assert not all(ikeys) and not np.array_equal(ia[3], ib[3])


def test_test_shift_split_is_another_appearance_of_the_same_motions(tmp_path: Path) -> None:
    spec = preset_spec("easy", size=32, bg_texture=0.0, noise=0.0, **TOY)
    flat, _ = render_clip(spec, seed=0, split="test", index=0)
    shifted, label = render_clip(spec, seed=0, split="test_shift", index=0)
    assert label == 0 and flat.shape == shifted.shape
    # the test_shift background is textured although the spec's is flat
    assert (
        np.abs(np.diff(shifted[0].astype(float), axis=1)).mean()
        > 2 * np.abs(np.diff(flat[0].astype(float), axis=1)).mean()
    )
    write_synth_dataset(tmp_path, spec=spec, seed=0)
    data = _files(tmp_path)
    assert data.info["num_test_shift"] == 4 and "test_shift = test_shift.txt" in data.info["splits"]
    item = data.test_shift(1, 1)[0]
    assert item[0].shape == (1, 3, 5, 32, 32)
    memory = build_data("synth", frames=4, sampling_rate=1, crop=32, seed=0, options=TOY)
    assert memory.info["num_test_shift"] == 4 and memory.test_shift() is not None


def test_a_real_dataset_names_its_shift_split_with_the_test_shift_option(tmp_path: Path) -> None:
    spec = preset_spec("easy", size=32, **TOY)
    write_synth_dataset(tmp_path, spec=spec, seed=0)
    (tmp_path / "test_shift.txt").rename(tmp_path / "heldout_scene.txt")
    plain = _files(tmp_path)
    assert plain.test_shift() is None and plain.info["num_test_shift"] == 0
    assert _files(tmp_path, test_shift="heldout_scene.txt").info["num_test_shift"] == 4
    with pytest.raises(FileNotFoundError, match=r"test_shift list not found: .*missing.txt"):
        _files(tmp_path, test_shift="missing.txt")
    with pytest.raises(ValueError, match=r"test_shift must be a list file relative to the root"):
        _files(tmp_path, test_shift=3)


def test_every_ladder_has_four_levels_from_off_and_rejects_bad_levels() -> None:
    from mpbench.cli.data_cmds import LADDER_NAMES

    assert tuple(LADDERS) == LADDER_NAMES
    for name, levels in LADDERS.items():
        assert len(levels) == 4
        spec = preset_spec("easy", ladder=name, level=0)
        for knob, value in levels[0].items():
            assert not any(np.atleast_1d(getattr(spec, knob))), (name, knob, value)
        top = preset_spec("easy", ladder=name, level=3)
        assert all(
            getattr(top, k) == (tuple(v) if isinstance(v, list) else v)
            for k, v in levels[3].items()
        )
    with pytest.raises(ValueError, match=r"unknown nuisance ladder 'fog'; expected one of noise"):
        preset_spec("easy", ladder="fog")
    with pytest.raises(
        ValueError, match=r"level of ladder 'noise' must be an integer in \[0, 3\], got 4"
    ):
        preset_spec("easy", ladder="noise", level=4)
    with pytest.raises(ValueError, match=r"level 2 needs a ladder"):
        preset_spec("easy", level=2)


def test_hog_and_orientation_probes_see_a_single_frame_orientation_cue() -> None:
    """Power of the new probes: stripes whose orientation is the class are found by HOG and
    orientation statistics, while the appearance statistics (linear) stay blind to them."""
    rng = np.random.default_rng(0)
    n, size, angles = 160, 32, np.deg2rad([0, 45, 90, 135])
    ys, xs = np.mgrid[:size, :size].astype(float)
    labels = np.arange(n) % 4
    clips = np.empty((n, 2, size, size, 3), dtype=np.float32)
    for i, label in enumerate(labels):
        a, phase = angles[label], rng.uniform(0, 2 * np.pi)
        wave = 0.5 + 0.2 * np.sin((np.cos(a) * xs + np.sin(a) * ys) * 0.8 + phase)
        clips[i] = (wave[..., None] + rng.normal(0, 0.02, (2, size, size, 3))).clip(0, 1)
    half = n // 2
    report = probe_clips(
        (clips[:half], labels[:half]),
        (clips[half:], labels[half:]),
        classes=4,
        frame_probes=("hog", "orient"),
        motion_views=(),
    )
    assert min(a for accs in report.frame_acc.values() for a in accs) > report.bound
    frame = torch.as_tensor(clips[:3, 0]).permute(0, 3, 1, 2)
    assert hog_features(frame).shape == (3, 16 * 9) and orient_features(frame).shape == (3, 68)


@pytest.mark.slow
def test_every_level_of_every_ladder_is_motion_only_at_toy_size() -> None:
    spec = preset_spec("easy", classes=4, train_clips=48, val_clips=24, video_frames=6, size=32)
    reports = probe_ladders(
        spec, ["all"], frame_probes=("linear", "hog", "orient"), motion_views=(), size=32
    )
    assert [(name, level) for name, level, _ in reports] == [
        (n, lv) for n in LADDERS for lv in range(4)
    ]
    for name, level, report in reports:
        assert not report.leaks, (name, level, report.verdict())
        assert report.alpha == pytest.approx(0.05 / 24)  # Bonferroni over the 24 levels too


def test_cli_probe_of_a_ladder_and_of_decoded_files(tmp_path: Path) -> None:
    args = ["data", "probe", "--classes", "2", "--video-frames", "4", "--train-clips", "24"]
    args += ["--val-clips", "16", "--probes", "linear,hog,orient", "--size", "16"]
    res = runner.invoke(app, [*args, "--ladder", "noise", "--motion", "diff"])
    assert res.exit_code in (0, 3), res.output
    assert "nuisance ladders: best single-frame accuracy" in res.output
    for level in range(4):
        assert f"noise level {level}" in res.output
    flat = " ".join(res.output.split())  # rich wraps long lines
    assert "(alpha 0.0125 / 12)" in flat  # 0.05 over 4 levels, then over 12 fits
    bad = runner.invoke(app, [*args, "--ladder", "fog"])
    assert bad.exit_code == 2 and "unknown ladder 'fog'" in bad.output
    spec = preset_spec(
        "easy", size=32, classes=2, train_clips=16, val_clips=8, test_clips=8, video_frames=4
    )
    write_synth_dataset(tmp_path, spec=spec, seed=0)
    files = runner.invoke(
        app, ["data", "probe", "--root", str(tmp_path), "--probes", "linear,hog", "--motion", ""]
    )
    assert files.exit_code in (0, 3), files.output
    flat = " ".join(files.output.split())
    assert "fit on train, score on val + test" in flat
    assert "for 16 val clips" in flat and "max over 8 probes fitted" in flat


def test_controls_destroy_motion_and_keep_the_frames() -> None:
    from mpbench.variants import get_variant

    torch.manual_seed(0)
    x = torch.randn(3, 3, 9, 4, 4)
    static = get_variant("static").build()(x).prompts
    assert static.shape == (3, 3, 8, 4, 4) and torch.equal(static, x[:, :, 5:6].expand_as(static))
    shuffled = get_variant("shuffled").build()(x).prompts
    later = x[:, :, 1:]
    for b in range(3):
        order = [
            next(t for t in range(8) if torch.equal(shuffled[b, :, i], later[b, :, t]))
            for i in range(8)
        ]
        assert sorted(order) == list(range(8))
    assert not torch.equal(shuffled, later)
    with pytest.raises(ValueError, match=r"a control \(static\) has no prompt"):
        get_variant("static").model_validate({"name": "x", "control": "static"})


def test_minimal_detectable_effect_is_the_effect_found_with_power_0_8() -> None:
    from mpbench.certify import Certificate, minimal_detectable_effect
    from mpbench.report.stats import paired_power

    mde = minimal_detectable_effect(0.03, 3)
    assert paired_power(mde / (math.sqrt(2) * 0.03), 3) == pytest.approx(0.8, abs=1e-6)
    assert minimal_detectable_effect(0.03, 6) < mde and math.isnan(
        minimal_detectable_effect(0.0, 3)
    )
    cert = Certificate(
        {"baseline": [0.9, 0.85, 0.8], "static": [0.25, 0.27, 0.24], "shuffled": [0.5, 0.5, 0.45]},
        classes=4,
        n_test=160,
        seeds=3,
    )
    assert cert.static_at_chance and cert.certified
    assert "baseline - shuffled +36.67 points" in "\n".join(cert.lines())
    weak = Certificate({"baseline": [0.3, 0.5, 0.26], "static": [0.25, 0.3, 0.24]}, 4, 160, seeds=3)
    assert weak.static_at_chance and not weak.certified
    assert "no shuffled control ran" in "\n".join(weak.lines())  # no "+nan points"
    assert "nan" not in "\n".join(weak.lines())


@pytest.mark.slow
def test_cli_certify_runs_the_controls_and_prints_the_mde(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    toy = "dataset_options={classes=2,size=32,train_clips=8,val_clips=4,test_clips=8}"
    res = runner.invoke(
        app,
        [
            "data",
            "certify",
            "easy",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--set",
            toy,
            "--set",
            "batch_size=4",
            "--study-seeds",
            "5",
        ],
    )
    assert res.exit_code in (0, 1), res.output
    for variant in ("baseline", "static", "shuffled"):
        assert res.output.count(f"{variant} seed") == 2
    assert "minimal detectable effect at 5 seeds:" in res.output
    assert ("NOT CERTIFIED" in res.output) == (res.exit_code == 1)
    bad = runner.invoke(app, ["data", "certify", "foggy"])
    assert bad.exit_code == 2 and "unknown preset 'foggy'" in bad.output


CERTIFY_STUDY = """
name = "cert"
[base]
backbone = "x3d_xs"
size = "tiny"
dataset = "synth"
frames = 4
crop = 32
epochs = 1
max_steps = 1
batch_size = 4
device = "cpu"
dataset_options = {classes = 2, size = 32, train_clips = 8, val_clips = 4, test_clips = 8}
[grid]
variant = ["baseline", "learnable"]
seeds = { min = 2, max = 4, step = 2 }
[resolve]
margin = 0.05
"""


def test_cli_certify_takes_a_sequential_study_without_a_preset(tmp_path: Path, monkeypatch) -> None:
    """`data certify --study` (as the quickstart's README says) needs no PRESET; the MDE is for
    the most seeds a sequential grid runs."""
    monkeypatch.chdir(tmp_path)
    study = tmp_path / "cert.toml"
    study.write_text(CERTIFY_STUDY)
    res = runner.invoke(app, ["data", "certify", "--study", str(study), "--seeds", "2"])
    assert res.exit_code in (0, 1), res.output
    for variant in ("baseline", "static", "shuffled"):
        assert res.output.count(f"{variant} seed") == 2
    assert "minimal detectable effect at 4 seeds:" in res.output
    both = runner.invoke(app, ["data", "certify", "easy", "--study", str(study)])
    neither = runner.invoke(app, ["data", "certify"])
    for bad in (both, neither):
        assert bad.exit_code == 2
        assert "give a synth PRESET (easy, medium, hard) or --study STUDY, not both" in bad.output
