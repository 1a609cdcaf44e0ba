"""``--launcher local|slurm``: submitit jobs on real processes, no cluster needed.

The local launcher runs the exact code path of Slurm jobs (submitit pickles :class:`WorkerJob`,
a controller process runs it, the preemption signal comes ``signal_delay`` seconds before the
time limit). The Slurm launcher is run against stand-in ``sbatch``/``srun`` executables that
record the script submitit writes, so its directives are checked without Slurm.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

from mpbench import tracking as tk
from mpbench.cli import app
from mpbench.engine.state import CHECKPOINT
from mpbench.study import launch as L
from mpbench.study import storage as S
from mpbench.study.spec import SlurmSpec, parse_minutes, read_study
from tests.test_study_run import assert_exactly_once, loaded_study, study_file, wait_for

FOUR = '["baseline", "fixed", "learnable", "learnable_tav"]'


def write_study(
    tmp_path: Path,
    name: str,
    *,
    epochs: int = 1,
    variants: str = FOUR,
    seeds: int = 2,
    slurm: str = "",
) -> Path:
    body = f"""
[grid]
variant = {variants}
seeds = {seeds}
[execution]
heartbeat_interval = 1
grace_period = 20
[execution.slurm]
{slurm}
"""
    return study_file(tmp_path, body, name=name, epochs=epochs)


def mpbench(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mpbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def start_mpbench(*args: str) -> subprocess.Popen[str]:
    """``mpbench ARGS`` started in the background, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "mpbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def trials_of(path: Path, storage: str | None = None) -> list[optuna.trial.FrozenTrial]:
    spec = read_study(path)
    url = storage or S.default_storage(spec)
    return S.open_study(spec.name, S.open_storage(url), spec=spec).get_trials()


def complete_per_cell(trials: list[Any]) -> Counter[str]:
    return Counter(
        t.user_attrs[S.ATTR_CELL] for t in trials if t.state.name == "COMPLETE" and S.is_counted(t)
    )


# --- settings and storage rules ------------------------------------------------------------------


def test_slurm_times_parse_like_slurm() -> None:
    # Slurm's forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS (seconds round up)
    assert [parse_minutes(t) for t in ("45", "30:00", "4:00:00", "1-02", "1-02:30")] == [
        45,
        30,
        240,
        1560,
        1590,
    ]
    assert parse_minutes("2:00:01") == 121 and parse_minutes(90) == 90
    for bad in ("abc", "1:2:3:4", "0", "-5"):
        with pytest.raises(ValueError):
            parse_minutes(bad)
    with pytest.raises(ValueError, match=r"signal_delay \(120 s\) must be shorter.*60 s"):
        SlurmSpec(time=1, signal_delay=120)


def test_bad_slurm_section_is_exit_2_naming_file_and_key(tmp_path: Path) -> None:
    path = write_study(tmp_path, "badslurm", slurm='time = "soon"')
    res = CliRunner().invoke(app, ["grid", str(path), "--launcher", "slurm", "--dry-run"])
    assert res.exit_code == 2
    assert "badslurm.toml" in res.output and "slurm" in res.output and "time" in res.output
    assert "'soon'" in res.output
    res = CliRunner().invoke(app, ["grid", str(write_study(tmp_path, "ok")), "--launcher", "pbs"])
    assert res.exit_code == 2 and "--launcher must be one of local, slurm, got 'pbs'" in res.output


MOUNTS = """/dev/nvme0n1p2 / ext4 rw 0 0
tmpfs /tmp tmpfs rw 0 0
nfs1:/export/home /home nfs4 rw 0 0
lustre@o2ib:/scratch /scratch lustre rw 0 0
//fs/share /mnt/share cifs rw 0 0
sshfs#u@h: /mnt/ssh fuse.sshfs rw 0 0
"""


