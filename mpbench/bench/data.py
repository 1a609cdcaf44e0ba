"""Data-loading benchmarks: decoders side by side on test videos, and DataLoader throughput.

:func:`compare_decoders` times each decoder of :mod:`mpbench.bench.decoders` on each video in
fresh worker processes (one thread each, ``workers`` of them at once) and keeps one row per
video x decoder x worker count; :func:`decoder_ratios` turns the rows into the ratios the
decoding targets are stated in. :func:`write_bench_video` writes the test videos (H.264 at
720p with a keyframe every 250 frames, like web video; XviD AVI at 320x240, like UCF-101).
:func:`bench_data` measures the DataLoader a trial builds instead.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from mpbench.bench.decoders import DECODERS, WORKER_ENV, WorkerSpec, missing_package
from mpbench.config import TrialConfig


def time_loader(loader: DataLoader, *, batches: int) -> tuple[int, float, int]:
    """(clips, seconds, skipped) over ``batches`` batches after one warm-up batch.

    The warm-up batch absorbs worker start-up; the loader must yield ``batches`` + 1 batches.
    Workers keep producing while the warm-up batch is collated, so with W workers up to W
    batches are ready when the clock starts: short runs overstate multi-worker rates a little.
    """
    it = iter(loader)
    next(it)
    clips = skipped = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        clips += int(batch["label"].numel())
        skipped += int(batch["skipped"])
    return clips, time.perf_counter() - start, skipped


def bench_data(
    config: TrialConfig,
    *,
    workers: Sequence[int] = (0, 1, 2),
    batches: int = 10,
    on_result: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train-split throughput (decode + sample + transform + collate) of the DataLoader that a
    trial of ``config`` builds (its data, clip shape, batch size, collate and seeding: the
    engine's own ``build_data_for`` and ``make_loader``), for each worker count.

    Returns one row per worker count: workers, clips, seconds, clips_per_s (total) and
    clips_per_s_per_worker (total / max(workers, 1); 0 workers = the main process).
    """
    from mpbench.engine.build import build_data_for, make_loader
    from mpbench.engine.distributed import DistContext

    batch = config.batch_size
    if batches < 1:
        raise ValueError(f"batches must be >= 1, got {batches}")
    if any(w < 0 for w in workers) or not workers:
        raise ValueError(f"workers must be a non-empty list of counts >= 0, got {list(workers)}")
    bundle = build_data_for(config)
    needed = (batches + 1) * batch
    if len(bundle.train) < needed:
        raise ValueError(
            f"{config.dataset} has {len(bundle.train)} training clips; {batches} + 1 batches "
            f"of {batch} need {needed}: lower --batches or --batch"
        )
    rows = []
    for w in workers:
        loader = make_loader(
            bundle.train,
            config.model_copy(update={"workers": w}),
            train=True,
            dist_ctx=DistContext(),
            device=torch.device("cpu"),
        )
        clips, seconds, skipped = time_loader(loader, batches=batches)
        rate = clips / seconds
        row = {
            "workers": w,
            "clips": clips,
            "seconds": seconds,
            "skipped": skipped,
            "clips_per_s": rate,
            "clips_per_s_per_worker": rate / max(w, 1),
        }
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows


# --- test videos -------------------------------------------------------------------------------

VideoKind = Literal["h264", "xvid", "file"]
DEFAULT_VIDEOS_DIR = Path("~/.cache/mpbench/bench-videos")
DEFAULT_DURATIONS: tuple[int, ...] = (10, 60, 300)
GOP = 250  # frames between keyframes: 10 s at 25 fps, the default of x264 and many web encoders
FPS = 25
XVID_SIZE = (320, 240)  # UCF-101's frame size
H264_BITRATE_720P = 2_500_000  # bit/s, a common rate of 720p web video
# In the file names: bump it when the frames or the encoder settings change, so that the files
# written before are not reused.
BENCH_VIDEO_VERSION = 1


