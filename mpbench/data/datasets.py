"""Clip datasets over a video source, the failure accounting, the collate function and DataBundle.

Broken videos. An item whose video cannot be decoded is ``None`` (a warning is logged);
:func:`collate_clips` drops it and reports the number dropped as ``batch["skipped"]``, which the
engine sums (this is the channel that works across DataLoader worker processes). Each dataset
also marks failed videos in a shared-memory flag tensor, so ``dataset.skipped`` counts distinct
failed videos over every worker, and the moment more than ``max_failed_fraction`` (5% by
default) of a dataset's videos have failed, loading stops with :class:`TooManyBrokenVideos`
(raised in the worker, re-raised by the DataLoader in the main process).

Tiny videos. A video whose frames must be scaled up more than :data:`MAX_UPSCALE` times to reach
the crop (a 1 x 1 placeholder, a thumbnail) is still used, with a warning once per video (a
second shared-memory flag tensor keeps it to one over every worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch.utils.data import Dataset

from mpbench.data.transforms import MEAN, STD, eval_transform, test_views, train_transform
from mpbench.data.video import (
    Select,
    VideoDecodeError,
    clip_indices,
    random_start,
    read_frames,
    uniform_starts,
)

log = logging.getLogger(__name__)

Mode = Literal["train", "val", "test"]
Item = tuple[torch.Tensor, int] | None
MAX_UPSCALE = 2.0
"""Frames whose short side is below ``crop / MAX_UPSCALE`` are scaled up enough to be warned of."""


class TooManyBrokenVideos(ValueError):
    """More than the allowed fraction of a dataset's videos failed to decode."""


class VideoSource(Protocol):
    """Where a dataset's videos come from: files on disk or the synthetic renderer."""

    def __len__(self) -> int: ...

    def label(self, index: int) -> int:
        """Class index of video ``index``."""
        ...

    def read(self, index: int, select: Select) -> torch.Tensor:
        """uint8 frames N x H x W x 3 of video ``index`` at the frame indices ``select(n)``
        returns, in that order (``n``: the video's frame count; raises VideoDecodeError)."""
        ...

    def describe(self, index: int) -> str:
        """A human-readable name of video ``index`` (its path) for warnings."""
        ...


@dataclass(frozen=True)
class VideoEntry:
    """One labelled video file."""

    path: str
    label: int


class FileSource:
    """Videos decoded from files with PyAV, only the frames a clip needs.

    Args:
        entries: the labelled files of one split.
        short_side: frames whose short side is longer are scaled down to it while decoding
            (None: native size; never scaled up).

    Example:
        >>> src = FileSource([VideoEntry("a.mp4", 0)])
        >>> len(src), src.label(0)
        (1, 0)
    """

    def __init__(self, entries: Sequence[VideoEntry], *, short_side: int | None = None) -> None:
        self.entries = list(entries)
        self.short_side = short_side

    def __len__(self) -> int:
        return len(self.entries)

    def label(self, index: int) -> int:
        """Class index of video ``index``."""
        return self.entries[index].label

    def read(self, index: int, select: Select) -> torch.Tensor:
        """Decode the frames ``select(n)`` of video ``index``."""
        return read_frames(self.entries[index].path, select, short_side=self.short_side)

    def describe(self, index: int) -> str:
        """The file path of video ``index``."""
        return self.entries[index].path


def check_failures(failed: int, total: int, *, max_fraction: float, name: str) -> None:
    """Raise TooManyBrokenVideos when more than ``max_fraction`` of ``total`` videos failed."""
    if total and failed > max_fraction * total:
        raise TooManyBrokenVideos(
            f"{name}: {failed} of {total} videos failed to decode (more than "
            f"{max_fraction:.0%}); check the files or the dataset root (see the warnings above)"
        )


