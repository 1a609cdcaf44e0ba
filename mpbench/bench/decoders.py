"""The clip decoders that ``mpbench bench data`` compares, and the worker process that times one.

Every decoder returns the frames at the given indices of one video, uint8 N x H x W x 3 at one
size (the short side brought down to the benchmark's), so that they do the same work:

- ``full``: the way mpbench read clips before the seeking decoder: every frame of the file
  decoded at its stored size (:func:`~mpbench.data.video.decode_video`), the clip's frames
  picked, then scaled down with torchvision (time and memory grow with the video);
- ``seek``: :func:`~mpbench.data.video.read_frames` (seek to the keyframe, decode the clip);
- ``pytorchvideo``: ``EncodedVideo.from_path(..., decoder="pyav").get_clip(start_sec, end_sec)``
  as pytorchvideo's datasets call it (the file read into memory, every frame of the window
  decoded at full size to float), then every ``sampling_rate``-th frame resized;
- ``torchcodec``, ``decord``: their ``get_frames_at`` / ``get_batch`` on a decoder opened once
  per worker (both scan the file when opened), one FFmpeg thread;
- ``cache``: :meth:`~mpbench.data.cache.CacheSource.read` of a store built beforehand.

``python -m mpbench.bench.decoders SPEC`` (SPEC a JSON :class:`WorkerSpec`) is one worker: it
opens the decoder, reads one warm-up clip, prints ``{"status": "ready"}``, waits for a line on
stdin (so that several workers start timing together), reads the remaining clips and prints one
JSON line with its timing and peak resident memory. Any failure prints
``{"status": "unavailable", "reason": ...}`` instead; no number is ever made up.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Literal, get_args

Decoder = Literal["full", "seek", "pytorchvideo", "torchcodec", "decord", "cache"]
DECODERS: tuple[Decoder, ...] = get_args(Decoder)
# The package each optional decoder imports (looked up before any worker starts).
OPTIONAL_PACKAGES: dict[str, str] = {
    "pytorchvideo": "pytorchvideo",
    "torchcodec": "torchcodec",
    "decord": "decord",
}
# Environment of a worker: one thread everywhere, so that its time and memory are its own.
WORKER_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

Reader = Callable[[list[int]], Any]


@dataclass(frozen=True)
class WorkerSpec:
    """What one worker process reads and how.

    Args:
        decoder: one of :data:`DECODERS`.
        path: the video file.
        clips: the frame indices of each clip; the first is the untimed warm-up.
        height: height of the frames every decoder returns.
        width: their width.
        fps: the video's frame rate as "num/den" (pytorchvideo asks for seconds).
        short_side: the short side asked for (``height`` x ``width`` is the video's scaled by it).
        store: the cache store folder (``cache`` only).

    Example:
        >>> spec = WorkerSpec("seek", "a.mp4", [[0, 4, 8]], 256, 455, "25/1", 256)
        >>> WorkerSpec(**json.loads(spec.to_json())) == spec
        True
    """

    decoder: str
    path: str
    clips: list[list[int]]
    height: int
    width: int
    fps: str
    short_side: int
    store: str | None = None

    def to_json(self) -> str:
        """The spec as one JSON string (a worker's command-line argument)."""
        return json.dumps(asdict(self))


def missing_package(decoder: str) -> str | None:
    """The package ``decoder`` needs that is not installed, or None."""
    package = OPTIONAL_PACKAGES.get(decoder)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return package


def open_reader(spec: WorkerSpec) -> Reader:
    """The function that reads one clip (frame indices -> N x H x W x 3) with ``spec.decoder``."""
    openers: dict[str, Callable[[WorkerSpec], Reader]] = {
        "full": _full,
        "seek": _seek,
        "pytorchvideo": _pytorchvideo,
        "torchcodec": _torchcodec,
        "decord": _decord,
        "cache": _cache,
    }
    if spec.decoder not in openers:
        raise ValueError(f"unknown decoder {spec.decoder!r}; expected one of {list(openers)}")
    return openers[spec.decoder](spec)


def _full(spec: WorkerSpec) -> Reader:
    from torchvision.transforms.v2 import functional as F

    from mpbench.data.video import decode_video

    def read(idx: Sequence[int]) -> Any:
        frames = decode_video(spec.path)[list(idx)].permute(0, 3, 1, 2)
        if min(frames.shape[-2:]) > spec.short_side:  # scaled down, never up
            frames = F.resize(frames, [spec.short_side], antialias=True)
        return frames.permute(0, 2, 3, 1)

    return read


def _seek(spec: WorkerSpec) -> Reader:
    from mpbench.data.video import read_frames

    return lambda idx: read_frames(spec.path, lambda n: idx, short_side=spec.short_side)


def _cache(spec: WorkerSpec) -> Reader:
    from mpbench.data.cache import CacheStore
    from mpbench.data.datasets import VideoEntry

    if spec.store is None:
        raise ValueError("the cache decoder needs a store")
    source = CacheStore.open(spec.store).source([VideoEntry(spec.path, 0)])
    return lambda idx: source.read(0, lambda n: idx)


def _resized(frames: Any, spec: WorkerSpec) -> Any:
    """N x C x H x W frames (uint8 or float) -> uint8 N x H x W x 3 at the benchmark's size."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    frames = TF.resize(frames, [spec.height, spec.width], antialias=True)
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _pytorchvideo(spec: WorkerSpec) -> Reader:
    from pytorchvideo.data.encoded_video import EncodedVideo

    fps = Fraction(spec.fps)

    def read(idx: list[int]) -> Any:
        video = EncodedVideo.from_path(spec.path, decode_audio=False, decoder="pyav")
        # one decoding thread, as every other decoder here (FFmpeg's default uses all cores)
        video._container.streams.video[0].codec_context.thread_count = 1
        try:
            clip = video.get_clip(idx[0] / fps, (idx[-1] + 1) / fps)["video"]  # C x T x H x W
        finally:
            video.close()
        if clip is None:
            raise RuntimeError(f"get_clip returned no frames for frames {idx[0]}-{idx[-1]}")
        return _resized(clip.permute(1, 0, 2, 3)[[k - idx[0] for k in idx]], spec)

    return read


def _torchcodec(spec: WorkerSpec) -> Reader:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(spec.path, num_ffmpeg_threads=1)
    return lambda idx: _resized(decoder.get_frames_at(indices=idx).data, spec)


def _decord(spec: WorkerSpec) -> Reader:
    import decord

    reader = decord.VideoReader(spec.path, width=spec.width, height=spec.height, num_threads=1)
    return lambda idx: reader.get_batch(idx).asnumpy()


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (in kB there) in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith(f"{field}:"))
    return kib * 1024 / 1e6


def rss_mb() -> float:
    """This process's resident memory now in MB (VmRSS)."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far in MB (VmHWM).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the peak of the memory the process
    had before ``exec`` (its parent's, when forked or vforked) into it, so a worker started by
    a big parent would report the parent's size.
    """
    return _status_mb("VmHWM")


def _checked_clip(clip: Any, spec: WorkerSpec, n: int) -> None:
    """Raise when a decoder returned something other than n x H x W x 3 uint8 frames."""
    shape, want = tuple(clip.shape), (n, spec.height, spec.width, 3)
    if shape != want or str(clip.dtype).split(".")[-1] != "uint8":
        raise RuntimeError(f"returned {clip.dtype} frames of shape {shape}, expected {want}")


def time_clips(read: Reader, clips: Sequence[list[int]], spec: WorkerSpec) -> float:
    """Seconds to read ``clips`` one after the other, each checked."""
    start = time.perf_counter()
    for idx in clips:
        _checked_clip(read(idx), spec, len(idx))
    return time.perf_counter() - start


def _emit(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def _failure(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip().splitlines()
    return {"status": "unavailable", "reason": f"{type(exc).__name__}: {text[0] if text else ''}"}


def worker_main(spec: WorkerSpec) -> None:
    """Warm up, say ready, wait for the go line, time the clips, print the result line."""
    import torch

    torch.set_num_threads(1)
    try:
        read = open_reader(spec)
        start_rss = rss_mb()  # the decoder's imports done, nothing decoded yet
        time_clips(read, spec.clips[:1], spec)
    except Exception as exc:  # any failure is reported, with its reason, as unavailable
        _emit(_failure(exc))
        return
    _emit({"status": "ready"})
    sys.stdin.readline()
    try:
        seconds = time_clips(read, spec.clips[1:], spec)
    except Exception as exc:
        _emit(_failure(exc))
        return
    _emit(
        {
            "status": "ok",
            "clips": len(spec.clips) - 1,
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
            "start_rss_mb": start_rss,
        }
    )


if __name__ == "__main__":
    worker_main(WorkerSpec(**json.loads(sys.argv[1])))
