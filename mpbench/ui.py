"""``mpbench ui``: a study in the tools users already open, the MLflow UI on its tracking store
and optuna-dashboard on its Optuna storage.

Each server is a child process in its own process group (its own session), so that stopping it
stops whatever it started (MLflow's uvicorn) and a Ctrl-C on the terminal reaches only
``mpbench ui``, which then stops both groups. Store URLs reach the children through their
environment (``MLFLOW_BACKEND_STORE_URI``, ``MPBENCH_STORAGE``), never their command lines, so
that ``ps`` shows no password. mlflow and optuna are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpbench import tracking as tk
from mpbench._secrets import mask_url

HOST = "127.0.0.1"
DASHBOARD_EXTRA = "pip install 'mpbench[ui]'"
BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"  # read by `mlflow ui --backend-store-uri`
# MLflow 3's server starts job consumers (GenAI judges, 7 processes) unless told not to; a
# browser on training runs needs none of them (the user's own setting wins).
JOBS_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
# The dashboard child: optuna-dashboard on the storage in MPBENCH_STORAGE (argv: host, port).
DASHBOARD_CODE = (
    "import sys; from mpbench.ui import serve_dashboard; serve_dashboard(sys.argv[1], "
    "int(sys.argv[2]))"
)


def has_dashboard() -> bool:
    """Whether the optional optuna-dashboard (``mpbench[ui]``) is installed."""
    import importlib.util

    return importlib.util.find_spec("optuna_dashboard") is not None


def is_server(uri: str) -> bool:
    """An MLflow tracking URI that is already a server (http or https)."""
    return uri.startswith(("http://", "https://"))


def without_credentials(url: str) -> str:
    """``url`` without ``user:password@`` (a browser asks for them; nothing secret is printed)."""
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(u._replace(netloc=u.netloc.rsplit("@", 1)[-1]))


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def runs_filter(study: str) -> str:
    """The MLflow search filter of a study's runs."""
    return f"tags.`{tk.TAG_STUDY}` = '{study}'"


def runs_url(base: str, experiment_id: str | None, study: str) -> str:
    """The runs table of the experiment filtered to the study (MLflow 3's ``searchFilter``)."""
    if experiment_id is None:
        return f"{base.rstrip('/')}/#/experiments"
    query = urllib.parse.quote(runs_filter(study), safe="")
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?searchFilter={query}"


def study_url(base: str, study_id: int) -> str:
    """optuna-dashboard's page of one study."""
    return f"{base.rstrip('/')}/dashboard/studies/{study_id}"


@dataclass(frozen=True)
class UiTarget:
    """What ``mpbench ui`` serves: a study, its Optuna storage and its MLflow store.

    Args:
        study: the study name.
        storage: its Optuna storage URL (may carry a password: never printed).
        tracking_uri: its MLflow tracking URI (a local store, or a server's http URL).
        experiment: the MLflow experiment its runs are in.

    Example:
        >>> t = UiTarget("demo", "runs/demo/optuna.journal", "sqlite:///mlflow.db", "mpbench")
        >>> t.experiment
        'mpbench'
    """

    study: str
    storage: str
    tracking_uri: str
    experiment: str


def experiment_id(tracking_uri: str, name: str) -> str | None:
    """The id of experiment ``name`` in the store, None when it is missing or unreachable."""
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient(tracking_uri).get_experiment_by_name(name)
    except Exception:  # an unreachable tracking server: the links still name the server
        return None
    return None if found is None else found.experiment_id


def study_id(storage_url: str, study: str) -> int:
    """The storage id of ``study`` (what optuna-dashboard's URLs use); missing is a ValueError."""
    from mpbench.study import storage as S

    try:
        return S.open_storage(storage_url).get_study_id_from_name(study)
    except KeyError:
        raise ValueError(
            f"no study {study!r} in storage {mask_url(storage_url)}: run it first with "
            "`mpbench grid` or `mpbench search` (same --storage)"
        ) from None


@dataclass
class Child:
    """One server process and where it answers."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 15) -> str:
        """The last lines of the child's output, passwords masked."""
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return mask_url("\n".join(text.splitlines()[-lines:]))


@dataclass
class Servers:
    """The children ``mpbench ui`` started, and the links it prints."""

    children: list[Child] = field(default_factory=list)
    mlflow: str = ""  # the MLflow base URL (a started UI or the tracking server)
    runs: str = ""  # the study's runs table
    dashboard: str | None = None  # optuna-dashboard's base URL (None: not installed)
    study: str | None = None  # the study's dashboard page


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, with mpbench importable in the child."""
    import mpbench

    root = str(Path(mpbench.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def start_child(name: str, cmd: list[str], *, env: dict[str, str], log: Path, url: str) -> Child:
    """Start ``cmd`` in a new session (its own process group), its output into ``log``."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Child(name, proc, url, log)


def mlflow_command(port: int) -> list[str]:
    """``mlflow ui`` on this host and ``port`` (one worker; the store comes from the env)."""
    cmd = [sys.executable, "-m", "mlflow", "ui", "--host", HOST, "--port", str(port)]
    return [*cmd, "--workers", "1"]


