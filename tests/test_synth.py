"""The synthetic motion benchmark: determinism, balance, splits, files, stationary frames."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data.synth import (
    MOTIONS,
    PRESETS,
    SynthSource,
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
    e, _ = render_clip(spec, seed=3, split="test", index=7)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert la == lb == 7 % spec.classes
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert not np.array_equal(d, e)


def test_test_split_is_its_own_set_of_clips() -> None:
    spec = preset_spec("easy", classes=3, val_clips=5, test_clips=7, video_frames=4, size=16)
    val, test = (SynthSource(spec, seed=0, split=s) for s in ("val", "test"))
    assert (len(val), len(test)) == (5, 7) and test.describe(2) == "synth:test/2"
    assert test.label(4) == 1
    for i in range(5):
        assert not np.array_equal(val.load(i).numpy(), test.load(i).numpy())
    expected, _ = render_clip(spec, seed=0, split="test", index=6)
    np.testing.assert_array_equal(test.load(6).numpy(), expected)
    with pytest.raises(
        ValueError,
        match=r"split must be one of \['train', 'val', 'test', 'test_shift'\], got 'dev'",
    ):
        spec.num_clips("dev")


def _frame_stats(clip: np.ndarray) -> np.ndarray:
    """Per frame: saliency centroid x and y, saliency mass, mean grey of the top-left block."""
    grey = clip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255
    sal = np.abs(grey - np.median(grey, axis=(1, 2), keepdims=True))  # the frame's own median
    mass = sal.sum((1, 2))
    pos = np.arange(clip.shape[1]) + 0.5
    cx, cy = sal.sum(1) @ pos / mass, sal.sum(2) @ pos / mass
    return np.stack([cx, cy, mass, grey[:, :8, :8].mean((1, 2))], axis=1)  # T x 4


def test_every_frame_index_looks_the_same_for_every_class() -> None:
    """Mean actor centroid, actor size and background per (class, frame index) are one value.

    The benchmark before the torus rework fails this: its actors drift towards the edges in the
    direction of their class (centroid z-scores above 10 at the outer frames).
    """
    spec = preset_spec(
        "easy", video_frames=12, size=32, noise=0.0, pan=(0.5, 1.0), shake=1.0, train_clips=600
    )
    stats = np.stack(
        [_frame_stats(render_clip(spec, seed=0, split="train", index=i)[0]) for i in range(600)]
    )  # N x T x 4
    labels = np.arange(600) % spec.classes
    sd = stats.reshape(-1, 4).std(0)
    grand = stats.reshape(-1, 4).mean(0)
    for c in range(spec.classes):
        cell = stats[labels == c]  # n x T x 4: one mean per frame index and statistic
        z = (cell.mean(0) - grand) / (sd / np.sqrt(len(cell)))
        assert np.abs(z).max() < 4.5, (spec.class_names[c], np.round(z, 1))


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
    spec = preset_spec(
        "easy", classes=3, train_clips=6, val_clips=3, test_clips=3, video_frames=6, size=32
    )
    write_synth_dataset(tmp_path / "a", spec=spec, seed=1)
    write_synth_dataset(tmp_path / "b", spec=spec, seed=1, workers=1)
    write_synth_dataset(tmp_path / "c", spec=spec, seed=2)
    write_synth_dataset(tmp_path / "d", spec=spec, seed=1, workers=3)
    a, b, c, d = (_digests(tmp_path / n) for n in "abcd")
    assert a == b == d  # the encoder thread count changes no byte
    assert len(a) == 15 + 6  # clips + train/val/test/test_shift.txt, classes.txt, metadata.json
    assert a["videos/right/val_00000.mp4"] != a["videos/right/test_00000.mp4"]
    assert a["videos/right/train_00000.mp4"] != c["videos/right/train_00000.mp4"]


def test_written_split_files_are_balanced_and_metadata_complete(tmp_path: Path) -> None:
    spec = preset_spec(
        "easy", classes=4, train_clips=12, val_clips=8, test_clips=4, video_frames=4, size=16
    )
    write_synth_dataset(tmp_path, spec=spec, seed=0, preset="easy")
    val, test = ((tmp_path / f"{s}.txt").read_text().split() for s in ("val", "test"))
    assert test[::2] == [f"videos/{n}/test_{i:05d}.mp4" for i, n in enumerate(spec.class_names)]
    assert test[1::2] == ["0", "1", "2", "3"] and not set(test[::2]) & set(val[::2])
    train = [line.split() for line in (tmp_path / "train.txt").read_text().splitlines()]
    counts = np.bincount([int(label) for _, label in train], minlength=4)
    assert counts.tolist() == [3, 3, 3, 3]
    assert all((tmp_path / path).is_file() for path, _ in train)
    assert (tmp_path / "classes.txt").read_text().split() == ["right", "left", "up", "down"]
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["seed"] == 0 and meta["preset"] == "easy" and meta["classes"] == 4
    assert meta["test_clips"] == 4 and meta["version"] == 3
    assert meta["encoding"] == {
        "codec": "libx264",
        "pix_fmt": "yuv420p",
        "intra_only": True,
        "qp": 12,
    }
    shift = (tmp_path / "test_shift.txt").read_text().split()
    assert shift[::2] == [
        f"videos/{n}/test_shift_{i:05d}.mp4" for i, n in enumerate(spec.class_names)
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 33}, r"size must be an even number >= 16 \(yuv420p\), got 33"),
        ({"classes": 1}, r"classes must be in \[2, 16\], got 1"),
        (
            {"test_clips": 0},
            r"train_clips, val_clips and test_clips must be >= 1, got \(480, 120, 0\)",
        ),
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
        "--test-clips",
        "3",
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
    assert "wrote 4 train + 2 val + 3 test + 3 test_shift clips of 2 classes" in result.output
    assert len(list(out.rglob("*.mp4"))) == 12
    assert len((out / "test.txt").read_text().splitlines()) == 3
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
