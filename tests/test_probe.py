"""The single-frame probe: its bound, its power on a leaky benchmark, and every synthetic preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.data.probe import (
    ProbeReport,
    chance_bound,
    cnn_indices,
    hit_rate,
    probe_clips,
    probe_synth,
)
from mpbench.data.synth import preset_spec, render_clip

runner = CliRunner()
# The preset tests below are a family of several probes on fixed seeds; at alpha 0.05 each would
# fail on about 1 machine in 20 by chance alone (CNN training differs across CPUs). The power test
# shows that leaks clear even the 0.05 bound by a wide margin.
ALPHA = 0.01


def _leaky_clips(n: int, *, frames: int = 15, size: int = 32, seed: int = 0) -> tuple:
    """The reviewer's defect: a square at a random MIDDLE-frame position moving linearly, its
    direction the class (4 classes), so only the middle frame is class-free."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    dirs = np.array([(1.0, 0.0), (-1.0, 0.0), (0.0, -1.0), (0.0, 1.0)])[labels]  # n x 2
    tau = np.arange(frames) - (frames - 1) // 2
    mid = rng.uniform(0.3, 0.7, (n, 2)) * size
    centre = mid[:, None] + rng.uniform(1.0, 1.5, (n, 1, 1)) * tau[:, None] * dirs[:, None]
    ys, xs = np.mgrid[:size, :size] + 0.5
    inside = (np.abs(xs - centre[..., :1, None]) <= 4) & (np.abs(ys - centre[..., 1:, None]) <= 4)
    clips = rng.normal(0.45, 0.03, (n, frames, size, size, 3)).astype(np.float32)
    clips[inside] = 0.9
    return (np.clip(clips, 0, 1) * 255).astype(np.uint8), labels


def test_chance_bound_is_the_binomial_quantile() -> None:
    for n, classes, alpha in ((96, 4, 0.05), (240, 10, 0.05 / 48), (120, 6, 0.01)):
        k = round(chance_bound(n=n, classes=classes, alpha=alpha) * n)
        assert binom.sf(k, n, 1 / classes) <= alpha < binom.sf(k - 1, n, 1 / classes)
    with pytest.raises(ValueError, match=r"got 0, 4, 0.05"):
        chance_bound(n=0, classes=4, alpha=0.05)
    # an accuracy of exactly k / n at the bound is inside it (no float32 rounding upwards)
    hits = hit_rate(torch.tensor([1] * 26 + [0] * 214), torch.ones(240, dtype=torch.long))
    assert hits == 26 / 240 == chance_bound(n=240, classes=16, alpha=0.05 / 15)


def test_report_bonferroni_bound_and_verdicts() -> None:
    frame_acc = {"linear": [0.25, 0.30, 0.28], "cnn": [0.26, None, 0.27]}
    clean = ProbeReport(4, 96, 0.05, frame_acc, {"diff": 0.8})
    assert clean.fits == 5 and clean.best == (0.30, 1, "linear")
    assert clean.bound == chance_bound(n=96, classes=4, alpha=0.01) > clean.bound_single
    assert not clean.leaks and clean.motion_ok
    assert clean.verdict().endswith(
        f"<= chance bound {clean.bound:.3f} while motion views reach diff 0.800: motion-only"
    )
    leaky = ProbeReport(4, 96, 0.05, {"linear": [0.25, 0.6, 0.2]}, {"diff": 0.8})
    assert leaky.leaks and leaky.verdict().startswith("best single-frame accuracy 0.600 (frame 1")
    assert leaky.verdict().endswith("LEAKS")
    flat = ProbeReport(4, 96, 0.05, frame_acc, {"diff": 0.3})
    assert not flat.motion_ok and flat.verdict().endswith("INCONCLUSIVE")


def test_cnn_indices_spread_over_the_video() -> None:
    assert cnn_indices(15, 3) == [0, 7, 14]
    assert cnn_indices(4, None) == cnn_indices(4, 9) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"cnn_frames must be >= 1 or None \(every index\), got 0"):
        cnn_indices(4, 0)


def test_probe_rejects_bad_arguments() -> None:
    clips, labels = _leaky_clips(8, frames=4, size=16)
    with pytest.raises(ValueError, match=r"frame probes must be a non-empty subset"):
        probe_clips((clips, labels), (clips, labels), classes=4, frame_probes=("pixels",))
    with pytest.raises(ValueError, match=r"cnn_frames=2 skips frame indices; add the linear"):
        probe_clips(
            (clips, labels), (clips, labels), classes=4, frame_probes=("cnn",), cnn_frames=2
        )
    with pytest.raises(ValueError, match=r"clips must be N x F x H x W x 3, got shape \(8, 4, 16"):
        probe_clips((clips[..., 0], labels), (clips, labels), classes=4)


