"""``mpbench ui`` on a real study: the MLflow UI and optuna-dashboard started for real and asked
through their HTTP APIs, stopped by SIGINT and SIGTERM with nothing left running; the study's
metric name; each trial's dataset as MLflow inputs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mpbench
from mpbench import tracking as tk
from mpbench import ui as U
from mpbench._secrets import mask_url
from mpbench.cli import app
from mpbench.cli.study_cmds import ui_command
from mpbench.study import storage as S
from mpbench.study.spec import read_study
from tests.test_study_run import study_file

TWO_CELLS = """
[grid]
variant = ["baseline", "learnable"]
seeds = 1
"""
ROOT = str(Path(mpbench.__file__).resolve().parents[1])
URL = re.compile(r"https?://\S+")


def get(url: str, data: dict[str, Any] | None = None) -> Any:
    """GET (POST with ``data``) and decode JSON, else the text."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        text = resp.read().decode()
    return json.loads(text) if text.lstrip().startswith("{") else text


def port_open(url: str) -> bool:
    """Whether something listens at the URL's host and port."""
    u = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((u.hostname, u.port), timeout=2):
            return True
    except OSError:
        return False


# --- pieces -------------------------------------------------------------------------------------


def test_links_and_the_printed_command() -> None:
    runs = U.runs_url("http://127.0.0.1:5000", "7", "demo")
    assert runs.startswith("http://127.0.0.1:5000/#/experiments/7/runs?searchFilter=")
    query = urllib.parse.unquote(runs.split("searchFilter=", 1)[1])
    assert query == "tags.`mpbench.study` = 'demo'" == U.runs_filter("demo")
    assert U.runs_url("http://h:1/", None, "demo") == "http://h:1/#/experiments"
    assert U.study_url("http://h:2", 3) == "http://h:2/dashboard/studies/3"
    assert U.without_credentials("https://u:pw@mlflow.example:5000/x") == (
        "https://mlflow.example:5000/x"
    )
    pg = "postgresql+psycopg2://u:PW@db/x"
    assert ui_command("s.toml", storage=pg) == "mpbench ui s.toml --storage " + mask_url(pg)
    assert ui_command("s.toml") == "mpbench ui s.toml"
    assert not any("PW" in a or "postgresql" in a for a in U.dashboard_command(8080))
    assert not any("sqlite" in a for a in U.mlflow_command(5000))  # stores go through the env


def test_stop_child_stops_its_whole_process_group(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
        "print(p.pid, flush=True); time.sleep(120)"
    )
    log = tmp_path / "child.log"
    child = U.start_child(
        "sleeper", [sys.executable, "-c", code], env=dict(os.environ), log=log, url=""
    )
    deadline = time.monotonic() + 30
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    grandchild = int(log.read_text())
    assert os.getpgid(grandchild) == child.proc.pid  # started in the child's own group
    U.stop_child(child, timeout=5)
    assert child.proc.poll() is not None
    deadline = time.monotonic() + 10
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(grandchild)


