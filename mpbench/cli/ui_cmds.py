"""``mpbench ui``: the MLflow UI and optuna-dashboard on a study, with direct links to both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mpbench.cli._apps import app, command, console, err_console
from mpbench.cli.study_cmds import ExperimentOpt, RunFolderOpt, _load

PortOpt = Annotated[int, typer.Option(help="Local port (0: a free one).", min=0, max=65535)]
UI_HELP = "\n\n".join(
    [
        "Serve a study in the MLflow UI and optuna-dashboard and print direct links to both.",
        "Start the MLflow UI on the study's tracking store and optuna-dashboard on its "
        "Optuna storage, on free local ports, and print direct links: the runs table of the "
        "study's experiment filtered to its runs, and the study's dashboard page. Ctrl-C (or "
        "SIGTERM) stops both. The tracking store is the current folder's, as for mpbench grid "
        "(MLFLOW_TRACKING_URI, else ./mlflow.db): run it where the study ran. When "
        "MLFLOW_TRACKING_URI is a tracking server (http/https), its URL is printed instead of "
        "starting a UI. optuna-dashboard is the optional extra mpbench\\[ui]; without it only "
        "the MLflow UI is served.",
    ]
)


@command(app, help=UI_HELP)
def ui(
    study: Annotated[str, typer.Argument(help="Study file (studies/*.toml) or study name.")],
    storage: Annotated[
        str | None,
        typer.Option(
            help="The study's Optuna storage (default: the study file's). Needed with a study "
            "name; MPBENCH_STORAGE keeps a password out of the command line.",
            envvar="MPBENCH_STORAGE",
            show_envvar=True,
        ),
    ] = None,
    run_folder: RunFolderOpt = None,
    experiment: ExperimentOpt = None,
    mlflow_port: PortOpt = 0,
    dashboard_port: PortOpt = 0,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Start both, print the links, check that they answer with the study's runs "
            "and trials, then stop.",
        ),
    ] = False,
) -> None:
    """Serve a study in the MLflow UI and optuna-dashboard (see the help text above)."""
    import tempfile

    from mpbench import ui as U
    from mpbench.study.worker import interrupt_on_sigterm

    target = ui_target(study, storage=storage, run_folder=run_folder, experiment=experiment)
    dashboard = U.has_dashboard()
    if not dashboard:
        err_console.print(
            f"optuna-dashboard is not installed ({U.DASHBOARD_EXTRA}): serving the MLflow UI only",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    ports = {"mlflow_port": mlflow_port, "dashboard_port": dashboard_port}
    with tempfile.TemporaryDirectory(prefix="mpbench-ui-") as logs, interrupt_on_sigterm():
        try:
            with U.serve(target, dashboard=dashboard, logs=Path(logs), **ports) as servers:
                print_links(servers, target)
                if check:
                    found = U.check(servers, target)
                    _say("checked: " + ", ".join(f"{v} {k}" for k, v in found.items()))
                    return
                _wait(servers)
        except KeyboardInterrupt:
            _say("stopped")
        except RuntimeError as exc:  # a server that did not start
            err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(1) from None


def ui_target(
    study: str, *, storage: str | None, run_folder: str | None, experiment: str | None
) -> Any:
    """The study's name, Optuna storage, MLflow store and experiment (a :class:`mpbench.ui.
    UiTarget`), found as ``mpbench status`` and ``mpbench worker`` find them."""
    from mpbench.study import storage as S
    from mpbench.study.plan import plan
    from mpbench.study.runner import worker_tracking_uri
    from mpbench.ui import UiTarget

    if study.endswith(".toml") or Path(study).is_file():
        spec = _load(Path(study), None)
        url = plan(spec, storage=storage, run_folder=run_folder, workers=1).storage
    elif storage:
        url = S.resolve_storage(storage, Path.cwd())
        spec = S.load_spec(S.open_study(study, S.open_storage(url)))
    else:
        raise ValueError(
            f"{study!r} is no study file: pass the study file, or its name with --storage "
            "(or MPBENCH_STORAGE)"
        )
    return UiTarget(spec.name, url, worker_tracking_uri(), experiment or spec.execution.experiment)


def print_links(servers: Any, target: Any) -> None:
    """The direct links, passwords masked."""
    _say(f"MLflow runs of study {target.study}: {servers.runs}")
    if servers.study is not None:
        _say(f"optuna-dashboard, study {target.study}: {servers.study}")


def _wait(servers: Any) -> None:
    """Serve until Ctrl-C; a server that exits on its own ends the command (exit code 1)."""
    from mpbench.ui import wait_any_exit

    if not servers.children:
        return
    _say("Ctrl-C stops " + " and ".join(c.name for c in servers.children))
    gone = wait_any_exit(servers.children)
    if gone is not None:
        err_console.print(
            f"{gone.name} exited with code {gone.proc.returncode}:\n{gone.tail()}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _say(text: str) -> None:
    """One line on stdout, never wrapped (links stay clickable), passwords masked."""
    from mpbench._secrets import mask_url

    console.print(mask_url(text), highlight=False, markup=False, soft_wrap=True)
