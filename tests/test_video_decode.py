"""Frame-exact clip decoding: read_frames (seeking) against decode_video (every frame).

Every video here is written by the test itself with PyAV: a bright square that moves each frame
and the frame number in binary along the bottom, so that an off-by-one cannot go unnoticed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from mpbench.data import video
from mpbench.data.video import (
    VideoDecodeError,
    decode_video,
    iter_frames,
    read_frames,
    video_frame_count,
)

W, H, N = 128, 96, 60  # frame size and count of the codec cases
SHORT = 48  # a short side that scales 128 x 96 down to 64 x 48

# irregular frame durations (40-62 ms) in milliseconds, for the variable-frame-rate case
VFR_PTS = [sum(40 + (7 * i) % 23 for i in range(k)) for k in range(N)]


def _pattern(k: int, width: int, height: int) -> np.ndarray:
    """Frame ``k``: a yellow square moving with k on grey, k in binary along the bottom."""
    img = np.full((height, width, 3), 30, np.uint8)
    side = max(height // 6, 6)
    x, y = (k * 5) % (width - side), (k * 3) % (height - side)
    img[y : y + side, x : x + side] = (250, 240, 60)
    bar = width // 8
    for bit in range(8):
        if (k >> bit) & 1:
            img[height - 10 :, bit * bar : (bit + 1) * bar] = (60, 200, 250)
    return img


def write_video(
    path: Path,
    codec: str,
    *,
    frames: int = N,
    size: tuple[int, int] = (W, H),
    rate: int = 25,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    codec_tag: str | None = None,
    fmt: str | None = None,
    pts_ms: list[int] | None = None,
) -> Path:
    """Encode ``frames`` pattern frames into ``path`` (``pts_ms``: timestamps in 1/1000 s)."""
    width, height = size
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.thread_count = 1
        if codec_tag:
            stream.codec_tag = codec_tag
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(_pattern(k, width, height), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[k], Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


X265 = {"x265-params": "log-level=error:keyint=24"}  # x265's default GOP is open (CRA)
VP9 = {"deadline": "realtime", "cpu-used": "8", "g": "12"}
CASES: dict[str, dict[str, Any]] = {
    "h264_bframes.mp4": {"codec": "libx264", "options": {"g": "24"}},
    "h264_open_gop.mp4": {"codec": "libx264", "options": {"x264-params": "open-gop=1:keyint=12"}},
    "hevc.mp4": {"codec": "libx265", "options": X265},
    "vp9.webm": {"codec": "libvpx-vp9", "options": VP9},
    "xvid_bframes.avi": {"codec": "mpeg4", "codec_tag": "XVID", "options": {"bf": "2", "g": "12"}},
    "vfr.mp4": {"codec": "libx264", "options": {"g": "24"}, "pts_ms": VFR_PTS},
    "no_frame_count.mkv": {"codec": "libx264", "options": {"g": "24"}},
    "raw_elementary.h264": {"codec": "libx264", "fmt": "h264", "options": {"g": "24"}},
}
SEQUENTIAL = {"raw_elementary.h264"}  # no timestamps: decoded from the start, by design

SELECTS: dict[str, Callable[[int], list[int]]] = {
    "start": lambda n: list(range(0, 9)),
    "middle": lambda n: list(range(n // 2 - 8, n // 2 + 9, 4)),
    "end": lambda n: list(range(n - 9, n)),
    "past_end_repeats": lambda n: [min(k, n - 1) for k in range(n - 12, n + 12, 3)],
    "unsorted_repeats": lambda n: [n // 2, 3, 3, n - 1, 0, n // 2, 17, 16],
    "two_far_groups": lambda n: [1, 2, 3, 5, n - 7, n - 5, n - 3],
}


def only(k: int) -> Callable[[int], list[int]]:
    """A select of frame ``k`` alone."""
    return lambda n: [k]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Write a case's video on first use (once per module)."""
    root = tmp_path_factory.mktemp("videos")
    written: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in written:
            spec = dict(CASES[name])
            if spec["codec"] not in av.codecs_available:
                pytest.skip(f"encoder {spec['codec']} is not in this PyAV build")
            written[name] = write_video(root / name, spec.pop("codec"), **spec)
        return written[name]

    return get


@pytest.fixture(scope="module")
def reference(videos: Callable[[str], Path]) -> Callable[[str, int | None], torch.Tensor]:
    """decode_video of a case (every frame), cached per short side."""
    cache: dict[tuple[str, int | None], torch.Tensor] = {}

    def get(name: str, short_side: int | None) -> torch.Tensor:
        if (name, short_side) not in cache:
            cache[name, short_side] = decode_video(str(videos(name)), short_side=short_side)
        return cache[name, short_side]

    return get


