"""Spatial transforms (torchvision.transforms.v2) and normalisation of decoded clips.

Every function takes uint8 frames T x H x W x 3 and returns float32 C x T x H x W normalised
with ``(x / 255 - mean) / std``. Random transforms draw from torch's global RNG, which DataLoader
seeds per worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from mpbench import _pixels

MEAN: tuple[float, float, float] = (_pixels.MEAN,) * 3
STD: tuple[float, float, float] = (_pixels.STD,) * 3

ClipTransform = Callable[[torch.Tensor], torch.Tensor]


def _to_video(frames: torch.Tensor) -> tv_tensors.Video:
    """T x H x W x 3 uint8 -> tv_tensors.Video T x 3 x H x W."""
    return tv_tensors.Video(frames.permute(0, 3, 1, 2))


def normalise(video: torch.Tensor, *, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 T x 3 x H x W -> float32 3 x T x H x W, normalised per channel."""
    x = video.as_subclass(torch.Tensor).float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(m).div_(s).permute(1, 0, 2, 3).contiguous()


def train_transform(
    *,
    crop: int,
    scale: tuple[float, float] = (0.4, 1.0),
    flip: bool = True,
    jitter: tuple[int, int] | None = None,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> ClipTransform:
    """Random resized crop (same box for every frame) and optional horizontal flip; with
    ``jitter`` = (min, max), scale jitter instead: the short side resized to a random integer
    in [min, max], then a random ``crop`` x ``crop`` box (PySlowFast's TRAIN_JITTER_SCALES).

    Turn ``flip`` off where left and right are different classes (the synthetic benchmark,
    Something-Something v2).
    """
    if jitter:
        ops = _jitter_ops(crop, jitter)
    else:
        ops = [v2.RandomResizedCrop(crop, scale=scale, antialias=True)]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    spatial = v2.Compose(ops)
    return lambda frames: normalise(spatial(_to_video(frames)), mean=mean, std=std)


class RandomShortSide(v2.Transform):
    """Resize the short side to an integer drawn uniformly from [low, high] (one per clip).

    Args:
        low: the smallest short side.
        high: the largest short side.

    Example:
        >>> import torch
        >>> video = tv_tensors.Video(torch.zeros(2, 3, 40, 60, dtype=torch.uint8))
        >>> RandomShortSide(32, 32)(video).shape
        torch.Size([2, 3, 32, 48])
    """

    def __init__(self, low: int, high: int) -> None:
        super().__init__()
        self.low, self.high = low, high

    def make_params(self, flat_inputs: list) -> dict:
        """The short side of this clip."""
        return {"size": int(torch.randint(self.low, self.high + 1, ()))}

    def transform(self, inpt: object, params: dict) -> object:
        """Resize ``inpt`` so that its short side is ``params['size']``."""
        return v2.functional.resize(inpt, [params["size"]], antialias=True)


def _jitter_ops(crop: int, jitter: tuple[int, int]) -> list[v2.Transform]:
    """Scale jitter, then a random crop."""
    low, high = jitter
    if not crop <= low <= high:
        raise ValueError(f"jitter_scales must be [min, max] with crop ({crop}) <= min <= max")
    return [RandomShortSide(low, high), v2.RandomCrop(crop)]


def eval_transform(
    *, crop: int, mean: Sequence[float] = MEAN, std: Sequence[float] = STD
) -> ClipTransform:
    """Resize the short side to ``crop`` and take the centre crop."""
    spatial = v2.Compose([v2.Resize(crop, antialias=True), v2.CenterCrop(crop)])
    return lambda frames: normalise(spatial(_to_video(frames)), mean=mean, std=std)


def crop_boxes(height: int, width: int, *, crop: int, crops: int) -> list[tuple[int, int]]:
    """Top-left corners of ``crops`` (1 or 3) crops: centre, or both ends and centre of the
    long side."""
    if crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 (centre) or 3 (along the long side), got {crops}")
    top, left = (height - crop) // 2, (width - crop) // 2
    if crops == 1:
        return [(top, left)]
    if width >= height:
        return [(top, 0), (top, left), (top, width - crop)]
    return [(0, left), (top, left), (height - crop, left)]


def test_views(
    frames: torch.Tensor,
    *,
    crop: int,
    crops: int,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> list[torch.Tensor]:
    """Short side resized to ``crop``, then ``crops`` spatial crops, each 3 x T x crop x crop."""
    video = v2.functional.resize(_to_video(frames), [crop], antialias=True)
    h, w = video.shape[-2:]
    return [
        normalise(video[..., y : y + crop, x : x + crop], mean=mean, std=std)
        for y, x in crop_boxes(h, w, crop=crop, crops=crops)
    ]
