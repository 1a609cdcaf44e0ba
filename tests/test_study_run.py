"""Studies on real storages: exactly once with 4 workers (journal file, PostgreSQL), a worker
killed with SIGKILL mid-trial, a search whose pruner prunes, status and dry run.

Trials are tiny (x3d_xs tiny, 32 px, a dozen in-memory synthetic clips, 1-3 epochs) so that each
takes a second or two; every worker is a real process started by ``run_study``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.cli import app
from mpbench.study import storage as S
from mpbench.study.plan import plan
from mpbench.study.preflight import preflight, search_configs
from mpbench.study.runner import prepare, run_study, worker_command
from mpbench.study.sequential import needed_cells
from mpbench.study.spec import read_study
from mpbench.study.worker import WorkerOptions, join_study, run_worker, suggest

TINY_BASE = """
[base]
backbone = "x3d_xs"
size = "tiny"
dataset = "synth"
dataset_options = {{ classes = 3, train_clips = 8, val_clips = 4, video_frames = 5, size = 32 }}
frames = 4
crop = 32
batch_size = 4
epochs = {epochs}
device = "cpu"
"""


def study_file(tmp_path: Path, body: str, *, name: str, epochs: int = 1) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + TINY_BASE.format(epochs=epochs) + body)
    return path


def grid_study(tmp_path: Path, *, name: str, epochs: int = 1, seeds: int = 3) -> Path:
    body = f"""
[grid]
variant = ["baseline", "fixed", "learnable", "learnable_tav"]
seeds = {seeds}
[execution]
heartbeat_interval = 1
grace_period = 20
"""
    return study_file(tmp_path, body, name=name, epochs=epochs)


def mlflow_runs(study: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tk.tracking_uri())
    exp = client.get_experiment_by_name(tk.DEFAULT_EXPERIMENT)
    return client.search_runs([exp.experiment_id], f"tags.`{tk.TAG_STUDY}` = '{study}'")


def assert_exactly_once(study: optuna.Study, keys: set[str]) -> None:
    """Every cell has exactly one COMPLETE trial (Optuna) and one FINISHED run (MLflow)."""
    complete = Counter(
        t.user_attrs[S.ATTR_CELL]
        for t in study.get_trials()
        if t.state.name == "COMPLETE" and S.is_counted(t)
    )
    assert complete == Counter(dict.fromkeys(keys, 1))
    finished = Counter(
        r.data.tags[tk.TAG_CELL]
        for r in mlflow_runs(study.study_name)
        if r.info.status == "FINISHED"
    )
    assert finished == Counter(dict.fromkeys(keys, 1))


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> None:
    monkeypatch.chdir(tmp_path)  # runs/ and MLflow artifacts land in tmp_path


@pytest.mark.slow
def test_four_workers_journal_every_cell_exactly_once(tmp_path: Path) -> None:
    spec = read_study(grid_study(tmp_path, name="once"))
    p = plan(spec, workers=4)
    assert p.storage == str(tmp_path / "runs" / "once" / "optuna.journal")
    result = run_study(spec, p, progress=False)
    assert result.exit_codes == [0, 0, 0, 0]
    assert result.enqueued == 12 and result.summary.cells == {"complete": 12}
    study = optuna.load_study(study_name="once", storage=S.open_storage(p.storage))
    assert_exactly_once(
        study, {c.user_attrs[S.ATTR_CELL] for c in study.get_trials() if S.is_counted(c)}
    )
    logs = [r for r in mlflow_runs("once") if r.data.tags[tk.TAG_KIND] == "grid"]
    assert len(logs) == 12 and all(r.data.tags[tk.TAG_OPTUNA_TRIAL].isdigit() for r in logs)
    again = run_study(spec, p, progress=False)  # a finished study: nothing enqueued or started
    assert again.enqueued == 0 and again.exit_codes == []
    assert len(study.get_trials()) == len(
        optuna.load_study(study_name="once", storage=S.open_storage(p.storage)).get_trials()
    )


@pytest.mark.slow
def test_sigkilled_worker_trial_is_retried_and_resumes(tmp_path: Path) -> None:
    spec = read_study(grid_study(tmp_path, name="kill", epochs=4, seeds=1))
    p = plan(spec, workers=1)
    study, _, added = prepare(spec, p)
    assert added == 4
    cmd = [
        sys.executable,
        "-m",
        "mpbench",
        "worker",
        "kill",
        "--storage",
        p.storage,
        "--heartbeat-interval",
        "1",
        "--grace-period",
        "20",
    ]
    worker = subprocess.Popen(
        cmd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    victim = wait_for(
        lambda: next(
            (
                t
                for t in study.get_trials()
                if t.state.name == "RUNNING" and len(t.intermediate_values) >= 1
            ),
            None,
        ),
        timeout=90,
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    cell = victim.user_attrs[S.ATTR_CELL]
    assert study.get_trials()[victim.number].state.name == "RUNNING"  # left behind, stale
    result = run_study(spec, plan(spec, workers=2), progress=False)
    assert result.exit_codes == [0, 0]
    trials = study.get_trials()
    assert trials[victim.number].state.name == "FAIL"
    retry = [t for t in trials if t.user_attrs.get(S.ATTR_RETRY_OF) == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].user_attrs[S.ATTR_ATTEMPT] == 1
    assert_exactly_once(study, {c.key() for c in _cells(spec)})
    runs = [r for r in mlflow_runs("kill") if r.data.tags[tk.TAG_CELL] == cell]
    assert len(runs) == 1  # the retry continued the killed trial's MLflow run
    log = (tmp_path / "runs" / "kill" / "trials" / cell / tk.A_LOG).read_text()
    assert "resumed trial" in log


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_postgres_every_cell_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    spec = read_study(grid_study(tmp_path, name="pg_once"))
    p = plan(spec, workers=4, storage=postgres_url)
    result = run_study(spec, p, progress=False)
    assert result.exit_codes == [0, 0, 0, 0] and result.summary.cells == {"complete": 12}
    study = optuna.load_study(study_name="pg_once", storage=postgres_url)
    assert_exactly_once(study, {c.key() for c in _cells(spec)})
    assert run_study(spec, p, progress=False).exit_codes == []


def test_search_budget_is_global_and_pruner_prunes(tmp_path: Path) -> None:
    body = """
