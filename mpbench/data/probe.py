"""The proof that the synthetic benchmark is motion-only: single-frame probes at every frame index.

:func:`probe_clips` takes clips and labels (any arrays, not only the synthetic benchmark) and fits,
for EVERY frame index of the video, single-frame probes that see that one frame of each clip:

- ``linear``: logistic regression (full-batch L-BFGS) on appearance statistics of the frame: mean
  colour, grey contrast, and the actor saliency map ``|grey - median grey of the frame|`` pooled
  to 8 x 8, with its mass, centroid and circular (torus) moments. The median is the frame's own:
  a per-video median would be a multi-frame statistic (a rotating actor stays in it, a moving
  one does not), so it would leak motion into a "single-frame" probe.
- ``cnn``: a small 2D CNN on the RGB frame that keeps a 4 x 4 spatial map before its classifier
  (it can read where things are, unlike a globally pooled CNN). The CNNs of all chosen frame
  indices train together as one grouped network (Adam updates each group independently).

The best accuracy over (frame indices x probes) is compared with the binomial upper bound of
chance for the number of validation clips, Bonferroni-corrected for the number of probes fitted
(alpha / fits), because the reported number is a maximum. Next to it, two motion views must be
far above that bound: ``diff`` (a tiny 2D CNN on the T grey frame differences of the centre T+1
frames) and ``clip`` (a tiny 3D CNN on the centre T+1 RGB frames).

Measured with ``OMP_NUM_THREADS=1 mpbench data probe --preset P`` (seed 0, defaults: at most
1000 train / 240 val clips, frames area-resized to 64 px, CNNs at 32 px, linear and CNN probes
at every frame index, 8 epochs; one thread on a shared 2-core machine):

- easy (6 classes, 480 / 120 clips, 16 frames, 32 probes, 46 s): best single-frame accuracy
  0.225 (frame 1, linear) <= bound 0.275 (chance 0.167); diff 0.750, clip 0.758: motion-only.
- medium (10 classes, 1000 / 240 clips, 24 frames, 48 probes, 2 min 21 s): best 0.163 (frame 12,
  linear: 39 of 240, exactly the bound) <= bound 0.163 (chance 0.100); diff 0.287, clip 0.113:
  motion-only. With ``--seed 1 --probes linear --motion ''`` the best is 0.133 (frame 7), bound
  0.158.
- hard (16 classes, 1000 / 240 clips, 32 frames, 64 probes, 4 min 1 s): best 0.108 (frame 22,
  linear) <= bound 0.117 (chance 0.062), but diff 0.046 and clip 0.050 stay at chance too:
  INCONCLUSIVE (exit code 3). Hard's pan, shake and sensor noise defeat these tiny CPU models;
  without them the diff view is far above the bound (``tests/test_probe.py``).
- Trained longer: medium ``--epochs 30``: best 0.163 <= 0.163 (48 probes), diff 0.433, clip
  0.296, motion-only (4 min 16 s). Hard ``--probes linear --epochs 30 --train-clips 4000``: best
  0.104 (frame 31) <= 0.113, diff 0.171, clip 0.058, motion-only (8 min); the same with
  ``--motion clip --cnn-size 64``: clip 0.221, motion-only (12 min 56 s).

The probe has the power to see the defect it was built for: on clips whose actor is random at
the middle frame and moves linearly (direction = class), it reports LEAKS at the outer frames
while the middle frame stays inside the bound (``tests/test_probe.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mpbench._pixels import GREY_WEIGHTS, MEAN, STD
from mpbench.data.synth import SynthSpec, render_clip

FrameProbe = Literal["linear", "hog", "orient", "cnn"]
MotionView = Literal["diff", "clip"]
FRAME_PROBES: tuple[str, ...] = get_args(FrameProbe)
MOTION_VIEWS: tuple[str, ...] = get_args(MotionView)
# HOG: unsigned orientation bins and the cells per side of the grey frame's cell grid;
# orientation statistics: signed bins of each colour plane and of grey.
HOG_BINS, HOG_CELLS, ORIENT_BINS = 9, 4, 16
Arrays = tuple[Any, Any]  # (clips N x F x H x W x 3, uint8 or float in [0, 1]; labels N)


def chance_bound(*, n: int, classes: int, alpha: float) -> float:
    """Accuracy that chance (1 / classes) exceeds with probability <= alpha on ``n`` clips."""
    from scipy.stats import binom

    if n < 1 or classes < 2 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n >= 1, classes >= 2, 0 < alpha < 1; got {n}, {classes}, {alpha}")
    return float(binom.ppf(1.0 - alpha, n, 1.0 / classes)) / n


@dataclass(frozen=True)
class ProbeReport:
    """Accuracies of the single-frame probes per frame index and of the motion views.

    Args:
        classes: number of classes (chance is 1 / classes).
        n_val: validation clips every accuracy is measured on.
        alpha: family-wise error rate of the verdict (Bonferroni over the fitted probes).
        frame_acc: probe name -> accuracy per frame index (None where that probe was not fitted).
        motion_acc: motion view name -> accuracy.

    Example:
        >>> r = ProbeReport(4, 96, 0.05, {"linear": [0.25, 0.27]}, {"diff": 0.9})
        >>> r.fits, r.best, r.leaks, round(r.bound, 3)
        (2, (0.27, 1, 'linear'), False, 0.344)
    """

    classes: int
    n_val: int
    alpha: float
    frame_acc: dict[str, list[float | None]]
    motion_acc: dict[str, float]

    @property
    def fits(self) -> int:
        """Number of single-frame probes fitted (the Bonferroni factor)."""
        return sum(a is not None for accs in self.frame_acc.values() for a in accs)

    @property
    def chance(self) -> float:
        """Chance accuracy."""
        return 1.0 / self.classes

    @property
    def bound(self) -> float:
        """Bonferroni-corrected binomial upper bound of chance (alpha / fits)."""
        return chance_bound(n=self.n_val, classes=self.classes, alpha=self.alpha / self.fits)

    @property
    def bound_single(self) -> float:
        """Uncorrected binomial upper bound of chance (one probe at level alpha)."""
        return chance_bound(n=self.n_val, classes=self.classes, alpha=self.alpha)

    @property
    def best(self) -> tuple[float, int, str]:
        """(accuracy, frame index, probe) of the best single-frame probe."""
        cells = [
            (a, i, p)
            for p, accs in self.frame_acc.items()
            for i, a in enumerate(accs)
            if a is not None
        ]
        return max(cells, key=lambda c: c[0])

    @property
    def leaks(self) -> bool:
        """True when some single-frame probe beats the corrected bound."""
        return self.best[0] > self.bound

    @property
    def motion_ok(self) -> bool:
        """True when some motion view beats the corrected bound (the positive control)."""
        return any(a > self.bound for a in self.motion_acc.values())

    def verdict(self) -> str:
        """One line: best single-frame accuracy vs the bound, and the outcome."""
        acc, index, probe = self.best
        head = f"best single-frame accuracy {acc:.3f} (frame {index}, {probe})"
        if self.leaks:
            return f"{head} > chance bound {self.bound:.3f}: LEAKS"
        motion = ", ".join(f"{v} {a:.3f}" for v, a in self.motion_acc.items())
        if not self.motion_ok:
            return (
                f"{head} <= chance bound {self.bound:.3f}, but no motion view ({motion or 'none'})"
                " beats it either: INCONCLUSIVE"
            )
        tail = f" while motion views reach {motion}" if motion else ""
        return f"{head} <= chance bound {self.bound:.3f}{tail}: motion-only"


# ----------------------------------------------------------------------------------------------
# Inputs


def as_frames(clips: Any) -> torch.Tensor:
    """Clips N x F x H x W x 3 as an N x F x 3 x H x W view (dtype kept: uint8 stays small)."""
    x = torch.as_tensor(clips)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"clips must be N x F x H x W x 3, got shape {tuple(x.shape)}")
    return x.permute(0, 1, 4, 2, 3)


def unit_float(x: torch.Tensor, *, size: int | None = None) -> torch.Tensor:
    """uint8 (0-255) or float (0-1) frames ... x 3 x H x W as float in [0, 1], area-resized to
    at most ``size`` x ``size``."""
    out = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    if size is None or size >= out.shape[-1]:
        return out
    flat = F.interpolate(out.reshape(-1, *out.shape[-3:]), size=(size, size), mode="area")
    return flat.reshape(*out.shape[:-2], size, size)


def hit_rate(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Correct / total as an exact Python float (a float32 mean can land above k / n)."""
    return int((pred == labels).sum()) / len(labels)


