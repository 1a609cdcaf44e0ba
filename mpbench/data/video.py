"""Video decoding with PyAV and temporal sampling of clips of T+1 frames.

Decoding is single-threaded per video (PyAV's thread pool costs more than it saves on short
clips; parallelism comes from DataLoader workers). A file that cannot be opened, has no video
stream or yields no frame raises :class:`VideoDecodeError`, which the datasets turn into a
skipped item.

Clips decode by seeking (:func:`read_frames`): demuxing a file once (no decoding; cached per
process) lists its frames' presentation timestamps and keyframes, so that a clip costs its span
plus the distance back to a keyframe, whatever the video's length. Frame k is the k-th frame in
presentation order, the same frame :func:`decode_video` and :func:`iter_frames` give at k, byte
for byte (one RGB conversion and scaler everywhere). Where the decoder disagrees with that index
(no timestamps, as in raw elementary streams, or frames the index does not predict), the video
is decoded from the start instead, remembered per path. The container's frame count and
duration are never used.

Truncated files: a demuxing or decoding error, a packet cut short, or (decoding from the start)
a frame the decoder flags as corrupt ends the video; the frames before it are the video.

A resolution change mid-stream (concatenated recordings, adaptive streams): every frame is scaled
to the size of the video's first frame (the stream's size), so no frame is lost; such frames are
counted (``stats["resized"]``) and the first one of a video is logged as a warning.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import torch

log = logging.getLogger(__name__)

DECODER_VERSION = 2
"""Bump when the decoded bytes change (conversion, scaling, frame selection): decoded-clip
caches record it and rebuild when it differs."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg")


Select = Callable[[int], Sequence[int]]
"""Maps a video's frame count to the frame indices a clip (or several) needs."""


class VideoDecodeError(RuntimeError):
    """A video could not be decoded (unreadable, truncated to nothing, or empty)."""


_AV_ERRORS = (av.FFmpegError, OSError, ValueError, IndexError, EOFError)
_INTERPOLATION = "AREA"  # one scaler for every path, so that they agree byte for byte
RESIZE_METHOD = f"FFmpeg swscale {_INTERPOLATION.lower()}, short side scaled down only"
"""How frames are brought to the short side (every run logs it: :mod:`mpbench.data.provenance`)."""
_INDEX_CACHE_SIZE = 4096  # a few hundred bytes to tens of kB each (8 bytes per frame)
_resize_warned: set[str] = set()  # videos whose resolution change was logged (once each)


@dataclass
class _Index:
    """What demuxing (no decoding) tells about a video: presentation order and keyframes."""

    pts: np.ndarray  # int64 (n,), sorted presentation timestamps of the frames
    keys: np.ndarray  # int64, sorted indices (into ``pts``) of the keyframes
    width: int  # the stream's frame size, which is its first frame's (decoded when the
    height: int  # container does not say): every frame is converted to it
    end: int | None = None  # file cut short: frames presented from here on are left out
    sequential: bool = False  # the index cannot be trusted: decode from the start instead
    count: int | None = None  # frames the decoder yields, once a sequential pass counted them


class _IndexMismatch(Exception):
    """The decoder disagrees with the index (the caller falls back to sequential decoding)."""


def decode_video(
    path: str, *, short_side: int | None = None, stats: dict[str, int] | None = None
) -> torch.Tensor:
    """Decode every frame of ``path`` as a uint8 tensor T x H x W x 3 (RGB), scaled down as
    :func:`read_frames` does (``stats`` as in :func:`iter_frames`)."""
    frames = iter_frames(path, short_side=short_side, stats=stats)
    return torch.from_numpy(np.stack(list(frames)))


def iter_frames(
    path: str, *, short_side: int | None = None, stats: dict[str, int] | None = None
) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in order, uint8 H x W x 3, scaled down as :func:`read_frames`
    does (byte-identical to it), one at a time (memory does not grow with the video).
    ``stats``, when given, receives ``resized``: the frames of another size than the first
    (a resolution change mid-stream), which are scaled to the first frame's size."""
    stats = {} if stats is None else stats
    stats["resized"] = 0
    index = _index(path)
    with _open(path) as (container, stream):
        convert = _converter(index, short_side, path=path, stats=stats)
        for frame in _decoded(container, stream, path=path, end=index.end):
            yield convert(frame)