[search]
sampler = "random"
sampler_seed = 3
pruner = "median"
n_trials = 6
[search.space.lr]
type = "float"
low = 1e-5
high = 0.5
log = true
[search.space.variant]
type = "categorical"
choices = ["learnable", "learnable_tav"]
[objective]
metric = "val_loss"
intermediate = "val_loss"
direction = "minimize"
"""
    spec = read_study(study_file(tmp_path, body, name="prune", epochs=2))
    result = run_study(spec, plan(spec, workers=2), progress=False)
    assert result.exit_codes == [0, 0]
    study = optuna.load_study(study_name="prune", storage=S.open_storage(plan(spec).storage))
    counted = [t for t in study.get_trials() if S.is_counted(t)]
    assert len(counted) == 6  # global budget, not 6 per worker
    states = Counter(t.state.name for t in counted)
    assert states["PRUNED"] >= 1 and states["PRUNED"] + states["COMPLETE"] == 6
    pruned = [r for r in mlflow_runs("prune") if r.data.tags[tk.TAG_STATUS] == tk.STATUS_PRUNED]
    assert len(pruned) == states["PRUNED"]
    st = S.open_storage(plan(spec).storage)
    workers = optuna.load_study(study_name="prune" + S.WORKERS_SUFFIX, storage=st)
    assert sorted(t.number for t in workers.get_trials()) == [0, 1]  # one number per process
    assert len({tuple(sorted(t.params.items())) for t in counted}) == 6  # no point proposed twice


SEARCH_BODY = """
[search]
sampler = "{sampler}"
sampler_seed = 3
n_trials = 4
[search.space.lr]
type = "float"
low = 1e-5
high = 0.5
log = true
[search.space.variant]
type = "categorical"
choices = ["fixed", "learnable", "learnable_tav"]
"""


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_workers_of_a_seeded_search_get_distinct_seeds_and_first_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampler: str
) -> None:
    """Two workers started alike (no index, as on two hand-started machines) take numbers 0
    and 1 from the storage, so their samplers' seeds differ and so do their first proposals
    (with one shared seed, both would propose the same first point)."""
    spec = read_study(study_file(tmp_path, SEARCH_BODY.format(sampler=sampler), name="seeds"))
    p = plan(spec, workers=2)
    prepare(spec, p)
    st = S.open_storage(p.storage)
    numbers: list[int] = []
    make = S.make_sampler

    def spy(spec: Any, *, worker: int = 0) -> Any:
        numbers.append(worker)
        return make(spec, worker=worker)

    monkeypatch.setattr(S, "make_sampler", spy)
    params = []
    for _ in range(2):
        opts = WorkerOptions(storage=p.storage, study="seeds", experiment=None, max_trials=1)
        study, _ = join_study(st, opts)
        trial = study.ask()
        params.append({k: suggest(trial, k, v) for k, v in spec.search.space.items()})
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert numbers[-1] == 1 and 0 in numbers  # seeds 3 + 0 and 3 + 1
    assert params[0] != params[1]
    side = optuna.load_study(study_name="seeds" + S.WORKERS_SUFFIX, storage=st).get_trials()
    assert [t.number for t in side] == [0, 1]
    assert {t.user_attrs["pid"] for t in side} == {os.getpid()} and side[0].user_attrs["host"]


def test_runner_starts_workers_with_the_mpbench_worker_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local workers run `mpbench worker` (the command line of hand-started machines): every
    option the runner passes is one that `mpbench worker --help` lists, and it parses."""
    import typer

    spec = read_study(grid_study(tmp_path, name="argv", seeds=1))
    p = plan(spec, workers=2)
    cmd = worker_command(spec, p, index=1)
    assert cmd[:5] == [sys.executable, "-m", "mpbench", "worker", "argv"]
    monkeypatch.setenv("COLUMNS", "200")
    shown = CliRunner().invoke(app, ["worker", "--help"])
    assert shown.exit_code == 0
    for option in [a for a in cmd if a.startswith("--")] + ["--max-trials", "--no-mlflow"]:
        assert option in shown.output
    command = typer.main.get_command(app).commands["worker"]
    params = command.make_context("worker", cmd[4:]).params
    assert params["study"] == "argv" and params["storage"] == p.storage
    assert params["index"] == 1 and params["parent_pid"] == os.getpid()
    assert params["log"].endswith("worker-1.log") and params["retries"] == p.retries
    assert params["heartbeat_interval"] == p.heartbeat_interval


