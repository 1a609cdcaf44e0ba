"""Tiny real videos for the fake layouts of the dataset modules (tests, docs examples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CODECS = {".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx-vp9"), ".mkv": ("matroska", "h264")}


def write_video(path: Path, *, seed: int = 0, frames: int = 6, size: int = 24) -> None:
    """A tiny real video (moving bright square) in the container that the extension names."""
    import av

    from mpbench.data.synth import write_mp4

    rng = np.random.default_rng(seed)
    video = np.full((frames, size, size, 3), 60, dtype=np.uint8)
    x0 = int(rng.integers(0, size // 2))
    for t in range(frames):
        video[t, 6:14, x0 + t : x0 + t + 8] = 220
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        write_mp4(path, video, fps=4)
        return
    fmt, codec = CODECS[path.suffix]
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=4)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
