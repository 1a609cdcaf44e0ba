"""A decoded-clip cache: every video of a dataset decoded once, at one short side, into a store
of raw uint8 frames that DataLoader workers memory-map.

Layout of a store (``ROOT/.mpbench-cache/s{N}/`` by default, N the short side):

- ``frames.u8``: the frames of every video back to back, uint8 H x W x 3 each, no padding.
- ``index.json``: one column per field, one row per video: source ``path``, its ``size`` and
  ``mtime_ns`` when cached, byte ``offset``, ``frames``, ``height``, ``width``, ``label``,
  ``fps`` and ``error`` (the decoder's message for a broken video, else null).
- ``header.json``: the decode settings (``format``, ``short_side``, ``decoder``: the versions of
  PyAV, of the FFmpeg libraries it links, torchvision and ``mpbench.data.video.DECODER_VERSION``,
  since any of them may change the decoded bytes), a ``build_id`` and totals. A trial served by
  the store logs this header (:mod:`mpbench.data.provenance`).

Frames are written by :func:`mpbench.data.video.iter_frames`, so they are byte-identical to
``read_frames(path, select, short_side=N)``: the cache changes no pixel. A broken video is
stored with its error and raises :class:`VideoDecodeError` when read, as the decoder would, and
is not decoded again while its file is unchanged.

A build writes into a temporary sibling folder and renames it into place when complete (a
killed build leaves only a temporary folder that the next build removes). :func:`ensure_store`
holds an ``fcntl.flock`` lock around check-and-build, so several processes that need the same
store build it once. A store is stale, and rebuilt, when the decode settings differ, a video
was added or removed, or a source file's size or mtime changed; a rebuild copies the frames of
unchanged videos from the old store instead of decoding them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from mpbench.data import video
from mpbench.data.datasets import VideoEntry
from mpbench.data.video import Select, VideoDecodeError, iter_frames

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Store layout version: bump it when the layout changes (old stores are rebuilt)."""
CACHE_DIRNAME = ".mpbench-cache"
FRAMES_FILE, INDEX_FILE, HEADER_FILE = "frames.u8", "index.json", "header.json"
MIN_SHORT_SIDE = 8
_COPY_CHUNK = 64 << 20  # bytes per copy when a rebuild reuses an unchanged video's frames

Progress = Callable[[int], None]

# What a broken file makes the decoder raise: its own error, or PyAV's and the OS's.
DECODE_ERRORS = (VideoDecodeError, av.FFmpegError, OSError, EOFError, ValueError, IndexError)


def default_cache_dir(root: str | Path) -> Path:
    """The folder that holds a dataset's stores: ``root/.mpbench-cache``."""
    return Path(root).expanduser() / CACHE_DIRNAME


def store_path(cache_dir: str | Path, short_side: int) -> Path:
    """The store of short side ``short_side`` in ``cache_dir``: ``cache_dir/s{short_side}``."""
    return Path(cache_dir).expanduser() / f"s{short_side}"


def check_short_side(short_side: Any) -> int:
    """``short_side`` if it is an integer >= 8, else a ValueError naming it."""
    if not isinstance(short_side, int) or isinstance(short_side, bool):
        raise ValueError(f"cache short side must be an integer, got {short_side!r}")
    if short_side < MIN_SHORT_SIDE:
        raise ValueError(f"cache short side must be >= {MIN_SHORT_SIDE} pixels, got {short_side}")
    return short_side


# ----------------------------------------------------------------------------------------------
# The opened store