def test_cli_status_dry_run_and_rerun(tmp_path: Path) -> None:
    path = grid_study(tmp_path, name="cli", seeds=1)
    runner = CliRunner()
    dry = runner.invoke(app, ["grid", str(path), "--dry-run", "--probe-steps", "1"])
    assert dry.exit_code == 0, dry.output
    assert "4 trial configs" in dry.output and "done 0, remaining 4" in dry.output
    assert "s/step" in dry.output and "estimated compute" in dry.output
    assert not Path("runs/cli/optuna.journal").exists()  # a dry run creates nothing
    assert runner.invoke(app, ["status", str(path)]).output.startswith("study 'cli' has not")
    run = runner.invoke(app, ["grid", str(path), "--workers", "2"])
    assert run.exit_code == 0, run.output
    status = runner.invoke(app, ["status", str(path)])
    assert "4/4 finished" in status.output and "complete" in status.output
    assert "best: trial" in status.output
    again = runner.invoke(app, ["grid", str(path), "--workers", "2"])
    assert "nothing to do" in again.output
    dry2 = runner.invoke(app, ["grid", str(path), "--dry-run"])
    assert "done 4, remaining 0" in dry2.output


def test_failed_trial_is_recorded_and_retry_failed_reruns_it(tmp_path: Path) -> None:
    body = """
[grid]
variant = ["baseline"]
dataset_options = [{ classes = 3, train_clips = 8, val_clips = 4, video_frames = 5, size = 32 },
                   { classes = 3, train_clips = 2, val_clips = 4, video_frames = 5, size = 32 }]
"""
    spec = read_study(study_file(tmp_path, body, name="fails"))
    p = plan(spec, workers=1)
    study, _, added = prepare(spec, p)
    outcomes = run_worker(WorkerOptions(storage=p.storage, study="fails")).outcomes  # in-process
    assert added == 2 and sorted(outcomes) == ["failed", "finished"]
    failed = next(t for t in study.get_trials() if t.state.name == "FAIL")
    assert failed.user_attrs[S.ATTR_STATUS] == tk.STATUS_FAILED
    assert "fewer than one batch" in failed.user_attrs[S.ATTR_ERROR]
    run = next(r for r in mlflow_runs("fails") if r.info.status == "FAILED")
    assert "fewer than one batch" in run.data.tags[tk.TAG_ERROR]
    # check=False: the pre-flight would refuse the cell (test_preflight.py); here the runner's
    # bookkeeping of a cell that fails in training is under test
    again = run_study(spec, p, retry_failed=True, progress=False, check=False)
    assert again.enqueued == 1 and again.summary.cells == {"complete": 1, "fail": 1}
    assert len(study.get_trials()) == 3


