"""The synthetic motion benchmark: determinism, balance, files, and the single-frame control."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data.probe import motion_probe
from mpbench.data.synth import (
    MOTIONS,
    PRESETS,
    SynthSpec,
    preset_spec,
    render_clip,
    write_synth_dataset,
)

runner = CliRunner()


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_render_is_a_pure_function_of_seed_split_index() -> None:
    spec = preset_spec("medium", size=32, video_frames=6)
    a, la = render_clip(spec, seed=3, split="train", index=7)
    b, lb = render_clip(spec, seed=3, split="train", index=7)
    c, _ = render_clip(spec, seed=4, split="train", index=7)
    d, _ = render_clip(spec, seed=3, split="val", index=7)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert la == lb == 7 % spec.classes
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_motion_of_every_preset_renders_moving_frames(preset: str) -> None:
    spec = preset_spec(
        preset,
        size=32,
        video_frames=5,
        noise=0.0,
        flicker=0.0,
        shake=0.0,
        pan=(0.0, 0.0),
        distractors=0,
    )
    for index in range(spec.classes):
        clip, label = render_clip(spec, seed=0, split="val", index=index)
        assert label == index
        assert np.abs(np.diff(clip.astype(np.int16), axis=0)).max() > 8, spec.class_names[label]


def test_hard_preset_uses_every_motion() -> None:
    assert preset_spec("hard").class_names == list(MOTIONS)


def test_write_synth_dataset_same_seed_gives_identical_files(tmp_path: Path) -> None:
    spec = preset_spec("easy", classes=3, train_clips=6, val_clips=3, video_frames=6, size=32)
    write_synth_dataset(tmp_path / "a", spec=spec, seed=1)
    write_synth_dataset(tmp_path / "b", spec=spec, seed=1)
    write_synth_dataset(tmp_path / "c", spec=spec, seed=2)
    a, b, c = (_digests(tmp_path / n) for n in "abc")
    assert a == b
    assert len(a) == 9 + 4  # clips + train.txt, val.txt, classes.txt, metadata.json
    assert a["videos/right/train_00000.mp4"] != c["videos/right/train_00000.mp4"]


def test_written_split_files_are_balanced_and_metadata_complete(tmp_path: Path) -> None:
    spec = preset_spec("easy", classes=4, train_clips=12, val_clips=8, video_frames=4, size=16)
    write_synth_dataset(tmp_path, spec=spec, seed=0, preset="easy")
    train = [line.split() for line in (tmp_path / "train.txt").read_text().splitlines()]
    counts = np.bincount([int(label) for _, label in train], minlength=4)
    assert counts.tolist() == [3, 3, 3, 3]
    assert all((tmp_path / path).is_file() for path, _ in train)
    assert (tmp_path / "classes.txt").read_text().split() == ["right", "left", "up", "down"]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["preset"] == "easy" and meta["classes"] == 4


def test_single_frame_is_at_chance_while_frame_differences_are_not() -> None:
    spec = preset_spec("easy", classes=4, size=32, train_clips=240, val_clips=96, video_frames=9)
    acc = motion_probe(spec, seed=0, frames=8, views=("frame", "diff"), epochs=6)
    chance = 1 / spec.classes
    assert acc["frame"] < chance + 0.12
    assert acc["diff"] > chance + 0.35


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 33}, r"size must be an even number >= 16 \(yuv420p\), got 33"),
        ({"classes": 1}, r"classes must be in \[2, 16\], got 1"),
        ({"noise": -0.1}, r"noise must be >= 0, got -0.1"),
        ({"brighter": 2.0}, r"brighter is a probability in \[0, 1\], got 2.0"),
    ],
)
def test_bad_knobs_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SynthSpec(**kwargs)


def test_unknown_preset_and_option_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown synth preset 'extreme'"):
        preset_spec("extreme")
    with pytest.raises(ValueError, match=r"unknown synth option\(s\) \['colour'\]"):
        preset_spec("easy", colour=3)


def test_cli_data_synth_writes_files_and_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = [
        "data",
        "synth",
        str(out),
        "--classes",
        "2",
        "--train-clips",
        "4",
        "--val-clips",
        "2",
        "--frames",
        "4",
        "--size",
        "16",
        "--fps",
        "4",
        "--seed",
        "5",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 4 train + 2 val clips of 2 classes" in result.output
    assert len(list(out.rglob("*.mp4"))) == 6
    assert json.loads((out / "metadata.json").read_text())["fps"] == 4
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "is not empty; pass --force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_cli_data_synth_rejects_bad_values(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "x"), "--preset", "insane"])
    assert result.exit_code == 2
    assert "unknown preset 'insane'" in result.output
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "y"), "--size", "31"])
    assert result.exit_code == 2
    assert "size must be an even number" in result.output


def test_cli_data_probe_prints_accuracy_per_view() -> None:
    args = [
        "data",
        "probe",
        "--train-clips",
        "12",
        "--val-clips",
        "6",
        "--epochs",
        "1",
        "--views",
        "frame,diff",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "frame epoch 1:" in result.output and "diff epoch 1:" in result.output
    assert "chance 0.167" in result.output
    bad = runner.invoke(app, ["data", "probe", "--views", "frame,optical_flow"])
    assert bad.exit_code == 2 and "views must be among" in bad.output