@dataclass(frozen=True)
class BenchVideo:
    """A test video that :func:`write_bench_video` writes (and reuses when present).

    Args:
        kind: "h264" (MP4, libx264 preset veryfast) or "xvid" (AVI, mpeg4 tagged XVID).
        seconds: duration.
        width: frame width (even).
        height: frame height (even).

    Example:
        >>> BenchVideo("h264", 10, 1280, 720).name
        'h264-1280x720-25fps-10s-gop250-v1.mp4'
    """

    kind: Literal["h264", "xvid"]
    seconds: int
    width: int
    height: int

    @property
    def frames(self) -> int:
        """Number of frames."""
        return self.seconds * FPS

    @property
    def name(self) -> str:
        """File name, holding the settings and the version (another setting, another file)."""
        ext = "mp4" if self.kind == "h264" else "avi"
        size = f"{self.width}x{self.height}"
        return f"{self.kind}-{size}-{FPS}fps-{self.seconds}s-gop{GOP}-v{BENCH_VIDEO_VERSION}.{ext}"


def bench_videos(durations: Sequence[int], *, height: int, xvid: bool) -> list[BenchVideo]:
    """One 16:9 H.264 video per duration, plus an XviD AVI as long as the shortest."""
    if any(d < 1 for d in durations):
        raise ValueError(f"durations must be whole seconds >= 1, got {list(durations)}")
    if height < 16 or height % 2:
        raise ValueError(f"height must be an even number >= 16, got {height}")
    width = round(height * 16 / 9 / 2) * 2
    videos = [BenchVideo("h264", d, width, height) for d in sorted(set(durations))]
    if xvid and durations:
        videos.append(BenchVideo("xvid", min(durations), *XVID_SIZE))
    return videos