def frame_features(frames: torch.Tensor) -> torch.Tensor:
    """Appearance statistics of single frames (N x 3 x H x W in [0, 1]) -> N x 75."""
    grey = (frames * torch.tensor(GREY_WEIGHTS).view(1, 3, 1, 1)).sum(1)  # N x H x W
    sal = (grey - grey.flatten(1).median(1).values[:, None, None]).abs()
    mass = sal.flatten(1).sum(1).clamp_min(1e-6)
    h, w = grey.shape[1:]
    ys, xs = (torch.arange(n, dtype=torch.float32) / n + 0.5 / n for n in (h, w))
    wx, wy = sal.sum(1) / mass[:, None], sal.sum(2) / mass[:, None]  # N x W, N x H marginals
    moments = [wx @ xs, wy @ ys]  # centroid in [0, 1]
    for weights, pos in ((wx, xs), (wy, ys)):  # circular moments: the centroid on a torus
        moments += [weights @ torch.cos(2 * math.pi * pos), weights @ torch.sin(2 * math.pi * pos)]
    pooled = F.adaptive_avg_pool2d(sal[:, None], 8).flatten(1)
    stats = [frames.mean((2, 3)), grey.flatten(1).std(1)[:, None], mass[:, None] / (h * w)]
    return torch.cat([*stats, torch.stack(moments, 1), pooled], 1)


