"""Video decoding with PyAV and temporal sampling of clips of T+1 frames.

Decoding is single-threaded per video (PyAV's thread pool costs more than it saves on short
clips; parallelism comes from DataLoader workers). A file that cannot be opened, has no video
stream or yields no frame raises :class:`VideoDecodeError`, which the datasets turn into a
skipped item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg")


Select = Callable[[int], Sequence[int]]
"""Maps a video's frame count to the frame indices a clip (or several) needs."""


class VideoDecodeError(RuntimeError):
    """A video could not be decoded (unreadable, truncated to nothing, or empty)."""


def decode_video(path: str) -> torch.Tensor:
    """Decode every frame of ``path`` as a uint8 tensor T x H x W x 3 (RGB)."""
    import av
    from av.video.reformatter import VideoReformatter

    rgb = VideoReformatter()  # one converter for every frame (a third faster than to_ndarray's)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            frames = [
                rgb.reformat(f, format="rgb24").to_ndarray() for f in container.decode(stream)
            ]
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise VideoDecodeError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if not frames:
        raise VideoDecodeError(f"{path}: no decodable frame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # a resolution change mid-stream: keep the first frame's size
        frames = [f for f in frames if f.shape == frames[0].shape]
    return torch.from_numpy(np.stack(frames))


def read_frames(path: str, select: Select, *, short_side: int | None = None) -> torch.Tensor:
    """The frames ``select(n)`` of ``path`` (``n`` its frame count), uint8 N x H x W x 3 in the
    order asked, scaled down so that the short side is at most ``short_side``."""
    frames = decode_video(path)
    picked = frames[torch.as_tensor(list(select(frames.shape[0])), dtype=torch.long)]
    return _shrink(picked, short_side)


def iter_frames(path: str, *, short_side: int | None = None) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in order, uint8 H x W x 3, scaled down as :func:`read_frames`
    does (byte-identical to it), one at a time (memory does not grow with the video)."""
    n = 0
    for frame in decode_video(path):  # placeholder: a streaming decoder replaces this
        n += 1
        yield _shrink(frame[None], short_side)[0].numpy()
    if n == 0:
        raise VideoDecodeError(f"{path}: no decodable frame")


def _shrink(frames: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """Scale N x H x W x 3 uint8 frames down to ``short_side`` (never up)."""
    h, w = frames.shape[1:3]
    if short_side is None or min(h, w) <= short_side:
        return frames
    from torchvision.transforms.v2 import functional as F

    out = F.resize(frames.permute(0, 3, 1, 2), [short_side], antialias=True)
    return out.permute(0, 2, 3, 1).contiguous()


def clip_span(frames: int, sampling_rate: int) -> int:
    """Number of source frames a clip of ``frames`` + 1 samples ``sampling_rate`` apart covers."""
    return frames * sampling_rate + 1


def clip_indices(num_frames: int, *, frames: int, sampling_rate: int, start: int) -> torch.Tensor:
    """Indices of the T+1 frames of a clip starting at ``start``; past the end repeats the last."""
    idx = start + torch.arange(frames + 1) * sampling_rate
    return idx.clamp_(0, num_frames - 1)


def random_start(num_frames: int, *, frames: int, sampling_rate: int) -> int:
    """A uniformly random clip start (torch RNG, so DataLoader worker seeding controls it)."""
    slack = num_frames - clip_span(frames, sampling_rate)
    return int(torch.randint(0, slack + 1, ()).item()) if slack > 0 else 0


def uniform_starts(num_frames: int, *, frames: int, sampling_rate: int, clips: int) -> list[int]:
    """Starts of ``clips`` clips centred on ``clips`` equal segments (one clip: the centre)."""
    slack = max(num_frames - clip_span(frames, sampling_rate), 0)
    return [round(slack * (k + 0.5) / clips) for k in range(clips)]