def moving_frames(width: int, height: int, count: int, *, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` RGB frames: a panning block texture, a square moving on it, and +-4 levels of
    noise (seven fixed patterns in turn) that the encoder cannot predict, as camera noise."""
    rng = np.random.default_rng(seed)
    block = max(height // 90, 1)  # 8 px blocks at 720p
    tex = rng.integers(0, 256, (-(-height // block), -(-2 * width // block), 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex, block, axis=0), block, axis=1)[:height]
    period = tex.shape[1]
    tex = np.concatenate([tex, tex], axis=1)  # wraps around while panning
    noise = rng.integers(-4, 5, (7, height, width, 3), dtype=np.int16)
    side = max(height // 6, 2)
    step = 3 * height / 720  # 3 px a frame at 720p
    for i in range(count):
        x0 = round(step * i) % period
        frame = tex[:, x0 : x0 + width].astype(np.int16) + noise[i % len(noise)]
        cx = round((width - side) * (0.5 + 0.5 * math.cos(i / 20)))
        cy = round((height - side) * (0.5 + 0.5 * math.sin(i / 15)))
        frame[cy : cy + side, cx : cx + side] = ((5 * i) % 256, 200, 50)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def _add_stream(container: Any, video: BenchVideo) -> Any:
    """The encoder: x264 veryfast (B-frames, CABAC) at 2.5 Mbit/s for 720p, scaled by the pixel
    count (web video's rate), or mpeg4 tagged XVID at 400 kbit/s (UCF-101's order)."""
    if video.kind == "h264":
        params = f"keyint={GOP}:min-keyint={GOP}:scenecut=0"
        stream = container.add_stream(
            "libx264", rate=FPS, options={"preset": "veryfast", "x264-params": params}
        )
        stream.bit_rate = round(H264_BITRATE_720P * video.width * video.height / (1280 * 720))
    else:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.codec_tag = "XVID"
        stream.gop_size = GOP
        stream.bit_rate = 400_000
    stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
    return stream


def write_bench_video(
    video: BenchVideo, folder: str | Path, *, progress: Callable[[int], None] | None = None
) -> Path:
    """The file of ``video`` in ``folder``, written first (atomically) unless it exists."""
    import av

    path = Path(folder).expanduser() / video.name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with av.open(str(tmp), "w") as container:
            stream = _add_stream(container, video)
            for frame in moving_frames(video.width, video.height, video.frames):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
                if progress is not None:
                    progress(1)
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoProbe:
    """What a benchmark row needs to know about a video.

    Args:
        path: the file.
        kind: "h264" or "xvid" (a test video) or "file" (from a folder).
        frames: frame count.
        fps: frame rate as "num/den".
        width: stored frame width.
        height: stored frame height.
        out_width: width of the frames the decoders return (short side scaled down).
        out_height: their height.
    """

    path: str
    kind: VideoKind
    frames: int
    fps: str
    width: int
    height: int
    out_width: int
    out_height: int

    @property
    def seconds(self) -> float:
        """Duration from the frame count and rate."""
        return self.frames / float(Fraction(self.fps))

    @property
    def decoded_bytes(self) -> int:
        """Bytes of every frame decoded at the stored size (what ``full`` holds)."""
        return self.frames * self.height * self.width * 3


def probe_video(path: str | Path, *, short_side: int, kind: VideoKind = "file") -> VideoProbe:
    """Frame count, rate and sizes of ``path`` (one frame decoded for the output size)."""
    import av

    from mpbench.data.video import read_frames, video_frame_count

    path = str(path)
    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        width, height = stream.codec_context.width, stream.codec_context.height
    first = read_frames(path, lambda n: [0], short_side=short_side)
    out_h, out_w = int(first.shape[1]), int(first.shape[2])
    return VideoProbe(path, kind, video_frame_count(path), str(rate), width, height, out_w, out_h)


def clip_plan(
    frames: int, *, clip_frames: int, sampling_rate: int, count: int, seed: int
) -> list[list[int]]:
    """Frame indices of ``count`` clips at random starts (the same for every decoder)."""
    from mpbench.data.video import clip_indices, clip_span

    rng = np.random.default_rng(seed)
    slack = max(frames - clip_span(clip_frames, sampling_rate), 0)
    starts = rng.integers(0, slack + 1, size=count)
    return [
        clip_indices(frames, frames=clip_frames, sampling_rate=sampling_rate, start=int(s)).tolist()
        for s in starts
    ]


def _worker_env() -> dict[str, str]:
    """This environment with one thread everywhere and this mpbench importable."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **WORKER_ENV, "PYTHONPATH": path}


def _message(proc: subprocess.Popen, stderr: Any) -> dict[str, Any]:
    """The worker's next JSON line, or why it has none (its exit code and last stderr line)."""
    line = proc.stdout.readline()
    if line.strip():
        return json.loads(line)
    code = proc.wait()
    stderr.seek(0)
    tail = [t for t in stderr.read().decode(errors="replace").splitlines() if t.strip()]
    last = tail[-1] if tail else "no output"
    return {"status": "unavailable", "reason": f"worker exited with code {code}: {last}"}


def _stop(proc: subprocess.Popen) -> None:
    """End a worker that is still running (it failed or we were interrupted) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def run_workers(specs: Sequence[WorkerSpec]) -> list[dict[str, Any]]:
    """Run one worker process per spec at once; all start timing together after warm-up."""
    with contextlib.ExitStack() as stack:
        procs = []
        for spec in specs:
            err = stack.enter_context(tempfile.TemporaryFile())
            cmd = [sys.executable, "-m", "mpbench.bench.decoders", spec.to_json()]
            proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                text=True, env=_worker_env(),
            )  # fmt: skip
            stack.callback(_stop, proc)
            procs.append((proc, err))
        first = [_message(p, err) for p, err in procs]
        for (proc, _), msg in zip(procs, first, strict=True):
            if msg["status"] == "ready":
                with contextlib.suppress(BrokenPipeError):  # died since: _message says how
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
        return [
            _message(p, err) if msg["status"] == "ready" else msg
            for (p, err), msg in zip(procs, first, strict=True)
        ]


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One row's numbers from its workers' results (the first failure's reason if any failed)."""
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        return {"status": "unavailable", "reason": bad[0]["reason"]}
    per_worker = sum(r["clips"] / r["seconds"] for r in results) / len(results)
    return {
        "status": "ok",
        "clips_per_s_per_worker": per_worker,
        "ms_per_clip": 1e3 / per_worker,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "start_rss_mb": max(r["start_rss_mb"] for r in results),
        "clips": results[0]["clips"],
        "per_worker": results,
    }


def full_skip_reason(video: VideoProbe, *, limit_gb: float) -> str | None:
    """Why ``full`` is not run on ``video``, or None: its estimated peak memory over the limit.

    decode_video holds every decoded frame twice at its peak (the list of frames and the
    stacked tensor), so the estimate is 2 x frames x H x W x 3 bytes at the stored size.
    """
    need = 2 * video.decoded_bytes
    if need <= limit_gb * 1e9:
        return None
    return (
        f"full decoding would hold 2 x {video.frames} x {video.height} x {video.width} "
        f"x 3 bytes = {need / 1e9:.3g} GB per worker, over the {limit_gb:g} GB limit"
    )


def build_cache(video: VideoProbe, *, short_side: int, store_dir: Path) -> dict[str, Any]:
    """Build a one-video store (timed; not counted in the clip rates): its path, seconds, bytes."""
    from mpbench.data.cache import build_store
    from mpbench.data.datasets import VideoEntry

    path = store_dir / f"{Path(video.path).stem}-s{short_side}"
    start = time.perf_counter()
    store = build_store([VideoEntry(video.path, 0)], path=path, short_side=short_side)
    seconds = time.perf_counter() - start
    return {"video": Path(video.path).name, "store": str(path), "seconds": seconds,
            "bytes": store.nbytes}  # fmt: skip


@dataclass
class DecoderComparison:
    """The rows of :func:`compare_decoders` and the cache builds it timed separately.

    Args:
        rows: one dict per video x decoder x worker count (``status`` ok, skipped,
            not installed or unavailable; ``reason`` when not ok).
        builds: one dict per cache store built (video, store, seconds, bytes).
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    builds: list[dict[str, Any]] = field(default_factory=list)


def _base_row(video: VideoProbe, decoder: str, workers: int) -> dict[str, Any]:
    return {
        "video": Path(video.path).name, "kind": video.kind, "seconds": video.seconds,
        "frames": video.frames, "fps": video.fps, "width": video.width, "height": video.height,
        "out_width": video.out_width, "out_height": video.out_height,
        "decoder": decoder, "workers": workers,
    }  # fmt: skip


def _not_run_reason(decoder: str, video: VideoProbe, *, full_limit_gb: float) -> dict | None:
    """The status and reason of a decoder that is not run on ``video``, or None."""
    package = missing_package(decoder)
    if package is not None:
        return {"status": "not installed", "reason": f"no module named {package!r}"}
    if decoder == "full":
        reason = full_skip_reason(video, limit_gb=full_limit_gb)
        return None if reason is None else {"status": "skipped", "reason": reason}
    return None


def _check_comparison_args(decoders: Sequence[str], workers: Sequence[int]) -> None:
    bad = [d for d in decoders if d not in DECODERS]
    if bad or not decoders:
        raise ValueError(f"decoders must be among {', '.join(DECODERS)}; got {list(decoders)}")
    if not workers or any(w < 1 for w in workers):
        raise ValueError(f"workers must be a non-empty list of counts >= 1, got {list(workers)}")


@dataclass(frozen=True)
class ClipSettings:
    """How the clips of :func:`compare_decoders` are drawn and how many are timed.

    Args:
        frames: T (a clip holds T + 1 frames).
        sampling_rate: frames between sampled frames.
        short_side: the short side frames are brought down to.
        clips: timed clips per worker (after one warm-up clip).
        full_clips: timed clips per worker of ``full`` (slow: fewer).
        seed: worker ``k`` draws its clip starts from seed + k.

    Example:
        >>> ClipSettings().count("full"), ClipSettings().count("seek")
        (2, 20)
    """

    frames: int = 8
    sampling_rate: int = 4
    short_side: int = 256
    clips: int = 20
    full_clips: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("frames", "sampling_rate", "short_side", "clips", "full_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def count(self, decoder: str) -> int:
        """Timed clips per worker of ``decoder``."""
        return self.full_clips if decoder == "full" else self.clips


def worker_specs(
    video: VideoProbe, decoder: str, workers: int, clip: ClipSettings, store: str | None = None
) -> list[WorkerSpec]:
    """One spec per worker: its own random clips (a warm-up clip first) of ``video``."""
    return [
        WorkerSpec(
            decoder=decoder,
            path=video.path,
            clips=clip_plan(
                video.frames,
                clip_frames=clip.frames,
                sampling_rate=clip.sampling_rate,
                count=clip.count(decoder) + 1,
                seed=clip.seed + k,
            ),
            height=video.out_height,
            width=video.out_width,
            fps=video.fps,
            short_side=clip.short_side,
            store=store,
        )
        for k in range(workers)
    ]


def compare_decoders(
    videos: Sequence[VideoProbe],
    *,
    store_dir: str | Path,
    decoders: Sequence[str] = DECODERS,
    workers: Sequence[int] = (1,),
    clip: ClipSettings | None = None,
    full_limit_gb: float = 10.0,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> DecoderComparison:
    """Clips/s per worker and peak RSS per worker of each decoder on each video.

    Each measurement runs ``w`` fresh one-thread worker processes at once (for each ``w`` in
    ``workers``); the ``cache`` store of each video is built once in ``store_dir`` first
    (timed apart). ``on_start`` gets a description before each step, ``on_row`` each row.
    """
    clip = clip or ClipSettings()
    _check_comparison_args(decoders, workers)
    started = on_start or (lambda text: None)
    out = DecoderComparison()
    for video, decoder in ((v, d) for v in videos for d in decoders):
        name = Path(video.path).name
        not_run = _not_run_reason(decoder, video, full_limit_gb=full_limit_gb)
        store = None
        if not_run is None and decoder == "cache":
            started(f"{name}: building the cache")
            out.builds.append(
                build_cache(video, short_side=clip.short_side, store_dir=Path(store_dir))
            )
            store = out.builds[-1]["store"]
        for w in workers:
            row = _base_row(video, decoder, w)
            if not_run is None:
                started(f"{name}: {decoder} x {w} worker{'s' * (w > 1)}")
                row.update(_summary(run_workers(worker_specs(video, decoder, w, clip, store))))
            else:
                row.update(not_run)
            out.rows.append(row)
            if on_row is not None:
                on_row(row)
    return out


# --- ratios against the targets ----------------------------------------------------------------

# key -> (comparison, threshold, unit) of each decoding target
# Issue 12's targets. seek vs full: at least 4x on a 10 s video and 30x on a 60 s one; a video
# shorter than 60 s is held to the first, any longer one to the second. With one keyframe every
# 250 frames a seek still decodes from the keyframe before the clip (on average half a GOP plus
# the clip), so on 250-frame GOPs the ratio is bounded by the GOP, not by the decoder.
SEEK_VS_FULL_SHORT, SEEK_VS_FULL_LONG = 4.0, 30.0
TARGETS: dict[str, tuple[str, float, str]] = {
    "seek_vs_full": (">=", SEEK_VS_FULL_SHORT, "x"),  # full / seek ms/clip, H.264 video < 60 s
    "seek_vs_full_long": (">=", SEEK_VS_FULL_LONG, "x"),  # the same, H.264 video >= 60 s
    "seek_long_vs_short": ("<=", 2.0, "x"),  # seek ms/clip, longest / shortest H.264 video
    "seek_rss_long": ("<", 1000.0, "MB"),  # seek's peak RSS per worker, longest H.264 video
    "cache_vs_seek": (">=", 20.0, "x"),  # seek ms/clip / cache ms/clip, H.264 video nearest 60 s
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}
Formula = Callable[..., float]


def _ratio(key: str, label: str, formula: Formula, *rows: dict[str, Any] | None) -> dict:
    """One ratio from ``rows`` (value None and the reason when one of them was not measured)."""
    op, threshold, unit = TARGETS[key]
    out = {"key": key, "label": label, "target": f"{op} {threshold:g} {unit}".replace(" x", "x")}
    missing = next((r for r in rows if r is None or r["status"] != "ok"), False)
    if missing is not False:
        why = "not measured" if missing is None else f"{missing['decoder']} {missing['status']}"
        return {**out, "value": None, "unit": unit, "verdict": "n/a", "reason": why}
    value = formula(*rows)
    verdict = "PASS" if _COMPARE[op](value, threshold) else "MISS"
    return {**out, "value": value, "unit": unit, "verdict": verdict, "reason": None}


def decoder_ratios(rows: Sequence[dict[str, Any]], *, workers: int | None = None) -> list[dict]:
    """The targets' ratios from the rows of the H.264 test videos at one worker count.

    ``workers`` defaults to the smallest count measured. Returns one dict per ratio: key,
    label, value (None when a row it needs was not measured), unit, target, verdict (PASS,
    MISS or n/a) and reason.
    """
    if not rows:
        return []
    w = min(r["workers"] for r in rows) if workers is None else workers
    at = {(r["video"], r["decoder"]): r for r in rows if r["workers"] == w}
    h264 = sorted({(r["seconds"], r["video"]) for r in rows if r["kind"] == "h264"})
    out = [
        _ratio("seek_vs_full" if secs < 60 else "seek_vs_full_long",
               f"seek vs full, {secs:g} s video (full ms/clip / seek ms/clip)",
               lambda f, s: f["ms_per_clip"] / s["ms_per_clip"],
               at.get((video, "full")), at.get((video, "seek")))
        for secs, video in h264
    ]  # fmt: skip
    if len(h264) >= 2:
        (s0, short), (s1, long) = h264[0], h264[-1]
        out.append(
            _ratio("seek_long_vs_short", f"seek ms/clip, {s1:g} s / {s0:g} s video",
                   lambda a, b: a["ms_per_clip"] / b["ms_per_clip"],
                   at.get((long, "seek")), at.get((short, "seek")))
        )  # fmt: skip
    if h264:
        secs, long = h264[-1]
        out.append(
            _ratio("seek_rss_long", f"seek peak RSS per worker, {secs:g} s video",
                   lambda r: r["peak_rss_mb"], at.get((long, "seek")))
        )  # fmt: skip
        secs, mid = min(h264, key=lambda sv: abs(sv[0] - 60))
        out.append(
            _ratio("cache_vs_seek", f"cache vs seek, {secs:g} s video (seek ms/clip / cache)",
                   lambda s, c: s["ms_per_clip"] / c["ms_per_clip"],
                   at.get((mid, "seek")), at.get((mid, "cache")))
        )  # fmt: skip
    return out


def data_vs_step(
    rows: Sequence[dict[str, Any]], *, step_clips_per_s: float
) -> list[dict[str, Any]]:
    """Per measured row: the data rate of its workers together beside the training step rate,
    whether the GPU would wait for data, the workers the step rate needs, and the share of its
    loop that a trial at these rates waits for data: ``max(0, 1 - data / step)`` (in steady state
    the loop runs at the slower rate), the quantity a trial logs as ``data_wait_share``."""
    out = []
    for r in rows:
        if r["status"] != "ok":
            continue
        data = r["clips_per_s_per_worker"] * r["workers"]
        out.append(
            {
                "video": r["video"], "decoder": r["decoder"], "workers": r["workers"],
                "data_clips_per_s": data, "step_clips_per_s": step_clips_per_s,
                "gpu_waits": data < step_clips_per_s,
                "data_wait_share": max(0.0, 1.0 - data / step_clips_per_s),
                "workers_needed": math.ceil(step_clips_per_s / r["clips_per_s_per_worker"]),
            }
        )  # fmt: skip
    return out


def folder_videos(folder: str | Path) -> list[Path]:
    """The video files under ``folder`` (recursively, by extension), sorted."""
    from mpbench.data.video import VIDEO_EXTENSIONS

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--folder {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not files:
        raise ValueError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) under {folder}")
    return files


def prepare_videos(
    videos: Sequence[BenchVideo],
    files: Sequence[str | Path] = (),
    *,
    videos_dir: str | Path = DEFAULT_VIDEOS_DIR,
    short_side: int = 256,
    progress: Callable[[int], None] | None = None,
) -> list[VideoProbe]:
    """Write the test videos missing from ``videos_dir``, then probe them and ``files``."""
    probes = [
        probe_video(write_bench_video(v, videos_dir, progress=progress), short_side=short_side,
                    kind=v.kind)
        for v in videos
    ]  # fmt: skip
    return probes + [probe_video(f, short_side=short_side) for f in files]


# --- the whole decoder comparison (``mpbench bench decoders``) ---------------------------------


@dataclass(frozen=True)
class DecoderRequest:
    """What ``mpbench bench decoders`` measures: the videos, the decoders, the workers.

    Args:
        durations: test videos' seconds (None: :data:`DEFAULT_DURATIONS`, none with a folder).
        folder: also measure the video files under this folder.
        height: the test videos' height (16:9 H.264).
        xvid: also an XviD AVI as long as the shortest test video.
        videos_dir: where the test videos are written once and reused.
        decoders: names among :data:`mpbench.bench.decoders.DECODERS`.
        workers: worker counts (processes timed at once).
        clip: how the clips are drawn and how many are timed.
        full_limit_gb: skip ``full`` above this estimated memory per worker.
        device: "cuda" also times a training step of ``backbone`` at ``batch``.
        backbone: the backbone stepped on CUDA.
        batch: clips per training step on CUDA.
        json_out: write the settings, rows, cache builds, GPU rows and ratios here.

    Example:
        >>> DecoderRequest(durations=(10,)).device
        'cpu'
    """

    durations: Sequence[int] | None = None
    folder: Path | None = None
    height: int = 720
    xvid: bool = True
    videos_dir: Path = DEFAULT_VIDEOS_DIR
    decoders: Sequence[str] = DECODERS
    workers: Sequence[int] = (1,)
    clip: ClipSettings = field(default_factory=ClipSettings)
    full_limit_gb: float = 10.0
    device: Literal["cpu", "cuda"] = "cpu"
    backbone: str = "x3d_s"
    batch: int = 8
    json_out: Path | None = None


@dataclass
class DecoderBench:
    """What :func:`bench_decoders` measured (``step`` and ``gpu`` only on CUDA).

    Args:
        request: the request it ran.
        probes: the videos measured.
        result: the rows and the cache builds.
        ratios: :func:`decoder_ratios` at the first worker count.
        load_start: the load average before.
        load_end: the load average after.
        step: the training step's timing (a :class:`mpbench.bench.step.StepTiming`).
        gpu: :func:`data_vs_step` rows.
    """

    request: DecoderRequest
    probes: list[VideoProbe]
    result: DecoderComparison
    ratios: list[dict[str, Any]]
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    step: Any = None
    gpu: list[dict[str, Any]] | None = None

    def record(self) -> dict[str, Any]:
        """The JSON record: settings, load averages, rows, cache builds, GPU rows, ratios."""
        req = self.request
        settings = {**_asdict(req.clip), "workers": list(req.workers)}
        settings.update(full_limit_gb=req.full_limit_gb, decoders=list(req.decoders))
        return {
            "settings": settings,
            "load_average": {"start": self.load_start, "end": self.load_end},
            "rows": self.result.rows,
            "cache_builds": self.result.builds,
            "gpu": self.gpu,
            "ratios": self.ratios,
        }


def _asdict(clip: ClipSettings) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(clip)


Stage = Callable[[str, int | None], None]


def _request_videos(req: DecoderRequest) -> tuple[list[BenchVideo], list[Path]]:
    """The test videos to write and the folder's files; ValueError when there is neither."""
    files = folder_videos(req.folder) if req.folder is not None else []
    durations = req.durations
    if durations is None:
        durations = () if req.folder is not None else DEFAULT_DURATIONS
    videos = bench_videos(list(durations), height=req.height, xvid=req.xvid)
    if not videos and not files:
        raise ValueError("nothing to measure: give --durations or --folder")
    return videos, files


def bench_decoders(
    req: DecoderRequest,
    *,
    on_stage: Stage | None = None,
    on_advance: Callable[[int], None] | None = None,
) -> DecoderBench:
    """Write and probe the videos, compare the decoders (and on CUDA the training step), take
    the ratios; write the JSON record when asked. ``on_stage(description, total)`` starts a
    stage of ``total`` steps (None: no count), ``on_advance(n)`` counts them."""
    from mpbench._device import resolve_device

    stage, advance = on_stage or (lambda d, t: None), on_advance or (lambda n: None)
    _check_comparison_args(req.decoders, req.workers)
    if req.device == "cuda":
        resolve_device("cuda")  # refused before anything is written
    videos, files = _request_videos(req)
    load_start = os.getloadavg()
    videos_dir = Path(req.videos_dir).expanduser()
    stage(f"writing test videos into {videos_dir}", sum(v.frames for v in videos
          if not (videos_dir / v.name).exists()))  # fmt: skip
    probes = prepare_videos(
        videos, files, videos_dir=videos_dir, short_side=req.clip.short_side, progress=advance
    )
    videos_dir.mkdir(parents=True, exist_ok=True)
    stage("measuring", len(probes) * len(req.decoders) * len(req.workers))
    with tempfile.TemporaryDirectory(dir=videos_dir, prefix=".stores-") as store_dir:
        result = compare_decoders(
            probes, store_dir=store_dir, decoders=req.decoders, workers=req.workers,
            clip=req.clip, full_limit_gb=req.full_limit_gb, on_row=lambda row: advance(1),
            on_start=lambda text: stage(text, None),
        )  # fmt: skip
    out = DecoderBench(req, probes, result, decoder_ratios(result.rows, workers=req.workers[0]),
                       load_start, load_start)  # fmt: skip
    if req.device == "cuda":
        _time_step(out, stage)
    out.load_end = os.getloadavg()
    if req.json_out is not None:
        Path(req.json_out).write_text(json.dumps(out.record(), indent=2) + "\n", encoding="utf-8")
    return out


def _time_step(out: DecoderBench, stage: Stage) -> None:
    """Time the training step on CUDA and set the GPU rows beside the data rates."""
    from mpbench.bench.step import time_training_step

    req = out.request
    stage(f"timing a training step of {req.backbone} on cuda", None)
    out.step = time_training_step(backbone=req.backbone, device="cuda", batch=req.batch)
    out.gpu = data_vs_step(out.result.rows, step_clips_per_s=req.batch / out.step.prompt_s)