def gone(pid: int) -> bool:
    """The process has exited (a zombie that nobody reaped yet counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_ui_wants_a_study_file_or_a_name_in_a_storage(tmp_path: Path, mlflow_uri: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["ui", "nosuch"])
    assert res.exit_code == 2 and "pass the study file, or its name with --storage" in res.output
    journal = tmp_path / "x.journal"
    res = runner.invoke(app, ["ui", "nosuch", "--storage", str(journal)])
    assert res.exit_code == 2 and "no study 'nosuch'" in res.output


def test_study_names_its_objective_metric(tmp_path: Path) -> None:
    import optuna

    spec = read_study(study_file(tmp_path, TWO_CELLS, name="named"))
    url = str(tmp_path / "optuna.journal")
    S.create_or_load(spec, S.open_storage(url))
    stored = optuna.load_study(study_name="named", storage=S.open_storage(url))
    assert stored.metric_names == [spec.objective.metric] == ["val_top1"]


# --- dataset inputs ----------------------------------------------------------------------------


def test_trial_logs_its_splits_as_mlflow_dataset_inputs_once(
    tmp_path: Path, mlflow_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    from mpbench.engine.train import run_trial

    spec = read_study(study_file(tmp_path, TWO_CELLS, name="inputs"))
    cfg = spec.base.with_updates(run_dir=str(tmp_path / "trial"))
    first = run_trial(cfg, progress=False)
    again = run_trial(cfg, progress=False, run_id=first.run_id)  # resumes the same run
    assert again.run_id == first.run_id
    run = MlflowClient(mlflow_uri).get_run(first.run_id)
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    # no duplicates
    assert sorted(inputs) == ["synth/test", "synth/test_shift", "synth/train", "synth/val"]
    contexts = {n: {t.key: t.value for t in i.tags}[tk.DATASET_CONTEXT] for n, i in inputs.items()}
    assert contexts == {
        "synth/train": "training",
        "synth/val": "evaluation",
        "synth/test": "evaluation",
        "synth/test_shift": "evaluation",
    }
    train = inputs["synth/train"].dataset
    assert re.fullmatch(r"[0-9a-f]{12}", train.digest)
    assert len({i.dataset.digest for i in inputs.values()}) == 4
    assert train.source_type == "code"
    assert json.loads(train.source)["tags"] == {
        "mpbench.synth.preset": "easy",
        "mpbench.synth.seed": "0",
    }
    profile = json.loads(train.profile)
    assert (profile["split"], profile["videos"], profile["classes"]) == ("train", 8, 3)
    assert run.data.tags[tk.TAG_SOURCE_NAME] == "mpbench"
    assert run.data.tags[tk.TAG_SOURCE_TYPE] == "LOCAL"


def test_folder_digest_follows_the_files_not_their_place(tmp_path: Path) -> None:
    import shutil

    from mpbench.data.datasets import FileSource, VideoEntry
    from mpbench.engine.logging import split_digest

    def digest(root: Path) -> str:
        entries = [VideoEntry(str(root / f"{c}.mp4"), i) for i, c in enumerate("ab")]
        return split_digest(FileSource(entries), facts={"split": "train"}, root=root)

    a = tmp_path / "a"
    a.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (a / name).write_bytes(b"x" * 10)
    b = tmp_path / "b"
    shutil.copytree(a, b)  # same files, same sizes and times, another folder
    assert digest(a) == digest(b)
    (b / "b.mp4").write_bytes(b"x" * 11)
    assert digest(a) != digest(b)


# --- the servers, for real ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran_study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A finished two-cell grid study (journal storage, sqlite MLflow store) in its folder."""
    from mpbench.study.plan import plan
    from mpbench.study.runner import run_study

    folder = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(folder)
        path = study_file(folder, TWO_CELLS, name="uidemo")
        spec = read_study(path)
        result = run_study(spec, plan(spec, workers=1), progress=False)
        assert result.exit_code == 0, result.summary
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    yield {"folder": folder, "study": path, "uri": uri, "env": env}


class Ui:
    """``mpbench ui`` as a subprocess whose output lines are collected by a thread."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=lambda s=stream, x=lines: x.extend(s), daemon=True).start()

    def wait_for(self, text: str, timeout: float = 180.0) -> list[str]:
        """The stdout lines once one contains ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.out):
            assert self.proc.poll() is None, "".join(self.out + self.err)
            assert time.monotonic() < deadline, "".join(self.out + self.err)
            time.sleep(0.2)
        return list(self.out)

    def stop(self, sig: int) -> int:
        """Send ``sig`` and return the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def close(self) -> None:
        """Leave nothing running whatever the test did."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def links(lines: list[str]) -> dict[str, str]:
    """The printed links by line head: 'MLflow runs' and 'optuna-dashboard'."""
    found = {}
    for line in lines:
        m = URL.search(line)
        if m:
            found["mlflow" if line.startswith("MLflow runs") else "dashboard"] = m.group(0)
    return found