def video_frame_count(path: str) -> int:
    """Number of frames of ``path`` (from the demuxed index; a counting decode when the
    container's timestamps cannot be trusted)."""
    return _frame_count(path, _index(path))


def read_frames(
    path: str,
    select: Select,
    *,
    short_side: int | None = None,
    stats: dict[str, int] | None = None,
) -> torch.Tensor:
    """The frames ``select(n)`` of ``path`` (``n`` its frame count), uint8 N x H x W x 3 in the
    order asked, scaled down so that the short side is at most ``short_side``.

    Only the needed frames are decoded: a seek to the keyframe before each group of needed
    frames, decoding forward to the group's last frame. ``select`` is called exactly once.
    ``stats``, when given, receives ``frames`` (n), ``decoded`` (frames the decoder produced),
    ``seeks``, ``fallback`` (1 when the video is decoded sequentially from the start) and
    ``resized`` (distinct frames returned whose stored size is not the first frame's: they are
    scaled to it, see the module docstring).
    """
    stats = {} if stats is None else stats
    stats.update(decoded=0, seeks=0, fallback=0, resized=0)
    index = _index(path)
    n = stats["frames"] = _frame_count(path, index, stats)
    want = _checked(select(n), n, path)
    if not want:
        w, h = _target_size(index.width, index.height, short_side)
        return torch.empty((0, h, w, 3), dtype=torch.uint8)
    if not index.sequential:
        try:
            return _stack(_read_seeking(path, index, want, short_side, stats), want)
        except _IndexMismatch:
            index.sequential = True  # remembered for this path (the index is cached)
            stats["resized"] = 0  # the sequential pass converts (and counts) them again
        if _frame_count(path, index, stats) != n:
            raise VideoDecodeError(
                f"{path}: the container lists {n} frames but {index.count} decode"
            )
    return _stack(_read_sequential(path, index, want, short_side, stats), want)


def _read_seeking(
    path: str, index: _Index, want: list[int], short_side: int | None, stats: dict[str, int]
) -> dict[int, np.ndarray]:
    """Decode the frames ``want`` group by group, seeking to each group's keyframe."""
    got: dict[int, np.ndarray] = {}
    with _open(path) as (container, stream):
        convert = _converter(index, short_side, path=path, stats=stats)
        for group in _groups(np.unique(want), index.keys):
            key = index.keys[np.searchsorted(index.keys, group[0], side="right") - 1]
            try:
                container.seek(int(index.pts[key]), stream=stream, backward=True, any_frame=False)
            except _AV_ERRORS as exc:
                raise _IndexMismatch from exc
            stats["seeks"] += 1
            _decode_group(container, stream, index, group, got, convert, stats)
    return got


def _decode_group(
    container: Any,
    stream: Any,
    index: _Index,
    group: list[int],
    got: dict[int, np.ndarray],
    convert: Callable[[Any], np.ndarray],
    stats: dict[str, int],
) -> None:
    """Decode forward from the current position, keeping the frames ``group`` (sorted)."""
    todo = iter(group)
    nxt = next(todo)
    for frame in _decoded(container, stream, end=index.end, skip_before=int(index.pts[nxt])):
        stats["decoded"] += 1
        k = _position(index.pts, frame.pts)
        if k < nxt:  # before the group (from the keyframe on, or a leading B-frame)
            continue
        if k > nxt or frame.is_corrupt:  # missed (seek or index wrong) or damaged
            raise _IndexMismatch
        got[k] = convert(frame)
        nxt = next(todo, -1)
        if nxt < 0:
            return
    raise _IndexMismatch  # the stream ended before the group's last frame


def _read_sequential(
    path: str, index: _Index, want: list[int], short_side: int | None, stats: dict[str, int]
) -> dict[int, np.ndarray]:
    """Decode from the start, converting only the frames ``want``, up to the last of them."""
    needed, last = set(want), max(want)
    got: dict[int, np.ndarray] = {}
    with _open(path) as (container, stream):
        convert = _converter(index, short_side, path=path, stats=stats)
        for k, frame in enumerate(_decoded(container, stream, path=path, end=index.end)):
            stats["decoded"] += 1
            if k in needed:
                got[k] = convert(frame)
            if k == last:
                return got
    raise VideoDecodeError(f"{path}: frame {last} did not decode on a second pass")


