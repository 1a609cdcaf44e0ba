"""Launching a study's workers as submitit jobs: a Slurm job array, or local jobs.

``mpbench grid|search STUDY --launcher slurm`` submits ``n`` jobs (one Slurm job array), each
running :class:`WorkerJob`: the same worker loop as ``mpbench worker``
(:func:`mpbench.study.worker.run_worker`) against the study's shared storage. ``--launcher local``
runs the same jobs through submitit's local executor (controller processes on this machine that
outlive the command): the Slurm code path without Slurm, which the tests use.

Preemption and time limits: Slurm sends the job submitit's signal (USR2) ``signal_delay``
seconds before the time limit (and submitit's local executor does the same before
``timeout_min``). The worker then gives its running cell back to the queue (its trial is failed
and the cell enqueued again, not counted as a retry) and asks submitit to requeue the job. The
cell's next attempt, in whichever job claims it, resumes from the cell's last epoch checkpoint in
the same MLflow run. A job killed outright (SIGKILL, a lost node) leaves a RUNNING trial that
any worker reaps once its pid is gone (same host) or its heartbeat is older than
``grace_period``; with ``--wait`` the command also replaces such a job while cells remain.

Storage rules: the run folder (checkpoints, submitit's pickles and logs) and a journal storage
must be on a filesystem every node sees; :func:`check_shared` refuses a local filesystem for
Slurm, and a journal on a network filesystem that lacks atomic exclusive create (SMB/CIFS,
sshfs and other FUSE mounts): use PostgreSQL there.

Secrets: a storage URL with a password is never pickled into the job; jobs read it from
``MPBENCH_STORAGE`` in their environment (sbatch exports the submitting environment).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from mpbench._process import pid_alive, raising_signals
from mpbench._secrets import has_password
from mpbench.study import storage as S

if TYPE_CHECKING:
    from mpbench.study.plan import RunPlan
    from mpbench.study.spec import SlurmSpec, StudySpec
    from mpbench.study.worker import WorkerOptions

log = logging.getLogger("mpbench.study.launch")

Launcher = Literal["local", "slurm"]
LAUNCHERS: tuple[str, ...] = get_args(Launcher)
JOBS_FILE = "jobs.json"  # under the study's run folder: every job submitted, for status
SLURM_EXTRA = "pip install 'mpbench[slurm]'"

# filesystems every node of a cluster sees, on which Optuna's journal lock (link/O_EXCL
# create) is atomic: NFSv2+ (JournalFileSymlinkLock), Lustre, GPFS, BeeGFS, CephFS, WekaFS
JOURNAL_SAFE_FS = frozenset(
    {"nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "fuse.ceph", "wekafs", "panfs"}
)
# shared filesystems where a journal is NOT safe (no atomic exclusive create / link): SMB, FUSE
JOURNAL_UNSAFE_FS = frozenset(
    {"cifs", "smb3", "smbfs", "fuse.sshfs", "fuse.gcsfuse", "fuse.s3fs", "fuse.rclone", "9p"}
)
# filesystems of one machine: other nodes see another folder under the same path
LOCAL_FS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "tmpfs", "overlay", "f2fs", "ramfs", "vfat"}
)


def require_submitit() -> Any:
    """Import submitit, or a one-line error naming the extra that installs it."""
    try:
        import submitit
    except ImportError:
        raise ValueError(
            f"--launcher local/slurm needs submitit, which is not installed: {SLURM_EXTRA}"
        ) from None
    return submitit


# --- filesystems ---------------------------------------------------------------------------------


def filesystem_type(path: str | Path, *, mounts: str | None = None) -> str:
    """The type of the filesystem that holds ``path`` (or its nearest existing parent): the
    deepest mount point above it in ``mounts`` (the text of /proc/self/mounts by default);
    ``unknown`` where that cannot be read.

        >>> filesystem_type("/scratch/u/runs", mounts="/dev/sda1 / ext4 rw 0 0\\n"
        ...                 "srv:/export /scratch nfs4 rw 0 0")
        'nfs4'
    """
    real = os.path.realpath(os.path.abspath(path))  # resolves the parts that exist
    best, kind = "", "unknown"
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return kind
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, fields[2]
    return kind


def check_shared(
    path: str | Path, *, what: str, key: str, journal: bool, mounts: str | None = None
) -> str:
    """Refuse ``path`` for a multi-node launcher when it is on a local filesystem (or, for a
    journal, on a network filesystem where the journal lock is not atomic); its type."""
    kind = filesystem_type(path, mounts=mounts)
    fix = (
        "put it on the cluster's shared filesystem (NFS, Lustre, GPFS, BeeGFS) or set "
        "[execution.slurm] shared_fs_check = false on a one-node cluster"
    )
    if kind in LOCAL_FS:
        raise ValueError(
            f"{key}: the {what} {path} is on a local {kind} filesystem, which the other nodes "
            f"of a Slurm cluster do not see: {fix}"
            + ("; or use PostgreSQL (--storage postgresql+psycopg2://...)" if journal else "")
        )
    if journal and kind not in JOURNAL_SAFE_FS:
        why = "has no atomic exclusive create" if kind in JOURNAL_UNSAFE_FS else "is not known"
        raise ValueError(
            f"{key}: the journal storage {path} is on a {kind} filesystem, which {why} for "
            "Optuna's journal lock; journals are safe on NFS, Lustre, GPFS, BeeGFS and CephFS. "
            "Use PostgreSQL: --storage postgresql+psycopg2://user@host/db"
        )
    return kind


# --- the job -------------------------------------------------------------------------------------


class Preempted(KeyboardInterrupt):
    """The job got submitit's preemption / time-limit signal: give the cell back, requeue."""


