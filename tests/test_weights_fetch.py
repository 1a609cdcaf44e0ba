"""Published weights that arrive by themselves: `mpbench weights fetch` against a loopback server.

The server is an ``http.server`` on 127.0.0.1 in a thread that serves one real checkpoint (an
X3D-S state dict); ``MPBENCH_WEIGHTS_URL`` points mpbench's pytorchvideo downloads at it and
``TORCH_HOME`` / ``HF_HOME`` put the caches under the test's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from mpbench.cli import app
from mpbench.models import build_model, get_backbone
from mpbench.models._registry import BACKBONES

ROOT = Path(__file__).resolve().parents[1]


class Served:
    """Files the loopback server serves by URL path, and what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}  # extra response headers per path
        self.cut: dict[str, int] = {}  # path -> send only this many bytes once
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Range


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def do_HEAD(self) -> None:
        self._reply(body=False)

    def do_GET(self) -> None:
        self._reply(body=True)

    def _reply(self, *, body: bool) -> None:
        path = self.path.split("?")[0]
        rng = self.headers.get("Range")
        self.served.requests.append((self.command, path, rng))
        data = self.served.files.get(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        for key, value in self.served.headers.get(path, {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data[start : start + self.served.cut.pop(path, len(data))])


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def x3d_s_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real X3D-S checkpoint in pytorchvideo's layout ({"model_state": ...})."""
    kw = {"num_classes": 400, "frames": 13, "crop": 160, "size": "full"}
    net = build_model("x3d_s", variant="baseline", **kw)
    path = tmp_path_factory.mktemp("ckpt") / "X3D_S.pyth"
    torch.save({"model_state": net.backbone.net.state_dict()}, path)
    return path.read_bytes()


def _env(tmp_path: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MPBENCH_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(PYTHONPATH=str(ROOT), TORCH_HOME=str(tmp_path / "torch"), MPBENCH_WEIGHTS_URL=url)
    env.update(HF_HOME=str(tmp_path / "hf"), **extra)
    return env


def _fetch(env: dict[str, str], *names: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mpbench", "weights", "fetch", "--no-progress", *names]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_fetch_puts_the_checkpoint_where_a_pretrained_model_finds_it(
    server, x3d_s_file: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = x3d_s_file
    env = _env(tmp_path, url)
    out = _fetch(env, "x3d_s")
    assert out.returncode == 0, out.stderr
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "X3D_S.pyth"
    assert cached.read_bytes() == x3d_s_file
    digest = hashlib.sha256(x3d_s_file).hexdigest()
    assert f"sha256 {digest}, not verified: no published checksum" in out.stdout
    assert f"x3d_s: {cached}" in out.stdout
    again = _fetch(env, "x3d_s")  # already cached: kept, nothing downloaded
    assert again.returncode == 0 and [r[0] for r in served.requests] == ["GET"]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MPBENCH_OFFLINE", "1")  # the trial reads the cache, downloads nothing
    model = build_model(
        "x3d_s", variant="learnable", num_classes=5, frames=13, crop=160, size="full",
        pretrained=True,
    )  # fmt: skip
    stem = "blocks.0.conv.conv_t.weight"
    saved = torch.load(cached, weights_only=True)["model_state"][stem]
    torch.testing.assert_close(model.backbone.net.state_dict()[stem], saved)


def test_a_checksum_mismatch_is_exit_2_naming_the_file(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = b"not the published file"
    entry = BACKBONES.get("x3d_s")
    ckpt = dataclasses.replace(entry.info.checkpoint, sha256="ab" * 32)
    patched = dataclasses.replace(entry, info=dataclasses.replace(entry.info, checkpoint=ckpt))
    monkeypatch.setitem(BACKBONES._entries, "x3d_s", patched)
    for key, value in _env(tmp_path, url).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPBENCH_OFFLINE")
    result = CliRunner().invoke(app, ["weights", "fetch", "--no-progress", "x3d_s"])
    assert result.exit_code == 2, result.output
    digest = hashlib.sha256(b"not the published file").hexdigest()
    assert f"X3D_S.pyth: sha256 {digest} is not the expected {'ab' * 32}" in result.output
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert not (checkpoints / "X3D_S.pyth").exists()
    assert not (checkpoints / "X3D_S.pyth.partial").exists()  # a bad file is not resumed


@pytest.mark.slow
def test_a_cut_download_is_resumed(server, x3d_s_file: bytes, tmp_path: Path) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = x3d_s_file
    served.cut["/kinetics/X3D_S.pyth"] = 100_000  # the first response stops early
    env = _env(tmp_path, url)
    first = _fetch(env, "x3d_s")
    assert first.returncode == 1
    part = tmp_path / "torch" / "hub" / "checkpoints" / "X3D_S.pyth.partial"
    assert f"got 100000 of {len(x3d_s_file)} bytes" in first.stderr
    assert part.stat().st_size == 100_000
    second = _fetch(env, "x3d_s")
    assert second.returncode == 0, second.stderr
    assert served.requests[-1] == ("GET", "/kinetics/X3D_S.pyth", "bytes=100000-")
    assert (part.parent / "X3D_S.pyth").read_bytes() == x3d_s_file and not part.exists()


def test_not_a_checkpoint_is_refused(server, tmp_path: Path) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = b"<html>a captive portal</html>"
    out = _fetch(_env(tmp_path, url), "x3d_s")
    assert out.returncode == 2
    assert "X3D_S.pyth: the download is not a checkpoint" in out.stderr
    assert not list((tmp_path / "torch" / "hub" / "checkpoints").glob("X3D_S.pyth*[!k]"))


@pytest.mark.parametrize("flag", ["MPBENCH_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_downloads_nothing(server, tmp_path: Path, flag: str) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = b"x"
    out = _fetch(_env(tmp_path, url, **{flag: "1"}), "x3d_s")
    assert out.returncode == 2 and served.requests == []
    assert "not in the local cache and nothing can be downloaded offline" in out.stderr
    assert "mpbench weights fetch x3d_s" in out.stderr


@pytest.mark.slow
def test_many_processes_download_once(server, x3d_s_file: bytes, tmp_path: Path) -> None:
    url, served = server
    served.files["/kinetics/X3D_S.pyth"] = x3d_s_file
    env = _env(tmp_path, url)
    cmd = [sys.executable, "-c", "from mpbench.models import get_backbone; "
           "from mpbench.models.fetch import ensure_checkpoint; "
           "print(ensure_checkpoint(get_backbone('x3d_s').info, progress=False))"]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE) for _ in range(3)]
    outs = [p.communicate(timeout=300)[0].decode().strip().splitlines()[-1] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1 and [r[0] for r in served.requests] == ["GET"]


def test_huggingface_fetch_goes_through_huggingface_hub(server, tmp_path: Path) -> None:
    """HF_ENDPOINT at the loopback server: the repository id and file that huggingface_hub asks
    for, and the file landing in the Hugging Face cache where find_checkpoint looks."""
    url, served = server
    repo = get_backbone("timesformer_k600").info.checkpoint.repo
    data = json.dumps({"not": "a model"}).encode()
    commit = "0123456789abcdef0123456789abcdef01234567"
    path = f"/{repo}/resolve/main/pytorch_model.bin"
    served.files[path] = data
    served.headers[path] = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
    out = _fetch(_env(tmp_path, url, HF_ENDPOINT=url), "timesformer_k600")
    assert out.returncode == 0, out.stderr
    asked = [(m, p) for m, p, _ in served.requests]
    assert ("HEAD", f"/{repo}/resolve/main/model.safetensors") in asked  # tried first: 404
    assert ("GET", path) in asked
    cached = tmp_path / "hf" / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots"
    assert (cached / commit / "pytorch_model.bin").read_bytes() == data