@dataclass(frozen=True)
class CacheStore:
    """An opened store: its header and index (the frames stay on disk until a source reads them).

    Args:
        path: the store folder.
        header: decode settings, build id and totals.
        index: column name -> one value per video (see the module docstring).

    Example:
        >>> store = CacheStore.open("data/synth/.mpbench-cache/s64")  # doctest: +SKIP
        >>> store.source(entries).read(0, lambda n: [0, n - 1]).shape  # doctest: +SKIP
        torch.Size([2, 64, 64, 3])
    """

    path: Path
    header: dict[str, Any]
    index: dict[str, list[Any]]

    @classmethod
    def open(cls, path: str | Path) -> CacheStore:
        """Read the header and index of the store at ``path``."""
        path = Path(path)
        header = json.loads((path / HEADER_FILE).read_text(encoding="utf-8"))
        index = json.loads((path / INDEX_FILE).read_text(encoding="utf-8"))
        return cls(path, header, index)

    def __len__(self) -> int:
        return len(self.index["path"])

    @property
    def build_id(self) -> str:
        """A random id given to each build (several processes agree on it when they share one)."""
        return str(self.header["build_id"])

    @property
    def short_side(self) -> int:
        """The short side the frames were decoded at (never upscaled)."""
        return int(self.header["short_side"])

    @property
    def nbytes(self) -> int:
        """Bytes of decoded frames in the store."""
        return int(self.header["bytes"])

    @property
    def failed(self) -> int:
        """Videos that could not be decoded (stored as failed)."""
        return sum(e is not None for e in self.index["error"])

    @property
    def hours(self) -> float:
        """Hours of video cached: frames / fps summed over the decoded videos."""
        return float(self.header["seconds"]) / 3600

    @property
    def gb_per_hour(self) -> float:
        """Disk cost of one hour of video in GB (1e9 bytes); nan when no video has a frame rate."""
        return self.nbytes / 1e9 / self.hours if self.hours > 0 else math.nan

    def rows(self) -> dict[str, int]:
        """Source path -> row of the index."""
        return {p: i for i, p in enumerate(self.index["path"])}

    def source(self, entries: Sequence[VideoEntry]) -> CacheSource:
        """A :class:`CacheSource` over ``entries`` (cached paths; labels from ``entries``)."""
        rows = self.rows()
        missing = [e.path for e in entries if _key(e.path) not in rows]
        if missing:
            raise ValueError(
                f"{len(missing)} videos are not in the cache {self.path} (first: {missing[0]}); "
                "rebuild it with `mpbench data cache`"
            )
        picked = [rows[_key(e.path)] for e in entries]
        return CacheSource(self, picked, [e.label for e in entries])


class CacheSource:
    """A :class:`~mpbench.data.datasets.VideoSource` that slices a store's memory-mapped frames.

    Pickles without the frames (each DataLoader worker maps the file itself, lazily), and refuses
    to read a store that was rebuilt since the source was made.

    Args:
        store: the opened store.
        rows: the index row of each video of this source.
        labels: the class index of each video.

    Example:
        >>> src = store.source([VideoEntry("a.mp4", 0)])  # doctest: +SKIP
        >>> src.read(0, lambda n: [0, 0, n - 1]).shape  # doctest: +SKIP
        torch.Size([3, 128, 170, 3])
    """

    def __init__(self, store: CacheStore, rows: Sequence[int], labels: Sequence[int]) -> None:
        if len(rows) != len(labels):
            raise ValueError(f"{len(rows)} rows but {len(labels)} labels")
        col = store.index
        self.path, self.build_id = store.path, store.build_id
        self.labels = list(labels)
        self.paths = [col["path"][r] for r in rows]
        self.errors = [col["error"][r] for r in rows]
        self.geometry = np.array(  # one row per video: offset, frames, height, width
            [[col[k][r] for k in ("offset", "frames", "height", "width")] for r in rows],
            dtype=np.int64,
        ).reshape(-1, 4)
        self._frames: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_frames": None}  # workers map the file themselves

    def label(self, index: int) -> int:
        """Class index of video ``index``."""
        return self.labels[index]

    def describe(self, index: int) -> str:
        """The source path of video ``index``."""
        return self.paths[index]

    def read(self, index: int, select: Select) -> torch.Tensor:
        """A copy of the frames ``select(n)`` of video ``index``, uint8 N x H x W x 3."""
        if self.errors[index] is not None:
            raise VideoDecodeError(self.errors[index])
        offset, n, h, w = (int(v) for v in self.geometry[index])
        video = self._map()[offset : offset + n * h * w * 3].reshape(n, h, w, 3)
        picked = np.asarray(list(select(n)), dtype=np.int64)
        bad = picked[(picked < 0) | (picked >= n)]
        if bad.size:  # as the decoder does
            raise ValueError(
                f"{self.paths[index]}: frame index {bad[0]} out of range for a video of {n} frames"
            )
        return torch.from_numpy(video[picked])  # fancy indexing copies only these frames

    def _map(self) -> np.ndarray:
        """The store's frames file, mapped once per process."""
        if self._frames is None:
            header = json.loads((self.path / HEADER_FILE).read_text(encoding="utf-8"))
            if header["build_id"] != self.build_id:
                raise RuntimeError(
                    f"the cache {self.path} was rebuilt (build {header['build_id']}) after this "
                    f"source was made from build {self.build_id}; rebuild the datasets"
                )
            self._frames = _map_frames(self.path / FRAMES_FILE, int(header["bytes"]))
        return self._frames


def _map_frames(path: Path, nbytes: int) -> np.ndarray:
    """The frames file as a read-only uint8 array (an empty array when nothing was decoded)."""
    if nbytes == 0:
        return np.empty(0, dtype=np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(nbytes,))