def no_process_on(port: int) -> bool:
    """No process whose command line names ``port`` (the children and MLflow's uvicorn)."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return not any(re.search(rf"(--port {port}|127\.0\.0\.1 {port})\b", a) for a in ps.splitlines())


@pytest.mark.slow
def test_ui_serves_runs_and_trials_and_stops_on_sigint(ran_study: dict[str, Any]) -> None:
    ui = Ui(
        [sys.executable, "-m", "mpbench", "ui", str(ran_study["study"])],
        cwd=ran_study["folder"],
        env=ran_study["env"],
    )
    try:
        link = links(ui.wait_for("Ctrl-C stops"))
        mlflow, dash = link["mlflow"], link["dashboard"]
        base = mlflow.split("/#/", 1)[0]
        exp = re.search(r"#/experiments/(\d+)/runs\?searchFilter=", mlflow).group(1)
        flt = urllib.parse.unquote(mlflow.split("searchFilter=", 1)[1])
        assert flt == f"tags.`{tk.TAG_STUDY}` = 'uidemo'"
        assert "<html" in get(base + "/").lower()
        found = get(base + "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp], "filter": flt})[
            "runs"
        ]
        assert len(found) == 2
        assert {r["info"]["status"] for r in found} == {"FINISHED"}
        names = {d["dataset"]["name"] for d in found[0]["inputs"]["dataset_inputs"]}
        assert names == {"synth/train", "synth/val", "synth/test", "synth/test_shift"}

        dbase, sid = dash.split("/dashboard/studies/")
        studies = get(dbase + "/api/studies")["study_summaries"]
        assert {s["study_name"]: s["study_id"] for s in studies}["uidemo"] == int(sid)
        detail = get(f"{dbase}/api/studies/{sid}")
        assert detail["name"] == "uidemo" and len(detail["trials"]) == 2
        assert detail["objective_names"] == ["val_top1"]
        assert "Optuna Dashboard" in get(dash)

        assert ui.stop(signal.SIGINT) == 0
        assert any("stopped" in line for line in ui.out)
        for url in (base, dbase):
            assert not port_open(url), url
            assert no_process_on(urllib.parse.urlsplit(url).port)
    finally:
        ui.close()


@pytest.mark.slow
def test_ui_without_the_dashboard_extra_serves_mlflow(ran_study: dict[str, Any]) -> None:
    """optuna_dashboard made unimportable: one line names the extra, MLflow is served, SIGTERM
    stops it."""
    code = (
        "import sys; sys.modules['optuna_dashboard'] = None; sys.argv[0] = 'mpbench'; "
        "from mpbench.cli import main; main()"
    )
    ui = Ui(
        [sys.executable, "-c", code, "ui", str(ran_study["study"])],
        cwd=ran_study["folder"],
        env=ran_study["env"],
    )
    try:
        link = links(ui.wait_for("Ctrl-C stops"))
        assert list(link) == ["mlflow"]
        base = link["mlflow"].split("/#/", 1)[0]
        assert get(base + "/health") == "OK"
        assert ui.stop(signal.SIGTERM) == 0
        assert not port_open(base) and no_process_on(urllib.parse.urlsplit(base).port)
        note = [line for line in ui.err if "optuna-dashboard" in line]
        assert len(note) == 1 and "pip install 'mpbench[ui]'" in note[0], ui.err
    finally:
        ui.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_ui_on_a_password_storage_never_prints_the_password(
    tmp_path: Path, mlflow_uri: str, postgres_url: str
) -> None:
    """The storage URL reaches optuna-dashboard through MPBENCH_STORAGE; output masks it."""
    spec = read_study(study_file(tmp_path, TWO_CELLS, name="pgui"))
    S.create_or_load(spec, S.open_storage(postgres_url))
    res = CliRunner().invoke(app, ["ui", "pgui", "--check"], env={"MPBENCH_STORAGE": postgres_url})
    assert res.exit_code == 0, res.output
    assert "checked: 0 trials" in res.output and "/dashboard/studies/" in res.output
    assert ":mpbench@" not in res.output  # the test role's password