def preempt_signal() -> signal.Signals:
    """The signal submitit uses for preemption and time limits (USR2 unless configured)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", signal.SIGUSR2)


@contextlib.contextmanager
def preemption_handlers() -> Iterator[Callable[[], None]]:
    """Within: the preemption signal raises :class:`Preempted` and SIGTERM/SIGINT raise
    KeyboardInterrupt in this process's main thread, so that the running trial is given back by
    the worker loop (not from inside a signal handler). Yields ``requeue``, which hands the job
    to submitit's own handler: it checkpoints this callable and requeues the job (Slurm:
    ``scontrol requeue``; local: the controller restarts it), counting time-outs against
    ``max_requeues``."""
    usr = preempt_signal()
    submitit_handler = signal.getsignal(usr)

    def requeue() -> None:
        if callable(submitit_handler):
            submitit_handler(usr, None)  # exits the process (requeue) or raises (no requeue)

    signals = {usr: Preempted, signal.SIGTERM: KeyboardInterrupt, signal.SIGINT: KeyboardInterrupt}
    with raising_signals(signals):
        yield requeue


@dataclass(frozen=True)
class WorkerJob:
    """What one submitit job runs: a study worker in the study's project folder.

    Picklable (submitit pickles it for the job). ``opts.storage`` is empty when the URL carries
    a password: the job reads it from ``MPBENCH_STORAGE``.
    """

    opts: WorkerOptions
    project_folder: str
    tracking_uri: str | None = None
    threads: int | None = None

    def __call__(self, index: int) -> dict[str, list[int]]:
        """Run the worker until the study has nothing left; its trial numbers by outcome."""
        from mpbench.study.worker import run_worker

        opts = replace(self.opts, storage=self.storage(), index=index, log=_job_log())
        if self.threads:
            os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
            os.environ.setdefault("MKL_NUM_THREADS", str(self.threads))
        if self.tracking_uri:
            os.environ["MLFLOW_TRACKING_URI"] = self.tracking_uri
        os.chdir(self.project_folder)
        logging.basicConfig(
            level=logging.WARNING,
            format=f"%(asctime)s job{index} %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("mpbench").setLevel(logging.INFO)
        with preemption_handlers() as requeue:
            try:
                return dict(run_worker(opts).outcomes)
            except Preempted:
                log.warning("preempted or at the time limit: cell given back; requeueing the job")
                requeue()
                raise

    def checkpoint(self, index: int) -> Any:
        """submitit's checkpoint hook: the requeued job runs this same worker again (the study's
        storage and the cells' checkpoints hold all the state)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, index)

    def storage(self) -> str:
        """The storage URL: pickled when it has no password, else from ``MPBENCH_STORAGE``."""
        url = self.opts.storage or os.environ.get(S.STORAGE_ENV, "")
        if not url:
            raise ValueError(
                f"the job has no storage URL: export {S.STORAGE_ENV} where the job starts "
                "(sbatch exports the submitting shell's environment unless --export says not)"
            )
        return url