def _cells(spec: Any) -> list[Any]:
    from mpbench.study.spec import expand_grid

    return expand_grid(spec)


def wait_for(fn: Any, *, timeout: float) -> Any:
    """Poll ``fn`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"nothing after {timeout} s")


STUDIES = sorted((Path(__file__).parents[1] / "studies").glob("*.toml"))
TOY = {
    "size": "tiny",
    "pretrained": False,
    "dataset": "synth",
    "data_root": None,
    "dataset_options": {
        "classes": 3,
        "train_clips": 4,
        "val_clips": 2,
        "video_frames": 5,
        "size": 32,
    },
    "frames": 4,
    "crop": 32,
    "sampling_rate": 1,
    "epochs": 1,
    "batch_size": 2,
    "device": "cpu",
    "amp": "none",
    "workers": 0,
    "test_clips": 1,
    "test_crops": 1,
}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_smoke_run(path: Path) -> None:
    """Each shipped study at toy size (synthetic data swapped in for the real datasets, tiny
    models, 1 epoch): validated, expanded, and its first trial run by a real worker."""
    spec = read_study(path, overrides=TOY)
    p = plan(spec, workers=1, run_folder="runs")  # not the project's runs/
    checked = preflight(spec, p)  # every cell's data and model at toy size
    # a grid: every cell; a search: its bounds and each choice (at least low and high)
    expected = len(_cells(spec)) if spec.grid else len(search_configs(spec))
    assert checked.cells == expected and (spec.grid or expected >= 2) and checked.models
    study, _, added = prepare(spec, p)
    # a grid enqueues every cell; a sequential grid its first look's
    assert added == (len(needed_cells(spec, [])) if spec.grid else 0)
    if spec.schedule is not None:
        assert added < len(_cells(spec))
    summary = run_worker(WorkerOptions(storage=p.storage, study=spec.name, max_trials=1))
    assert list(summary.outcomes) == ["finished"]
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(done) == 1
    seeds = spec.search.seeds_per_trial if spec.search else 1
    assert len(done[0].user_attrs[S.ATTR_RUNS]) == seeds


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_rerun_finishes_each_cell_once(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what Ctrl-C in a terminal sends): exit 130, no process
    left behind, interrupted cells back in the queue; the next run completes every cell once."""
    path = grid_study(tmp_path, name="ctrlc", epochs=4, seeds=1)
    spec = read_study(path)
    cmd = [sys.executable, "-m", "mpbench", "grid", str(path), "--workers", "2"]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    storage = str(Path("runs") / "ctrlc" / "optuna.journal")
    wait_for(lambda: Path(storage).is_file(), timeout=60)
    wait_for(
        lambda: any(
            t.state.name == "RUNNING" and t.intermediate_values
            for t in optuna.load_study(
                study_name="ctrlc", storage=S.open_storage(storage)
            ).get_trials()
        ),
        timeout=120,
    )
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    time.sleep(1)
    with pytest.raises(ProcessLookupError):  # no worker outlived the interrupted command
        os.killpg(proc.pid, 0)
    study = optuna.load_study(study_name="ctrlc", storage=S.open_storage(storage))
    running = [t.number for t in study.get_trials() if t.state.name == "RUNNING"]
    assert not running, worker_logs(Path("runs") / "ctrlc" / "logs")
    result = run_study(spec, plan(spec, workers=2), progress=False)
    assert result.exit_codes == [0, 0]
    assert_exactly_once(study, {c.key() for c in _cells(spec)})