def _groups(need: np.ndarray, keys: np.ndarray) -> list[list[int]]:
    """Split sorted frame indices where decoding on would cross a keyframe that the next
    index could be reached from (a new seek then skips the gap)."""
    key_of = keys[np.searchsorted(keys, need, side="right") - 1]
    cuts = np.flatnonzero(key_of[1:] > need[:-1]) + 1
    return [g.tolist() for g in np.split(need, cuts)]


def _position(pts: np.ndarray, value: int | None) -> int:
    """Index of the frame with presentation time ``value`` (raises _IndexMismatch if none)."""
    if value is None:
        raise _IndexMismatch
    k = int(np.searchsorted(pts, value))
    if k == len(pts) or pts[k] != value:
        raise _IndexMismatch
    return k


def _checked(indices: Sequence[int], n: int, path: str) -> list[int]:
    """The selected indices as ints, each within the video's ``n`` frames."""
    want = [int(k) for k in indices]
    bad = [k for k in want if not 0 <= k < n]
    if bad:
        raise ValueError(f"{path}: frame index {bad[0]} out of range for a video of {n} frames")
    return want


def _stack(got: dict[int, np.ndarray], want: list[int]) -> torch.Tensor:
    """The decoded frames in the order asked (repeats included), N x H x W x 3."""
    return torch.from_numpy(np.stack([got[k] for k in want]))


def _frame_count(path: str, index: _Index, stats: dict[str, int] | None = None) -> int:
    """Frames of the video: the index's, or (sequential videos) a counting decode, cached."""
    if not index.sequential:
        return len(index.pts)
    if index.count is None:
        with _open(path) as (container, stream):
            index.count = sum(1 for _ in _decoded(container, stream, path=path, end=index.end))
        if stats is not None:
            stats["decoded"] += index.count
    if stats is not None:
        stats["fallback"] = 1
    return index.count