def _job_log() -> str | None:
    """The submitit log file of the running job (recorded on the trials it runs)."""
    try:
        import submitit

        return str(submitit.JobEnvironment().paths.stdout)
    except Exception:  # not inside a submitit job (a test calling the job directly)
        return None


# --- submitting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    """Jobs submitted by one command: the launcher, the submitit folder, the job objects."""

    launcher: str
    folder: Path
    jobs: list[Any]  # submitit Job objects

    @property
    def ids(self) -> list[str]:
        """The job ids (Slurm: ``<array id>_<task>``; local: the controller's pid)."""
        return [str(j.job_id) for j in self.jobs]


def job_folder(spec: StudySpec, p: RunPlan) -> Path:
    """submitit's folder of the study's jobs: ``<run folder>/<study>/jobs``."""
    return spec.run_folder(p.run_folder) / "jobs"


def slurm_workers(spec: StudySpec, p: RunPlan, workers: int | None) -> int:
    """Jobs to submit: --workers, else [execution.slurm] workers, else the plan's workers."""
    return workers or spec.execution.slurm.workers or p.workers


def check_cluster_paths(spec: StudySpec, p: RunPlan) -> None:
    """The Slurm storage rules (:func:`check_shared`) for the run folder and a journal."""
    if not spec.execution.slurm.shared_fs_check:
        return
    check_shared(
        spec.run_folder(p.run_folder), what="run folder", key=p.run_folder_key, journal=False
    )
    if S.is_journal(p.storage):
        check_shared(p.storage, what="journal storage", key=p.storage_key, journal=True)


def make_executor(launcher: str, folder: Path, slurm: SlurmSpec, *, workers: int) -> Any:
    """A submitit executor for ``launcher`` with the study's [execution.slurm] settings."""
    submitit = require_submitit()
    if launcher == "slurm":
        ex = submitit.SlurmExecutor(folder=folder / "%j", max_num_timeout=slurm.max_requeues)
        params: dict[str, Any] = {
            "job_name": f"mpbench-{folder.parent.name}",
            "time": slurm.time,
            "nodes": 1,
            "ntasks_per_node": 1,
            "cpus_per_task": slurm.cpus_per_worker,
            "signal_delay_s": slurm.signal_delay,
            "array_parallelism": workers,
            "stderr_to_stdout": True,
            "additional_parameters": dict(slurm.additional),
        }
        if slurm.gpus_per_worker:
            params["gpus_per_node"] = slurm.gpus_per_worker
        if slurm.setup:
            params["setup"] = list(slurm.setup)
        for name in ("partition", "account", "qos", "constraint"):
            if getattr(slurm, name):
                params[name] = getattr(slurm, name)
        if slurm.mem_gb is not None:  # sbatch reads a bare number as MB
            gb = slurm.mem_gb
            params["mem"] = f"{int(gb)}GB" if gb == int(gb) else f"{round(gb * 1024)}MB"
        ex.update_parameters(**params)
        return ex
    if launcher != "local":
        raise ValueError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    ex = submitit.LocalExecutor(folder=folder / "%j", max_num_timeout=slurm.max_requeues)
    ex.update_parameters(
        timeout_min=slurm.time, signal_delay_s=slurm.signal_delay, stderr_to_stdout=True
    )
    return ex


def worker_job(spec: StudySpec, p: RunPlan, *, threads: int | None) -> WorkerJob:
    """The job callable for this study and plan (no password pickled)."""
    from mpbench.study.plan import worker_options
    from mpbench.study.runner import worker_tracking_uri

    tracking = None
    if p.experiment is not None:
        uri = worker_tracking_uri()
        tracking = None if has_password(uri) else uri  # else from the job's environment
    opts = worker_options(spec, p)
    if has_password(p.storage):  # the job reads it from its environment: never pickled
        opts = replace(opts, storage="")
    return WorkerJob(opts, project_folder=p.project_folder, tracking_uri=tracking, threads=threads)