def test_filesystem_rules_for_the_run_folder_and_the_journal() -> None:
    fs = lambda p: L.filesystem_type(p, mounts=MOUNTS)  # noqa: E731
    assert [fs(p) for p in ("/home/u/runs", "/scratch/x", "/tmp/a", "/opt", "/mnt/share/j")] == [
        "nfs4",
        "lustre",
        "tmpfs",
        "ext4",
        "cifs",
    ]

    def check(path: str, *, journal: bool) -> str:
        return L.check_shared(path, what="thing", key="k", journal=journal, mounts=MOUNTS)

    assert check("/home/u/runs", journal=False) == "nfs4"
    assert check("/scratch/s/optuna.journal", journal=True) == "lustre"
    assert check("/mnt/share/runs", journal=False) == "cifs"  # shared: fine for checkpoints
    with pytest.raises(ValueError, match=r"k: the thing /tmp/x is on a local tmpfs filesystem"):
        check("/tmp/x", journal=False)
    with pytest.raises(ValueError, match=r"on a local ext4 .*or use PostgreSQL"):
        check("/opt/j.journal", journal=True)
    with pytest.raises(ValueError, match=r"cifs filesystem, which has no atomic exclusive create"):
        check("/mnt/share/optuna.journal", journal=True)
    with pytest.raises(ValueError, match=r"fuse.sshfs filesystem.*Use PostgreSQL"):
        check("/mnt/ssh/optuna.journal", journal=True)


