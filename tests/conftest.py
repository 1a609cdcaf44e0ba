"""Shared fixtures: a real PostgreSQL server for the storage tests, an MLflow store per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PG_VERSION = os.environ.get("MPBENCH_PG_VERSION", "15")


def _psql(sql: str) -> subprocess.CompletedProcess[str]:
    """Run ``sql`` as the postgres superuser."""
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _start_postgres() -> str | None:
    """Start the Debian cluster if it is down; None when it runs, else the reason it cannot."""
    if shutil.which("pg_ctlcluster") is None or shutil.which("runuser") is None:
        return "PostgreSQL is not installed (no pg_ctlcluster; `apt-get install postgresql`)"
    if os.geteuid() != 0:
        return "starting PostgreSQL needs root (pg_ctlcluster)"
    if _psql("SELECT 1").returncode == 0:
        return None
    res = subprocess.run(
        ["pg_ctlcluster", PG_VERSION, "main", "start"], capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0 or _psql("SELECT 1").returncode != 0:
        return f"pg_ctlcluster {PG_VERSION} main start failed: {res.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server (started if down), dropped afterwards."""
    reason = _start_postgres()
    if reason is not None:
        if os.environ.get("CI"):  # CI installs PostgreSQL (.ci/run): a skip there would hide a gap
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    name = f"mpbench_test_{uuid.uuid4().hex[:8]}"
    for sql in (
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='mpbench') THEN "
        "CREATE ROLE mpbench LOGIN PASSWORD 'mpbench'; END IF; END$$;",
        f"CREATE DATABASE {name} OWNER mpbench",
    ):
        res = _psql(sql)
        if res.returncode != 0:
            pytest.skip(f"cannot create the test database: {res.stderr.strip()}")
    yield f"postgresql+psycopg2://mpbench:mpbench@localhost:5432/{name}"
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private MLflow store (sqlite in tmp_path) for this test and the workers it starts."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts in ./mlruns: not in the repo
    return uri


@pytest.fixture
def restart_postgres(postgres_url: str) -> Callable[[], None]:
    """Restart the PostgreSQL server (every open connection drops), for outage tests."""

    def restart() -> None:
        res = subprocess.run(
            ["pg_ctlcluster", PG_VERSION, "main", "restart"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr

    return restart


class PrivatePostgres:
    """A PostgreSQL server of this test alone (its own data folder and port), which the test may
    stop and start without touching the shared server other tests use."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def _ctl(self, *args: str) -> None:
        """Run pg_ctl on the private cluster as the postgres user."""
        data = str(self.folder / "data")
        res = subprocess.run(
            ["runuser", "-u", "postgres", "--", _pg_bin("pg_ctl"), "-D", data, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stdout + res.stderr

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        """Stop the server now (every open connection drops)."""
        self._ctl("-m", "fast", "-w", "stop")


def _pg_bin(name: str) -> str:
    return f"/usr/lib/postgresql/{PG_VERSION}/bin/{name}"


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL cluster on a free port, started; stopped and removed afterwards."""
    import socket
    import tempfile

    reason = None
    if not Path(_pg_bin("initdb")).is_file() or shutil.which("runuser") is None:
        reason = f"PostgreSQL {PG_VERSION} is not installed (no {_pg_bin('initdb')})"
    elif os.geteuid() != 0:
        reason = "a private PostgreSQL cluster needs root (runuser -u postgres)"
    if reason is not None:
        if os.environ.get("CI"):  # CI installs PostgreSQL (.ci/run): a skip there would hide a gap
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="mpbench-pg-"))  # /tmp: the postgres user can enter
    shutil.chown(folder, "postgres")
    init = [_pg_bin("initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"]
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *init, "--no-sync"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = PrivatePostgres(folder, port)
    server.start()
    yield server
    with contextlib.suppress(AssertionError):
        server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests are offline: no published weights are downloaded (the tests of downloads unset
    MPBENCH_OFFLINE and serve their files from the loopback address)."""
    monkeypatch.setenv("MPBENCH_OFFLINE", "1")