def submit(
    spec: StudySpec,
    p: RunPlan,
    launcher: str,
    *,
    workers: int,
    indices: list[int] | None = None,
) -> Launched:
    """Submit ``workers`` worker jobs (one array on Slurm); record them in ``jobs.json``."""
    slurm = spec.execution.slurm
    folder = job_folder(spec, p)
    folder.mkdir(parents=True, exist_ok=True)
    if has_password(p.storage):
        os.environ[S.STORAGE_ENV] = p.storage  # inherited by local controllers and by sbatch
    indices = list(range(workers)) if indices is None else indices
    if launcher == "local":
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        jobs = []
        for i in indices:
            ex = make_executor(launcher, folder, slurm, workers=workers)
            if p.gpus:
                ex.update_parameters(gpus_per_node=1, visible_gpus=(p.gpus[i % len(p.gpus)],))
            jobs.append(ex.submit(worker_job(spec, p, threads=threads), i))
    else:
        ex = make_executor(launcher, folder, slurm, workers=workers)
        jobs = ex.map_array(worker_job(spec, p, threads=slurm.cpus_per_worker), indices)
    launched = Launched(launcher, folder, jobs)
    record_jobs(folder.parent, launched, indices)
    return launched


def record_jobs(study_folder: Path, launched: Launched, indices: list[int]) -> None:
    """Append the submitted jobs to ``<study folder>/jobs.json``."""
    path = study_folder / JOBS_FILE
    known = load_jobs(study_folder)
    now = time.time()
    known += [
        {
            "launcher": launched.launcher,
            "id": str(job.job_id),
            "index": i,
            "folder": str(launched.folder / "%j"),
            "log": str(job.paths.stdout),
            "submitted": now,
        }
        for job, i in zip(launched.jobs, indices, strict=True)
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1))
    tmp.replace(path)


def load_jobs(study_folder: Path) -> list[dict[str, Any]]:
    """The jobs recorded for a study (empty when none were submitted)."""
    path = Path(study_folder) / JOBS_FILE
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()))


# --- job states ----------------------------------------------------------------------------------

ENDED_STATES = ("COMPLETED", "FAILED", "LOST", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "FINISHED")


def job_state(record: dict[str, Any], job: Any = None) -> str:
    """The state of a recorded job: Slurm's (sacct), or for a local job RUNNING while its
    controller lives, then COMPLETED / FAILED from submitit's result file, LOST without one
    (killed)."""
    submitit = require_submitit()
    if record["launcher"] == "slurm":
        try:
            sjob = job or submitit.SlurmJob(folder=record["folder"], job_id=record["id"])
            return str(sjob.state).split()[0]
        except Exception as exc:  # sacct missing or failing: say so, do not crash status
            return f"UNKNOWN ({type(exc).__name__})"
    running = job.state == "RUNNING" if job is not None else pid_alive(int(record["id"]))
    if running:
        return "RUNNING"
    paths = submitit.core.utils.JobPaths(record["folder"], job_id=record["id"])
    return _outcome(paths.result_pickle)


def _outcome(result: Path) -> str:
    """COMPLETED / FAILED from a job's result pickle, LOST when there is none."""
    if not result.is_file():
        return "LOST"
    try:
        with open(result, "rb") as f:
            outcome = pickle.load(f)[0]  # written by submitit for our own job: ("success", ...)
    except Exception:
        return "FAILED"
    return "COMPLETED" if outcome == "success" else "FAILED"


# --- following a launched study ------------------------------------------------------------------


@dataclass
class Followed:
    """What ``follow`` saw: final job states and the jobs submitted to replace lost ones."""

    states: dict[str, str]
    replaced: list[str]
    interrupted: bool = False