def _gradients(planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(magnitude, signed angle in [0, 2 pi)) of central differences of N x C x H x W planes."""
    gx = planes.roll(-1, -1) - planes.roll(1, -1)
    gy = planes.roll(-1, -2) - planes.roll(1, -2)
    return torch.hypot(gx, gy), torch.atan2(gy, gx) % (2 * math.pi)


def _binned(mag: torch.Tensor, angle: torch.Tensor, bins: int, period: float) -> torch.Tensor:
    """Magnitude-weighted orientation votes N x C x bins x H x W (linear between two bins)."""
    pos = (angle % period) / period * bins - 0.5
    low = pos.floor()
    frac = pos - low
    votes = torch.zeros(*mag.shape[:2], bins, *mag.shape[2:])
    for index, weight in ((low, 1.0 - frac), (low + 1, frac)):
        votes.scatter_add_(2, (index.long() % bins).unsqueeze(2), (mag * weight).unsqueeze(2))
    return votes


def hog_features(frames: torch.Tensor) -> torch.Tensor:
    """HOG of single frames (N x 3 x H x W in [0, 1]): grey from the RGB the model sees,
    unsigned orientations in HOG_BINS bins per cell of a HOG_CELLS x HOG_CELLS grid, each cell
    L2-normalised -> N x HOG_CELLS^2 x HOG_BINS."""
    grey = (frames * torch.tensor(GREY_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mag, angle = _gradients(grey)
    votes = _binned(mag, angle, HOG_BINS, math.pi)[:, 0]  # N x bins x H x W
    cells = F.adaptive_avg_pool2d(votes, HOG_CELLS)  # N x bins x c x c
    cells = cells / cells.square().sum(1, keepdim=True).add(1e-6).sqrt()
    return cells.flatten(1)


def orient_features(frames: torch.Tensor) -> torch.Tensor:
    """Gradient-orientation statistics of single frames (N x 3 x H x W in [0, 1]) per plane
    (R, G, B and grey): a signed ORIENT_BINS-bin histogram weighted by magnitude (sums to 1)
    and the mean magnitude -> N x 4 (ORIENT_BINS + 1). Encoder artefacts sit in the colour
    planes, so each plane has its own histogram."""
    grey = (frames * torch.tensor(GREY_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mag, angle = _gradients(torch.cat([frames, grey], 1))
    hist = _binned(mag, angle, ORIENT_BINS, 2 * math.pi).sum((3, 4))  # N x 4 x bins
    total = hist.sum(2, keepdim=True)
    stats = [hist / total.clamp_min(1e-6), mag.mean((2, 3)).unsqueeze(2)]
    return torch.cat(stats, 2).flatten(1)


FEATURES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": frame_features,
    "hog": hog_features,
    "orient": orient_features,
}


def fit_linear(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    classes: int,
    weight_decay: float = 1e-2,
) -> float:
    """Validation accuracy of L2-regularised logistic regression (full-batch L-BFGS)."""
    (xt, yt), (xv, yv) = train, val
    mean, std = xt.mean(0), xt.std(0).clamp_min(1e-6)
    xt, xv = (xt - mean) / std, (xv - mean) / std
    weight = torch.zeros(xt.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xt @ weight + bias, yt) + weight_decay * weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return hit_rate((xv @ weight + bias).argmax(1), yv)


def frame_cnn(*, classes: int, width: int = 16) -> nn.Module:
    """A small 2D CNN on one RGB frame that keeps a 4 x 4 map before its linear classifier.

    Unlike a globally pooled CNN it can read where things are (the actor's position).
    """
    return nn.Sequential(
        nn.Conv2d(3, width, 5, stride=2, padding=2),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * width, classes),
    )


def motion_net(view: str, *, in_channels: int, classes: int, width: int = 16) -> nn.Module:
    """A three-layer CNN with global pooling: 2D for the diff view, 3D for the clip view."""
    clip = view == "clip"
    conv, pool = (nn.Conv3d, nn.AdaptiveAvgPool3d) if clip else (nn.Conv2d, nn.AdaptiveAvgPool2d)
    k1, s1, p1 = ((3, 5, 5), (1, 2, 2), (1, 2, 2)) if clip else (5, 2, 2)
    return nn.Sequential(
        conv(in_channels, width, k1, stride=s1, padding=p1),
        nn.ReLU(),
        conv(width, 2 * width, 3, stride=(1, 2, 2) if clip else 2, padding=1),
        nn.ReLU(),
        conv(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(2 * width, classes),
    )


def train_net(
    net: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch: int,
    lr: float = 1e-3,
) -> float:
    """Train with Adam and return the final validation accuracy."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = train
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(y)).split(batch):
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(chunk).argmax(1) for chunk in val[0].split(128)])
    return hit_rate(pred, val[1])