def test_probe_catches_the_old_defect_at_outer_frames_but_not_at_the_middle() -> None:
    """Power: the benchmark before the torus rework would fail this probe."""
    train, val = _leaky_clips(240, seed=1), _leaky_clips(120, seed=2)
    report = probe_clips(train, val, classes=4, cnn_frames=3, motion_views=(), seed=0)
    linear, cnn = report.frame_acc["linear"], report.frame_acc["cnn"]
    assert report.leaks and report.verdict().endswith("LEAKS")
    assert min(linear[0], linear[-1], cnn[0], cnn[-1]) > report.bound + 0.2
    assert max(linear[7], cnn[7]) <= report.bound  # the middle frame alone looks clean


def _assert_motion_only(report: ProbeReport, *, margin: float) -> None:
    """Every single-frame probe inside the bound; the best motion view far above it."""
    assert not report.leaks, report.verdict()
    assert max(report.motion_acc.values()) > report.bound + margin, report.verdict()


def test_easy_is_motion_only_at_every_frame_index() -> None:
    spec = preset_spec("easy", classes=4, video_frames=12)
    report = probe_synth(
        spec,
        train_clips=240,
        val_clips=120,
        cnn_frames=3,
        motion_views=("diff",),
        epochs=6,
        alpha=ALPHA,
    )
    assert report.fits == 12 * 3 + 3  # linear, hog and orient at every frame; the CNN at 3
    _assert_motion_only(report, margin=0.25)


@pytest.mark.slow
def test_easy_clip_model_is_far_above_the_bound() -> None:
    spec = preset_spec("easy", classes=4, video_frames=12)
    report = probe_synth(
        spec, train_clips=480, val_clips=120, motion_views=("diff", "clip"), alpha=ALPHA
    )
    _assert_motion_only(report, margin=0.2)
    assert report.motion_acc["clip"] > report.bound + 0.2


@pytest.mark.slow
def test_medium_is_motion_only_at_every_frame_index() -> None:
    spec = preset_spec("medium", classes=4, video_frames=12)
    report = probe_synth(
        spec, train_clips=400, val_clips=160, cnn_frames=3, motion_views=("diff",), alpha=ALPHA
    )
    _assert_motion_only(report, margin=0.2)


@pytest.mark.slow
def test_hard_single_frames_are_at_chance_at_every_frame_index() -> None:
    """Every nuisance on (pan, shake, noise, flicker, clutter, distractors), 16 classes."""
    spec = preset_spec("hard", video_frames=12)
    report = probe_synth(
        spec, train_clips=480, val_clips=240, cnn_frames=3, motion_views=(), alpha=ALPHA
    )
    assert not report.leaks, report.verdict()


@pytest.mark.slow
def test_hard_motion_is_learnable_without_camera_and_sensor_nuisances() -> None:
    """The tiny CPU probes cannot see through hard's pan, shake and noise; without them they can
    (clutter, distractors, low contrast and small actors stay)."""
    spec = preset_spec(
        "hard", classes=4, video_frames=12, noise=0.0, flicker=0.0, shake=0.0, pan=(0.0, 0.0)
    )
    report = probe_synth(
        spec, train_clips=400, val_clips=160, cnn_frames=3, motion_views=("diff",), alpha=ALPHA
    )
    _assert_motion_only(report, margin=0.2)


def test_clips_cut_at_random_temporal_positions_carry_no_single_frame_cue() -> None:
    """Training clips start anywhere in the video: stationarity keeps every window clean."""
    spec = preset_spec("easy", classes=4, video_frames=20, size=32)
    rng = np.random.default_rng(0)

    def windows(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        clips, labels = [], []
        for index in range(n):
            video, label = render_clip(spec, seed=0, split=split, index=index)
            start = int(rng.integers(0, spec.video_frames - 8 + 1))
            clips.append(video[start : start + 8])
            labels.append(label)
        return np.stack(clips), np.array(labels)

    report = probe_clips(
        windows("train", 240),
        windows("val", 120),
        classes=4,
        frame_probes=("linear",),
        motion_views=("diff",),
        epochs=6,
        alpha=ALPHA,
    )
    _assert_motion_only(report, margin=0.25)


def test_cli_data_probe_prints_every_frame_index_bounds_and_verdict() -> None:
    args = ["data", "probe", "--classes", "2", "--video-frames", "6", "--train-clips", "120"]
    args += ["--val-clips", "60", "--size", "32", "--cnn-frames", "2", "--motion", "diff"]
    result = runner.invoke(app, [*args, "--epochs", "4"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps lines at the terminal width
    assert "synth easy: 2 classes, 6 frames, 120 train / 60 val clips" in text
    assert "for 60 val clips: 0.600 for one probe" in text
    # linear, hog and orient at 6 frame indices, the CNN at 2
    assert "Bonferroni-corrected for the max over 20 probes fitted (alpha 0.05 / 20)" in text
    assert text.endswith(": motion-only")
    bad = runner.invoke(app, ["data", "probe", "--probes", "linear,optical_flow"])
    assert bad.exit_code == 2 and "--probes must be among linear, hog, orient, cnn" in bad.output