def _index(path: str) -> _Index:
    """The cached index of ``path`` (rebuilt when the file changes)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise VideoDecodeError(f"{path}: {type(exc).__name__}: {exc}") from exc
    return _cached_index(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=_INDEX_CACHE_SIZE)
def _cached_index(path: str, mtime_ns: int, size: int) -> _Index:
    """Demux ``path`` without decoding; ``mtime_ns`` and ``size`` only key the cache."""
    pts: list[int] = []
    key: list[bool] = []
    ok, end = True, None
    with _open(path) as (container, stream):
        width, height = stream.codec_context.width, stream.codec_context.height
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:  # cut short: no frame presented from its dts on is
                    end = packet.dts  # complete (each later packet has pts >= its dts)
                    break
                if packet.size == 0 or packet.is_discard:
                    continue
                if packet.pts is None:
                    ok = False
                    break
                pts.append(packet.pts)
                key.append(packet.is_keyframe)
        except _AV_ERRORS:  # truncated or damaged: the decoder decides what is there
            ok = False
    all_pts, is_key = np.asarray(pts, dtype=np.int64), np.asarray(key, dtype=bool)
    if end is not None:
        all_pts, is_key = all_pts[all_pts < end], is_key[all_pts < end]
    order = np.argsort(all_pts, kind="stable")
    sorted_pts = all_pts[order]
    keys = np.flatnonzero(is_key[order]).astype(np.int64)
    ok = ok and len(keys) > 0 and keys[0] == 0 and bool(np.all(np.diff(sorted_pts) > 0))
    if not (width and height):  # the container does not say: the first frame tells
        width, height = _first_frame_size(path)
    return _Index(sorted_pts, keys, width, height, end=end, sequential=not ok)


def _first_frame_size(path: str) -> tuple[int, int]:
    """(width, height) of the first decoded frame of ``path`` (VideoDecodeError if none)."""
    with _open(path) as (container, stream):
        frame = next(_decoded(container, stream, path=path))
        return frame.width, frame.height


@contextlib.contextmanager
def _open(path: str) -> Iterator[tuple[Any, Any]]:
    """The open container and its first video stream (single-threaded decoding)."""
    try:
        container = av.open(path)
    except _AV_ERRORS as exc:
        raise VideoDecodeError(f"{path}: {type(exc).__name__}: {exc}") from exc
    try:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a codec FFmpeg does not know
            raise VideoDecodeError(f"{path}: no decoder for the video stream")
        stream.codec_context.thread_count = 1
        yield container, stream
    finally:
        container.close()


def _decoded(
    container: Any,
    stream: Any,
    *,
    path: str | None = None,
    end: int | None = None,
    skip_before: int | None = None,
) -> Iterator[Any]:
    """Decoded frames from the current position, leaving out those presented at or after
    ``end``; a demuxing or decoding error ends the video (a truncated file keeps the frames
    before it). With ``path`` (decoding from the start): a frame the decoder flags as corrupt
    (concealed errors) ends the video too, and no frame at all raises VideoDecodeError.
    ``skip_before``: frames presented before it that no other frame references are not
    decoded at all (they are not wanted, and nothing else depends on them)."""
    produced = False
    context, skipping = stream.codec_context, False
    try:
        for packet in container.demux(stream):
            skip = skip_before is not None and packet.pts is not None and packet.pts < skip_before
            if skip != skipping:
                context.skip_frame, skipping = ("NONREF" if skip else "DEFAULT"), skip
            # a short read (file cut inside this packet) ends the video: flush what precedes
            for frame in stream.decode(None if packet.is_corrupt else packet):
                if end is not None and frame.pts is not None and frame.pts >= end:
                    continue
                if path is not None and frame.is_corrupt:
                    _no_frame(path, produced, "first frame corrupt")
                    return
                produced = True
                yield frame
            if packet.is_corrupt:
                break
    except _AV_ERRORS as exc:
        if path is not None and not produced:
            raise VideoDecodeError(f"{path}: {type(exc).__name__}: {exc}") from exc
        return
    if path is not None:
        _no_frame(path, produced, "no decodable frame")


def _no_frame(path: str, produced: bool, why: str) -> None:
    """Raise VideoDecodeError when decoding from the start produced nothing."""
    if not produced:
        raise VideoDecodeError(f"{path}: {why}")


def _converter(
    index: _Index, short_side: int | None, *, path: str, stats: dict[str, int]
) -> Callable[[Any], np.ndarray]:
    """The one frame conversion of every path: RGB at the scaled-down size of the video's first
    frame. A frame of another size (a resolution change mid-stream) is scaled to that size too,
    counted in ``stats["resized"]`` and logged once per video."""
    rgb = av.video.reformatter.VideoReformatter()  # reuses its scaler context from frame to frame
    first = (index.width, index.height)
    w, h = _target_size(*first, short_side)

    def convert(frame: Any) -> np.ndarray:
        if (frame.width, frame.height) != first:
            stats["resized"] = stats.get("resized", 0) + 1
            _warn_resized(path, first, (frame.width, frame.height))
        out = rgb.reformat(
            frame, width=w, height=h, format="rgb24", interpolation=_INTERPOLATION, threads=1
        )
        return np.ascontiguousarray(out.to_ndarray())

    return convert


def _warn_resized(path: str, first: tuple[int, int], size: tuple[int, int]) -> None:
    """Log a video's resolution change (once per video and process)."""
    if path in _resize_warned:
        return
    _resize_warned.add(path)
    log.warning(
        "%s: the frame size changes mid-stream (%dx%d, then %dx%d); every frame is scaled to "
        "the first frame's size %dx%d (counted as 'resized' in the decode stats)",
        path,
        *first,
        *size,
        *first,
    )


def _target_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) with the short side brought down to ``short_side`` (never up)."""
    if short_side is not None and (isinstance(short_side, bool) or short_side < 1):
        raise ValueError(f"short_side must be None or an integer >= 1, got {short_side!r}")
    short = min(width, height)
    if short_side is None or short <= short_side:
        return width, height
    scale = short_side / short
    if width <= height:
        return short_side, round(height * scale)
    return round(width * scale), short_side


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


def ffmpeg_versions() -> str:
    """The FFmpeg libraries PyAV links (its wheel bundles them), e.g. ``libavcodec 62.28.102,
    libavformat 62.12.102, ...``: they decide the decoded bytes as much as PyAV does."""
    libs = sorted(av.library_versions.items())
    return ", ".join(f"{name} {'.'.join(map(str, v))}" for name, v in libs)
