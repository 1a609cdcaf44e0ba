"""Secrets: storage passwords never on a worker's command line nor in any message; a missing
PostgreSQL driver is one line that names the ``postgres`` extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpbench._secrets import mask_url
from mpbench.study import storage as S
from mpbench.study.plan import plan
from mpbench.study.runner import worker_command, worker_env
from mpbench.study.spec import read_study
from mpbench.study.storage import STORAGE_ENV
from tests.test_study_run import grid_study

PG = "postgresql+psycopg2://u:PW@127.0.0.1:1/db"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (PG, "postgresql+psycopg2://u:***@127.0.0.1:1/db"),
        ("postgresql://mpbench:s3cr%40t@dbhost:5432/x", "postgresql://mpbench:***@dbhost:5432/x"),
        ("https://alice:hunter2@mlflow.example:5000/", "https://alice:***@mlflow.example:5000/"),
        ("postgresql://u@host/db", "postgresql://u@host/db"),  # a user, no password
        ("postgresql://host/db", "postgresql://host/db"),
        ("sqlite:///runs/x.db", "sqlite:///runs/x.db"),
        ("runs/demo/optuna.journal", "runs/demo/optuna.journal"),
        ("no url here: user:pw@host", "no url here: user:pw@host"),
        (
            "cannot reach postgresql://a:b@h/d nor http://c:d@e",
            "cannot reach postgresql://a:***@h/d nor http://c:***@e",
        ),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_worker_gets_a_password_url_through_the_environment(tmp_path: Path) -> None:
    spec = read_study(grid_study(tmp_path, name="secret", seeds=1))
    p = plan(spec, storage=PG, workers=2)
    cmd = worker_command(spec, p, index=0)
    assert not any("PW" in a for a in cmd) and "--storage" not in cmd
    assert worker_env(p)[STORAGE_ENV] == PG
    journal = plan(spec, workers=2)  # no password: the path stays on the command line
    cmd = worker_command(spec, journal, index=0)
    assert cmd[cmd.index("--storage") + 1] == journal.storage
    assert STORAGE_ENV not in worker_env(journal) or worker_env(journal)[STORAGE_ENV] != PG


def test_worker_reads_the_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from mpbench.cli import app

    monkeypatch.setenv(STORAGE_ENV, PG)
    command = typer.main.get_command(app).commands["worker"]
    assert command.make_context("worker", ["demo"]).params["storage"] == PG
    hand = command.make_context("worker", ["demo", "--storage", "runs/j"]).params
    assert hand["storage"] == "runs/j"  # a hand-started --storage still wins


def _mpbench(args: list[str], *, hide_driver: bool, cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        + ("sys.modules['psycopg2'] = None; sys.modules['psycopg'] = None\n" if hide_driver else "")
        + "from mpbench.cli import main\n"
        + f"sys.argv = ['mpbench', *{args!r}]\n"
        + "main()\n"
    )
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def test_status_never_prints_the_password(tmp_path: Path) -> None:
    study = grid_study(tmp_path, name="secret", seeds=1)
    out = _mpbench(["status", "--storage", PG, str(study)], hide_driver=False, cwd=tmp_path)
    assert "PW" not in out.stdout + out.stderr


def test_missing_driver_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    study = grid_study(tmp_path, name="secret", seeds=1)
    out = _mpbench(["status", "--storage", PG, str(study)], hide_driver=True, cwd=tmp_path)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "pip install 'mpbench[postgres]'" in out.stderr
    assert "Traceback" not in out.stderr and "PW" not in out.stdout + out.stderr


def test_missing_driver_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # what an import of a missing module does
    with pytest.raises(ValueError, match=r"pip install 'mpbench\[postgres\]'") as err:
        S.open_storage(PG)
    assert "PW" not in str(err.value) and "\n" not in str(err.value)