@pytest.mark.parametrize("name", CASES)
def test_consecutive_frames_differ_so_off_by_one_fails(name: str, reference: Any) -> None:
    """The fixture can fail the exactness tests: each frame differs visibly from the next."""
    ref = reference(name, SHORT)
    diff = (ref[1:].float() - ref[:-1].float()).abs().flatten(1).amax(1)
    assert len(ref) == N and bool((diff > 100).all())


@pytest.mark.parametrize("short_side", [None, SHORT])
@pytest.mark.parametrize("name", CASES)
def test_read_frames_equals_full_decode(
    name: str, short_side: int | None, videos: Any, reference: Any
) -> None:
    """Every select, and every single frame, equals decode_video(p)[indices] byte for byte."""
    path, ref = str(videos(name)), reference(name, short_side)
    assert video_frame_count(path) == len(ref) == N
    for label, select in SELECTS.items():
        stats: dict[str, int] = {}
        out = read_frames(path, select, short_side=short_side, stats=stats)
        assert torch.equal(out, ref[select(N)]), label
        assert stats["fallback"] == (name in SEQUENTIAL), label
    for k in range(0, N, 1 if short_side is None else 3):  # every frame at native size
        assert torch.equal(read_frames(path, only(k), short_side=short_side)[0], ref[k]), k


@pytest.mark.parametrize("short_side", [None, SHORT])
@pytest.mark.parametrize("name", ["h264_bframes.mp4", "vp9.webm", "raw_elementary.h264"])
def test_iter_frames_is_byte_identical_to_read_frames(
    name: str, short_side: int | None, videos: Any, reference: Any
) -> None:
    """iter_frames frame k is read_frames(p, [k])[0] (the cache writer's contract)."""
    path = str(videos(name))
    streamed = list(iter_frames(path, short_side=short_side))
    assert len(streamed) == N
    for k, frame in enumerate(streamed):
        assert frame.flags.c_contiguous and frame.dtype == np.uint8
        assert np.array_equal(frame, read_frames(path, only(k), short_side=short_side)[0])
    assert np.array_equal(np.stack(streamed), reference(name, short_side).numpy())


def test_off_by_one_is_caught(videos: Any, reference: Any) -> None:
    """A read of frame k+1 is not frame k (the comparison above is not vacuous)."""
    path, ref = str(videos("h264_bframes.mp4")), reference("h264_bframes.mp4", None)
    for k in (0, 23, 24, 40):
        assert not torch.equal(read_frames(path, only(k + 1))[0], ref[k])


def test_short_side_scales_down_never_up(videos: Any) -> None:
    """short_side 48 gives 64 x 48; a short side above the native one keeps 128 x 96."""
    path = str(videos("h264_bframes.mp4"))
    assert read_frames(path, lambda n: [0], short_side=SHORT).shape == (1, 48, 64, 3)
    assert read_frames(path, lambda n: [0], short_side=500).shape == (1, H, W, 3)
    assert decode_video(path, short_side=500).shape == (N, H, W, 3)
    with pytest.raises(ValueError, match="short_side must be None or an integer >= 1, got 0"):
        read_frames(path, lambda n: [0], short_side=0)


def test_container_frame_count_is_not_trusted(videos: Any) -> None:
    """The mkv and raw cases really lack a frame count (so the tests above cover that)."""
    for name in ("no_frame_count.mkv", "raw_elementary.h264"):
        with av.open(str(videos(name))) as container:
            stream = container.streams.video[0]
            assert stream.frames == 0 and stream.duration is None
        assert video_frame_count(str(videos(name))) == N


def test_select_is_called_once_and_validated(videos: Any) -> None:
    """select sees the frame count once; an index out of range is a ValueError."""
    path, calls = str(videos("vfr.mp4")), []
    read_frames(path, lambda n: calls.append(n) or [n - 1])
    assert calls == [N]
    with pytest.raises(ValueError, match=r"frame index 60 out of range for a video of 60 frames"):
        read_frames(path, lambda n: [0, n])
    assert read_frames(path, lambda n: [], short_side=SHORT).shape == (0, 48, 64, 3)