# ----------------------------------------------------------------------------------------------
# The probe


def cnn_indices(video_frames: int, count: int | None) -> list[int]:
    """``count`` frame indices spread evenly over the video, first and last included (None: all)."""
    if count is None or count >= video_frames:
        return list(range(video_frames))
    if count < 1:
        raise ValueError(f"cnn_frames must be >= 1 or None (every index), got {count}")
    return sorted({round(i) for i in np.linspace(0, video_frames - 1, count)})


def _linear_per_index(
    train: torch.Tensor, val: torch.Tensor, yt: Any, yv: Any, classes: int, probe: str = "linear"
) -> list:
    """Accuracy of logistic regression on the ``probe``'s features at every frame index."""
    features = FEATURES[probe]
    return [
        fit_linear(
            (features(unit_float(train[:, i])), yt),
            (features(unit_float(val[:, i])), yv),
            classes=classes,
        )
        for i in range(train.shape[1])
    ]


def _cnn_at(
    train: torch.Tensor,
    val: torch.Tensor,
    yt: Any,
    yv: Any,
    *,
    index: int,
    seed: int,
    size: int | None,
    **kw: Any,
) -> float:
    """CNN-probe accuracy at one frame index (RGB normalised like the backbones)."""
    torch.manual_seed(seed)
    net = frame_cnn(classes=kw.pop("classes"))
    xt, xv = ((unit_float(x[:, index], size=size) - MEAN) / STD for x in (train, val))
    return train_net(net, (xt, yt), (xv, yv), **kw)


