"""Where a trial's frames came from, so that runs decoded differently can be told apart.

Decoders differ frame by frame (seeking, colour conversion, scaling), so every trial records
(:func:`data_provenance`): how its frames were made (``decoded`` from files, served by the
decoded-clip ``cache``, or ``rendered`` in memory by the synthetic benchmark), the decoder and
its version (PyAV), the FFmpeg libraries PyAV links, the short side and the resize method, the
cache's header when the cache served the clips, and a SHA-256 of the uint8 frames of the first
:data:`DIGEST_CLIPS` validation clips (the centre clip of each video: the same for every seed
of a dataset on disk, whichever way it was decoded, as long as the pixels are the same).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mpbench import tracking as tk

DIGEST_CLIPS = 4
DECODED, CACHED, RENDERED = tk.FRAMES_DECODED, tk.FRAMES_CACHED, tk.FRAMES_RENDERED


def data_provenance(data: Any, *, clips: int = DIGEST_CLIPS) -> dict[str, Any]:
    """The provenance record of a DataBundle's frames (its validation split's source)."""
    return {**source_facts(data.val.source), **frames_digest(data.val, clips=clips)}


def source_facts(source: Any) -> dict[str, Any]:
    """Decoder, version, FFmpeg, short side, resize and cache header of a video source."""
    from mpbench.data.cache import CacheSource
    from mpbench.data.datasets import FileSource
    from mpbench.data.synth import SYNTH_VERSION, SynthSource

    if isinstance(source, FileSource):
        return _decoder_facts(DECODED, short_side=source.short_side)
    if isinstance(source, CacheSource):
        return _cache_facts(source)
    if isinstance(source, SynthSource):
        return {
            "frames": RENDERED,
            "decoder": f"none: rendered in memory (synthetic benchmark version {SYNTH_VERSION})",
            "ffmpeg": None,
            "short_side": None,
            "resize": None,
            "cache": None,
        }
    raise TypeError(f"no provenance for a video source of type {type(source).__name__}")


def _decoder_facts(frames: str, *, short_side: int | None) -> dict[str, Any]:
    """The facts of frames that this process's PyAV decodes."""
    import av

    from mpbench.data import video

    return {
        "frames": frames,
        "decoder": f"pyav {av.__version__} (mpbench decoder {video.DECODER_VERSION})",
        "ffmpeg": video.ffmpeg_versions(),
        "short_side": short_side,
        "resize": video.RESIZE_METHOD,
        "cache": None,
    }


def _cache_facts(source: Any) -> dict[str, Any]:
    """The facts of frames a decoded-clip cache serves: those of the decoder that built it."""
    from mpbench.data.cache import CacheStore
    from mpbench.data.video import RESIZE_METHOD

    header = CacheStore.open(source.path).header
    made = header.get("decoder", {})
    return {
        "frames": CACHED,
        "decoder": f"pyav {made.get('av')} (mpbench decoder {made.get('mpbench_decoder')})",
        "ffmpeg": made.get("ffmpeg"),
        "short_side": header.get("short_side"),
        "resize": RESIZE_METHOD,
        "cache": {"path": str(source.path), **header},
    }


def frames_digest(dataset: Any, *, clips: int = DIGEST_CLIPS) -> dict[str, Any]:
    """SHA-256 of the uint8 frames (shape and bytes) of the first ``clips`` items of
    ``dataset`` that decode, how many went in, and their frame size."""
    from mpbench.data.video import VideoDecodeError

    digest, used, size = hashlib.sha256(), 0, None
    for index in range(min(clips, len(dataset))):
        try:
            frames = dataset.decoded(index)  # (T+1) x H x W x 3 uint8
        except VideoDecodeError:
            continue
        digest.update(f"{index}:{tuple(frames.shape)};".encode())
        digest.update(frames.contiguous().numpy().tobytes())
        used, size = used + 1, size or f"{frames.shape[2]}x{frames.shape[1]}"
    return {"frames_digest": digest.hexdigest(), "digest_clips": used, "frame_size": size}