def test_clip_decodes_its_span_not_the_video(tmp_path: Path) -> None:
    """A 9-frame clip (rate 4) of a 300-frame video decodes at most span + GOP frames."""
    gop, span = 30, video.clip_span(8, 4)
    options = {"g": str(gop), "x264-params": "scenecut=0"}  # a keyframe every 30 frames exactly
    path = str(
        write_video(tmp_path / "long.mp4", "libx264", frames=300, size=(64, 48), options=options)
    )
    ref = decode_video(path)
    for start in (0, 101, 150, 267):
        select = lambda n, s=start: video.clip_indices(n, frames=8, sampling_rate=4, start=s)  # noqa: E731
        stats: dict[str, int] = {}
        assert torch.equal(read_frames(path, select, stats=stats), ref[select(300)])
        assert stats["fallback"] == 0 and stats["decoded"] <= span + gop, (start, stats)
    stats = {}
    two_views = lambda n: [10, 14, 18, 260, 264, 268]  # noqa: E731
    assert torch.equal(read_frames(path, two_views, stats=stats), ref[two_views(300)])
    assert stats["seeks"] == 2 and stats["decoded"] <= 2 * (9 + gop), stats


def test_fallback_when_index_disagrees_with_decoder(tmp_path: Path) -> None:
    """An index whose timestamps the decoder does not produce falls back, still exact."""
    path = str(write_video(tmp_path / "shifted.mp4", "libx264", options={"g": "12"}))
    ref = decode_video(path)
    index = video._index(path)
    index.pts = index.pts + 1  # as if the container's timestamps were off
    stats: dict[str, int] = {}
    assert torch.equal(
        read_frames(path, SELECTS["two_far_groups"], stats=stats), ref[[1, 2, 3, 5, 53, 55, 57]]
    )
    assert stats["fallback"] == 1 and video._index(path).sequential  # remembered for the path
    stats = {}
    assert torch.equal(read_frames(path, lambda n: [7, 2], stats=stats), ref[[7, 2]])
    assert stats == {"decoded": 8, "seeks": 0, "fallback": 1, "resized": 0, "frames": N}


CUTS = ["h264_faststart.mp4", "xvid_bframes.avi", "vp9.webm", "no_frame_count.mkv",
        "raw_elementary.h264"]  # fmt: skip


@pytest.mark.parametrize("fraction", [0.5, 0.8])
@pytest.mark.parametrize("name", CUTS)
def test_truncated_file_gives_consistent_frames_or_error(
    name: str, fraction: float, tmp_path: Path, videos: Any
) -> None:
    """A file cut short gives the same frames on every path (a prefix of the whole video for
    mp4, avi and webm), or VideoDecodeError naming the file; never another error."""
    if name == "h264_faststart.mp4":  # index at the front, so that a cut leaves it readable
        src = write_video(tmp_path / name, "libx264", container_options={"movflags": "+faststart"})
    else:
        src = videos(name)
    data = src.read_bytes()
    path = tmp_path / f"cut_{name}"
    path.write_bytes(data[: int(len(data) * fraction)])
    try:
        cut = decode_video(str(path))
    except VideoDecodeError as exc:
        assert str(path) in str(exc)
        with pytest.raises(VideoDecodeError, match="cut_"):
            read_frames(str(path), lambda n: [0])
        return
    n = video_frame_count(str(path))
    assert 0 < n == len(cut) < N
    for k in range(n):
        assert torch.equal(read_frames(str(path), only(k))[0], cut[k]), k
    mixed = lambda n: [n - 1, n // 2, 0, n - 1, 1]  # noqa: E731
    assert torch.equal(read_frames(str(path), mixed), cut[mixed(n)])
    if name.endswith((".mp4", ".avi", ".webm")):
        assert torch.equal(cut, decode_video(str(src))[:n])


def test_half_of_a_plain_mp4_is_a_decode_error(tmp_path: Path, videos: Any) -> None:
    """A plain mp4 (index at the end) cut at half its bytes raises VideoDecodeError."""
    data = videos("h264_bframes.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match=r"half\.mp4"):
        read_frames(str(path), lambda n: [0])


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a video at all\n" * 50,
        bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8)),
    ],
)
def test_garbage_raises_video_decode_error(content: bytes, tmp_path: Path) -> None:
    """Empty, text and random files raise VideoDecodeError with the path, on every entry."""
    path = tmp_path / "garbage.mp4"
    path.write_bytes(content)
    for call in (
        lambda: read_frames(str(path), lambda n: [0]),
        lambda: decode_video(str(path)),
        lambda: next(iter_frames(str(path))),
        lambda: video_frame_count(str(path)),
    ):
        with pytest.raises(VideoDecodeError, match=r"garbage\.mp4"):
            call()
    with pytest.raises(VideoDecodeError, match=r"missing\.mp4"):
        read_frames(str(tmp_path / "missing.mp4"), lambda n: [0])


