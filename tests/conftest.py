"""Shared fixtures: a real PostgreSQL server for the storage tests, an MLflow store per test."""

from __future__ import annotations

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