def follow(
    study: Any,
    spec: StudySpec,
    p: RunPlan,
    launched: Launched,
    *,
    progress: bool = True,
    poll: float = 2.0,
    replace_budget: int | None = None,
) -> Followed:
    """Show cells done / total until the study has nothing left and no job runs. A job that
    ended without finishing (killed, lost) while cells remain is replaced, at most
    ``replace_budget`` times (default: retries x jobs); its RUNNING trial is reaped here too."""
    from mpbench.study.runner import has_work, show_cells, study_progress
    from mpbench.study.status import summarize_study

    budget = p.retries * len(launched.jobs) if replace_budget is None else replace_budget
    storage = S.open_storage(p.storage)
    records = load_jobs(launched.folder.parent)[-len(launched.jobs) :]
    jobs = list(zip(records, launched.jobs, strict=True))
    replaced: list[str] = []
    handled: set[str] = set()
    states: dict[str, str] = {}
    with study_progress(disable=not progress) as bar:
        task = bar.add_task(spec.name, total=None, detail="")
        while True:
            S.reap_stale(study, storage, grace_period=p.grace_period, retries=p.retries)
            states = {rec["id"]: job_state(rec, job) for rec, job in jobs}
            work = has_work(study, spec)
            for rec, _ in list(jobs):
                if states[rec["id"]] in ("LOST", "FAILED") and rec["id"] not in handled:
                    handled.add(rec["id"])
                    if work and budget > 0:
                        budget -= 1
                        new = submit(spec, p, launched.launcher, workers=1, indices=[rec["index"]])
                        log.warning(
                            "job %s ended %s with cells left: replaced by job %s",
                            rec["id"],
                            states[rec["id"]],
                            new.ids[0],
                        )
                        replaced.append(new.ids[0])
                        jobs.append((load_jobs(launched.folder.parent)[-1], new.jobs[0]))
                        states[new.ids[0]] = "RUNNING"
            running = sum(
                s not in ENDED_STATES and not s.startswith("UNKNOWN") for s in states.values()
            )
            show_cells(bar, task, summarize_study(study, spec), f"{running} job(s) running")
            if not running:
                break
            time.sleep(poll)
    return Followed(states, replaced)


@dataclass
class LaunchResult:
    """What ``launch_study`` did: trials enqueued, jobs submitted, and with ``wait`` the end."""

    enqueued: int
    launched: Launched | None
    summary: Any = None  # mpbench.study.status.StudySummary, when followed (or nothing to do)
    followed: Followed | None = None

    @property
    def exit_code(self) -> int:
        """0 when submitted (not followed) or every cell ended well; else as ``mpbench grid``."""
        from mpbench.study.runner import EXIT_INTERRUPTED, exit_code

        if self.followed is not None and self.followed.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.summary is None else exit_code(self.summary)


def launch_study(
    spec: StudySpec,
    p: RunPlan,
    launcher: str,
    *,
    workers: int | None = None,
    retry_failed: bool = False,
) -> LaunchResult:
    """Enqueue the study's cells and submit its worker jobs (none when nothing is left to do).
    The pre-flight (and, for Slurm, :func:`check_cluster_paths`) is the caller's; follow the
    jobs with :func:`follow_study`."""
    from mpbench import tracking as tk
    from mpbench.study.runner import has_work, prepare
    from mpbench.study.status import summarize_study

    require_submitit()
    if launcher not in LAUNCHERS:
        raise ValueError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    n = slurm_workers(spec, p, workers) if launcher == "slurm" else (workers or p.workers)
    study, storage, added = prepare(spec, p, retry_failed=retry_failed)
    S.reap_stale(study, storage, grace_period=p.grace_period, retries=p.retries)
    if not has_work(study, spec):
        return LaunchResult(added, None, summarize_study(study, spec))
    if p.experiment is not None:
        tk.get_or_create_experiment(p.experiment)  # once, before the jobs race to create it
    return LaunchResult(added, submit(spec, p, launcher, workers=n))


def follow_study(
    spec: StudySpec, p: RunPlan, result: LaunchResult, *, progress: bool = True, poll: float = 2.0
) -> LaunchResult:
    """Follow launched jobs to the end (:func:`follow`); Ctrl-C stops following only."""
    from mpbench.study.status import summarize_study

    assert result.launched is not None
    study = S.open_study(spec.name, S.open_storage(p.storage), spec=spec)
    try:
        followed = follow(study, spec, p, result.launched, progress=progress, poll=poll)
    except KeyboardInterrupt:
        return replace(
            result, summary=summarize_study(study, spec), followed=Followed({}, [], True)
        )
    from mpbench.study.runner import end_open_runs

    end_open_runs(study, spec, p.experiment)
    return replace(result, summary=summarize_study(study, spec), followed=followed)