def test_a_rewritten_file_is_indexed_again(tmp_path: Path) -> None:
    """The index cache is keyed on the file's size and mtime: a new file at a path is seen."""
    path = tmp_path / "again.mkv"
    write_video(path, "libx264", frames=20)
    assert video_frame_count(str(path)) == 20
    write_video(path, "libx264", frames=31)
    assert video_frame_count(str(path)) == 31
    assert torch.equal(read_frames(str(path), lambda n: [30])[0], decode_video(str(path))[30])


def _elementary(codec: str, fmt: str, size: tuple[int, int], first: int, frames: int) -> bytes:
    """Pattern frames ``first`` .. ``first + frames - 1`` at ``size`` as a raw elementary stream."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25, options={"g": "6"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for k in range(first, first + frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_pattern(k, *size), format="rgb24")))
        out.mux(stream.encode())
    return buf.getvalue()


def write_size_change(path: Path) -> Path:
    """24 frames in one stream, 12 at 64 x 48 then 12 at 32 x 24 (two encodings back to back):
    ``.h264`` the raw H.264 stream (decoded from the start), ``.mkv`` an MPEG-4 part 2 stream
    remuxed with timestamps (decoded by seeking)."""
    codec, fmt = ("libx264", "h264") if path.suffix == ".h264" else ("mpeg4", "m4v")
    data = _elementary(codec, fmt, (64, 48), 0, 12) + _elementary(codec, fmt, (32, 24), 12, 12)
    if path.suffix == ".h264":
        path.write_bytes(data)
        return path
    with av.open(io.BytesIO(data), format=fmt) as src, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(src.streams.video[0]) if p.size]
        for k, packet in enumerate(packets):
            packet.stream, packet.time_base, packet.pts, packet.dts = stream, Fraction(1, 25), k, k
            out.mux(packet)
    return path


@pytest.mark.parametrize("name", ["size_change.mkv", "size_change.h264"])
def test_resolution_change_keeps_every_frame_at_the_first_size(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The 12 frames after a size change are scaled to the first frame's size (none lost),
    counted in the stats on every path, and logged once per video naming the file."""
    path = str(write_size_change(tmp_path / name))
    with av.open(path) as container:  # the stream really changes size after frame 11
        sizes = [(f.width, f.height) for f in container.decode(video=0)]
    assert sizes == [(64, 48)] * 12 + [(32, 24)] * 12
    caplog.set_level(logging.WARNING, logger="mpbench.data.video")
    stats: dict[str, int] = {}
    ref = decode_video(path, stats=stats)
    assert ref.shape == (24, 48, 64, 3) and stats == {"resized": 12}
    assert all(not torch.equal(ref[k], ref[k + 1]) for k in range(23))  # no frame repeated
    stats = {}
    assert torch.equal(read_frames(path, lambda n: list(range(n)), stats=stats), ref)
    assert stats["frames"] == 24 and stats["resized"] == 12
    stats = {}
    assert torch.equal(read_frames(path, lambda n: [20, 3, 20], stats=stats), ref[[20, 3, 20]])
    assert stats["resized"] == 1  # distinct frames returned that were another size
    small: dict[str, int] = {}
    assert decode_video(path, short_side=24, stats=small).shape == (24, 24, 32, 3)
    assert small == {"resized": 12}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        f"{path}: the frame size changes mid-stream (64x48, then 32x24); every frame is scaled "
        "to the first frame's size 64x48 (counted as 'resized' in the decode stats)"
    ]


def test_cache_keeps_every_frame_of_a_resolution_change(tmp_path: Path) -> None:
    """The decoded-clip cache stores all 24 frames at the first size, as read_frames reads."""
    from mpbench.data.cache import ensure_store
    from mpbench.data.datasets import VideoEntry

    entries = [VideoEntry(str(write_size_change(tmp_path / "size_change.mkv")), 0)]
    store, _ = ensure_store(entries, path=tmp_path / "cache" / "s48", short_side=48)
    every = lambda n: list(range(n))  # noqa: E731
    got = store.source(entries).read(0, every)
    assert got.shape == (24, 48, 64, 3) and store.failed == 0
    assert torch.equal(got, read_frames(entries[0].path, every, short_side=48))