def worker_logs(folder: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of every worker log in ``folder``: what a failed assertion
    about a study run shows."""
    return "\n".join(
        f"--- {log}\n" + "\n".join(log.read_text().splitlines()[-lines:])
        for log in sorted(folder.glob("*.log"))
    )


def loaded_study(name: str, storage: Any, *, trials: bool = False) -> optuna.Study | None:
    """The study once a grid has created it (and, with ``trials``, enqueued its trials), else
    None."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return study if not trials or study.get_trials() else None


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a command started with ``&``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "background"), [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["term", "bg-int"]
)
def test_a_signal_to_the_parent_alone_stops_every_worker(
    tmp_path: Path, sig: signal.Signals, background: bool
) -> None:
    """SIGTERM to the grid process alone (what `kill` or a scheduler sends), and SIGINT to a grid
    started in the background (which inherits SIGINT ignored): both act like Ctrl-C: exit 130,
    the workers give their cells back and exit, nothing is left RUNNING or running."""
    path = grid_study(tmp_path, name=f"sig{sig.value}", epochs=4, seeds=1)
    cmd = [sys.executable, "-m", "mpbench", "grid", str(path), "--workers", "2"]
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_ignore_sigint if background else None,
    )
    storage = S.open_storage(str(Path("runs") / f"sig{sig.value}" / "optuna.journal"))
    study = wait_for(lambda: loaded_study(f"sig{sig.value}", storage), timeout=60)
    wait_for(
        lambda: any(
            t.state.name == "RUNNING" and t.intermediate_values for t in study.get_trials()
        ),
        timeout=120,
    )
    proc.send_signal(sig)  # the parent only, not its process group
    assert proc.wait(timeout=120) == 130
    time.sleep(1)
    with pytest.raises(ProcessLookupError):  # no worker outlived the parent
        os.killpg(proc.pid, 0)
    trials = study.get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]
    given_back = [t for t in trials if t.user_attrs.get(S.ATTR_STATUS) == "interrupted"]
    assert given_back, [t.user_attrs.get(S.ATTR_STATUS) for t in trials]
    waiting = {t.user_attrs[S.ATTR_CELL] for t in trials if t.state.name == "WAITING"}
    assert {t.user_attrs[S.ATTR_CELL] for t in given_back} <= waiting


@pytest.mark.slow
def test_failed_cells_exit_1_with_a_table_status_and_the_rerun_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grid in which one cell diverges, run from another folder than the project's: exit 1,
    the failed cell with its config difference, error line and worker log; `status` from a third
    folder finds the study and shows the same; a rerun says what is left and exits 1 again."""
    body = """
[grid]
variant = ["baseline"]
lr = [2e-3, 1e9]
"""
    proj = tmp_path / "proj"
    (proj / "studies").mkdir(parents=True)
    path = study_file(proj / "studies", body, name="div")
    for folder in ("elsewhere", "third"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    runner = CliRunner()
    res = runner.invoke(app, ["grid", str(path), "--workers", "1"])
    assert res.exit_code == 1, res.output
    assert "grid study div: 2/2 ended, 1 failed" in res.output
    assert f"failed cells: 1 (rerun them with: mpbench grid {path} --retry-failed)" in res.output
    row = next(line for line in res.output.splitlines() if "| diverged |" in line)
    log = proj / "runs" / "div" / "logs" / "worker-0.log"
    assert (
        "| variant=baseline lr=1000000000.0 |" in row
        and "DivergenceError: training diverged" in row
    )
    assert f"| {log} |" in row and "DivergenceError" in log.read_text()
    assert (proj / "runs" / "div" / "optuna.journal").is_file()  # the project's runs/, not ours
    assert not (tmp_path / "elsewhere" / "runs").exists()
    monkeypatch.chdir(tmp_path / "third")
    status = runner.invoke(app, ["status", str(path)])
    assert status.exit_code == 0 and "2/2 ended, 1 failed" in status.output
    assert "DivergenceError: training diverged" in status.output
    again = runner.invoke(app, ["grid", str(path)])
    assert again.exit_code == 1
    assert (
        "nothing to do: every cell has ended; 1 failed — rerun with --retry-failed" in again.output
    )
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    worker = runner.invoke(
        app, ["worker", str(path), "--storage", str(proj / "runs/div/optuna.journal")]
    )
    assert worker.exit_code == 1 and "failed cells: 1" in worker.output
    # it ran in the project folder, and left this process's folder and environment as they were
    assert Path.cwd() == tmp_path / "third"
    assert os.environ.get("MLFLOW_TRACKING_URI") == tracking