def _key(path: str) -> str:
    """The index key of a source path: absolute, so that the working directory does not matter."""
    return os.path.abspath(path)


# ----------------------------------------------------------------------------------------------
# Staleness


def _stat(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of ``path``; (-1, -1) when it does not exist or cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def unique_entries(entries: Sequence[VideoEntry]) -> list[VideoEntry]:
    """``entries`` without repeated paths (first label wins), in order, paths made absolute."""
    seen: dict[str, VideoEntry] = {}
    for e in entries:
        seen.setdefault(_key(e.path), VideoEntry(_key(e.path), e.label))
    return list(seen.values())


def stale_reason(path: str | Path, entries: Sequence[VideoEntry], *, short_side: int) -> str | None:
    """Why the store at ``path`` cannot serve ``entries`` at ``short_side`` (None: it can)."""
    path = Path(path)
    if not (path / HEADER_FILE).is_file():
        return f"no store at {path} yet"
    try:
        store = CacheStore.open(path)
    except (OSError, ValueError, KeyError) as exc:
        return f"unreadable store ({type(exc).__name__}: {exc})"
    settings = _settings_reason(store.header, short_side)
    if settings:
        return settings
    return _membership_reason(store, entries) or _changed_reason(store)


def decoder_versions() -> dict[str, str]:
    """What the decoded bytes depend on besides the file: PyAV, the FFmpeg libraries it links,
    torchvision, mpbench's decoder."""
    import torchvision

    return {
        "av": av.__version__,
        "ffmpeg": video.ffmpeg_versions(),
        "torchvision": torchvision.__version__,
        "mpbench_decoder": str(video.DECODER_VERSION),
    }


def _settings_reason(header: dict[str, Any], short_side: int) -> str | None:
    """A mismatch of the decode settings, or None."""
    if header.get("format") != FORMAT_VERSION:
        return f"store format {header.get('format')} != current {FORMAT_VERSION}"
    if header.get("short_side") != short_side:
        return f"store short side {header.get('short_side')} != requested {short_side}"
    now, then = decoder_versions(), header.get("decoder", {})
    changed = [f"{k} {then.get(k)} -> {v}" for k, v in now.items() if then.get(k) != v]
    if changed:
        return f"decoder changed since the build ({', '.join(changed)})"
    return None


def _membership_reason(store: CacheStore, entries: Sequence[VideoEntry]) -> str | None:
    """Videos added to or removed from the dataset since the build, or None."""
    cached, wanted = set(store.index["path"]), {e.path for e in unique_entries(entries)}
    added, removed = sorted(wanted - cached), sorted(cached - wanted)
    if not added and not removed:
        return None
    first = (added or removed)[0]
    return f"{len(added)} videos added, {len(removed)} removed since the build (first: {first})"


def _changed_reason(store: CacheStore) -> str | None:
    """Source files whose size or mtime changed since the build, or None."""
    col = store.index
    changed = [
        p
        for p, size, mtime in zip(col["path"], col["size"], col["mtime_ns"], strict=True)
        if _stat(p) != (size, mtime)
    ]
    if not changed:
        return None
    return f"{len(changed)} source files changed on disk (size or mtime; first: {changed[0]})"


# ----------------------------------------------------------------------------------------------
# Building


@dataclass
class _Row:
    """What the index records about one video."""

    path: str
    size: int
    mtime_ns: int
    label: int
    offset: int = 0
    frames: int = 0
    height: int = 0
    width: int = 0
    fps: float = 0.0
    error: str | None = None


def _video_fps(path: str) -> float:
    """Frames per second of ``path``'s first video stream (average rate, else time stamps)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                return float(rate)
            if stream.duration and stream.time_base and stream.frames:
                return stream.frames / float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError, IndexError, ValueError, ZeroDivisionError):
        pass
    return 0.0


def _decode_into(fh: Any, row: _Row, short_side: int) -> _Row:
    """Append ``row.path``'s frames to ``fh`` (streamed); on a decode error, record it instead."""
    start = fh.tell()
    shape: tuple[int, ...] | None = None
    frames = iter_frames(row.path, short_side=short_side)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            break
        except DECODE_ERRORS as exc:  # only the decoder's: a failed write aborts the build
            fh.seek(start)
            fh.truncate()
            row.frames, row.error = 0, _message(row.path, exc)
            return row
        shape = frame.shape if shape is None else shape
        if frame.shape != shape:  # iter_frames scales a resolution change to the first size
            raise RuntimeError(f"{row.path}: frame {row.frames} is {frame.shape}, not {shape}")
        fh.write(np.ascontiguousarray(frame, dtype=np.uint8).data)
        row.frames += 1
    if shape is None or row.frames == 0:
        row.error = f"{row.path}: no decodable frame"
        return row
    row.height, row.width = shape[0], shape[1]
    row.fps = _video_fps(row.path)
    return row


def _message(path: str, exc: BaseException) -> str:
    """The error a broken video is stored with (the decoder's own message when it raised one)."""
    if isinstance(exc, VideoDecodeError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc}"


def _decode_to_file(row: _Row, short_side: int, out: str) -> _Row:
    """Worker-process task: decode one video into its own file ``out``."""
    with open(out, "wb") as fh:
        return _decode_into(fh, row, short_side)


def _copy_range(src: Path, dst: Any, offset: int, nbytes: int) -> None:
    """Append ``nbytes`` of ``src`` from ``offset`` to the open file ``dst``, in chunks."""
    with open(src, "rb") as fh:
        fh.seek(offset)
        while nbytes > 0:
            chunk = fh.read(min(nbytes, _COPY_CHUNK))
            if not chunk:
                raise OSError(f"{src} is shorter than its index says")
            dst.write(chunk)
            nbytes -= len(chunk)


def _reusable(path: Path, short_side: int) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Rows of the old store at ``path`` that a rebuild may copy: (path, size, mtime) -> row."""
    try:
        old = CacheStore.open(path)
    except (OSError, ValueError):
        return {}
    if _settings_reason(old.header, short_side):
        return {}
    cols = old.index
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    return {(r["path"], r["size"], r["mtime_ns"]): r for r in rows}


class _Writer:
    """Appends videos to the frames file being built: reused, decoded here, or by workers."""

    def __init__(self, fh: Any, old: Path, reuse: dict, short_side: int) -> None:
        self.fh, self.old, self.reuse, self.short_side = fh, old, reuse, short_side
        self.decoded = self.reused = 0

    def take_reused(self, row: _Row) -> bool:
        """Copy ``row`` from the old store if it holds the same file; True when it did."""
        old = self.reuse.get((row.path, row.size, row.mtime_ns))
        if old is None:
            return False
        row.offset = self.fh.tell()
        nbytes = old["frames"] * old["height"] * old["width"] * 3
        _copy_range(self.old / FRAMES_FILE, self.fh, old["offset"], nbytes)
        for k in ("frames", "height", "width", "fps", "error"):
            setattr(row, k, old[k])
        self.reused += 1
        return True

    def decode(self, row: _Row) -> _Row:
        """Decode ``row`` straight into the frames file."""
        row.offset = self.fh.tell()
        self.decoded += 1
        return _decode_into(self.fh, row, self.short_side)

    def append(self, row: _Row, part: str) -> _Row:
        """Append a worker's file ``part`` (the frames of ``row``) and delete it."""
        row.offset = self.fh.tell()
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self.fh, _COPY_CHUNK)
        os.unlink(part)
        self.decoded += 1
        return row