def test_missing_submitit_names_the_extra(tmp_path: Path) -> None:
    path = write_study(tmp_path, "nosub")
    code = (
        "import sys; sys.modules['submitit'] = None\n"
        "from mpbench.cli import main; sys.argv = ['mpbench', 'grid', sys.argv[1], "
        "'--launcher', 'local', '--dry-run']; main()"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2
    assert "needs submitit, which is not installed: pip install 'mpbench[slurm]'" in res.stderr


# --- Slurm, with stand-in sbatch / srun --------------------------------------------------------


def fake_slurm(tmp_path: Path) -> dict[str, str]:
    """``sbatch`` that records its script and answers like Slurm; ``srun`` that exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch-scripts"
    record.mkdir()
    (bin_dir / "sbatch").write_text(
        f'#!/bin/sh\ncp "$1" {record}/script-$$.sh\necho "Submitted batch job 4242"\n'
    )
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


SLURM = """partition = "gpu"
account = "vmp"
qos = "high"
time = "2:00:00"
workers = 3
gpus_per_worker = 2
cpus_per_worker = 12
mem_gb = 64
constraint = "h100"
signal_delay = 150
setup = ["module load cuda/12.4"]
additional = { mail-type = "END" }
shared_fs_check = false
"""


def test_slurm_launcher_submits_one_array_with_the_study_resources(
    tmp_path: Path, mlflow_uri: str
) -> None:
    path = write_study(tmp_path, "slurmy", slurm=SLURM)
    env = fake_slurm(tmp_path)
    res = mpbench("grid", str(path), "--launcher", "slurm", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "submitted 3 slurm job(s): 4242_0, 4242_1, 4242_2" in res.stdout
    scripts = list((tmp_path / "sbatch-scripts").iterdir())
    assert len(scripts) == 1  # one job array, not three jobs
    lines = scripts[0].read_text().splitlines()
    directives = {line for line in lines if line.startswith("#SBATCH")}
    expected = {
        "#SBATCH --array=0-2%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=vmp",
        "#SBATCH --qos=high",
        "#SBATCH --time=120",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --cpus-per-task=12",
        "#SBATCH --mem=64GB",
        "#SBATCH --constraint=h100",
        "#SBATCH --signal=USR2@150",
        "#SBATCH --mail-type=END",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=mpbench-slurmy",
        "#SBATCH --open-mode=append",
    }
    assert expected <= directives, expected - directives
    assert "module load cuda/12.4" in lines
    assert any(line.startswith("srun ") and "-m submitit.core._submit" in line for line in lines)
    # the cells were enqueued before submitting; the jobs are recorded for status
    assert len(trials_of(path)) == 8
    jobs = json.loads((tmp_path / "runs" / "slurmy" / L.JOBS_FILE).read_text())
    assert [(j["id"], j["index"], j["launcher"]) for j in jobs] == [
        ("4242_0", 0, "slurm"),
        ("4242_1", 1, "slurm"),
        ("4242_2", 2, "slurm"),
    ]
    status = mpbench("status", str(path), env=env, cwd=tmp_path)
    assert status.returncode == 0
    assert "| 4242_1 | slurm | 1 | UNKNOWN" in status.stdout  # no sacct here: said, not hidden


SEQUENTIAL_SLURM = """max_steps = 1
[grid]
variant = ["baseline", "learnable_tav"]
seeds = { min = 2, max = 4, step = 2 }
[resolve]
metric = "tav_loss"
margin = 1e-6
[execution]
heartbeat_interval = 1
grace_period = 20
[execution.slurm]
workers = 2
shared_fs_check = false
"""
# the job of the (fake) Slurm array as its node runs it: submitit's pickle of the WorkerJob;
# argv[2] > 0 ends its worker after that many trials (a job whose time ran out)
RUN_JOB = """import dataclasses, sys
from submitit.core.utils import DelayedSubmission
job = DelayedSubmission.load(sys.argv[1])
if int(sys.argv[2]):
    opts = dataclasses.replace(job.function.opts, max_trials=int(sys.argv[2]))
    job.function = dataclasses.replace(job.function, opts=opts)
job.result()
"""


def run_slurm_jobs(folder: Path, *, max_trials: int = 0) -> None:
    """Run the jobs of the array last submitted to the fake Slurm one after the other, as
    their nodes would (``max_trials``: each ends after that many trials)."""
    pickles = sorted(folder.rglob("*_submitted.pkl"))
    assert [p.name for p in pickles] == ["4242_0_submitted.pkl", "4242_1_submitted.pkl"]
    for pickle in pickles:
        cmd = [sys.executable, "-c", RUN_JOB, str(pickle), str(max_trials)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)
        pickle.unlink()  # run: the next submission writes its own


@pytest.mark.slow
def test_sequential_grid_through_slurm_enqueues_the_next_look_on_resubmission(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sequential grid submitted with --launcher slurm: one array for the first look's cells;
    its jobs end after them, the next submission enqueues the next look of the comparison still
    at ``continue`` and its jobs run them; a third submission finds nothing, and no cell
    finished twice."""
    path = study_file(tmp_path, SEQUENTIAL_SLURM, name="seqslurm")
    jobs = tmp_path / "runs" / "seqslurm" / "jobs"
    monkeypatch.setenv("PATH", fake_slurm(tmp_path)["PATH"])  # in-process: no torch import each

    def grid() -> str:
        res = CliRunner().invoke(app, ["grid", str(path), "--launcher", "slurm"])
        assert res.exit_code == 0, res.output
        return " ".join(res.output.split())

    assert "submitted 2 slurm job(s): 4242_0, 4242_1" in grid()
    (script,) = (tmp_path / "sbatch-scripts").iterdir()  # one array
    assert "#SBATCH --array=0-1%2" in script.read_text().splitlines()
    first = {(S.config_of(t)["variant"], S.config_of(t)["seed"]) for t in trials_of(path)}
    assert first == {(v, s) for v in ("baseline", "learnable_tav") for s in (0, 1)}
    run_slurm_jobs(jobs, max_trials=2)  # the first look, 2 cells each; then their time ran out
    assert sum(complete_per_cell(trials_of(path)).values()) == 4
    assert "submitted 2 slurm job(s): 4242_0, 4242_1" in grid()
    assert len(list((tmp_path / "sbatch-scripts").iterdir())) == 2
    waiting = {
        (S.config_of(t)["variant"], S.config_of(t)["seed"])
        for t in trials_of(path)
        if t.state.name == "WAITING"
    }
    assert waiting == {(v, s) for v in ("baseline", "learnable_tav") for s in (2, 3)}
    run_slurm_jobs(jobs)  # job 0 runs the next look's 4 cells, job 1 finds nothing left
    assert "submitted" not in grid()  # nothing left: no third array
    assert len(list((tmp_path / "sbatch-scripts").iterdir())) == 2
    spec = read_study(path)
    study = S.open_study(spec.name, S.open_storage(S.default_storage(spec)), spec=spec)
    cells = {t.user_attrs[S.ATTR_CELL] for t in study.get_trials() if S.is_counted(t)}
    assert len(cells) == 8
    assert_exactly_once(study, cells)
    status = CliRunner().invoke(app, ["status", str(path)])
    assert status.exit_code == 0, status.output
    assert "| learnable_tav vs baseline (x3d_xs, synth) |" in status.output
    assert "| 4 | 0.05 | 0 |" in status.output  # 4 seeds run, all alpha spent, none left


def test_slurm_launcher_refuses_a_local_run_folder(tmp_path: Path, mlflow_uri: str) -> None:
    kind = L.filesystem_type(tmp_path)
    if kind not in L.LOCAL_FS:
        pytest.skip(f"the test folder is on {kind}, not a local filesystem")
    path = write_study(tmp_path, "localfs")
    res = mpbench("grid", str(path), "--launcher", "slurm", env=fake_slurm(tmp_path))
    assert res.returncode == 2
    assert f"is on a local {kind} filesystem, which the other nodes" in res.stderr
    assert not (tmp_path / "sbatch-scripts").exists() or not any(
        (tmp_path / "sbatch-scripts").iterdir()
    )
    assert not (tmp_path / "runs" / "localfs" / "optuna.journal").exists()  # nothing enqueued


# --- local jobs: the same code path, on this machine ----------------------------------------------


LIMIT_EPOCHS = 10


def first_checkpointed_trial(
    study_path: Path, grid: subprocess.Popen[str], *, timeout: float = 600
) -> tuple[optuna.Study, optuna.trial.FrozenTrial]:
    """The study and its running trial once the trial's first epoch is checkpointed
    (``last.pt``) and reported to Optuna (the reporter runs after the checkpoint is written);
    fails with the grid's output when none comes within ``timeout`` seconds or the grid exits
    first."""
    spec = read_study(study_path)
    journal = Path(S.default_storage(spec))
    study = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and grid.poll() is None:
        if study is None and journal.exists():
            study = loaded_study(spec.name, S.open_storage(str(journal)))
        if study is not None and any((journal.parent / "trials").rglob(CHECKPOINT)):
            running = [
                t for t in study.get_trials() if t.state.name == "RUNNING" and t.intermediate_values
            ]
            if running:
                return study, running[0]
        time.sleep(0.1)
    if grid.poll() is None:
        grid.kill()
    out, err = grid.communicate()
    raise AssertionError(
        f"no trial of {spec.name} checkpointed its first epoch within {timeout:.0f} s "
        f"(grid exit code {grid.returncode}):\n{out}\n{err}"
    )


def signal_mid_training(study: optuna.Study, trial: optuna.trial.FrozenTrial, epochs: int) -> None:
    """Send the time limit's signal to the process running ``trial``, landing before its last
    epoch whatever the machine's speed: the process is stopped (SIGSTOP) while the test reads
    how many epochs it has reported, gets the signal while stopped and handles it when it
    continues (SIGCONT)."""
    pid = trial.system_attrs[S.SYS_PID]
    os.kill(pid, signal.SIGSTOP)
    try:
        reported = len(study.get_trials()[trial.number].intermediate_values)
        assert reported < epochs, f"the trial reported all {epochs} epochs before the signal"
        os.kill(pid, L.preempt_signal())
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
def test_local_job_at_its_time_limit_gives_the_cell_back_and_resumes(
    tmp_path: Path, mlflow_uri: str
) -> None:
    # one cell of 10 tiny epochs; once its first epoch is checkpointed the job gets the signal
    # of the time limit (submitit's USR2, which its controller sends signal_delay seconds before
    # timeout_min) mid-training: it gives the cell back and is requeued, and the next attempt
    # resumes the cell from its checkpoint. The 10 minute limit is not reached (the controller's
    # own signal would come at 9.5 min), and submitit takes a signal in the first 10 minutes of
    # a job of at most 10 for a time-out (its guaranteed walltime is min(80 %, limit - 10 min))
    path = write_study(
        tmp_path,
        "limit",
        epochs=LIMIT_EPOCHS,
        variants='["baseline"]',
        seeds=1,
        slurm="time = 10\nsignal_delay = 30\nmax_requeues = 20",
    )
    grid = start_mpbench("grid", str(path), "--launcher", "local", "--workers", "1", "--wait")
    try:
        signal_mid_training(*first_checkpointed_trial(path, grid), LIMIT_EPOCHS)
        out, err = grid.communicate(timeout=600)
    finally:
        if grid.poll() is None:  # a failure above: stop following the job
            grid.kill()
    assert grid.returncode == 0, out + err
    assert "grid study limit: 1/1 finished" in out
    trials = trials_of(path)
    *given_back, last = trials
    assert last.state.name == "COMPLETE"
    assert given_back and all(  # every earlier attempt was given back, none failed
        t.state.name == "FAIL" and t.user_attrs[S.ATTR_STATUS] == "interrupted" for t in given_back
    )
    assert any(t.intermediate_values for t in given_back)  # one had trained before the signal
    assert all(t.user_attrs[S.ATTR_ATTEMPT] == 0 for t in trials)  # not counted as retries
    first = trials[0]
    assert complete_per_cell(trials) == Counter({first.user_attrs[S.ATTR_CELL]: 1})
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(tk.DEFAULT_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], f"tags.`{tk.TAG_STUDY}` = 'limit'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # one run, continued
    cell = first.user_attrs[S.ATTR_CELL]
    assert "resumed trial" in (tmp_path / "runs/limit/trials" / cell / tk.A_LOG).read_text()
    (job,) = json.loads((tmp_path / "runs/limit" / L.JOBS_FILE).read_text())
    log = Path(job["log"]).read_text()
    assert "cell given back; requeueing the job" in log and f"Requeued job {job['id']}" in log
    assert "this job is timed-out" in log  # submitit took the signal for the time limit
    status = mpbench("status", str(path))
    assert f"| {job['id']} | local | 0 | COMPLETED |" in status.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mlflow_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real ``mlflow server`` (its own sqlite backend store and artifact folder) over HTTP."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "mlflow-server.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise AssertionError(
        "mlflow server did not answer: " + (tmp_path / "mlflow-server.log").read_text()[-2000:]
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_local_jobs_on_postgres_and_an_mlflow_server_survive_a_killed_job(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The multi-machine recipe of docs/studies.md, on one machine: PostgreSQL for Optuna, a
    real ``mlflow server`` for tracking, 2 jobs for 8 cells; one job is SIGKILLed mid-trial."""
    server, url = start_mlflow_server(tmp_path)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.chdir(tmp_path)
        path = write_study(tmp_path, "cluster", epochs=6)
        grid = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mpbench",
                "grid",
                str(path),
                "--launcher",
                "local",
                "--workers",
                "2",
                "--wait",
                "--storage",
                postgres_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        spec = read_study(path)
        storage = S.open_storage(postgres_url)
        study = wait_for(lambda: loaded_study(spec.name, storage, trials=True), timeout=120)
        victim = wait_for(
            lambda: next(
                (
                    t
                    for t in study.get_trials()
                    if t.state.name == "RUNNING" and len(t.intermediate_values) >= 1
                ),
                None,
            ),
            timeout=180,
        )
        os.kill(victim.system_attrs[S.SYS_PID], signal.SIGKILL)
        out, err = grid.communicate(timeout=600)
        assert grid.returncode == 0, out + err
        assert "grid study cluster: 8/8 finished" in out
        assert "jobs replaced after they were lost" in err
        assert ":mpbench@" not in out + err  # the password is masked
        trials = study.get_trials()
        cells = {t.user_attrs[S.ATTR_CELL] for t in trials if S.is_counted(t)}
        assert len(cells) == 8 and complete_per_cell(trials) == Counter(dict.fromkeys(cells, 1))
        assert trials[victim.number].state.name == "FAIL"
        retry = [t for t in trials if t.user_attrs.get(S.ATTR_RETRY_OF) == victim.number]
        assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
        # every run went through the server: one FINISHED run per cell, none left RUNNING
        from mlflow.tracking import MlflowClient

        client = MlflowClient(url)
        exp = client.get_experiment_by_name(tk.DEFAULT_EXPERIMENT)
        runs = client.search_runs([exp.experiment_id], f"tags.`{tk.TAG_STUDY}` = 'cluster'")
        assert Counter(r.data.tags[tk.TAG_CELL] for r in runs) == Counter(dict.fromkeys(cells, 1))
        assert {r.info.status for r in runs} == {"FINISHED"}
        cell = victim.user_attrs[S.ATTR_CELL]
        trial_log = tmp_path / "runs" / "cluster" / "trials" / cell / tk.A_LOG
        assert "resumed trial" in trial_log.read_text()
        assert not (tmp_path / "mlflow.db").exists()  # nothing wrote to a local store
        pickles = list((tmp_path / "runs" / "cluster" / "jobs").rglob("*.pkl"))
        assert pickles and not any(b":mpbench@" in p.read_bytes() for p in pickles)
        # the report reads the runs back through the server
        rep = mpbench("report", "cluster", "--results-dir", str(tmp_path / "results"))
        assert rep.returncode == 0, rep.stderr
        table = (tmp_path / "results" / "cluster" / "table.csv").read_text()
        for variant in ("baseline", "fixed", "learnable", "learnable_tav"):
            assert variant in table
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