def motion_input(
    clips: torch.Tensor, view: str, *, frames: int, size: int | None = None
) -> torch.Tensor:
    """The centre T+1 frames (N x F x 3 x H x W) as a motion view's input, frames resized to at
    most ``size``: N x T x H x W grey differences (diff) or N x 3 x (T+1) x H x W (clip)."""
    span = min(frames + 1, clips.shape[1])
    start = (clips.shape[1] - span) // 2
    centre = unit_float(clips[:, start : start + span], size=size)  # N x (T+1) x 3 x H x W
    if view == "diff":
        grey = (centre * torch.tensor(GREY_WEIGHTS).view(1, 1, 3, 1, 1)).sum(2)
        return grey[:, 1:] - grey[:, :-1]
    if view == "clip":
        return (centre.transpose(1, 2) - MEAN) / STD
    raise ValueError(f"motion view must be one of {MOTION_VIEWS}, got {view!r}")


def _check_probe_args(
    frame_probes: Sequence[str], motion_views: Sequence[str], alpha: float
) -> None:
    """Reject unknown probe names and a bad alpha with the bad value in the message."""
    bad = [p for p in frame_probes if p not in FRAME_PROBES]
    if bad or not frame_probes:
        raise ValueError(
            f"frame probes must be a non-empty subset of {FRAME_PROBES}, got {list(frame_probes)}"
        )
    bad = [v for v in motion_views if v not in MOTION_VIEWS]
    if bad:
        raise ValueError(f"motion views must be among {MOTION_VIEWS}, got {bad}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def probe_clips(
    train: Arrays,
    val: Arrays,
    *,
    classes: int,
    frame_probes: Sequence[str] = FRAME_PROBES,
    motion_views: Sequence[str] = MOTION_VIEWS,
    cnn_frames: int | None = None,
    cnn_size: int | None = 32,
    frames: int = 8,
    epochs: int = 8,
    batch: int = 8,
    alpha: float = 0.05,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> ProbeReport:
    """Fit the single-frame probes at every frame index and the motion views; see the module.

    ``train`` and ``val`` are (clips N x F x H x W x 3, labels N). ``cnn_frames`` limits the CNN
    probe to that many evenly spread frame indices (None: all), which needs the linear probe to
    cover every index; the CNNs (frame and clip) see frames area-resized to ``cnn_size``.
    Deterministic for a given seed on one machine.
    """
    _check_probe_args(frame_probes, motion_views, alpha)
    xt, xv = as_frames(train[0]), as_frames(val[0])
    yt, yv = torch.as_tensor(train[1]).long(), torch.as_tensor(val[1]).long()
    video = xt.shape[1]
    indices = cnn_indices(video, cnn_frames) if "cnn" in frame_probes else []
    if len(indices) < video and not set(frame_probes) & set(FEATURES):
        raise ValueError(f"cnn_frames={cnn_frames} skips frame indices; add the linear probe")
    say = on_step or (lambda _: None)
    fit = {"classes": classes, "epochs": epochs, "batch": batch}
    acc: dict[str, list[float | None]] = {}
    for name in (p for p in FEATURES if p in frame_probes):
        say(f"{name} probe at {video} frame indices")
        acc[name] = list(_linear_per_index(xt, xv, yt, yv, classes, name))
    if indices:
        acc["cnn"] = [None] * video
    for index in indices:
        say(f"CNN probe at frame {index}")
        acc["cnn"][index] = _cnn_at(xt, xv, yt, yv, index=index, seed=seed, size=cnn_size, **fit)
    motion = {}
    for view in motion_views:
        say(f"motion view {view}")
        torch.manual_seed(seed)
        size = None if view == "diff" else cnn_size
        mt, mv = (motion_input(x, view, frames=frames, size=size) for x in (xt, xv))
        net = motion_net(view, in_channels=mt.shape[1], classes=classes)
        motion[view] = train_net(net, (mt, yt), (mv, yv), epochs=epochs, batch=batch)
    return ProbeReport(classes, len(yv), alpha, acc, motion)


def ladder_levels(ladders: Sequence[str]) -> list[tuple[str, int]]:
    """(ladder, level) of every level of ``ladders`` ("all": every ladder of LADDERS)."""
    from mpbench.data.synth import LADDERS

    names = list(LADDERS) if list(ladders) == ["all"] else list(ladders)
    for name in names:
        if name not in LADDERS:
            raise ValueError(
                f"unknown ladder {name!r}; expected 'all' or among {', '.join(LADDERS)}"
            )
    return [(name, level) for name in names for level in range(len(LADDERS[name]))]


def probe_ladders(
    spec: SynthSpec,
    ladders: Sequence[str],
    *,
    alpha: float = 0.05,
    on_level: Callable[[str, int, ProbeReport], None] | None = None,
    **kw: Any,
) -> list[tuple[str, int, ProbeReport]]:
    """:func:`probe_synth` at every level of ``ladders`` on ``spec``; each level's verdict at
    ``alpha / levels`` (Bonferroni over the levels, on top of the one over each level's fits)."""
    from mpbench.data.synth import ladder_knobs

    levels = ladder_levels(ladders)
    out = []
    for name, level in levels:
        knobs = ladder_knobs(name, level)
        report = probe_synth(replace(spec, **knobs), alpha=alpha / len(levels), **kw)
        out.append((name, level, report))
        if on_level is not None:
            on_level(name, level, report)
    return out


def render_split(
    spec: SynthSpec, *, seed: int, split: str, limit: int | None = None, size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` clips of ``split``: uint8 N x F x s x s x 3 (area-resized to size)."""
    n = spec.num_clips(split) if limit is None else min(limit, spec.num_clips(split))
    clips, labels = [], []
    for index in range(n):
        video, label = render_clip(spec, seed=seed, split=split, index=index)
        if size is not None and size != spec.size:
            x = torch.from_numpy(video).permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(size, size), mode="area")
            video = x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        clips.append(video)
        labels.append(label)
    return np.stack(clips), np.array(labels)


def decoded_split(
    root: str | Path, *, split: str, limit: int | None = None, dataset: str = "synth"
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``limit`` videos of ``split`` of the dataset at ``root``, every frame decoded
    by PyAV as training reads it (RGB): uint8 N x F x H x W x 3 (F: the shortest video's)."""
    from mpbench.data.catalog import read_splits
    from mpbench.data.video import decode_video

    entries = getattr(read_splits(dataset, root=root), split)[:limit]
    videos = [decode_video(e.path).numpy() for e in entries]
    frames = min(v.shape[0] for v in videos)
    return np.stack([v[:frames] for v in videos]), np.array([e.label for e in entries])


def probe_files(
    root: str | Path,
    *,
    classes: int,
    train_clips: int | None = None,
    val_clips: int | None = None,
    eval_splits: Sequence[str] = ("val", "test"),
    **kw: Any,
) -> ProbeReport:
    """:func:`probe_clips` on the decoded files of a dataset on disk: fitted on train, scored
    on the first ``val_clips`` clips of ``eval_splits`` together (more clips, tighter bound)."""
    train = decoded_split(root, split="train", limit=train_clips)
    parts = [decoded_split(root, split=s) for s in eval_splits]
    frames = min(p[0].shape[1] for p in (train, *parts))
    clips = np.concatenate([p[0][:, :frames] for p in parts])[:val_clips]
    labels = np.concatenate([p[1] for p in parts])[:val_clips]
    return probe_clips((train[0][:, :frames], train[1]), (clips, labels), classes=classes, **kw)


def probe_synth(
    spec: SynthSpec,
    *,
    seed: int = 0,
    train_clips: int | None = None,
    val_clips: int | None = None,
    size: int | None = 64,
    **kw: Any,
) -> ProbeReport:
    """:func:`probe_clips` on the synthetic benchmark's train and val clips (frames <= ``size``)."""
    side = None if size is None else min(size, spec.size)
    train = render_split(spec, seed=seed, split="train", limit=train_clips, size=side)
    val = render_split(spec, seed=seed, split="val", limit=val_clips, size=side)
    return probe_clips(train, val, classes=spec.classes, seed=seed, **kw)