def dashboard_command(port: int) -> list[str]:
    """The optuna-dashboard child (the storage comes from the env)."""
    return [sys.executable, "-c", DASHBOARD_CODE, HOST, str(port)]


def serve_dashboard(host: str, port: int) -> None:
    """The dashboard child's body: optuna-dashboard's WSGI app on the storage in
    ``MPBENCH_STORAGE``, served by threads like its own CLI does (blocks)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    import optuna_dashboard

    from mpbench.study.storage import STORAGE_ENV, check_driver, normalise_url

    class ThreadedServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    url = normalise_url(os.environ[STORAGE_ENV])
    check_driver(url)
    app = optuna_dashboard.wsgi(url)  # its own storage opening: a journal file or an RDB URL
    print(f"optuna-dashboard listening on http://{host}:{port}/", file=sys.stderr, flush=True)
    make_server(host, port, app, server_class=ThreadedServer).serve_forever()


def get(url: str, *, data: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """GET (or POST ``data`` as JSON) ``url`` and decode its JSON (or return its text)."""
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        text = resp.read().decode()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def wait_ready(child: Child, path: str, *, timeout: float) -> None:
    """Poll ``child.url + path`` until it answers HTTP 200; a child that exits or stays silent
    past ``timeout`` seconds is a RuntimeError showing the end of its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with code {child.proc.returncode}:\n{child.tail()}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            get(child.url + path, timeout=2.0)
            return
        time.sleep(0.3)
    raise RuntimeError(
        f"{child.name} did not answer {child.url} in {timeout:.0f} s:\n{child.tail()}"
    )


def stop_child(child: Child, *, timeout: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``timeout`` s; nothing is left."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.proc.pid, sig)  # the session leader's pid is the group id
        try:
            child.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):  # grandchildren of an exited leader
            os.killpg(child.proc.pid, signal.SIGKILL)
        return


@contextlib.contextmanager
def serve(
    target: UiTarget,
    *,
    mlflow_port: int = 0,
    dashboard_port: int = 0,
    dashboard: bool = True,
    logs: Path,
    timeout: float = 120.0,
) -> Iterator[Servers]:
    """Start the MLflow UI (unless the tracking URI is a server) and optuna-dashboard (when
    ``dashboard``) on free local ports (0) or the ports given, wait until both answer, yield the
    links, and stop both process groups on the way out (also on Ctrl-C or an error)."""
    from mpbench.study.storage import STORAGE_ENV

    sid = study_id(target.storage, target.study)  # a wrong name fails before anything starts
    exp = experiment_id(target.tracking_uri, target.experiment)
    out = Servers()
    try:
        if is_server(target.tracking_uri):
            out.mlflow = without_credentials(target.tracking_uri)
        else:
            port = mlflow_port or free_port()
            env = {JOBS_ENV: "false", **child_env(**{BACKEND_ENV: target.tracking_uri})}
            out.children.append(
                start_child(
                    "mlflow ui",
                    mlflow_command(port),
                    env=env,
                    log=logs / "mlflow-ui.log",
                    url=f"http://{HOST}:{port}",
                )
            )
            out.mlflow = out.children[-1].url
        if dashboard:
            port = dashboard_port or free_port()
            out.children.append(
                start_child(
                    "optuna-dashboard",
                    dashboard_command(port),
                    env=child_env(**{STORAGE_ENV: target.storage}),
                    log=logs / "optuna-dashboard.log",
                    url=f"http://{HOST}:{port}",
                )
            )
            out.dashboard = out.children[-1].url
            out.study = study_url(out.dashboard, sid)
        out.runs = runs_url(out.mlflow, exp, target.study)
        for child in out.children:
            wait_ready(
                child, "/health" if child.name == "mlflow ui" else "/api/meta", timeout=timeout
            )
        yield out
    finally:
        for child in out.children:
            stop_child(child)


def check(servers: Servers, target: UiTarget) -> dict[str, int]:
    """Ask both servers' APIs for the study: its MLflow runs and its Optuna trials."""
    found: dict[str, int] = {}
    exp = experiment_id(target.tracking_uri, target.experiment)
    if exp is not None and not is_server(target.tracking_uri):
        body = {"experiment_ids": [exp], "filter": runs_filter(target.study), "max_results": 1000}
        res = get(f"{servers.mlflow}/api/2.0/mlflow/runs/search", data=body)
        found["runs"] = len(res.get("runs", []))
    if servers.study is not None and servers.dashboard is not None:
        sid = servers.study.rsplit("/", 1)[1]
        found["trials"] = len(get(f"{servers.dashboard}/api/studies/{sid}")["trials"])
    return found


def wait_any_exit(children: list[Child], *, poll: float = 0.5) -> Child | None:
    """Block until one child exits (returns it); None when there is no child to wait for."""
    while children:
        for child in children:
            if child.proc.poll() is not None:
                return child
        time.sleep(poll)
    return None
