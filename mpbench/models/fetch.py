"""Download published weights into the usual caches, once per machine, with a checksum check.

pytorchvideo's files go where ``torch.hub`` keeps them (``torch.hub.get_dir()/checkpoints``),
TimeSformer through ``huggingface_hub`` into the Hugging Face cache, so that
:func:`mpbench.models.pretrained.find_checkpoint` finds them afterwards. A file lock beside the
file makes one process download while the others wait and then find it. Offline
(``MPBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``) nothing is downloaded and the missing file is the
FileNotFoundError that says how to get it.

Checksums. A pytorchvideo file is checked against ``Checkpoint.sha256`` when the registry knows
it, else against the hash prefix in its name where the name follows torch.hub's convention
(``name-<sha256 prefix>.ext``); the model zoo's files (``X3D_S.pyth``) have neither, so their
download is checked for completeness (Content-Length) and for being a loadable state dict, and
its sha256 is printed, not compared. Hugging Face files are checked by ``huggingface_hub``
itself (the ETag of each file is its sha256 for LFS files).

The download is ours, not ``torch.hub.download_url_to_file``: that one has no timeout, cannot
resume, and keeps a body cut short by the server as if it were whole (it does not compare the
bytes with the Content-Length). Ours writes ``<file>.partial``, resumes it with an HTTP Range
request, and moves it into place only when it is complete and checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.request import Request, urlopen

from mpbench.models._registry import PTV_ZOO, BackboneInfo, Checkpoint

OFFLINE_ENVS = ("MPBENCH_OFFLINE", "HF_HUB_OFFLINE")
WEIGHTS_URL_ENV = "MPBENCH_WEIGHTS_URL"
"""Replaces the pytorchvideo model zoo's address (a mirror; a test's loopback server)."""
TIMEOUT_S = 60.0  # per connection attempt and per read
_CHUNK = 1 << 20
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")  # torch.hub's convention


class ChecksumError(ValueError):
    """A downloaded file's sha256 is not the expected one (exit code 2, the file named)."""


class DownloadError(OSError):
    """A download failed (network, server); the message says how to get the file by hand."""


class IncompleteDownload(OSError):
    """The server sent fewer bytes than it announced; the part is kept for a resume."""


def offline() -> bool:
    """Whether downloads are switched off (``MPBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` set true)."""
    return any(os.environ.get(e, "").strip().lower() in {"1", "true", "yes"} for e in OFFLINE_ENVS)


def checkpoint_url(ckpt: Checkpoint) -> str:
    """The address of a pytorchvideo file, under ``MPBENCH_WEIGHTS_URL`` when that is set."""
    base = os.environ.get(WEIGHTS_URL_ENV, "").strip().rstrip("/")
    if base and ckpt.url.startswith(PTV_ZOO):
        return base + ckpt.url[len(PTV_ZOO) :]
    return ckpt.url


def expected_sha256(ckpt: Checkpoint) -> str | None:
    """The registry's sha256, else the hash prefix in the file's name, else None (unknown)."""
    if ckpt.sha256:
        return ckpt.sha256
    found = _HASH_IN_NAME.search(ckpt.filename)
    return found[1] if found else None


def ensure_checkpoint(info: BackboneInfo, *, progress: bool = True) -> Path:
    """The cached file of ``info``'s weights, downloaded first when it is missing and the
    machine may download (one process per machine; the others wait on the lock)."""
    from mpbench.models.pretrained import find_checkpoint

    try:
        return find_checkpoint(info)
    except FileNotFoundError as exc:
        if offline():
            raise
        missing = exc
    from filelock import FileLock

    lock = _lock_path(info.checkpoint)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock)):
        try:  # another process may have fetched it while this one waited
            return find_checkpoint(info)
        except FileNotFoundError:
            pass
        try:
            if info.checkpoint.source == "huggingface":
                return _fetch_huggingface(info.checkpoint)
            return _fetch_pytorchvideo(info, progress=progress)
        except OSError as exc:  # no network, a refused connection, a download cut short
            if isinstance(exc, FileNotFoundError):
                raise
            raise DownloadError(f"downloading failed ({exc}); {missing}") from exc


def _lock_path(ckpt: Checkpoint) -> Path:
    """The lock file of one checkpoint, in the cache that will hold it."""
    if ckpt.source == "huggingface":
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE) / f".mpbench-{ckpt.repo.replace('/', '--')}.lock"
    from mpbench.models.pretrained import torch_hub_checkpoint

    path = torch_hub_checkpoint(ckpt.filename)
    return path.with_name(path.name + ".lock")


def _fetch_pytorchvideo(info: BackboneInfo, *, progress: bool) -> Path:
    """Download, check and move into the torch hub cache one pytorchvideo file."""
    from mpbench.models.pretrained import read_state_dict, torch_hub_checkpoint

    ckpt = info.checkpoint
    dst = torch_hub_checkpoint(ckpt.filename)
    part = dst.with_name(dst.name + ".partial")
    download(checkpoint_url(ckpt), part, progress=progress)
    digest = file_sha256(part)
    want = expected_sha256(ckpt)
    if want is not None and not digest.startswith(want):
        part.unlink()
        raise ChecksumError(
            f"{ckpt.filename}: sha256 {digest} is not the expected {want} (downloaded from "
            f"{checkpoint_url(ckpt)}; the file was deleted)"
        )
    try:
        read_state_dict(part)
    except ValueError as exc:
        part.unlink()
        raise ValueError(f"{ckpt.filename}: the download is not a checkpoint: {exc}") from None
    os.replace(part, dst)
    note = "verified" if want else "not verified: no published checksum"
    print(f"{info.name}: {dst} (sha256 {digest}, {note})")
    return dst


def _fetch_huggingface(ckpt: Checkpoint) -> Path:
    """``huggingface_hub.hf_hub_download`` of the repository's weights file into its cache."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from mpbench.models.pretrained import HF_FILES

    for filename in HF_FILES:
        try:
            return Path(hf_hub_download(ckpt.repo, filename, etag_timeout=TIMEOUT_S))
        except EntryNotFoundError:
            continue
    raise FileNotFoundError(f"{ckpt.repo} holds none of {', '.join(HF_FILES)}")


def download(url: str, part: Path, *, progress: bool = True) -> None:
    """Append ``url``'s bytes to ``part`` (a Range request resumes a part left before) until
    the Content-Length is reached; IncompleteDownload when the server stops early."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "mpbench", **({"Range": f"bytes={have}-"} if have else {})}
    with urlopen(Request(url, headers=headers), timeout=TIMEOUT_S) as response:
        if have and response.status != 206:  # the server ignored the range: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with part.open("ab" if have else "wb") as out, _bar(part.name, total, progress) as bar:
            bar(have)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise IncompleteDownload(
            f"{url}: got {size} of {total} bytes; run the command again to resume ({part})"
        )


@contextlib.contextmanager
def _bar(name: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich download bar; yields ``advance(nbytes)``."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    columns = (*Progress.get_default_columns()[:3], DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, disable=not enabled) as prog:
        task = prog.add_task(f"download {name}", total=total)
        yield lambda n: prog.advance(task, n)


def file_sha256(path: Path) -> str:
    """The sha256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