class ClipDataset(Dataset):
    """Clips of T+1 frames from a video source, transformed for training, validation or test.

    Args:
        source: the videos (:class:`FileSource` or the synthetic renderer).
        mode: "train" (random clip, random resized crop, optional flip), "val" (centre clip,
            centre crop) or "test" (``num_clips`` x ``num_crops`` views stacked, V x C x T x H x W).
        frames: T; each clip holds T+1 frames.
        sampling_rate: stride between sampled frames.
        crop: output height and width.
        num_clips, num_crops: test views (crops: 1 = centre, 3 = along the long side).
        flip: random horizontal flip in train mode.
        scale: area range of the train random resized crop.
        jitter: (min, max) short side of the train scale jitter, instead of ``scale``.
        max_failed_fraction: error once more than this fraction of videos failed.
        name: dataset name for messages.

    Example:
        >>> from mpbench.data.synth import SynthSource, preset_spec
        >>> ds = ClipDataset(SynthSource(preset_spec("easy"), seed=0, split="val"),
        ...                  mode="val", frames=8, sampling_rate=1, crop=64)
        >>> ds[0][0].shape
        torch.Size([3, 9, 64, 64])
    """

    def __init__(
        self,
        source: VideoSource,
        *,
        mode: Mode,
        frames: int,
        sampling_rate: int,
        crop: int,
        num_clips: int = 1,
        num_crops: int = 1,
        flip: bool = True,
        scale: tuple[float, float] = (0.4, 1.0),
        jitter: tuple[int, int] | None = None,
        mean: Sequence[float] = MEAN,
        std: Sequence[float] = STD,
        max_failed_fraction: float = 0.05,
        name: str = "dataset",
    ) -> None:
        _check_clip_args(frames=frames, sampling_rate=sampling_rate, crop=crop)
        if mode not in ("train", "val", "test"):
            raise ValueError(f"mode must be 'train', 'val' or 'test', got {mode!r}")
        if num_clips < 1:
            raise ValueError(f"num_clips must be >= 1, got {num_clips}")
        if num_crops not in (1, 3):
            raise ValueError(
                f"num_crops must be 1 (centre) or 3 (along the long side), got {num_crops}"
            )
        self.source, self.mode, self.name = source, mode, name
        self.frames, self.sampling_rate, self.crop = frames, sampling_rate, crop
        self.num_clips, self.num_crops = num_clips, num_crops
        self.mean, self.std = tuple(mean), tuple(std)
        self.max_failed_fraction = max_failed_fraction
        self._transform = _mode_transform(
            mode, crop=crop, flip=flip, scale=scale, jitter=jitter, mean=mean, std=std
        )
        # one flag per video in shared memory: every DataLoader worker marks the same tensor
        self._failed = torch.zeros(len(source), dtype=torch.bool).share_memory_()
        self._tiny = torch.zeros(len(source), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.source)

    @property
    def labels(self) -> list[int]:
        """Class index of every item."""
        return [self.source.label(i) for i in range(len(self.source))]

    @property
    def skipped(self) -> int:
        """Distinct videos that failed to decode so far (over all DataLoader workers)."""
        return int(self._failed.sum())

    def decoded(self, index: int) -> torch.Tensor:
        """The uint8 frames item ``index`` is made of, before any transform: (T+1) x H x W x 3
        per clip, a test item's clips one after the other (raises VideoDecodeError)."""
        starts: list[int] = []

        def select(n: int) -> list[int]:
            starts.extend(self._starts(n))
            kw = {"frames": self.frames, "sampling_rate": self.sampling_rate}
            return torch.cat([clip_indices(n, start=s, **kw) for s in starts]).tolist()

        return self.source.read(index, select)

    def __getitem__(self, index: int) -> Item:
        try:
            frames = self.decoded(index)
        except VideoDecodeError as exc:
            self._record_failure(index, exc)
            return None
        self._check_size(index, frames)
        return self._clip(frames.split(self.frames + 1)), self.source.label(index)

    def _starts(self, n: int) -> list[int]:
        """First frame of each clip of a video of ``n`` frames: one random (train), the centre
        (val) or ``num_clips`` uniform (test); each video is decoded once for all its clips."""
        kw = {"frames": self.frames, "sampling_rate": self.sampling_rate}
        if self.mode == "train":
            return [random_start(n, **kw)]
        starts = uniform_starts(n, clips=self.num_clips, **kw)
        return starts[:1] if self.mode == "val" else starts

    def _record_failure(self, index: int, exc: Exception) -> None:
        """Warn, flag the video, and stop when too many videos have failed."""
        log.warning("skipping unreadable video %s (%s)", self.source.describe(index), exc)
        self._failed[index] = True
        check_failures(
            self.skipped,
            len(self),
            max_fraction=self.max_failed_fraction,
            name=f"{self.name} ({self.mode})",
        )

    def _check_size(self, index: int, frames: torch.Tensor) -> None:
        """Warn once per video whose frames are scaled up more than MAX_UPSCALE times."""
        height, width = frames.shape[1:3]
        if self._tiny[index] or min(height, width) * MAX_UPSCALE >= self.crop:
            return
        self._tiny[index] = True
        log.warning(
            "%s: its frames are %dx%d pixels, scaled up to the target short side %d (crop) "
            "%.0f times; the clip is used as it is (a tiny or damaged video?)",
            self.source.describe(index),
            width,
            height,
            self.crop,
            self.crop / min(height, width),
        )

    def _clip(self, clips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Transform the decoded clip(s) of one video (T+1 x H x W x 3 each)."""
        if self.mode != "test":
            assert self._transform is not None
            return self._transform(clips[0])
        views = [
            view
            for clip in clips
            for view in test_views(
                clip, crop=self.crop, crops=self.num_crops, mean=self.mean, std=self.std
            )
        ]
        return torch.stack(views)  # V x C x (T+1) x H x W, clip-major


def _mode_transform(mode: Mode, **kw: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The transform of train and val modes (test builds its views itself)."""
    if mode == "train":
        return train_transform(**kw)
    if mode == "val":
        return eval_transform(crop=kw["crop"], mean=kw["mean"], std=kw["std"])
    return None


def _check_clip_args(*, frames: int, sampling_rate: int, crop: int) -> None:
    """Validate the clip geometry."""
    for name, value, low in (
        ("frames", frames, 1),
        ("sampling_rate", sampling_rate, 1),
        ("crop", crop, 8),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def collate_clips(batch: Sequence[Item]) -> dict[str, Any]:
    """Stack the decodable items; ``skipped`` counts the dropped ``None`` items.

    When every item of a batch failed, ``video`` and ``label`` are empty (0 rows).
    """
    items = [b for b in batch if b is not None]
    skipped = len(batch) - len(items)
    if not items:
        return {
            "video": torch.empty(0),
            "label": torch.empty(0, dtype=torch.long),
            "skipped": skipped,
        }
    return {
        "video": torch.stack([v for v, _ in items]),
        "label": torch.tensor([lab for _, lab in items], dtype=torch.long),
        "skipped": skipped,
    }


@dataclass
class DataBundle:
    """The splits of one dataset plus what a model needs to know about it.

    Args:
        train, val: datasets of (video C x (T+1) x H x W, label) items; val chooses models
            (early stopping, pruning, searches).
        make_test: builds the test dataset for (num_clips, num_crops): the test split, disjoint
            from train and val and reported only.
        class_names: class names in label order.
        mean, std: the per-channel normalisation of the videos.
        name: the dataset name.
        info: facts for logging (root, split, preset knobs, ...).
        make_test_shift: builds the appearance-shifted test dataset like ``make_test``, or None
            when the dataset has no test_shift split.

    Example:
        >>> from mpbench.data import build_data
        >>> bundle = build_data("synth", frames=8, sampling_rate=1, crop=64, seed=0)
        >>> bundle.num_classes, bundle.test(2, 3)[0][0].shape
        (6, torch.Size([6, 3, 9, 64, 64]))
    """

    train: ClipDataset
    val: ClipDataset
    make_test: Callable[[int, int], ClipDataset]
    class_names: list[str]
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    make_test_shift: Callable[[int, int], ClipDataset] | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def test(self, num_clips: int = 1, num_crops: int = 1) -> ClipDataset:
        """The test split with ``num_clips`` temporal clips x ``num_crops`` spatial crops."""
        return self.make_test(num_clips, num_crops)

    def test_shift(self, num_clips: int = 1, num_crops: int = 1) -> ClipDataset | None:
        """The appearance-shifted test split like :meth:`test`, or None when there is none."""
        if self.make_test_shift is None:
            return None
        return self.make_test_shift(num_clips, num_crops)

    def skipped(self) -> dict[str, int]:
        """Distinct videos that failed to decode so far, per split (train, val)."""
        return {"train": self.train.skipped, "val": self.val.skipped}