def _write_serial(writer: _Writer, rows: list[_Row], progress: Progress) -> None:
    """Reuse or decode every video in this process."""
    for i, row in enumerate(rows):
        if not writer.take_reused(row):
            rows[i] = writer.decode(row)
        progress(1)


def _write_parallel(
    writer: _Writer, rows: list[_Row], progress: Progress, *, workers: int, tmp: Path
) -> None:
    """Decode in ``workers`` processes, each video into its own file, appended in index order
    (at most 2 x workers videos in flight, so temporary files stay few)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    pending: deque[tuple[int, Future[_Row] | None]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        for i, row in enumerate(rows):
            if (row.path, row.size, row.mtime_ns) in writer.reuse:
                pending.append((i, None))
            else:
                part = str(tmp / f"part-{i}.u8")
                pending.append((i, pool.submit(_decode_to_file, row, writer.short_side, part)))
            while len(pending) > 2 * workers or (i == len(rows) - 1 and pending):
                _finish(writer, rows, pending.popleft(), tmp, progress)


def _finish(
    writer: _Writer,
    rows: list[_Row],
    item: tuple[int, Future[_Row] | None],
    tmp: Path,
    progress: Progress,
) -> None:
    """Append the oldest video in flight (reused from the old store, or a worker's file)."""
    i, future = item
    if future is None:
        writer.take_reused(rows[i])
    else:
        rows[i] = writer.append(future.result(), str(tmp / f"part-{i}.u8"))
    progress(1)


def _index_columns(rows: list[_Row]) -> dict[str, list[Any]]:
    """The index as columns (one list per field)."""
    fields = list(_Row.__dataclass_fields__)
    return {k: [getattr(r, k) for r in rows] for k in fields}


def _header(rows: list[_Row], *, short_side: int, nbytes: int, writer: _Writer) -> dict:
    """Decode settings, a new build id and the totals of a finished build."""
    seconds = sum(r.frames / r.fps for r in rows if r.error is None and r.fps > 0)
    return {
        "format": FORMAT_VERSION,
        "short_side": short_side,
        "decoder": decoder_versions(),
        "build_id": uuid.uuid4().hex,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "videos": len(rows),
        "failed": sum(r.error is not None for r in rows),
        "decoded": writer.decoded,
        "reused": writer.reused,
        "bytes": nbytes,
        "seconds": seconds,
    }


def build_store(
    entries: Sequence[VideoEntry],
    *,
    path: str | Path,
    short_side: int,
    workers: int = 1,
    progress: Progress | None = None,
) -> CacheStore:
    """Decode ``entries`` at ``short_side`` into a new store that replaces the one at ``path``.

    Unchanged videos of an old store at ``path`` (same file size and mtime, same settings) are
    copied instead of decoded. The build happens in a temporary sibling folder renamed into
    place at the end; on an error the temporary folder is removed. Call it under the lock
    (:func:`ensure_store` does) when other processes may build the same store.
    """
    check_short_side(short_side)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    path = Path(path)
    _check_replaceable(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir(parents=True)
    try:
        rows = [_Row(e.path, *_stat(e.path), e.label) for e in unique_entries(entries)]
        with open(tmp / FRAMES_FILE, "wb") as fh:
            writer = _Writer(fh, path, _reusable(path, short_side), short_side)
            tick = progress or (lambda n: None)
            if workers == 1:
                _write_serial(writer, rows, tick)
            else:
                _write_parallel(writer, rows, tick, workers=workers, tmp=tmp)
            nbytes = fh.tell()
            os.fsync(fh.fileno())  # on disk before the rename publishes the store
        header = _header(rows, short_side=short_side, nbytes=nbytes, writer=writer)
        _write_synced(tmp / INDEX_FILE, json.dumps(_index_columns(rows)))
        _write_synced(tmp / HEADER_FILE, json.dumps(header, indent=2) + "\n")
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CacheStore.open(path)


def _write_synced(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` and flush it to disk."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _check_replaceable(path: Path) -> None:
    """Refuse to build over something at ``path`` that is not a store (nor an empty folder)."""
    if path.is_dir() and ((path / HEADER_FILE).is_file() or not any(path.iterdir())):
        return
    if path.exists():
        raise ValueError(f"{path} exists and is not a cache store; move it or choose another --out")


def _swap_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished build ``tmp`` to ``path``, moving an old store aside first."""
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _clean_stale(path: Path) -> list[Path]:
    """Remove temporary and old folders that killed builds left next to ``path``."""
    stale = [
        p
        for p in path.parent.glob(f".{path.name}.*")
        if p.is_dir() and p.name.startswith((f".{path.name}.tmp-", f".{path.name}.old-"))
    ]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (released by the kernel if we are killed)."""
    with open(lock_file, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prepare_dir(cache_dir: Path) -> None:
    """Create ``cache_dir``, or raise a ValueError saying why it cannot be written."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the cache folder {cache_dir}: {exc.strerror}") from None
    if not os.access(cache_dir, os.W_OK | os.X_OK):
        raise ValueError(f"the cache folder {cache_dir} is not writable")


def ensure_store(
    entries: Sequence[VideoEntry],
    *,
    path: str | Path,
    short_side: int,
    workers: int = 1,
    progress: Progress | None = None,
    on_build: Callable[[str], None] | None = None,
) -> tuple[CacheStore, str | None]:
    """The store at ``path`` for ``entries`` at ``short_side``, built first if missing or stale.

    Check and build happen under an exclusive lock on ``path.lock``, so concurrent callers build
    once and the others open the result. ``on_build`` is told why before a build starts.
    Returns the store and why it was built (None: it was up to date).
    """
    check_short_side(short_side)
    path = Path(path).expanduser()
    _prepare_dir(path.parent)
    with _locked(path.parent / f"{path.name}.lock"):
        reason = stale_reason(path, entries, short_side=short_side)
        if reason is None:
            return CacheStore.open(path), None
        (on_build or log.warning)(f"building the decoded-clip cache {path}: {reason}")
        _clean_stale(path)
        store = build_store(
            entries, path=path, short_side=short_side, workers=workers, progress=progress
        )
        return store, reason


__all__ = [
    "CacheSource",
    "CacheStore",
    "FORMAT_VERSION",
    "build_store",
    "default_cache_dir",
    "ensure_store",
    "stale_reason",
    "store_path",
    "unique_entries",
]
