"""The single-frame control of the synthetic benchmark: motion, not appearance, tells classes apart.

:func:`motion_probe` trains the same tiny convolutional classifier on three views of the clips:
``frame`` (the clip's middle frame, RGB), ``diff`` (the T grey frame differences stacked as
channels) and ``clip`` (a tiny 3D CNN on the raw RGB clip, the calibration check of the default
difficulty). A single frame stays at chance; frame differences and the 3D CNN do not.

Measured with ``mpbench data probe --views frame,diff,clip --epochs 6`` (easy preset, seed 0,
480 train / 120 val clips of 8+1 frames at 64 x 64, batch 8, Adam 3e-3, 2 shared CPU cores,
about 20 s per epoch for the 3D CNN): validation accuracy ``frame`` 0.167 (chance is 1/6 =
0.167: it predicts one class), ``diff`` 0.833, ``clip`` 0.942 (per epoch 0.22, 0.35, 0.62,
0.83, 0.79, 0.94). With batch 32 (15 steps per epoch) the same 3D CNN was still at 0.20 after
6 epochs: the default difficulty needs a few hundred optimiser steps, not more data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from mpbench.data.synth import SynthSpec, render_clip

View = Literal["frame", "diff", "clip"]
VIEWS: tuple[str, ...] = ("frame", "diff", "clip")


def centre_clips(
    spec: SynthSpec, *, seed: int, split: str, frames: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre T+1 frames of every clip of ``split``: (float N x 3 x (T+1) x H x W in [0, 1],
    labels N)."""
    n = spec.num_clips(split) if limit is None else min(limit, spec.num_clips(split))
    start = max((spec.video_frames - frames - 1) // 2, 0)
    clips, labels = [], []
    for index in range(n):
        video, label = render_clip(spec, seed=seed, split=split, index=index)
        clips.append(video[start : start + frames + 1])
        labels.append(label)
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float().div_(255.0)
    return x, torch.tensor(labels)


def view_input(clips: torch.Tensor, view: View) -> torch.Tensor:
    """The classifier's input for ``view``: N x 3 x H x W, N x T x H x W or the clips as they
    are."""
    if view == "frame":
        return clips[:, :, clips.shape[2] // 2]
    if view == "diff":
        grey = (clips * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1)).sum(1)
        return grey[:, 1:] - grey[:, :-1]
    if view == "clip":
        return clips
    raise ValueError(f"view must be one of {VIEWS}, got {view!r}")


def tiny_net(view: View, *, in_channels: int, classes: int, width: int = 16) -> nn.Module:
    """A three-layer CNN with global pooling: 2D for frame/diff views, 3D for the clip view."""
    conv, pool = (
        (nn.Conv3d, nn.AdaptiveAvgPool3d) if view == "clip" else (nn.Conv2d, nn.AdaptiveAvgPool2d)
    )
    k1, s1 = ((3, 5, 5), (1, 2, 2)) if view == "clip" else (5, 2)
    return nn.Sequential(
        conv(in_channels, width, k1, stride=s1, padding=tuple(k // 2 for k in np.atleast_1d(k1))),
        nn.ReLU(),
        conv(width, 2 * width, 3, stride=2 if view != "clip" else (1, 2, 2), padding=1),
        nn.ReLU(),
        conv(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(2 * width, classes),
    )


def train_classifier(
    net: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch: int = 32,
    lr: float = 3e-3,
    on_epoch: Callable[[int, float], None] | None = None,
) -> float:
    """Train with Adam and return the final validation accuracy."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x, y = train
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(y)).split(batch):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = accuracy(net, *val)
        if on_epoch is not None:
            on_epoch(epoch, acc)
    return acc


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch: int = 128) -> float:
    """Top-1 accuracy of ``net`` on (x, y)."""
    net.eval()
    pred = torch.cat([net(chunk).argmax(1) for chunk in x.split(batch)])
    return float((pred == y).float().mean())


def motion_probe(
    spec: SynthSpec,
    *,
    seed: int = 0,
    frames: int = 8,
    views: Sequence[str] = ("frame", "diff"),
    epochs: int = 8,
    batch: int = 8,
    train_limit: int | None = None,
    val_limit: int | None = None,
    on_epoch: Callable[[str, int, float], None] | None = None,
) -> dict[str, float]:
    """Validation accuracy of a tiny CNN per view (chance is 1 / spec.classes).

    Deterministic for a given seed on one machine (torch's RNG is seeded from ``seed``).
    """
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise ValueError(f"views must be among {VIEWS}, got {bad}")
    train = centre_clips(spec, seed=seed, split="train", frames=frames, limit=train_limit)
    val = centre_clips(spec, seed=seed, split="val", frames=frames, limit=val_limit)
    results = {}
    for view in views:
        torch.manual_seed(seed)
        xt, xv = view_input(train[0], view), view_input(val[0], view)  # type: ignore[arg-type]
        if view == "clip":  # the 3D CNN sees normalised RGB, like the real backbones
            xt, xv = (xt - 0.45) / 0.225, (xv - 0.45) / 0.225
        net = tiny_net(view, in_channels=xt.shape[1], classes=spec.classes)  # type: ignore[arg-type]
        hook = None if on_epoch is None else (lambda e, a, v=view: on_epoch(v, e, a))
        results[view] = train_classifier(
            net, (xt, train[1]), (xv, val[1]), epochs=epochs, batch=batch, on_epoch=hook
        )
    return results
